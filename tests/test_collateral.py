"""Collateral (riskengine.collateral): dated ratios, wallet valuation, Binance auto-exchange, the
three index constructions, the constructed USDe path, and one-line errors for bad input."""

from __future__ import annotations

import datetime as dt
import re

import numpy as np
import pytest

from riskengine import collateral as col
from riskengine.collateral import CollateralError, CollateralRatio, PriceStream, Wallet
from riskengine.data import Catalog
from riskengine.venues._tables import TableError

NS = 1_000_000_000
UTC = dt.timezone.utc
T0 = int(dt.datetime(2025, 10, 10, 21, 0, tzinfo=UTC).timestamp()) * NS


def ratio(asset: str, r: float, ask: float | None = None, auto: float | None = None) -> CollateralRatio:
    """A ratio row as the file loader builds it (defaults: ask = 1 - r, auto = (1 - r) / 2)."""
    return CollateralRatio("test", asset, dt.date(2025, 1, 1), r, "test", 1 - r if ask is None else ask,
                           (1 - r) / 2 if auto is None else auto)


def write(tmp_path, name: str, text: str):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


# ------------------------------------------------------------------------------ valuation
def test_depeg_valuation_by_hand():
    wallet = Wallet({"USDT": 10_000.0, "USDE": 5_000.0})
    ratios = {"USDT": ratio("USDT", 0.9999), "USDE": ratio("USDE", 0.9)}
    # USDe at its peg: 10,000 x 1 x 0.9999 + 5,000 x 1 x 0.9 = 9,999 + 4,500 = 14,499
    assert col.wallet_value(wallet, {"USDT": 1.0, "USDE": 1.0}, ratios) == pytest.approx(14_499.0, abs=1e-9)
    # USDe printed 0.65 on the venue's own book: 9,999 + 5,000 x 0.65 x 0.9 = 9,999 + 2,925 = 12,924
    assert col.wallet_value(wallet, {"USDT": 1.0, "USDE": 0.65}, ratios) == pytest.approx(12_924.0, abs=1e-9)


def test_binance_faq_worked_example_to_the_cent(tmp_path):
    # Binance FAQ "How to Calculate Margin in Multi-Assets Mode": USDTUSD index 0.99, bid buffer
    # 0.01 (ratio 0.99), ask buffer 0.005; BUSDUSD 1 with no buffer; 200 USDT + 220 BUSD:
    # account equity = 200 x 0.99 x 0.99 + 220 x 1 = 196.02 + 220 = 416.02
    path = write(tmp_path, "faq.toml", '[[USDT]]\neffective = "2022-07-06"\nratio = 0.99\nask_buffer = 0.005\n'
                                       'source = "FAQ"\n[[BUSD]]\neffective = "2022-07-06"\nratio = 1.0\n'
                                       'source = "FAQ"\n')
    table = col.load_ratio_file(path, "faq")
    ratios = {a: rows[0] for a, rows in table.items()}
    assert ratios["USDT"].ask_buffer == 0.005
    value = col.wallet_value(Wallet({"USDT": 200.0, "BUSD": 220.0}), {"USDT": 0.99, "BUSD": 1.0}, ratios)
    assert round(value, 2) == 416.02
    # the ask rate of the same example: 0.99 x (1 + 0.005) = 0.99495; a debt of 100 USDT counts
    # -100 x 0.99495 = -99.495
    assert col.asset_value(-100.0, 0.99, 0.99, 0.005) == pytest.approx(-99.495, abs=1e-12)


def test_negative_balance_counts_at_the_ask_rate():
    # -2,000 USDT + 1 BTC at 60,000, ratios 0.9999 and 0.95:
    # -2,000 x 1 x (1 + 0.0001) + 1 x 60,000 x 0.95 = -2,000.2 + 57,000 = 54,999.8
    wallet = Wallet({"USDT": -2_000.0, "BTC": 1.0})
    ratios = {"USDT": ratio("USDT", 0.9999), "BTC": ratio("BTC", 0.95)}
    assert col.wallet_value(wallet, {"USDT": 1.0, "BTC": 60_000.0}, ratios) == pytest.approx(54_999.8, abs=1e-9)


def test_value_series_follows_each_stream_as_of():
    usdt = PriceStream.from_arrays("USDT", [0], [1.0])
    usde = PriceStream.from_arrays("USDE", [10, 20], [1.0, 0.65])
    ratios = {"USDT": ratio("USDT", 1.0), "USDE": ratio("USDE", 0.9)}
    got = col.wallet_value_series(Wallet({"USDT": 1_000.0, "USDE": 1_000.0}), {"USDT": usdt, "USDE": usde},
                                  ratios, [5, 10, 15, 20, 25])
    # t=5: USDe not started -> NaN; t=10,15: 1,000 + 1,000 x 0.9 = 1,900; t>=20: 1,000 + 585 = 1,585
    assert np.isnan(got[0])
    np.testing.assert_allclose(got[1:], [1_900.0, 1_900.0, 1_585.0, 1_585.0])


