"""dbt-like SQL models: files of SQL with ``{{ ref() }}`` and ``{{ source() }}``, compiled per dialect and built.

A plain Python package (no Dagster): :mod:`.project` loads ``dbt_like_sql/``, :mod:`.compiler` renders the
Jinja for SQLite or PostgreSQL, :mod:`.graph` resolves refs and sources into a build order,
:mod:`.build` creates the views and tables, :mod:`.modeltests` runs ``not_null`` and ``unique`` tests.
``sigmasight_pipeline.defs.sql_models`` turns the same manifest into Dagster assets and checks.

    >>> from sigmasight_pipeline.sqlmodels import build_all
    >>> build_all(engine)  # {"stg_positions": 12, ..., "mart_portfolio_daily": 380}
"""

from sigmasight_pipeline.sqlmodels.build import (
    BuildResult,
    ModelBuildError,
    build_all,
    build_model,
    build_models,
    drop_models,
    read_relation,
)
from sigmasight_pipeline.sqlmodels.compiler import Compiler, resolve_dialect
from sigmasight_pipeline.sqlmodels.graph import Manifest, load_manifest, topological_order
from sigmasight_pipeline.sqlmodels.modeltests import ModelTest, TestOutcome, model_tests, run_model_test, run_model_tests
from sigmasight_pipeline.sqlmodels.project import (
    Model,
    ModelConfig,
    Source,
    SqlProject,
    SqlProjectError,
    default_project_dir,
    load_project,
)

__all__ = [
    "BuildResult",
    "Compiler",
    "Manifest",
    "Model",
    "ModelBuildError",
    "ModelConfig",
    "ModelTest",
    "Source",
    "SqlProject",
    "SqlProjectError",
    "TestOutcome",
    "build_all",
    "build_model",
    "build_models",
    "default_project_dir",
    "drop_models",
    "load_manifest",
    "load_project",
    "model_tests",
    "read_relation",
    "resolve_dialect",
    "run_model_test",
    "run_model_tests",
    "topological_order",
]
