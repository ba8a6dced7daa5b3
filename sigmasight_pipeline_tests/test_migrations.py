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
        assert result.before == (BASELINE,) and result.after == head_revisions() == ("0002_exact_fit",)
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
