"""Pre-publish validation of a rendered report (spec/report.md): the report asset's blocking check.

It reads all three outputs together (the JSON, the Markdown, the CSV) and the input they came from; the
JSON Schema itself lives with the JSON (:mod:`.json_report`).

:func:`prepublish_problems` returns human-readable problems; an empty list means the report may be
published. It checks:

- the JSON validates against ``data/report.schema.json`` (:func:`.json_report.schema_problems`);
- long + short counts equal the position count (and the CSV / JSON position lists agree with it);
- the stress scenario count equals the scenario file's count (when stress results are available);
- no duplicate factor rows (input rows, JSON, Markdown table);
- JSON and Markdown agree on every engine's availability: the availability map, the JSON engine
  objects, the Markdown data-quality table and the Markdown "not available" markers, and that map is
  the one the input gives;
- every figure's date equals the anchor date (every input row, the JSON metadata and ``as_of`` dates,
  the CSV ``report_date`` column, the Markdown header); no history (snapshots, attribution, backtest)
  passes it.
"""

from __future__ import annotations

import csv
import io
import re
from collections import Counter

import numpy as np
import pandas as pd

from .formatting import OPTION_TYPES, is_missing
from .inputs import DATED_SECTIONS, HISTORY_TABLES, SECTION_TABLES, ReportInput, anchor_mask, day_values, on_date
from .json_report import schema_problems
from .report import RenderedReport
from .sections import ENGINES, engine_availability

__all__ = [
    "prepublish_problems",
    "markdown_availability",
    "markdown_engine_table",
]

_MARKER_RE = re.compile(r"\*\*Not available\*\* \(engine: ([a-z_]+)\)")
_DQ_ROW_RE = re.compile(r"^\| ([a-z_]+) \| (available|not available) \| ?(.*?) ?\|$")
_LONG_TYPES = ("LONG", "LC", "LP")


def _section_text(markdown: str, title: str) -> str:
    """Text of the level-2 section titled ``title`` (``## <number>. <title>``), up to the next one."""
    lines = markdown.splitlines()
    heading = re.compile(rf"^## (\d+\. )?{re.escape(title)}$")
    out, inside = [], False
    for line in lines:
        if line.startswith("## "):
            inside = bool(heading.match(line))
            continue
        if inside:
            out.append(line)
    return "\n".join(out)


def _unescape_cell(text: str) -> str:
    return re.sub(r"\\(.)", r"\1", text.strip())


def markdown_engine_table(markdown: str) -> dict[str, tuple[bool, str]]:
    """engine -> (available, reason) as the Markdown data-quality table states them."""
    table: dict[str, tuple[bool, str]] = {}
    for line in _section_text(markdown, "Data quality").splitlines():
        m = _DQ_ROW_RE.match(line)
        if m:
            table[m.group(1)] = (m.group(2) == "available", _unescape_cell(m.group(3)))
    return table


def markdown_availability(markdown: str) -> tuple[dict[str, bool], set[str]]:
    """(engine -> available from the data-quality table, engines carrying a "not available" marker)."""
    table = {engine: ok for engine, (ok, _) in markdown_engine_table(markdown).items()}
    markers = set(_MARKER_RE.findall(markdown))
    return table, markers


def _markdown_factor_rows(markdown: str) -> list[str]:
    """First cells of the portfolio factor table in the Markdown."""
    lines = markdown.splitlines()
    out: list[str] = []
    try:
        start = lines.index("### Factor exposures")
    except ValueError:
        return out
    in_table = False
    for line in lines[start + 1 :]:
        if line.startswith("#"):
            break
        if line.startswith("| Factor |"):
            in_table = True
            continue
        if in_table:
            if not line.startswith("|"):
                break
            if line.startswith("|---"):
                continue
            out.append(line.split("|")[1].strip())
    return out


def _dates_of(frame: pd.DataFrame) -> pd.Series:
    return pd.to_datetime(frame["date"], errors="coerce").dt.date


def _csv_report_dates(text: str) -> list:
    """The ``report_date`` of every CSV row as ``csv.DictReader`` reads it (blank lines skipped, None
    for a row too short to have one)."""
    reader = csv.reader(io.StringIO(text))
    header = next(reader, None)
    if header is None:
        return []
    at = len(header) - 1 - header[::-1].index("report_date") if "report_date" in header else None
    return [row[at] if at is not None and at < len(row) else None for row in reader if row != []]


