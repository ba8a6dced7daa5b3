"""Report charts as PNG bytes, drawn directly with Pillow (no pyplot, no display, no global state).

Each chart plots data the builder already restricted to the anchor date (the cumulative P&L history stops
at it). A chart whose data is unavailable is not drawn; the Markdown says so (``RenderedReport.charts``).

Why not a matplotlib figure: a backfill renders three charts for every (portfolio, date), and laying
out and rasterising a matplotlib figure costs a few hundred milliseconds per chart even without
``tight_layout`` / ``bbox_inches="tight"`` (most of it text layout and glyph rendering). These charts are
simple (bars, one line, axes, labels), so they are drawn with Pillow (which matplotlib itself depends on)
in the DejaVu Sans font that matplotlib ships: text anti-aliased by FreeType, rendered once per label and
reused (the same scenario names, axis labels and tick values recur in every report), axis-aligned
rectangles snapped to pixels, and the P&L line and markers anti-aliased by drawing them 4x larger. matplotlib
still chooses the axis ticks (``MaxNLocator``, ``AutoDateLocator``). The layout is computed from the
measured text, so tick labels and scenario names never overlap or run off the image (a name too long for
the margin is shortened with "…").

The PNG has no metadata chunks (no software version, no timestamp): the same data gives the same bytes.
"""

from __future__ import annotations

import datetime as dt
import io
import math
import threading
from functools import lru_cache
from pathlib import Path

import pandas as pd
from PIL import Image, ImageDraw, ImageFont

__all__ = ["factor_exposure_chart", "stress_chart", "cumulative_pnl_chart", "render_charts", "PNG_SIGNATURE"]

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_POS, _NEG, _ALT, _GREY = "#2e7d32", "#c62828", "#1565c0", "#90a4ae"
_INK, _GRID, _FRAME = "#222222", "#e3e3e3", "#444444"
_SMOOTH = 4  # sloped lines and markers are drawn 4x larger and reduced: anti-aliasing
_PNG_LEVEL = 3  # zlib level: files within ~2% of level 6's size, encoded in about half the time

_TITLE_PX, _TEXT_PX, _TICK_PX = 16, 14, 13  # matplotlib's default 10 pt at 100 dpi is ~14 px


def _money_axis(value, _pos=None) -> str:
    a = abs(value)
    sign = "-" if value < 0 else ""
    if a >= 1e6:
        return f"{sign}${a / 1e6:,.1f}M"
    if a >= 1e3:
        return f"{sign}${a / 1e3:,.0f}k"
    return f"{sign}${a:,.0f}"


# ---------------------------------------------------------------------------------------------------
# Fonts and canvas
# ---------------------------------------------------------------------------------------------------
def _font_path(bold: bool) -> Path | None:
    """matplotlib's DejaVu Sans (the font the charts always had); None if it cannot be found."""
    try:
        import matplotlib

        fonts = Path(matplotlib.get_data_path()) / "fonts" / "ttf"
    except Exception:  # pragma: no cover - matplotlib missing or without its fonts
        return None
    path = fonts / ("DejaVuSans-Bold.ttf" if bold else "DejaVuSans.ttf")
    return path if path.is_file() else None


def _font(px: int, bold: bool = False) -> ImageFont.FreeTypeFont:
    """DejaVu Sans at ``px`` pixels, one font object per thread (a FreeType face is not thread-safe)."""
    return _thread_font(px, bold, threading.get_ident())


@lru_cache(maxsize=64)
def _thread_font(px: int, bold: bool, _thread: int) -> ImageFont.FreeTypeFont:
    path = _font_path(bold)
    if path is not None:  # basic layout: no text shaping (Latin labels), and much faster
        return ImageFont.truetype(str(path), px, layout_engine=ImageFont.Layout.BASIC)
    return ImageFont.load_default(px)  # pragma: no cover


@lru_cache(maxsize=1024)
def _text_tile(text: str, px: int, bold: bool, anchor: str) -> tuple[Image.Image | None, tuple[int, int]]:
    """The anti-aliased coverage mask of ``text`` and its offset from the anchor point.

    Rendered once per (text, size, weight, anchor): the same labels (scenario and factor names, axis
    labels, tick values, titles) recur in every report of a backfill. The tiles are never modified.
    """
    font = _font(px, bold)
    left, top, right, bottom = font.getbbox(text, anchor=anchor)
    if right <= left or bottom <= top:
        return None, (0, 0)
    tile = Image.new("L", (right - left, bottom - top), 0)
    ImageDraw.Draw(tile).text((-left, -top), text, font=font, fill=255, anchor=anchor)
    return tile, (left, top)


