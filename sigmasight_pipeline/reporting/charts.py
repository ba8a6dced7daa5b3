"""Report charts as PNG bytes, drawn directly with Pillow (no pyplot, no display, no global state).

Each chart plots data the sections already restricted to the anchor date (the cumulative P&L history stops
at it). A chart whose data is unavailable is not drawn; the Markdown says so (``RenderedReport.charts``).

Why not a matplotlib figure: a backfill renders five charts for every (portfolio, date), and laying
out and rasterising a matplotlib figure costs a few hundred milliseconds per chart even without
``tight_layout`` / ``bbox_inches="tight"`` (most of it text layout and glyph rendering). These charts are
simple (bars, one line, axes, labels), so they are drawn with Pillow (which matplotlib itself depends on)
in the DejaVu Sans font that matplotlib ships: text anti-aliased by FreeType, rendered once per label and
reused (the same scenario names, axis labels and tick values recur in every report), axis-aligned
rectangles snapped to pixels, and the P&L line and markers rasterised by matplotlib's Agg (anti-aliased,
no figure). matplotlib also chooses the axis ticks (``MaxNLocator``, ``AutoDateLocator``). The layout is
computed from the measured text, so tick labels and scenario names never overlap or run off the image (a
name too long for the margin is shortened with "…").

Indexed colour: a chart uses a handful of colours plus anti-aliasing shades, so it is drawn as palette
indices (one byte per pixel, :data:`PALETTE`) instead of RGB. Text is drawn on white in one of
:data:`_TEXT_SHADES` shades of ink; the P&L line in :data:`_LINE_SHADES` shades of blue over white, the
grid or the zero line. The PNG is a palette image: a third of the bytes to compress, so it is encoded
several times faster than an RGB one, and about half the size.

The PNG is written by :func:`palette_png` (deflated by ISA-L when installed) and has no metadata chunks (no
software version, no timestamp): the same data gives the same bytes.
"""

from __future__ import annotations

import datetime as dt
import math
import struct
import threading
import zlib
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image, ImageDraw, ImageFont

__all__ = [
    "factor_exposure_chart",
    "stress_chart",
    "cumulative_pnl_chart",
    "drawdown_chart",
    "var_backtest_chart",
    "render_charts",
    "PNG_SIGNATURE",
    "PALETTE",
]

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_POS, _NEG, _ALT, _GREY = "#2e7d32", "#c62828", "#1565c0", "#90a4ae"
_INK, _GRID, _FRAME = "#222222", "#e3e3e3", "#444444"
_WHITE, _BLACK = "#ffffff", "#000000"

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
# Palette: solid colours, then shades of ink on white and of the line colour on its backgrounds
# ---------------------------------------------------------------------------------------------------
def _rgb(color: str) -> tuple[int, int, int]:
    return int(color[1:3], 16), int(color[3:5], 16), int(color[5:7], 16)


def _mix(back: str, fore: str, t: float) -> tuple[int, int, int]:
    b, f = _rgb(back), _rgb(fore)
    return tuple(int(round(bc + (fc - bc) * t)) for bc, fc in zip(b, f))


_SOLIDS = (_WHITE, _INK, _GRID, _FRAME, _BLACK, _POS, _NEG, _ALT, _GREY)
_TEXT_SHADES = 64  # coverage levels of anti-aliased text (0 = white .. 63 = ink)
_LINE_SHADES = 48  # coverage levels of the anti-aliased line on each background
_LINE_BACKS = (_WHITE, _GRID, _BLACK)  # what lies under the P&L line: white, grid lines, the zero line

_INDEX: dict[str, int] = {color: i for i, color in enumerate(_SOLIDS)}
_TEXT_BASE = len(_SOLIDS)
_LINE_BASE = _TEXT_BASE + _TEXT_SHADES
PALETTE: list[tuple[int, int, int]] = (
    [_rgb(c) for c in _SOLIDS]
    + [_mix(_WHITE, _INK, k / (_TEXT_SHADES - 1)) for k in range(_TEXT_SHADES)]
    + [_mix(back, _ALT, k / (_LINE_SHADES - 1)) for back in _LINE_BACKS for k in range(_LINE_SHADES)]
)
assert len(PALETTE) <= 256
_PALETTE_BYTES = bytes(v for rgb in PALETTE for v in rgb)