# ------------------------------------------------------------------------------ dated ratios
def test_ratio_chosen_by_date(tmp_path):
    path = write(tmp_path, "v.toml", '[[USDE]]\neffective = "2025-10-11"\nratio = 0.5\nsource = "later"\n'
                                     '[[USDE]]\neffective = "2025-01-01"\nratio = 0.9\nsource = "earlier"\n')
    history = col.load_ratio_file(path, "v")["USDE"]
    assert [r.effective.isoformat() for r in history] == ["2025-01-01", "2025-10-11"]  # sorted, oldest first
    assert col.select_ratio(history, dt.date(2025, 10, 10)) == (history[0], "")
    assert col.select_ratio(history, dt.date(2025, 10, 11)) == (history[1], "")
    row, caveat = col.select_ratio(history, dt.date(2024, 12, 31))
    assert row.ratio == 0.9 and caveat.startswith("out of date: no v USDE collateral ratio known on 2024-12-31")


def test_packaged_binance_ratios():
    row, caveat = col.collateral_ratio("binance-usdm", "BTC", "2025-10-10")
    assert (row.ratio, caveat) == (0.95, "")
    assert "29b45c485d664028b9ca1cdf90b24f6f" in row.source
    # the documented defaults: 5% ask buffer, half of it when auto-exchange sells BTC (97.5%)
    assert row.ask_buffer == pytest.approx(0.05) and row.auto_exchange_buffer == pytest.approx(0.025)
    assert col.collateral_ratio("binance-usdm", "USDT", "2025-10-10")[0].ratio == 0.9999
    _, caveat = col.collateral_ratio("binance-usdm", "ETH", "2020-01-01")
    assert caveat.startswith("out of date")


def test_unpublished_asset_needs_an_assumed_ratio():
    with pytest.raises(CollateralError, match=r"^binance-usdm: no collateral ratio for asset 'USDE'; known: ADA, "
                                              r"BNB, BTC.* \(or give an assumed ratio\)$"):
        col.collateral_ratio("binance-usdm", "USDE", "2025-10-10")
    row, caveat = col.collateral_ratio("binance-usdm", "USDE", "2025-10-10", assumed=0.9)
    assert row.ratio == 0.9 and caveat == "assumed: no binance-usdm collateral ratio for USDE, 0.9 used (assumed)"
    with pytest.raises(TableError, match=r"^binance-usdm: USDE.assumed: expected a number in \[0, 1\] \(got 1.1\)$"):
        col.collateral_ratio("binance-usdm", "USDE", "2025-10-10", assumed=1.1)


def test_hyperliquid_takes_usdc_only():
    row, caveat = col.collateral_ratio("hyperliquid", "USDC", "2025-10-10")
    assert (row.ratio, row.ask_buffer, caveat) == (1.0, 0.0, "")
    with pytest.raises(CollateralError, match=r"^hyperliquid: collateral asset 'USDE': the venue takes USDC only "
                                              r"\(Hyperliquid docs 'Contract specifications'"):
        col.collateral_ratio("hyperliquid", "USDE", "2025-10-10", assumed=0.9)
    assert col.ratio_assets("hyperliquid") == ["USDC"]


@pytest.mark.parametrize("value", ["1.2", "-0.1", "nan", "true", '"0.9"'])
def test_ratio_outside_zero_one_names_file_asset_row_field(tmp_path, value):
    path = write(tmp_path, "bad.toml", '[[USDT]]\neffective = "2025-01-01"\nratio = 1.0\nsource = "s"\n'
                                       f'[[USDE]]\neffective = "2025-01-01"\nratio = 0.9\nsource = "s"\n'
                                       f'[[USDE]]\neffective = "2025-06-01"\nratio = {value}\nsource = "s"\n')
    with pytest.raises(TableError) as info:
        col.load_ratio_file(path, "bad")
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"{path}: USDE[1].ratio: expected a number in [0, 1] (got ")


@pytest.mark.parametrize("body, expected", [
    ('[[USDE]]\nratio = 0.9\nsource = "s"\n', "USDE[0].effective: missing"),
    ('[[USDE]]\neffective = "2025-13-01"\nratio = 0.9\nsource = "s"\n', "USDE[0].effective: expected a date"),
    ('[[USDE]]\neffective = "2025-01-01"\nratio = 0.9\nsource = ""\n', "USDE[0].source: expected the ratio's source"),
    ('[[USDE]]\neffective = "2025-01-01"\nratoi = 0.9\nsource = "s"\n', "USDE[0].ratoi: unknown key (did you mean 'ratio'?)"),
    ('[[USDE]]\neffective = "2025-01-01"\nratio = 0.9\nsource = "s"\nask_buffer = -0.01\n',
     "USDE[0].ask_buffer: expected a number in [0, 1] (got -0.01)"),
    ('[[USDE]]\neffective = "2025-01-01"\nratio = 0.9\nsource = "s"\nauto_exchange_buffer = 1.0\n',
     "USDE[0].auto_exchange_buffer: expected a number in [0, 1) (got 1.0)"),
    ('[[USDE]]\neffective = "2025-01-01"\nratio = 0.9\nsource = "s"\n'
     '[[USDE]]\neffective = "2025-01-01"\nratio = 0.8\nsource = "s"\n', "USDE: two ratios effective 2025-01-01"),
    ("USDE = 3\n", "USDE: expected an array of tables"),
    ("[[USDE]\n", "not valid TOML"),
])
def test_bad_ratio_file_lines(tmp_path, body, expected):
    path = write(tmp_path, "bad.toml", body)
    with pytest.raises(TableError) as info:
        col.load_ratio_file(path, "bad")
    assert str(info.value).startswith(f"{path}: {expected}")
    assert "\n" not in str(info.value).split(": not valid TOML")[0]


