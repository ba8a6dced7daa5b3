"""Schema migrations (warehouse/migrate.py): an existing warehouse upgrades in place, never by dropping it.

On SQLite and PostgreSQL: an empty database reaches head with exactly the schema of ``metadata.create_all``
(Alembic's own comparison, plus a reflected snapshot that also covers CHECK constraints); a warehouse written
by the pre-migration code keeps its rows and is stamped; a second migrate is one query; two processes
starting at once on an empty database both succeed; ``sigmasight migrate`` prints the revisions.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import multiprocessing

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from sigmasight_pipeline.warehouse import schema
from sigmasight_pipeline.warehouse.io import dispose_engines, get_engine
from sigmasight_pipeline.warehouse.migrate import (
    BASELINE,
    VERSION_TABLE,
    current_revisions,
    head_revisions,
    include_object,
    migrate,
)

DIALECTS = ["sqlite", "postgresql"]


@contextlib.contextmanager
def blank_database(dialect: str, tmp_path, name: str = "warehouse"):
    """URL of a new, empty database of ``dialect`` (SQLite file under ``tmp_path``, or a throwaway PostgreSQL
    database, dropped afterwards)."""
    if dialect == "sqlite":
        yield f"sqlite:///{tmp_path / f'{name}.db'}"
        dispose_engines()
        return
    from sigmasight_pipeline_tests.conftest import throwaway_postgres_database  # lazily: spawned workers skip dagster

    with throwaway_postgres_database() as url:
        yield url


@contextlib.contextmanager
def raw_engine(url: str):
    """An engine that does NOT migrate (not ``get_engine``): the previous code's view of the database."""
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.split("://", 1)[1]
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        yield engine
    finally:
        engine.dispose()


def schema_differences(engine: sa.Engine) -> list:
    """Alembic's autogenerate comparison of the database against ``schema.metadata`` (empty: identical)."""
    with engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"compare_type": True, "include_object": include_object})
        return compare_metadata(ctx, schema.metadata)


def reflected_schema(engine: sa.Engine) -> dict:
    """Every warehouse table as the database reports it: columns and types, keys, constraints, indexes."""
    insp = sa.inspect(engine)
    out = {}
    for table in sorted(set(insp.get_table_names()) - {VERSION_TABLE}):
        out[table] = {
            "columns": [(c["name"], str(c["type"]), c["nullable"]) for c in insp.get_columns(table)],
            "pk": insp.get_pk_constraint(table)["constrained_columns"],
            "fks": sorted(
                (tuple(f["constrained_columns"]), f["referred_table"], tuple(f["referred_columns"]),
                 (f.get("options") or {}).get("ondelete"))
                for f in insp.get_foreign_keys(table)
            ),
            "unique": sorted((u["name"], tuple(u["column_names"])) for u in insp.get_unique_constraints(table)),
            "checks": sorted((c["name"], c["sqltext"]) for c in insp.get_check_constraints(table)),
            "indexes": sorted((i["name"], tuple(i["column_names"]), i["unique"]) for i in insp.get_indexes(table)),
        }
    return out


def version_rows(engine: sa.Engine) -> list[str]:
    with engine.connect() as conn:
        return [r[0] for r in conn.execute(sa.text(f"SELECT version_num FROM {VERSION_TABLE}"))]


@pytest.mark.parametrize("dialect", DIALECTS)
def test_an_empty_database_reaches_head_with_the_schema_of_create_all(dialect, tmp_path):
    with blank_database(dialect, tmp_path, "migrated") as url, blank_database(dialect, tmp_path, "created") as ref:
        with raw_engine(url) as engine, raw_engine(ref) as reference:
            result = migrate(engine)
            assert result.before == () and result.after == head_revisions() and result.changed
            assert version_rows(engine) == list(head_revisions())
            assert schema_differences(engine) == []

            schema.metadata.create_all(reference)
            migrated = reflected_schema(engine)
            assert set(migrated) == set(schema.metadata.tables)
            assert migrated == reflected_schema(reference)


@pytest.mark.parametrize("dialect", DIALECTS)
def test_a_warehouse_of_the_previous_schema_is_stamped_and_keeps_its_rows(dialect, tmp_path):
    uploaded = dt.datetime(2025, 1, 2, 12, 0, tzinfo=dt.timezone.utc)
    with blank_database(dialect, tmp_path) as url:
        with raw_engine(url) as old:  # the previous code: create_all, no alembic_version
            schema.metadata.create_all(old)
            with old.begin() as conn:
                conn.execute(schema.portfolios.insert(), [
                    {"portfolio_id": "alpha", "name": "Alpha", "source_csv": "symbol,quantity\nAAPL,10\n",
                     "uploaded_at": uploaded},
                ])
                conn.execute(schema.market_prices.insert(), [
                    {"date": dt.date(2025, 1, 2), "symbol": "AAPL", "close": 243.85, "source": "sample"},
                    {"date": dt.date(2025, 1, 3), "symbol": "AAPL", "close": 243.36, "source": "sample"},
                ])
            assert VERSION_TABLE not in sa.inspect(old).get_table_names()

        engine = get_engine(url)  # migrates on start
        assert version_rows(engine) == list(head_revisions())
        with engine.connect() as conn:
            assert conn.execute(sa.select(schema.portfolios.c.portfolio_id, schema.portfolios.c.name)).all() == [
                ("alpha", "Alpha")
            ]
            prices = conn.execute(
                sa.select(schema.market_prices.c.date, schema.market_prices.c.close).order_by("date")
            ).all()
        assert prices == [(dt.date(2025, 1, 2), 243.85), (dt.date(2025, 1, 3), 243.36)]
        assert schema_differences(engine) == []
        dispose_engines()


