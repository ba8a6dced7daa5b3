"""Reference data (factors, stress scenarios, security master) loaded from the package's data files.

The files are the source of truth of factors and scenarios: loading replaces each of those tables whole in one
transaction, so editing a file and reloading never leaves a stale or duplicated row (adding a scenario is a
file edit).

The security master has one resolver, ``marketdata.security_master.lookup`` (the market-data source's own
classification when online, the shipped file offline), and one writer, ``store_security_master`` (upsert by
symbol). ``load_reference_data`` seeds the symbols of the shipped file that the warehouse does not hold yet;
the ``market_prices`` asset refreshes the rows of every symbol it loads with its source's view on each run.
"""

from __future__ import annotations

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


def stress_scenarios() -> tuple[pd.DataFrame, pd.DataFrame]:
    """``(scenarios, shocks)`` from ``data/stress_scenarios.yaml``.

    ``scenarios``: ``scenario_id, name, category, severity, period_start, period_end, display_order``;
    ``shocks``: ``scenario_id, factor_name, shock``. Every shocked factor must be a defined factor,
    ``Interest Rate`` or ``VIX`` (the VIX level's relative change, above -1: the level stays positive);
    anything else is refused (the earlier system silently dropped misnamed factors).
    """
    rows = yaml.safe_load(read_text("stress_scenarios.yaml"))["scenarios"]
    known = set(factor_definitions().factor_name) | {INTEREST_RATE_FACTOR, VIX_SHOCK}
    scen, shocks = [], []
    for i, r in enumerate(rows):
        period = r.get("period") or [None, None]
        scen.append(
            {
                "scenario_id": r["id"], "name": r["name"], "category": r["category"], "severity": r["severity"],
                "period_start": period[0], "period_end": period[1], "display_order": i,
            }
        )
        for factor, shock in r["shocks"].items():
            if factor not in known:
                raise ValueError(f"stress_scenarios.yaml: scenario {r['id']!r} shocks unknown factor {factor!r}")
            if factor == VIX_SHOCK and not float(shock) > -1.0:
                raise ValueError(f"stress_scenarios.yaml: scenario {r['id']!r} VIX shock {shock} must be above -1 "
                                 "(a relative change of the VIX level)")
            shocks.append({"scenario_id": r["id"], "factor_name": factor, "shock": float(shock)})
    scenarios = pd.DataFrame(scen)
    if scenarios.scenario_id.duplicated().any():
        raise ValueError("stress_scenarios.yaml: duplicated scenario id")
    return scenarios, pd.DataFrame(shocks)


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
