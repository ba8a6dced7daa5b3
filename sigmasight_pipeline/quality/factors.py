"""Factor exposures: the regression's history window, no duplicate factor rows, the factor set."""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd


def history_window_problems(
    pos: pd.DataFrame,
    windows: pd.DataFrame,
    portfolio_id: str,
    *,
    expected_start: Mapping[pd.Timestamp, pd.Timestamp],
    expected_end: Mapping[pd.Timestamp, pd.Timestamp],
    window: int,
    min_obs: int,
) -> list[str]:
    """Regressions whose window is not the ``window`` sessions ending on the partition date.

    ``pos`` (position betas) and ``windows`` (the design's diagnostics) carry ``date``, ``window_start``,
    ``window_end`` and ``n_obs``; ``pos`` also ``position_id``, ``beta`` and ``flag``. ``expected_end[d]`` is the
    last session on or before ``d``, ``expected_start[d]`` the first of the ``window`` sessions ending there
    (from the exchange calendar). A problem: a window ending after the date or elsewhere than expected,
    starting before the window, more than ``window`` observations; a position with fewer than ``window``
    observations not flagged ``limited_history``, or with a beta from fewer than ``min_obs``.
    """
    out = []
    for frame, what in ((pos, "position"), (windows, "design")):
        if frame.empty:
            continue
        after = frame[frame.window_end.notna() & (frame.window_end > frame.date)]
        out += [f"{portfolio_id} {r.date:%Y-%m-%d} {what}: window ends {r.window_end:%Y-%m-%d}, after the date" for r in after.itertuples()]
        end = frame.date.map(expected_end)
        wrong_end = frame[frame.window_end.notna() & (frame.window_end != end)]
        out += [f"{portfolio_id} {r.date:%Y-%m-%d} {what}: window ends {r.window_end:%Y-%m-%d}" for r in wrong_end.itertuples()]
        start = frame.date.map(expected_start)
        early = frame[frame.window_start.notna() & (frame.window_start < start)]
        out += [f"{portfolio_id} {r.date:%Y-%m-%d} {what}: window starts before the {window}-session window" for r in early.itertuples()]
        out += [f"{portfolio_id} {r.date:%Y-%m-%d} {what}: {r.n_obs} observations > {window}" for r in frame[frame.n_obs > window].itertuples()]
    if len(pos):
        short_unflagged = pos[(pos.n_obs < window) & (pos.flag == "ok")]
        out += [f"{portfolio_id} {r.date:%Y-%m-%d} position {r.position_id}: {r.n_obs} obs without a limited_history flag" for r in short_unflagged.itertuples()]
        too_few = pos[(pos.n_obs < min_obs) & pos.beta.notna()]
        out += [f"{portfolio_id} {r.date:%Y-%m-%d} position {r.position_id}: a beta from {r.n_obs} < {min_obs} observations" for r in too_few.itertuples()]
    return out


def duplicate_factor_problems(pos: pd.DataFrame, port: pd.DataFrame, definitions: pd.DataFrame, portfolio_id: str) -> list[str]:
    """Duplicated factor rows, a factor set other than the definitions, or a proxy shared by two factors.

    ``pos``: position factor rows (``date``, ``position_id``, ``factor_name``); ``port``: portfolio factor rows
    (``date``, ``factor_name``); ``definitions``: ``factor_name``, ``proxy_symbol``.
    """
    out = []
    for frame, keys in ((pos, ["date", "position_id", "factor_name"]), (port, ["date", "factor_name"])):
        dup = frame[frame.duplicated(keys, keep=False)]
        out += [f"{portfolio_id}: duplicated rows for {dict(zip(keys, k))}" for k in dup[keys].drop_duplicates().itertuples(index=False)]
    expected = set(definitions.factor_name)
    for d, names in port.groupby("date").factor_name:
        if set(names) != expected:
            out.append(f"{portfolio_id} {d:%Y-%m-%d}: factors {sorted(set(names))} != definitions {sorted(expected)}")
    shared = definitions[definitions.proxy_symbol.duplicated(keep=False)]
    out += [f"proxy {p} shared by {', '.join(g.factor_name)}" for p, g in shared.groupby("proxy_symbol")]
    return out