class _Canvas:
    """An RGB image with the few drawing primitives the charts need.

    Text is anti-aliased by FreeType; bars, grid and axes are axis-aligned rectangles snapped to whole
    pixels (no anti-aliasing needed); sloped lines and round markers are drawn on a mask ``_SMOOTH`` times
    larger and reduced (:meth:`smooth`), which anti-aliases them.
    """

    def __init__(self, width: float, height: float):
        self.width, self.height = int(round(width)), int(round(height))
        self.image = Image.new("RGB", (self.width, self.height), "white")
        self.draw = ImageDraw.Draw(self.image)

    @staticmethod
    def text_width(text: str, px: int, bold: bool = False) -> float:
        return _font(px, bold).getlength(text)

    def text(self, x: float, y: float, text: str, px: int = _TEXT_PX, anchor: str = "la", fill: str = _INK,
             bold: bool = False) -> None:
        """``text`` placed by a Pillow ``anchor`` ("la" left/ascender, "ma" middle/ascender, "rm", ...)."""
        tile, (dx, dy) = _text_tile(text, px, bold, anchor)
        if tile is not None:
            self.image.paste(fill, (round(x) + dx, round(y) + dy), tile)

    def vtext(self, x: float, y: float, text: str, px: int = _TEXT_PX, fill: str = _INK,
              anchor: str = "centre") -> None:
        """Text rotated 90 degrees (reading upwards), centred on (x, y) or, with ``anchor="top"``, centred
        horizontally on x with its end at y."""
        tile, _ = _text_tile(text, px, False, "la")
        if tile is not None:
            tile = tile.transpose(Image.Transpose.ROTATE_90)
            top = y if anchor == "top" else y - tile.height / 2
            self.image.paste(fill, (round(x - tile.width / 2), round(top)), tile)

    def rect(self, x0: float, y0: float, x1: float, y1: float, fill: str) -> None:
        """Fill the pixels whose centres lie inside the rectangle (at least one pixel wide and high)."""
        x0, x1 = sorted((round(x0), round(x1)))
        y0, y1 = sorted((round(y0), round(y1)))
        self.draw.rectangle((x0, y0, max(x1 - 1, x0), max(y1 - 1, y0)), fill=fill)

    def hline(self, x0: float, x1: float, y: float, fill: str, width: float = 1.0) -> None:
        self.rect(x0, y - width / 2, x1, y + width / 2, fill)

    def vline(self, x: float, y0: float, y1: float, fill: str, width: float = 1.0) -> None:
        self.rect(x - width / 2, y0, x + width / 2, y1, fill)

    def smooth(self, box: tuple[float, float, float, float], fill: str, paint) -> None:
        """Anti-aliased shapes inside ``box``: ``paint(draw, to_mask)`` draws them on a mask ``_SMOOTH``
        times larger (``to_mask(x, y)`` maps canvas coordinates onto it); the reduced mask is filled with
        ``fill``."""
        x0, y0 = int(math.floor(box[0])), int(math.floor(box[1]))
        x1, y1 = int(math.ceil(box[2])), int(math.ceil(box[3]))
        if x1 <= x0 or y1 <= y0:
            return
        mask = Image.new("L", ((x1 - x0) * _SMOOTH, (y1 - y0) * _SMOOTH), 0)
        paint(ImageDraw.Draw(mask), lambda x, y: ((x - x0) * _SMOOTH, (y - y0) * _SMOOTH))
        self.image.paste(fill, (x0, y0, x1, y1), mask.reduce(_SMOOTH))

    def frame(self, left: float, top: float, right: float, bottom: float) -> None:
        for y in (top, bottom):
            self.hline(left, right, y, _FRAME, 1.0)
        for x in (left, right):
            self.vline(x, top, bottom, _FRAME, 1.0)

    def png(self) -> bytes:
        buf = io.BytesIO()
        self.image.save(buf, format="PNG", compress_level=_PNG_LEVEL)  # no metadata chunks: deterministic bytes
        return buf.getvalue()


def _fit(text: str, px: int, max_width: float) -> str:
    """``text`` shortened with "…" so that it is at most ``max_width`` pixels wide."""
    if _Canvas.text_width(text, px) <= max_width:
        return text
    lo, hi = 0, len(text)
    while lo < hi:  # the longest prefix that fits with the ellipsis
        mid = (lo + hi + 1) // 2
        if _Canvas.text_width(text[:mid].rstrip() + "…", px) <= max_width:
            lo = mid
        else:
            hi = mid - 1
    return text[:lo].rstrip() + "…"


