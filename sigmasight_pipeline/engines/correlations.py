"""Position correlations: pairwise-complete correlation matrix, value-weighted summary and clusters.

For each as-of date: the positions worth at least ``min_value`` dollars and ``min_weight`` of the book are
correlated on the daily LOG returns of their market-data symbol (an option on its underlying's returns)
over the ``window`` sessions ending on the date (never after it). Each pair uses the sessions where both
have a return and needs at least ``min_overlap`` of them. The whole matrix comes from a few matrix products
of the window's values and its missing-data mask (counts = M'M, sums = Z'M, cross-products = Z'Z), not a
loop over pairs; pandas' ``DataFrame.corr()`` (pairwise complete) gives the same numbers.

Correlations are of the securities' returns (an option's underlying's), not sign-adjusted for short
positions or puts: the question they answer is "which holdings move together". Clusters use ``|rho|``.

Defects of the earlier system that this module rules out: option values without the x100 multiplier,
equal weights in the effective number of positions, self-pairs and both directions of a pair stored.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import connected_components

from .regression import as_of_index, window_positions
from .valuation import UNTAGGED, parse_tags

__all__ = ["CorrelationResult", "position_correlations", "pairwise_correlation"]

PAIR_COLUMNS = ["date", "position_a", "position_b", "correlation", "n_obs"]
SUMMARY_COLUMNS = [
    "date", "positions_included", "overall_correlation", "concentration_score", "effective_positions",
    "clusters",
]
CLUSTER_COLUMNS = ["date", "cluster_id", "cluster_name", "position_id"]


@dataclass(frozen=True)
class CorrelationResult:
    """``pairs``: ``date, position_a, position_b, correlation, n_obs`` (position_a < position_b; no
    self-pairs, each pair once, only pairs with at least ``min_overlap`` common returns).
    ``summary``: ``date, positions_included, overall_correlation, concentration_score,
    effective_positions, clusters`` (one row per date). ``clusters``: ``date, cluster_id, cluster_name,
    position_id`` (one row per member)."""

    pairs: pd.DataFrame
    summary: pd.DataFrame
    clusters: pd.DataFrame


def pairwise_correlation(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pairwise-complete Pearson correlation of the columns of ``values`` (T x P, NaN = missing).

    Returns ``(corr, n_obs)``, both P x P. Each pair uses the rows where both columns are finite, exactly
    as ``pandas.DataFrame.corr()``; a pair with fewer than 2 common rows or no variance gets NaN.
    """
    x = np.asarray(values, dtype=np.float64)
    m = np.isfinite(x)
    mf = m.astype(np.float64)
    cnt = m.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(m, x, 0.0).sum(axis=0) / np.where(cnt > 0, cnt, 1)
    # Centring each column first (a shift leaves correlations unchanged) keeps the sums below accurate.
    z = np.where(m, x - mean, 0.0)
    n = mf.T @ mf
    sx = z.T @ mf  # [i, j]: sum of x_i over the rows where both i and j are present
    sxx = (z * z).T @ mf
    sxy = z.T @ z
    with np.errstate(invalid="ignore", divide="ignore"):
        cov = sxy - sx * sx.T / n
        var_i = sxx - sx * sx / n
        var_j = var_i.T
        corr = cov / np.sqrt(var_i * var_j)
    corr[(n < 2) | ~(var_i > 0) | ~(var_j > 0)] = np.nan
    np.clip(corr, -1.0, 1.0, out=corr)
    return corr, n.astype(np.int64)


def _tag_list(tags) -> list[str]:
    """The position's real tags (the valuation engine's parsing, without its "(untagged)" placeholder)."""
    return [t for t in parse_tags(tags) if t != UNTAGGED]