def test_a_partial_previous_warehouse_gets_its_missing_tables(tmp_path):
    """An older warehouse that lacks a table the baseline has (create_all used to add it on start) gets it."""
    with blank_database("sqlite", tmp_path) as url, raw_engine(url) as old:
        kept = [t for t in schema.metadata.sorted_tables if t.name != "portfolio_reports"]
        schema.metadata.create_all(old, tables=kept)
        with old.begin() as conn:
            conn.execute(schema.security_master.insert(), [{"symbol": "AAPL", "asset_type": "stock"}])
        result = migrate(old)
        assert result.before == () and result.after == head_revisions()
        assert schema_differences(old) == []
        with old.connect() as conn:
            assert conn.execute(sa.select(schema.security_master.c.symbol)).scalars().all() == ["AAPL"]


@pytest.mark.parametrize("dialect", DIALECTS)
def test_migrating_twice_is_a_no_op_of_one_query(dialect, tmp_path):
    with blank_database(dialect, tmp_path) as url, raw_engine(url) as engine:
        first = migrate(engine)
        statements: list[str] = []
        sa.event.listen(engine, "before_cursor_execute", lambda *a: statements.append(a[2]))
        second = migrate(engine)
        assert second.before == second.after == first.after == head_revisions() and not second.changed
        assert len(statements) == 1 and VERSION_TABLE in statements[0]
        assert version_rows(engine) == list(head_revisions())


def test_the_baseline_is_the_first_revision_and_the_only_root():
    from alembic.script import ScriptDirectory

    from sigmasight_pipeline.warehouse.migrate import MIGRATIONS

    script = ScriptDirectory(str(MIGRATIONS))
    assert [r.revision for r in script.walk_revisions() if r.down_revision is None] == [BASELINE]
    assert len(script.get_heads()) == 1


def _start_worker(url: str, barrier, results) -> None:
    """A process starting on the warehouse (as a run worker does): get_engine, at the same moment as the other."""
    barrier.wait(timeout=60)
    try:
        engine = get_engine(url)
        with engine.connect() as conn:
            results.put(("ok", current_revisions(conn)))
    except BaseException as exc:  # reported to the parent, which fails the test
        results.put(("error", repr(exc)))


@pytest.mark.parametrize("dialect", DIALECTS)
def test_two_processes_starting_at_once_on_an_empty_database_both_succeed(dialect, tmp_path):
    ctx = multiprocessing.get_context("spawn")
    with blank_database(dialect, tmp_path) as url:
        barrier, results = ctx.Barrier(2), ctx.Queue()
        procs = [ctx.Process(target=_start_worker, args=(url, barrier, results)) for _ in range(2)]
        for p in procs:
            p.start()
        outcomes = [results.get(timeout=120) for _ in procs]
        for p in procs:
            p.join(timeout=60)
        assert outcomes == [("ok", head_revisions())] * 2, outcomes
        with raw_engine(url) as engine:
            assert version_rows(engine) == list(head_revisions())  # one row: migrated once
            assert schema_differences(engine) == []


def test_sigmasight_migrate_prints_the_revision_before_and_after(tmp_path, capsys):
    from sigmasight_pipeline.cli import main

    url = f"sqlite:///{tmp_path / 'cli.db'}"
    assert main(["migrate", "--database-url", url]) == 0
    out = capsys.readouterr().out
    assert "revision before: none" in out and f"revision after:  {head_revisions()[0]}" in out
    assert main(["migrate", "--database-url", url]) == 0
    out = capsys.readouterr().out
    assert f"revision before: {head_revisions()[0]}" in out and "already at head" in out


