"""Reference data (factors, stress scenarios, security master) loaded from the package's data files.

The files are the source of truth of factors and scenarios: loading replaces each of those tables whole in one
transaction, so editing a file and reloading never leaves a stale or duplicated row (adding a scenario is a
file edit). ``parse_scenarios`` is the one validator of a scenario file, the stored one and an ad-hoc one
(``sigmasight stress``): it names every problem by scenario and field.

The security master has one resolver, ``marketdata.security_master.lookup`` (the market-data source's own
classification when online, the shipped file offline), and one writer, ``store_security_master`` (upsert by
symbol). ``load_reference_data`` seeds the symbols of the shipped file that the warehouse does not hold yet;
the ``market_prices`` asset refreshes the rows of every symbol it loads with its source's view on each run.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import sqlalchemy as sa
import yaml
from sqlalchemy.engine import Engine

from sigmasight_pipeline.data import factor_rows, read_text
from sigmasight_pipeline.warehouse import schema

INTEREST_RATE_FACTOR = "Interest Rate"
#: A shock to the VIX level itself (relative change, 1.50 = +150%): not a factor (engines.stress.VIX_SHOCK).
VIX_SHOCK = "VIX"


def factor_definitions() -> pd.DataFrame:
    """The factor model from ``data/factors.yaml``: ``factor_name, proxy_symbol, description, display_order``.

    Raises ``ValueError`` on a duplicated factor or proxy, or a missing Market factor.
    """
    rows = factor_rows()
    frame = pd.DataFrame(
        [
            {"factor_name": r["name"], "proxy_symbol": r["proxy"], "description": r.get("description"), "display_order": i}
            for i, r in enumerate(rows)
        ]
    )
    for col in ("factor_name", "proxy_symbol"):
        dup = frame[col][frame[col].duplicated()]
        if len(dup):
            raise ValueError(f"factors.yaml: duplicated {col} {sorted(dup)}")
    if "Market" not in set(frame.factor_name):
        raise ValueError("factors.yaml: the Market factor is required")
    return frame


def factor_proxies() -> dict[str, str]:
    """Ordered ``{factor name: proxy ETF}`` with Market first."""
    frame = factor_definitions().sort_values("display_order")
    return dict(zip(frame.factor_name, frame.proxy_symbol))


#: The fields a scenario of a scenario file may have (spec/stress_scenarios.md); anything else is refused.
SCENARIO_FIELDS = ("id", "name", "category", "severity", "period", "shocks", "rate_shock_bp")
#: The descriptive severity bands of spec/stress_scenarios.md.
SEVERITIES = ("mild", "moderate", "severe", "extreme")
#: ``category`` and ``severity`` of a scenario that does not give them (an ad-hoc file may leave them out).
DEFAULT_CATEGORY, DEFAULT_SEVERITY = "custom", "unrated"
#: Sane ranges, inclusive. A factor return below -1 (-100%) is impossible; above +5 (+500%) is a typo for a
#: percentage (10 for 0.10). The 10-year yield shock is at most 2,000 bp either way. The VIX shock is a
#: relative change of the level: above -1 (the level stays positive), at most +10 (+1,000%).
FACTOR_SHOCK_RANGE = (-1.0, 5.0)
RATE_SHOCK_MAX_BP = 2000.0
VIX_SHOCK_MAX = 10.0
_LIMITS = {"id": 64, "name": 120, "category": 32}  # the lengths of the stress_scenarios columns


class ScenarioFileError(ValueError):
    """A scenario file that does not validate: ``problems`` holds one message per problem, each naming the
    scenario (its id, or its position ``#n`` when it has none) and the field."""

    def __init__(self, source: str, problems: list[str]):
        self.source, self.problems = source, list(problems)
        if len(self.problems) == 1:
            super().__init__(f"{source}: {self.problems[0]}")
        else:
            listed = "\n".join(f"  - {p}" for p in self.problems)
            super().__init__(f"{source}: {len(self.problems)} problems:\n{listed}")


class _UniqueKeyLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that refuses a key given twice in one mapping (``{Market: 0.1, Market: -0.2}``):
    PyYAML would silently keep the last one."""

    def construct_mapping(self, node, deep=False):
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if isinstance(key, (str, int, float)) and key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"key {key!r} is given twice in one mapping", key_node.start_mark)
            if isinstance(key, (str, int, float)):
                seen.add(key)
        return super().construct_mapping(node, deep)


def _number(value) -> float | None:
    """``value`` as a finite float when it is a YAML number (not a boolean, not text), else None."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    value = float(value)
    return value if np.isfinite(value) else None


def _text(value) -> bool:
    """Whether ``value`` is non-blank text."""
    return isinstance(value, str) and value.strip() != ""


def _shock_problem(factor: str, value: float) -> str | None:
    """Why a shock of ``factor`` is outside its sane range (None when it is inside)."""
    if factor == VIX_SHOCK:
        if not value > -1.0:
            return "must be above -1 (a relative change of the VIX level: -1 would take it to zero)"
        if value > VIX_SHOCK_MAX:
            return f"is above {VIX_SHOCK_MAX:g} (+{VIX_SHOCK_MAX:.0%}): give a relative change, 1.50 = +150%"
        return None
    if factor == INTEREST_RATE_FACTOR:
        if abs(value) * 1e4 > RATE_SHOCK_MAX_BP:
            return (f"is beyond +/-{RATE_SHOCK_MAX_BP / 1e4:g} ({RATE_SHOCK_MAX_BP:,.0f} bp): give the change of "
                    "the 10-year yield in decimal, 0.0025 = +25 bp")
        return None
    low, high = FACTOR_SHOCK_RANGE
    if value < low:
        return f"is below {low:g} ({low:.0%}): a factor cannot lose more than all of its value"
    if value > high:
        return f"is above {high:g} (+{high:.0%}): give a fractional return, 0.10 = +10%"
    return None


def parse_scenarios(text: str, source: str = "stress_scenarios.yaml") -> tuple[pd.DataFrame, pd.DataFrame]:
    """``(scenarios, shocks)`` from the text of a scenario file (the format of ``data/stress_scenarios.yaml``):
    the one validator of the stored file and of an ad-hoc one (``sigmasight stress``).

    The file is a mapping ``scenarios:`` -> a list of scenarios, each with ``id`` and ``name`` (unique, text),
    optional ``category`` (default "custom"), ``severity`` (one of :data:`SEVERITIES`, default "unrated") and
    ``period: [start, end]``, ``shocks: {factor: shock}`` and an optional ``rate_shock_bp`` (the 10-year yield
    change in basis points: 25 is the shock ``Interest Rate: 0.0025``; give the rate shock one way only). A
    shocked factor is a factor of ``data/factors.yaml``, ``Interest Rate`` or ``VIX`` (the VIX level's relative
    change); every shock is a number in its sane range (:func:`_shock_problem`), and a scenario shocks something.

    ``scenarios``: ``scenario_id, name, category, severity, period_start, period_end, display_order``;
    ``shocks``: ``scenario_id, factor_name, shock`` (file order; a ``rate_shock_bp`` as the Interest Rate row).
    Raises :class:`ScenarioFileError` listing EVERY problem found, each naming the scenario and the field.
    """
    try:
        doc = yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
        raise ScenarioFileError(source, [f"not valid YAML: {where}{getattr(exc, 'problem', None) or exc}"]) from None
    if doc is None:
        raise ScenarioFileError(source, ["the file is empty: expected 'scenarios:' and a list of scenarios"])
    if not isinstance(doc, dict) or "scenarios" not in doc:
        raise ScenarioFileError(source, ["expected a mapping with the key 'scenarios' (a list of scenarios)"])
    problems = [f"unknown top-level key {k!r} (only 'scenarios')" for k in doc if k != "scenarios"]
    rows = doc["scenarios"]
    if not isinstance(rows, list) or not rows:
        raise ScenarioFileError(source, problems + ["'scenarios' must be a non-empty list of scenarios"])
    known = [*factor_definitions().factor_name, INTEREST_RATE_FACTOR, VIX_SHOCK]
    scen, shocks, seen = [], [], {"id": {}, "name": {}}
    for i, r in enumerate(rows):
        if not isinstance(r, dict):
            problems.append(f"scenario #{i + 1} is not a mapping of fields ({', '.join(SCENARIO_FIELDS)})")
            continue
        label = f"scenario {r['id']!r}" if _text(r.get("id")) else (
            f"scenario #{i + 1}" + (f" ({r['name']!r})" if _text(r.get("name")) else ""))

        def bad(field: str, message: str, label: str = label) -> None:
            problems.append(f"{label} {message} (field {field})")

        scen.append(_scenario_row(i, r, seen, bad))
        shocks += [{"scenario_id": r.get("id"), "factor_name": f, "shock": v}
                   for f, v in _scenario_shocks(r, known, bad).items()]
    if problems:
        raise ScenarioFileError(source, problems)
    return pd.DataFrame(scen), pd.DataFrame(shocks, columns=["scenario_id", "factor_name", "shock"])


def _scenario_row(i: int, r: dict, seen: dict[str, dict], bad) -> dict:
    """The ``stress_scenarios`` row of scenario ``r`` (the ``i``-th of its file); each problem of its fields is
    reported through ``bad(field, message)``. ``seen`` holds the ids and names met so far (field -> value ->
    position), to refuse a repeat."""
    unknown = [k for k in r if k not in SCENARIO_FIELDS]
    if unknown:
        bad(", ".join(map(str, unknown)),
            f"has unknown field(s) {', '.join(map(repr, unknown))}; known: {', '.join(SCENARIO_FIELDS)}")
    for field in ("id", "name"):
        value = r.get(field)
        if not _text(value):
            bad(field, f"has no {field}" if value is None else f"{field} {value!r} is not text")
        elif len(value) > _LIMITS[field]:
            bad(field, f"{field} is longer than {_LIMITS[field]} characters")
        elif value in seen[field]:
            bad(field, f"repeats the {field} {value!r} of scenario #{seen[field][value] + 1}: {field}s are unique")
        else:
            seen[field][value] = i
    category = r.get("category", DEFAULT_CATEGORY)
    if not _text(category) or len(category) > _LIMITS["category"]:
        bad("category", f"category {category!r} must be text of at most {_LIMITS['category']} characters")
    severity = r.get("severity", DEFAULT_SEVERITY)
    if severity not in (*SEVERITIES, DEFAULT_SEVERITY):
        bad("severity", f"severity {severity!r} is not one of {', '.join(SEVERITIES)}")
    period = r.get("period") or [None, None]
    dated = isinstance(period, list) and len(period) == 2 and all(isinstance(d, dt.date) for d in period)
    if period != [None, None] and not (dated and period[0] <= period[1]):
        shown = [str(d) for d in period] if isinstance(period, list) else period
        bad("period", f"period {shown} must be [start, end], two dates YYYY-MM-DD with start <= end")
        period = [None, None]
    return {"scenario_id": r.get("id"), "name": r.get("name"), "category": category, "severity": severity,
            "period_start": period[0], "period_end": period[1], "display_order": i}


def _scenario_shocks(r: dict, known: list[str], bad) -> dict[str, float]:
    """``{factor: shock}`` of scenario ``r``: its ``shocks`` plus its ``rate_shock_bp`` as the Interest Rate shock
    in decimal; each problem is reported through ``bad(field, message)`` and its shock left out."""
    given = r.get("shocks")
    if given is None:
        given = {}
    elif not isinstance(given, dict):
        bad("shocks", f"shocks {given!r} must be a mapping {{factor: shock}}")
        given = {}
    if "rate_shock_bp" in r:
        bp = _number(r["rate_shock_bp"])
        if bp is None:
            bad("rate_shock_bp", f"rate shock {r['rate_shock_bp']!r} is not a number (basis points, 25 = +25 bp)")
        elif INTEREST_RATE_FACTOR in given:
            bad("rate_shock_bp", f"gives the rate shock twice: rate_shock_bp and shocks.{INTEREST_RATE_FACTOR}")
        elif abs(bp) > RATE_SHOCK_MAX_BP:
            bad("rate_shock_bp", f"rate shock {r['rate_shock_bp']!r} bp is beyond +/-{RATE_SHOCK_MAX_BP:,.0f} bp")
        else:
            given = {**given, INTEREST_RATE_FACTOR: bp / 1e4}
    elif not given:
        bad("shocks", "has no shocks: give shocks {factor: shock} and/or rate_shock_bp")
    out = {}
    for factor, value in given.items():
        shock = _number(value)
        if factor not in known:
            bad(f"shocks.{factor}", f"shocks unknown factor {factor!r}; known: {', '.join(known)}")
        elif shock is None:
            bad(f"shocks.{factor}", f"{factor} shock {value!r} is not a number")
        elif why := _shock_problem(factor, shock):
            bad(f"shocks.{factor}", f"{factor} shock {value!r} {why}")
        else:
            out[factor] = shock
    return out


def stress_scenarios() -> tuple[pd.DataFrame, pd.DataFrame]:
    """``(scenarios, shocks)`` from ``data/stress_scenarios.yaml``, validated by :func:`parse_scenarios` (the
    validator of an ad-hoc scenario file too). Every shocked factor must be a defined factor, ``Interest Rate`` or
    ``VIX`` (the VIX level's relative change, above -1: the level stays positive); anything else is refused
    (the earlier system silently dropped misnamed factors).
    """
    return parse_scenarios(read_text("stress_scenarios.yaml"), "stress_scenarios.yaml")


def security_master() -> pd.DataFrame:
    """The offline security master shipped in ``data/security_master.csv``."""
    from sigmasight_pipeline.marketdata.security_master import load_security_master

    return load_security_master()


def store_security_master(connection: sa.Connection, rows: pd.DataFrame, *, only_missing: bool = False) -> int:
    """Write security master rows (``security_master.COLUMNS``, e.g. from ``lookup``) by symbol on the caller's
    connection: upserted, or with ``only_missing`` inserted only for symbols not stored yet. Returns the rows
    written."""
    from sigmasight_pipeline.warehouse.io import _records, upsert

    if rows is None or rows.empty:
        return 0
    rows = rows.drop_duplicates("symbol", keep="last")
    if only_missing:
        t = schema.security_master
        stored = set(connection.execute(sa.select(t.c.symbol).where(t.c.symbol.in_(list(rows["symbol"])))).scalars())
        rows = rows[~rows["symbol"].isin(stored)]
        if rows.empty:
            return 0
    return upsert(connection, schema.security_master, _records(schema.security_master, rows))


def load_reference_data(engine: Engine) -> dict[str, int]:
    """Load the reference data from the data files in one transaction; returns rows per table.

    Factors and scenarios are replaced whole; the shipped security master is seeded (its symbols the warehouse
    does not hold yet are inserted; rows already held are the market asset's to refresh, see the module
    docstring). The count of ``security_master`` is the shipped file's rows.
    """
    from sigmasight_pipeline.marketdata.security_master import lookup
    from sigmasight_pipeline.warehouse.io import _records

    factors = factor_definitions()
    scenarios, shocks = stress_scenarios()
    master = lookup(security_master()["symbol"])
    counts = {}
    with engine.begin() as conn:
        # Children before parents for the delete, parents before children for the insert.
        for table in (schema.stress_scenario_shocks, schema.stress_scenarios, schema.factor_definitions):
            conn.execute(table.delete())
        for table, frame in (
            (schema.factor_definitions, factors),
            (schema.stress_scenarios, scenarios),
            (schema.stress_scenario_shocks, shocks),
        ):
            recs = _records(table, frame)
            if recs:
                conn.execute(table.insert(), recs)
            counts[table.name] = len(recs)
        store_security_master(conn, master, only_missing=True)
        counts[schema.security_master.name] = len(master)
    return counts


def read_scenarios(engine: Engine) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Scenarios and shocks as stored (the engines read the warehouse, not the file)."""
    from sigmasight_pipeline.warehouse.io import read_frame

    scen = read_frame(engine, sa.select(schema.stress_scenarios).order_by(schema.stress_scenarios.c.display_order))
    shocks = read_frame(engine, sa.select(schema.stress_scenario_shocks))
    return scen, shocks
