"""The warehouse schema: one SQLAlchemy Core ``MetaData`` for every table the pipeline reads or writes.

Conventions (DESIGN.md, "Conventions that carry meaning"):

* Money is ``NUMERIC(20, 2)``, quantities ``NUMERIC(24, 8)``, prices ``NUMERIC(20, 6)``: exact in
  PostgreSQL. Values are rounded to the column's scale before they are written (``write_partition``)
  and read back as float64 for the engines (``asdecimal=False``): Decimal lives only at the edges
  (portfolio import, report formatting).
* Greeks and betas are stored as double precision and formatted to 4 decimals in reports;
  correlations to 6.
* Every computed table carries its ``date`` (the as-of date of the partition) and, where it belongs
  to a portfolio, ``portfolio_id``. Those two columns are the partition key that
  :func:`sigmasight_pipeline.warehouse.io.write_partition` replaces atomically.
"""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()

# Column types with meaning.
Money = sa.Numeric(20, 2, asdecimal=False)
Quantity = sa.Numeric(24, 8, asdecimal=False)
Price = sa.Numeric(20, 6, asdecimal=False)
Ratio = sa.Float(53)  # Greeks, betas, t-stats, correlations, returns
Slug = sa.String(64)  # portfolio ids: [a-z0-9_-], valid Dagster partition keys
Symbol = sa.String(32)


def _date_portfolio_position(*extra: sa.Column, name: str, pk_extra: tuple[str, ...] = ()) -> sa.Table:
    """A per-(date, portfolio, position) output table keyed for idempotent partition writes."""
    return sa.Table(
        name,
        metadata,
        sa.Column("date", sa.Date, nullable=False),
        sa.Column("portfolio_id", Slug, nullable=False),
        sa.Column("position_id", sa.Integer, nullable=False),
        *extra,
        sa.PrimaryKeyConstraint("date", "portfolio_id", "position_id", *pk_extra),
    )


# ---------------------------------------------------------------------------------------------------
# Reference data
# ---------------------------------------------------------------------------------------------------
factor_definitions = sa.Table(
    "factor_definitions",
    metadata,
    sa.Column("factor_name", sa.String(40), primary_key=True),
    sa.Column("proxy_symbol", Symbol, nullable=False, unique=True),
    sa.Column("description", sa.Text),
    sa.Column("display_order", sa.Integer, nullable=False),
)

stress_scenarios = sa.Table(
    "stress_scenarios",
    metadata,
    sa.Column("scenario_id", sa.String(64), primary_key=True),
    sa.Column("name", sa.String(120), nullable=False, unique=True),
    sa.Column("category", sa.String(32), nullable=False),
    sa.Column("severity", sa.String(32), nullable=False),
    sa.Column("period_start", sa.Date),
    sa.Column("period_end", sa.Date),
    sa.Column("display_order", sa.Integer, nullable=False),
)

stress_scenario_shocks = sa.Table(
    "stress_scenario_shocks",
    metadata,
    sa.Column("scenario_id", sa.String(64), sa.ForeignKey("stress_scenarios.scenario_id", ondelete="CASCADE"), nullable=False),
    sa.Column("factor_name", sa.String(40), nullable=False),
    sa.Column("shock", Ratio, nullable=False),
    sa.PrimaryKeyConstraint("scenario_id", "factor_name"),
)

security_master = sa.Table(
    "security_master",
    metadata,
    sa.Column("symbol", Symbol, primary_key=True),
    sa.Column("name", sa.String(200)),
    sa.Column("asset_type", sa.String(20), nullable=False),
    sa.Column("sector", sa.String(80)),
    sa.Column("industry", sa.String(120)),
    # Added by 0004_market_reference, hence last: a fund's Morningstar category, and the annual dividend
    # yield as a decimal (0.0045 = 0.45 %; the continuous yield q of Black-Scholes-Merton; NULL: unknown).
    sa.Column("category", sa.String(120)),
    sa.Column("dividend_yield", Ratio),
)

# ---------------------------------------------------------------------------------------------------
# Portfolios: the uploaded source document and the positions derived from it
# ---------------------------------------------------------------------------------------------------
portfolios = sa.Table(
    "portfolios",
    metadata,
    sa.Column("portfolio_id", Slug, primary_key=True),
    sa.Column("name", sa.String(200), nullable=False, unique=True),
    sa.Column("owner", sa.String(200)),
    sa.Column("source_csv", sa.Text, nullable=False),  # the validated upload, re-parsed by portfolio_positions
    sa.Column("source_filename", sa.String(300)),
    sa.Column("uploaded_at", sa.DateTime(timezone=True), nullable=False),
)

