"""Shared fixtures: throwaway warehouses (SQLite and PostgreSQL) and temporary Dagster instances.

PostgreSQL: every test session creates its own database on ``$SIGMASIGHT_TEST_POSTGRES_URL`` (default
the local server, ``postgresql+psycopg://postgres@127.0.0.1:5432/postgres``) and drops it at the end.
An unreachable server FAILS the PostgreSQL tests (they must run in CI); set
``SIGMASIGHT_SKIP_POSTGRES=1`` to skip them on a machine without one.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from types import SimpleNamespace

import dagster as dg
import pytest
import sqlalchemy as sa

from sigmasight_pipeline.warehouse.io import dispose_engines, get_engine
from sigmasight_pipeline.warehouse.scratch import throwaway_postgres_database as scratch_postgres_database
from sigmasight_pipeline_tests.user_state import computed, demo_state  # noqa: F401 - fixtures for every module

PG_ADMIN_URL = os.environ.get("SIGMASIGHT_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")


@pytest.fixture(autouse=True)
def _isolated_env(tmp_path, monkeypatch):
    """No test touches the developer's warehouse, reports or Dagster home."""
    monkeypatch.setenv("SIGMASIGHT_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("SIGMASIGHT_MARKET_DATA", "sample")
    monkeypatch.delenv("SIGMASIGHT_DATABASE_URL", raising=False)
    monkeypatch.setenv("SIGMASIGHT_REPORTS_DIR", str(tmp_path / "reports"))
    # a CLI command run in the test process records its runs here, not in the developer's ./.dagster_home
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster_home"))


@pytest.fixture
def sqlite_url(tmp_path) -> str:
    return f"sqlite:///{tmp_path / 'warehouse.db'}"


@pytest.fixture
def sqlite_engine(sqlite_url):
    engine = get_engine(sqlite_url)
    yield engine
    engine.dispose()
    dispose_engines()


@contextlib.contextmanager
def throwaway_postgres_database():
    """A uniquely named PostgreSQL database on the test server: yields its URL, drops it afterwards."""
    if os.environ.get("SIGMASIGHT_SKIP_POSTGRES") == "1":
        pytest.skip("SIGMASIGHT_SKIP_POSTGRES=1")
    created = False
    try:
        with scratch_postgres_database(PG_ADMIN_URL, "sigmasight_test") as url:
            created = True
            yield url
    except sa.exc.OperationalError as exc:
        if created:  # the test's own error
            raise
        pytest.fail(f"PostgreSQL unreachable at {PG_ADMIN_URL}: {exc}")  # fail, never skip: CI must run them


@pytest.fixture(scope="session")
def postgres_database_url():
    """URL of a fresh PostgreSQL database for this test session (dropped afterwards)."""
    with throwaway_postgres_database() as url:
        yield url


@pytest.fixture
def postgres_engine(postgres_database_url):
    engine = get_engine(postgres_database_url)
    yield engine
    # Empty every table between tests; the database itself lives for the session.
    from sigmasight_pipeline.warehouse.schema import metadata

    with engine.begin() as conn:
        for table in reversed(metadata.sorted_tables):
            conn.execute(table.delete())


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(request):
    """The same test on both dialects."""
    return request.getfixturevalue("sqlite_engine" if request.param == "sqlite" else "postgres_engine")


@pytest.fixture
def instance():
    with dg.instance_for_test() as inst:
        yield inst


@contextlib.contextmanager
def sample_world(tmp_path_factory, name: str):
    """A test module's own world: a SQLite warehouse, a reports folder and an in-memory Dagster instance with the
    loaded definitions, on the sample market data; the environment the resources read is set until the module's
    fixture ends (``mp`` sets more). Yields ``url, path, instance, defs, mp``; disposes the engines after."""
    path = Path(tmp_path_factory.mktemp(name)) / "warehouse.db"
    url = f"sqlite:///{path}"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SIGMASIGHT_DATABASE_URL", url)
        mp.setenv("SIGMASIGHT_MARKET_DATA", "sample")
        mp.setenv("SIGMASIGHT_REPORTS_DIR", str(tmp_path_factory.mktemp(f"{name}_reports")))
        from sigmasight_pipeline import runner

        try:
            yield SimpleNamespace(url=url, path=path, instance=dg.DagsterInstance.ephemeral(),
                                  defs=runner.load_definitions(), mp=mp)
        finally:
            dispose_engines()
