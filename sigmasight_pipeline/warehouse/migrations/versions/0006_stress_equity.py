"""Stress losses against equity, percentage columns named for their base; entry sanity warnings (issue 10).

``stress_results`` (books.md, "Numbers that must not mislead"):

* ``pct_of_equity`` is renamed ``pct_of_gross_exposure``: it always was correlated P&L / gross exposure, and
  the rows a warehouse holds keep their values under the honest name;
* new ``equity`` (the book's net liquidation value), ``pct_of_equity`` (correlated P&L / equity) and
  ``exceeds_equity``: NULL / NULL / false on existing rows (nothing is recomputed here; a rerun of their
  partitions fills them);
* ``flag`` widens from 40 to 200 characters (its notes now include "equity_nonpositive" and
  "loss_exceeds_equity").

New table ``entry_warnings`` (books.md, "Market data that a real book needs": entry sanity).

House style (see 0002_exact_fit): every step only when still needed, so a warehouse that ``metadata.create_all``
wrote with this code before it had an ``alembic_version`` (it adopts the baseline, then upgrades) is left as it
is; batch mode on SQLite ("move and copy": rows kept, column order kept); server defaults so existing rows
are valid. The downgrade drops only what this revision added (the new columns, the new table) and restores
the old name and width.

Revision ID: 0006_stress_equity
Revises: 0005_option_inputs
Create Date: 2026-11-26
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006_stress_equity"
down_revision: str | Sequence[str] | None = "0005_option_inputs"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLE = "stress_results"
OLD_FLAG_WIDTH = 40
FLAG_WIDTH = 200


def _columns(table: str) -> dict[str, dict]:
    return {c["name"]: c for c in sa.inspect(op.get_bind()).get_columns(table)}


def upgrade() -> None:
    columns = _columns(TABLE)
    flag_length = getattr(columns["flag"]["type"], "length", None)
    rename = "pct_of_gross_exposure" not in columns and "pct_of_equity" in columns
    added = [
        sa.Column("equity", sa.Numeric(20, 2, asdecimal=False), nullable=True),
        sa.Column("pct_of_equity", sa.Float(precision=53), nullable=True),
        sa.Column("exceeds_equity", sa.Boolean(), server_default=sa.false(), nullable=False),
    ]
    missing = [c for c in added if c.name not in columns or (rename and c.name == "pct_of_equity")]
    widen = flag_length is not None and flag_length < FLAG_WIDTH
    if rename or widen:  # first the rename (a batch may not rename a column and add one of its old name)
        with op.batch_alter_table(TABLE, schema=None) as batch_op:
            if rename:  # the old values are correlated P&L / gross exposure: they keep their meaning
                batch_op.alter_column("pct_of_equity", new_column_name="pct_of_gross_exposure",
                                      existing_type=sa.Float(precision=53), existing_nullable=True)
            if widen:
                batch_op.alter_column("flag", type_=sa.String(length=FLAG_WIDTH),
                                      existing_type=sa.String(length=flag_length), existing_nullable=False)
    if missing:
        with op.batch_alter_table(TABLE, schema=None) as batch_op:
            for column in missing:
                batch_op.add_column(column)

    if "entry_warnings" not in sa.inspect(op.get_bind()).get_table_names():
        op.create_table(
            "entry_warnings",
            sa.Column("portfolio_id", sa.String(length=64), nullable=False),
            sa.Column("source", sa.String(length=300), nullable=False),
            sa.Column("source_row", sa.Integer(), nullable=False),
            sa.Column("symbol", sa.String(length=32), nullable=False),
            sa.Column("entry_date", sa.Date(), nullable=False),
            sa.Column("kind", sa.String(length=40), nullable=False),
            sa.Column("message", sa.Text(), nullable=False),
            sa.Column("reference_price", sa.Numeric(precision=20, scale=6, asdecimal=False), nullable=True),
            sa.ForeignKeyConstraint(["portfolio_id"], ["portfolios.portfolio_id"], ondelete="CASCADE"),
            sa.PrimaryKeyConstraint("portfolio_id", "source", "source_row", "kind"),
        )


def downgrade() -> None:
    op.drop_table("entry_warnings")
    with op.batch_alter_table(TABLE, schema=None) as batch_op:
        batch_op.drop_column("exceeds_equity")
        batch_op.drop_column("pct_of_equity")
        batch_op.drop_column("equity")
        batch_op.alter_column("pct_of_gross_exposure", new_column_name="pct_of_equity",
                              existing_type=sa.Float(precision=53), existing_nullable=True)
        batch_op.alter_column("flag", type_=sa.String(length=OLD_FLAG_WIDTH),
                              existing_type=sa.String(length=FLAG_WIDTH), existing_nullable=False)
