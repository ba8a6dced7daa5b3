"""Portfolio reports: Markdown (Jinja2), JSON (with a JSON Schema), CSV and PNG charts.

No Dagster here and no reads except :func:`load_report_input` / :func:`load_report_inputs`. Typical use::

    inp = load_report_input(engine, portfolio_id, date)
    rendered = build_report(inp, generated_at=datetime.now(timezone.utc))
    problems = prepublish_problems(rendered, inp, expected_scenarios=len(scenarios))
    charts = render_charts(rendered)
    result = write_report(rendered, charts, report_dir(output_root, inp.portfolio_name, date))

One module per job:

- :mod:`.inputs`      report inputs: ``ReportInput``, and how frames and dates are read;
- :mod:`.loader`      the inputs read from the warehouse (each table once per range; what a range shares once);
- :mod:`.formatting`  precision by field, Decimal rounding, money / Greeks / betas, Markdown cells;
- :mod:`.sections`    each section of a report built from its inputs, once, for every output;
- :mod:`.markdown`    the Markdown (Jinja2 template);
- :mod:`.json_report` the JSON document, its text and its JSON Schema;
- :mod:`.csv_report`  the CSV (34 columns, one row per position);
- :mod:`.charts`      the five PNG charts;
- :mod:`.report`      ``build_report``: sections rendered to every output (``RenderedReport``);
- :mod:`.validation`  the pre-publish check across the outputs (the asset's blocking check);
- :mod:`.writer`      where a report goes, written atomically.
"""

from .charts import (
    cumulative_pnl_chart,
    drawdown_chart,
    factor_exposure_chart,
    render_charts,
    stress_chart,
    var_backtest_chart,
)
from .formatting import FIELD_KINDS, format_field
from .inputs import ReportInput
from .json_report import REPORT_VERSION, load_report_schema, report_json_text, schema_problems
from .loader import collection_paused, load_report_input, load_report_inputs
from .report import RenderedReport, build_report
from .sections import CSV_COLUMNS, ENGINES, engine_availability
from .validation import prepublish_problems
from .writer import WriteResult, report_dir, report_slug, write_report

__all__ = [
    "CSV_COLUMNS",
    "ENGINES",
    "FIELD_KINDS",
    "REPORT_VERSION",
    "RenderedReport",
    "ReportInput",
    "WriteResult",
    "build_report",
    "collection_paused",
    "cumulative_pnl_chart",
    "drawdown_chart",
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
    "var_backtest_chart",
    "write_report",
]
