"""The one ``Definitions`` of SigmaSight Pipeline: everything under ``defs/`` plus resources and executor.

Loaded by ``dagster dev`` through ``workspace.yaml``, by ``dg check defs`` through ``[tool.dg]`` in
``pyproject.toml``, and by the ``sigmasight`` CLI and the tests. The automation conditions are set here, in
one place, by what each asset is (``defs/automation.py``), as dagster-open-platform applies its policies.
"""

from __future__ import annotations

from pathlib import Path

import dagster as dg

from sigmasight_pipeline.defs.automation import with_automation
from sigmasight_pipeline.defs.resources import default_resources


@dg.definitions
def defs() -> dg.Definitions:
    return with_automation(
        dg.Definitions.merge(
            dg.load_from_defs_folder(path_within_project=Path(__file__).parent),
            dg.Definitions(
                resources=default_resources(),
                # Steps run in the run's own process: a step subprocess costs ~2 s of imports on a 2-core
                # machine, more than most of our vectorised steps take.
                executor=dg.in_process_executor,
            ),
        )
    )
