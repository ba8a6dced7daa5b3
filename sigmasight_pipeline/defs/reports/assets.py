"""Portfolio reports: Markdown, JSON, CSV and charts per (date, portfolio), written atomically.

Which files a run writes is its run config (:class:`ReportConfig`, default all three formats, so the automation
and the demo write everything); ``sigmasight report --format json`` passes ``formats: [json]``. The charts go
with the Markdown (it links them). Every report is built and validated whole whatever is written.
"""

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field

import dagster as dg
import pandas as pd

from sigmasight_pipeline.defs.check_history import check_name, failed_checks_by_portfolio
from sigmasight_pipeline.defs.resources import ReportsResource, WarehouseResource
from sigmasight_pipeline.defs.metadata import RUN, preview_label
from sigmasight_pipeline.defs.partitions import partition_portfolios
from sigmasight_pipeline.defs.date_portfolio import add_rows, date_portfolio_asset, portfolio_batches, run_metadata, write_tables
from sigmasight_pipeline.defs.performance.pnl_attribution import pnl_attribution
from sigmasight_pipeline.defs.performance.portfolio_performance import portfolio_performance
from sigmasight_pipeline.defs.risk.correlations import position_correlations
from sigmasight_pipeline.defs.risk.factor_exposures import factor_exposures
from sigmasight_pipeline.defs.risk.greeks import position_greeks
from sigmasight_pipeline.defs.risk.rate_sensitivity import rate_sensitivity
from sigmasight_pipeline.defs.risk.valuation import position_valuations
from sigmasight_pipeline.defs.risk_measures.risk_measures import risk_measures
from sigmasight_pipeline.defs.snapshots.portfolio_snapshots import portfolio_snapshots
from sigmasight_pipeline.defs.stress.stress_results import stress_results
from sigmasight_pipeline.reporting import (
    build_report,
    collection_paused,
    load_report_inputs,
    prepublish_problems,
    render_charts,
    report_dir,
    write_report,
)
from sigmasight_pipeline.reporting.writer import REPORT_FORMATS, check_formats
from sigmasight_pipeline.warehouse import schema
from sigmasight_pipeline.warehouse.reference import stress_scenarios

UPSTREAM = [position_valuations, position_greeks, factor_exposures, rate_sensitivity, position_correlations,
            stress_results, portfolio_snapshots, risk_measures, portfolio_performance, pnl_attribution]


def failed_upstream_checks(instance: dg.DagsterInstance, portfolio_ids: Sequence[str]) -> dict[str, list[str]]:
    """Per portfolio, the checks of the upstream assets whose latest evaluation for that portfolio failed (the
    report's data-quality section; ``defs/check_history.py``)."""
    keys = [spec.key for asset in UPSTREAM for spec in asset.check_specs]
    failed = failed_checks_by_portfolio(instance, keys, portfolio_ids)
    return {pid: sorted(map(check_name, found)) for pid, found in failed.items()}


class ReportConfig(dg.Config):
    """Run config of ``portfolio_reports``: the formats to write (any of "md", "json", "csv"; default all)."""

    formats: list[str] = list(REPORT_FORMATS)


@dataclass
class BatchReports:
    """What reporting one batch did: its ``portfolio_reports`` index rows, the problems of the reports not
    published, the directories written and the last report's Markdown (the asset's preview) and date."""

    index_rows: list[dict] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    written: list[str] = field(default_factory=list)
    preview: str | None = None
    preview_date: dt.date | None = None


