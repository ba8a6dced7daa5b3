"""Risk measures: ES at least VaR, Euler contributions that add up to their totals, the backtest zone, limited
history (spec/risk_measures.md, "Storage, checks, report"). Each function reads stored rows of one portfolio and
returns one human-readable problem per breach (empty when the invariant holds)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from sigmasight_pipeline.engines.risk_measures import HISTORICAL, PARAMETRIC

#: Relative tolerance of "ES >= VaR" and of "the contributions add up to their total".
RTOL = 1e-9
#: Kupiec p-value below this: the VaR's exception rate is rejected at 5%.
KUPIEC_ALPHA = 0.05


def _close(a, b, rtol: float = RTOL) -> np.ndarray:
    """|a - b| <= rtol x max(|a|, |b|) (exact equality for two zeros)."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    return np.abs(a - b) <= rtol * np.maximum(np.abs(a), np.abs(b))


def es_at_least_var_problems(measures: pd.DataFrame, portfolio_id: str, rtol: float = RTOL) -> list[str]:
    """Every (date, method, level, horizon) with both a VaR and an ES where ES < VaR (beyond ``rtol``
    relative: ES is a mean of losses at least as large as VaR's, so it can only fall short by round-off).
    Rows without a value (not computed) are not judged."""
    tail = measures[measures["measure"].isin(["var", "es"]) & measures["value"].notna()]
    keys = ["date", "method", "level", "horizon_days"]
    wide = tail.pivot_table(index=keys, columns="measure", values="value", aggfunc="first")
    if not {"var", "es"} <= set(wide.columns):
        return []
    both = wide.dropna(subset=["var", "es"])
    short = both["es"] < both["var"] - rtol * both["var"].abs()
    return [
        f"{portfolio_id} {d:%Y-%m-%d} {m} {lv:.3%} {h}d: ES {r['es']:,.6f} < VaR {r['var']:,.6f}"
        for (d, m, lv, h), r in both[short].iterrows()
    ]


def contribution_sum_problems(
    measures: pd.DataFrame,
    positions: pd.DataFrame,
    factors: pd.DataFrame,
    portfolio_id: str,
    rtol: float = RTOL,
) -> list[str]:
    """Euler contributions that do not add up to their total (relative ``rtol``), per date:

    * historical ES at each level: the positions' ``es`` contributions sum to the 1-day historical ES;
    * parametric: the positions' ``volatility`` contributions, and the factor rows with ``Specific``, each sum
      to the 1-day parametric ``volatility`` (sigma).

    A measure that was computed without contributions, or contributions without their measure, is a problem too.
    """
    out: list[str] = []
    one_day = measures[measures["horizon_days"] == 1]

    def compare(label: str, totals: pd.Series, sums: pd.Series) -> None:
        # one comparison of every date (the sums are never NaN: a date absent from one side is NaN once aligned)
        totals = totals.dropna()
        dates = totals.index.union(sums.index)
        total = totals.reindex(dates).to_numpy(dtype=float)
        got = sums.reindex(dates).to_numpy(dtype=float)
        missing = np.isnan(total) | np.isnan(got)
        bad = missing | ~_close(got, total, rtol)
        for d, t, g in zip(dates[bad], total[bad], got[bad]):  # the problems only
            if np.isnan(t) or np.isnan(g):
                what = "contributions without a total" if np.isnan(t) else "a total without contributions"
                out.append(f"{portfolio_id} {pd.Timestamp(d):%Y-%m-%d} {label}: {what}")
            else:
                out.append(f"{portfolio_id} {pd.Timestamp(d):%Y-%m-%d} {label}: contributions sum to {g:,.6f}, "
                           f"total {t:,.6f}")

    def with_rows(totals: pd.Series, sums: pd.Series) -> pd.Series:
        # a book without a position in the model has a total of 0 and no position rows: nothing to add up
        return totals[(totals != 0) | totals.index.isin(sums.index)]

    hist = one_day[(one_day["method"] == HISTORICAL) & (one_day["measure"] == "es")]
    pos_hist = positions[(positions["method"] == HISTORICAL) & (positions["measure"] == "es")]
    for level in sorted(set(hist["level"]) | set(pos_hist["level"])):
        sums = pos_hist[pos_hist["level"] == level].groupby("date")["contribution"].sum()
        totals = hist[hist["level"] == level].set_index("date")["value"]
        compare(f"historical ES {level:.3%} by position", with_rows(totals, sums), sums)
    sigma = one_day[(one_day["method"] == PARAMETRIC) & (one_day["measure"] == "volatility")].set_index("date")["value"]
    pos_par = positions[(positions["method"] == PARAMETRIC) & (positions["measure"] == "volatility")]
    sums = pos_par.groupby("date")["contribution"].sum()
    compare("parametric sigma by position", with_rows(sigma, sums), sums)
    compare("parametric sigma by factor and specific", sigma, factors.groupby("date")["contribution"].sum())
    return out


def backtest_problems(backtest: pd.DataFrame, portfolio_id: str, alpha: float = KUPIEC_ALPHA) -> list[str]:
    """Backtest dates in the red zone (10 or more exceptions in the window) or whose Kupiec p-value is below
    ``alpha``: one line each, with the exceptions, the window and the p-value."""
    if backtest.empty:
        return []
    bad = backtest[(backtest["zone"] == "red") | (backtest["kupiec_p_value"] < alpha)]
    return [
        f"{portfolio_id} {r.date:%Y-%m-%d}: {r.exceptions} exceptions in {r.window_sessions} sessions, zone {r.zone}, "
        f"Kupiec p {r.kupiec_p_value:.4f}"
        for r in bad.itertuples()
    ]


def limited_history_problems(measures: pd.DataFrame, portfolio_id: str) -> list[str]:
    """Dates whose historical VaR rests on fewer scenarios than the window (``limited_history``) or was not
    computed (``insufficient_history``), with the scenario count."""
    rows = measures[(measures["method"] == HISTORICAL) & (measures["measure"] == "scenarios")]
    flagged = rows[rows["flag"].str.contains("limited_history|insufficient_history", regex=True)]
    return [
        f"{portfolio_id} {r.date:%Y-%m-%d}: {int(r.value)} scenarios "
        f"({'insufficient_history: not computed' if 'insufficient_history' in r.flag else 'limited_history'})"
        for r in flagged.itertuples()
    ]
