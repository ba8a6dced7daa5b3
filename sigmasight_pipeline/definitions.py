"""The one ``Definitions`` of SigmaSight Pipeline: everything under ``defs/`` plus resources and executor.

Loaded by ``dagster dev`` through ``workspace.yaml``, by ``dg check defs`` through ``[tool.dg]`` in
``pyproject.toml``, and by the ``sigmasight`` CLI and the tests.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import dagster as dg

from sigmasight_pipeline.defs.resources import default_resources


@dg.definitions
def defs() -> dg.Definitions:
    with warnings.catch_warnings():
        # We use two Dagster features marked beta, knowingly and pinned to one release (pyproject.toml): the
        # single-run backfill policy and the automation sensor evaluated in the code location (custom
        # conditions). Their notice at every load would bury the UI's and daemon's own logs.
        warnings.simplefilter("ignore", dg.BetaWarning)
        loaded = dg.load_from_defs_folder(path_within_project=Path(__file__).parent)
    return dg.Definitions.merge(
        loaded,
        dg.Definitions(
            resources=default_resources(),
            # Steps run in the run's own process: a step subprocess costs ~2 s of imports on a 2-core
            # machine, more than most of our vectorised steps take.
            executor=dg.in_process_executor,
        ),
    )
