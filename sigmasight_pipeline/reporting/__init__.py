"""Portfolio reports: Markdown (Jinja2), JSON (with a JSON Schema), CSV and PNG charts.

No Dagster here and no reads except :func:`load_report_input` / :func:`load_report_inputs`. Typical use::

    inp = load_report_input(engine, portfolio_id, date)
    rendered = build_report(inp, generated_at=datetime.now(timezone.utc))
    problems = prepublish_problems(rendered, inp, expected_scenarios=len(scenarios))
    charts = render_charts(rendered)
    result = write_report(rendered, charts, report_dir(output_root, inp.portfolio_name, date))
"""

from .builders import (
    CSV_COLUMNS,
    ENGINES,
    FIELD_KINDS,
    REPORT_VERSION,
    RenderedReport,
    build_report,
    engine_availability,
    format_field,
)
from .charts import cumulative_pnl_chart, factor_exposure_chart, render_charts, stress_chart
from .data import ReportInput, load_report_input, load_report_inputs
from .validation import load_report_schema, prepublish_problems, schema_problems
from .writer import WriteResult, report_dir, report_json_text, report_slug, write_report

__all__ = [
    "CSV_COLUMNS",
    "ENGINES",
    "FIELD_KINDS",
    "REPORT_VERSION",
    "RenderedReport",
    "ReportInput",
    "WriteResult",
    "build_report",
    "cumulative_pnl_chart",
    "engine_availability",
    "factor_exposure_chart",
    "format_field",
    "load_report_input",
    "load_report_inputs",
    "load_report_schema",
    "prepublish_problems",
    "render_charts",
    "report_dir",
    "report_json_text",
    "report_slug",
    "schema_problems",
    "stress_chart",
    "write_report",
]
