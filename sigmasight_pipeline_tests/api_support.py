"""The API under test as a user runs it: ``sigmasight serve`` in a subprocess on a free loopback port, real HTTP.

``api_world(folder, extra)`` starts the server on ``folder``'s state (``user_state``: a copy of the short demo, or
the demo computed into a PostgreSQL warehouse by :func:`postgres_demo`), creates the keys the tests use, and
stops the server afterwards:

* ``keys.hedge``: the owner of ``demo-hedge-fund``; ``keys.hnw``: of ``demo-hnw``; ``keys.stranger``: an owner
  of nothing; ``keys.operator``: an operator key.

``world.get(path, key=..., **params)`` and friends send one request (``requests``) and return the response.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import requests
import sqlalchemy as sa

from sigmasight_pipeline.warehouse.api_keys import create_key
from sigmasight_pipeline_tests.user_state import DEMO_END, DEMO_START, SIGMASIGHT, make_state, sigmasight, state_env

PREFIX = "/api/v1"
OWNERS = {
    "hedge": "demo_hedgefundstyle@sigmasight.com",
    "hnw": "demo_hnw@sigmasight.com",
    "individual": "demo_individual@sigmasight.com",
    "stranger": "nobody@example.com",
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class ApiWorld:
    """A running API server: its base URL, the state folder and environment, the warehouse, the keys."""

    url: str
    folder: Path
    env: dict
    database_url: str
    keys: SimpleNamespace
    process: subprocess.Popen

    def request(self, method: str, path: str, *, key: str | None = "hedge", **kwargs) -> requests.Response:
        """``method`` ``/api/v1<path>`` with the named key (``key=None``: no header; a raw token works too)."""
        headers = dict(kwargs.pop("headers", {}) or {})
        if key is not None:
            token = getattr(self.keys, key, key)
            headers["Authorization"] = f"Bearer {token}"
        return requests.request(method, f"{self.url}{PREFIX}{path}", headers=headers, timeout=120, **kwargs)

    def get(self, path: str, *, key: str | None = "hedge", **params) -> requests.Response:
        return self.request("GET", path, key=key, params=params or None)

    def post(self, path: str, *, key: str | None = "hedge", **kwargs) -> requests.Response:
        return self.request("POST", path, key=key, **kwargs)

    def engine(self) -> sa.Engine:
        """A new engine on the server's warehouse (dispose it after use)."""
        return sa.create_engine(self.database_url, poolclass=sa.pool.NullPool)

    def row_counts(self) -> dict[str, int]:
        """Rows per warehouse table (``api_keys`` left out: its use counters move with every request)."""
        from sigmasight_pipeline.warehouse.schema import metadata

        engine = self.engine()
        try:
            with engine.connect() as conn:
                return {t.name: conn.execute(sa.select(sa.func.count()).select_from(t)).scalar_one()
                        for t in metadata.sorted_tables if t.name != "api_keys"}
        finally:
            engine.dispose()

    def server_log(self) -> str:
        path = self.folder / "serve.log"
        return path.read_text(errors="replace")[-5000:] if path.exists() else ""


def copy_state(source: Path, target: Path) -> Path:
    """A private copy of a user state (warehouse, Dagster home, reports)."""
    for part in ("home", "dagster", "reports"):
        if (source / part).exists():
            shutil.copytree(source / part, target / part)
    return target


@contextlib.contextmanager
def api_world(folder: Path, extra: dict[str, str] | None = None, *, rate_limit: int = 100_000):
    """Serve ``folder``'s state on a free port until the block ends (see the module docstring)."""
    env = state_env(folder, {"SIGMASIGHT_API_RATE_LIMIT": str(rate_limit), **(extra or {})})
    database_url = env["SIGMASIGHT_DATABASE_URL"]
    engine = sa.create_engine(database_url, poolclass=sa.pool.NullPool)
    try:
        from sigmasight_pipeline.warehouse.migrate import migrate

        migrate(engine)  # the keys table exists before the server starts
        keys = {name: create_key(engine, owner)[1] for name, owner in OWNERS.items()}
        keys["operator"] = create_key(engine, "ops@sigmasight.com", operator=True)[1]
    finally:
        engine.dispose()
    port = free_port()
    log = open(folder / "serve.log", "w")
    process = subprocess.Popen([SIGMASIGHT, "serve", "--port", str(port), "--no-access-log", "--log-level", "warning"],
                               cwd=folder, env=env, stdout=log, stderr=subprocess.STDOUT)
    world = ApiWorld(f"http://127.0.0.1:{port}", folder, env, database_url, SimpleNamespace(**keys), process)
    try:
        deadline = time.monotonic() + 90
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"sigmasight serve exited with {process.returncode}:\n{world.server_log()}")
            try:
                if requests.get(f"{world.url}{PREFIX}/health", timeout=2).status_code in (200, 503):
                    break
            except requests.ConnectionError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"sigmasight serve did not answer in 90 s:\n{world.server_log()}")
            time.sleep(0.2)
        yield world
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()


def postgres_demo(folder: Path, database_url: str) -> Path:
    """``sigmasight demo`` over the short window into the PostgreSQL warehouse ``database_url`` (state in ``folder``)."""
    make_state(folder)
    proc = sigmasight(folder, "demo", "--start", DEMO_START, "--end", DEMO_END, timeout=900,
                      extra={"SIGMASIGHT_DATABASE_URL": database_url})
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return folder


def stored(world: ApiWorld, query) -> list[dict]:
    """Rows of a SQLAlchemy query on the server's warehouse, as dicts."""
    engine = world.engine()
    try:
        with engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(query)]
    finally:
        engine.dispose()


@contextlib.contextmanager
def served_demo(request, tmp_path_factory, dialect: str, *, rate_limit: int = 100_000, extra: dict | None = None):
    """The short demo served on ``dialect``: SQLite from a private copy of the session's ``demo_state``; PostgreSQL
    from the demo computed into a throwaway database of the test server (dropped afterwards)."""
    from sigmasight_pipeline_tests.conftest import throwaway_postgres_database

    if dialect == "sqlite":
        source, result = request.getfixturevalue("demo_state")
        assert result["returncode"] == 0, result["stdout"][-3000:] + result["stderr"][-3000:]
        folder = copy_state(source, tmp_path_factory.mktemp("api_sqlite"))
        with api_world(folder, extra, rate_limit=rate_limit) as world:
            yield world
        return
    with throwaway_postgres_database() as url:
        folder = postgres_demo(tmp_path_factory.mktemp("api_pg"), url)
        with api_world(folder, {"SIGMASIGHT_DATABASE_URL": url, **(extra or {})}, rate_limit=rate_limit) as world:
            yield world