def _cluster_name(members: pd.DataFrame, labels: Mapping | None) -> str:
    """A tag all members share, else a sector all share, else '<largest member> cluster'.

    ``members`` is ordered by |value|, largest first; a shared tag is picked in the largest member's order.
    """
    tag_lists = [_tag_list(t) for t in members["tags"]]
    shared = set(tag_lists[0]).intersection(*map(set, tag_lists[1:]))
    for tag in tag_lists[0]:
        if tag in shared:
            return tag
    sectors = members["sector"]
    if sectors.notna().all():
        s = sectors.astype(str).str.strip()
        if (s != "").all() and s.nunique() == 1:
            return s.iloc[0]
    top = members.iloc[0]
    label = None
    if labels is not None:
        label = labels.get(top["position_id"], labels.get(top["symbol"]))
    return f"{label if label is not None else top['symbol']} cluster"


def position_correlations(
    positions: pd.DataFrame,
    log_returns: pd.DataFrame,
    weights: pd.DataFrame,
    as_of_dates: Iterable | pd.DatetimeIndex,
    window: int = 90,
    min_overlap: int = 20,
    min_value: float = 10_000,
    min_weight: float = 0.01,
    cluster_threshold: float = 0.7,
    labels: Mapping | None = None,
) -> CorrelationResult:
    """Correlation matrix, summary and clusters of a book's positions for each as-of date.

    ``positions``: ``position_id, symbol, underlying_symbol, tags, sector`` (``tags`` a tuple/list or a
    comma-separated string). An option uses its ``underlying_symbol``'s returns; a stock its own.

    ``log_returns``: sessions x market symbols, daily log returns, NaN where missing.

    ``weights``: ``date, position_id, market_value`` -- the position's dollar value INCLUDING the contract
    multiplier. For an option pass its delta-adjusted exposure (delta x contracts x multiplier x underlying
    price): it is correlated on its underlying's returns, and that is the dollar amount that moves with
    them (its premium value would understate it). The engine uses ``|market_value|``.

    Selection: ``weight_i = |value_i| / sum |value|`` over ALL positions of the date; a position is included
    when ``|value_i| >= min_value`` and ``weight_i >= min_weight``.

    Summary (real value weights renormalised over the included positions, ``w_i = |v_i| / sum_incl |v|``):

    * ``overall_correlation`` = sum_{i<j} w_i w_j rho_ij / sum_{i<j} w_i w_j over the pairs that have a
      correlation (value-weighted average pairwise correlation);
    * ``concentration_score`` = Herfindahl sum w_i^2; ``effective_positions`` = 1 / sum w_i^2 (real weights,
      not 1/n; weights 0.5/0.3/0.2 give 2.63, not 3);
    * ``clusters`` = number of clusters.

    Clusters: connected components of the graph with an edge where ``|rho| >= cluster_threshold``; only
    components of two or more positions. Named by a tag every member carries, else a sector they all share,
    else "<largest member's symbol> cluster" (``labels``, a mapping of position_id or symbol to a display
    name, overrides the symbol). ``cluster_id`` is 1, 2, ... per date, largest total value first.
    """
    if window < 2 or min_overlap < 2:
        raise ValueError("window and min_overlap must be at least 2")
    missing = {"position_id", "symbol", "underlying_symbol"} - set(positions.columns)
    if missing:
        raise ValueError(f"positions lacks columns {sorted(missing)}")
    pos_info = positions.copy()
    if pos_info["position_id"].duplicated().any():
        raise ValueError("duplicate position_id in positions")
    for col in ("tags", "sector"):
        if col not in pos_info.columns:
            pos_info[col] = None
    under = pos_info["underlying_symbol"]
    has_under = under.notna() & (under.astype(str).str.strip() != "")
    pos_info["market_symbol"] = under.where(has_under, pos_info["symbol"])
    pos_info = pos_info.set_index("position_id", drop=False)

    as_of = as_of_index(as_of_dates)
    sessions = log_returns.index
    rows_end = window_positions(sessions, as_of)
    lr = log_returns.to_numpy(dtype=np.float64)
    col_of = {c: i for i, c in enumerate(log_returns.columns)}

    wts = weights[["date", "position_id", "market_value"]].assign(date=pd.to_datetime(weights["date"]))
    unknown = ~wts["position_id"].isin(pos_info.index)
    if unknown.any():
        raise ValueError(f"weights for positions not in positions: {wts.loc[unknown, 'position_id'].unique()[:5].tolist()}")
    if wts.duplicated(["date", "position_id"]).any():
        raise ValueError("more than one weight row for a (date, position)")
    by_date = dict(tuple(wts.groupby("date", sort=False)))

    pair_frames, summary_rows, cluster_frames = [], [], []
    for d, end in zip(as_of, rows_end):
        day = by_date.get(d, wts.iloc[:0])
        value = np.abs(day["market_value"].to_numpy(dtype=np.float64))
        total = np.nansum(value)
        weight = value / total if total > 0 else np.zeros_like(value)
        keep = (value >= min_value) & (weight >= min_weight)  # NaN values fail both tests
        inc = pd.DataFrame({"position_id": day["position_id"].to_numpy()[keep], "value": value[keep]})
        inc = inc.sort_values("position_id", kind="stable").reset_index(drop=True)
        p = len(inc)
        if p == 0:
            summary_rows.append((d, 0, np.nan, np.nan, np.nan, 0))
            continue
        w = inc["value"].to_numpy() / inc["value"].sum()
        info = pos_info.loc[inc["position_id"]]

        # Window of returns for each included position's market symbol (NaN column if it has none).
        start = max(0, end - window + 1)
        cols = np.array([col_of.get(s, -1) for s in info["market_symbol"]])
        block = np.full((end + 1 - start, p), np.nan)
        have = cols >= 0
        block[:, have] = lr[start : end + 1, cols[have]]
        corr, nobs = pairwise_correlation(block)

        iu, ju = np.triu_indices(p, k=1)
        rho = corr[iu, ju]
        cnt = nobs[iu, ju]
        valid = (cnt >= min_overlap) & np.isfinite(rho)
        ids = inc["position_id"].to_numpy()
        pair_frames.append(
            pd.DataFrame(
                {
                    "date": d,
                    "position_a": ids[iu[valid]],
                    "position_b": ids[ju[valid]],
                    "correlation": rho[valid],
                    "n_obs": cnt[valid],
                }
            )
        )
        ww = w[iu[valid]] * w[ju[valid]]
        overall = float((ww * rho[valid]).sum() / ww.sum()) if ww.sum() > 0 else np.nan
        hhi = float((w * w).sum())

        # Clusters: connected components of |rho| >= threshold.
        edge = valid & (np.abs(rho) >= cluster_threshold)
        graph = csr_matrix((np.ones(edge.sum()), (iu[edge], ju[edge])), shape=(p, p))
        _, comp = connected_components(graph, directed=False)
        sizes = np.bincount(comp)
        members = info.reset_index(drop=True).assign(value=inc["value"].to_numpy(), comp=comp)
        members = members[sizes[comp] >= 2]
        n_clusters = 0
        if not members.empty:
            order = members.groupby("comp")["value"].sum().sort_values(ascending=False, kind="stable").index
            for cid, c in enumerate(order, start=1):
                mem = members[members["comp"] == c].sort_values(["value", "position_id"], ascending=[False, True], kind="stable")
                cluster_frames.append(
                    pd.DataFrame(
                        {
                            "date": d,
                            "cluster_id": cid,
                            "cluster_name": _cluster_name(mem, labels),
                            "position_id": mem["position_id"].to_numpy(),
                        }
                    )
                )
            n_clusters = len(order)
        summary_rows.append((d, p, overall, hhi, 1.0 / hhi, n_clusters))

    def concat(frames, columns):
        frames = [f for f in frames if not f.empty]
        if not frames:
            return pd.DataFrame({c: pd.Series(dtype=object) for c in columns})
        return pd.concat(frames, ignore_index=True)[columns]

    summary = pd.DataFrame(summary_rows, columns=SUMMARY_COLUMNS)
    summary["positions_included"] = summary["positions_included"].astype(np.int64)
    summary["clusters"] = summary["clusters"].astype(np.int64)
    return CorrelationResult(
        pairs=concat(pair_frames, PAIR_COLUMNS),
        summary=summary,
        clusters=concat(cluster_frames, CLUSTER_COLUMNS),
    )