#: coverage (0..255) -> palette index of ink of that coverage on white
_TEXT_LUT = [0] + [_TEXT_BASE + int(round(m * (_TEXT_SHADES - 1) / 255)) for m in range(1, 256)]
#: coverage (0..255) -> shade of the line colour (0.._LINE_SHADES-1)
_LINE_LEVEL = np.array([int(round(m * (_LINE_SHADES - 1) / 255)) for m in range(256)], dtype=np.intp)


def _line_blend_table() -> np.ndarray:
    """[background index, shade] -> palette index of the line colour at that shade over that background.

    Shade 0 keeps the background. A background without shades of its own (never under the line in these
    charts) takes the line colour from half coverage on.
    """
    table = np.repeat(np.arange(256, dtype=np.uint8)[:, None], _LINE_SHADES, axis=1)
    table[:, _LINE_SHADES // 2:] = _INDEX[_ALT]
    for b, back in enumerate(_LINE_BACKS):
        table[_INDEX[back], 1:] = _LINE_BASE + b * _LINE_SHADES + np.arange(1, _LINE_SHADES)
    return table


_LINE_BLEND = _line_blend_table()


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


def _as_palette(indices: Image.Image) -> Image.Image:
    """An "L" image of palette indices as a "P" image of :data:`PALETTE` (the same bytes, no conversion)."""
    image = Image.frombytes("P", indices.size, indices.tobytes())
    image.putpalette(_PALETTE_BYTES)
    return image


@lru_cache(maxsize=4096)
def _text_width(text: str, px: int, bold: bool) -> float:
    return _font(px, bold).getlength(text)


@lru_cache(maxsize=1024)
def _text_tile(text: str, px: int, bold: bool, anchor: str) -> tuple[Image.Image | None, Image.Image | None, tuple[int, int]]:
    """``text`` as palette indices (shades of ink on white), the mask of its pixels, and its offset from the
    anchor point.

    Rendered once per (text, size, weight, anchor): the same labels (scenario and factor names, axis
    labels, tick values, titles) recur in every report of a backfill. The tiles are never modified.
    """
    font = _font(px, bold)
    left, top, right, bottom = font.getbbox(text, anchor=anchor)
    if right <= left or bottom <= top:
        return None, None, (0, 0)
    coverage = Image.new("L", (right - left, bottom - top), 0)
    ImageDraw.Draw(coverage).text((-left, -top), text, font=font, fill=255, anchor=anchor)
    return _as_palette(coverage.point(_TEXT_LUT)), coverage.point([0] + [255] * 255), (left, top)


@lru_cache(maxsize=1024)
def _vertical_tile(text: str, px: int) -> tuple[Image.Image | None, Image.Image | None]:
    """``text`` rotated 90 degrees (reading upwards): indices and mask, as :func:`_text_tile`."""
    tile, mask, _ = _text_tile(text, px, False, "la")
    if tile is None:
        return None, None
    return _as_palette(tile.transpose(Image.Transpose.ROTATE_90)), mask.transpose(Image.Transpose.ROTATE_90)


@lru_cache(maxsize=1)
def _agg():
    """matplotlib's Agg renderer, path and identity transform (imported on first use: ~0.4 s)."""
    from matplotlib.backends.backend_agg import RendererAgg
    from matplotlib.path import Path as MplPath
    from matplotlib.transforms import IdentityTransform

    return RendererAgg, MplPath, IdentityTransform


def _coverage(width: int, height: int, lines, line_width: float, markers, radius: float) -> np.ndarray:
    """How much of each pixel of a ``height`` x ``width`` box the polylines and discs cover (0..255), as the
    alpha channel of an RGBA array (``[..., 3]``; drawn in black, the other channels hold no coverage).

    Coordinates are pixels from the box's top left corner (a pixel covers ``[i, i+1)``). Agg's own y axis
    points up, so y is flipped on the way in.
    """
    RendererAgg, MplPath, IdentityTransform = _agg()
    renderer = RendererAgg(width, height, 72)  # 72 dpi: a point is a pixel
    gc = renderer.new_gc()
    gc.set_antialiased(True)
    gc.set_snap(False)
    gc.set_foreground((0.0, 0.0, 0.0, 1.0))
    gc.set_joinstyle("round")
    gc.set_capstyle("round")
    gc.set_linewidth(line_width)
    identity = IdentityTransform()
    for line in lines:
        if len(line) >= 2:
            path = MplPath(np.array([(x, height - y) for x, y in line], dtype=float))
            path.should_simplify = False  # every point drawn, however many
            renderer.draw_path(gc, path, identity)
    gc.set_linewidth(0.0)
    for x, y in markers:
        renderer.draw_path(gc, MplPath.circle((x, height - y), radius), identity, (0.0, 0.0, 0.0, 1.0))
    return np.asarray(renderer.buffer_rgba())  # (height, width, 4): the coverage is the alpha channel


class _Canvas:
    """A palette image (:data:`PALETTE`) with the few drawing primitives the charts need (colours are
    drawn as their palette index).

    Text is anti-aliased by FreeType and drawn in shades of ink on white; bars, grid and axes are
    axis-aligned rectangles snapped to whole pixels (no anti-aliasing needed); sloped lines and round
    markers are anti-aliased by Agg (:meth:`smooth`).
    """

    def __init__(self, width: float, height: float):
        self.width, self.height = int(round(width)), int(round(height))
        self.image = Image.new("P", (self.width, self.height), _INDEX[_WHITE])
        self.image.putpalette(_PALETTE_BYTES)
        self.draw = ImageDraw.Draw(self.image)

    @staticmethod
    def text_width(text: str, px: int, bold: bool = False) -> float:
        return _text_width(text, px, bold)

    def text(self, x: float, y: float, text: str, px: int = _TEXT_PX, anchor: str = "la", bold: bool = False) -> None:
        """``text`` placed by a Pillow ``anchor`` ("la" left/ascender, "ma" middle/ascender, "rm", ...)."""
        tile, mask, (dx, dy) = _text_tile(text, px, bold, anchor)
        if tile is not None:
            self.image.paste(tile, (round(x) + dx, round(y) + dy), mask)

    def vtext(self, x: float, y: float, text: str, px: int = _TEXT_PX, anchor: str = "centre") -> None:
        """Text rotated 90 degrees (reading upwards), centred on (x, y) or, with ``anchor="top"``, centred
        horizontally on x with its end at y."""
        tile, mask = _vertical_tile(text, px)
        if tile is not None:
            top = y if anchor == "top" else y - tile.height / 2
            self.image.paste(tile, (round(x - tile.width / 2), round(top)), mask)

    def rect(self, x0: float, y0: float, x1: float, y1: float, fill: str) -> None:
        """Fill the pixels whose centres lie inside the rectangle (at least one pixel wide and high)."""
        x0, x1 = sorted((round(x0), round(x1)))
        y0, y1 = sorted((round(y0), round(y1)))
        self.draw.rectangle((x0, y0, max(x1 - 1, x0), max(y1 - 1, y0)), fill=_INDEX[fill])

    def hline(self, x0: float, x1: float, y: float, fill: str, width: float = 1.0) -> None:
        self.rect(x0, y - width / 2, x1, y + width / 2, fill)

    def vline(self, x: float, y0: float, y1: float, fill: str, width: float = 1.0) -> None:
        self.rect(x - width / 2, y0, x + width / 2, y1, fill)

    def smooth(self, box: tuple[float, float, float, float], lines: list[list[tuple[float, float]]], width: float,
               markers: list[tuple[float, float]] = (), radius: float = 0.0) -> None:
        """Anti-aliased polylines (``width`` pixels, round joins and ends) and round markers in the line
        colour inside ``box``, blended over what the box holds (white, grid or the zero line).

        The shapes are rasterised by matplotlib's Agg (the renderer of its PNG backend), used on its own:
        exact pixel coverage at the image's resolution, with no figure and no text layout.
        """
        x0, y0 = int(math.floor(box[0])), int(math.floor(box[1]))
        x1, y1 = int(math.ceil(box[2])), int(math.ceil(box[3]))
        if x1 <= x0 or y1 <= y0:
            return
        rgba = _coverage(x1 - x0, y1 - y0, [[(x - x0, y - y0) for x, y in line] for line in lines], width,
                         [(x - x0, y - y0) for x, y in markers], radius)
        pixels = rgba.view("<u4").reshape(-1)  # one RGBA pixel per integer: the coverage is its top byte
        covered = np.flatnonzero(pixels >= 1 << 24)
        under = np.array(self.image.crop((x0, y0, x1, y1)))
        flat = under.reshape(-1)
        flat[covered] = _LINE_BLEND[flat[covered], _LINE_LEVEL[pixels[covered] >> 24]]
        self.image.paste(Image.frombytes("P", (x1 - x0, y1 - y0), under.tobytes()), (x0, y0))  # indices as they are

    def frame(self, left: float, top: float, right: float, bottom: float) -> None:
        for y in (top, bottom):
            self.hline(left, right, y, _FRAME, 1.0)
        for x in (left, right):
            self.vline(x, top, bottom, _FRAME, 1.0)

    def png(self) -> bytes:
        """The chart as a palette PNG (:func:`palette_png`)."""
        return palette_png(self.image)


def _png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(body, zlib.crc32(kind)))


