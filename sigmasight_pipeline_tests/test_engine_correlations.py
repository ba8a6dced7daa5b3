"""Position correlation engine: pairs, summary and clusters (engines/correlations.py)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from sigmasight_pipeline.engines.correlations import pairwise_correlation, position_correlations

N = 130


@pytest.fixture(scope="module")
def returns() -> pd.DataFrame:
    rng = np.random.default_rng(42)
    idx = pd.bdate_range("2025-01-02", periods=N)
    a = rng.normal(0, 0.012, N)
    frame = pd.DataFrame(
        {
            "AAA": a,
            "BBB": a + rng.normal(0, 0.001, N),  # A up to noise
            "CCC": -a + rng.normal(0, 0.0005, N),  # minus A
            "DDD": rng.normal(0, 0.015, N),  # independent
            "EEE": rng.normal(0, 0.01, N),
        },
        index=idx,
    )
    frame.iloc[[N - 5, N - 30, N - 31], frame.columns.get_loc("BBB")] = np.nan  # holes inside the window
    frame.iloc[: N - 15, frame.columns.get_loc("EEE")] = np.nan  # only 15 returns: below min_overlap
    return frame


def book(values: dict, date, tags=None, sectors=None, underlying=None) -> tuple[pd.DataFrame, pd.DataFrame]:
    ids = list(values)
    positions = pd.DataFrame(
        {
            "position_id": ids,
            "symbol": [f"SYM_{i}" if underlying and i in underlying else i.replace("p_", "") for i in ids],
            "underlying_symbol": [(underlying or {}).get(i) for i in ids],
            "tags": [(tags or {}).get(i) for i in ids],
            "sector": [(sectors or {}).get(i) for i in ids],
        }
    )
    weights = pd.DataFrame({"date": date, "position_id": ids, "market_value": [values[i] for i in ids]})
    return positions, weights


def test_hand_built_pairs_clusters_and_summary(returns):
    d = returns.index[-1]
    positions, weights = book(
        {"p_AAA": 400_000.0, "p_BBB": 300_000.0, "p_CCC": -200_000.0, "p_DDD": 100_000.0},
        d,
        tags={"p_AAA": ("tech", "ai"), "p_BBB": "ai, tech", "p_CCC": ["tech", "hedge"], "p_DDD": ()},
        sectors={"p_AAA": "Technology", "p_BBB": "Technology", "p_CCC": "Financials", "p_DDD": "Energy"},
    )
    res = position_correlations(positions, returns, weights, [d])
    assert list(res.pairs.columns) == ["date", "position_a", "position_b", "correlation", "n_obs"]
    assert list(res.summary.columns) == [
        "date", "positions_included", "overall_correlation", "concentration_score", "effective_positions", "clusters",
    ]
    assert list(res.clusters.columns) == ["date", "cluster_id", "cluster_name", "position_id"]

    window = returns.iloc[-90:][["AAA", "BBB", "CCC", "DDD"]]
    expected = window.corr()
    counts = window.notna().astype(int).T @ window.notna().astype(int)
    assert len(res.pairs) == 6
    for r in res.pairs.itertuples():
        a, b = r.position_a.replace("p_", ""), r.position_b.replace("p_", "")
        assert r.correlation == pytest.approx(expected.loc[a, b], abs=1e-12)
        assert r.n_obs == counts.loc[a, b]
    pairs = res.pairs.set_index(["position_a", "position_b"])["correlation"]
    assert pairs[("p_AAA", "p_BBB")] > 0.99
    assert pairs[("p_AAA", "p_CCC")] < -0.99
    assert abs(pairs[("p_AAA", "p_DDD")]) < 0.3
    assert res.pairs.loc[res.pairs["position_a"] == "p_AAA", "n_obs"].max() == 90  # 90-session window

    # cluster: A, B and C (|rho| >= 0.7, the negative one included), named by the tag all three carry
    assert res.clusters["cluster_id"].nunique() == 1
    assert set(res.clusters["position_id"]) == {"p_AAA", "p_BBB", "p_CCC"}
    assert (res.clusters["cluster_name"] == "tech").all()
    assert list(res.clusters["position_id"]) == ["p_AAA", "p_BBB", "p_CCC"]  # largest value first

    s = res.summary.iloc[0]
    w = {"p_AAA": 0.4, "p_BBB": 0.3, "p_CCC": 0.2, "p_DDD": 0.1}
    num = sum(w[a] * w[b] * rho for (a, b), rho in pairs.items())
    den = sum(w[a] * w[b] for (a, b) in pairs.index)
    assert s["positions_included"] == 4
    assert s["overall_correlation"] == pytest.approx(num / den, abs=1e-12)
    assert s["concentration_score"] == pytest.approx(0.16 + 0.09 + 0.04 + 0.01)
    assert s["effective_positions"] == pytest.approx(1 / 0.30)
    assert s["clusters"] == 1


def test_no_self_pairs_and_each_pair_once(returns):
    d = returns.index[-1]
    ids = ["p_DDD", "p_AAA", "p_CCC", "p_BBB"]  # unsorted on purpose
    positions, weights = book({i: 100_000.0 for i in ids}, d)
    pairs = position_correlations(positions, returns, weights, [d]).pairs
    assert (pairs["position_a"] != pairs["position_b"]).all()
    assert (pairs["position_a"] < pairs["position_b"]).all()
    unordered = {frozenset(p) for p in zip(pairs["position_a"], pairs["position_b"])}
    assert len(unordered) == len(pairs) == 4 * 3 // 2


def test_effective_positions_use_real_weights_not_equal_weights(returns):
    d = returns.index[-1]
    positions, weights = book({"p_AAA": 500_000.0, "p_DDD": 300_000.0, "p_EEE": 200_000.0}, d)
    s = position_correlations(positions, returns, weights, [d]).summary.iloc[0]
    assert s["concentration_score"] == pytest.approx(0.38)
    assert s["effective_positions"] == pytest.approx(2.6316, abs=1e-4)  # 1 / 0.38, not 3


def test_option_weight_uses_multiplier_and_underlying_returns(returns):
    """A call: 10 contracts, delta 0.5, underlying $200 -> delta-adjusted exposure 0.5 x 10 x 100 x 200 = $100,000.

    Without the x100 multiplier it would be $1,000: below the $10k filter and dropped from the matrix.
    """
    d = returns.index[-1]
    positions, weights = book(
        {"stock": 500_000.0, "call": 0.5 * 10 * 100 * 200.0},
        d,
        underlying={"stock": "AAA", "call": "AAA"},
    )
    res = position_correlations(positions, returns, weights, [d])
    s = res.summary.iloc[0]
    assert s["positions_included"] == 2
    assert s["effective_positions"] == pytest.approx(1 / ((5 / 6) ** 2 + (1 / 6) ** 2))
    # the option has no return history of its own: it moves with its underlying
    assert res.pairs["correlation"].iloc[0] == pytest.approx(1.0, abs=1e-12)
    no_multiplier = weights.assign(market_value=[500_000.0, 0.5 * 10 * 200.0])
    assert position_correlations(positions, returns, no_multiplier, [d]).summary["positions_included"].iloc[0] == 1


def test_filters_overlap_and_cluster_name_fallbacks(returns):
    d = returns.index[-1]
    positions, weights = book(
        {
            "p_AAA": 1_000_000.0,
            "p_BBB": 900_000.0,
            "p_CCC": 50_000.0,
            "p_DDD": 5_000.0,  # below $10k
            "p_EEE": 60_000.0,  # only 15 returns: no pairs
        },
        d,
        sectors={"p_AAA": "Technology", "p_BBB": "Technology", "p_CCC": "Utilities"},
    )
    positions.loc[positions["position_id"] == "p_CCC", "symbol"] = "CCC"
    weights = pd.concat(
        [weights, pd.DataFrame({"date": [d], "position_id": ["tiny"], "market_value": [15_000.0]})], ignore_index=True
    )
    positions = pd.concat(
        [positions, pd.DataFrame({"position_id": ["tiny"], "symbol": ["DDD"], "underlying_symbol": [None], "tags": [None], "sector": [None]})],
        ignore_index=True,
    )
    res = position_correlations(positions, returns, weights, [d])
    # p_DDD fails $10k; "tiny" is $15k but 15k / 2.03M < 1%
    assert res.summary["positions_included"].iloc[0] == 4
    in_pairs = set(res.pairs["position_a"]) | set(res.pairs["position_b"])
    assert in_pairs == {"p_AAA", "p_BBB", "p_CCC"}  # p_EEE is included but has < 20 overlapping returns
    # A, B, C cluster; no shared tag or sector -> the largest member's symbol
    assert set(res.clusters["position_id"]) == {"p_AAA", "p_BBB", "p_CCC"}
    assert res.clusters["cluster_name"].iloc[0] == "AAA cluster"
    labelled = position_correlations(positions, returns, weights, [d], labels={"p_AAA": "Apple"})
    assert labelled.clusters["cluster_name"].iloc[0] == "Apple cluster"
    # same sector, no shared tag -> the sector
    ab = ["p_AAA", "p_BBB"]
    only_ab = position_correlations(
        positions[positions["position_id"].isin(ab)], returns, weights[weights["position_id"].isin(ab)], [d]
    )
    assert (only_ab.clusters["cluster_name"] == "Technology").all()
    with pytest.raises(ValueError, match="not in positions"):  # a weight for an unknown position is an error
        position_correlations(positions[positions["position_id"].isin(ab)], returns, weights, [d])


def test_no_look_ahead_and_range_of_dates(returns):
    dates = returns.index[[-20, -1]]
    positions, weights = book({"p_AAA": 100_000.0, "p_BBB": 100_000.0, "p_DDD": 100_000.0}, dates[0])
    weights = pd.concat([weights, weights.assign(date=dates[1])], ignore_index=True)
    both = position_correlations(positions, returns, weights, dates)
    assert len(both.summary) == 2
    first = position_correlations(positions, returns, weights, [dates[0]])
    changed = returns.copy()
    changed.iloc[-19:] = 0.5
    again = position_correlations(positions, changed, weights, [dates[0]])
    pd.testing.assert_frame_equal(again.pairs, first.pairs)
    pd.testing.assert_frame_equal(again.summary, first.summary)
    pd.testing.assert_frame_equal(both.pairs[both.pairs["date"] == dates[0]].reset_index(drop=True), first.pairs)
    exp = returns.loc[: dates[0]].iloc[-90:][["AAA", "BBB", "DDD"]].corr()
    got = first.pairs.set_index(["position_a", "position_b"])["correlation"]
    assert got[("p_BBB", "p_DDD")] == pytest.approx(exp.loc["BBB", "DDD"], abs=1e-12)


def test_pairwise_correlation_matches_pandas_with_missing_data():
    rng = np.random.default_rng(0)
    x = rng.normal(0.001, 0.02, (90, 12))
    x[:, 3] = 0.7 * x[:, 0] + 0.3 * x[:, 3]
    x[rng.random(x.shape) < 0.15] = np.nan
    x[:80, 5] = np.nan
    corr, n = pairwise_correlation(x)
    frame = pd.DataFrame(x)
    np.testing.assert_allclose(corr, frame.corr().to_numpy(), atol=1e-12)
    np.testing.assert_array_equal(n, frame.notna().astype(int).T @ frame.notna().astype(int))
