"""What the reports of a range share: the histories each report cuts at its anchor date, computed once.

A report's drawdown path, VaR backtest window and cumulative attribution are functions of the history up to
its anchor date, and the history up to an anchor is the range's history cut there. So for the inputs of a
range (:func:`..loader.load_report_inputs`) each is computed once, by the function that computes one report's
(:func:`.performance.drawdown_paths`, :func:`.risk_measures.backtest_windows`,
:func:`.performance.cumulative_lines`), and cut at every anchor; the cuts go into the inputs' shared cache
under the entries the sections read (a hand-built input, without them, computes its own). Each cut equals
what the report would compute from its own slices: the rows dated up to the anchor, in date order, the
anchor's own rows among them.
"""

from __future__ import annotations

import pandas as pd

from ..inputs import ReportInput
from .performance import CUMULATIVE_KEY, DRAWDOWN_KEY, cumulative_lines, drawdown_paths
from .risk_measures import BACKTEST_KEY, backtest_windows

__all__ = ["prepare_range"]


def prepare_range(inputs: list[ReportInput], *, history: pd.DataFrame, attribution: pd.DataFrame,
                  backtest: pd.DataFrame) -> None:
    """Fill the shared cache of a range's ``inputs`` (one portfolio, each with its anchor's slices of the
    range's ``history`` (snapshots), ``attribution`` and ``backtest`` frames, read up to the last anchor)."""
    if not inputs:
        return
    pid = inputs[0].portfolio_id
    anchors = [inp.anchor_date for inp in inputs]
    paths = drawdown_paths(history, pid, anchors)
    windows = backtest_windows(backtest, pid, anchors)
    cumulative = cumulative_lines(attribution, pid, anchors)
    for inp, path, window in zip(inputs, paths, windows):
        key = (pid, inp.anchor_date)
        inp.cache.put(inp.snapshot_history, (DRAWDOWN_KEY, *key), path)
        inp.cache.put(inp.backtest_history, (BACKTEST_KEY, *key), window)
        inp.cache.put(inp.attribution_history, (CUMULATIVE_KEY, *key), cumulative[inp.anchor_date])