_PLTE = _png_chunk(b"PLTE", _PALETTE_BYTES)
_IEND = _png_chunk(b"IEND", b"")


@lru_cache(maxsize=1)
def _deflate():
    """``compress(data) -> zlib stream`` at the fastest level: ISA-L's (``isal``) when installed, else zlib's.

    Both are lossless and deterministic; their bytes differ. ISA-L's level 1 deflates a chart's ~0.4 MB of
    indices about five times faster than zlib's level 1 (~0.25 ms against ~1.3 ms), into smaller files.
    """
    try:
        from isal import isal_zlib
    except ImportError:  # pragma: no cover - isal is a dependency; a PNG is a PNG either way
        return lambda data: zlib.compress(data, 1)
    return lambda data: isal_zlib.compress(data, 1)


def palette_png(image: Image.Image) -> bytes:
    """A "P" image of :data:`PALETTE` indices as a PNG: ``IHDR`` (8-bit indexed colour), ``PLTE``, one ``IDAT``
    and ``IEND``; every scanline unfiltered (filter byte 0: a palette image gains nothing from filters, and
    Pillow writes them so too). No metadata chunks (no software version, no timestamp): the same image
    gives the same bytes.

    Written here rather than by ``Image.save``: Pillow feeds its deflater one scanline at a time and has
    only zlib; :func:`_deflate` takes the whole image at once.
    """
    width, height = image.size
    rows = np.frombuffer(image.tobytes(), dtype=np.uint8).reshape(height, width)
    raw = np.zeros((height, width + 1), dtype=np.uint8)  # column 0: each scanline's filter type (none)
    raw[:, 1:] = rows
    header = struct.pack(">IIBBBBB", width, height, 8, 3, 0, 0, 0)  # bit depth 8, indexed colour
    return b"".join((PNG_SIGNATURE, _png_chunk(b"IHDR", header), _PLTE, _png_chunk(b"IDAT", _deflate()(raw.tobytes())),
                     _IEND))