@pytest.mark.parametrize("dialect", DIALECTS)
def test_a_warehouse_at_0001_with_rows_upgrades_to_0002_and_keeps_them(dialect, tmp_path):
    """0002_exact_fit adds ``position_factor_exposures.exact_fit`` (batch "move and copy" on SQLite): the rows of
    a 0001 warehouse survive, with exact_fit false and their other values unchanged."""
    from alembic import command

    from sigmasight_pipeline.warehouse.migrate import alembic_config

    cols = "date, portfolio_id, position_id, factor_name, beta, t_stat, r_squared, n_obs, flag, dollar_exposure"
    rows = [
        {"date": dt.date(2025, 6, 30), "portfolio_id": "alpha", "position_id": 1, "factor_name": "Market",
         "beta": 1.0, "t_stat": 2.7e16, "r_squared": 1.0, "n_obs": 150, "flag": "ok", "dollar_exposure": 1000.25},
        {"date": dt.date(2025, 6, 30), "portfolio_id": "alpha", "position_id": 2, "factor_name": "Market",
         "beta": 1.2, "t_stat": 9.5, "r_squared": 0.6, "n_obs": 150, "flag": "ok", "dollar_exposure": -50.0},
    ]
    with blank_database(dialect, tmp_path) as url, raw_engine(url) as engine:
        with engine.begin() as conn:
            command.upgrade(alembic_config(connection=conn), BASELINE)
        with engine.begin() as conn:
            assert current_revisions(conn) == (BASELINE,)
            assert "exact_fit" not in {c["name"] for c in sa.inspect(conn).get_columns("position_factor_exposures")}
            conn.execute(sa.text(f"INSERT INTO position_factor_exposures ({cols}) VALUES "
                                 f"({', '.join(':' + c.strip() for c in cols.split(','))})"), rows)
        result = migrate(engine)
        assert result.before == (BASELINE,) and result.after == head_revisions()
        assert schema_differences(engine) == []
        t = schema.position_factor_exposures
        with engine.connect() as conn:
            got = conn.execute(
                sa.select(t.c.position_id, t.c.beta, t.c.t_stat, t.c.r_squared, t.c.n_obs, t.c.flag,
                          t.c.dollar_exposure, t.c.exact_fit).order_by(t.c.position_id)
            ).all()
        assert [tuple(r) for r in got] == [
            (1, 1.0, 2.7e16, 1.0, 150, "ok", 1000.25, False),
            (2, 1.2, 9.5, 0.6, 150, "ok", -50.0, False),
        ]


