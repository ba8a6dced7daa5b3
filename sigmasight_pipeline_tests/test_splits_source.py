"""Stock splits from every market-data source (books.md, "Corporate actions"), and their warehouse table.

* yfinance: ``Ticker(symbol).splits`` as yfinance 1.x builds it (its own ``parse_actions`` and ``set_df_tz`` on
  a chart-API payload, and the real ``Ticker.splits`` property over a patched ``get_splits``): tz-aware
  exchange-time index named "Date", values N / M; None (a failed download) retried; options and ^ indexes not
  asked. No test reaches the network (``no_network`` of test_marketdata, autouse here too).
* CSV: ``splits.csv`` parsed, every bad row named (file, row, column) in one error.
* sample: NVDA's 10-for-1 split of 2024-06-10, and its closes re-anchored on the post-split scale while every
  other symbol's closes are exactly what they were.
* warehouse: ``store_splits`` upserts by (symbol, ex_date); ``read_splits`` returns the splits contract.
"""

from __future__ import annotations

import datetime as dt
import os
import warnings

import numpy as np
import pandas as pd
import pytest

from sigmasight_pipeline.engines import splits as engine_splits
from sigmasight_pipeline.marketdata import CsvFormatError, CsvSource, SampleSource, YFinanceSource
from sigmasight_pipeline.marketdata import base
from sigmasight_pipeline.marketdata.yfinance_source import splits_from_yfinance
from sigmasight_pipeline_tests.test_marketdata import NetworkBlocked, no_network  # noqa: F401 (autouse fixture)

D = dt.date
NY = "America/New_York"

#: NVDA's real split history (ex-date, N / M): 2:1 (2000, 2001, 2006), 3:2 (2007), 4:1 (2021), 10:1 (2024).
NVDA_SPLITS = [("2000-06-27", 2.0), ("2001-09-12", 2.0), ("2006-04-07", 2.0), ("2007-09-11", 1.5),
               ("2021-07-20", 4.0), ("2024-06-10", 10.0)]


def expected(rows: list[tuple[str, str, float]]) -> pd.DataFrame:
    """A splits frame written out by hand."""
    return pd.DataFrame({
        "symbol": pd.Series([r[0] for r in rows], dtype=object),
        "ex_date": pd.to_datetime([r[1] for r in rows]).as_unit("ns"),
        "ratio": [float(r[2]) for r in rows],
    })


def yf_splits(splits: list[tuple[str, float]]) -> pd.Series:
    """``Ticker.splits`` exactly as yfinance 1.x builds it: the chart API's ``events.splits`` (epoch of the
    ex-date's 09:30 New York open, numerator, denominator) through yfinance's own ``parse_actions`` and
    ``set_df_tz``, then ``['Stock Splits'].rename_axis('Date')`` (scrapers/history.py)."""
    from yfinance import utils

    events = {}
    for day, ratio in splits:
        when = int(pd.Timestamp(f"{day} 09:30", tz=NY).timestamp())
        num, den = (ratio, 1) if ratio >= 1 else (1, round(1 / ratio))
        if ratio == 1.5:
            num, den = 3, 2
        events[str(when)] = {"date": when, "numerator": num, "denominator": den, "splitRatio": f"{num}:{den}"}
    with warnings.catch_warnings():  # yfinance 1.x uses pandas APIs deprecated in pandas 3.1
        warnings.simplefilter("ignore")
        _, frame, _ = utils.parse_actions({"events": {"splits": events}} if events else {})
        frame = utils.set_df_tz(frame, "1d", NY)
    return frame["Stock Splits"].rename_axis("Date")


# ------------------------------------------------------------------------------------------------ contract
def test_the_splits_contract_is_the_engines_one():
    """``marketdata`` may not import ``engines`` (layers): its restated contract must equal the engines'."""
    assert base.SPLIT_COLUMNS == engine_splits.SPLIT_COLUMNS
    pd.testing.assert_frame_equal(base.empty_splits(), engine_splits.empty_splits())


