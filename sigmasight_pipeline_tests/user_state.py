"""A user's state in a folder (Dagster home, SigmaSight home, SQLite warehouse, reports) and the ``sigmasight``
command run in it, as a user runs it: the installed script in a subprocess.

``demo_state`` is ``sigmasight demo`` over a short window (2025-06-27 .. 2025-06-30), run once per test session
(under a file lock, so the xdist workers share it); ``computed`` is a private copy of it in the test's folder, so
no test sees another's writes. ``sigmasight_pipeline_tests.test_cli`` and the API tests use them.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from unittest import mock

import dagster as dg
import pytest
import sqlalchemy as sa
from filelock import FileLock

ROOT = Path(__file__).resolve().parents[1]
SIGMASIGHT = str(Path(sys.executable).parent / "sigmasight")
DEMO_START, DEMO_END = "2025-06-27", "2025-06-30"


def make_state(folder: Path) -> Path:
    """An empty user state in ``folder``: a Dagster home holding the local instance config, an empty home."""
    (folder / "dagster").mkdir(parents=True, exist_ok=True)
    (folder / "home").mkdir(exist_ok=True)
    shutil.copy(ROOT / "deploy" / "dagster-local.yaml", folder / "dagster" / "dagster.yaml")
    return folder


def state_env(folder: Path, extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment of ``folder``'s state (``extra`` overrides, e.g. a PostgreSQL SIGMASIGHT_DATABASE_URL)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SIGMASIGHT_", "DAGSTER_"))}
    env.update({
        "SIGMASIGHT_HOME": str(folder / "home"),
        "DAGSTER_HOME": str(folder / "dagster"),
        "SIGMASIGHT_DATABASE_URL": f"sqlite:///{folder / 'home' / 'warehouse.db'}",
        "SIGMASIGHT_REPORTS_DIR": str(folder / "reports"),
        "SIGMASIGHT_MARKET_DATA": "sample",
        "SIGMASIGHT_PARTITION_END": DEMO_END,
        "PYTHONWARNINGS": "ignore",
    })
    env.update(extra or {})
    return env


def sigmasight(folder: Path, *args: str, timeout: float = 300, extra: dict[str, str] | None = None,
               input: str | None = None) -> subprocess.CompletedProcess:
    """``sigmasight *args`` with ``folder``'s state, from inside ``folder`` (as a user in their project)."""
    return subprocess.run([SIGMASIGHT, *args], cwd=folder, env=state_env(folder, extra), capture_output=True,
                          text=True, timeout=timeout, input=input)


def row_counts(folder: Path) -> dict[str, int]:
    """Rows per warehouse table of ``folder``'s state ({} when there is no warehouse file)."""
    from sigmasight_pipeline.warehouse.schema import metadata

    db = folder / "home" / "warehouse.db"
    if not db.exists():
        return {}
    engine = sa.create_engine(f"sqlite:///{db}", poolclass=sa.pool.NullPool)
    try:
        present = set(sa.inspect(engine).get_table_names())
        with engine.connect() as conn:
            return {t.name: conn.execute(sa.select(sa.func.count()).select_from(t)).scalar_one()
                    for t in metadata.sorted_tables if t.name in present}
    finally:
        engine.dispose()


def run_count(folder: Path) -> int:
    """Dagster runs recorded in ``folder``'s instance."""
    with mock.patch.dict(os.environ, {"DAGSTER_HOME": str(folder / "dagster")}), dg.DagsterInstance.get() as instance:
        return instance.get_runs_count()


@pytest.fixture(scope="session")
def demo_state(tmp_path_factory, worker_id) -> tuple[Path, dict]:
    """(folder, the demo command's result) of the session's one ``sigmasight demo`` over the short window."""
    base = tmp_path_factory.getbasetemp()
    shared = base if worker_id == "master" else base.parent  # xdist: one folder for the whole session
    folder, done = shared / "cli-demo", shared / "cli-demo.json"
    with FileLock(str(shared / "cli-demo.lock")):
        if not done.exists():
            make_state(folder)
            proc = sigmasight(folder, "demo", "--start", DEMO_START, "--end", DEMO_END, timeout=600)
            done.write_text(json.dumps({"returncode": proc.returncode, "stdout": proc.stdout, "stderr": proc.stderr}))
    return folder, json.loads(done.read_text())


@pytest.fixture
def computed(demo_state, tmp_path) -> Path:
    """A private copy of the demo state (warehouse, Dagster home, reports) in this test's folder."""
    source, result = demo_state
    assert result["returncode"] == 0, result["stdout"][-3000:] + result["stderr"][-3000:]
    for part in ("home", "dagster", "reports"):
        shutil.copytree(source / part, tmp_path / part)
    return tmp_path