positions = sa.Table(
    "positions",
    metadata,
    # One row per instrument the book has held (books.md, "Trades"): the upload's rows and the imported trades
    # of one symbol are lots of ONE position. Figures are the book after its latest trade, on the split-adjusted
    # scale of market prices; the engines compute each date's book from the ledger (``engines.book``).
    sa.Column("portfolio_id", Slug, sa.ForeignKey("portfolios.portfolio_id", ondelete="CASCADE"), nullable=False),
    sa.Column("position_id", sa.Integer, nullable=False),  # 1-based, in order of first appearance
    sa.Column("symbol", Symbol, nullable=False),
    sa.Column("position_type", sa.String(5), nullable=False),  # LONG SHORT LC SC LP SP (of the latest side)
    sa.Column("quantity", Quantity, nullable=False),  # open quantity now (0 once closed)
    sa.Column("entry_price", Price, nullable=False),  # average price of the open lots (of the last lots if closed)
    sa.Column("entry_date", sa.Date, nullable=False),  # date of the oldest open lot (of the first lot if closed)
    sa.Column("underlying_symbol", Symbol, nullable=False),  # market-data symbol (VIX option -> ^VIX)
    sa.Column("option_type", sa.String(1)),
    sa.Column("strike", Price),
    sa.Column("expiration", sa.Date),
    sa.Column("multiplier", sa.Integer, nullable=False),
    sa.Column("cost_basis", Money, nullable=False),  # of the open lots
    sa.Column("source_row", sa.Integer, nullable=False),  # upload row of its first lot (0: opened by a trade)
    sa.Column("exit_date", sa.Date),  # the date the position was brought to zero (NULL while open)
    sa.Column("realized_pnl", Money, nullable=False, server_default="0"),
    sa.Column("implied_vol", Ratio),  # from the upload's optional implied_vol column (decimal)
    sa.PrimaryKeyConstraint("portfolio_id", "position_id"),
    # One row per symbol now; the constraint of the upload-row era (symbol, entry_date) still holds and is kept,
    # so that a warehouse of that era upgrades without rewriting the table.
    sa.UniqueConstraint("portfolio_id", "symbol", "entry_date", name="uq_positions_symbol_entry"),
)