def _wrap(text: str, px: int, max_width: float, max_lines: int = 2) -> list[str]:
    """``text`` broken at spaces into at most ``max_lines`` lines of at most ``max_width`` pixels."""
    words, lines = text.split(), []
    while words and len(lines) < max_lines:
        line = words.pop(0)
        while words and _Canvas.text_width(f"{line} {words[0]}", px) <= max_width:
            line = f"{line} {words.pop(0)}"
        lines.append(line)
    if words:  # what did not fit goes on the last line, shortened
        lines[-1] = f"{lines[-1]} {' '.join(words)}"
    return [_fit(line, px, max_width) for line in lines] or [""]


# ---------------------------------------------------------------------------------------------------
# Axes
# ---------------------------------------------------------------------------------------------------
def _finite(values) -> list[float]:
    out = []
    for v in values:
        try:
            f = float(v)
        except (TypeError, ValueError):
            continue
        if math.isfinite(f):
            out.append(f)
    return out


def _value_range(values, include_zero: bool = True, margin: float = 0.05) -> tuple[float, float]:
    """Data range (with 0 when asked) widened by ``margin`` on each side, as matplotlib's autoscale does."""
    vals = _finite(values) + ([0.0] if include_zero else [])
    if not vals:
        return -1.0, 1.0
    lo, hi = min(vals), max(vals)
    if lo == hi:
        pad = abs(lo) * 0.05 or 1.0
        return lo - pad, hi + pad
    span = hi - lo
    return lo - span * margin, hi + span * margin


