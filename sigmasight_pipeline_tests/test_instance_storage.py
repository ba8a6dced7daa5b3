"""A run keeps a SQLite Dagster instance's event-log files open (``defs/instance_storage.py``), and why.

The "why" is SQLite's: the last connection to close a WAL database checkpoints it and deletes its ``-wal`` file.
Dagster's SQLite event log opens and closes a connection per stored event, so without a held connection every
event ends with the WAL gone (shown below); with the warehouse resource's hold the WAL outlives each event, and
it is checkpointed away once the run ends and the hold is released. Speed is measured in
``benchmarks/backfill.py``, not here.
"""

from __future__ import annotations

import os

import dagster as dg
import pytest
from dagster_postgres import PostgresEventLogStorage

from sigmasight_pipeline.defs.instance_storage import INDEX_SHARD, event_log_files, event_log_held_open
from sigmasight_pipeline.defs.resources import WarehouseResource

DAYS = dg.DailyPartitionsDefinition(start_date="2025-06-02", end_date="2025-06-14")


@pytest.fixture
def sqlite_instance(tmp_path):
    instance = dg.DagsterInstance.local_temp(tempdir=str(tmp_path), overrides={"telemetry": {"enabled": False}})
    try:
        yield instance
    finally:
        instance.dispose()


def _wal(path: str) -> bool:
    return os.path.exists(f"{path}-wal")


def _shards(context) -> tuple[str, str]:
    storage = context.instance.event_log_storage
    return storage.path_for_shard(INDEX_SHARD), storage.path_for_shard(context.run_id)


def _days_asset(seen: dict, *, with_warehouse: bool, fail: bool = False):
    """A ranged asset over DAYS that logs one event, then records whether both shards still have a WAL."""

    def body(context) -> None:
        context.log.info("an event stored before the look")
        seen["wal"] = [_wal(path) for path in _shards(context)]
        seen["shards"] = _shards(context)
        if fail:
            raise RuntimeError("the asset failed")

    if with_warehouse:
        def days(context, warehouse: WarehouseResource) -> None:
            body(context)
    else:
        def days(context) -> None:
            body(context)
    return dg.asset(partitions_def=DAYS, backfill_policy=dg.BackfillPolicy.single_run(), name="days")(days)


def _materialize_range(asset, instance, **kwargs) -> dg.ExecuteInProcessResult:
    keys = DAYS.get_partition_keys()
    return dg.materialize(
        [asset], instance=instance, resources={"warehouse": WarehouseResource(database_url="sqlite://")},
        tags={"dagster/asset_partition_range_start": keys[0], "dagster/asset_partition_range_end": keys[-1]},
        **kwargs,
    )


def test_without_a_held_connection_every_stored_event_checkpoints_the_wal_away(sqlite_instance):
    seen: dict = {}
    assert _materialize_range(_days_asset(seen, with_warehouse=False), sqlite_instance).success
    assert seen["wal"] == [False, False]  # the cost the hold removes: a checkpoint and a new WAL per event


def test_a_run_through_the_warehouse_resource_keeps_both_shards_open_and_stores_every_event(sqlite_instance):
    seen: dict = {}
    result = _materialize_range(_days_asset(seen, with_warehouse=True), sqlite_instance)
    assert result.success
    assert seen["wal"] == [True, True]
    # every partition's materialization is stored, in the index shard too (what the UI's partition status reads)
    assert sqlite_instance.get_materialized_partitions(dg.AssetKey("days")) == set(DAYS.get_partition_keys())
    assert len(result.get_asset_materialization_events()) == len(DAYS.get_partition_keys())
    # released at the end of the run: the last close checkpointed each file and removed its WAL
    assert [_wal(path) for path in seen["shards"]] == [False, False]


def test_a_failed_run_releases_the_files_too(sqlite_instance):
    seen: dict = {}
    failing = _days_asset(seen, with_warehouse=True, fail=True)
    result = _materialize_range(failing, sqlite_instance, raise_on_error=False)
    assert not result.success
    assert seen["wal"] == [True, True]
    assert [_wal(path) for path in seen["shards"]] == [False, False]


def test_the_held_files_are_the_index_and_the_run_shard_that_exist(sqlite_instance):
    sqlite_instance.get_asset_records()  # the index shard exists once the instance has been read
    index = sqlite_instance.event_log_storage.path_for_shard(INDEX_SHARD)
    assert event_log_files(sqlite_instance, "no-such-run") == [index]  # a shard not yet written is not created
    assert not os.path.exists(sqlite_instance.event_log_storage.path_for_shard("no-such-run"))
    with event_log_held_open(sqlite_instance, None) as held:
        assert held == [index]


def test_instances_without_sqlite_files_hold_nothing():
    ephemeral = dg.DagsterInstance.ephemeral()
    with event_log_held_open(ephemeral, "run") as held:
        assert held == []
    # a PostgreSQL event log keeps no shard files: the hold is a no-op there
    assert not hasattr(PostgresEventLogStorage, "path_for_shard")


def test_a_file_that_cannot_be_read_is_left_alone(sqlite_instance):
    sqlite_instance.get_asset_records()
    index = sqlite_instance.event_log_storage.path_for_shard(INDEX_SHARD)
    run_shard = sqlite_instance.event_log_storage.path_for_shard("broken-run")
    with open(run_shard, "wb") as f:
        f.write(b"not a database" * 100)
    with event_log_held_open(sqlite_instance, "broken-run") as held:
        assert held == [index]