@lru_cache(maxsize=4096)
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
    return list(_wrapped(text, px, max_width, max_lines))


@lru_cache(maxsize=4096)
def _wrapped(text: str, px: int, max_width: float, max_lines: int) -> tuple[str, ...]:
    words, lines = text.split(), []
    while words and len(lines) < max_lines:
        line = words.pop(0)
        while words and _Canvas.text_width(f"{line} {words[0]}", px) <= max_width:
            line = f"{line} {words.pop(0)}"
        lines.append(line)
    if words:  # what did not fit goes on the last line, shortened
        lines[-1] = f"{lines[-1]} {' '.join(words)}"
    return tuple(_fit(line, px, max_width) for line in lines) or ("",)


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
    nbins = max(3, min(10, int(length // spacing)))
    ticks = _value_locator(nbins).tick_values(lo, hi)
    eps = (hi - lo) * 1e-9
    return [float(t) for t in ticks if lo - eps <= t <= hi + eps]


@lru_cache(maxsize=None)
def _value_locator(nbins: int):
    """matplotlib's ``MaxNLocator`` of ``nbins`` bins (one per bin count: it holds no state between calls)."""
    from matplotlib.ticker import MaxNLocator

    return MaxNLocator(nbins=nbins, steps=[1, 2, 5, 10])


def _numbers(column: pd.Series) -> list[float]:
    """A column as floats, what cannot be read as a number counted 0.0 (``to_numeric(...).fillna(0.0)``)."""
    if column.dtype == np.float64:
        values = column.to_numpy()
        return np.where(np.isnan(values), 0.0, values).tolist()
    return pd.to_numeric(column, errors="coerce").fillna(0.0).tolist()


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


def _draw_value_axis_y(c: _Canvas, sy: _Scale, ticks: list[float], left: float, right: float, fmt=_money_axis) -> None:
    for t in ticks:
        y = sy(t)
        c.hline(left, right, y, _GRID)
        c.hline(left - 4, left, y, _FRAME)
        c.text(left - 7, y, fmt(t), px=_TICK_PX, anchor="rm")


# ---------------------------------------------------------------------------------------------------
# Charts
# ---------------------------------------------------------------------------------------------------
def factor_exposure_chart(factors: pd.DataFrame, subtitle: str | None = None) -> bytes:
    """Bar chart of the portfolio's dollar exposure per factor (``factor_name, dollar_exposure``).

    Factor names sit under their bars on up to two lines; when one does not fit its bar's width (many or
    long factor names), all names are written vertically instead, in full up to 180 pixels.
    """
    names = [str(n) for n in factors["factor_name"].tolist()]
    values = _numbers(factors["dollar_exposure"])
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
    c.hline(left, right, zero, _BLACK, 1.0)
    c.frame(left, top, right, bottom)
    return c.png()


def stress_chart(results: pd.DataFrame, subtitle: str | None = None) -> bytes:
    """Horizontal bars per scenario: correlated vs direct P&L (``name, direct_pnl, correlated_pnl``).

    Scenarios are sorted by correlated P&L, worst at the top.
    """
    names = results["name"].tolist()
    rows = list(zip(names, _numbers(results["correlated_pnl"]), _numbers(results["direct_pnl"])))
    if all(type(name) is str for name in names):  # correlated P&L descending, then name (a stable sort)
        rows.sort(key=lambda row: (-row[1], row[0]))
    else:  # pandas' order for other names
        frame = pd.DataFrame(rows, columns=["name", "correlated_pnl", "direct_pnl"])
        frame = frame.sort_values(["correlated_pnl", "name"], ascending=[False, True], kind="stable")
        rows = list(zip(frame["name"], frame["correlated_pnl"], frame["direct_pnl"]))
    rows = rows[::-1]  # top to bottom
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
    c.vline(zero, top, bottom, _BLACK, 1.0)
    c.frame(left, top, right, bottom)
    c.text((left + right) / 2, bottom + 8 + _TICK_PX + 4, "P&L", anchor="ma")
    _legend(c, bottom + 8 + _TICK_PX + 4 + _TEXT_PX + 22, [("Correlated P&L", _ALT), ("Direct P&L", _GREY)])
    return c.png()


def _date_ticks(days: list[float], lo: float, hi: float) -> list[float]:
    """Tick positions (days since the epoch): every date up to 10 points, else matplotlib's date locator."""
    if len(days) <= 10:
        return sorted(set(days))
    return list(_located_date_ticks(lo, hi))


@lru_cache(maxsize=16)
def _located_date_ticks(lo: float, hi: float) -> tuple[float, ...]:
    """matplotlib's date ticks between two days (the cumulative P&L and drawdown charts of a report share
    their date range: located once)."""
    from matplotlib.dates import AutoDateLocator, date2num

    epoch = date2num(dt.datetime(1970, 1, 1))
    start, end = (dt.datetime(1970, 1, 1) + dt.timedelta(days=v) for v in (lo, hi))
    ticks = AutoDateLocator(minticks=4, maxticks=10).tick_values(start, end)
    return tuple(float(t - epoch) for t in ticks if lo <= t - epoch <= hi)


def _days(dates) -> np.ndarray:
    """Dates as float days since 1970-01-01 (datetime64[ns]; a time-zone-aware date at its wall-clock time)."""
    if isinstance(dates, pd.Series) and isinstance(dates.dtype, np.dtype) and dates.dtype.kind == "M":
        # naive datetimes already (the usual case): as they are, in nanoseconds
        return dates.to_numpy().astype("datetime64[ns]", copy=False)
    stamps = pd.to_datetime(pd.Series(dates))
    if isinstance(stamps.dtype, pd.DatetimeTZDtype):  # plotted at its wall-clock date and time
        stamps = stamps.dt.tz_localize(None)
    return stamps.to_numpy(dtype="datetime64[ns]")


def _day_range(days: list[float]) -> tuple[float, float]:
    """The x range of a date axis: the data's days padded by 5% (a single day by one day each side)."""
    if days:
        d0, d1 = min(days), max(days)
        if d0 == d1:
            d0, d1 = d0 - 1, d1 + 1
    else:
        d0, d1 = 0.0, 1.0
    pad = (d1 - d0) * 0.05
    return d0 - pad, d1 + pad


def _draw_date_axis(c: _Canvas, sx: _Scale, days: list[float], xlo: float, xhi: float, top: float, bottom: float) -> None:
    """Date ticks (grid, tick marks and ISO labels that never overlap) under a plot."""
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


def _segments(days: list[float], values: list[float], sx: _Scale, sy: _Scale) -> list[list[tuple[float, float]]]:
    """Pixel polylines of a series, broken at missing values."""
    segments: list[list[tuple[float, float]]] = [[]]
    for d, v in zip(days, values):
        if math.isfinite(v):
            segments[-1].append((sx(d), sy(v)))
        elif segments[-1]:  # a missing value breaks the line
            segments.append([])
    return segments


def _dated_values(dates, values) -> tuple[list[float], list[float], np.ndarray]:
    """(days since the epoch, values, row order) of the dated points, by date (a point without a date is left out)."""
    stamps = _days(dates)
    if isinstance(values, pd.Series) and values.dtype == np.float64:
        numbers = values.to_numpy()
    else:
        numbers = pd.to_numeric(pd.Series(values), errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    dated = np.flatnonzero(~np.isnat(stamps))
    order = dated[np.argsort(stamps[dated], kind="stable")]
    days = (stamps[order].astype(np.int64) / 86_400e9).tolist()  # days since 1970-01-01
    return days, numbers[order].tolist(), order


def _value_axis_left(ticks: list[float], fmt) -> float:
    return 24 + _TEXT_PX + max([_Canvas.text_width(fmt(t), _TICK_PX) for t in ticks] + [20]) + 10


def _dated_plot(title: str, subtitle: str | None, ylabel: str, days: list[float], xrange: tuple[float, float],
                yrange: tuple[float, float], *, formatter=lambda ticks: _money_axis, legend: bool = True):
    """The frame of a chart of values by date: a 900-pixel canvas with its titles, the value axis (gridlines, tick
    labels by ``formatter(ticks)``: money by default) labelled ``ylabel``, and the date axis; room for a legend
    row below unless ``legend`` is False. Returns ``(canvas, x scale, y scale, (left, top, right, bottom))``."""
    c = _Canvas(900, 480 if legend else 450)
    top = _titles(c, title, subtitle)
    bottom = c.height - (_TICK_PX + 22 + (_TEXT_PX + 22 if legend else 0))
    (xlo, xhi), (lo, hi) = xrange, yrange
    yticks = _ticks(lo, hi, bottom - top, 50)
    fmt = formatter(yticks)
    left = _value_axis_left(yticks, fmt)
    right = c.width - 24
    sx, sy = _Scale(xlo, xhi, left, right), _Scale(lo, hi, bottom, top)
    _draw_value_axis_y(c, sy, yticks, left, right, fmt)
    c.vtext(14 + _TEXT_PX / 2, (top + bottom) / 2, ylabel)
    _draw_date_axis(c, sx, days, xlo, xhi, top, bottom)
    return c, sx, sy, (left, top, right, bottom)


def cumulative_pnl_chart(history: pd.DataFrame, subtitle: str | None = None) -> bytes:
    """Line of cumulative P&L by date (``date, cumulative_pnl``), up to the anchor date."""
    days, values, _ = _dated_values(history["date"], history["cumulative_pnl"])
    xlo, xhi = _day_range(days)
    c, sx, sy, (left, top, right, bottom) = _dated_plot(
        "Cumulative P&L history", subtitle, "Cumulative P&L", days, (xlo, xhi), _value_range(values), legend=False)
    c.hline(left, right, sy(0.0), _BLACK, 1.0)
    segments = _segments(days, values, sx, sy)
    points = [p for seg in segments for p in seg]

    # markers, as long as they do not crowd the line
    c.smooth((left, top, right, bottom), segments, 2.2, points if len(points) < 30 else [], 3.5)
    c.frame(left, top, right, bottom)
    return c.png()


def _pct_axis_formatter(ticks: list[float]):
    """Tick labels of a fraction axis as percentages, with as many decimals as the tick step needs."""
    steps = [b - a for a, b in zip(ticks, ticks[1:]) if b > a]
    step = min(steps) * 100 if steps else 1.0
    places = max(0, min(4, -math.floor(math.log10(step)) if step > 0 else 0))

    def fmt(value, _pos=None) -> str:
        text = f"{value * 100:.{places}f}"
        return ("0" if float(text) == 0 else text) + "%"

    return fmt


def drawdown_chart(path: pd.DataFrame, subtitle: str | None = None) -> bytes:
    """Drawdown of the cumulative-return index by date (``date, drawdown``: fractions <= 0), up to the anchor,
    with its deepest point marked."""
    days, values, _ = _dated_values(path["date"], path["drawdown"])
    xlo, xhi = _day_range(days)
    lo, hi = _value_range(values)
    c, sx, sy, (left, top, right, bottom) = _dated_plot(
        "Drawdown of the cumulative return", subtitle, "Drawdown", days, (xlo, xhi), (lo, max(hi, 0.0)),
        formatter=_pct_axis_formatter)
    c.hline(left, right, sy(0.0), _BLACK, 1.0)
    segments = _segments(days, values, sx, sy)
    points = [p for seg in segments for p in seg]
    c.smooth((left, top, right, bottom), segments, 2.2, points if len(points) < 30 else [], 3.5)
    finite = [(v, d) for d, v in zip(days, values) if math.isfinite(v)]
    legend = [("Drawdown from the running high", _ALT)]
    if finite:
        deepest, day = min(finite, key=lambda item: (item[0], item[1]))  # the first date of the deepest point
        if deepest < 0:
            x, y = sx(day), sy(deepest)
            c.rect(x - 4, y - 4, x + 4, y + 4, _NEG)
            date = (dt.datetime(1970, 1, 1) + dt.timedelta(days=day)).strftime("%Y-%m-%d")
            legend.append((f"Maximum drawdown {deepest * 100:.2f}% on {date}", _NEG))
    c.frame(left, top, right, bottom)
    _legend(c, bottom + _TICK_PX + 22 + _TEXT_PX / 2 + 4, legend)
    return c.png()


def var_backtest_chart(backtest: pd.DataFrame, subtitle: str | None = None) -> bytes:
    """Daily P&L bars against minus the previous session's 99% VaR (a line), by date; an exception (P&L below
    minus the VaR) is a red bar (``date, realized_pnl, var_99, exception``)."""
    days, pnl, order = _dated_values(backtest["date"], backtest["realized_pnl"])
    var = pd.to_numeric(backtest["var_99"], errors="coerce").to_numpy(dtype=float, na_value=np.nan)[order]
    exception = backtest["exception"].to_numpy(dtype=object)[order]
    floor = (-var).tolist()
    gaps = [b - a for a, b in zip(days, days[1:]) if b > a]
    gap = min(gaps) if gaps else 1.0
    xlo, xhi = _day_range(days)
    xlo, xhi = min(xlo, (days[0] if days else 0.0) - 0.6 * gap), max(xhi, (days[-1] if days else 1.0) + 0.6 * gap)
    c, sx, sy, (left, top, right, bottom) = _dated_plot(
        "Daily P&L against the previous day's 99% VaR", subtitle, "P&L", days, (xlo, xhi), _value_range(pnl + floor))
    zero = sy(0.0)
    half = min(12.0, max(0.5, 0.35 * gap * (right - left) / (xhi - xlo)))  # bars never touch nor leave the plot
    hits = []
    for d, v, e in zip(days, pnl, exception):
        if not math.isfinite(v):
            continue
        hit = bool(e) if e is not None and e == e else False
        x = sx(d)
        c.rect(x - half, zero, x + half, sy(v), _NEG if hit else _GREY)
        if hit:
            hits.append((x, sy(v)))
    c.hline(left, right, zero, _BLACK, 1.0)
    c.smooth((left, top, right, bottom), _segments(days, floor, sx, sy), 2.0)
    for x, y in hits:  # a marker on each exception's P&L, above the line: visible however thin the bars
        c.rect(x - 4, y - 4, x + 4, y + 4, _NEG)
    exceptions = len(hits)
    c.frame(left, top, right, bottom)
    _legend(c, bottom + _TICK_PX + 22 + _TEXT_PX / 2 + 4, [
        ("Daily P&L", _GREY), (f"Exception: P&L below -VaR ({exceptions})", _NEG), ("-VaR 99% of the previous day", _ALT),
    ])
    return c.png()


_DRAW = {
    "factor_exposures.png": factor_exposure_chart,
    "stress_pnl.png": stress_chart,
    "cumulative_pnl.png": cumulative_pnl_chart,
    "drawdown.png": drawdown_chart,
    "var_backtest.png": var_backtest_chart,
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
