"""Performance per window and daily P&L attribution by factor (issue 11).

Two new tables, created only when missing (a warehouse written by ``metadata.create_all`` of this code before it
had an ``alembic_version`` adopts the baseline, then upgrades, and already has them); nothing else changes, so
every row a warehouse holds is kept:

* ``portfolio_performance`` (date, portfolio, window_name): the statistics of each performance window ending on
  the date (engines/performance.py);
* ``pnl_attribution`` (date, portfolio, line): the day's snapshot P&L by factor, specific and residual
  (engines/attribution.py).

Both fill when ``portfolio_performance`` / ``pnl_attribution`` run for their partitions. The downgrade drops them.

Revision ID: 0008_performance_attribution
Revises: 0007_risk_measures
Create Date: 2026-11-26
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008_performance_attribution"
down_revision: str | Sequence[str] | None = "0007_risk_measures"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PERFORMANCE = "portfolio_performance"
ATTRIBUTION = "pnl_attribution"
Money = sa.Numeric(20, 2)
Ratio = sa.Float(precision=53)


def upgrade() -> None:
    tables = set(sa.inspect(op.get_bind()).get_table_names())
    if PERFORMANCE not in tables:
        op.create_table(
            PERFORMANCE,
            sa.Column("date", sa.Date(), nullable=False),
            sa.Column("portfolio_id", sa.String(length=64), nullable=False),
            sa.Column("window_name", sa.String(length=16), nullable=False),
            sa.Column("window_start", sa.Date(), nullable=True),
            sa.Column("first_return_date", sa.Date(), nullable=True),
            sa.Column("window_sessions", sa.Integer(), nullable=False),
            sa.Column("n_returns", sa.Integer(), nullable=False),
            *[sa.Column(c, Ratio, nullable=True) for c in (
                "cumulative_return", "annualized_return", "annual_volatility", "sharpe_ratio", "sortino_ratio",
                "max_drawdown")],
            sa.Column("peak_date", sa.Date(), nullable=True),
            sa.Column("trough_date", sa.Date(), nullable=True),
            sa.Column("current_drawdown", Ratio, nullable=True),
            sa.Column("calmar_ratio", Ratio, nullable=True),
            sa.Column("best_day", Ratio, nullable=True),
            sa.Column("best_day_date", sa.Date(), nullable=True),
            sa.Column("worst_day", Ratio, nullable=True),
            sa.Column("worst_day_date", sa.Date(), nullable=True),
            *[sa.Column(c, Ratio, nullable=True) for c in (
                "positive_days_share", "beta", "alpha", "correlation", "tracking_error", "market_return")],
            sa.Column("flag", sa.String(length=24), nullable=False),
            sa.Column("reason", sa.Text(), nullable=True),
            sa.PrimaryKeyConstraint("date", "portfolio_id", "window_name"),
        )
    if ATTRIBUTION not in tables:
        op.create_table(
            ATTRIBUTION,
            sa.Column("date", sa.Date(), nullable=False),
            sa.Column("portfolio_id", sa.String(length=64), nullable=False),
            sa.Column("line", sa.String(length=40), nullable=False),
            sa.Column("line_type", sa.String(length=10), nullable=False),
            sa.Column("line_order", sa.Integer(), nullable=False),
            sa.Column("previous_date", sa.Date(), nullable=False),
            sa.Column("exposure", Money, nullable=True),
            sa.Column("factor_return", Ratio, nullable=True),
            sa.Column("pnl", Money, nullable=True),
            sa.Column("flag", sa.String(length=200), nullable=True),
            sa.PrimaryKeyConstraint("date", "portfolio_id", "line"),
        )


def downgrade() -> None:
    op.drop_table(ATTRIBUTION)
    op.drop_table(PERFORMANCE)
