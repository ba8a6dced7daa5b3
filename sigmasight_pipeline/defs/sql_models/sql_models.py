"""The dbt-like SQL models of ``dbt_like_sql/`` as Dagster assets, the way Dagster's dbt integration does it.

One subsettable multi-asset (``@dbt_assets`` in spirit): one asset per model (``stg_*`` views, ``mart_*``
tables), whose deps are the models it refs and the assets producing the warehouse tables it reads as
sources (``sources.yml``); one asset check per model test (``not_null``, ``unique_key``), blocking at
ERROR severity. A run builds the selected models in ref order; a model whose upstream model failed to
build or failed a blocking test is skipped (like ``dbt build``), and the step then fails.
Unpartitioned: every build covers the whole warehouse.
"""

import hashlib
from collections.abc import Iterator

import dagster as dg
import pandas as pd
import sqlalchemy as sa

from sigmasight_pipeline.defs.automation import sql_models_condition
from sigmasight_pipeline.defs.resources import WarehouseResource
from sigmasight_pipeline.sqlmodels import (
    Manifest,
    ModelBuildError,
    build_model,
    load_manifest,
    model_tests,
    read_relation,
    run_model_test,
)
from sigmasight_pipeline.sqlmodels.modeltests import ModelTest, TestOutcome

GROUP = "sql_models"
PREVIEW_ROWS = 5


def _md_table(frame: pd.DataFrame) -> str:
    # ".10g": money keeps its cents and betas their 4+ decimals (tabulate's default shows 6 digits).
    return frame.to_markdown(index=False, floatfmt=".10g") if len(frame) else "_no rows_"


def _static_metadata(manifest: Manifest, name: str) -> dict:
    model = manifest.model(name)
    meta: dict = {
        "materialized": model.materialized,
        "sql_file": str(model.path.relative_to(manifest.project.root.parent)),
        "sources": ", ".join(f"{s.source_name}.{s.table}" for s in manifest.sources[name]) or "none",
        "refs": ", ".join(manifest.refs[name]) or "none",
    }
    if model.config.unique_key:
        meta["unique_key"] = ", ".join(model.config.unique_key)
    if model.config.columns:
        meta["dagster/column_schema"] = dg.TableSchema(
            columns=[dg.TableColumn(c, description=d) for c, d in model.config.columns.items()]
        )
    return meta


def model_spec(manifest: Manifest, name: str) -> dg.AssetSpec:
    model = manifest.model(name)
    deps = [dg.AssetKey(r) for r in manifest.refs[name]] + [dg.AssetKey(a) for a in manifest.source_assets(name)]
    return dg.AssetSpec(
        key=dg.AssetKey(name),
        deps=deps,
        description=model.description or f"SQL model {name} ({model.materialized}).",
        group_name=GROUP,
        kinds={"sql"},
        tags={"sql_model/materialized": model.materialized, **{f"sql_model/{t}": "" for t in model.config.tags}},
        metadata=_static_metadata(manifest, name),
        skippable=True,  # skipped when an upstream model fails (dbt build semantics)
        automation_condition=sql_models_condition(),
        code_version=hashlib.sha256(model.raw_sql.encode()).hexdigest()[:12],  # an edited model shows as changed
    )


def check_spec(test: ModelTest) -> dg.AssetCheckSpec:
    return dg.AssetCheckSpec(
        test.name,
        asset=dg.AssetKey(test.model),
        description=test.description,
        blocking=test.severity == "error",
        metadata={"columns": ", ".join(test.columns)},
    )


def _check_result(outcome: TestOutcome) -> dg.AssetCheckResult:
    test = outcome.test
    return dg.AssetCheckResult(
        asset_key=dg.AssetKey(test.model),
        check_name=test.name,
        passed=outcome.passed,
        severity=dg.AssetCheckSeverity.ERROR if test.severity == "error" else dg.AssetCheckSeverity.WARN,
        metadata={
            "failing_rows": outcome.failing_rows,
            "columns": ", ".join(test.columns),
            "sample": dg.MetadataValue.md(_md_table(outcome.sample)) if outcome.failing_rows else "none",
            "sql": dg.MetadataValue.md(f"```sql\n{outcome.sql}\n```"),
        },
    )


