"""The PostgreSQL deployment: dagster.yaml (instance on PostgreSQL), deploy/, Dockerfile, docker-compose.yml.

* A real Dagster instance built from the repository's ``dagster.yaml`` with its storage in a throwaway
  database on the local PostgreSQL server (the warehouse in a second one): a portfolio import, a
  materialization (market data for a week) and a backfill (the ranged runs ``run_window`` launches for
  three sessions of the portfolio) are recorded there: runs, per-partition materializations, check
  results, dynamic partitions, read back through a second instance object made from the same file.
* The instance configs parse and carry the queued run coordinator and its limits.
* docker-compose.yml and the Dockerfile hang together (no Docker engine is needed for these): services,
  health-gated start order, the workspace pointing at the code location, the environment, and an image
  layout (the Dockerfile's COPY lines) from which the Definitions load.

An unreachable PostgreSQL server fails these tests (conftest's ``throwaway_postgres_database``).
"""

from __future__ import annotations

import fnmatch
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest
import sqlalchemy as sa
import yaml
from dagster_postgres import PostgresEventLogStorage, PostgresRunStorage, PostgresScheduleStorage

from sigmasight_pipeline import runner as orch
from sigmasight_pipeline.onboarding import demo_book, demo_csv_text
from sigmasight_pipeline.warehouse import schema
from sigmasight_pipeline.warehouse.io import dispose_engines
from sigmasight_pipeline_tests.conftest import throwaway_postgres_database

REPO = Path(__file__).resolve().parents[1]
PG_VARS = ("DAGSTER_PG_USERNAME", "DAGSTER_PG_PASSWORD", "DAGSTER_PG_HOST", "DAGSTER_PG_DB", "DAGSTER_PG_PORT")
BOOK = demo_book("demo-individual")
WINDOW_START, WINDOW_END = "2025-06-25", "2025-06-27"  # the backfill: three sessions of one portfolio
MARKET_START, MARKET_END = "2025-06-16", "2025-06-24"  # the materialization: the sessions just before it
WINDOW_DATES = ["2025-06-25", "2025-06-26", "2025-06-27"]


def pg_env(url: str) -> dict[str, str]:
    """The DAGSTER_PG_* variables for a SQLAlchemy URL (an absent password is the empty string)."""
    u = sa.engine.make_url(url)
    return {
        "DAGSTER_PG_USERNAME": u.username or "",
        "DAGSTER_PG_PASSWORD": u.password or "",
        "DAGSTER_PG_HOST": u.host or "127.0.0.1",
        "DAGSTER_PG_DB": u.database,
        "DAGSTER_PG_PORT": str(u.port or 5432),
    }


def load_yaml(path: Path):
    return yaml.safe_load(path.read_text())


# --------------------------------------------------------------------------------------------------------
# A materialization and a backfill on the PostgreSQL instance
# --------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def pg_deployment(tmp_path_factory):
    with throwaway_postgres_database() as dagster_url, throwaway_postgres_database() as warehouse_url:
        home = tmp_path_factory.mktemp("dagster_home")
        shutil.copy(REPO / "dagster.yaml", home / "dagster.yaml")
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv("DAGSTER_HOME", str(home))
            for name, value in pg_env(dagster_url).items():
                mp.setenv(name, value)
            mp.setenv("SIGMASIGHT_DATABASE_URL", warehouse_url)
            mp.setenv("SIGMASIGHT_HOME", str(tmp_path_factory.mktemp("sigmasight_home")))
            mp.setenv("SIGMASIGHT_REPORTS_DIR", str(tmp_path_factory.mktemp("reports")))
            mp.setenv("SIGMASIGHT_MARKET_DATA", "sample")
            defs = orch.load_definitions()
            instance = dg.DagsterInstance.get()
            try:
                pid = orch.import_portfolio(instance, demo_csv_text(BOOK), name=BOOK.name, owner=BOOK.owner,
                                            portfolio_id=BOOK.portfolio_id, defs=defs)
                # The 150-session regression history behind the window goes into the warehouse through an
                # in-memory instance: the history is the warehouse's business, and its ~300 partition events
                # would cost ~30 s on dagster-postgres, which opens a connection per event (NullPool).
                seed_end = pd.Timestamp(MARKET_START) - pd.offsets.BDay(1)
                orch.materialize_market(dg.DagsterInstance.ephemeral(), orch.history_start(WINDOW_START), seed_end, defs=defs)

                market = orch.materialize_market(instance, MARKET_START, MARKET_END, defs=defs)
                # The backfill: run_window's ranged runs (market, then one run for the portfolio's range).
                window = orch.run_window(instance, [pid], WINDOW_START, WINDOW_END, defs=defs, with_history=False,
                                         with_sql_models=False, progress=lambda _: None)
                # A second instance object from the same DAGSTER_HOME: everything it sees came from PostgreSQL.
                reopened = dg.DagsterInstance.from_config(str(home))
                try:
                    yield {
                        "instance": instance, "reopened": reopened, "defs": defs, "pid": pid, "home": home,
                        "market": market, "window": window, "dagster_url": dagster_url, "warehouse_url": warehouse_url,
                        "reports": Path(os.environ["SIGMASIGHT_REPORTS_DIR"]),
                    }
                finally:
                    reopened.dispose()
            finally:
                instance.dispose()
                dispose_engines()


