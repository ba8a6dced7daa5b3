"""Ad-hoc stress: the scenarios of a scenario file applied to a stored book on one date, in memory.

The scenario file has the format of ``data/stress_scenarios.yaml`` and goes through its validator
(``warehouse.reference.parse_scenarios``: every problem named by scenario and field). The book of portfolio P
as of date D is its stored ledger (``warehouse.book.read_ledger``, ``engines.book.positions_on``,
``warehouse.book.engine_positions``); the inputs are the stored rows that ``stress_results`` reads for D
(``defs.stress.stress_results.stress_inputs``: valuations, Greeks, position and rate betas, factor covariance,
short rate), and ``engines.stress.stress_test_range`` computes direct and correlated P&L and the per-factor
breakdown. Same engine, same inputs: the stored scenario file reproduces the stored ``stress_results`` and
``stress_factor_breakdown`` rows of D. Nothing is written, the scenario file is only read.

The rows returned are shaped as the warehouse would store them (``warehouse.io`` rounds money to cents on a
write): money in cents, ratios (percentages, shocks, implied moves) at full precision.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from sigmasight_pipeline.defs.date_portfolio import PortfolioBatch
from sigmasight_pipeline.defs.stress.stress_results import stress_inputs
from sigmasight_pipeline.engines.book import positions_on
from sigmasight_pipeline.engines.stress import BREAKDOWN_COLUMNS, RESULT_COLUMNS, stress_test_range
from sigmasight_pipeline.reporting.formatting import format_decimal, is_missing, md_inline, md_money, md_pct
from sigmasight_pipeline.warehouse import schema
from sigmasight_pipeline.warehouse.book import engine_positions, read_ledger
from sigmasight_pipeline.warehouse.io import read_frame, stored_form
from sigmasight_pipeline.warehouse.portfolios import get_portfolio
from sigmasight_pipeline.warehouse.reference import INTEREST_RATE_FACTOR, factor_definitions

__all__ = ["AdhocStress", "AdhocStressError", "INPUT_TABLES", "adhoc_stress", "adhoc_stress_json",
           "adhoc_stress_markdown", "dumps", "stress_dates"]

#: The stored inputs without which ``stress_results`` refuses a date (the valuations and the factor covariance).
INPUT_TABLES = (schema.position_valuations, schema.factor_correlations)
#: The per-scenario figures of the JSON answer, in its order.
FIGURES = ["direct_pnl", "correlated_pnl", "correlation_effect", "pct_of_gross_exposure", "pct_of_equity",
           "exceeds_equity", "loss_cap_applied"]


class AdhocStressError(ValueError):
    """A stress question that cannot be answered on the stored data (no computed date, a date without the stored
    inputs, a book that holds nothing); the message says which dates exist."""


@dataclass(frozen=True)
class AdhocStress:
    """The answer: ``results`` one row per scenario (``RESULT_COLUMNS`` plus ``name, category, severity``, in the
    file's order), ``breakdown`` the per-factor rows (``BREAKDOWN_COLUMNS``), both as the warehouse would store
    them; ``source`` names the scenario file."""

    portfolio_id: str
    portfolio_name: str
    as_of: pd.Timestamp
    source: str
    results: pd.DataFrame
    breakdown: pd.DataFrame


def stress_dates(engine: Engine, portfolio_id: str) -> pd.DatetimeIndex:
    """The dates on which ``portfolio_id`` has every stored input of :data:`INPUT_TABLES`, ascending."""
    dates = None
    for table in INPUT_TABLES:
        got = read_frame(engine, sa.select(table.c.date).distinct().where(table.c.portfolio_id == portfolio_id))
        have = pd.DatetimeIndex(got["date"])
        dates = have if dates is None else dates.intersection(have)
    return dates.sort_values()


def _as_stored(table: sa.Table, frame: pd.DataFrame, portfolio_id: str) -> pd.DataFrame:
    """``frame`` as ``table`` would hold it after a write (the warehouse's own conversion, ``warehouse.io``: money
    to cents, NaN to NULL), read back as a frame: dates as timestamps, numbers as floats (NULL as NaN)."""
    stored = stored_form(table, frame.assign(portfolio_id=portfolio_id))
    numbers = {c.name: float for c in table.columns if isinstance(c.type, sa.Numeric) and c.name in stored}
    return stored.astype(numbers).assign(date=pd.to_datetime(stored["date"]))


def adhoc_stress(engine: Engine, portfolio: str, scenarios: pd.DataFrame, shocks: pd.DataFrame, as_of=None,
                 source: str = "") -> AdhocStress:
    """Stress ``portfolio`` (id or exact name) as of ``as_of`` (default: its latest date with stored stress
    inputs) under ``scenarios`` / ``shocks`` (``warehouse.reference.parse_scenarios`` frames).

    Raises ``UnknownPortfolioError`` for an unknown portfolio and :class:`AdhocStressError` for a date without
    the stored inputs (naming the dates that have them) or a book that holds nothing on it. Writes nothing."""
    book = get_portfolio(engine, portfolio)
    pid = book["portfolio_id"]
    have = stress_dates(engine, pid)
    if have.empty:
        raise AdhocStressError(f"portfolio {pid!r} has no computed data yet; run `sigmasight backfill --portfolio "
                               f"{pid} --from ... --to ...` first")
    day = have[-1] if as_of is None else pd.Timestamp(as_of).normalize()
    if day not in have:
        listed = (", ".join(f"{d:%Y-%m-%d}" for d in have) if len(have) <= 10
                  else f"{have[0]:%Y-%m-%d} .. {have[-1]:%Y-%m-%d}")
        raise AdhocStressError(
            f"no stored stress inputs for portfolio {pid!r} on {day:%Y-%m-%d}: position valuations and factor "
            f"covariance are stored on {len(have)} session(s): {listed}")
    ledger = read_ledger(engine, pid)
    held = positions_on(ledger, day)
    if held.empty:
        raise AdhocStressError(f"portfolio {pid!r} holds no position on {day:%Y-%m-%d}: nothing to stress")
    sessions = pd.DatetimeIndex([day])
    batch = PortfolioBatch(portfolio_id=pid, dates=sessions, sessions=sessions, closed={},
                           positions=engine_positions(engine, held), ledger=ledger)
    out = stress_test_range(positions=batch.positions, **stress_inputs(engine, batch), scenarios=scenarios,
                            shocks=shocks, dates=sessions)
    results = _as_stored(schema.stress_results, out.results, pid)[["date", "portfolio_id", *RESULT_COLUMNS[1:]]]
    results = results.merge(scenarios[["scenario_id", "name", "category", "severity"]], on="scenario_id", how="left")
    breakdown = _as_stored(schema.stress_factor_breakdown, out.factor_breakdown, pid)
    # rows in the model's factor order (Market first), then the engine's own rows (Interest Rate, VIX, convexity)
    model = {f: i for i, f in enumerate(factor_definitions().sort_values("display_order").factor_name)}
    breakdown = breakdown.assign(
        _scenario=breakdown["scenario_id"].map({s: i for i, s in enumerate(results["scenario_id"])}),
        _factor=breakdown["factor_name"].map(model).fillna(len(model)),
    ).sort_values(["_scenario", "_factor"], kind="stable")
    return AdhocStress(pid, book["name"], day, source, results,
                       breakdown[["portfolio_id", *BREAKDOWN_COLUMNS]].reset_index(drop=True))


# --- presentation -------------------------------------------------------------------------------------------

def _shock(factor: str, value) -> str:
    """A shock or implied move for reading: the rate in basis points, the others in percent, blank when none."""
    if is_missing(value):
        return ""
    if factor == INTEREST_RATE_FACTOR:
        return f"{format_decimal(float(value) * 1e4, 1)} bp"
    return md_pct(value)


def adhoc_stress_markdown(result: AdhocStress) -> str:
    """The answer as Markdown: one summary row per scenario (direct and correlated P&L, correlation effect, % of
    gross exposure and of equity, beyond-equity), then each scenario's per-factor breakdown."""
    r0 = result.results.iloc[0]
    lines = [
        f"# Ad-hoc stress: {md_inline(result.portfolio_name)} ({result.portfolio_id}) as of {result.as_of:%Y-%m-%d}",
        "",
        f"Scenarios from `{result.source}`, applied in memory to the stored book and the stored inputs of that date "
        "(the engine of the stored stress results); nothing was stored.",
        f"Gross exposure {md_money('gross_exposure', r0['gross_exposure'])}; equity (net liquidation value, no cash "
        f"modelled) {md_money('equity', r0['equity'])}. Correlated P&L adds the unshocked factors' conditional moves; "
        "beyond equity: the worse of direct and correlated P&L loses more than the equity.",
        "",
        "| Scenario | Direct P&L | Correlated P&L | Correlation effect | % of gross | % of equity | Beyond equity | Flag |",
        "|---|---:|---:|---:|---:|---:|---|---|",
    ]
    for r in result.results.itertuples():
        lines.append(
            f"| {md_inline(r.name)} (`{r.scenario_id}`) | {md_money('direct_pnl', r.direct_pnl)} | "
            f"{md_money('correlated_pnl', r.correlated_pnl)} | {md_money('correlation_effect', r.correlation_effect)} | "
            f"{md_pct(r.pct_of_gross_exposure)} | {md_pct(r.pct_of_equity)} | {'**yes**' if r.exceeds_equity else 'no'} | "
            f"{md_inline(r.flag)} |")
    by_scenario = dict(tuple(result.breakdown.groupby("scenario_id", sort=False)))
    for r in result.results.itertuples():
        lines += ["", f"## {md_inline(r.name)} (`{r.scenario_id}`): P&L by factor", "",
                  "| Factor | Shock | Implied move | Direct P&L | Correlated P&L |", "|---|---:|---:|---:|---:|"]
        for b in by_scenario[r.scenario_id].itertuples():
            lines.append(f"| {md_inline(b.factor_name)} | {_shock(b.factor_name, b.shock)} | "
                         f"{_shock(b.factor_name, b.implied_move)} | {md_money('direct_pnl', b.direct_pnl)} | "
                         f"{md_money('correlated_pnl', b.correlated_pnl)} |")
        lines.append(f"| **Total** | | | {md_money('direct_pnl', r.direct_pnl)} | "
                     f"{md_money('correlated_pnl', r.correlated_pnl)} |")
    return "\n".join(lines) + "\n"


def _value(v):
    """A JSON value: numpy scalars as Python ones, NaN as null."""
    if isinstance(v, np.generic):
        v = v.item()
    return None if isinstance(v, float) and np.isnan(v) else v


def adhoc_stress_json(result: AdhocStress) -> dict:
    """The answer as a JSON-ready dict: per scenario its figures and ``factor_breakdown``; money as stored (to
    the cent), ratios at full precision, null where a ratio has no base (e.g. equity <= 0)."""
    breakdown_fields = ["factor_name", "shock", "implied_move", "direct_pnl", "correlated_pnl"]
    by_scenario = dict(tuple(result.breakdown.groupby("scenario_id", sort=False)))
    r0 = result.results.iloc[0]
    scenarios = []
    for rec in result.results.to_dict("records"):
        parts = by_scenario[rec["scenario_id"]][breakdown_fields].to_dict("records")
        scenarios.append({
            **{k: _value(rec[k]) for k in ("scenario_id", "name", "category", "severity")},
            **{k: _value(rec[k]) for k in FIGURES}, "flag": rec["flag"] or "",
            "factor_breakdown": [{k: _value(v) for k, v in p.items()} for p in parts],
        })
    return {
        "portfolio_id": result.portfolio_id, "portfolio_name": result.portfolio_name,
        "as_of": f"{result.as_of:%Y-%m-%d}", "scenario_file": result.source,
        "gross_exposure": _value(r0["gross_exposure"]), "equity": _value(r0["equity"]),
        "stored": False, "scenarios": scenarios,
    }


def dumps(result: AdhocStress) -> str:
    """:func:`adhoc_stress_json` as indented JSON text."""
    return json.dumps(adhoc_stress_json(result), indent=2) + "\n"
