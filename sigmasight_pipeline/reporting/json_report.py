"""The JSON report: the document built from a report's sections, its text, and its JSON Schema.

The layout (key order included) is the one ``data/report.schema.json`` describes: version, metadata,
portfolio info, one envelope per engine (``available``, ``reason`` when not, ``as_of``, ``data``), the
positions summary and rows, the charts and the data-quality flags. Money, Greeks, betas, correlations and
ratios are strings with a fixed number of decimals by field (:mod:`.formatting`).
"""

from __future__ import annotations

import json
import json.encoder
from functools import lru_cache
from importlib import resources

from .formatting import FIELD_KINDS, as_str
from .sections import CHARTS, ENGINES, ReportSections

__all__ = [
    "REPORT_VERSION",
    "precision_policy",
    "report_document",
    "report_json_text",
    "load_report_schema",
    "report_validator",
    "schema_problems",
]

REPORT_VERSION = "1.0"


def precision_policy() -> dict:
    """The ``metadata.precision_policy`` of every report (a fresh copy)."""

    def fields(kind):
        return sorted(f for f, k in FIELD_KINDS.items() if k == kind)

    return {
        "rounding": "ROUND_HALF_UP on the stored value's shortest decimal representation; zero is printed unsigned",
        "money": {"decimals": 2, "fields": fields("money")},
        "greeks_betas": {"decimals": 4, "fields": fields("greek")},
        "correlations": {"decimals": 6, "fields": fields("correlation")},
        "ratios": {"decimals": 6, "fields": fields("ratio")},
        "quantities": "as stored (up to 8 decimals), trailing zeros dropped",
        "notes": [
            "Money, Greeks, betas, correlations and ratios are strings with a fixed number of decimals by field.",
            "realized_pnl is realised up to the report date (lots matched FIFO, fees deducted when paid); total_pnl = unrealized_pnl + realized_pnl. positions lists the positions held, then those closed by the report date (exit_date set, quantity 0); positions_summary.position_count counts the held ones.",
            "portfolio_weight = market_value / portfolio gross exposure (signed ratio, 6 decimals).",
            "position_exposure = the position's delta-adjusted exposure.",
            "delta_adjusted_exposure (and _long, _short) is equity exposure; volatility_delta_exposure is the delta-adjusted exposure of VIX options (priced off VIX spot, futures curve not modelled), reported apart.",
            "Option Greeks are Black-Scholes-Merton: implied_vol is the volatility used and vol_source says which (implied: uploaded; realized: the underlying's realised volatility; none), dividend_yield is q; an option's CSV notes say the same in words.",
            "cost_basis is quantity x entry price x contract multiplier (x100 for options), as stored.",
            "Position Greeks (CSV delta..rho) are per position: per-share Greek x quantity x multiplier, signed.",
            "Portfolio Greek totals come from portfolio_snapshots.",
            "daily_return and stress pct_of_gross_exposure are ratios on gross exposure; stress pct_of_equity is a "
            "ratio on equity (net liquidation value = net exposure, no cash modelled; null when equity <= 0) and "
            "exceeds_equity marks a loss beyond equity; the Markdown shows ratios as percentages.",
            "risk_measures: VaR and ES (loss) are positive losses in dollars (negative: a gain, never clipped); level is "
            "the confidence level; horizon_days 10 is the 1-day figure x sqrt(10); contributions are dollars and add "
            "up to their measure (Euler), marginal = d sigma / d exposure, share = contribution / the measure; "
            "volatility_of_equity and tracking_error_of_equity are annual dollars / equity; factor_share and "
            "specific_share split the parametric variance; kupiec_lr has 4 decimals, kupiec_p_value 6.",
            "performance: returns, volatility, drawdowns, Sharpe, Sortino, Calmar, alpha, tracking error and market "
            "return are ratios (6 decimals); beta 4, correlation 6; attribution exposure and pnl are dollars.",
        ],
    }


def _envelope(sec: ReportSections, engine: str) -> dict:
    ok, reason = sec.availability[engine]
    obj: dict = {"available": ok}
    if not ok:
        obj["reason"] = reason
    obj["as_of"] = sec.as_of[engine]
    obj["data"] = sec.engines[engine] if ok else None
    return obj