trades = sa.Table(
    "trades",
    metadata,
    # The book's trade ledger (books.md, "Trades"), as imported: dated, unadjusted prices; quantity signed
    # (+ buys, - sells; options in contracts). The upload stays the book's opening holdings.
    sa.Column("portfolio_id", Slug, sa.ForeignKey("portfolios.portfolio_id", ondelete="CASCADE"), nullable=False),
    sa.Column("trade_seq", sa.Integer, nullable=False),  # 1-based, import order: the order of same-day trades
    sa.Column("trade_id", sa.String(64)),  # the file's own id; unique per portfolio when given
    sa.Column("trade_date", sa.Date, nullable=False),
    sa.Column("symbol", Symbol, nullable=False),
    sa.Column("quantity", Quantity, nullable=False),
    sa.Column("price", Price, nullable=False),
    sa.Column("fees", Money, nullable=False, server_default="0"),
    sa.Column("close_and_reverse", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("tags", sa.Text),  # comma-separated, as in the file
    sa.Column("source_file", sa.String(300)),
    sa.Column("source_row", sa.Integer, nullable=False),
    sa.Column("imported_at", sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint("portfolio_id", "trade_seq"),
    sa.UniqueConstraint("portfolio_id", "trade_id", name="uq_trades_trade_id"),
)

entry_warnings = sa.Table(
    "entry_warnings",
    metadata,
    # Entry sanity (books.md, "Market data that a real book needs"; ``quality.entries``): an option booked below
    # its intrinsic value or a stock booked more than 50% from that day's close. Imported as given; replaced
    # with the upload (source 'upload') or with the trades file of that name (0006_stress_equity).
    sa.Column("portfolio_id", Slug, sa.ForeignKey("portfolios.portfolio_id", ondelete="CASCADE"), nullable=False),
    sa.Column("source", sa.String(300), nullable=False),  # 'upload' or the trades file's name
    sa.Column("source_row", sa.Integer, nullable=False),  # the file's line (header = 1)
    sa.Column("symbol", Symbol, nullable=False),
    sa.Column("entry_date", sa.Date, nullable=False),
    sa.Column("kind", sa.String(40), nullable=False),  # option_below_intrinsic | stock_far_from_close
    sa.Column("message", sa.Text, nullable=False),
    sa.Column("reference_price", Price),  # the figure compared with, on the file's (unadjusted) scale
    sa.PrimaryKeyConstraint("portfolio_id", "source", "source_row", "kind"),
)

position_tags = sa.Table(
    "position_tags",
    metadata,
    sa.Column("portfolio_id", Slug, nullable=False),
    sa.Column("position_id", sa.Integer, nullable=False),
    sa.Column("tag", sa.String(40), nullable=False),
    sa.PrimaryKeyConstraint("portfolio_id", "position_id", "tag"),
    sa.ForeignKeyConstraint(
        ["portfolio_id", "position_id"], ["positions.portfolio_id", "positions.position_id"], ondelete="CASCADE"
    ),
)

tag_changes = sa.Table(
    "tag_changes",
    metadata,
    # Tag edits (books.md, "Tags and strategies"; ``sigmasight tags add|remove``): events of the book, applied
    # from the session of their effective date on (``engines.book``). The instrument is named by its symbol
    # (the ledger's identity of a position); position_id is the book's id of it when the change was made.
    # Added by 0009_tag_changes.
    sa.Column("portfolio_id", Slug, sa.ForeignKey("portfolios.portfolio_id", ondelete="CASCADE"), nullable=False),
    sa.Column("change_seq", sa.Integer, nullable=False),  # 1-based, the order changes were made
    sa.Column("position_id", sa.Integer, nullable=False),
    sa.Column("symbol", Symbol, nullable=False),
    sa.Column("tag", sa.String(40), nullable=False),
    sa.Column("action", sa.String(6), nullable=False),  # add | remove
    sa.Column("effective_date", sa.Date, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint("portfolio_id", "change_seq"),
    sa.CheckConstraint("action IN ('add', 'remove')", name="ck_tag_changes_action"),
)

# ---------------------------------------------------------------------------------------------------
# Market data (partitioned by date only, shared by every portfolio)
# ---------------------------------------------------------------------------------------------------
market_prices = sa.Table(
    "market_prices",
    metadata,
    sa.Column("date", sa.Date, nullable=False),
    sa.Column("symbol", Symbol, nullable=False),
    sa.Column("close", Price, nullable=False),  # adjusted close; yields (^TNX, ^IRX) in percent
    sa.Column("source", sa.String(20), nullable=False),
    sa.PrimaryKeyConstraint("date", "symbol"),
)

stock_splits = sa.Table(
    "stock_splits",
    metadata,
    sa.Column("symbol", Symbol, nullable=False),
    sa.Column("ex_date", sa.Date, nullable=False),
    sa.Column("ratio", Ratio, nullable=False),  # N / M: a 10-for-1 split is 10, a 1-for-10 reverse split 0.1
    sa.Column("source", sa.String(20), nullable=False),
    sa.PrimaryKeyConstraint("symbol", "ex_date"),
)

security_returns = sa.Table(
    "security_returns",
    metadata,
    sa.Column("date", sa.Date, nullable=False),
    sa.Column("symbol", Symbol, nullable=False),
    sa.Column("simple_return", Ratio, nullable=False),
    sa.Column("log_return", Ratio, nullable=False),
    sa.PrimaryKeyConstraint("date", "symbol"),
)

# ---------------------------------------------------------------------------------------------------
# Risk engines (date x portfolio)
# ---------------------------------------------------------------------------------------------------
position_valuations = _date_portfolio_position(
    sa.Column("price", Price),
    sa.Column("price_source", sa.String(10), nullable=False),  # market | model | missing
    sa.Column("underlying_price", Price),
    sa.Column("market_value", Money),
    sa.Column("cost_basis", Money, nullable=False),
    sa.Column("unrealized_pnl", Money),
    sa.Column("notional", Money),
    sa.Column("delta_adjusted_exposure", Money),
    sa.Column("is_long", sa.Boolean, nullable=False),
    sa.Column("quantity", Quantity),  # held that date, split-adjusted (NULL on rows written before trades)
    sa.Column("realized_pnl", Money),  # the position's realised P&L up to and including that date
    name="position_valuations",
)

portfolio_exposures = sa.Table(
    "portfolio_exposures",
    metadata,
    sa.Column("date", sa.Date, nullable=False),
    sa.Column("portfolio_id", Slug, nullable=False),
    *[
        sa.Column(c, Money)
        for c in (
            "long_exposure", "short_exposure", "gross_exposure", "net_exposure", "notional",
            "delta_adjusted_exposure", "delta_adjusted_long", "delta_adjusted_short",
            "options_exposure", "stock_exposure", "total_cost_basis", "total_unrealized_pnl",
        )
    ],
    *[
        sa.Column(c, sa.Integer, nullable=False)
        for c in ("long_count", "short_count", "option_count", "stock_count", "position_count", "missing_price_count")
    ],
    # Delta-adjusted exposure of options on a volatility index (VIX), kept out of delta_adjusted_exposure /
    # _long / _short (equity exposure). Added by 0005_option_inputs, hence last; NULL on rows written before it.
    sa.Column("volatility_delta_exposure", Money),
    sa.PrimaryKeyConstraint("date", "portfolio_id"),
)

group_exposures = sa.Table(
    "group_exposures",
    metadata,
    sa.Column("date", sa.Date, nullable=False),
    sa.Column("portfolio_id", Slug, nullable=False),
    sa.Column("group_type", sa.String(20), nullable=False),  # tag | underlying
    sa.Column("group_name", sa.String(80), nullable=False),
    sa.Column("market_value", Money),
    sa.Column("gross_exposure", Money),
    sa.Column("delta_adjusted_exposure", Money),
    sa.Column("position_count", sa.Integer, nullable=False),
    sa.Column("volatility_delta_exposure", Money),  # as in portfolio_exposures (0005_option_inputs)
    sa.PrimaryKeyConstraint("date", "portfolio_id", "group_type", "group_name"),
)

position_greeks = _date_portfolio_position(
    sa.Column("underlying_price", Price),
    sa.Column("implied_vol", Ratio),
    sa.Column("vol_source", sa.String(12), nullable=False),  # implied | realized | none
    sa.Column("days_to_expiry", sa.Integer),
    sa.Column("model_price", Price),
    *[sa.Column(c, Ratio) for c in ("delta", "gamma", "theta", "vega", "rho")],
    *[sa.Column(f"position_{c}", Ratio) for c in ("delta", "gamma", "theta", "vega", "rho")],
    sa.Column("dollar_delta", Money),
    sa.Column("dollar_gamma", Money),
    sa.Column("flag", sa.String(20), nullable=False),
    # Added by 0005_option_inputs, hence last: the continuous dividend yield q of the Black-Scholes-Merton price
    # (decimal; options only) and a note on how the option was priced (e.g. "priced off VIX spot; futures curve
    # not modelled"; NULL for every other row).
    sa.Column("dividend_yield", Ratio),
    sa.Column("pricing_note", sa.String(120)),
    name="position_greeks",
)

position_factor_exposures = _date_portfolio_position(
    sa.Column("factor_name", sa.String(40), nullable=False),
    sa.Column("beta", Ratio),
    sa.Column("t_stat", Ratio),
    sa.Column("r_squared", Ratio),
    sa.Column("n_obs", sa.Integer, nullable=False),
    sa.Column("window_start", sa.Date),  # first and last session of the regression window
    sa.Column("window_end", sa.Date),
    sa.Column("flag", sa.String(24), nullable=False),
    sa.Column("dollar_exposure", Money),
    # The symbol's regression is an exact fit (residuals numerically zero, e.g. SPY on a design containing
    # SPY): beta kept, t_stat NULL (books.md, "Numbers that must not mislead"). Added by 0002_exact_fit,
    # hence last (the column order of a migrated warehouse).
    sa.Column("exact_fit", sa.Boolean, nullable=False, server_default=sa.false()),
    # The daily standard deviation of the symbol's regression residuals, sqrt(SSR / (n_obs - 8)): the specific
    # risk of the parametric VaR (risk_measures.md). Added by 0007_risk_measures, hence last; NULL on rows
    # written before it and where there is no fit.
    sa.Column("residual_std", Ratio),
    name="position_factor_exposures",
    pk_extra=("factor_name",),
)

portfolio_factor_exposures = sa.Table(
    "portfolio_factor_exposures",
    metadata,
    sa.Column("date", sa.Date, nullable=False),
    sa.Column("portfolio_id", Slug, nullable=False),
    sa.Column("factor_name", sa.String(40), nullable=False),
    sa.Column("dollar_exposure", Money),
    sa.Column("beta_net", Ratio),  # dollar exposure / net delta-adjusted exposure
    sa.Column("beta_gross", Ratio),  # dollar exposure / gross delta-adjusted exposure
    sa.Column("positions_with_beta", sa.Integer, nullable=False),
    sa.Column("positions_without_beta", sa.Integer, nullable=False),
    sa.PrimaryKeyConstraint("date", "portfolio_id", "factor_name"),
)

factor_regression_windows = sa.Table(
    "factor_regression_windows",
    metadata,
    sa.Column("date", sa.Date, nullable=False),
    sa.Column("portfolio_id", Slug, nullable=False),
    sa.Column("window_start", sa.Date),
    sa.Column("window_end", sa.Date),
    sa.Column("n_obs", sa.Integer, nullable=False),
    sa.Column("condition_number", Ratio),
    sa.Column("max_vif", Ratio),
    sa.PrimaryKeyConstraint("date", "portfolio_id"),
)

factor_correlations = sa.Table(
    "factor_correlations",
    metadata,
    sa.Column("date", sa.Date, nullable=False),
    sa.Column("portfolio_id", Slug, nullable=False),
    sa.Column("factor_a", sa.String(40), nullable=False),
    sa.Column("factor_b", sa.String(40), nullable=False),
    sa.Column("correlation", Ratio),
    sa.Column("covariance", Ratio),
    sa.Column("high_correlation", sa.Boolean, nullable=False),
    sa.PrimaryKeyConstraint("date", "portfolio_id", "factor_a", "factor_b"),
)

position_rate_sensitivity = _date_portfolio_position(
    sa.Column("rate_beta", Ratio),  # return per +1 bp of the 10y yield
    sa.Column("t_stat", Ratio),
    sa.Column("r_squared", Ratio),
    sa.Column("n_obs", sa.Integer, nullable=False),
    sa.Column("flag", sa.String(24), nullable=False),
    sa.Column("dollar_per_bp", Money),
    name="position_rate_sensitivity",
)

portfolio_rate_sensitivity = sa.Table(
    "portfolio_rate_sensitivity",
    metadata,
    sa.Column("date", sa.Date, nullable=False),
    sa.Column("portfolio_id", Slug, nullable=False),
    *[
        sa.Column(c, Money)
        for c in (
            "dollar_per_bp",
            "pnl_rates_up_100bp", "pnl_rates_down_100bp", "pnl_rates_up_200bp", "pnl_rates_down_200bp",
            "pnl_market_up_5", "pnl_market_down_5", "pnl_market_up_10", "pnl_market_down_10",
            "pnl_market_up_20", "pnl_market_down_20",
        )
    ],
    sa.PrimaryKeyConstraint("date", "portfolio_id"),
)

position_correlations = sa.Table(
    "position_correlations",
    metadata,
    sa.Column("date", sa.Date, nullable=False),
    sa.Column("portfolio_id", Slug, nullable=False),
    sa.Column("position_a", sa.Integer, nullable=False),
    sa.Column("position_b", sa.Integer, nullable=False),
    sa.Column("correlation", Ratio, nullable=False),
    sa.Column("n_obs", sa.Integer, nullable=False),
    sa.PrimaryKeyConstraint("date", "portfolio_id", "position_a", "position_b"),
    sa.CheckConstraint("position_a < position_b", name="ck_position_correlations_upper_triangle"),
)

correlation_summaries = sa.Table(
    "correlation_summaries",
    metadata,
    sa.Column("date", sa.Date, nullable=False),
    sa.Column("portfolio_id", Slug, nullable=False),
    sa.Column("positions_included", sa.Integer, nullable=False),
    sa.Column("overall_correlation", Ratio),
    sa.Column("concentration_score", Ratio),
    sa.Column("effective_positions", Ratio),
    sa.Column("clusters", sa.Integer, nullable=False),
    sa.PrimaryKeyConstraint("date", "portfolio_id"),
)

correlation_clusters = sa.Table(
    "correlation_clusters",
    metadata,
    sa.Column("date", sa.Date, nullable=False),
    sa.Column("portfolio_id", Slug, nullable=False),
    sa.Column("cluster_id", sa.Integer, nullable=False),
    sa.Column("cluster_name", sa.String(120), nullable=False),
    sa.Column("position_id", sa.Integer, nullable=False),
    sa.PrimaryKeyConstraint("date", "portfolio_id", "cluster_id", "position_id"),
)

# ---------------------------------------------------------------------------------------------------
# Stress, snapshots, reports (date x portfolio)
# ---------------------------------------------------------------------------------------------------
stress_results = sa.Table(
    "stress_results",
    metadata,
    sa.Column("date", sa.Date, nullable=False),
    sa.Column("portfolio_id", Slug, nullable=False),
    sa.Column("scenario_id", sa.String(64), nullable=False),
    sa.Column("direct_pnl", Money, nullable=False),
    sa.Column("correlated_pnl", Money, nullable=False),
    sa.Column("correlation_effect", Money, nullable=False),
    sa.Column("pct_of_gross_exposure", Ratio),  # correlated P&L / gross_exposure (named for its base)
    sa.Column("gross_exposure", Money),
    sa.Column("loss_cap_applied", sa.Boolean, nullable=False),
    sa.Column("flag", sa.String(200), nullable=False),
    # Losses against equity (books.md, "Numbers that must not mislead"; 0006_stress_equity): equity = the book's
    # net liquidation value = its net exposure (no cash modelled); pct_of_equity = correlated P&L / equity, NULL
    # when equity <= 0 (flag "equity_nonpositive"); exceeds_equity: the worse loss is beyond equity.
    sa.Column("equity", Money),
    sa.Column("pct_of_equity", Ratio),
    sa.Column("exceeds_equity", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.PrimaryKeyConstraint("date", "portfolio_id", "scenario_id"),
)

stress_factor_breakdown = sa.Table(
    "stress_factor_breakdown",
    metadata,
    sa.Column("date", sa.Date, nullable=False),
    sa.Column("portfolio_id", Slug, nullable=False),
    sa.Column("scenario_id", sa.String(64), nullable=False),
    sa.Column("factor_name", sa.String(40), nullable=False),
    sa.Column("shock", Ratio),
    sa.Column("implied_move", Ratio),
    sa.Column("direct_pnl", Money, nullable=False),
    sa.Column("correlated_pnl", Money, nullable=False),
    sa.PrimaryKeyConstraint("date", "portfolio_id", "scenario_id", "factor_name"),
)

# ---------------------------------------------------------------------------------------------------
# Risk measures: VaR, expected shortfall, contributions, backtest (date x portfolio; risk_measures.md;
# 0007_risk_measures). Figures are double precision, not NUMERIC(20, 2): contributions must add up to their
# totals to 1e-9 relative, which cents would break; reports format money to 2 decimals.
# ---------------------------------------------------------------------------------------------------
portfolio_risk_measures = sa.Table(
    "portfolio_risk_measures",
    metadata,
    sa.Column("date", sa.Date, nullable=False),
    sa.Column("portfolio_id", Slug, nullable=False),
    sa.Column("method", sa.String(16), nullable=False),  # historical | parametric
    # var | es | scenarios | filled_returns | volatility | volatility_of_equity | tracking_error |
    # tracking_error_of_equity | factor_share | specific_share
    sa.Column("measure", sa.String(32), nullable=False),
    sa.Column("level", Ratio, nullable=False),  # confidence level (0.99); 0 for a measure without one
    sa.Column("horizon_days", sa.Integer, nullable=False),  # 1; 10 (= 1 day x sqrt(10), flag scaled_sqrt10); 252
    sa.Column("value", Ratio),  # dollars (VaR and ES positive losses), a fraction, or a count; NULL: not computed
    sa.Column("flag", sa.Text, nullable=False),  # notes joined by ';' ("ok" when none), e.g. limited_history
    sa.PrimaryKeyConstraint("date", "portfolio_id", "method", "measure", "level", "horizon_days"),
)

position_risk_contributions = _date_portfolio_position(
    sa.Column("method", sa.String(16), nullable=False),  # historical | parametric
    sa.Column("measure", sa.String(32), nullable=False),  # es (historical) | volatility (parametric, 1-day sigma)
    sa.Column("level", Ratio, nullable=False),  # the ES level; 0 for volatility
    sa.Column("contribution", Ratio, nullable=False),  # Euler contribution, dollars; they add up to the measure
    sa.Column("marginal", Ratio),  # d sigma / d exposure (parametric); NULL for historical ES
    sa.Column("share", Ratio),  # contribution / the measure (NULL when it is 0)
    name="position_risk_contributions",
    pk_extra=("method", "measure", "level"),
)

factor_risk_contributions = sa.Table(
    "factor_risk_contributions",
    metadata,
    # The parametric 1-day sigma split over factors and specific risk (Euler): the rows of a date add up to it.
    sa.Column("date", sa.Date, nullable=False),
    sa.Column("portfolio_id", Slug, nullable=False),
    sa.Column("factor_name", sa.String(40), nullable=False),  # a factor, or "Specific"
    sa.Column("dollar_exposure", Ratio),  # x_f = sum of exposure x beta (NULL for Specific)
    sa.Column("contribution", Ratio, nullable=False),  # x_f (F x)_f / sigma; Specific: sum (e s)^2 / sigma
    sa.Column("marginal", Ratio),  # (F x)_f / sigma (NULL for Specific)
    sa.Column("share", Ratio),  # contribution / sigma
    sa.PrimaryKeyConstraint("date", "portfolio_id", "factor_name"),
)

risk_backtest = sa.Table(
    "risk_backtest",
    metadata,
    # The 99% historical VaR of the previous session against the day's realised P&L (the snapshot's), and the
    # last 250 such sessions: exceptions, Kupiec's proportion-of-failures test, the Basel traffic light.
    sa.Column("date", sa.Date, nullable=False),
    sa.Column("portfolio_id", Slug, nullable=False),
    sa.Column("var_date", sa.Date, nullable=False),  # the previous session, whose VaR is tested
    sa.Column("var_99", Ratio, nullable=False),  # positive loss
    sa.Column("realized_pnl", Ratio, nullable=False),
    sa.Column("exception", sa.Boolean, nullable=False),  # realized_pnl < -var_99
    sa.Column("window_sessions", sa.Integer, nullable=False),  # backtested sessions in the window (<= 250)
    sa.Column("exceptions", sa.Integer, nullable=False),  # in the window
    sa.Column("kupiec_lr", Ratio),
    sa.Column("kupiec_p_value", Ratio),
    sa.Column("zone", sa.String(8), nullable=False),  # green | yellow | red
    sa.PrimaryKeyConstraint("date", "portfolio_id"),
)

position_daily_pnl = _date_portfolio_position(
    sa.Column("daily_pnl", Money),  # NULL when the day's price is missing (pnl_basis "missing_price"), never 0
    sa.Column("pnl_basis", sa.String(16), nullable=False),
    sa.Column("quantity", Quantity),  # held at the end of the day (0: closed that day)
    sa.Column("trade_cash", Money),  # net cash paid for the day's trades (buys +, sales -), fees included
    sa.Column("realized_pnl", Money),  # realised that day (FIFO), fees deducted
    name="position_daily_pnl",
)

portfolio_snapshots = sa.Table(
    "portfolio_snapshots",
    metadata,
    sa.Column("date", sa.Date, nullable=False),
    sa.Column("portfolio_id", Slug, nullable=False),
    *[
        sa.Column(c, Money)
        for c in (
            "total_value", "long_exposure", "short_exposure", "gross_exposure", "net_exposure",
            "delta_adjusted_exposure", "notional", "dollar_delta", "dollar_gamma",
            "daily_pnl", "cumulative_pnl",
        )
    ],
    *[
        sa.Column(c, sa.Integer, nullable=False)
        for c in ("position_count", "long_count", "short_count", "option_count", "stock_count", "missing_price_count")
    ],
    *[sa.Column(f"portfolio_{c}", Ratio) for c in ("delta", "gamma", "theta", "vega", "rho")],
    sa.Column("daily_return", Ratio),
    sa.Column("is_first_snapshot", sa.Boolean, nullable=False),
    sa.Column("pnl_basis", sa.String(16), nullable=False),
    sa.Column("realized_pnl", Money),  # realised that day (part of daily_pnl)
    sa.Column("cumulative_realized_pnl", Money),  # realised since the book's first trade, up to that day
    sa.PrimaryKeyConstraint("date", "portfolio_id"),
)

# ---------------------------------------------------------------------------------------------------
# Performance and P&L attribution (date x portfolio; risk_measures.md; 0008_performance_attribution)
# ---------------------------------------------------------------------------------------------------
portfolio_performance = sa.Table(
    "portfolio_performance",
    metadata,
    # One row per window (engines.performance.WINDOWS: mtd, ytd, 21d, 63d, 126d, 252d, inception) ending on the
    # date, from the snapshots' daily returns (a first snapshot has none). Conventions of empyrical: see
    # engines/performance.py. Fewer than 2 returns: every statistic NULL, flag insufficient_returns, reason why.
    sa.Column("date", sa.Date, nullable=False),
    sa.Column("portfolio_id", Slug, nullable=False),
    sa.Column("window_name", sa.String(16), nullable=False),
    sa.Column("window_start", sa.Date),  # first session of the window (inception: of the first return)
    sa.Column("first_return_date", sa.Date),  # first return inside the window
    sa.Column("window_sessions", sa.Integer, nullable=False),  # XNYS sessions from window_start to date
    sa.Column("n_returns", sa.Integer, nullable=False),  # daily returns in the window (< sessions: limited)
    *[sa.Column(c, Ratio) for c in (
        "cumulative_return", "annualized_return", "annual_volatility", "sharpe_ratio", "sortino_ratio",
        "max_drawdown")],
    sa.Column("peak_date", sa.Date),  # the index's last high before the trough (NULL: no drawdown)
    sa.Column("trough_date", sa.Date),
    sa.Column("current_drawdown", Ratio),
    sa.Column("calmar_ratio", Ratio),
    sa.Column("best_day", Ratio),
    sa.Column("best_day_date", sa.Date),
    sa.Column("worst_day", Ratio),
    sa.Column("worst_day_date", sa.Date),
    *[sa.Column(c, Ratio) for c in (
        "positive_days_share", "beta", "alpha", "correlation", "tracking_error", "market_return")],
    sa.Column("flag", sa.String(24), nullable=False),  # ok | limited_history | insufficient_returns
    sa.Column("reason", sa.Text),  # why a figure is missing or rests on fewer returns than sessions
    sa.PrimaryKeyConstraint("date", "portfolio_id", "window_name"),
)

pnl_attribution = sa.Table(
    "pnl_attribution",
    metadata,
    # The day's snapshot P&L by line: one per factor (X_(f,t-1) F_(f,t)), "specific", "residual"; the lines of a
    # date add up to the snapshot's daily_pnl to the cent (engines/attribution.py). A first snapshot has none.
    sa.Column("date", sa.Date, nullable=False),
    sa.Column("portfolio_id", Slug, nullable=False),
    sa.Column("line", sa.String(40), nullable=False),  # factor name | specific | residual
    sa.Column("line_type", sa.String(10), nullable=False),  # factor | specific | residual
    sa.Column("line_order", sa.Integer, nullable=False),  # factors in model order, then specific, residual
    sa.Column("previous_date", sa.Date, nullable=False),  # t-1: the session whose exposures are used
    sa.Column("exposure", Money),  # factor lines: the dollar exposure of t-1
    sa.Column("factor_return", Ratio),  # factor lines: the factor's return on t
    sa.Column("pnl", Money),  # NULL when the line could not be computed (flag says why; residual carries it)
    sa.Column("flag", sa.String(200)),
    sa.PrimaryKeyConstraint("date", "portfolio_id", "line"),
)

portfolio_reports = sa.Table(
    "portfolio_reports",
    metadata,
    sa.Column("date", sa.Date, nullable=False),
    sa.Column("portfolio_id", Slug, nullable=False),
    sa.Column("report_dir", sa.Text, nullable=False),
    sa.Column("generated_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("engines_available", sa.Integer, nullable=False),
    sa.Column("engines_missing", sa.Integer, nullable=False),
    sa.PrimaryKeyConstraint("date", "portfolio_id"),
)

# ---------------------------------------------------------------------------------------------------
# API access (api.md, "Who may see what")
# ---------------------------------------------------------------------------------------------------
api_keys = sa.Table(
    "api_keys",
    metadata,
    # The token is ``ssk_<key_id>_<secret>``; only the SHA-256 of the whole token is stored (warehouse/api_keys.py).
    sa.Column("key_id", sa.String(16), primary_key=True),
    sa.Column("key_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("owner", sa.String(200), nullable=False),  # sees the portfolios whose ``portfolios.owner`` is this
    sa.Column("is_operator", sa.Boolean, nullable=False),  # sees every portfolio and may call /operations
    sa.Column("label", sa.String(200)),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("revoked_at", sa.DateTime(timezone=True)),
    # Use, added by the API in batches: answered requests, requests refused by the rate limit, the latest request.
    sa.Column("request_count", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("rate_limited_count", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("last_used_at", sa.DateTime(timezone=True)),
)