def test_instance_storage_is_postgresql(pg_deployment):
    for inst in (pg_deployment["instance"], pg_deployment["reopened"]):
        assert isinstance(inst.run_storage, PostgresRunStorage)
        assert isinstance(inst.event_log_storage, PostgresEventLogStorage)
        assert isinstance(inst.schedule_storage, PostgresScheduleStorage)
        assert type(inst.run_coordinator).__name__ == "QueuedRunCoordinator"
        assert type(inst.run_launcher).__name__ == "DefaultRunLauncher"
        # the limits of the file, through Dagster's own config processing
        runs = load_yaml(REPO / "dagster.yaml")["concurrency"]["runs"]
        queue = inst.get_concurrency_config().run_queue_config
        assert queue.max_concurrent_runs == runs["max_concurrent_runs"]
        assert queue.tag_concurrency_limits == runs["tag_concurrency_limits"]
    # The tables are in the Dagster database, and the warehouse's are not.
    engine = sa.create_engine(pg_deployment["dagster_url"])
    try:
        tables = set(sa.inspect(engine).get_table_names())
        with engine.connect() as conn:
            stored_runs = conn.execute(sa.text("SELECT count(*) FROM runs")).scalar_one()
    finally:
        engine.dispose()
    assert {"runs", "event_logs", "jobs", "job_ticks", "dynamic_partitions"} <= tables
    assert schema.portfolio_snapshots.name not in tables
    assert stored_runs == len(pg_deployment["reopened"].get_runs())


def test_runs_are_recorded_and_succeeded(pg_deployment):
    inst = pg_deployment["reopened"]
    runs = {r.run_id: r for r in inst.get_runs()}
    # import (portfolio_positions), the market materialization, then the backfill's market and portfolio runs
    assert len(runs) == 4
    assert all(r.status == dg.DagsterRunStatus.SUCCESS for r in runs.values()), {r.run_id: r.status for r in runs.values()}
    assert pg_deployment["market"].run_id in runs
    assert set(pg_deployment["window"]["runs"]) <= set(runs)

    market = runs[pg_deployment["market"].run_id]
    assert market.tags[orch.RANGE_START_TAG] == MARKET_START
    assert market.tags[orch.RANGE_END_TAG] == MARKET_END
    pid = pg_deployment["pid"]
    portfolio_runs = [r for r in runs.values() if r.tags.get(orch.RANGE_START_TAG, "").endswith(f"|{pid}")]
    assert len(portfolio_runs) == 1  # a single-run backfill: one run for the portfolio's whole range
    assert portfolio_runs[0].tags[orch.RANGE_START_TAG] == f"{WINDOW_START}|{pid}"
    assert portfolio_runs[0].tags[orch.RANGE_END_TAG] == f"{WINDOW_END}|{pid}"