@pytest.mark.parametrize("dialect", DIALECTS)
def test_a_warehouse_at_0004_with_rows_upgrades_through_0005_option_inputs_and_keeps_them(dialect, tmp_path):
    """0005_option_inputs adds position_greeks.dividend_yield / pricing_note and volatility_delta_exposure to
    portfolio_exposures and group_exposures: the stored rows survive unchanged; option Greeks rows get q = 0
    (they were priced without dividends), a VIX option its spot note, "position_iv" becomes "implied"; the
    exposures of a book that never held a VIX option get 0.00, those of one that did stay NULL (their
    delta-adjusted exposure still includes the VIX options until the partition is rerun)."""
    from alembic import command

    from sigmasight_pipeline.engines.options import SPOT_PRICING_NOTE, VOLATILITY_INDEXES
    from sigmasight_pipeline.marketdata.base import SYMBOLS
    from sigmasight_pipeline.warehouse.migrate import alembic_config

    day, uploaded = dt.date(2025, 6, 30), dt.datetime(2025, 6, 1, tzinfo=dt.timezone.utc)

    def insert(conn, table: str, rows: list[dict]) -> None:
        cols = list(rows[0])
        conn.execute(sa.text(f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({', '.join(':' + c for c in cols)})"), rows)

    def position(pid, symbol, underlying, option_type=None, strike=None, expiration=None, multiplier=1):
        return {"portfolio_id": "vol", "position_id": pid, "symbol": symbol, "position_type": "LC" if option_type else "LONG",
                "quantity": 2, "entry_price": 1.5, "entry_date": dt.date(2025, 6, 2), "underlying_symbol": underlying,
                "option_type": option_type, "strike": strike, "expiration": expiration, "multiplier": multiplier,
                "cost_basis": 300.0, "source_row": pid + 1}

    def greeks(pid, vol_source, days, implied_vol):
        return {"date": day, "portfolio_id": "vol", "position_id": pid, "underlying_price": 17.5,
                "implied_vol": implied_vol, "vol_source": vol_source, "days_to_expiry": days, "delta": 0.25,
                "flag": "ok"}

    def exposures(portfolio_id, dae):
        return {"date": day, "portfolio_id": portfolio_id, "delta_adjusted_exposure": dae, "long_count": 2,
                "short_count": 0, "option_count": 1, "stock_count": 1, "position_count": 2, "missing_price_count": 0}

    with blank_database(dialect, tmp_path) as url, raw_engine(url) as engine:
        with engine.begin() as conn:
            command.upgrade(alembic_config(connection=conn), "0004_market_reference")
        with engine.begin() as conn:
            assert current_revisions(conn) == ("0004_market_reference",)
            assert "pricing_note" not in {c["name"] for c in sa.inspect(conn).get_columns("position_greeks")}
            insert(conn, "portfolios", [{"portfolio_id": p, "name": p.title(), "source_csv": "ticker\n", "uploaded_at": uploaded}
                                        for p in ("vol", "plain")])
            insert(conn, "positions", [
                position(1, "SPY", "SPY"),
                position(2, "VIX250716C00025000", "^VIX", "C", 25.0, dt.date(2025, 7, 16), 100),
                position(3, "SPY250919P00500000", "SPY", "P", 500.0, dt.date(2025, 9, 19), 100),
            ])
            insert(conn, "position_greeks", [
                greeks(1, "none", None, None), greeks(2, "realized", 16, 0.95), greeks(3, "position_iv", 81, 0.21),
            ])
            insert(conn, "portfolio_exposures", [exposures("vol", 12_345.67), exposures("plain", -250.5)])
            insert(conn, "group_exposures", [
                {"date": day, "portfolio_id": p, "group_type": "underlying", "group_name": g, "delta_adjusted_exposure": x,
                 "position_count": 1} for p, g, x in (("vol", "^VIX", 875.0), ("plain", "SPY", -250.5))
            ])
        result = migrate(engine)
        assert result.before == ("0004_market_reference",) and result.after == head_revisions()
        assert schema_differences(engine) == []
        g, e, ge = schema.position_greeks, schema.portfolio_exposures, schema.group_exposures
        with engine.connect() as conn:
            got_greeks = conn.execute(
                sa.select(g.c.position_id, g.c.implied_vol, g.c.vol_source, g.c.days_to_expiry, g.c.delta, g.c.flag,
                          g.c.dividend_yield, g.c.pricing_note).order_by(g.c.position_id)
            ).all()
            got_expo = conn.execute(
                sa.select(e.c.portfolio_id, e.c.delta_adjusted_exposure, e.c.position_count, e.c.volatility_delta_exposure)
                .order_by(e.c.portfolio_id)
            ).all()
            got_groups = conn.execute(
                sa.select(ge.c.portfolio_id, ge.c.group_name, ge.c.delta_adjusted_exposure, ge.c.volatility_delta_exposure)
                .order_by(ge.c.portfolio_id)
            ).all()
    vix_note = SPOT_PRICING_NOTE.format(name=VOLATILITY_INDEXES[SYMBOLS.VIX])
    assert [tuple(r) for r in got_greeks] == [
        (1, None, "none", None, 0.25, "ok", None, None),
        (2, 0.95, "realized", 16, 0.25, "ok", 0.0, vix_note),
        (3, 0.21, "implied", 81, 0.25, "ok", 0.0, None),
    ]
    assert [tuple(r) for r in got_expo] == [("plain", -250.5, 2, 0.0), ("vol", 12_345.67, 2, None)]
    assert [tuple(r) for r in got_groups] == [("plain", "SPY", -250.5, 0.0), ("vol", "^VIX", 875.0, None)]


@pytest.mark.parametrize("dialect", DIALECTS)
def test_a_warehouse_at_0005_with_stress_rows_upgrades_through_0006_stress_equity_and_keeps_them(dialect, tmp_path):
    """0006_stress_equity renames ``stress_results.pct_of_equity`` (always correlated P&L / gross exposure) to
    ``pct_of_gross_exposure`` keeping its values, adds ``equity`` / ``pct_of_equity`` (NULL) and
    ``exceeds_equity`` (false) to the rows already stored, widens ``flag`` and adds ``entry_warnings``; its
    downgrade gives the 0005 table back with the same rows."""
    from alembic import command

    from sigmasight_pipeline.warehouse.migrate import alembic_config

    cols = ("date, portfolio_id, scenario_id, direct_pnl, correlated_pnl, correlation_effect, pct_of_equity, "
            "gross_exposure, loss_cap_applied, flag")
    rows = [
        {"date": dt.date(2025, 6, 30), "portfolio_id": "alpha", "scenario_id": "market_crash_35", "direct_pnl": -175000.0,
         "correlated_pnl": -180000.5, "correlation_effect": -5000.5, "pct_of_equity": -0.36,
         "gross_exposure": 500001.25, "loss_cap_applied": False, "flag": "ok"},
        {"date": dt.date(2025, 6, 30), "portfolio_id": "alpha", "scenario_id": "rates_up_25bp", "direct_pnl": -10.0,
         "correlated_pnl": -10.0, "correlation_effect": 0.0, "pct_of_equity": None, "gross_exposure": None,
         "loss_cap_applied": False, "flag": "missing_price=1"},
    ]
    with blank_database(dialect, tmp_path) as url, raw_engine(url) as engine:
        with engine.begin() as conn:
            command.upgrade(alembic_config(connection=conn), "0005_option_inputs")
        with engine.begin() as conn:
            names = {c["name"] for c in sa.inspect(conn).get_columns("stress_results")}
            assert "pct_of_equity" in names and "pct_of_gross_exposure" not in names
            assert "entry_warnings" not in sa.inspect(conn).get_table_names()
            conn.execute(sa.text(f"INSERT INTO stress_results ({cols}) VALUES "
                                 f"({', '.join(':' + c.strip() for c in cols.split(','))})"), rows)
        result = migrate(engine)
        assert result.before == ("0005_option_inputs",) and result.after == head_revisions()
        assert schema_differences(engine) == []
        t = schema.stress_results
        with engine.connect() as conn:
            got = conn.execute(
                sa.select(t.c.scenario_id, t.c.direct_pnl, t.c.correlated_pnl, t.c.correlation_effect,
                          t.c.pct_of_gross_exposure, t.c.gross_exposure, t.c.loss_cap_applied, t.c.flag, t.c.equity,
                          t.c.pct_of_equity, t.c.exceeds_equity).order_by(t.c.scenario_id)
            ).all()
            conn.execute(schema.stress_results.update().values(flag="x" * 200))  # the widened flag holds 200
            assert conn.execute(sa.select(schema.entry_warnings)).all() == []
        assert [tuple(r) for r in got] == [
            ("market_crash_35", -175000.0, -180000.5, -5000.5, -0.36, 500001.25, False, "ok", None, None, False),
            ("rates_up_25bp", -10.0, -10.0, 0.0, None, None, False, "missing_price=1", None, None, False),
        ]
        with engine.begin() as conn:  # back to 0005: the old column name and the same rows
            conn.execute(schema.stress_results.update().values(flag="ok"))
            command.downgrade(alembic_config(connection=conn), "0005_option_inputs")
        with engine.connect() as conn:
            assert "entry_warnings" not in sa.inspect(conn).get_table_names()
            back = conn.execute(sa.text("SELECT scenario_id, pct_of_equity, gross_exposure FROM stress_results "
                                        "ORDER BY scenario_id")).all()
        assert [tuple(r) for r in back] == [("market_crash_35", -0.36, 500001.25), ("rates_up_25bp", None, None)]


@pytest.mark.parametrize("dialect", DIALECTS)
def test_a_warehouse_at_0003_with_rows_upgrades_through_0004_market_reference_and_keeps_them(dialect, tmp_path):
    """0004_market_reference creates ``stock_splits`` and adds ``security_master.category`` and ``.dividend_yield``
    (nullable; batch "move and copy" on SQLite): the security master rows of a 0003 warehouse survive with the new
    columns NULL (unknown until the next refresh), the prices untouched; the new columns and table take rows."""
    from alembic import command

    from sigmasight_pipeline.warehouse.migrate import alembic_config

    master = [
        {"symbol": "AAPL", "name": "Apple Inc.", "asset_type": "stock", "sector": "Technology",
         "industry": "Consumer Electronics"},
        {"symbol": "SPY", "name": "SPDR S&P 500 ETF Trust", "asset_type": "etf", "sector": "Equity",
         "industry": "Large Blend"},
    ]
    with blank_database(dialect, tmp_path) as url, raw_engine(url) as engine:
        with engine.begin() as conn:
            command.upgrade(alembic_config(connection=conn), "0003_trades")
        with engine.begin() as conn:
            assert current_revisions(conn) == ("0003_trades",)
            insp = sa.inspect(conn)
            assert "stock_splits" not in insp.get_table_names()
            assert {"category", "dividend_yield"}.isdisjoint(c["name"] for c in insp.get_columns("security_master"))
            conn.execute(sa.text("INSERT INTO security_master (symbol, name, asset_type, sector, industry) "
                                 "VALUES (:symbol, :name, :asset_type, :sector, :industry)"), master)
            conn.execute(sa.text("INSERT INTO market_prices (date, symbol, close, source) VALUES "
                                 "(:date, :symbol, :close, :source)"),
                         [{"date": dt.date(2025, 1, 2), "symbol": "NVDA", "close": 138.31, "source": "sample"}])
        result = migrate(engine)
        assert result.before == ("0003_trades",) and result.after == head_revisions()
        assert schema_differences(engine) == []
        m = schema.security_master
        with engine.begin() as conn:
            got = conn.execute(sa.select(m.c.symbol, m.c.name, m.c.asset_type, m.c.sector, m.c.industry,
                                         m.c.category, m.c.dividend_yield).order_by(m.c.symbol)).all()
            assert [tuple(r) for r in got] == [
                ("AAPL", "Apple Inc.", "stock", "Technology", "Consumer Electronics", None, None),
                ("SPY", "SPDR S&P 500 ETF Trust", "etf", "Equity", "Large Blend", None, None),
            ]
            assert conn.execute(sa.select(schema.market_prices.c.symbol, schema.market_prices.c.close)).all() == [
                ("NVDA", 138.31)]
            assert conn.execute(sa.select(schema.stock_splits)).all() == []
            conn.execute(m.update().where(m.c.symbol == "SPY").values(category="Large Blend", dividend_yield=0.013))
            conn.execute(schema.stock_splits.insert(), [
                {"symbol": "NVDA", "ex_date": dt.date(2024, 6, 10), "ratio": 10.0, "source": "sample"}])
        with engine.connect() as conn:
            assert conn.execute(sa.select(m.c.category, m.c.dividend_yield).where(m.c.symbol == "SPY")).one() == (
                "Large Blend", 0.013)
            assert conn.execute(sa.select(schema.stock_splits)).all() == [("NVDA", dt.date(2024, 6, 10), 10.0, "sample")]


@pytest.mark.parametrize("dialect", DIALECTS)
def test_a_warehouse_at_0002_with_a_book_upgrades_through_0003_trades_and_keeps_it(dialect, tmp_path):
    """0003_trades creates ``trades`` and adds the columns that carry a book's trades: the positions of a 0002
    warehouse survive with realized_pnl 0 (an upload-era book never traded) and no exit date; valuation,
    P&L and snapshot rows keep their figures with the new columns NULL until their partitions rerun."""
    from alembic import command

    from sigmasight_pipeline.warehouse.migrate import alembic_config

    day = dt.date(2025, 6, 30)
    with blank_database(dialect, tmp_path) as url, raw_engine(url) as engine:
        with engine.begin() as conn:
            command.upgrade(alembic_config(connection=conn), "0002_exact_fit")
        with engine.begin() as conn:
            assert "trades" not in sa.inspect(conn).get_table_names()
            conn.execute(sa.text("INSERT INTO portfolios (portfolio_id, name, source_csv, uploaded_at) VALUES "
                                 "('alpha', 'Alpha', 'ticker,quantity,entry_price,entry_date', :t)"),
                         {"t": dt.datetime(2025, 1, 2, tzinfo=dt.timezone.utc)})
            conn.execute(sa.text(
                "INSERT INTO positions (portfolio_id, position_id, symbol, position_type, quantity, entry_price, "
                "entry_date, underlying_symbol, multiplier, cost_basis, source_row) VALUES "
                "('alpha', 1, 'AAPL', 'LONG', 100, 180.5, :d, 'AAPL', 1, 18050, 2)"), {"d": dt.date(2025, 1, 2)})
            conn.execute(sa.text(
                "INSERT INTO position_daily_pnl (date, portfolio_id, position_id, daily_pnl, pnl_basis) VALUES "
                "(:d, 'alpha', 1, 125.5, 'previous_close')"), {"d": day})
        result = migrate(engine)
        assert result.before == ("0002_exact_fit",) and result.after == head_revisions()
        assert schema_differences(engine) == []
        p, pnl = schema.positions, schema.position_daily_pnl
        with engine.begin() as conn:
            got = conn.execute(sa.select(p.c.symbol, p.c.quantity, p.c.cost_basis, p.c.exit_date, p.c.realized_pnl,
                                         p.c.implied_vol)).all()
            assert [tuple(r) for r in got] == [("AAPL", 100.0, 18050.0, None, 0.0, None)]
            assert conn.execute(sa.select(pnl.c.daily_pnl, pnl.c.quantity, pnl.c.realized_pnl)).all() == [(125.5, None, None)]
            conn.execute(schema.trades.insert(), [{
                "portfolio_id": "alpha", "trade_seq": 1, "trade_id": "t1", "trade_date": day, "symbol": "AAPL",
                "quantity": -40, "price": 200.25, "fees": 1.5, "close_and_reverse": False, "source_row": 2,
                "imported_at": dt.datetime(2025, 7, 1, tzinfo=dt.timezone.utc)}])
            t = schema.trades
            assert conn.execute(sa.select(t.c.trade_id, t.c.quantity, t.c.price, t.c.fees)).all() == [("t1", -40.0, 200.25, 1.5)]


@pytest.mark.parametrize("dialect", DIALECTS)
def test_a_warehouse_at_0006_with_factor_rows_upgrades_through_0007_risk_measures_and_keeps_them(dialect, tmp_path):
    """0007_risk_measures adds ``position_factor_exposures.residual_std`` (NULL on the rows already stored: a rerun
    of their partitions fills it) and the four risk tables; the downgrade gives the 0006 table back with its rows."""
    from alembic import command

    from sigmasight_pipeline.warehouse.migrate import alembic_config

    day = dt.date(2025, 6, 30)
    rows = [
        {"date": day, "portfolio_id": "alpha", "position_id": 1, "factor_name": f, "beta": b, "t_stat": 3.5,
         "r_squared": 0.6, "n_obs": 150, "flag": "ok", "dollar_exposure": d, "exact_fit": False}
        for f, b, d in (("Market", 1.1, 19855.28), ("Value", -0.25, -4512.56))
    ]
    cols = list(rows[0])
    risk_tables = {"portfolio_risk_measures", "position_risk_contributions", "factor_risk_contributions", "risk_backtest"}
    with blank_database(dialect, tmp_path) as url, raw_engine(url) as engine:
        with engine.begin() as conn:
            command.upgrade(alembic_config(connection=conn), "0006_stress_equity")
        with engine.begin() as conn:
            insp = sa.inspect(conn)
            assert risk_tables.isdisjoint(insp.get_table_names())
            assert "residual_std" not in {c["name"] for c in insp.get_columns("position_factor_exposures")}
            conn.execute(sa.text(f"INSERT INTO position_factor_exposures ({', '.join(cols)}) VALUES "
                                 f"({', '.join(':' + c for c in cols)})"), rows)
        result = migrate(engine)
        assert result.before == ("0006_stress_equity",) and result.after == head_revisions()
        mine = [d for d in schema_differences(engine)
                if any(name in repr(d) for name in (*risk_tables, "residual_std"))]
        assert mine == []
        t = schema.position_factor_exposures
        with engine.begin() as conn:
            got = conn.execute(sa.select(t.c.factor_name, t.c.beta, t.c.dollar_exposure, t.c.exact_fit, t.c.residual_std)
                               .order_by(t.c.factor_name)).all()
            assert [tuple(r) for r in got] == [("Market", 1.1, 19855.28, False, None), ("Value", -0.25, -4512.56, False, None)]
            conn.execute(t.update().where(t.c.factor_name == "Market").values(residual_std=0.0123))
            conn.execute(schema.portfolio_risk_measures.insert(), [{
                "date": day, "portfolio_id": "alpha", "method": "historical", "measure": "var", "level": 0.99,
                "horizon_days": 1, "value": 12345.678901, "flag": "ok"}])
            conn.execute(schema.position_risk_contributions.insert(), [{
                "date": day, "portfolio_id": "alpha", "position_id": 1, "method": "parametric", "measure": "volatility",
                "level": 0.0, "contribution": 1.5, "marginal": 0.01, "share": 1.0}])
            conn.execute(schema.factor_risk_contributions.insert(), [{
                "date": day, "portfolio_id": "alpha", "factor_name": "Specific", "dollar_exposure": None,
                "contribution": 1.5, "marginal": None, "share": 1.0}])
            conn.execute(schema.risk_backtest.insert(), [{
                "date": day, "portfolio_id": "alpha", "var_date": dt.date(2025, 6, 27), "var_99": 12000.0,
                "realized_pnl": -13000.0, "exception": True, "window_sessions": 1, "exceptions": 1,
                "kupiec_lr": 9.21, "kupiec_p_value": 0.0024, "zone": "green"}])
        with engine.connect() as conn:
            assert conn.execute(sa.select(t.c.residual_std).where(t.c.factor_name == "Market")).scalar() == 0.0123
            assert conn.execute(sa.select(schema.portfolio_risk_measures.c.value)).scalar() == 12345.678901
            assert conn.execute(sa.select(schema.risk_backtest.c.exception)).scalar() is True
        with engine.begin() as conn:  # back to 0006: the risk tables go, the factor rows stay
            command.downgrade(alembic_config(connection=conn), "0006_stress_equity")
        with engine.connect() as conn:
            insp = sa.inspect(conn)
            assert risk_tables.isdisjoint(insp.get_table_names())
            assert "residual_std" not in {c["name"] for c in insp.get_columns("position_factor_exposures")}
            back = conn.execute(sa.text("SELECT factor_name, beta FROM position_factor_exposures ORDER BY factor_name")).all()
        assert [tuple(r) for r in back] == [("Market", 1.1), ("Value", -0.25)]


@pytest.mark.parametrize("dialect", DIALECTS)
def test_a_warehouse_at_0007_with_snapshots_upgrades_through_0008_performance_attribution_and_keeps_them(dialect, tmp_path):
    """0008_performance_attribution only creates ``portfolio_performance`` and ``pnl_attribution``: the snapshots
    a 0007 warehouse holds are kept as they are, the new tables take rows, and the downgrade drops them alone."""
    from alembic import command

    from sigmasight_pipeline.warehouse.migrate import alembic_config

    day = dt.date(2025, 6, 30)
    snapshot = {"date": day, "portfolio_id": "alpha", "total_value": 100250.25, "daily_pnl": 250.25,
                "daily_return": 0.0025, "position_count": 2, "long_count": 2, "short_count": 0, "option_count": 0,
                "stock_count": 2, "missing_price_count": 0, "is_first_snapshot": False, "pnl_basis": "previous_close"}
    with blank_database(dialect, tmp_path) as url, raw_engine(url) as engine:
        with engine.begin() as conn:
            command.upgrade(alembic_config(connection=conn), "0007_risk_measures")
        with engine.begin() as conn:
            assert {"portfolio_performance", "pnl_attribution"}.isdisjoint(sa.inspect(conn).get_table_names())
            conn.execute(sa.text(f"INSERT INTO portfolio_snapshots ({', '.join(snapshot)}) VALUES "
                                 f"({', '.join(':' + c for c in snapshot)})"), snapshot)
        result = migrate(engine)
        assert result.before == ("0007_risk_measures",) and result.after == head_revisions()
        assert schema_differences(engine) == []
        s, perf, attr = schema.portfolio_snapshots, schema.portfolio_performance, schema.pnl_attribution
        with engine.begin() as conn:
            assert conn.execute(sa.select(s.c.portfolio_id, s.c.total_value, s.c.daily_pnl, s.c.daily_return)).all() == [
                ("alpha", 100250.25, 250.25, 0.0025)]
            assert conn.execute(sa.select(perf)).all() == [] and conn.execute(sa.select(attr)).all() == []
            conn.execute(perf.insert(), [{"date": day, "portfolio_id": "alpha", "window_name": "mtd",
                                          "window_sessions": 21, "n_returns": 21, "sharpe_ratio": 1.25, "flag": "ok"}])
            conn.execute(attr.insert(), [{"date": day, "portfolio_id": "alpha", "line": "Market", "line_type": "factor",
                                          "line_order": 1, "previous_date": dt.date(2025, 6, 27), "exposure": 100000.0,
                                          "factor_return": 0.0025, "pnl": 250.0}])
            assert conn.execute(sa.select(perf.c.window_name, perf.c.sharpe_ratio)).all() == [("mtd", 1.25)]
            assert conn.execute(sa.select(attr.c.line, attr.c.pnl)).all() == [("Market", 250.0)]
        with engine.begin() as conn:  # back to 0007: the two tables go, the snapshots stay
            command.downgrade(alembic_config(connection=conn), "0007_risk_measures")
        with engine.connect() as conn:
            assert {"portfolio_performance", "pnl_attribution"}.isdisjoint(sa.inspect(conn).get_table_names())
            assert conn.execute(sa.text("SELECT portfolio_id, daily_pnl FROM portfolio_snapshots")).all() == [("alpha", 250.25)]


@pytest.mark.parametrize("dialect", DIALECTS)
def test_a_warehouse_at_0008_with_a_book_upgrades_through_0009_tag_changes_and_keeps_it(dialect, tmp_path):
    """0009_tag_changes only creates ``tag_changes``: the portfolio and tags a 0008 warehouse holds are kept, the new
    table takes rows (its action checked), and the downgrade drops it alone."""
    from alembic import command

    from sigmasight_pipeline.warehouse.migrate import alembic_config

    now = dt.datetime(2025, 3, 14, 18, 0, tzinfo=dt.timezone.utc)
    with blank_database(dialect, tmp_path) as url, raw_engine(url) as engine:
        with engine.begin() as conn:
            command.upgrade(alembic_config(connection=conn), "0008_performance_attribution")
        with engine.begin() as conn:
            assert "tag_changes" not in sa.inspect(conn).get_table_names()
            conn.execute(sa.text("INSERT INTO portfolios (portfolio_id, name, source_csv, uploaded_at) "
                                 "VALUES ('alpha', 'Alpha', 'ticker,quantity,entry_price,entry_date', :t)"), {"t": now})
        result = migrate(engine)
        assert result.before == ("0008_performance_attribution",) and result.after == head_revisions()
        assert schema_differences(engine) == []
        t = schema.tag_changes
        row = {"portfolio_id": "alpha", "change_seq": 1, "position_id": 1, "symbol": "AAPL", "tag": "hedge",
               "action": "add", "effective_date": dt.date(2025, 3, 10), "created_at": now}
        with engine.begin() as conn:
            assert conn.execute(sa.select(schema.portfolios.c.name)).scalars().all() == ["Alpha"]
            conn.execute(t.insert(), [row])
            assert conn.execute(sa.select(t.c.symbol, t.c.tag, t.c.action, t.c.effective_date)).all() == [
                ("AAPL", "hedge", "add", dt.date(2025, 3, 10))]
        with pytest.raises(sa.exc.IntegrityError), engine.begin() as conn:  # add | remove only
            conn.execute(t.insert(), [{**row, "change_seq": 2, "action": "rename"}])
        with engine.begin() as conn:  # back to 0008: the table goes, the portfolio stays
            command.downgrade(alembic_config(connection=conn), "0008_performance_attribution")
        with engine.connect() as conn:
            assert "tag_changes" not in sa.inspect(conn).get_table_names()
            assert conn.execute(sa.text("SELECT name FROM portfolios")).scalars().all() == ["Alpha"]


@pytest.mark.parametrize("dialect", DIALECTS)
def test_a_warehouse_at_0009_with_a_book_upgrades_through_0010_api_keys_and_keeps_it(dialect, tmp_path):
    """0010_api_keys only creates ``api_keys``: the portfolio a 0009 warehouse holds is kept, a key hash is unique,
    use counters start at 0, and the downgrade drops the table alone."""
    from alembic import command

    from sigmasight_pipeline.warehouse.migrate import alembic_config

    now = dt.datetime(2025, 3, 14, 18, 0, tzinfo=dt.timezone.utc)
    with blank_database(dialect, tmp_path) as url, raw_engine(url) as engine:
        with engine.begin() as conn:
            command.upgrade(alembic_config(connection=conn), "0009_tag_changes")
        with engine.begin() as conn:
            assert "api_keys" not in sa.inspect(conn).get_table_names()
            conn.execute(sa.text("INSERT INTO portfolios (portfolio_id, name, source_csv, uploaded_at) "
                                 "VALUES ('alpha', 'Alpha', 'ticker,quantity,entry_price,entry_date', :t)"), {"t": now})
        result = migrate(engine)
        assert result.before == ("0009_tag_changes",) and result.after == head_revisions()
        assert schema_differences(engine) == []
        t = schema.api_keys
        row = {"key_id": "0123abcd", "key_hash": "f" * 64, "owner": "a@example.com", "is_operator": False,
               "created_at": now}
        with engine.begin() as conn:
            conn.execute(t.insert(), [row])
            assert conn.execute(sa.select(t.c.owner, t.c.request_count, t.c.rate_limited_count)).all() == [
                ("a@example.com", 0, 0)]
        with pytest.raises(sa.exc.IntegrityError), engine.begin() as conn:  # one hash, one key
            conn.execute(t.insert(), [{**row, "key_id": "89abcdef"}])
        with engine.begin() as conn:
            command.downgrade(alembic_config(connection=conn), "0009_tag_changes")
        with engine.connect() as conn:
            assert "api_keys" not in sa.inspect(conn).get_table_names()
            assert conn.execute(sa.text("SELECT name FROM portfolios")).scalars().all() == ["Alpha"]