def _ticks(lo: float, hi: float, length: float, spacing: float) -> list[float]:
    """Round tick values in ``[lo, hi]``, about one per ``spacing`` pixels of an axis ``length`` long.

    No 2.5 steps: the money labels have no decimals, and $2.5k would print as "$2k".
    """
    from matplotlib.ticker import MaxNLocator

    nbins = max(3, min(10, int(length // spacing)))
    ticks = MaxNLocator(nbins=nbins, steps=[1, 2, 5, 10]).tick_values(lo, hi)
    eps = (hi - lo) * 1e-9
    return [float(t) for t in ticks if lo - eps <= t <= hi + eps]


class _Scale:
    """Linear map of data values onto pixels ``[p0, p1]`` (p1 < p0 for an upward y axis)."""

    def __init__(self, lo: float, hi: float, p0: float, p1: float):
        self.lo, self.hi, self.p0, self.p1 = lo, hi, p0, p1

    def __call__(self, v: float) -> float:
        return self.p0 + (v - self.lo) / (self.hi - self.lo) * (self.p1 - self.p0)


def _titles_height(subtitle: str | None) -> float:
    return 10 + _TITLE_PX + 6 + ((_TEXT_PX + 6) if subtitle else 0) + 8


def _titles(c: _Canvas, title: str, subtitle: str | None) -> float:
    """Draw the centred title (and subtitle); return the y below them (``_titles_height``)."""
    c.text(c.width / 2, 10, title, px=_TITLE_PX, anchor="ma", bold=True)
    if subtitle:
        c.text(c.width / 2, 10 + _TITLE_PX + 6, _fit(subtitle, _TEXT_PX, c.width - 20), anchor="ma")
    return _titles_height(subtitle)


def _legend(c: _Canvas, y: float, items: list[tuple[str, str]]) -> None:
    """Colour swatches with labels, centred on the image at height ``y``."""
    widths = [22 + _Canvas.text_width(label, _TEXT_PX) for label, _ in items]
    gap = 28
    x = (c.width - sum(widths) - gap * (len(items) - 1)) / 2
    for (label, color), w in zip(items, widths):
        c.rect(x, y - 5, x + 16, y + 5, color)
        c.text(x + 22, y, label, anchor="lm")
        x += w + gap


def _draw_value_axis_x(c: _Canvas, sx: _Scale, ticks: list[float], top: float, bottom: float) -> None:
    for t in ticks:
        x = sx(t)
        c.vline(x, top, bottom, _GRID)
        c.vline(x, bottom, bottom + 4, _FRAME)
        c.text(x, bottom + 6, _money_axis(t), px=_TICK_PX, anchor="ma")


def _draw_value_axis_y(c: _Canvas, sy: _Scale, ticks: list[float], left: float, right: float) -> None:
    for t in ticks:
        y = sy(t)
        c.hline(left, right, y, _GRID)
        c.hline(left - 4, left, y, _FRAME)
        c.text(left - 7, y, _money_axis(t), px=_TICK_PX, anchor="rm")


# ---------------------------------------------------------------------------------------------------
# Charts
# ---------------------------------------------------------------------------------------------------
def factor_exposure_chart(factors: pd.DataFrame, subtitle: str | None = None) -> bytes:
    """Bar chart of the portfolio's dollar exposure per factor (``factor_name, dollar_exposure``).

    Factor names sit under their bars on up to two lines; when one does not fit its bar's width (many or
    long factor names), all names are written vertically instead, in full up to 180 pixels.
    """
    names = [str(n) for n in factors["factor_name"]]
    values = pd.to_numeric(factors["dollar_exposure"], errors="coerce").fillna(0.0).tolist()
    width, plot_h = 800, 330
    lo, hi = _value_range(values)
    ticks = _ticks(lo, hi, plot_h, 50)
    left = 24 + _TEXT_PX + max([_Canvas.text_width(_money_axis(t), _TICK_PX) for t in ticks] + [20]) + 10
    right = width - 20
    slot = (right - left) / max(len(values), 1)
    wrapped = [_wrap(name, _TICK_PX, slot - 4) for name in names]
    vertical = any(line.endswith("…") for lines in wrapped for line in lines)
    room = min(max([_Canvas.text_width(n, _TICK_PX) for n in names] + [0.0]), 180.0)
    label_h = room + 10 if vertical else 2 * (_TICK_PX + 3) + 6
    c = _Canvas(width, _titles_height(subtitle) + plot_h + label_h + 10)
    top = _titles(c, "Factor dollar exposures", subtitle)
    bottom = top + plot_h
    sy = _Scale(lo, hi, bottom, top)
    _draw_value_axis_y(c, sy, ticks, left, right)
    c.vtext(14 + _TEXT_PX / 2, (top + bottom) / 2, "Dollar exposure")
    zero = sy(0.0)
    for i, (v, lines) in enumerate(zip(values, wrapped)):
        x0 = left + slot * (i + 0.1)
        c.rect(x0, zero, x0 + slot * 0.8, sy(v), _POS if v >= 0 else _NEG)
        centre = left + slot * (i + 0.5)
        c.vline(centre, bottom, bottom + 4, _FRAME)
        if vertical:
            c.vtext(centre, bottom + 6, _fit(names[i], _TICK_PX, room), px=_TICK_PX, anchor="top")
        else:
            for k, line in enumerate(lines):
                c.text(centre, bottom + 6 + k * (_TICK_PX + 3), line, px=_TICK_PX, anchor="ma")
    c.hline(left, right, zero, "black", 1.0)
    c.frame(left, top, right, bottom)
    return c.png()


def stress_chart(results: pd.DataFrame, subtitle: str | None = None) -> bytes:
    """Horizontal bars per scenario: correlated vs direct P&L (``name, direct_pnl, correlated_pnl``).

    Scenarios are sorted by correlated P&L, worst at the top.
    """
    frame = results.assign(
        direct_pnl=pd.to_numeric(results["direct_pnl"], errors="coerce").fillna(0.0),
        correlated_pnl=pd.to_numeric(results["correlated_pnl"], errors="coerce").fillna(0.0),
    ).sort_values(["correlated_pnl", "name"], ascending=[False, True], kind="stable")
    rows = list(zip(frame["name"], frame["correlated_pnl"], frame["direct_pnl"]))[::-1]  # top to bottom
    n = len(rows)
    row_h = 30
    width = 900
    label_room = min(max([_Canvas.text_width(str(name), _TEXT_PX) for name, _, _ in rows] + [40]), width * 0.42)
    c = _Canvas(width, _titles_height(subtitle) + 8 + max(n, 1) * row_h + 8 + 84)
    top = _titles(c, "Stress P&L by scenario", subtitle)
    left, right = 14 + label_room + 10, width - 24
    lo, hi = _value_range([v for _, corr, direct in rows for v in (corr, direct)])
    ticks = _ticks(lo, hi, right - left, 90)
    bottom = top + 8 + max(n, 1) * row_h + 8
    sx = _Scale(lo, hi, left, right)
    _draw_value_axis_x(c, sx, ticks, top, bottom)
    zero = sx(0.0)
    bar = row_h * 0.38
    for i, (name, corr, direct) in enumerate(rows):
        mid = top + 8 + (i + 0.5) * row_h
        c.rect(zero, mid - bar, sx(corr), mid, _ALT)
        c.rect(zero, mid, sx(direct), mid + bar, _GREY)
        c.hline(left - 4, left, mid, _FRAME)
        c.text(left - 7, mid, _fit(str(name), _TEXT_PX, label_room), anchor="rm")
    c.vline(zero, top, bottom, "black", 1.0)
    c.frame(left, top, right, bottom)
    c.text((left + right) / 2, bottom + 8 + _TICK_PX + 4, "P&L", anchor="ma")
    _legend(c, bottom + 8 + _TICK_PX + 4 + _TEXT_PX + 22, [("Correlated P&L", _ALT), ("Direct P&L", _GREY)])
    return c.png()


def _date_ticks(days: list[float], lo: float, hi: float) -> list[float]:
    """Tick positions (days since the epoch): every date up to 10 points, else matplotlib's date locator."""
    if len(days) <= 10:
        return sorted(set(days))
    from matplotlib.dates import AutoDateLocator, date2num

    epoch = date2num(dt.datetime(1970, 1, 1))
    start, end = (dt.datetime(1970, 1, 1) + dt.timedelta(days=v) for v in (lo, hi))
    ticks = AutoDateLocator(minticks=4, maxticks=10).tick_values(start, end)
    return [float(t - epoch) for t in ticks if lo <= t - epoch <= hi]


def cumulative_pnl_chart(history: pd.DataFrame, subtitle: str | None = None) -> bytes:
    """Line of cumulative P&L by date (``date, cumulative_pnl``), up to the anchor date."""
    frame = history.assign(
        date=pd.to_datetime(history["date"]),
        cumulative_pnl=pd.to_numeric(history["cumulative_pnl"], errors="coerce"),
    ).sort_values("date")
    frame = frame[frame["date"].notna()]
    dates = frame["date"]
    if isinstance(dates.dtype, pd.DatetimeTZDtype):  # plotted at its wall-clock date and time
        dates = dates.dt.tz_localize(None)
    days = ((dates - pd.Timestamp("1970-01-01")) / pd.Timedelta(days=1)).tolist()  # days since 1970-01-01
    values = [float(v) for v in frame["cumulative_pnl"]]
    if days:
        d0, d1 = min(days), max(days)
        if d0 == d1:
            d0, d1 = d0 - 1, d1 + 1
    else:
        d0, d1 = 0.0, 1.0
    pad = (d1 - d0) * 0.05
    xlo, xhi = d0 - pad, d1 + pad
    c = _Canvas(900, 450)
    top = _titles(c, "Cumulative P&L history", subtitle)
    bottom = c.height - (_TICK_PX + 22)
    lo, hi = _value_range(values)
    yticks = _ticks(lo, hi, bottom - top, 50)
    left = 24 + _TEXT_PX + max([_Canvas.text_width(_money_axis(t), _TICK_PX) for t in yticks] + [20]) + 10
    right = c.width - 24
    sx, sy = _Scale(xlo, xhi, left, right), _Scale(lo, hi, bottom, top)
    _draw_value_axis_y(c, sy, yticks, left, right)
    c.vtext(14 + _TEXT_PX / 2, (top + bottom) / 2, "Cumulative P&L")
    label_w = _Canvas.text_width("0000-00-00", _TICK_PX) + 10
    last_end = -math.inf
    for t in _date_ticks(days, xlo, xhi):
        x = sx(t)
        c.vline(x, top, bottom, _GRID)
        c.vline(x, bottom, bottom + 4, _FRAME)
        if x - label_w / 2 >= max(last_end, 0) and x + label_w / 2 <= c.width:  # no overlap, inside the image
            label = (dt.datetime(1970, 1, 1) + dt.timedelta(days=t)).strftime("%Y-%m-%d")
            c.text(x, bottom + 6, label, px=_TICK_PX, anchor="ma")
            last_end = x + label_w / 2
    c.hline(left, right, sy(0.0), "black", 1.0)
    segments: list[list[tuple[float, float]]] = [[]]
    for d, v in zip(days, values):
        if math.isfinite(v):
            segments[-1].append((sx(d), sy(v)))
        elif segments[-1]:  # a missing value breaks the line
            segments.append([])
    points = [p for seg in segments for p in seg]

    def paint(draw, to_mask):
        width = round(2.2 * _SMOOTH)
        for seg in segments:
            if len(seg) >= 2:
                draw.line([to_mask(x, y) for x, y in seg], fill=255, width=width, joint="curve")
        if len(points) < 30:  # markers, as long as they do not crowd the line
            r = 3.5 * _SMOOTH
            for x, y in points:
                mx, my = to_mask(x, y)
                draw.ellipse((mx - r, my - r, mx + r, my + r), fill=255)

    c.smooth((left, top, right, bottom), _ALT, paint)
    c.frame(left, top, right, bottom)
    return c.png()


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
