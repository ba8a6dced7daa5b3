"""An operator's script drives a real ``dagster-webserver`` + ``dagster-daemon`` through the UI's GraphQL API.

A throwaway instance (``DAGSTER_HOME`` holding a copy of ``deploy/dagster-local.yaml``) and a temporary SQLite
warehouse are prepared in-process (the three demo books, the market history), then the two servers start as
subprocesses on a free loopback port with the repository's ``workspace.yaml``. Through
``sigmasight_pipeline.webserver_client`` only, the test switches the sensors and schedules off, launches an asset
backfill of every date x portfolio asset over 5 sessions x 3 portfolios (one run per portfolio: single-run
backfill policy on the smaller dimension) and checks its runs and check results, then launches one partition of
``stress_results`` the way the UI's Materialize button does.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import dagster as dg
import pytest

from sigmasight_pipeline import webserver_client as wc

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent  # the venv's dagster-webserver / dagster-daemon
FIRST, LAST = "2025-06-23", "2025-06-27"  # 5 consecutive XNYS sessions
ONE_PARTITION = ("2025-06-27", "demo-hnw")


def prepare_books_and_market(instance: dg.DagsterInstance, database_url: str, first: str, last: str) -> list[str]:
    """In-process preparation, the ONE place to adapt when orchestration moves: import the three demo books
    (stored, added to the ``portfolio`` dynamic partitions, positions materialized) and materialize the market
    history that [first, last] needs. Returns the portfolio ids in the order they were added."""
    from sigmasight_pipeline import runner
    from sigmasight_pipeline.defs.partitions import history_start
    from sigmasight_pipeline.onboarding import DEMO_BOOKS, demo_csv_text

    ids = [
        runner.import_portfolio(instance, demo_csv_text(book), name=book.name, owner=book.owner,
                                portfolio_id=book.portfolio_id, filename=book.csv_file, database_url=database_url)
        for book in DEMO_BOOKS
    ]
    runner.materialize_market(instance, history_start(first), last)
    return ids


def date_portfolio_asset_keys() -> list[dg.AssetKey]:
    """The assets partitioned by date x portfolio, read from the one Definitions."""
    from sigmasight_pipeline.definitions import defs

    graph = defs().resolve_asset_graph()
    keys = [
        k for k in graph.toposorted_asset_keys
        if isinstance(graph.get(k).partitions_def, dg.MultiPartitionsDefinition)
        and set(graph.get(k).partitions_def.partition_dimension_names) == {"date", "portfolio"}
    ]
    assert keys, "no date x portfolio asset in the definitions"
    return keys


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _tail(path: Path, lines: int = 60) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError as exc:
        return f"({exc})"


@dataclass
class OperatorStack:
    """The running webserver (and, once started, the daemon) on a throwaway instance and warehouse."""

    url: str
    env: dict[str, str]
    logs: Path
    portfolio_ids: list[str]
    procs: dict[str, subprocess.Popen] = field(default_factory=dict)

    def start(self, name: str, *args: str) -> None:
        log = open(self.logs / f"{name}.log", "wb")
        self.procs[name] = subprocess.Popen(
            [str(BIN / name), *args], cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, start_new_session=True,  # own process group: its code servers and runs too
        )
        log.close()

    def start_daemon(self) -> None:
        self.start("dagster-daemon", "run", "-w", str(ROOT / "workspace.yaml"))

    def check_alive(self) -> None:
        dead = {n: p.returncode for n, p in self.procs.items() if p.poll() is not None}
        assert not dead, f"server process(es) exited: {dead}\n{self.log_tails()}"

    def log_tails(self) -> str:
        return "\n".join(f"----- {p.name} (last lines) -----\n{_tail(p)}" for p in sorted(self.logs.glob("*.log")))

    def stop(self) -> None:
        for proc in self.procs.values():  # the processes this test started, by their process group id
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + 15
        for proc in self.procs.values():
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
        for proc in self.procs.values():
            try:
                os.killpg(proc.pid, signal.SIGKILL)  # leftovers of the group (code server, run workers)
            except ProcessLookupError:
                pass
            proc.wait(timeout=10)


@pytest.fixture
def operator_stack(tmp_path, monkeypatch, request):
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(ROOT / "deploy" / "dagster-local.yaml", home / "dagster.yaml")
    database_url = f"sqlite:///{tmp_path / 'warehouse.db'}"
    settings = {
        "DAGSTER_HOME": str(home),
        "SIGMASIGHT_DATABASE_URL": database_url,
        "SIGMASIGHT_HOME": str(tmp_path / "sigmasight_home"),
        "SIGMASIGHT_REPORTS_DIR": str(tmp_path / "reports"),
        "SIGMASIGHT_MARKET_DATA": "sample",
    }
    for key, value in settings.items():  # the test process (in-process preparation) ...
        monkeypatch.setenv(key, value)

    started = time.monotonic()
    instance = dg.DagsterInstance.get()  # the same SQLite instance the servers will read
    try:
        ids = prepare_books_and_market(instance, database_url, FIRST, LAST)
    finally:
        instance.dispose()
    print(f"\n[{time.monotonic() - started:5.1f} s] prepared {ids} and the market history in-process")

    logs = tmp_path / "logs"
    logs.mkdir()
    port = _free_port()
    env = {**os.environ, **settings, "PYTHONUNBUFFERED": "1"}  # ... and the servers
    stack = OperatorStack(url=f"http://127.0.0.1:{port}", env=env, logs=logs, portfolio_ids=ids)
    failures_before = request.session.testsfailed
    try:
        stack.start("dagster-webserver", "-h", "127.0.0.1", "-p", str(port), "-w", str(ROOT / "workspace.yaml"))
        wc.wait_for_server(stack.url, timeout=120)
        print(f"[{time.monotonic() - started:5.1f} s] webserver ready at {stack.url}")
        yield stack
    except BaseException:
        print(stack.log_tails())
        raise
    finally:
        if request.session.testsfailed > failures_before:
            print(stack.log_tails())
        stack.stop()


def _by_name(evaluations: list[wc.CheckEvaluation], severity: str = "ERROR") -> dict[str, bool]:
    """check -> passed, for the checks of one severity (a failed WARN check names something to read, such as
    the hedge fund's stress losses beyond its equity; it fails nothing)."""
    out: dict[str, bool] = {}
    for ev in evaluations:
        if ev.severity == severity:
            out[ev.name] = out.get(ev.name, True) and ev.passed
    return out


def test_operator_backfill_and_single_partition_run_through_graphql(operator_stack):
    stack, url, ids = operator_stack, operator_stack.url, operator_stack.portfolio_ids
    t0 = time.monotonic()
    assets = date_portfolio_asset_keys()

    # Automation off first, so that only this script's launches run (the daemon is not started yet).
    stopped = wc.stop_automation(url)
    print(f"stopped: {stopped}")
    assert wc.sensor_names(url, running_only=True) == []
    assert wc.schedule_names(url, running_only=True) == []

    # The instance's portfolios, as the UI sees them, and a clear error for a wrong selection.
    assert wc.partition_keys_by_dimension(url, "stress_results")["portfolio"] == ids
    with pytest.raises(wc.WebserverError, match="no_such_asset") as bad:
        wc.launch_backfill(url, ["no_such_asset"], partition_names=[f"{LAST}|{ids[0]}"])
    assert bad.value.typename == "AssetNotFoundError"
    with pytest.raises(wc.WebserverError, match="nobody") as bad:
        wc.launch_backfill(url, ["stress_results"], partition_names=[f"{LAST}|nobody"])
    assert bad.value.typename == "PartitionKeysNotFoundError"

    # Every date x portfolio asset, 5 sessions x 3 portfolios: one range per portfolio.
    ranges = [(f"{FIRST}|{pid}", f"{LAST}|{pid}") for pid in ids]
    backfill_id = wc.launch_backfill(url, assets, partition_ranges=ranges, tags={"sigmasight/test": "operator"},
                                     title=f"operator test {FIRST}..{LAST}")
    # The backfill is registered before the daemon starts: its first iteration picks it up at once (the
    # backfill daemon otherwise looks every 30 s).
    stack.start_daemon()
    backfill = wc.wait_for_backfill(url, backfill_id, timeout=300)
    stack.check_alive()
    print(f"[{time.monotonic() - t0:5.1f} s] backfill {backfill_id}: {backfill.status}, "
          + ", ".join(f"{r.partition_range} {r.status}" for r in backfill.runs))
    failures = {r.run_id: wc.run_failures(url, r.run_id) for r in backfill.runs if r.status != "SUCCESS"}
    assert backfill.status == "COMPLETED_SUCCESS", (backfill, failures)
    assert backfill.succeeded
    assert len(backfill.runs) == len(ids)  # single-run policy: one run per portfolio (the smaller dimension)
    assert sorted(r.partition_range for r in backfill.runs) == sorted(ranges)
    for run in backfill.runs:
        assert run.tags.get(wc.BACKFILL_ID_TAG) == backfill_id
        assert run.tags.get("sigmasight/test") == "operator"
        checks = _by_name(wc.check_results(url, run.run_id))
        assert checks and all(checks.values()), (run.partition_range, checks)
        warned = _by_name(wc.check_results(url, run.run_id), severity="WARN")
        assert {"stress_results.loss_cap", "stress_results.scenario_count", "stress_results.zero_shock_zero_pnl",
                "factor_exposures.history_window"} <= set(checks) | set(warned), checks
        beyond_equity = not warned.get("stress_results.stress_losses_within_equity", True)
        assert beyond_equity == run.partition_range[0].endswith("|demo-hedge-fund"), (run.partition_range, warned)

    # One partition of stress_results as the UI's Materialize button launches it and, at the same time, a
    # single ranged run of another portfolio (the "single run" choice of the UI's partition dialog).
    key = "|".join(ONE_PARTITION)
    other = next(pid for pid in ids if pid != ONE_PARTITION[1])
    span = (f"{FIRST}|{other}", f"{LAST}|{other}")
    run_id = wc.launch_run(url, ["stress_results"], partition_key=key, tags={"sigmasight/test": "operator"})
    range_run_id = wc.launch_run(url, ["stress_results"], partition_range=span)
    run = wc.wait_for_run(url, run_id, timeout=180)
    range_run = wc.wait_for_run(url, range_run_id, timeout=180)
    stack.check_alive()
    evaluations = wc.check_results(url, run_id)
    print(f"[{time.monotonic() - t0:5.1f} s] run {run_id} ({key}): {run.status}, "
          + ", ".join(f"{e.name}={'ok' if e.passed else 'FAILED'}" for e in evaluations))
    print(f"[{time.monotonic() - t0:5.1f} s] run {range_run_id} {span}: {range_run.status}")
    assert run.status == "SUCCESS", (run, wc.run_failures(url, run_id))
    assert run.partition == key and run.partition_range is None
    assert run.tags.get("dagster/partition/date") == ONE_PARTITION[0]
    assert run.tags.get("dagster/partition/portfolio") == ONE_PARTITION[1]
    assert run.tags.get("sigmasight/test") == "operator"
    assert {e.asset_key for e in evaluations} == {"stress_results"}
    checks = _by_name(evaluations)
    assert {"stress_results.loss_cap", "stress_results.scenario_count", "stress_results.zero_shock_zero_pnl"} <= (
        set(checks) | set(_by_name(evaluations, severity="WARN")))
    assert all(checks.values()), checks

    assert range_run.status == "SUCCESS", (range_run, wc.run_failures(url, range_run_id))
    assert range_run.partition_range == span and range_run.partition is None
    range_checks = _by_name(wc.check_results(url, range_run_id))
    assert set(range_checks) == set(checks) and all(range_checks.values()), range_checks