@pytest.mark.parametrize("symbol, splittable", [
    ("NVDA", True), ("brk-b", True), ("SPY", True), ("^VIX", False), ("^TNX", False),
    ("NVDA251017C00800000", False), ("VIX250716C00025000", False), ("", False),
])
def test_what_can_split(symbol, splittable):
    assert base.has_splits(symbol) is splittable


# ------------------------------------------------------------------------------------------------ yfinance
class FakeSplits:
    """``Ticker(symbol).splits`` stand-in: replays per-symbol answers (a Series, None, or an exception)."""

    def __init__(self, answers: dict[str, list]):
        self.answers = {k: list(v) for k, v in answers.items()}
        self.calls: list[str] = []

    def __call__(self, symbol):
        self.calls.append(symbol)
        queue = self.answers.get(symbol) or [yf_splits([])]
        answer = queue.pop(0) if len(queue) > 1 else queue[0]
        if isinstance(answer, Exception):
            raise answer
        return answer


class TestYFinanceSplits:
    def test_the_shape_yfinance_builds(self):
        series = yf_splits(NVDA_SPLITS)
        # what yfinance 1.x hands back: tz-aware New York times of the ex-date's open, named "Date"
        assert series.name == "Stock Splits" and series.index.name == "Date"
        assert str(series.index.tz) == NY and series.index[-1] == pd.Timestamp("2024-06-10 09:30", tz=NY)
        frame, problems = splits_from_yfinance(series, "NVDA")
        assert problems == []
        pd.testing.assert_frame_equal(frame, expected([("NVDA", d, r) for d, r in NVDA_SPLITS]))

    def test_fetch_splits_reads_every_stock_and_fund_and_nothing_else(self):
        midnight = pd.Series([4.0, 7.0, 2.0, 2.0, 2.0][::-1],  # the ex-date at 00:00 local, as yfinance prints it
                             index=pd.DatetimeIndex(["1987-06-16", "2000-06-21", "2005-02-28", "2014-06-09",
                                                     "2020-08-31"], name="Date").tz_localize(NY),
                             name="Stock Splits")
        fake = FakeSplits({
            "NVDA": [yf_splits(NVDA_SPLITS)],
            "AAPL": [midnight],
            "GE": [yf_splits([("2021-08-02", 0.125)])],  # 1-for-8 reverse split
            "SPY": [yf_splits([])],  # never split: an empty Series
        })
        src = YFinanceSource(download=lambda **k: None, splits=fake, sleep=lambda s: None, threads=False)
        got = src.fetch_splits(["nvda", "SPY", "^VIX", "^TNX", "NVDA251017C00800000", "GE", "AAPL", "NVDA"])
        assert fake.calls == ["NVDA", "SPY", "GE", "AAPL"]  # options and ^ indexes are not asked; deduplicated
        want = expected(
            [("AAPL", "1987-06-16", 2.0), ("AAPL", "2000-06-21", 2.0), ("AAPL", "2005-02-28", 2.0),
             ("AAPL", "2014-06-09", 7.0), ("AAPL", "2020-08-31", 4.0), ("GE", "2021-08-02", 0.125)]
            + [("NVDA", d, r) for d, r in NVDA_SPLITS]
        )
        pd.testing.assert_frame_equal(got, want)
        assert src.last_split_errors == []
        # the same with threads: the same frame
        threaded = YFinanceSource(download=lambda **k: None, splits=FakeSplits(fake.answers), sleep=lambda s: None)
        pd.testing.assert_frame_equal(threaded.fetch_splits(["NVDA", "AAPL", "GE", "SPY"]), want)

    def test_none_is_a_failed_download_and_is_retried(self):
        sleeps: list[float] = []
        fake = FakeSplits({
            "NVDA": [None, TimeoutError("Read timed out"), yf_splits(NVDA_SPLITS[-1:])],
            "GONE": [None],
        })
        src = YFinanceSource(download=lambda **k: None, splits=fake, sleep=sleeps.append, base_delay=0.5,
                             max_attempts=3, threads=False)
        got = src.fetch_splits(["NVDA", "GONE"])
        pd.testing.assert_frame_equal(got, expected([("NVDA", "2024-06-10", 10.0)]))
        assert fake.calls == ["NVDA"] * 3 + ["GONE"] * 3
        assert sleeps == [0.5, 1.0, 0.5, 1.0]
        errors = src.last_split_errors
        assert "NVDA splits, attempt 1: no split history returned" in errors[0]
        assert "NVDA splits, attempt 2: TimeoutError: Read timed out" in errors[1]
        assert errors[-1] == "GONE: split history not loaded after 3 attempts"  # named, absent from the frame

    def test_zero_rows_dropped_and_bad_ratios_named(self):
        index = pd.DatetimeIndex(["2020-01-02", "2021-03-01", "2022-05-02", "2022-05-02 12:00", "2023-07-03"],
                                 name="Date").tz_localize(NY)
        series = pd.Series([0.0, 2.0, 3.0, 4.0, -1.0], index=index, name="Stock Splits")
        frame, problems = splits_from_yfinance(series, "XYZ")
        pd.testing.assert_frame_equal(frame, expected([("XYZ", "2021-03-01", 2.0)]))
        assert problems == ["XYZ: split on 2023-07-03 has ratio -1.0 (must be > 0)",
                            "XYZ: two splits on 2022-05-02 (3.0, 4.0)"]

    def test_the_default_reads_ticker_splits(self, monkeypatch):
        """Without a hook the source reads yfinance's own ``Ticker(symbol).splits`` (its ``get_splits`` faked)."""
        import yfinance

        asked = []

        def get_splits(self, period="max"):
            asked.append((self.ticker, period))
            return yf_splits(NVDA_SPLITS if self.ticker == "NVDA" else [])

        monkeypatch.setattr(yfinance.Ticker, "get_splits", get_splits)
        src = YFinanceSource(sleep=lambda s: None, threads=False)
        got = src.fetch_splits(["NVDA", "MSFT", "^VIX"])
        assert asked == [("NVDA", "max"), ("MSFT", "max")]
        pd.testing.assert_frame_equal(got, expected([("NVDA", d, r) for d, r in NVDA_SPLITS]))

    def test_no_split_at_all_is_an_empty_frame(self):
        src = YFinanceSource(download=lambda **k: None, splits=FakeSplits({}), threads=False)
        got = src.fetch_splits(["SPY", "^IRX"])
        pd.testing.assert_frame_equal(got, base.empty_splits())
        assert list(got.columns) == base.SPLIT_COLUMNS