def report_batch(context: dg.AssetExecutionContext, engine, batch, root, failed_checks: list[str],
                 expected_scenarios: int, formats: tuple[str, ...] = REPORT_FORMATS) -> BatchReports:
    """Build, validate and write the report of every session of ``batch`` (its inputs read once for all); only
    the files of ``formats`` are written (the charts with the Markdown).

    Runs with the garbage collector paused (:func:`collection_paused`): a batch's inputs are some 10^5
    long-lived row records and its reports create no reference cycles (none over a demo book's 122 reports),
    so the collections their allocations would set off (each full one traversing Dagster's heap as well:
    ~0.2-0.5 s, ~10 ms per partition in all) would free nothing. The inputs are released (by reference
    counting) before the collector resumes, so it does not find them to traverse either.
    """
    out = BatchReports()
    with collection_paused():
        inputs = list(load_report_inputs(engine, batch.portfolio_id, batch.sessions))
        for date, inp in zip(batch.sessions, inputs):
            inp.failed_checks = failed_checks
            generated_at = dt.datetime.now(dt.timezone.utc)
            rendered = build_report(inp, generated_at=generated_at)
            found = prepublish_problems(rendered, inp, expected_scenarios=expected_scenarios)
            out.problems += [f"{batch.portfolio_id} {date:%Y-%m-%d}: {p}" for p in found]
            if found:
                continue  # never publish a report that fails validation; the check says why
            charts = render_charts(rendered) if "md" in formats else {}
            result = write_report(rendered, charts, report_dir(root, inp.portfolio["name"], date), formats)
            if result.overwrote:
                context.log.info(f"overwrote the report in {result.directory}")
            out.written.append(str(result.directory))
            out.preview, out.preview_date = rendered.markdown, date
            out.index_rows.append({
                "date": date, "report_dir": str(result.directory), "generated_at": generated_at,
                "engines_available": rendered.engines_available, "engines_missing": rendered.engines_missing,
            })
        inputs = inp = rendered = None  # the batch's inputs go before the collector resumes (see above)
    return out


@date_portfolio_asset(
    group_name="reports",
    kinds=("python", "markdown"),
    deps=UPSTREAM,
    description=(
        "The portfolio report of each (date, portfolio): portfolio_report.md (Jinja2), .json (validated against "
        "data/report.schema.json), .csv (34 columns) and PNG charts, in reports/{slug}_{date}/, written "
        "atomically. Every section is anchored on the partition date; a section without data says why. Run "
        "config `formats` (default [md, json, csv]) restricts the files written; the charts go with md."
    ),
    check_specs=[
        dg.AssetCheckSpec(
            "prepublish_validation",
            asset="portfolio_reports",
            blocking=True,
            description=(
                "Long + short counts equal the position count; stress scenarios equal the scenario file; no "
                "duplicate factor rows; JSON and Markdown agree on every engine's availability; every figure's "
                "date equals the anchor date; the JSON validates against its schema."
            ),
        )
    ],
)
def portfolio_reports(context: dg.AssetExecutionContext, config: ReportConfig, warehouse: WarehouseResource,
                      reports: ReportsResource):
    try:
        formats = check_formats(config.formats)
    except ValueError as exc:
        raise dg.Failure(f"portfolio_reports run config: {exc}") from None
    engine = warehouse.engine
    expected_scenarios = len(stress_scenarios()[0])
    failed_checks = failed_upstream_checks(context.instance, partition_portfolios(context))
    batches, rows, problems, written, preview, preview_date = [], {}, [], [], None, None
    for batch in portfolio_batches(context, engine):
        batches.append(batch)
        done = report_batch(context, engine, batch, reports.root, failed_checks[batch.portfolio_id],
                            expected_scenarios, formats)
        problems += done.problems
        written += done.written
        if done.preview is not None:
            preview, preview_date = done.preview, done.preview_date
        add_rows(rows, write_tables(engine, batch, {schema.portfolio_reports: pd.DataFrame(done.index_rows)}))
    yield dg.MaterializeResult(
        metadata=run_metadata(
            batches, rows,
            **{
                f"{RUN}reports_written": len(written),
                "output_root": str(reports.root),
                "formats_written": ", ".join(formats),
                f"{RUN}latest_report_dir": written[-1] if written else "none",
                preview_label("report", preview_date): dg.MetadataValue.md(preview or "_no report written_"),
            },
        )
    )
    yield dg.AssetCheckResult(
        check_name="prepublish_validation", passed=not problems,
        metadata={"problems": "\n".join(problems[:20]) or "none", "reports_checked": len(written) + len(problems)},
    )