def _column_schema(engine: sa.Engine, manifest: Manifest, name: str) -> dg.TableSchema:
    described = manifest.model(name).config.columns
    columns = sa.inspect(engine).get_columns(name)
    return dg.TableSchema(
        columns=[
            dg.TableColumn(c["name"], type=str(c["type"]) or "unknown", description=described.get(c["name"]))
            for c in columns
        ]
    )


def run_sql_models(
    context: dg.AssetExecutionContext, engine: sa.Engine, manifest: Manifest
) -> Iterator[dg.MaterializeResult | dg.AssetCheckResult]:
    """Build the selected models in ref order, each followed by its selected tests."""
    selected = {k.to_user_string() for k in context.selected_asset_keys}
    selected_checks = {(k.asset_key.to_user_string(), k.name) for k in context.selected_asset_check_keys}
    failed: dict[str, str] = {}  # model -> why its downstream is skipped
    build_errors: list[str] = []
    for name in manifest.ordered(selected):
        blockers = sorted(u for u in manifest.upstream([name]) if u in failed)
        if blockers:
            failed[name] = f"upstream {', '.join(blockers)} failed"
            context.log.warning(f"skipping {name}: {failed[name]}")
            continue
        try:
            result = build_model(engine, manifest, name)
        except ModelBuildError as exc:
            context.log.error(str(exc))
            failed[name] = str(exc)
            build_errors.append(str(exc))
            continue
        preview = read_relation(engine, name, limit=PREVIEW_ROWS)
        metadata = {
            "dagster/row_count": result.rows,
            "dialect": result.dialect,
            "materialized": result.materialized,
            "compiled_sql": dg.MetadataValue.md(f"```sql\n{result.compiled_sql.rstrip()}\n```"),
            "preview": dg.MetadataValue.md(_md_table(preview)),
            "dagster/column_schema": _column_schema(engine, manifest, name),
            "build_seconds": round(result.seconds, 3),
        }
        if result.views_recreated:
            metadata["views_recreated"] = ", ".join(result.views_recreated)
        yield dg.MaterializeResult(asset_key=dg.AssetKey(name), metadata=metadata)
        for test in model_tests(manifest, name):
            if (name, test.name) not in selected_checks:
                continue
            outcome = run_model_test(engine, test)
            yield _check_result(outcome)
            if not outcome.passed and test.severity == "error":
                failed[name] = f"test {test.name} failed ({outcome.failing_rows} rows)"
    # Checks selected without their model (a checks-only run) test the relation as it stands.
    for name in manifest.ordered({m for m, _ in selected_checks} - selected):
        for test in model_tests(manifest, name):
            if (name, test.name) in selected_checks:
                try:
                    outcome = run_model_test(engine, test)
                except sa.exc.SQLAlchemyError as exc:
                    yield dg.AssetCheckResult(
                        asset_key=dg.AssetKey(name),
                        check_name=test.name,
                        passed=False,
                        metadata={"error": str(getattr(exc, "orig", exc)).strip()},
                    )
                    continue
                yield _check_result(outcome)
    if build_errors:
        raise dg.Failure(
            description=f"{len(build_errors)} SQL model(s) failed to build: " + "; ".join(build_errors),
            metadata={"errors": dg.MetadataValue.md("\n".join(f"- {e}" for e in build_errors))},
        )


def build_sql_model_assets(manifest: Manifest, name: str = "sql_models") -> dg.AssetsDefinition:
    """One subsettable multi-asset for every model of ``manifest`` with a check per model test."""

    @dg.multi_asset(
        name=name,
        specs=[model_spec(manifest, m) for m in manifest.order],
        check_specs=[check_spec(t) for m in manifest.order for t in model_tests(manifest, m)],
        can_subset=True,
        description="dbt-like SQL models of dbt_like_sql/ (staging views, mart tables), built in ref order.",
    )
    def _sql_models(context: dg.AssetExecutionContext, warehouse: WarehouseResource):
        yield from run_sql_models(context, warehouse.engine, manifest)

    return _sql_models


manifest = load_manifest()
sql_models = build_sql_model_assets(manifest)