# ------------------------------------------------------------------------------------------------ csv
class TestCsvSplits:
    def test_splits_csv(self, tmp_path):
        (tmp_path / "splits.csv").write_text(
            "Symbol, Ex_Date, Ratio\n"
            "nvda,2024-06-10,10\n"
            "NVDA,2021-07-20T00:00:00-04:00,4\n"
            "GE,2021-08-02,0.125\n"
            "AAPL,2020-08-31,4.0\n"
        )
        (tmp_path / "NVDA.csv").write_text("date,close\n2025-01-02,138.31\n")
        src = CsvSource(tmp_path)
        got = src.fetch_splits(["GE", "NVDA", "MSFT", "^VIX"])
        pd.testing.assert_frame_equal(got, expected(
            [("GE", "2021-08-02", 0.125), ("NVDA", "2021-07-20", 4.0), ("NVDA", "2024-06-10", 10.0)]))
        assert src.last_split_errors == []
        # splits.csv is not the closes of a symbol called SPLITS
        assert src.symbol_file("SPLITS") is None
        assert src.fetch_closes(["NVDA"], D(2025, 1, 2), D(2025, 1, 2))["NVDA"].tolist() == [138.31]

    def test_no_file_no_splits(self, tmp_path):
        pd.testing.assert_frame_equal(CsvSource(tmp_path).fetch_splits(["NVDA"]), base.empty_splits())

    def test_every_bad_row_is_named_in_one_error(self, tmp_path):
        (tmp_path / "splits.csv").write_text(
            "symbol,ex_date,ratio\n"
            "NVDA,2024-06-10,10\n"       # row 2: fine
            ",2024-06-10,2\n"            # row 3: empty symbol
            "AAPL,06/10/2024,4\n"        # row 4: not ISO
            "GE,2021-08-02,0\n"          # row 5: ratio 0
            "F,2020-01-02,-2\n"          # row 6: negative
            "C,2011-05-09,1:10\n"        # row 7: not a number
            "nvda,2024-06-10,10\n"       # row 8: NVDA 2024-06-10 again
            "XOM,2020-01-02,\n"          # row 9: ratio missing
        )
        with pytest.raises(CsvFormatError) as err:
            CsvSource(tmp_path).fetch_splits(["NVDA"])
        e = err.value
        assert e.file.endswith("splits.csv") and (e.row, e.column) == (3, "symbol")
        assert [(r, c) for r, c, _ in e.errors] == [
            (3, "symbol"), (4, "ex_date"), (5, "ratio"), (6, "ratio"), (7, "ratio"), (8, "ex_date"), (9, "ratio")]
        text = str(e)
        assert text.startswith("splits.csv: row 3, column 'symbol': empty symbol; ")
        assert "row 4, column 'ex_date': cannot read '06/10/2024' as a date (YYYY-MM-DD)" in text
        assert "row 5, column 'ratio': '0' is not a split ratio: a number N / M > 0 (10-for-1: 10)" in text
        assert "row 7, column 'ratio': '1:10' is not a split ratio" in text
        assert "row 8, column 'ex_date': NVDA 2024-06-10 already given in row 2" in text
        assert "row 9, column 'ratio': '' is not a split ratio" in text

    def test_missing_column(self, tmp_path):
        (tmp_path / "splits.csv").write_text("symbol,date,ratio\nNVDA,2024-06-10,10\n")
        with pytest.raises(CsvFormatError, match=r"splits.csv: row 1, column 'ex_date': missing column"):
            CsvSource(tmp_path).fetch_splits(["NVDA"])

    def test_an_edited_file_is_read_again(self, tmp_path):
        path = tmp_path / "splits.csv"
        path.write_text("symbol,ex_date,ratio\nNVDA,2024-06-10,10\n")
        src = CsvSource(tmp_path)
        assert src.fetch_splits(["NVDA", "TSLA"])["symbol"].tolist() == ["NVDA"]
        path.write_text("symbol,ex_date,ratio\nNVDA,2024-06-10,10\nTSLA,2022-08-25,3\n")
        os.utime(path, (path.stat().st_atime, path.stat().st_mtime + 5))
        assert src.fetch_splits(["NVDA", "TSLA"])["symbol"].tolist() == ["NVDA", "TSLA"]