def test_packaged_ratio_files_load():
    for asset in col.ratio_assets("binance-usdm"):
        row, _ = col.collateral_ratio("binance-usdm", asset)
        assert 0 <= row.ratio <= 1 and row.source


# ------------------------------------------------------------------------------ auto-exchange
def test_auto_exchange_binance_example():
    # Binance Multi-Assets Info: a -20,000 BUSD balance triggers it; "20,000 BUSD / 97.5% =
    # 20,513 BUSD of the BTC" is sold. BTC at 50,000 with ratio 0.95 -> auto-exchange buffer 0.025:
    # BTC sold = 20,000 / (50,000 x 0.975) = 0.41025641 BTC, worth 20,512.82 at the index
    ratios = {"BUSD": ratio("BUSD", 1.0), "BTC": ratio("BTC", 0.95)}
    after, done = col.auto_exchange(Wallet({"BUSD": -20_000.0, "BTC": 1.0}), {"BUSD": 1.0, "BTC": 50_000.0}, ratios)
    assert len(done) == 1 and done[0].asset == "BTC" and done[0].to == "BUSD"
    assert done[0].sold == pytest.approx(20_000 / (50_000 * 0.975), rel=1e-12)
    assert round(done[0].sold * 50_000) == 20_513
    assert after.amounts["BUSD"] == 0.0
    assert after.amounts["BTC"] == pytest.approx(1 - 0.41025641025641, abs=1e-12)
    assert done[0].reason == "below -10000 USD"


def test_auto_exchange_threshold_is_per_asset_and_strict():
    # Binance FAQ: -9,000 USDT and -9,000 BUSD do not trigger it (each is above -10,000)
    ratios = {"USDT": ratio("USDT", 0.9999), "BUSD": ratio("BUSD", 1.0), "BTC": ratio("BTC", 0.95)}
    wallet = Wallet({"USDT": -9_000.0, "BUSD": -9_000.0, "BTC": 1.0})
    after, done = col.auto_exchange(wallet, {"USDT": 1.0, "BUSD": 1.0, "BTC": 60_000.0}, ratios)
    assert done == [] and after.amounts == wallet.amounts
    # exactly -10,000 is not below the threshold
    _, done = col.auto_exchange(Wallet({"USDT": -10_000.0, "BTC": 1.0}), {"USDT": 1.0, "BTC": 60_000.0}, ratios)
    assert done == []


def test_auto_exchange_sells_in_proportion_and_at_liquidation():
    ratios = {"USDT": ratio("USDT", 0.9999), "BTC": ratio("BTC", 0.95), "BNB": ratio("BNB", 0.95)}
    prices = {"USDT": 1.0, "BTC": 60_000.0, "BNB": 600.0}
    # -15,000 USDT; 1 BTC (60,000) and 100 BNB (60,000) hold half each: each repays 7,500 at 97.5%:
    # BTC sold = 7,500 / (60,000 x 0.975) = 0.128205...; BNB sold = 7,500 / (600 x 0.975) = 12.8205...
    after, done = col.auto_exchange(Wallet({"USDT": -15_000.0, "BTC": 1.0, "BNB": 100.0}), prices, ratios)
    sold = {e.asset: e.sold for e in done}
    assert sold["BTC"] == pytest.approx(7_500 / (60_000 * 0.975), rel=1e-12)
    assert sold["BNB"] == pytest.approx(7_500 / (600 * 0.975), rel=1e-12)
    assert after.amounts["USDT"] == 0.0
    # a liquidation deficit of -500 USDT (above the threshold) is exchanged at once
    after, done = col.auto_exchange(Wallet({"USDT": -500.0, "BTC": 1.0}), prices, ratios, liquidation=True)
    assert [e.reason for e in done] == ["liquidation deficit"] and after.amounts["USDT"] == 0.0
    # not enough to cover: 0.1 BTC repays 0.1 x 60,000 x 0.975 = 5,850; -50,000 + 5,850 = -44,150 left
    after, done = col.auto_exchange(Wallet({"USDT": -50_000.0, "BTC": 0.1}), prices, ratios)
    assert after.amounts["BTC"] == 0.0 and after.amounts["USDT"] == pytest.approx(-44_150.0, abs=1e-6)


def test_ltv_trigger_is_named_not_modelled():
    assert col.LTV_TRIGGER.startswith("not modelled")
    assert col.AUTO_EXCHANGE_THRESHOLD_USD == 10_000.0


