"""Alembic's environment script for the warehouse. All of it is configured in code: see
:func:`sigmasight_pipeline.warehouse.migrate.run_environment` (target metadata, batch mode on SQLite)."""

from alembic import context

from sigmasight_pipeline.warehouse.migrate import run_environment

# Alembic runs this file with its context established; a plain import (test_layers imports every module
# alone) must do nothing.
if getattr(context, "_proxy", None) is not None:
    run_environment(context)