# ------------------------------------------------------------------------------------------------ sample
class TestSampleSplits:
    def test_its_split_list(self):
        src = SampleSource()
        pd.testing.assert_frame_equal(src.fetch_splits(["SPY", "nvda", "NVDA251017C00800000", "^VIX"]),
                                      expected([("NVDA", "2024-06-10", 10.0)]))
        pd.testing.assert_frame_equal(src.fetch_splits(["AAPL", "SPY"]), base.empty_splits())
        assert src.last_split_errors == []

    def test_nvda_trades_on_the_post_split_scale(self):
        closes = SampleSource().fetch_closes(["NVDA"], D(2023, 11, 1), D(2025, 12, 31))["NVDA"]
        assert closes[pd.Timestamp("2024-01-05")] == 70.0  # the books' 700 / 10
        assert closes["2024-01-02":"2024-01-31"].between(60, 80).all()  # not ~700
        assert closes[pd.Timestamp("2025-01-02")] == 138.31 and closes[pd.Timestamp("2025-06-30")] == 157.99
        h1 = closes["2025-01-02":"2025-06-30"]
        assert h1.between(120, 200).all() and 145 < h1.mean() < 170, (h1.min(), h1.max(), h1.mean())
        assert closes["2025"].between(110, 250).all()
        # adjusted: nothing happens on the ex-date (an unadjusted series would fall 90 %)
        r = closes.pct_change()
        assert abs(r[pd.Timestamp("2024-06-10")]) < 0.1 and r.abs().max() < 0.25

    def test_the_demo_book_on_the_split_adjusted_scale(self):
        """The HF book's 800 NVDA bought at 700 on 2024-01-05 (pre-split) is 8,000 shares at 70: the same cost,
        valued at the adjusted close (split_factors of the engines, the splits of the source)."""
        src = SampleSource()
        factor = engine_splits.split_factors(src.fetch_splits(["NVDA"]), ["NVDA", "NVDA"],
                                             [pd.Timestamp("2024-01-05"), pd.Timestamp("2024-06-10")])
        assert factor.tolist() == [10.0, 1.0]  # held through the ex-date; bought on it
        quantity, price = 800 * factor[0], 700 / factor[0]
        assert (quantity, price, quantity * price) == (8000.0, 70.0, 560_000.0)
        close = src.fetch_closes(["NVDA"], D(2025, 6, 30), D(2025, 6, 30)).iat[0, 0]
        assert quantity * close == pytest.approx(1_263_920.0)  # 8,000 x 157.99

    def test_every_other_symbol_is_unchanged(self):
        """Closes recorded before the NVDA re-anchoring: the change touched NVDA's anchors only."""
        before = {
            "AAPL": ([14.9001, 225.0, 321.7396, 288.0, 314.2795, 370.7052], 497880.384),
            "SPY": ([142.1896, 466.1105, 591.5226, 585.0, 602.5788, 525.4629], 1098849.9916),
            "BND": ([53.1875, 76.9444, 78.2883, 77.5, 74.4896, 86.1504], 225373.6518),
            "AMD": ([70.379, 149.798, 228.2298, 137.7, 205.3879, 147.1446], 312239.4258),
            "ZZZZ": ([44.2851, 117.8835, 149.2341, 185.7284, 185.4798, 196.0148], 404677.0964),
            "^TNX": ([4.271, 4.7, 4.636, 4.235, 4.974, 3.607], 14085.959),
        }
        days = ["2015-01-02", "2024-01-08", "2024-06-10", "2025-01-02", "2025-06-30", "2027-12-31"]
        src = SampleSource()
        for sym, (values, total) in before.items():
            series = src.series(sym)
            assert [float(series[pd.Timestamp(d)]) for d in days] == values, sym
            assert round(float(series.sum()), 4) == total, sym