def report_document(sec: ReportSections) -> dict:
    """The report as a JSON document (a dict in layout order)."""
    inp = sec.inp
    name = inp.portfolio_name
    return {
        "version": REPORT_VERSION,
        "metadata": {
            "portfolio_id": inp.portfolio_id,
            "portfolio_name": name,
            "report_date": sec.anchor_iso,
            "anchor_date": sec.anchor_iso,
            "generated_at": sec.generated_iso,
            "precision_policy": precision_policy(),
        },
        "portfolio_info": {
            "portfolio_id": inp.portfolio_id,
            "name": name,
            "owner": as_str(inp.portfolio.get("owner")),
            "position_count": sec.positions_summary["position_count"],
        },
        **{engine: _envelope(sec, engine) for engine in ENGINES},
        "positions_summary": sec.positions_summary,
        "positions": sec.positions,
        "charts": [
            {"file": f, "title": CHARTS[f], "available": ok, **({} if ok else {"reason": reason})}
            for f, (ok, reason) in sec.charts.items()
        ],
        "data_quality": {
            "engines": {e: ok for e, (ok, _) in sec.availability.items()},
            "limited_history": list(sec.flags.limited_history),
            "missing_prices": list(sec.flags.missing_prices),
            "other_flags": list(sec.flags.other),
            "entry_warnings": list(sec.flags.entry_warnings),
            "failed_checks": list(inp.failed_checks),
        },
    }


def report_json_text(rendered) -> str:
    """The JSON file's text of a rendered report: 2-space indent, UTF-8, keys in layout order, trailing newline.

    The text of ``json.dumps(doc, indent=2, ensure_ascii=False, allow_nan=False)``, written by
    :func:`_indented` (the standard library's encoder with ``indent`` is its pure-Python one, several
    times slower); a document it does not handle goes to ``json.dumps`` itself.
    """
    try:
        return _indented(rendered.json, "") + "\n"
    except (_Unhandled, RecursionError):
        return json.dumps(rendered.json, indent=2, ensure_ascii=False, allow_nan=False) + "\n"


class _Unhandled(Exception):
    """A value :func:`_indented` leaves to ``json.dumps`` (and its errors)."""


_encode_str = json.encoder.encode_basestring  # the C encoder of json.dumps(ensure_ascii=False) when available
_INFINITIES = (float("inf"), float("-inf"))


def _indented(value, pad: str) -> str:
    """``value`` as ``json.dumps(..., indent=2, ensure_ascii=False, allow_nan=False)`` writes it at the
    indentation ``pad``: dicts with str keys, lists, tuples, str, int, float, bool and None of exactly
    those types; anything else raises :class:`_Unhandled`."""
    kind = type(value)
    if kind is str:
        return _encode_str(value)
    if value is None:
        return "null"
    if kind is bool:
        return "true" if value else "false"
    if kind is int:
        return int.__repr__(value)
    if kind is float:
        if value != value or value in _INFINITIES:
            raise _Unhandled  # json.dumps raises its ValueError
        return float.__repr__(value)
    if kind is dict:
        if not value:
            return "{}"
        inner = pad + "  "
        items = []
        for key, item in value.items():
            if not isinstance(key, str):
                raise _Unhandled
            name = _KEYS.get(key)
            if name is None:
                name = _encode_str(key) + ": "
                if len(_KEYS) < 4096:
                    _KEYS[key] = name
            # the common leaves inline (a report has thousands of them)
            if type(item) is str:
                items.append(name + _encode_str(item))
            elif item is None:
                items.append(name + "null")
            else:
                items.append(name + _indented(item, inner))
        return "{\n" + inner + (",\n" + inner).join(items) + "\n" + pad + "}"
    if kind is list or kind is tuple:
        if not value:
            return "[]"
        inner = pad + "  "
        return "[\n" + inner + (",\n" + inner).join([_indented(item, inner) for item in value]) + "\n" + pad + "]"
    if isinstance(value, str):  # a str subclass (e.g. SQLAlchemy's quoted_name): json.dumps writes its text
        return _encode_str(value)
    raise _Unhandled


_KEYS: dict[str, str] = {}  # key -> its encoded form and ": " (the same few hundred keys recur)


# ---------------------------------------------------------------------------------------------------
# JSON Schema
# ---------------------------------------------------------------------------------------------------
@lru_cache(maxsize=1)
def load_report_schema() -> dict:
    """The report JSON Schema shipped in ``sigmasight_pipeline/data/report.schema.json``."""
    text = resources.files("sigmasight_pipeline.data").joinpath("report.schema.json").read_text(encoding="utf-8")
    return json.loads(text)


@lru_cache(maxsize=1)
def report_validator():
    """The Draft 2020-12 validator of the report schema, built (and the schema checked) once per process."""
    from jsonschema import Draft202012Validator

    schema = load_report_schema()
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


_DEFS = "#/$defs/"
_SCHEMA_MAPS = ("properties", "patternProperties", "dependentSchemas", "$defs")  # keywords mapping names to schemas
_VALUES = ("enum", "const", "required", "default", "examples")  # keywords holding data, not schemas