def test_materializations_are_stored_per_partition(pg_deployment):
    inst, defs, pid = pg_deployment["reopened"], pg_deployment["defs"], pg_deployment["pid"]
    assert inst.get_dynamic_partitions("portfolio") == [pid]
    window_keys = {f"{d}|{pid}" for d in WINDOW_DATES}
    assert window_keys <= inst.get_materialized_partitions(dg.AssetKey("portfolio_snapshots"))
    for key in orch.portfolio_asset_keys(defs):
        assert window_keys <= inst.get_materialized_partitions(key), key.to_user_string()
    market_days = {d.strftime("%Y-%m-%d") for d in pd.bdate_range(MARKET_START, WINDOW_END)}
    for key in ("market_prices", "security_returns"):
        assert market_days <= inst.get_materialized_partitions(dg.AssetKey(key)), key
    assert pid in inst.get_materialized_partitions(dg.AssetKey("portfolio_positions"))

    records = inst.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=dg.AssetKey("portfolio_snapshots"), asset_partitions=sorted(window_keys)),
        limit=100,
    ).records
    assert sorted(r.partition_key for r in records) == sorted(window_keys)
    assert {r.run_id for r in records} <= set(pg_deployment["window"]["runs"])


def test_checks_passed_and_were_recorded(pg_deployment):
    checks = pg_deployment["window"]["checks"]
    assert checks and all(checks.values()), {k: v for k, v in checks.items() if not v}
    inst = pg_deployment["reopened"]
    check_events = [
        e.dagster_event for run_id in pg_deployment["window"]["runs"]
        for e in inst.all_logs(run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION)
    ]
    assert {e.asset_check_evaluation_data.check_name for e in check_events} >= {"snapshot_sums"}
    # ERROR-severity checks all pass; a WARN one may name something to read (limited history, losses beyond equity)
    assert all(e.asset_check_evaluation_data.passed for e in check_events
               if e.asset_check_evaluation_data.severity == dg.AssetCheckSeverity.ERROR)


def test_warehouse_has_the_rows(pg_deployment):
    engine = sa.create_engine(pg_deployment["warehouse_url"])
    pid = pg_deployment["pid"]
    try:
        with engine.connect() as conn:
            snaps = conn.execute(
                sa.select(schema.portfolio_snapshots.c.date)
                .where(schema.portfolio_snapshots.c.portfolio_id == pid)
                .order_by(schema.portfolio_snapshots.c.date)
            ).scalars().all()
            valuations = conn.execute(
                sa.select(sa.func.count()).select_from(schema.position_valuations)
                .where(schema.position_valuations.c.portfolio_id == pid)
            ).scalar_one()
    finally:
        engine.dispose()
    assert [d.strftime("%Y-%m-%d") for d in snaps] == WINDOW_DATES
    assert valuations > 0
    # the reports, which read the latest check results from the instance (PostgreSQL)
    published = sorted(p.parent.name[-10:] for p in pg_deployment["reports"].glob("*/portfolio_report.json"))
    assert published == WINDOW_DATES


# --------------------------------------------------------------------------------------------------------
# Instance configs
# --------------------------------------------------------------------------------------------------------


def test_dagster_yaml_is_postgres_with_a_queued_run_coordinator():
    cfg = load_yaml(REPO / "dagster.yaml")
    db = cfg["storage"]["postgres"]["postgres_db"]
    assert db == {
        "username": {"env": "DAGSTER_PG_USERNAME"},
        "password": {"env": "DAGSTER_PG_PASSWORD"},
        "hostname": {"env": "DAGSTER_PG_HOST"},
        "db_name": {"env": "DAGSTER_PG_DB"},
        "port": {"env": "DAGSTER_PG_PORT"},
    }
    assert cfg["run_coordinator"]["class"] == "QueuedRunCoordinator"
    runs = cfg["concurrency"]["runs"]
    assert isinstance(runs["max_concurrent_runs"], int) and runs["max_concurrent_runs"] > 0
    backfill = [t for t in runs["tag_concurrency_limits"] if t["key"] == "dagster/backfill"]
    assert len(backfill) == 1 and 0 < backfill[0]["limit"] < runs["max_concurrent_runs"]
    assert cfg["telemetry"]["enabled"] is False


