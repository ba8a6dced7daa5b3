"""The report's layout: engines, the sections each needs, charts, CSV columns, factor order, field groups."""

from __future__ import annotations

ENGINES: tuple[str, ...] = (
    "exposures", "greeks", "factor_exposures", "rate_sensitivity", "correlations", "stress_tests", "snapshot",
    "risk_measures", "performance",
)
ENGINE_LABELS: dict[str, str] = {
    "exposures": "Valuation and exposures",
    "greeks": "Options Greeks",
    "factor_exposures": "Factor exposures",
    "rate_sensitivity": "Interest-rate sensitivity",
    "correlations": "Position correlations",
    "stress_tests": "Stress tests",
    "snapshot": "Portfolio snapshot and P&L",
    "risk_measures": "Risk measures (VaR, ES)",
    "performance": "Performance and attribution",
}
#: sections that must have rows for the anchor date for the engine to be available
REQUIRED_SECTIONS: dict[str, tuple[str, ...]] = {
    "exposures": ("exposures", "valuations"),
    "greeks": ("greeks",),
    "factor_exposures": ("portfolio_factors", "position_factors"),
    "rate_sensitivity": ("portfolio_rates", "position_rates"),
    "correlations": ("correlation_summary",),
    "stress_tests": ("stress_results",),
    "snapshot": ("snapshot",),
    "risk_measures": ("risk_measures",),
    "performance": ("performance",),
}
#: sections an available engine normally has too (their absence is a data-quality note, not unavailability)
OPTIONAL_SECTIONS: dict[str, tuple[str, ...]] = {
    "exposures": ("group_exposures",),
    "factor_exposures": ("factor_window",),
    "stress_tests": ("stress_breakdown",),
    "snapshot": ("position_pnl",),
    "risk_measures": ("position_risk", "factor_risk", "risk_backtest"),
    "performance": ("attribution",),
}

#: chart file -> title (the PNGs sit beside the report and are linked from the Markdown)
CHARTS: dict[str, str] = {
    "factor_exposures.png": "Factor dollar exposures",
    "stress_pnl.png": "Stress P&L by scenario",
    "cumulative_pnl.png": "Cumulative P&L history",
    "drawdown.png": "Drawdown of the cumulative return",
    "var_backtest.png": "Daily P&L against the previous day's 99% VaR",
}

#: the CSV's columns, in order: one row per position held on the anchor date
CSV_COLUMNS: tuple[str, ...] = (
    # core (8)
    "position_id", "symbol", "position_type", "quantity", "entry_price", "current_price", "market_value", "cost_basis",
    # P&L (4)
    "unrealized_pnl", "realized_pnl", "daily_pnl", "total_pnl",
    # Greeks (5)
    "delta", "gamma", "theta", "vega", "rho",
    # options (4)
    "underlying_symbol", "strike_price", "expiration_date", "days_to_expiry",
    # metadata (6)
    "entry_date", "exit_date", "sector", "industry", "tags", "notes",
    # portfolio context (7)
    "portfolio_name", "report_date", "gross_exposure", "net_exposure", "notional", "portfolio_weight",
    "position_exposure",
)
assert len(CSV_COLUMNS) == 34

#: canonical factor order (spec/engines.md); other factor names follow alphabetically
FACTOR_ORDER = ("Market", "Value", "Growth", "Momentum", "Quality", "Size", "Low Volatility")

LIMITED_FLAGS = ("limited_history", "insufficient_history", "no_return_history")

EXPOSURE_MONEY = (
    "long_exposure", "short_exposure", "gross_exposure", "net_exposure", "notional", "delta_adjusted_exposure",
    "delta_adjusted_long", "delta_adjusted_short", "volatility_delta_exposure", "options_exposure",
    "stock_exposure", "total_cost_basis", "total_unrealized_pnl",
)
EXPOSURE_COUNTS = ("long_count", "short_count", "option_count", "stock_count", "position_count", "missing_price_count")
RATE_MONEY = (
    "dollar_per_bp", "pnl_rates_up_100bp", "pnl_rates_down_100bp", "pnl_rates_up_200bp", "pnl_rates_down_200bp",
    "pnl_market_up_5", "pnl_market_down_5", "pnl_market_up_10", "pnl_market_down_10", "pnl_market_up_20",
    "pnl_market_down_20",
)
SNAPSHOT_MONEY = (
    "total_value", "long_exposure", "short_exposure", "gross_exposure", "net_exposure", "delta_adjusted_exposure",
    "notional", "dollar_delta", "dollar_gamma", "daily_pnl", "cumulative_pnl", "realized_pnl", "cumulative_realized_pnl",
)
SNAPSHOT_COUNTS = ("position_count", "long_count", "short_count", "option_count", "stock_count", "missing_price_count")
PORTFOLIO_GREEKS = ("portfolio_delta", "portfolio_gamma", "portfolio_theta", "portfolio_vega", "portfolio_rho")
GREEK_NAMES = ("delta", "gamma", "theta", "vega", "rho")

_FACTOR_RANK = {name: (i, "") for i, name in enumerate(FACTOR_ORDER)}


def factor_key(name: str) -> tuple[int, str]:
    """Canonical factors first, in their order; then the others by name."""
    key = _FACTOR_RANK.get(name)
    return key if key is not None else (len(FACTOR_ORDER), str(name))