def _has_duplicates(inp: ReportInput, frame: pd.DataFrame, keys: list[str]) -> bool:
    """Whether ``frame.duplicated(keys).any()``, on the input's records when no key is missing."""
    recs = inp.records(frame)
    rows = [tuple(r[k] for k in keys) for r in recs]
    if any(is_missing(v) for row in rows for v in row):  # pandas' rules for missing keys
        return bool(frame.duplicated(keys).any())
    return len(set(rows)) != len(rows)


def prepublish_problems(rendered: RenderedReport, inp: ReportInput, expected_scenarios: int) -> list[str]:
    """Problems that must stop the report from being published; ``[]`` means it passes."""
    problems: list[str] = []
    anchor = inp.anchor_date
    anchor_iso = anchor.isoformat()
    js = rendered.json if isinstance(rendered.json, dict) else {}

    # --- 0. layout ---------------------------------------------------------------------------------
    problems += schema_problems(js)
    if problems:
        return problems  # the checks below read the layout the schema guarantees

    positions = js["positions"]
    summary = js["positions_summary"]
    csv_dates = _csv_report_dates(rendered.csv)

    # --- 1. counts ---------------------------------------------------------------------------------
    if len(csv_dates) != len(positions):
        problems.append(f"CSV has {len(csv_dates)} rows but the JSON lists {len(positions)} positions")
    positions = [p for p in positions if p["exit_date"] is None]  # held; closed ones are listed after them
    n = len(positions)
    if summary["position_count"] != n:
        problems.append(f"positions_summary.position_count {summary['position_count']} != {n} positions listed")
    if js["exposures"]["available"]:
        data = js["exposures"]["data"]
        long_c, short_c = data["long_count"], data["short_count"]
        if long_c + short_c != n:
            problems.append(f"long ({long_c}) + short ({short_c}) = {long_c + short_c} != position count {n}")
        if data["position_count"] != n:
            problems.append(f"portfolio_exposures.position_count {data['position_count']} != position count {n}")
        by_sign = sum(1 for p in positions if p["position_type"] in _LONG_TYPES)
        if long_c != by_sign:
            problems.append(f"long count {long_c} != {by_sign} positions of a long type (LONG/LC/LP)")
        options = sum(1 for p in positions if p["position_type"] in OPTION_TYPES)
        if data["option_count"] != options or data["stock_count"] != n - options:
            problems.append(
                f"options/stocks {data['option_count']}/{data['stock_count']} != {options}/{n - options} by position type"
            )

    # --- 2. stress scenarios -----------------------------------------------------------------------
    if js["stress_tests"]["available"]:
        got = js["stress_tests"]["data"]["scenario_count"]
        ids = [s["scenario_id"] for s in js["stress_tests"]["data"]["scenarios"]]
        if got != expected_scenarios:
            problems.append(f"stress scenario count {got} != {expected_scenarios} scenarios in the scenario file")
        dup = sorted(k for k, c in Counter(ids).items() if c > 1)
        if dup:
            problems.append(f"duplicate stress scenarios: {', '.join(dup)}")

    # --- 3. duplicate factor rows ------------------------------------------------------------------
    pf = inp.section("portfolio_factors")
    if len(pf) and "factor_name" in pf.columns:
        keys = [c for c in ("date", "portfolio_id", "factor_name") if c in pf.columns]
        dup = pf[pf.duplicated(keys, keep=False)] if _has_duplicates(inp, pf, keys) else None
        if dup is not None and len(dup):
            problems.append(f"duplicate factor rows in portfolio_factor_exposures: {', '.join(sorted(set(map(str, dup['factor_name']))))}")
    posf = inp.section("position_factors")
    if len(posf) and {"position_id", "factor_name"} <= set(posf.columns):
        keys = [c for c in ("date", "portfolio_id", "position_id", "factor_name") if c in posf.columns]
        dup = posf[posf.duplicated(keys, keep=False)] if _has_duplicates(inp, posf, keys) else None
        if dup is not None and len(dup):
            pairs = sorted({f"#{p} {f}" for p, f in zip(dup["position_id"], dup["factor_name"])})
            problems.append(f"duplicate factor rows in position_factor_exposures: {', '.join(pairs)}")
    if js["factor_exposures"]["available"]:
        names = [f["factor_name"] for f in js["factor_exposures"]["data"]["factors"]]
        dup = sorted(k for k, c in Counter(names).items() if c > 1)
        if dup:
            problems.append(f"duplicate factor rows in the JSON: {', '.join(dup)}")
    md_factors = _markdown_factor_rows(rendered.markdown)
    dup = sorted(k for k, c in Counter(md_factors).items() if c > 1)
    if dup:
        problems.append(f"duplicate factor rows in the Markdown: {', '.join(dup)}")

    # --- 4. availability agreement -----------------------------------------------------------------
    md_reasons = markdown_engine_table(rendered.markdown)  # (markdown_availability, the table read once)
    md_table = {engine: ok for engine, (ok, _) in md_reasons.items()}
    md_markers = set(_MARKER_RE.findall(rendered.markdown))
    from_input = engine_availability(inp)
    for engine in ENGINES:
        mapped = rendered.availability.get(engine, (None, None))[0]
        in_json = js[engine]["available"]
        in_dq = js["data_quality"]["engines"].get(engine)
        in_md = md_table.get(engine)
        marked = engine in md_markers
        if in_md is None:
            problems.append(f"{engine}: missing from the Markdown data-quality table")
        views = {
            "availability map": mapped, "JSON": in_json, "JSON data_quality": in_dq,
            "Markdown data quality": in_md, "Markdown section (no marker)": not marked,
            "input": from_input[engine][0],
        }
        if len({v for v in views.values() if v is not None}) > 1:
            detail = ", ".join(f"{k}={v}" for k, v in views.items())
            problems.append(f"{engine}: availability disagrees ({detail})")
        if in_md is False and not in_json and md_reasons[engine][1] != js[engine].get("reason", ""):
            problems.append(
                f"{engine}: the Markdown gives the reason {md_reasons[engine][1]!r}, the JSON {js[engine].get('reason')!r}"
            )
    for engine in sorted(md_markers - set(ENGINES)):
        problems.append(f"Markdown marks an unknown engine {engine!r} as not available")

    # --- 5. one anchor date ------------------------------------------------------------------------
    meta = js["metadata"]
    for key in ("anchor_date", "report_date"):
        if meta[key] != anchor_iso:
            problems.append(f"metadata.{key} {meta[key]} != anchor date {anchor_iso}")
    for engine in ENGINES:
        other = [d for d in js[engine]["as_of"] if d != anchor_iso]
        if other:
            problems.append(f"{engine}: figures dated {', '.join(other)}, not the anchor date {anchor_iso}")
    for name in DATED_SECTIONS:
        frame = inp.section(name)
        if len(frame) == 0:
            continue
        if "date" not in frame.columns:
            problems.append(f"{SECTION_TABLES[name]}: rows without a date column")
            continue
        if anchor_mask(inp, frame).all():  # every row is dated the anchor and of the input's portfolio
            continue
        off = ~on_date(frame["date"], anchor)
        if off.any():
            wrong = sorted({str(d) for d in _dates_of(frame[off])})
            problems.append(
                f"{SECTION_TABLES[name]}: {int(off.sum())} row(s) dated {', '.join(wrong)}, "
                f"not the anchor date {anchor_iso}"
            )
        if "portfolio_id" in frame.columns:
            others = sorted({str(p) for p in frame["portfolio_id"].tolist()} - {inp.portfolio_id})
            if others:
                problems.append(f"{SECTION_TABLES[name]}: rows of other portfolios ({', '.join(others)})")
    for name, table in HISTORY_TABLES.items():
        hist = inp.section(name)
        if len(hist) and "date" in hist.columns:
            after = day_values(hist["date"]) > np.datetime64(anchor, "D")  # NaT is never after
            later = sorted({str(d) for d in _dates_of(hist[after])}) if after.any() else []
            if later:
                what = "snapshot history" if name == "snapshot_history" else f"{table} history"
                problems.append(f"{what} has rows after the anchor date {anchor_iso}: {', '.join(later)}")
    bad_csv = sorted({d for d in csv_dates if d != anchor_iso})
    if bad_csv:
        problems.append(f"CSV report_date {', '.join(map(str, bad_csv))} != anchor date {anchor_iso}")
    bad_json = sorted({p["report_date"] for p in positions if p["report_date"] != anchor_iso})
    if bad_json:
        problems.append(f"JSON positions report_date {', '.join(bad_json)} != anchor date {anchor_iso}")
    if f"**Anchor date:** {anchor_iso}" not in rendered.markdown:
        problems.append(f"the Markdown header does not state the anchor date {anchor_iso}")
    return problems
