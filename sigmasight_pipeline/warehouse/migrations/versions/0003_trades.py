"""Books that change (books.md, "Trades"): the ``trades`` ledger, and the columns that carry a book's trades
through the engines.

* ``trades``: created when missing (a warehouse written by ``metadata.create_all`` of this code may have it);
* ``positions``: ``exit_date``, ``realized_pnl`` (server default 0, so existing rows are valid: a book of the
  upload era never traded) and ``implied_vol``. A position is now one row per instrument; rows of an older
  warehouse stay as they are until ``portfolio_positions`` runs again for their portfolio;
* ``position_daily_pnl.daily_pnl`` becomes nullable: a position without a price that day has no P&L (NULL,
  ``pnl_basis`` "missing_price"), never 0;
* ``position_valuations.quantity, realized_pnl``, ``position_daily_pnl.quantity, trade_cash, realized_pnl``,
  ``portfolio_snapshots.realized_pnl, cumulative_realized_pnl``: nullable; NULL on rows written before
  trades (a rerun of their partitions fills them).

Columns are added only when missing; batch mode on SQLite ("move and copy", rows kept). Nothing is dropped.

Revision ID: 0003_trades
Revises: 0002_exact_fit
Create Date: 2026-11-26
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003_trades"
down_revision: str | Sequence[str] | None = "0002_exact_fit"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

Money = sa.Numeric(20, 2)
Quantity = sa.Numeric(24, 8)

NEW_COLUMNS: dict[str, list[sa.Column]] = {
    "positions": [
        sa.Column("exit_date", sa.Date(), nullable=True),
        sa.Column("realized_pnl", Money, server_default="0", nullable=False),
        sa.Column("implied_vol", sa.Float(precision=53), nullable=True),
    ],
    "position_valuations": [
        sa.Column("quantity", Quantity, nullable=True),
        sa.Column("realized_pnl", Money, nullable=True),
    ],
    "position_daily_pnl": [
        sa.Column("quantity", Quantity, nullable=True),
        sa.Column("trade_cash", Money, nullable=True),
        sa.Column("realized_pnl", Money, nullable=True),
    ],
    "portfolio_snapshots": [
        sa.Column("realized_pnl", Money, nullable=True),
        sa.Column("cumulative_realized_pnl", Money, nullable=True),
    ],
}


def upgrade() -> None:
    inspector = sa.inspect(op.get_bind())
    if not inspector.has_table("trades"):
        op.create_table(
            "trades",
            sa.Column("portfolio_id", sa.String(length=64), nullable=False),
            sa.Column("trade_seq", sa.Integer(), nullable=False),
            sa.Column("trade_id", sa.String(length=64), nullable=True),
            sa.Column("trade_date", sa.Date(), nullable=False),
            sa.Column("symbol", sa.String(length=32), nullable=False),
            sa.Column("quantity", Quantity, nullable=False),
            sa.Column("price", sa.Numeric(20, 6), nullable=False),
            sa.Column("fees", Money, server_default="0", nullable=False),
            sa.Column("close_and_reverse", sa.Boolean(), server_default=sa.false(), nullable=False),
            sa.Column("tags", sa.Text(), nullable=True),
            sa.Column("source_file", sa.String(length=300), nullable=True),
            sa.Column("source_row", sa.Integer(), nullable=False),
            sa.Column("imported_at", sa.DateTime(timezone=True), nullable=False),
            sa.ForeignKeyConstraint(["portfolio_id"], ["portfolios.portfolio_id"], ondelete="CASCADE"),
            sa.PrimaryKeyConstraint("portfolio_id", "trade_seq"),
            sa.UniqueConstraint("portfolio_id", "trade_id", name="uq_trades_trade_id"),
        )
    for table, columns in NEW_COLUMNS.items():
        have = {c["name"]: c for c in inspector.get_columns(table)}
        missing = [c for c in columns if c.name not in have]
        relax = table == "position_daily_pnl" and not have["daily_pnl"]["nullable"]
        if missing or relax:
            with op.batch_alter_table(table, schema=None) as batch_op:
                for column in missing:
                    batch_op.add_column(column)
                if relax:
                    batch_op.alter_column("daily_pnl", existing_type=Money, nullable=True)


def downgrade() -> None:
    op.execute(sa.text("DELETE FROM position_daily_pnl WHERE daily_pnl IS NULL"))  # NOT NULL again: they cannot stay
    with op.batch_alter_table("position_daily_pnl", schema=None) as batch_op:
        batch_op.alter_column("daily_pnl", existing_type=Money, nullable=False)
    for table, columns in NEW_COLUMNS.items():
        with op.batch_alter_table(table, schema=None) as batch_op:
            for column in reversed(columns):
                batch_op.drop_column(column.name)
    op.drop_table("trades")