# ------------------------------------------------------------------------------ index constructions
def test_own_book_is_the_stream_as_is():
    book = PriceStream.from_arrays("USDE", [1, 2, 3], [1.0, 0.65, 0.99], "binance USDEUSDT")
    index = col.build_index("own-book", own=book)
    np.testing.assert_array_equal(index.price, book.price)
    np.testing.assert_array_equal(index.ts, book.ts)
    assert index.label == "own-book(binance USDEUSDT)"


def test_external_median_as_of():
    a = PriceStream.from_arrays("USDE", [0, 2], [1.00, 0.98], "a")
    b = PriceStream.from_arrays("USDE", [1], [1.02], "b")
    c = PriceStream.from_arrays("USDE", [0, 3], [0.99, 0.60], "c")
    index = col.external_median([a, b, c])
    np.testing.assert_array_equal(index.ts, [0, 1, 2, 3])
    # t0: median(1.00, 0.99) = 0.995 (b not started); t1: median(1.00, 1.02, 0.99) = 1.00;
    # t2: median(0.98, 1.02, 0.99) = 0.99; t3: median(0.98, 1.02, 0.60) = 0.98 (one venue's 0.60 ignored)
    np.testing.assert_allclose(index.price, [0.995, 1.00, 0.99, 0.98])
    strict = col.external_median([a, b, c], min_sources=3)
    np.testing.assert_array_equal(strict.ts, [1, 2, 3])


def test_redemption_floor():
    red = col.constant_stream("USDE", 1.0, 0)
    market = PriceStream.from_arrays("USDE", [5, 10], [0.65, 0.99], "own book")
    # weight 1: the redemption price alone (what Binance announced for BNSOL/WBETH)
    only = col.redemption_floor(red, floor=0.9)
    assert only.price.tolist() == [1.0]
    # weight 0.5: t0 before the market starts -> 1.0; t5: 0.5 x 1 + 0.5 x 0.65 = 0.825;
    # t10: 0.5 x 1 + 0.5 x 0.99 = 0.995
    mixed = col.redemption_floor(red, floor=0.8, market=market, weight=0.5)
    np.testing.assert_array_equal(mixed.ts, [0, 5, 10])
    np.testing.assert_allclose(mixed.price, [1.0, 0.825, 0.995])
    # a floor of 0.9 lifts 0.825 to 0.9
    floored = col.build_index("redemption-floor", redemption=red, floor=0.9, market=market, weight=0.5)
    np.testing.assert_allclose(floored.price, [1.0, 0.9, 0.995])
    assert floored.metadata["floor"] == 0.9


@pytest.mark.parametrize("kwargs, expected", [
    ({"choice": "own-bok"}, "index: unknown choice 'own-bok' (did you mean 'own-book'?)"),
    ({"choice": "own-book"}, "own-book: expected the venue's own book price stream"),
    ({"choice": "external-median"}, "external-median: expected at least one price stream (got none)"),
    ({"choice": "redemption-floor"}, "redemption-floor: expected a redemption stream and a floor"),
])
def test_build_index_errors(kwargs, expected):
    with pytest.raises(CollateralError, match="^" + re.escape(expected)):
        col.build_index(**kwargs)


def test_index_input_errors():
    red = col.constant_stream("USDE", 1.0, 0)
    btc = PriceStream.from_arrays("BTC", [0], [60_000.0])
    with pytest.raises(CollateralError, match=r"^redemption-floor: floor: expected a finite price >= 0 \(got nan\)$"):
        col.redemption_floor(red, float("nan"))
    with pytest.raises(CollateralError, match=r"^redemption-floor: weight: expected a number in \[0, 1\] \(got 1.5\)$"):
        col.redemption_floor(red, 0.9, market=red, weight=1.5)
    with pytest.raises(CollateralError, match=r"^redemption-floor: weight 0.5 < 1 needs a market stream$"):
        col.redemption_floor(red, 0.9, weight=0.5)
    with pytest.raises(CollateralError, match=r"^external-median: expected streams of one asset \(got BTC, USDE\)$"):
        col.external_median([red, btc])


# ------------------------------------------------------------------------------ constructed path
def test_constructed_usde_path():
    path = col.DepegPath()
    stream = path.generate(seed=7)
    assert stream.constructed and stream.metadata["constructed"] is True and stream.metadata["seed"] == 7
    assert stream.label.startswith("constructed: USDE depeg to 0.65 at 21:43, back to 1 by 22:16 UTC")
    assert stream.metadata["trough"] == 0.65 and stream.metadata["depeg_start"] == "2025-10-10T21:36:00+00:00"
    # 21:00 .. 23:00 every second: 7,201 prices, sorted
    assert len(stream) == 7_201 and np.all(np.diff(stream.ts) == NS)

    def at(h, m):
        return int(dt.datetime(2025, 10, 10, h, m, tzinfo=UTC).timestamp()) * NS

    # the noiseless shape: 1 at 21:36, 0.65 from 21:43 to 21:50, halfway back at 22:03
    # (13 of the 26 recovery minutes: 0.65 + 0.35 / 2 = 0.825), 1 from 22:16
    shape = path.shape(np.array([at(21, 0), at(21, 36), at(21, 43), at(21, 46), at(22, 3), at(22, 16), at(22, 59)]))
    np.testing.assert_allclose(shape, [1.0, 1.0, 0.65, 0.65, 0.825, 1.0, 1.0])
    # the noisy path: calm (2 bp noise) outside the window, near 0.65 at the trough
    calm = (stream.ts < at(21, 36)) | (stream.ts > at(22, 16))
    assert np.max(np.abs(stream.price[calm] - 1.0)) < 0.002  # 10 standard deviations
    trough = (stream.ts >= at(21, 43)) & (stream.ts < at(21, 50))
    assert abs(np.median(stream.price[trough]) - 0.65) < 0.005
    assert stream.price.min() < 0.66
    # the same seed gives the same path, another seed another one
    np.testing.assert_array_equal(path.generate(seed=7).price, stream.price)
    assert not np.array_equal(path.generate(seed=8).price, stream.price)


