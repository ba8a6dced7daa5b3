"""Option inputs: implied volatility source, dividends, index options (issue 10).

* ``position_greeks.dividend_yield`` (the continuous yield q of the Black-Scholes-Merton price, options only)
  and ``position_greeks.pricing_note`` (e.g. "priced off VIX spot; futures curve not modelled").
  Rows already stored were priced without dividends: their option rows (``days_to_expiry`` set) get
  ``dividend_yield = 0``, stock rows stay NULL, as the engine writes them. Their VIX option rows get the spot
  note (the model has always priced them off ^VIX spot).
* ``position_greeks.vol_source``: the uploaded implied vol is now "implied" (was "position_iv"); "realized" and
  "none" are unchanged.
* ``portfolio_exposures.volatility_delta_exposure`` and ``group_exposures.volatility_delta_exposure``: the
  delta-adjusted exposure of VIX options, kept out of ``delta_adjusted_exposure``. A stored row of a portfolio
  that never held a VIX option is exact with 0.00; a row of a portfolio that did stays NULL, because its
  ``delta_adjusted_exposure`` was computed with the VIX options in it (a rerun of the partition recomputes
  both).

As 0002_exact_fit: each column is added only when missing, in batch mode on SQLite ("move and copy", rows
kept); nothing is dropped on upgrade.

Revision ID: 0005_option_inputs
Revises: 0004_market_reference
Create Date: 2026-11-26
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005_option_inputs"
down_revision: str | Sequence[str] | None = "0004_market_reference"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

VIX = "^VIX"  # marketdata.SYMBOLS.VIX, the underlying symbol stored for a VIX option
SPOT_NOTE = "priced off VIX spot; futures curve not modelled"  # engines.options.SPOT_PRICING_NOTE for VIX


def _new_columns() -> dict[str, list[sa.Column]]:
    """The columns this revision adds, per table (new Column objects on every call: a Column joins one table)."""
    return {
        "position_greeks": [
            sa.Column("dividend_yield", sa.Float(precision=53), nullable=True),
            sa.Column("pricing_note", sa.String(length=120), nullable=True),
        ],
        "portfolio_exposures": [
            sa.Column("volatility_delta_exposure", sa.Numeric(precision=20, scale=2, asdecimal=False), nullable=True),
        ],
        "group_exposures": [
            sa.Column("volatility_delta_exposure", sa.Numeric(precision=20, scale=2, asdecimal=False), nullable=True),
        ],
    }


# A VIX option of the same portfolio (and position) in ``positions``; ``{t}`` is the outer table.
_VIX_OPTION = (
    "SELECT 1 FROM positions p WHERE p.portfolio_id = {t}.portfolio_id{same_position} "
    "AND p.underlying_symbol = :vix AND p.option_type IS NOT NULL"
)


def _columns(table: str) -> set[str]:
    return {c["name"] for c in sa.inspect(op.get_bind()).get_columns(table)}


def _positions_readable() -> bool:
    """``positions`` has the columns the backfill of existing rows reads."""
    insp = sa.inspect(op.get_bind())
    need = {"portfolio_id", "position_id", "underlying_symbol", "option_type"}
    return "positions" in insp.get_table_names() and need <= {c["name"] for c in insp.get_columns("positions")}


def upgrade() -> None:
    added: dict[str, set[str]] = {}
    for table, columns in _new_columns().items():
        missing = [c for c in columns if c.name not in _columns(table)]
        if missing:
            with op.batch_alter_table(table, schema=None) as batch_op:
                for column in missing:
                    batch_op.add_column(column)
        added[table] = {c.name for c in missing}

    bind = op.get_bind()
    bind.execute(sa.text("UPDATE position_greeks SET vol_source = 'implied' WHERE vol_source = 'position_iv'"))
    if "dividend_yield" in added["position_greeks"]:
        bind.execute(sa.text("UPDATE position_greeks SET dividend_yield = 0 WHERE days_to_expiry IS NOT NULL"))
    if not _positions_readable():
        return  # the new figures of existing rows stay NULL (unknown) until their partitions are rerun
    if "pricing_note" in added["position_greeks"]:
        same = " AND p.position_id = position_greeks.position_id"
        bind.execute(
            sa.text(
                "UPDATE position_greeks SET pricing_note = :note WHERE days_to_expiry IS NOT NULL AND EXISTS ("
                + _VIX_OPTION.format(t="position_greeks", same_position=same) + ")"
            ),
            {"note": SPOT_NOTE, "vix": VIX},
        )
    for table in ("portfolio_exposures", "group_exposures"):
        if "volatility_delta_exposure" in added[table]:
            bind.execute(
                sa.text(
                    f"UPDATE {table} SET volatility_delta_exposure = 0 WHERE NOT EXISTS ("
                    + _VIX_OPTION.format(t=table, same_position="") + ")"
                ),
                {"vix": VIX},
            )


def downgrade() -> None:
    op.get_bind().execute(sa.text("UPDATE position_greeks SET vol_source = 'position_iv' WHERE vol_source = 'implied'"))
    for table, columns in _new_columns().items():
        with op.batch_alter_table(table, schema=None) as batch_op:
            for column in reversed(columns):
                batch_op.drop_column(column.name)