def test_empty_password_and_unset_variables(tmp_path, monkeypatch):
    """The instance config resolves DAGSTER_PG_*: an empty password gives a URL without one, a password is
    URL-encoded, and an unset variable is a configuration error that names it (public API only)."""
    with throwaway_postgres_database() as url:
        db = sa.make_url(url).database
        env = {"DAGSTER_PG_USERNAME": "postgres", "DAGSTER_PG_PASSWORD": "", "DAGSTER_PG_HOST": "127.0.0.1",
               "DAGSTER_PG_DB": db, "DAGSTER_PG_PORT": "5432"}
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        shutil.copy(REPO / "dagster.yaml", tmp_path / "dagster.yaml")

        def storage_url() -> str:
            inst = dg.DagsterInstance.from_config(str(tmp_path))
            try:
                return inst.event_log_storage.postgres_url
            finally:
                inst.dispose()

        assert storage_url() == f"postgresql://postgres@127.0.0.1:5432/{db}"
        monkeypatch.setenv("DAGSTER_PG_PASSWORD", "p@ss word")  # trust auth: any password connects
        assert storage_url() == f"postgresql://postgres:p%40ss%20word@127.0.0.1:5432/{db}"
        monkeypatch.delenv("DAGSTER_PG_HOST")
        with pytest.raises(dg.DagsterInvalidConfigError, match="DAGSTER_PG_HOST"):
            storage_url()
        dispose_engines()


def test_local_instance_is_sqlite_with_the_same_coordinator(tmp_path, monkeypatch):
    for name in PG_VARS:
        monkeypatch.delenv(name, raising=False)
    cfg = load_yaml(REPO / "deploy" / "dagster-local.yaml")
    assert "storage" not in cfg
    assert cfg["run_coordinator"] == load_yaml(REPO / "dagster.yaml")["run_coordinator"]
    shutil.copy(REPO / "deploy" / "dagster-local.yaml", tmp_path / "dagster.yaml")
    inst = dg.DagsterInstance.from_config(str(tmp_path))
    try:
        assert type(inst.run_storage).__name__ == "SqliteRunStorage"
        assert type(inst.event_log_storage).__name__ == "SqliteEventLogStorage"
        assert type(inst.schedule_storage).__name__ == "SqliteScheduleStorage"
        assert type(inst.run_coordinator).__name__ == "QueuedRunCoordinator"
        assert inst.get_concurrency_config().run_queue_config.max_concurrent_runs == 2
        assert (tmp_path / "history").is_dir()  # SQLite files under DAGSTER_HOME
    finally:
        inst.dispose()


# --------------------------------------------------------------------------------------------------------
# docker-compose.yml, the Dockerfile, deploy/
# --------------------------------------------------------------------------------------------------------

_INTERPOLATION = re.compile(r"\$\$|\$\{(\w+)(?::-([^}]*))?\}")


def interpolate(value, env: dict[str, str]):
    """Compose's ``${VAR}`` / ``${VAR:-default}`` substitution (``$$`` is a literal ``$``), inside any structure."""
    if isinstance(value, str):
        return _INTERPOLATION.sub(
            lambda m: "$" if m.group(0) == "$$" else env.get(m.group(1)) or (m.group(2) or ""), value)
    if isinstance(value, dict):
        return {k: interpolate(v, env) for k, v in value.items()}
    if isinstance(value, list):
        return [interpolate(v, env) for v in value]
    return value


@pytest.fixture(scope="module")
def compose() -> dict:
    return interpolate(load_yaml(REPO / "docker-compose.yml"), {})


def dockerfile_instructions() -> list[tuple[str, str]]:
    text = (REPO / "Dockerfile").read_text().replace("\\\n", " ")
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def dockerfile_value(name: str) -> str:
    values = [rest for word, rest in dockerfile_instructions() if word == name]
    assert values, f"no {name} in the Dockerfile"
    return values[-1]


def dockerfile_env() -> dict[str, str]:
    env = {}
    for word, rest in dockerfile_instructions():
        if word == "ENV":
            for item in shlex.split(rest):
                key, _, value = item.partition("=")
                env[key] = value
    return env