def test_constructed_path_bad_parameters():
    late = dt.datetime(2025, 10, 10, 21, 40, tzinfo=UTC)
    with pytest.raises(CollateralError, match=r"^depeg path: recovered_at \(2025-10-10T21:40:00\+00:00\) is before "
                                              r"recovery_start"):
        col.DepegPath(recovered_at=late).generate(1)
    with pytest.raises(CollateralError, match=r"^depeg path: trough: expected a finite number > 0 \(got -0.1\)$"):
        col.DepegPath(trough=-0.1).generate(1)
    with pytest.raises(CollateralError, match=r"^depeg path: seed: expected an integer >= 0 \(got -1\)$"):
        col.DepegPath().generate(-1)


def test_depeg_liquidates_under_own_book_not_under_redemption_floor():
    # an account with no losing position: 10,000 USDT + 5,000 USDe and a position whose
    # maintenance margin is 12,950 (constant here: its mark does not move). Own book: at the
    # trough (0.65) the wallet is worth 9,999 + 5,000 x 0.65 x 0.9 = 12,924 < 12,950 -> liquidated.
    # Redemption price ($1) with a 0.97 floor: 9,999 + 4,500 = 14,499 >= 12,950 all along.
    usde = col.DepegPath(noise=0.0, calm_noise=0.0).generate(seed=1)
    usdt = col.constant_stream("USDT", 1.0, int(usde.ts[0]))
    ratios = {"USDT": ratio("USDT", 0.9999), "USDE": ratio("USDE", 0.9)}
    wallet = Wallet({"USDT": 10_000.0, "USDE": 5_000.0})
    own = col.build_index("own-book", own=usde)
    floor = col.build_index("redemption-floor", redemption=col.constant_stream("USDE", 1.0, int(usde.ts[0])),
                            floor=0.97)
    v_own = col.wallet_value_series(wallet, {"USDT": usdt, "USDE": own}, ratios, usde.ts)
    v_floor = col.wallet_value_series(wallet, {"USDT": usdt, "USDE": floor}, ratios, usde.ts)
    assert v_own.min() == pytest.approx(12_924.0, abs=1e-6) and (v_own < 12_950).any()
    assert np.all(v_floor == pytest.approx(14_499.0, abs=1e-9))


# ------------------------------------------------------------------------------ bad input
def test_asset_without_price_stream():
    ratios = {"USDT": ratio("USDT", 1.0), "USDE": ratio("USDE", 0.9)}
    with pytest.raises(CollateralError, match=r"^collateral: asset 'USDE' has no price stream \(streams for: USDT\)$"):
        col.wallet_value(Wallet({"USDT": 1.0, "USDE": 1.0}), {"USDT": 1.0}, ratios)
    with pytest.raises(CollateralError, match=r"^collateral: asset 'USDE' has no price stream \(did you mean 'USDe'\?\)"):
        col.wallet_value_series(Wallet({"USDE": 1.0}), {"USDe": col.constant_stream("USDe", 1.0, 0)}, ratios, [0])
    with pytest.raises(CollateralError, match=r"^collateral: asset 'BTC' has no collateral ratio"):
        col.wallet_value(Wallet({"BTC": 1.0}), {"BTC": 1.0}, ratios)


@pytest.mark.parametrize("price, expected", [
    ([1.0, -0.5, 1.0], r"^USDE stream: price\[1\] = -0.5: expected a finite price > 0$"),
    ([1.0, 1.0, float("nan")], r"^USDE stream: price\[2\] = nan: expected a finite price > 0$"),
    ([1.0, float("inf"), 1.0], r"^USDE stream: price\[1\] = inf: expected a finite price > 0$"),
    ([0.0, 1.0, 1.0], r"^USDE stream: price\[0\] = 0.0: expected a finite price > 0$"),
])
def test_bad_price_names_the_row(price, expected):
    with pytest.raises(ValueError, match=expected):
        PriceStream.from_arrays("USDE", [0, 1, 2], price)