# ------------------------------------------------------------------------------------------------ warehouse
def test_store_and_read_splits(engine):
    from sigmasight_pipeline.warehouse.splits import read_splits, store_splits

    assert read_splits(engine).equals(base.empty_splits())
    first = expected([("NVDA", "2024-06-10", 10.0), ("GE", "2021-08-02", 0.125)])
    with engine.begin() as conn:
        assert store_splits(conn, first, "csv") == 2
    with engine.begin() as conn:  # a rerun, and a corrected ratio: upserted, never duplicated
        store_splits(conn, expected([("NVDA", "2024-06-10", 10.0), ("GE", "2021-08-02", 1 / 8)]), "yfinance")
    got = read_splits(engine)
    pd.testing.assert_frame_equal(got, expected([("GE", "2021-08-02", 0.125), ("NVDA", "2024-06-10", 10.0)]))
    assert list(got.columns) == engine_splits.SPLIT_COLUMNS
    pd.testing.assert_frame_equal(read_splits(engine, ["nvda", "MSFT"]), expected([("NVDA", "2024-06-10", 10.0)]))
    assert read_splits(engine, ["MSFT"]).equals(base.empty_splits())
    assert read_splits(engine, with_source=True)["source"].tolist() == ["yfinance", "yfinance"]
    # what the engines consume: a position held through the ex-date is multiplied by the ratio
    factor = engine_splits.split_factors(got, ["NVDA", "GE"], [pd.Timestamp("2024-01-05"), pd.Timestamp("2021-01-04")])
    assert factor.tolist() == [10.0, 0.125]
    assert np.isclose(got["ratio"].prod(), 1.25)