def test_compose_services_and_start_order(compose):
    services = compose["services"]
    assert {"postgres", "code_location", "webserver", "daemon"} <= set(services)
    assert services["postgres"]["image"].startswith("postgres:16")
    assert "healthcheck" in services["postgres"] and "healthcheck" in services["code_location"]
    assert services["code_location"]["depends_on"] == {"postgres": {"condition": "service_healthy"}}
    for name in ("webserver", "daemon"):
        assert services[name]["depends_on"] == {
            "postgres": {"condition": "service_healthy"},
            "code_location": {"condition": "service_healthy"},
        }
    for name in ("code_location", "webserver", "daemon"):
        assert services[name]["build"]["context"] == "."
        assert (REPO / services[name]["build"].get("dockerfile", "Dockerfile")).is_file()
    assert any(str(p).endswith(":3000") for p in services["webserver"]["ports"])
    # Runs write compute logs in the code location; the UI reads them: one shared volume.
    storage = f"{dockerfile_env()['DAGSTER_HOME']}/storage"
    for name in ("code_location", "webserver", "daemon"):
        assert any(v.split(":")[1] == storage for v in services[name]["volumes"]), name


def test_compose_workspace_points_at_the_code_location(compose):
    services = compose["services"]
    code = services["code_location"]["command"]
    assert code[:3] == ["dagster", "code-server", "start"]
    port = int(code[code.index("-p") + 1])
    assert code[code.index("-h") + 1] == "0.0.0.0"
    assert code[code.index("-m") + 1] == "sigmasight_pipeline.definitions"
    assert services["webserver"]["command"][0] == "dagster-webserver"
    assert services["daemon"]["command"][:2] == ["dagster-daemon", "run"]
    workdir = dockerfile_value("WORKDIR")
    for name in ("webserver", "daemon"):
        command = services[name]["command"]
        path = command[command.index("-w") + 1]
        assert path.startswith(workdir + "/"), path
        workspace = load_yaml(REPO / path[len(workdir) + 1:])
        (entry,) = workspace["load_from"]
        assert entry["grpc_server"]["host"] == "code_location"
        assert entry["grpc_server"]["port"] == port
    # The image's default command is the code location's.
    cmd = yaml.safe_load(dockerfile_value("CMD"))
    assert cmd == code


def test_compose_environment(compose):
    services = compose["services"]
    pg = services["postgres"]["environment"]
    for name in ("code_location", "webserver", "daemon"):
        env = services[name]["environment"]
        assert set(PG_VARS) <= set(env), name
        assert env["DAGSTER_PG_HOST"] == "postgres"
        assert env["DAGSTER_PG_PORT"] == "5432"
        # the same credentials and database the postgres service is created with
        assert (env["DAGSTER_PG_USERNAME"], env["DAGSTER_PG_PASSWORD"], env["DAGSTER_PG_DB"]) == (
            pg["POSTGRES_USER"], pg["POSTGRES_PASSWORD"], pg["POSTGRES_DB"])
    url = sa.engine.make_url(services["code_location"]["environment"]["SIGMASIGHT_DATABASE_URL"])
    assert (url.drivername, url.host, url.port) == ("postgresql+psycopg", "postgres", 5432)
    assert (url.username, url.password) == (pg["POSTGRES_USER"], pg["POSTGRES_PASSWORD"])
    assert url.database != pg["POSTGRES_DB"]
    # The warehouse database is created by the init script mounted into the postgres container.
    init = [v for v in services["postgres"]["volumes"] if v.split(":")[1] == "/docker-entrypoint-initdb.d"]
    assert len(init) == 1
    init_dir = REPO / init[0].split(":")[0]
    sql = "\n".join(p.read_text() for p in sorted(init_dir.glob("*.sql")))
    assert re.search(rf"CREATE DATABASE\s+\"?{url.database}\"?\s*;", sql, re.IGNORECASE)
    # Defaults apply when nothing is set, and the shell's values win.
    custom = interpolate(load_yaml(REPO / "docker-compose.yml"), {"DAGSTER_PG_PASSWORD": "other"})
    assert custom["services"]["daemon"]["environment"]["DAGSTER_PG_PASSWORD"] == "other"
    assert custom["services"]["postgres"]["environment"]["POSTGRES_PASSWORD"] == "other"


