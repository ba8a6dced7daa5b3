"""Subprocess entry point of the reliability tests (``test_reliability.py``): one portfolio run in a fresh process.

    python -m sigmasight_pipeline_tests.reliability_worker --portfolio demo-individual \
        --start 2025-06-09 --end 2025-06-13 [--skip portfolio_reports] [--ready FILE --go FILE] \
        [--pause-after-delete TABLE --marker FILE]

The warehouse is the one of ``$SIGMASIGHT_DATABASE_URL`` (the test sets it). The run goes through
``orchestration.materialize_portfolio`` exactly as the CLI's, against an ephemeral Dagster instance that
knows the portfolio's dynamic partition key.

``--ready``/``--go``: once imports and definitions are loaded, write ``--ready`` and wait for ``--go`` to
exist, so that several workers start their runs at the same moment.

``--pause-after-delete TABLE``: a test hook. When the run's ``DELETE FROM TABLE ...`` has executed inside
its write transaction (not yet committed), write ``--marker`` and sleep: the test then kills the process
with SIGKILL at that exact point, mid-transaction. Nothing else of the run is changed.

Exit status 0 and one JSON line on stdout on success; 1 and the failures on stderr when the run fails.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path


def _install_pause(table: str, marker: Path) -> None:
    import sqlalchemy as sa

    prefix = f"DELETE FROM {table} "

    def _after(conn, cursor, statement, parameters, context, executemany):
        if statement.lstrip().startswith(prefix):
            # Write then rename: the test polls for the marker and must never read it half-written.
            tmp = marker.with_name(marker.name + ".tmp")
            tmp.write_text(json.dumps({"pid": os.getpid(), "statement": statement.split(" WHERE")[0]}))
            tmp.replace(marker)
            time.sleep(600)  # hold the open transaction until the test kills us
            os._exit(3)  # never killed: give up without committing

    sa.event.listen(sa.engine.Engine, "after_cursor_execute", _after)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="reliability_worker")
    parser.add_argument("--portfolio", required=True)
    parser.add_argument("--start", required=True)
    parser.add_argument("--end", required=True)
    parser.add_argument("--skip", action="append", default=[], help="asset key not to materialize")
    parser.add_argument("--ready", type=Path)
    parser.add_argument("--go", type=Path)
    parser.add_argument("--go-timeout", type=float, default=300.0)
    parser.add_argument("--pause-after-delete")
    parser.add_argument("--marker", type=Path)
    args = parser.parse_args(argv)

    import dagster as dg

    from sigmasight_pipeline import runner as orch
    from sigmasight_pipeline.defs.partitions import PORTFOLIO_DIMENSION

    defs = orch.load_definitions()
    selection = [k for k in orch.portfolio_asset_keys(defs) if k.to_user_string() not in set(args.skip)]
    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions(PORTFOLIO_DIMENSION, [args.portfolio])
    if args.pause_after_delete:
        if not args.marker:
            parser.error("--pause-after-delete needs --marker")
        _install_pause(args.pause_after_delete, args.marker)
    if args.ready:
        args.ready.write_text(str(os.getpid()))
    if args.go:
        deadline = time.monotonic() + args.go_timeout
        while not args.go.exists():
            if time.monotonic() > deadline:
                print(f"no go signal ({args.go}) within {args.go_timeout} s", file=sys.stderr)
                return 2
            time.sleep(0.02)
    started = time.time()
    try:
        result = orch.materialize_portfolio(instance, args.portfolio, args.start, args.end, defs=defs, selection=selection)
    except orch.RunFailedError as exc:
        print(json.dumps({"portfolio": args.portfolio, "failures": exc.failures}), file=sys.stderr)
        return 1
    print(json.dumps({
        "portfolio": args.portfolio, "run_id": result.run_id, "success": result.success,
        "started": started, "finished": time.time(),
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main())
