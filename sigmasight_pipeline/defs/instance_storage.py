"""Keep a SQLite Dagster instance's event-log files open for the length of a run.

Why: Dagster's SQLite event log (the local instance of ``make demo`` and ``dagster dev``) opens a new
connection for every event it stores and closes it right after (a ``NullPool`` engine per write). SQLite's
WAL mode checkpoints the database and deletes its ``-wal`` file whenever the *last* connection to it closes
(https://www.sqlite.org/wal.html, "the last connection to close ... checkpoints"), so every event of a run
paid a full checkpoint of the shared index shard and of the run's own shard, and re-created both WAL files on
the next write. A ranged run stores one materialization event per asset and partition (1,342 in one demo book's
run), and on the demo this was the largest single cost of the whole backfill.

One idle connection held open to each file for the run's duration makes every other close a plain close: the
WAL stays, and SQLite's automatic checkpoint (every 1,000 pages, by a committing writer) keeps it short. The
held connection never opens a transaction, so it blocks no writer and no checkpoint. Dagster's own code and
files are untouched: this only opens the files it names through its storage's public ``path_for_shard``. A
PostgreSQL or in-memory instance has no such files, and nothing is held.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from collections.abc import Iterator

import dagster as dg

#: The cross-run shard of Dagster's sharded SQLite event log (every asset event is mirrored into it).
INDEX_SHARD = "index"


def event_log_files(instance: dg.DagsterInstance, run_id: str | None) -> list[str]:
    """The SQLite files the instance's event log writes a run's events to (index shard, the run's shard) that
    exist now; empty when the event log is not a sharded SQLite one."""
    path_for_shard = getattr(instance.event_log_storage, "path_for_shard", None)
    if path_for_shard is None:
        return []
    shards = [INDEX_SHARD] + ([run_id] if run_id else [])
    return [path for path in map(path_for_shard, shards) if os.path.exists(path)]


@contextlib.contextmanager
def event_log_held_open(instance: dg.DagsterInstance, run_id: str | None) -> Iterator[list[str]]:
    """Hold one idle connection to each of :func:`event_log_files` while the block runs; yields their paths."""
    with contextlib.ExitStack() as stack:
        held = []
        for path in event_log_files(instance, run_id):
            # autocommit (isolation_level=None): the connection never holds a transaction or a read snapshot
            conn = stack.enter_context(contextlib.closing(sqlite3.connect(path, isolation_level=None, timeout=60)))
            try:
                conn.execute("SELECT 1 FROM sqlite_master LIMIT 1").fetchall()  # opens the file and its WAL index
            except sqlite3.Error:
                continue  # only a speed-up: a file that cannot be read now is left to Dagster, the run goes on
            held.append(path)
        yield held
