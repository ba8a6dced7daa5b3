"""Risk measures: VaR, expected shortfall, risk contributions, backtest; residual risk of the factor regressions (issue 11).

* ``position_factor_exposures.residual_std`` (double precision, nullable): the daily standard deviation of the
  symbol's regression residuals, the specific risk of the parametric VaR. NULL on existing rows (nothing is
  recomputed here; a rerun of their partitions fills it);
* new tables ``portfolio_risk_measures``, ``position_risk_contributions``, ``factor_risk_contributions`` and
  ``risk_backtest`` (spec/risk_measures.md, "Storage").

House style (see 0006_stress_equity): every step only when still needed, so a warehouse that
``metadata.create_all`` wrote with this code before it had an ``alembic_version`` is left as it is; batch mode on
SQLite ("move and copy": rows kept, column order kept). The downgrade drops only what this revision added.

Revision ID: 0007_risk_measures
Revises: 0006_stress_equity
Create Date: 2026-11-26
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007_risk_measures"
down_revision: str | Sequence[str] | None = "0006_stress_equity"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

Ratio = sa.Float(precision=53)
Slug = sa.String(length=64)
TABLES = ("portfolio_risk_measures", "position_risk_contributions", "factor_risk_contributions", "risk_backtest")


def _create_tables(existing: set[str]) -> None:
    if "portfolio_risk_measures" not in existing:
        op.create_table(
            "portfolio_risk_measures",
            sa.Column("date", sa.Date(), nullable=False),
            sa.Column("portfolio_id", Slug, nullable=False),
            sa.Column("method", sa.String(length=16), nullable=False),
            sa.Column("measure", sa.String(length=32), nullable=False),
            sa.Column("level", Ratio, nullable=False),
            sa.Column("horizon_days", sa.Integer(), nullable=False),
            sa.Column("value", Ratio, nullable=True),
            sa.Column("flag", sa.Text(), nullable=False),
            sa.PrimaryKeyConstraint("date", "portfolio_id", "method", "measure", "level", "horizon_days"),
        )
    if "position_risk_contributions" not in existing:
        op.create_table(
            "position_risk_contributions",
            sa.Column("date", sa.Date(), nullable=False),
            sa.Column("portfolio_id", Slug, nullable=False),
            sa.Column("position_id", sa.Integer(), nullable=False),
            sa.Column("method", sa.String(length=16), nullable=False),
            sa.Column("measure", sa.String(length=32), nullable=False),
            sa.Column("level", Ratio, nullable=False),
            sa.Column("contribution", Ratio, nullable=False),
            sa.Column("marginal", Ratio, nullable=True),
            sa.Column("share", Ratio, nullable=True),
            sa.PrimaryKeyConstraint("date", "portfolio_id", "position_id", "method", "measure", "level"),
        )
    if "factor_risk_contributions" not in existing:
        op.create_table(
            "factor_risk_contributions",
            sa.Column("date", sa.Date(), nullable=False),
            sa.Column("portfolio_id", Slug, nullable=False),
            sa.Column("factor_name", sa.String(length=40), nullable=False),
            sa.Column("dollar_exposure", Ratio, nullable=True),
            sa.Column("contribution", Ratio, nullable=False),
            sa.Column("marginal", Ratio, nullable=True),
            sa.Column("share", Ratio, nullable=True),
            sa.PrimaryKeyConstraint("date", "portfolio_id", "factor_name"),
        )
    if "risk_backtest" not in existing:
        op.create_table(
            "risk_backtest",
            sa.Column("date", sa.Date(), nullable=False),
            sa.Column("portfolio_id", Slug, nullable=False),
            sa.Column("var_date", sa.Date(), nullable=False),
            sa.Column("var_99", Ratio, nullable=False),
            sa.Column("realized_pnl", Ratio, nullable=False),
            sa.Column("exception", sa.Boolean(), nullable=False),
            sa.Column("window_sessions", sa.Integer(), nullable=False),
            sa.Column("exceptions", sa.Integer(), nullable=False),
            sa.Column("kupiec_lr", Ratio, nullable=True),
            sa.Column("kupiec_p_value", Ratio, nullable=True),
            sa.Column("zone", sa.String(length=8), nullable=False),
            sa.PrimaryKeyConstraint("date", "portfolio_id"),
        )


def upgrade() -> None:
    inspector = sa.inspect(op.get_bind())
    columns = {c["name"] for c in inspector.get_columns("position_factor_exposures")}
    if "residual_std" not in columns:
        with op.batch_alter_table("position_factor_exposures", schema=None) as batch_op:
            batch_op.add_column(sa.Column("residual_std", Ratio, nullable=True))
    _create_tables(set(inspector.get_table_names()))


def downgrade() -> None:
    for table in reversed(TABLES):
        op.drop_table(table)
    with op.batch_alter_table("position_factor_exposures", schema=None) as batch_op:
        batch_op.drop_column("residual_std")