def test_unsorted_times_and_other_stream_errors():
    with pytest.raises(CollateralError, match=r"^usde.csv: ts\[2\] = 1 is earlier than ts\[1\] = 5: expected "
                                              r"non-decreasing times \(sort the stream first\)$"):
        PriceStream.from_arrays("USDE", [0, 5, 1], [1.0, 1.0, 1.0], "usde.csv")
    with pytest.raises(CollateralError, match=r"^USDE stream: expected at least one price \(got an empty stream\)$"):
        PriceStream.from_arrays("USDE", [], [])
    with pytest.raises(ValueError, match=r"^USDE stream: price: length 1 does not match ts \(length 2\)$"):
        PriceStream.from_arrays("USDE", [0, 1], [1.0])
    with pytest.raises(CollateralError, match=r"^collateral: price of USDE: expected a finite price > 0 \(got -1.0\)$"):
        col.wallet_value(Wallet({"USDE": 1.0}), {"USDE": -1.0}, {"USDE": ratio("USDE", 0.9)})
    with pytest.raises(CollateralError, match=r"^wallet.USDE: expected a finite amount \(got nan\)$"):
        Wallet({"USDE": float("nan")})


# ------------------------------------------------------------------------------ files
KLINE_HEADER = ("open_time,open,high,low,close,volume,close_time,quote_volume,count,taker_buy_volume,"
                "taker_buy_quote_volume,ignore\n")


