"""Report charts as PNG bytes (matplotlib's Agg canvas: no display, no pyplot, no global backend switch).

Each chart plots data the builder already restricted to the anchor date (the cumulative P&L history stops
at it). A chart whose data is unavailable is not drawn; the Markdown says so (``RenderedReport.charts``).
PNG metadata carries no software version or timestamp, so the same data gives the same bytes.
"""

from __future__ import annotations

import io

import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.dates import AutoDateLocator, DateFormatter
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter

__all__ = ["factor_exposure_chart", "stress_chart", "cumulative_pnl_chart", "render_charts", "PNG_SIGNATURE"]

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_DPI = 100
_POS, _NEG, _ALT = "#2e7d32", "#c62828", "#1565c0"


def _money_axis(value, _pos) -> str:
    a = abs(value)
    sign = "-" if value < 0 else ""
    if a >= 1e6:
        return f"{sign}${a / 1e6:,.1f}M"
    if a >= 1e3:
        return f"{sign}${a / 1e3:,.0f}k"
    return f"{sign}${a:,.0f}"


def _figure(width: float, height: float) -> tuple[Figure, object]:
    """A figure on its own Agg canvas: no pyplot, no global backend switch, safe in threads."""
    fig = Figure(figsize=(width, height))
    FigureCanvasAgg(fig)
    return fig, fig.subplots()


def _png(fig: Figure) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=_DPI, metadata={"Software": None}, bbox_inches="tight")
    return buf.getvalue()


def _subtitle(title: str, subtitle: str | None) -> str:
    return f"{title}\n{subtitle}" if subtitle else title


def factor_exposure_chart(factors: pd.DataFrame, subtitle: str | None = None) -> bytes:
    """Bar chart of the portfolio's dollar exposure per factor (``factor_name, dollar_exposure``)."""
    names = [str(n) for n in factors["factor_name"]]
    values = pd.to_numeric(factors["dollar_exposure"], errors="coerce").fillna(0.0).tolist()
    fig, ax = _figure(8, 4.5)
    ax.bar(names, values, color=[_POS if v >= 0 else _NEG for v in values])
    ax.axhline(0, color="black", linewidth=0.8)
    ax.yaxis.set_major_formatter(FuncFormatter(_money_axis))
    ax.set_ylabel("Dollar exposure")
    ax.set_title(_subtitle("Factor dollar exposures", subtitle))
    ax.tick_params(axis="x", rotation=30)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    return _png(fig)


def stress_chart(results: pd.DataFrame, subtitle: str | None = None) -> bytes:
    """Horizontal bars per scenario: correlated vs direct P&L (``name, direct_pnl, correlated_pnl``).

    Scenarios are sorted by correlated P&L, worst at the top.
    """
    frame = results.assign(
        direct_pnl=pd.to_numeric(results["direct_pnl"], errors="coerce").fillna(0.0),
        correlated_pnl=pd.to_numeric(results["correlated_pnl"], errors="coerce").fillna(0.0),
    ).sort_values(["correlated_pnl", "name"], ascending=[False, True], kind="stable")
    n = len(frame)
    ys = list(range(n))
    h = 0.38
    fig, ax = _figure(9, max(3.0, 0.42 * n + 1.5))
    ax.barh([y + h / 2 for y in ys], frame["correlated_pnl"], height=h, color=_ALT, label="Correlated P&L")
    ax.barh([y - h / 2 for y in ys], frame["direct_pnl"], height=h, color="#90a4ae", label="Direct P&L")
    ax.set_yticks(ys)
    ax.set_yticklabels([str(s) for s in frame["name"]])
    ax.axvline(0, color="black", linewidth=0.8)
    ax.xaxis.set_major_formatter(FuncFormatter(_money_axis))
    ax.set_xlabel("P&L")
    ax.set_title(_subtitle("Stress P&L by scenario", subtitle))
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.06), ncol=2, frameon=False)
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    return _png(fig)


def cumulative_pnl_chart(history: pd.DataFrame, subtitle: str | None = None) -> bytes:
    """Line of cumulative P&L by date (``date, cumulative_pnl``), up to the anchor date."""
    frame = history.assign(
        date=pd.to_datetime(history["date"]),
        cumulative_pnl=pd.to_numeric(history["cumulative_pnl"], errors="coerce"),
    ).sort_values("date")
    fig, ax = _figure(9, 4.5)
    ax.plot(frame["date"], frame["cumulative_pnl"], color=_ALT, linewidth=1.6, marker="o" if len(frame) < 30 else None)
    ax.axhline(0, color="black", linewidth=0.8)
    ax.yaxis.set_major_formatter(FuncFormatter(_money_axis))
    ax.set_ylabel("Cumulative P&L")
    ax.set_title(_subtitle("Cumulative P&L history", subtitle))
    if len(frame) <= 10:
        ax.set_xticks(list(frame["date"]))
    else:
        ax.xaxis.set_major_locator(AutoDateLocator(minticks=4, maxticks=10))
    ax.xaxis.set_major_formatter(DateFormatter("%Y-%m-%d"))
    ax.grid(alpha=0.3)
    fig.autofmt_xdate()
    fig.tight_layout()
    return _png(fig)


_DRAW = {
    "factor_exposures.png": factor_exposure_chart,
    "stress_pnl.png": stress_chart,
    "cumulative_pnl.png": cumulative_pnl_chart,
}


def render_charts(rendered) -> dict[str, bytes]:
    """PNG bytes of every chart the rendered report links to (``rendered.chart_files``), by file name."""
    subtitle = None
    meta = rendered.json.get("metadata", {}) if isinstance(rendered.json, dict) else {}
    if meta:
        subtitle = f"{meta.get('portfolio_name')} - as of {meta.get('anchor_date')}"
    out: dict[str, bytes] = {}
    for name in rendered.chart_files:
        out[name] = _DRAW[name](rendered.chart_data[name], subtitle)
    return out
