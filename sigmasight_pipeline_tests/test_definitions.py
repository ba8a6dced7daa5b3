"""The one Definitions loads, validates, and passes `dagster definitions validate` and `dg check defs`."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import dagster as dg

from sigmasight_pipeline.definitions import defs

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def test_definitions_validate_in_process():
    d = defs()
    dg.Definitions.validate_loadable(d)
    keys = {k.to_user_string() for k in d.resolve_asset_graph().get_all_asset_keys()}
    assert {"market_prices", "security_returns", "portfolio_positions"} <= keys


def test_every_asset_has_a_description_and_a_group():
    graph = defs().resolve_asset_graph()
    for key in graph.get_all_asset_keys():
        node = graph.get(key)
        assert node.description, f"{key} has no description"
        assert node.group_name != "default", f"{key} has no group"


def _cli(tmp_path, *args: str) -> subprocess.CompletedProcess:
    # An empty DAGSTER_HOME: the repo's dagster.yaml is the PostgreSQL deployment config, not for this test.
    env = {**os.environ, "DAGSTER_HOME": str(tmp_path), "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    return subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)


def test_dagster_definitions_validate_cli(tmp_path):
    exe = shutil.which("dagster", path=str(BIN)) or "dagster"
    res = _cli(tmp_path, exe, "definitions", "validate", "-w", "workspace.yaml")
    assert res.returncode == 0, res.stdout + res.stderr


def test_dg_check_defs_cli(tmp_path):
    exe = shutil.which("dg", path=str(BIN)) or "dg"
    res = _cli(tmp_path, exe, "check", "defs")
    assert res.returncode == 0, res.stdout + res.stderr
