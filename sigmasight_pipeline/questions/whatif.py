"""What-if: hypothetical trades applied to a stored book on one date, and what they do to its risk.

The book as of date D is the portfolio's stored ledger (upload, trades, splits); the hypothetical trades (the
trades CSV format, dated on or before D) are appended to it in memory (``warehouse.book.read_ledger`` with
``extra_trades``), under the same book rules as an import (no sale through zero without close-and-reverse).
Both books, before and after, then go through the assets' own compute functions on the stored market data,
in memory (``defs.date_portfolio.InMemoryBatch``): Greeks, valuations and exposures, factor exposures, rate
sensitivity, stress (every stored scenario) and the risk measures (historical and parametric VaR / ES, Euler
contributions). One place computes each number, for a stored partition and a what-if alike; nothing is
written.

The figures compared (books.md, "Questions asked of a book"): value, gross / net / delta-adjusted exposure,
the Greeks, factor dollar exposures and betas, VaR and ES, the five worst stress scenarios, and the top risk
contributors, each before / after / change.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from sigmasight_pipeline.defs.date_portfolio import InMemoryBatch
from sigmasight_pipeline.defs.risk.factor_exposures import compute_factor_exposures
from sigmasight_pipeline.defs.risk.greeks import compute_greeks
from sigmasight_pipeline.defs.risk.inputs import market_symbols
from sigmasight_pipeline.defs.risk.rate_sensitivity import compute_rate_sensitivity
from sigmasight_pipeline.defs.risk.valuation import compute_valuations
from sigmasight_pipeline.defs.risk_measures.risk_measures import risk_inputs
from sigmasight_pipeline.defs.stress.stress_results import stress_inputs
from sigmasight_pipeline.engines import risk_measures as rm
from sigmasight_pipeline.engines.book import Ledger, positions_on
from sigmasight_pipeline.engines.factors import MARKET
from sigmasight_pipeline.engines.snapshots import greek_totals
from sigmasight_pipeline.engines.stress import stress_test_range
from sigmasight_pipeline.marketdata import calendar as xcal
from sigmasight_pipeline.onboarding.portfolio_csv import RowError
from sigmasight_pipeline.onboarding.trades_csv import TradesValidationError, parse_trades_csv
from sigmasight_pipeline.warehouse import schema
from sigmasight_pipeline.warehouse.book import engine_positions, ledger_with_trades, trade_rows
from sigmasight_pipeline.warehouse.io import read_frame
from sigmasight_pipeline.warehouse.portfolios import get_portfolio
from sigmasight_pipeline.warehouse.reads import market_window
from sigmasight_pipeline.warehouse.reference import factor_definitions, read_scenarios

__all__ = ["BookFigures", "WhatIf", "WhatIfError", "book_figures", "what_if", "whatif_json", "whatif_markdown"]

#: The JSON document ``whatif_json`` writes validates against this schema.
SCHEMA_PATH = Path(__file__).resolve().parents[1] / "data" / "whatif.schema.json"

EXPOSURE_FIGURES = [  # (label, portfolio_exposures column)
    ("Market value (net)", "net_exposure"), ("Long exposure", "long_exposure"), ("Short exposure", "short_exposure"),
    ("Gross exposure", "gross_exposure"), ("Delta-adjusted exposure", "delta_adjusted_exposure"),
    ("Volatility delta exposure (VIX options)", "volatility_delta_exposure"), ("Positions", "position_count"),
]
GREEK_FIGURES = [  # (label, greek_totals column)
    ("Dollar delta", "dollar_delta"), ("Dollar gamma (change in dollar delta for a 1% move)", "dollar_gamma"), ("Theta (per day)", "portfolio_theta"),
    ("Vega (per vol point)", "portfolio_vega"), ("Rho (per 1% rate)", "portfolio_rho"),
]
RISK_FIGURES = [  # (label, method, measure, level): 1-day
    ("Historical VaR 95%", rm.HISTORICAL, "var", 0.95), ("Historical VaR 99%", rm.HISTORICAL, "var", 0.99),
    ("Historical ES 97.5%", rm.HISTORICAL, "es", 0.975), ("Historical ES 99%", rm.HISTORICAL, "es", 0.99),
    ("Parametric VaR 99%", rm.PARAMETRIC, "var", 0.99), ("Parametric ES 97.5%", rm.PARAMETRIC, "es", 0.975),
]
WORST_SCENARIOS = 5
TOP_CONTRIBUTORS = 5


class WhatIfError(ValueError):
    """A what-if that cannot be answered: unknown portfolio or date, bad trades (``errors`` by row), a symbol
    without stored market data."""

    def __init__(self, message: str, errors: list[RowError] | None = None):
        self.errors = list(errors or [])
        detail = "".join(f"\n  {e}" for e in self.errors)
        super().__init__(message + detail)


@dataclass
class BookFigures:
    """One book on one date, as the engines compute it."""

    positions: pd.DataFrame  # the book held (engines' columns)
    exposures: pd.Series  # portfolio_exposures of the date
    greeks: pd.Series  # greek_totals of the date
    factors: pd.DataFrame  # factor_name -> dollar_exposure, beta_net
    risk: pd.Series  # (method, measure, level) -> 1-day value
    risk_flags: list[str]
    stress: pd.DataFrame  # scenario_id, name, direct_pnl, correlated_pnl, pct_of_equity, exceeds_equity
    contributions: pd.DataFrame  # position_id, symbol, es_contribution (97.5% historical), es_share, sigma_share


@dataclass
class WhatIf:
    portfolio_id: str
    name: str
    as_of: pd.Timestamp
    trades: pd.DataFrame  # the hypothetical trades as ledger rows (trades table columns)
    before: BookFigures
    after: BookFigures
    elapsed_s: float = 0.0
    notes: list[str] = field(default_factory=list)


def _context(engine: Engine) -> dict:
    definitions = factor_definitions()
    proxies = dict(zip(definitions.factor_name, definitions.proxy_symbol))
    scenarios, shocks = read_scenarios(engine)
    return {"proxies": proxies, "factors": list(proxies), "market_proxy": proxies[MARKET],
            "scenarios": scenarios, "shocks": shocks}


def book_figures(engine: Engine, portfolio_id: str, ledger: Ledger, as_of: pd.Timestamp, ctx: dict | None = None) -> BookFigures:
    """The book of ``ledger`` held at the close of session ``as_of`` through the assets' compute functions, in
    memory: the same numbers a materialization of that date would store for that book."""
    ctx = ctx or _context(engine)
    sessions = pd.DatetimeIndex([as_of])
    book = positions_on(ledger, as_of)
    positions = engine_positions(engine, book)
    batch = InMemoryBatch(portfolio_id, sessions, sessions, {}, positions, ledger, flat=book.empty)
    if batch.flat:  # every position closed: zero exposures, nothing else to measure
        batch.keep(compute_valuations(engine, batch))
        return _figures(batch, positions, pd.DataFrame(), None, ctx)
    _missing_prices(engine, positions, as_of)
    greeks, _ = compute_greeks(engine, batch)
    batch.keep({schema.position_greeks: greeks})
    batch.keep(compute_valuations(engine, batch))
    batch.keep(compute_factor_exposures(engine, batch, ctx["proxies"]))
    batch.keep(compute_rate_sensitivity(engine, batch))
    stress = stress_test_range(positions=positions, **stress_inputs(engine, batch), scenarios=ctx["scenarios"],
                               shocks=ctx["shocks"], dates=sessions)
    risk = rm.risk_measures_range(**risk_inputs(engine, batch, ctx["factors"], ctx["market_proxy"]))
    return _figures(batch, positions, stress.results, risk, ctx)


def _missing_prices(engine: Engine, positions: pd.DataFrame, as_of: pd.Timestamp) -> None:
    """Refuse a book with a symbol the stored market data does not price on ``as_of`` (a stock's close, an
    option's underlying): its figures would silently leave it out."""
    prices = market_window(engine, market_symbols(positions), pd.DatetimeIndex([as_of]), 1).prices
    needed = positions["underlying_symbol"].where(positions["is_option"].astype(bool), positions["symbol"])
    close = prices.reindex(columns=sorted(set(needed))).iloc[-1] if len(prices) else pd.Series(dtype=float)
    missing = sorted(s for s in set(needed) if pd.isna(close.get(s, np.nan)))
    if missing:
        raise WhatIfError(
            f"no stored close on {as_of:%Y-%m-%d} for {', '.join(missing)}: a what-if runs on the stored market "
            "data, and a symbol no book has held has no history yet. Onboard or trade it in a book (its history is "
            "loaded by market_prices), then ask again."
        )


def _figures(batch: InMemoryBatch, positions: pd.DataFrame, stress: pd.DataFrame, risk: rm.RiskMeasures | None,
             ctx: dict) -> BookFigures:
    expo = batch.stored(None, schema.portfolio_exposures)
    exposures = expo.iloc[0] if len(expo) else pd.Series(dtype=float)
    greeks = greek_totals(batch.stored(None, schema.position_greeks), batch.sessions).iloc[0]
    factors = batch.stored(None, schema.portfolio_factor_exposures)
    factors = (factors.set_index("factor_name")[["dollar_exposure", "beta_net"]].reindex(ctx["factors"])
               if len(factors) else pd.DataFrame(columns=["dollar_exposure", "beta_net"]))
    risk_values, flags, contributions = pd.Series(dtype=float), [], pd.DataFrame(
        columns=["position_id", "symbol", "es_contribution", "es_share", "sigma_share"])
    if risk is not None:
        m = risk.measures[risk.measures["horizon_days"] == 1]
        risk_values = m.set_index(["method", "measure", m["level"].round(6)])["value"]
        flags = sorted({str(f) for f in m["flag"].dropna() if str(f)})
        pc = risk.position_contributions
        hist = pc[(pc["method"] == rm.HISTORICAL) & np.isclose(pc["level"], 0.975)]
        par = pc[pc["method"] == rm.PARAMETRIC].set_index("position_id")["share"]
        contributions = pd.DataFrame({
            "position_id": hist["position_id"].to_numpy(),
            "es_contribution": hist["contribution"].to_numpy(dtype=float),
            "es_share": hist["share"].to_numpy(dtype=float),
            "sigma_share": hist["position_id"].map(par).to_numpy(dtype=float),
        }).merge(positions[["position_id", "symbol"]], on="position_id", how="left")
    if len(stress):
        stress = stress.merge(ctx["scenarios"][["scenario_id", "name"]], on="scenario_id", how="left")[
            ["scenario_id", "name", "direct_pnl", "correlated_pnl", "pct_of_equity", "exceeds_equity"]]
    return BookFigures(positions, exposures, greeks, factors, risk_values, flags, stress, contributions)


def latest_computed_date(engine: Engine, portfolio_id: str) -> pd.Timestamp | None:
    """The portfolio's latest stored snapshot date (the default as-of date of a what-if)."""
    t = schema.portfolio_snapshots
    got = read_frame(engine, sa.select(sa.func.max(t.c.date).label("date")).where(t.c.portfolio_id == portfolio_id))
    value = got["date"].iloc[0] if len(got) else None
    return None if value is None or pd.isna(value) else pd.Timestamp(value)


def what_if(engine: Engine, portfolio: str, trades_csv: str | bytes, as_of=None) -> WhatIf:
    """Apply the trades of ``trades_csv`` (the trades CSV format; every trade dated on or before the as-of date)
    to ``portfolio`` (id or exact name) as of ``as_of`` (default: its latest computed date) and compute the
    book's figures before and after. Raises :class:`WhatIfError` naming what is wrong; writes nothing."""
    import time

    started = time.perf_counter()
    book = get_portfolio(engine, portfolio)
    pid = book["portfolio_id"]
    if as_of is None:
        as_of = latest_computed_date(engine, pid)
        if as_of is None:
            raise WhatIfError(f"portfolio {pid!r} has no computed date yet: give --as-of or backfill it first")
    as_of = pd.Timestamp(as_of).normalize()
    if not xcal.is_session(as_of):
        raise WhatIfError(f"{as_of:%Y-%m-%d} is not an XNYS session: a what-if is asked of a trading day's close")
    try:
        parsed = parse_trades_csv(trades_csv, today=max(as_of.date(), dt.date.today()))
    except TradesValidationError as exc:
        raise WhatIfError("the trades file has errors (nothing was computed):", exc.errors) from None
    late = [RowError(t.row, "trade_date", t.trade_date.isoformat(), f"after the what-if's as-of date {as_of:%Y-%m-%d}")
            for t in parsed if pd.Timestamp(t.trade_date) > as_of]
    if late:
        raise WhatIfError("the trades file has errors (nothing was computed):", late)
    rows = trade_rows(pid, parsed, filename="what-if")
    before_ledger, _ = ledger_with_trades(engine, pid, None)
    after_ledger, errors = ledger_with_trades(engine, pid, rows)
    if errors:
        raise WhatIfError("the trades do not apply to the book (nothing was computed):", errors)
    ctx = _context(engine)
    before = book_figures(engine, pid, before_ledger, as_of, ctx)
    after = book_figures(engine, pid, after_ledger, as_of, ctx)
    return WhatIf(pid, book["name"], as_of, rows, before, after, time.perf_counter() - started)


# --- presentation -------------------------------------------------------------------------------------------

def comparison(result: WhatIf) -> dict[str, pd.DataFrame]:
    """The before / after / change tables of a what-if, by section (the Markdown and the JSON show these)."""
    b, a = result.before, result.after

    def table(rows: list[tuple[str, float, float]]) -> pd.DataFrame:
        frame = pd.DataFrame(rows, columns=["figure", "before", "after"]).astype({"before": float, "after": float})
        return frame.assign(change=frame["after"] - frame["before"])

    def get(series, key) -> float:
        value = series.get(key, np.nan) if len(series) else np.nan
        return float(value) if value is not None and not pd.isna(value) else np.nan

    out = {
        "value_and_exposures": table([(label, get(b.exposures, c), get(a.exposures, c)) for label, c in EXPOSURE_FIGURES]),
        "greeks": table([(label, get(b.greeks, c), get(a.greeks, c)) for label, c in GREEK_FIGURES]),
        "risk": table([(label, get(b.risk, (m, k, round(lv, 6))), get(a.risk, (m, k, round(lv, 6))))
                       for label, m, k, lv in RISK_FIGURES]),
    }
    factors = list(dict.fromkeys([*b.factors.index, *a.factors.index]))
    for key, column in (("factor_exposures", "dollar_exposure"), ("factor_betas", "beta_net")):
        out[key] = table([(f, get(b.factors[column], f), get(a.factors[column], f)) for f in factors])
    worst = a.stress.nsmallest(WORST_SCENARIOS, "correlated_pnl") if len(a.stress) else a.stress
    before_pnl = b.stress.set_index("scenario_id")["correlated_pnl"] if len(b.stress) else pd.Series(dtype=float)
    out["worst_scenarios"] = table([(r.name, get(before_pnl, r.scenario_id), r.correlated_pnl) for r in worst.itertuples()])
    top = a.contributions.nlargest(TOP_CONTRIBUTORS, "es_contribution")
    before_es = b.contributions.set_index("position_id")["es_contribution"]
    out["top_contributors"] = table([(f"{r.symbol} ({r.position_id})", get(before_es, r.position_id), r.es_contribution)
                                     for r in top.itertuples()])
    return out


def _trades_table(result: WhatIf) -> pd.DataFrame:
    t = result.trades
    return pd.DataFrame({"trade_date": pd.to_datetime(t["trade_date"]).dt.strftime("%Y-%m-%d"), "symbol": t["symbol"],
                         "quantity": t["quantity"], "price": t["price"], "fees": t["fees"]})


def whatif_markdown(result: WhatIf) -> str:
    """The what-if as Markdown: the trades, then one before / after / change table per section."""
    titles = {
        "value_and_exposures": "Value and exposures ($)", "greeks": "Greeks",
        "factor_exposures": "Factor dollar exposures ($)", "factor_betas": "Factor betas (net: of equity)",
        "risk": "VaR and expected shortfall (1-day, $)",
        "worst_scenarios": "Five worst stress scenarios after the trades (correlated P&L, $)",
        "top_contributors": "Top contributors to the 97.5% historical ES after the trades ($)",
    }
    lines = [f"# What-if: {result.name} ({result.portfolio_id}) as of {result.as_of:%Y-%m-%d}", "",
             "Hypothetical trades applied in memory to the stored book; nothing was stored. Every figure is "
             "computed by the pipeline's own engines on the stored market data of that date.", "",
             "## Trades", "", _trades_table(result).to_markdown(index=False, floatfmt=",.2f"), ""]
    for key, frame in comparison(result).items():
        fmt = ",.4f" if key == "factor_betas" else ",.2f"
        lines += [f"## {titles[key]}", "", frame.to_markdown(index=False, floatfmt=fmt) if len(frame) else "_none_", ""]
    flags = sorted(set(result.before.risk_flags) | set(result.after.risk_flags))
    if flags:
        lines += ["Risk measure flags: " + "; ".join(flags), ""]
    lines.append(f"_Computed in {result.elapsed_s:.2f} s._")
    return "\n".join(lines) + "\n"


def whatif_json(result: WhatIf) -> dict:
    """The what-if as a JSON-ready dict (validates against ``data/whatif.schema.json``): ``null`` for a figure
    a book does not have (e.g. no VIX options)."""

    def records(frame: pd.DataFrame) -> list[dict]:
        clean = frame.astype(object).where(frame.notna(), None)
        return [{k: (float(v) if isinstance(v, (float, np.floating)) else v) for k, v in row.items()}
                for row in clean.to_dict("records")]

    return {
        "portfolio_id": result.portfolio_id, "portfolio_name": result.name, "as_of": f"{result.as_of:%Y-%m-%d}",
        "trades": records(_trades_table(result)),
        "sections": {key: records(frame) for key, frame in comparison(result).items()},
        "risk_flags": sorted(set(result.before.risk_flags) | set(result.after.risk_flags)),
        "elapsed_seconds": round(result.elapsed_s, 3),
    }


def validate_whatif_json(document: dict) -> None:
    """Raise ``jsonschema.ValidationError`` unless ``document`` matches the what-if schema."""
    import jsonschema

    jsonschema.validate(document, json.loads(SCHEMA_PATH.read_text()))