def check_schema(schema: dict) -> dict:
    """``schema`` rewritten for the compiled yes/no check: it accepts exactly the documents ``schema`` accepts,
    in about a third of the time (a report has ~1,500 money strings and hundreds of nullable figures).

    Three rewrites, all exact:

    * a ``{"$ref": "#/$defs/<name>"}`` (nothing beside it) to a definition that, rewritten, holds no
      reference itself (``money``, ``greek``, ``money_or_null``, ...) is replaced by that definition:
      fastjsonschema calls one function per reference, i.e. per figure;
    * ``{"anyOf": [{"type": "string", "pattern": p}, {"type": "null"}]}`` (a nullable figure) becomes
      ``{"type": ["string", "null"], "pattern": p}``: a pattern constrains strings only, so both accept the
      strings matching ``p`` and null. fastjsonschema tries an ``anyOf``'s branches in turn, so a null was
      first tried as a string and failed there (an exception raised and caught per null);
    * ``{"const": v}`` becomes ``{"enum": [v]}`` (fastjsonschema compares both with ``==``): its code
      generator fails on ``const`` without detailed exceptions, and a yes/no check needs no details (the
      validator compiles in half the time without them: once per process).

    Everything else is kept as it is (``$defs`` included, for the references left).
    """
    defs = schema.get("$defs", {})
    rewritten: dict[str, dict] = {}

    def definition(name: str):
        if name not in rewritten:
            rewritten[name] = None  # a reference cycle (none in the report schema) stays a reference
            rewritten[name] = rewrite(defs[name])
        return rewritten[name]

    def rewrite(node):
        if isinstance(node, list):
            return [rewrite(item) for item in node]
        if not isinstance(node, dict):
            return node
        ref = node.get("$ref")
        if len(node) == 1 and isinstance(ref, str) and ref.startswith(_DEFS) and ref[len(_DEFS):] in defs:
            target = definition(ref[len(_DEFS):])
            return target if target is not None and _has_no_ref(target) else node
        out = {}
        for key, value in node.items():
            if key in _SCHEMA_MAPS and isinstance(value, dict):  # name -> schema
                out[key] = {name: rewrite(item) for name, item in value.items()}
            elif key == "const":
                continue  # below
            elif key in _VALUES:  # data, not schemas
                out[key] = value
            else:
                out[key] = rewrite(value)
        if "const" in node:  # (with an enum beside it: the enum's values equal to the constant)
            const = node["const"]
            out["enum"] = [const] if "enum" not in node else [v for v in node["enum"] if v == const]
        branches = out.get("anyOf")
        if (set(out) == {"anyOf"} and len(branches) == 2 and branches[1] == {"type": "null"}
                and isinstance(branches[0], dict) and branches[0].get("type") == "string"
                and set(branches[0]) <= {"type", "pattern"}):
            return {"type": ["string", "null"], **({"pattern": branches[0]["pattern"]} if "pattern" in branches[0] else {})}
        return out

    out = rewrite({key: value for key, value in schema.items() if key != "$defs"})
    if defs:
        out["$defs"] = {name: definition(name) or defs[name] for name in defs}
    return out


def _has_no_ref(node) -> bool:
    """Whether a (rewritten) schema holds no ``$ref`` anywhere (a property named "$ref" counts too: kept)."""
    if isinstance(node, dict):
        return "$ref" not in node and all(_has_no_ref(v) for k, v in node.items() if k not in _VALUES)
    if isinstance(node, list):
        return all(_has_no_ref(v) for v in node)
    return True


@lru_cache(maxsize=1)
def _report_check():
    """The report schema compiled to Python by fastjsonschema once per process (after :func:`check_schema`):
    a yes/no check ~100x faster than interpreting the schema with jsonschema on every report."""
    import fastjsonschema

    compiled = fastjsonschema.compile(check_schema(load_report_schema()), detailed_exceptions=False)

    def check(report) -> bool:
        try:
            compiled(report)
        except fastjsonschema.JsonSchemaException:
            return False
        return True

    return check


def schema_problems(report: dict) -> list[str]:
    """Schema violations of a report JSON (Draft 2020-12), one line each.

    A valid report (the usual case) is recognised by the compiled check alone; any other report is
    validated by jsonschema, whose errors are the ones reported.
    """
    if _report_check()(report):
        return []
    out = []
    for err in sorted(report_validator().iter_errors(report), key=lambda e: list(map(str, e.absolute_path))):
        where = "/".join(str(p) for p in err.absolute_path) or "(root)"
        out.append(f"JSON schema: {where}: {err.message}")
    return out