def test_dockerfile_installs_the_package_as_non_root():
    ins = dockerfile_instructions()
    assert dockerfile_value("FROM") == "python:3.11-slim"
    runs = " && ".join(rest for word, rest in ins if word == "RUN")
    assert re.search(r"pip install (-e )?\.(\s|$)", runs), runs
    user = dockerfile_value("USER")
    assert user not in ("root", "0")
    assert "useradd" in runs and user in runs
    env = dockerfile_env()
    assert env["DAGSTER_HOME"] == "/opt/dagster/dagster_home"
    copies = [rest.split() for word, rest in ins if word == "COPY"]
    assert ["dagster.yaml", "$DAGSTER_HOME/dagster.yaml"] in copies
    # pip install runs after the sources it installs are copied
    order = [word if word != "RUN" or "pip install" not in rest else "PIP" for word, rest in ins]
    copied_before_pip = {src for word, rest in ins[: order.index("PIP")] if word == "COPY" for src in rest.split()[:-1]}
    assert {"pyproject.toml", "README.md", "sigmasight_pipeline"} <= copied_before_pip


def test_dockerignore_keeps_what_the_image_copies():
    patterns = [
        p.strip() for p in (REPO / ".dockerignore").read_text().splitlines() if p.strip() and not p.startswith("#")
    ]
    sources = [src for word, rest in dockerfile_instructions() if word == "COPY" for src in rest.split()[:-1]]
    for src in sources:
        assert (REPO / src).exists(), src
        assert not any(fnmatch.fnmatch(src, p) for p in patterns), src
    assert ".venv" in patterns and ".git" in patterns


def test_definitions_load_from_the_image_layout(tmp_path):
    """The files the Dockerfile copies into WORKDIR, and nothing else, are enough to load the Definitions."""
    app = tmp_path / "app"
    app.mkdir()
    workdir = dockerfile_value("WORKDIR")
    for word, rest in dockerfile_instructions():
        if word != "COPY":
            continue
        *sources, dest = rest.split()
        if dest.startswith("$"):
            continue  # into $DAGSTER_HOME, not the app folder
        target = app / dest[len(workdir) + 1:] if dest.startswith(workdir) else app / dest
        for src in sources:
            path = REPO / src
            to = target / path.name if dest.endswith("/") else target
            if path.is_dir():
                shutil.copytree(path, to, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
            else:
                to.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy(path, to)
    code = (
        "import dagster as dg, sigmasight_pipeline\n"
        "from sigmasight_pipeline.definitions import defs\n"
        "from sigmasight_pipeline.sqlmodels.project import default_project_dir\n"
        "d = defs(); dg.Definitions.validate_loadable(d)\n"
        "print(sigmasight_pipeline.__file__); print(default_project_dir()); print(len(list(d.assets or [])))\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("SIGMASIGHT_")}
    env.update(PYTHONPATH=str(app), PYTHONDONTWRITEBYTECODE="1")
    proc = subprocess.run([sys.executable, "-c", code], cwd=app, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    module_file, sql_dir, n_assets = proc.stdout.strip().splitlines()[-3:]
    assert Path(module_file).is_relative_to(app)
    assert Path(sql_dir) == (app / "dbt_like_sql").resolve() and Path(sql_dir).is_dir()
    assert int(n_assets) > 0


def test_compose_api_service_serves_the_same_warehouse_and_launches_through_the_webserver(compose):
    services = compose["services"]
    api = services["api"]
    command = api["command"]
    assert command[:2] == ["sigmasight", "serve"] and command[command.index("--host") + 1] == "0.0.0.0"
    port = command[command.index("--port") + 1]
    assert any(str(p).endswith(f":{port}") for p in api["ports"])
    env = api["environment"]
    assert env["SIGMASIGHT_DATABASE_URL"] == services["code_location"]["environment"]["SIGMASIGHT_DATABASE_URL"]
    assert set(PG_VARS) <= set(env)  # the Dagster instance (run status and history) is the deployment's
    webserver_port = services["webserver"]["command"][services["webserver"]["command"].index("-p") + 1]
    assert env["SIGMASIGHT_DAGSTER_URL"] == f"http://webserver:{webserver_port}"
    # the reports the code location writes are the ones the API serves
    reports = dockerfile_env()["SIGMASIGHT_REPORTS_DIR"]
    assert any(v.split(":")[:2] == ["reports", reports] for v in services["code_location"]["volumes"])
    assert any(v.split(":")[:2] == ["reports", reports] for v in api["volumes"])
    assert "healthcheck" in api and "/api/v1/health" in " ".join(api["healthcheck"]["test"])
