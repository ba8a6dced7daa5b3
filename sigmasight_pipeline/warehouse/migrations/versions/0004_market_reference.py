"""Stock splits and security master fields (issue 10: market data a real book needs).

* ``stock_splits`` (symbol, ex_date, ratio, source; PK symbol, ex_date): the split history the
  ``market_prices`` asset loads from its source, created when missing;
* ``security_master.category`` (a fund's Morningstar category) and ``security_master.dividend_yield`` (annual
  yield as a decimal), both nullable, added when missing. The rows a warehouse holds are kept with NULL in the
  new columns (unknown until the security master is refreshed: the next ``market_prices`` run, or onboarding).

Added only when missing (a warehouse written by ``metadata.create_all`` of this code before it had an
``alembic_version`` adopts the baseline and already has them); batch mode on SQLite (a "move and copy" of the
table, rows kept).

Revision ID: 0004_market_reference
Revises: 0003_trades
Create Date: 2026-11-26
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004_market_reference"
down_revision: str | Sequence[str] | None = "0003_trades"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SPLITS = "stock_splits"
MASTER = "security_master"
#: security_master columns this revision adds, in this order (the column order of a migrated warehouse).
MASTER_COLUMNS = (
    ("category", sa.String(length=120)),
    ("dividend_yield", sa.Float(precision=53)),
)


def upgrade() -> None:
    insp = sa.inspect(op.get_bind())
    if SPLITS not in insp.get_table_names():
        op.create_table(
            SPLITS,
            sa.Column("symbol", sa.String(length=32), nullable=False),
            sa.Column("ex_date", sa.Date(), nullable=False),
            sa.Column("ratio", sa.Float(precision=53), nullable=False),
            sa.Column("source", sa.String(length=20), nullable=False),
            sa.PrimaryKeyConstraint("symbol", "ex_date"),
        )
    have = {c["name"] for c in insp.get_columns(MASTER)}
    missing = [(name, type_) for name, type_ in MASTER_COLUMNS if name not in have]
    if missing:
        with op.batch_alter_table(MASTER, schema=None) as batch_op:
            for name, type_ in missing:
                batch_op.add_column(sa.Column(name, type_, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table(MASTER, schema=None) as batch_op:
        for name, _ in reversed(MASTER_COLUMNS):
            batch_op.drop_column(name)
    op.drop_table(SPLITS)