def kline_file(tmp_path, closes, name="USDEUSDT-1m-2025-10-10.csv", start=T0 + 36 * 60 * NS):
    """A Binance Vision 1m kline CSV (ms times), one bar per close."""
    rows = []
    for k, close in enumerate(closes):
        open_ms = (start // 10**6) + k * 60_000
        rows.append(f"{open_ms},{close},{close},{close},{close},1000,{open_ms + 59_999},{close * 1000},10,500,"
                    f"{close * 500},0\n")
    return write(tmp_path, name, KLINE_HEADER + "".join(rows))


def test_stream_from_binance_vision_csv_and_catalog(tmp_path):
    path = kline_file(tmp_path, [0.999, 0.80, 0.65, 0.90, 0.998])
    stream = col.read_stream_file(path, "USDE", "binance-vision", kind="klines")
    assert not stream.constructed and stream.label == str(path)
    # each close holds from its bar's end: close_time + 1 ms = open + 60 s
    first_end = T0 + 37 * 60 * NS
    np.testing.assert_array_equal(stream.ts, first_end + np.arange(5) * 60 * NS)
    np.testing.assert_allclose(stream.price, [0.999, 0.80, 0.65, 0.90, 0.998])
    # the same file imported into a Parquet catalog reads back the same stream
    catalog = Catalog(tmp_path / "catalog")
    catalog.import_file(path, source="binance-vision", kind="klines")
    again = col.read_stream_catalog(tmp_path / "catalog", "USDE", "binance", "USDEUSDT", kind="klines")
    np.testing.assert_array_equal(again.ts, stream.ts)
    np.testing.assert_array_equal(again.price, stream.price)
    # own book vs a redemption floor on the file's stream: the 0.65 bar counts 0.65 or the floor
    own = col.build_index("own-book", own=stream)
    red = col.build_index("redemption-floor", redemption=col.constant_stream("USDE", 1.0, int(stream.ts[0])),
                          floor=0.97, market=stream, weight=0.0)
    # weight 0: the market price, floored at 0.97: [0.999, 0.97, 0.97, 0.97, 0.998]
    np.testing.assert_allclose(own.price, [0.999, 0.80, 0.65, 0.90, 0.998])
    np.testing.assert_allclose(red.price, [0.999, 0.97, 0.97, 0.97, 0.998])


def test_bad_stream_file_is_one_line(tmp_path):
    path = kline_file(tmp_path, [0.999, -0.65, 0.9])
    with pytest.raises(ValueError) as info:
        col.read_stream_file(path, "USDE", "binance-vision", kind="klines")
    assert "\n" not in str(info.value) and str(path) in str(info.value) and "row 3" in str(info.value)
    with pytest.raises(ValueError, match=r"no such file"):
        col.read_stream_file(tmp_path / "missing.csv", "USDE", "binance-vision", kind="klines")
    with pytest.raises(CollateralError, match=r"^USDE stream: no catalog folder "):
        col.read_stream_catalog(tmp_path / "nothing", "USDE", "binance", "USDEUSDT")


# ------------------------------------------------------------------------------ helpers for the engines
def test_ratios_for_a_wallet_with_caveats():
    ratios, caveats = col.ratios_for("binance-usdm", ["USDT", "USDE", "BNB"], "2025-10-10", assumed={"USDE": 0.9})
    assert {a: r.ratio for a, r in ratios.items()} == {"USDT": 0.9999, "USDE": 0.9, "BNB": 0.95}
    assert caveats == ["USDE: assumed: no binance-usdm collateral ratio for USDE, 0.9 used (assumed)"]
    # ADA stopped counting on 2023-07-27 (ratio 0 from then)
    ratios, _ = col.ratios_for("binance-usdm", ["ADA"], "2023-07-26")
    assert ratios["ADA"].ratio == 0.9
    ratios, _ = col.ratios_for("binance-usdm", ["ADA"], "2023-07-27")
    assert ratios["ADA"].ratio == 0.0


def test_collateral_trigger_is_exact():
    usde = ratio("USDE", 0.9)
    # 5,000 USDe at 1.00 with 900 of slack: 1 - 900 / (5,000 x 0.9) = 1 - 0.2 = 0.8, passed at or below
    price, side = col.collateral_trigger(5_000.0, 1.0, usde, 900.0)
    assert side == -1 and price == pytest.approx(0.8, abs=1e-15)
    # at that price the holding is worth exactly 900 less: 5,000 x 1 x 0.9 - 5,000 x 0.8 x 0.9 = 4,500 - 3,600
    assert col.asset_value(5_000.0, 1.0, 0.9, 0.1) - col.asset_value(5_000.0, price, 0.9, 0.1) == pytest.approx(900.0)
    # a debt of 2,000 USDT (ask buffer 0.0001) with 100 of slack: 1 + 100 / (2,000 x 1.0001) = 1.049995...
    price, side = col.collateral_trigger(-2_000.0, 1.0, ratio("USDT", 0.9999), 100.0)
    assert side == 1 and price == pytest.approx(1 + 100 / 2_000.2, abs=1e-15)
    # slack larger than the holding's whole value: no positive price passes it
    assert col.collateral_trigger(5_000.0, 1.0, usde, 5_000.0) == (0.0, 0)
    assert col.collateral_trigger(0.0, 1.0, usde, 1.0) == (0.0, 0)
    with pytest.raises(CollateralError, match=r"^collateral trigger: slack: expected a finite amount >= 0 \(got -1.0\)$"):
        col.collateral_trigger(1.0, 1.0, usde, -1.0)


# ------------------------------------------------------------------------------ real files in ../shared/data
GEMINI_BTC = "2025-10-10/spot-trades/gemini_trades_2025-10-10_BTCUSD.csv.gz"
BINANCE_BTC_5M = "2025-10-10/binance-price-klines/BTCUSDT-5m-2025-10-10.zip"


def test_external_median_on_real_btc_streams(shared_data):
    import pandas as pd

    gemini = col.read_stream_file(shared_data / GEMINI_BTC, "BTC", "tardis")
    binance = col.read_stream_file(shared_data / BINANCE_BTC_5M, "BTC", "binance-vision")
    assert len(gemini) > 1_000 and len(binance) == 288  # a 5-minute bar a day
    index = col.external_median([gemini, binance])
    # an independent as-of join: each source's last price at or before every time either prints
    times = pd.DataFrame({"ts": np.union1d(gemini.ts, binance.ts)})
    for name, s in (("g", gemini), ("b", binance)):
        frame = pd.DataFrame({"ts": s.ts, name: s.price}).groupby("ts", as_index=False).last()
        times = pd.merge_asof(times, frame, on="ts", direction="backward")
    expected = times[["g", "b"]].mean(axis=1, skipna=True)  # the median of two is their mean
    np.testing.assert_array_equal(index.ts, times["ts"].to_numpy())
    np.testing.assert_allclose(index.price, expected.to_numpy(), rtol=1e-15)
    # 1 BTC of collateral at 95% is worth 0.95 x the index at every time
    value = col.wallet_value_series(Wallet({"BTC": 1.0}), {"BTC": index}, {"BTC": ratio("BTC", 0.95)}, index.ts)
    np.testing.assert_allclose(value, 0.95 * index.price, rtol=1e-15)


def test_depeg_liquidates_an_account_with_no_losing_position():
    # Long 1 BTCUSDT at 100,000, mark 100,000 (unrealized PnL 0), maintenance 0.5% = 500 USDT;
    # wallet 200 USDT + 500 USDe (USDe ratio 0.9, assumed)
    ratios, _ = col.ratios_for("binance-usdm", ["USDT", "USDE"], "2025-10-10", assumed={"USDE": 0.9})
    wallet = Wallet({"USDT": 200.0, "USDE": 500.0})
    # at the peg: 200 x 0.9999 + 500 x 1 x 0.9 = 199.98 + 450 = 649.98; ratio 500 / 649.98 = 0.769 < 1
    peg = col.account_equity(wallet, {"USDT": 1.0, "USDE": 1.0}, ratios, {"USDT": 0.0})
    assert peg == pytest.approx(649.98, abs=1e-9) and col.margin_ratio(500.0, peg) < 1
    # own book at 0.65: 199.98 + 500 x 0.65 x 0.9 = 199.98 + 292.5 = 492.48; 500 / 492.48 = 1.0153 >= 1: liquidated
    own = col.account_equity(wallet, {"USDT": 1.0, "USDE": 0.65}, ratios)
    assert own == pytest.approx(492.48, abs=1e-9) and col.margin_ratio(500.0, own) == pytest.approx(500 / 492.48)
    assert col.margin_ratio(500.0, own) >= 1
    # redemption price with a 0.97 floor: 199.98 + 500 x 0.97 x 0.9 = 199.98 + 436.5 = 636.48: survives
    floored = col.account_equity(wallet, {"USDT": 1.0, "USDE": 0.97}, ratios)
    assert floored == pytest.approx(636.48, abs=1e-9) and col.margin_ratio(500.0, floored) < 1
    # a loss of 700 USDT of unrealized PnL makes USDT equity -500: -500 x 1 x 1.0001 + 450 = -50.05
    lost = col.account_equity(wallet, {"USDT": 1.0, "USDE": 1.0}, ratios, {"USDT": -700.0})
    assert lost == pytest.approx(-50.05, abs=1e-9) and col.margin_ratio(500.0, lost) == float("inf")


from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

_amount = st.floats(0.0, 1e6, allow_nan=False)


@settings(max_examples=200, deadline=None)
@given(debt=st.floats(0.0, 1e6, allow_nan=False), btc=_amount, bnb=_amount,
       p_btc=st.floats(1.0, 1e5), p_bnb=st.floats(1.0, 1e4), liquidation=st.booleans())
def test_auto_exchange_moves_value_less_the_haircut(debt, btc, bnb, p_btc, p_bnb, liquidation):
    # BTC sold at 97.5% (ratio 0.95), BNB at 95% (ratio 0.9): different haircuts
    ratios = {"USDT": ratio("USDT", 0.9999), "BTC": ratio("BTC", 0.95), "BNB": ratio("BNB", 0.9)}
    prices = {"USDT": 1.0, "BTC": p_btc, "BNB": p_bnb}
    before = Wallet({"USDT": -debt, "BTC": btc, "BNB": bnb})
    after, done = col.auto_exchange(before, prices, ratios, liquidation=liquidation)

    def at_index(w):
        return sum(a * prices[k] for k, a in w.amounts.items())

    triggered = debt > 10_000 or (liquidation and debt > 0)
    assert bool(done) == (triggered and (btc > 0 or bnb > 0))
    # what auto-exchange sells is worth its index value less its auto-exchange haircut:
    # the wallet's index value falls by exactly sum(sold x index x haircut), 2.5% BTC, 5% BNB
    haircut = sum(e.sold * prices[e.asset] * {"BTC": 0.025, "BNB": 0.05}[e.asset] for e in done)
    assert at_index(after) == pytest.approx(at_index(before) - haircut, rel=1e-9, abs=1e-6)
    # nothing is sold below zero, and a debt is never overpaid
    assert all(a >= 0 for k, a in after.amounts.items() if k != "USDT")
    assert -debt - 1e-6 <= after.amounts["USDT"] <= 1e-6
    if done and after.amounts["USDT"] < -1e-6:  # not covered: every holding was sold
        assert after.amounts["BTC"] == 0.0 and after.amounts["BNB"] == 0.0


def test_auto_exchange_sells_out_a_small_holding_and_the_others_cover_its_share():
    # -20,000 USDT; 1 BTC at 19,000 (sold at 97.5%) and 1,000 BNB at 1 (sold at 95%): shares by
    # index value 19,000 / 20,000 and 1,000 / 20,000. Pass 1: BTC covers 19,000 (sells 19,000 /
    # 18,525 = 1.025641 BTC > 1 held: sold out, repays 18,525); BNB covers 1,000 (sells 1,000 /
    # 0.95 = 1,052.6 > 1,000 held: sold out, repays 950). Both sold out: 20,000 - 18,525 - 950 = 525 left.
    ratios = {"USDT": ratio("USDT", 0.9999), "BTC": ratio("BTC", 0.95), "BNB": ratio("BNB", 0.9)}
    after, done = col.auto_exchange(Wallet({"USDT": -20_000.0, "BTC": 1.0, "BNB": 1_000.0}),
                                    {"USDT": 1.0, "BTC": 19_000.0, "BNB": 1.0}, ratios)
    assert after.amounts["BTC"] == 0.0 and after.amounts["BNB"] == 0.0
    assert after.amounts["USDT"] == pytest.approx(-525.0, abs=1e-9)
    # BTC at 19,800 instead (total 20,800): pass 1 BTC covers 20,000 x 19,800 / 20,800 = 19,038.46
    # (0.986 BTC at 19,800 x 0.975 = 19,305 each), BNB's share 961.54 is more than its 1,000 x 0.95
    # = 950: sold out. Pass 2: BTC covers the 11.54 left. BTC repays 20,000 - 950 = 19,050 in all:
    # 19,050 / 19,305 BTC sold
    after, done = col.auto_exchange(Wallet({"USDT": -20_000.0, "BTC": 1.0, "BNB": 1_000.0}),
                                    {"USDT": 1.0, "BTC": 19_800.0, "BNB": 1.0}, ratios)
    assert after.amounts["USDT"] == 0.0 and after.amounts["BNB"] == 0.0
    assert after.amounts["BTC"] == pytest.approx(1 - 19_050 / 19_305, rel=1e-9)
    assert [e.asset for e in done] == ["BTC", "BNB", "BTC"]


def test_venue_without_a_ratio_file():
    with pytest.raises(CollateralError, match=r"^bybit: no collateral-ratio file \(riskengine/venues/collateral/bybit.toml\)$"):
        col.collateral_ratio("bybit", "USDT", "2025-10-10")
