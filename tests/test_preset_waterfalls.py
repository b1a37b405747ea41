"""One hand-worked loss waterfall per venue preset, run through both engines.

Each test builds a preset with ``with_overrides`` (a small fund or vault, a simple margin
table where the venue's real one would make the arithmetic long), a tape of a few ticks (times in seconds)
and 3-6 accounts, and asserts the complete event log and the end state. Every expected number
comes from the arithmetic in the comments, which follows the semantics in the docstring of
``riskengine/reference/__init__.py`` (tick loop, cascade rounds, the loss waterfall, limited IOC orders
with fund takeover, ADL prices and queues, fees, socialization). None of them was copied from
an engine run.

Conventions used in the comments: ``E = c + q (M - e)`` is equity at mark, ``MM`` the
maintenance margin, ``bk = e - c / q`` the bankruptcy price. A book fill on a
``ConstantDepth(depth_per_pct=D)`` book that does not reach the wall fills at
``S (1 -/+ 0.01 X / D / 2)`` for an order of notional ``X`` started at ``S`` and can fill
``D (dist / 1%) / S`` base units before it passes a limit ``dist`` away from ``S``. Every finite
book here has ``feedback = 0``, so fills slip but the simulated price stays the tape price.
"""

from __future__ import annotations

import math

import pytest

from riskengine.codes import BOOK_ID, FUND_ID, MARKET_ID, VAULT_ID, EventKind, Status
from riskengine.invariants import violations
from riskengine.liquidity import ConstantDepth
from riskengine.venue import Margin
from riskengine.venues import preset

from _scenarios import S, events, run_both, scenario

INFINITE = ConstantDepth()

LIQ = EventKind.LIQUIDATION
PARTIAL = EventKind.PARTIAL_LIQUIDATION
BACKSTOP = EventKind.BACKSTOP
PAYMENT = EventKind.FUND_PAYMENT
ADL_FILL = EventKind.ADL_FILL
ADL_LIQ = EventKind.ADL_LIQUIDATION
VAULT_UNWIND = EventKind.VAULT_UNWIND
BAD_DEBT = EventKind.BAD_DEBT
TAKEOVER = EventKind.FUND_TAKEOVER
FUND_UNWIND = EventKind.FUND_UNWIND
SOCIALIZED = EventKind.SOCIALIZED_LOSS


def approx(x):
    return pytest.approx(x, rel=1e-9, abs=1e-9)


def ev(tick, kind, account, counterparty, size=0.0, price=0.0, fee=0.0, amount=0.0,
       equity=0.0, fund=0.0):
    """One expected event row (``equity`` = equity_after, ``fund`` = fund_after)."""
    return dict(tick=tick, kind=int(kind), account=account, counterparty=counterparty, size=size,
                price=price, fee=fee, amount=amount, equity_after=equity, fund_after=fund)


def assert_log(raw, expected, skip=()):
    """The whole event log, in order; ``skip`` lists (row, column) pairs not compared here."""
    got = events(raw)
    names = [EventKind(e["kind"]).name for e in got]
    assert names == [EventKind(e["kind"]).name for e in expected], names
    for j, (g, x) in enumerate(zip(got, expected)):
        for key in ("tick", "kind", "account", "counterparty"):
            assert g[key] == x[key], (j, key, g[key], x[key])
        for key in ("size", "price", "fee", "amount", "equity_after", "fund_after"):
            if (j, key) in skip:
                continue
            assert g[key] == approx(x[key]), (j, key, g[key], x[key])
        assert g["notional"] == approx(abs(x["size"]) * x["price"]), (j, "notional")


def check_invariants(raw, sc, params):
    assert violations(raw, sc.population, params) == []


def ema_path(samples, times_s, tau_s):
    """The documented time-weighted EMA (``_mark.pyx``): the first sample seeds it with its own
    interval (1 ns at the first tick), then ``num <- num e^(-dt/tau) + x dt`` and
    ``den <- den e^(-dt/tau) + dt`` with ``dt`` in ns."""
    out, num, den, last = [], 0.0, 0.0, times_s[0]
    for x, t in zip(samples, times_s):
        w = (t - last) * 1e9
        last = t
        if den == 0.0:
            w = w if w > 0 else 1.0
            num, den = x * w, w
        else:
            d = math.exp(-w / (tau_s * 1e9))
            num, den = num * d + x * w, den * d + w
        out.append(num / den)
    return out


def median3(a, b, c):
    return sorted((a, b, c))[1]


# ---------------------------------------------------------------------------- binance-usdm
def test_binance_usdm_ioc_at_bankruptcy_takeover_and_leverage_pnl_adl():
    """Binance: IOC at the bankruptcy price (band 5% slack), fee 1.25% capped at what is left,
    the unfilled rest taken over by the fund (capacity 1x), ADL ranked by LeveragePnl at the
    bankruptcy price once the fund cannot carry more, then the fund offloads 10% after 60 s."""
    design = preset("binance-usdm", date="2025-08-19").with_overrides({"fund": {"initial": 1000.0}})
    assert design.margin.floors[:2] == (0.0, 300_000.0) and design.margin.rates[0] == 0.004
    assert design.liquidation.fee == 0.0125 and design.liquidation.price_band == 0.05
    assert design.mark.method == "binance-median" and design.fund.capacity == 1.0
    book = ConstantDepth(depth_per_pct=1000.0, feedback=0.0)
    params = design.engine_params(book, 1.0)
    # Every notional is far below 300k: MM = 0.4% of notional. The index stream equals the
    # tape, so the EMA basis is EMA(S - index) = 0 and the mark median(index, index + 0, S) is
    # the tape price at every tick.
    prices = [120.0, 110.0, 100.0, 90.0, 90.0]
    sc = scenario(prices, [
        (10.4, 1.0, 120.0),    # 0: book liquidation at t=1
        (201.0, 10.0, 120.0),  # 1: IOC fills 1 of 10 at t=2, the fund takes 9
        (50.0, 2.0, 120.0),    # 2: bankrupt at t=3, the fund is full: ADL
        (100.0, -5.0, 120.0),  # 3: short, LeveragePnl 0.0108 at t=3
        (10.0, -1.0, 120.0),   # 4: short, LeveragePnl 0.027 at t=3: deleveraged first
    ], times_s=[0, 1, 2, 3, 62], stream=prices)
    raw = run_both(sc, params)

    fund = 1000.0
    # t=1, M=110. Account 0: E = 10.4 - 10 = 0.4 < MM = 0.004 x 110 = 0.44. bk = 120 - 10.4 =
    # 109.6; band 110 x 0.95 = 104.5 is below it, so the sell is limited at 109.6: the book holds
    # 1000 x (0.4/110 / 1%) / 110 = 3.31 >= 1 before it, the whole order fills. Fill:
    # 110 x (1 - 0.01 x 110 / 1000 / 2) = 110 x 0.99945 = 109.9395; realized -10.0605 leaves
    # 0.3395 < the 1.25% fee 1.374, so the fee is the 0.3395 left.
    fill0 = 110.0 * (1 - 0.01 * 110.0 / 1000.0 / 2)
    fee0 = 10.4 + (fill0 - 120.0)
    assert fill0 == approx(109.9395) and fee0 == approx(0.3395)
    fund += fee0
    # t=2, M=100. Account 1: E = 201 - 200 = 1 < MM = 0.004 x 1000 = 4. bk = 120 - 20.1 = 99.9
    # (band 95 below it). The book holds 1000 x (0.1/100 / 1%) / 100 = 1 unit down to 99.9: the
    # IOC fills 1 at 100 x (1 - 0.01 x 100 / 1000 / 2) = 99.95 (realized 1 x (99.95 - 120) =
    # -20.05, fee deferred to the takeover). The fund can carry the rest: 9 x 100 = 900 <= its
    # value 1000.3395 + 9 x (100 - 99.9) = 1001.2395. It takes 9 at 99.9 (realized
    # 9 x (99.9 - 120) = -180.9), leaving 201 - 20.05 - 180.9 = 0.05; the fee on the whole
    # notional, 1.25% x (99.95 + 9 x 99.9) = 12.49, is capped at that 0.05.
    fill1 = 100.0 * (1 - 0.01 * 100.0 / 1000.0 / 2)
    assert fill1 == approx(99.95)
    fee1 = 201.0 + (fill1 - 120.0) + 9 * (99.9 - 120.0)
    assert fee1 == approx(0.05)
    fund_after_t2 = fund + fee1
    # t=3, M=90. Account 2: E = 50 - 60 = -10: bk = 120 - 50/2 = 95 is above the tape, the IOC
    # fills nothing. Fund with 2 more: value 1000.3895 + 9 x (90 - 99.9) + 2 x (90 - 95) =
    # 901.2895 < 11 x 90 = 990 (capacity 1x) -> ADL at bk 95. LeveragePnl
    # = max(0,U)/max(1,WB) x MM/(WB+U): account 3: 150/100 x 1.8/250 = 0.0108; account 4:
    # 30/10 x 0.36/40 = 0.027 -> 4 first (its whole 1), then 1 from account 3. Each pays
    # 95 - 90 = 5 per unit above the mark. Account 2's shortfall at mark: -(50 + 2 x (90 - 120))
    # = 10 = 5 + 5.
    # t=62: the fund's first offload is due 60 s after it took inventory at t=2. It sells
    # 10% of 9 = 0.9 at 90 x (1 - 0.01 x 81 / 1000 / 2) = 89.96355, realizing
    # 0.9 x (89.96355 - 99.9) = -8.942805.
    fill_u = 90.0 * (1 - 0.01 * 81.0 / 1000.0 / 2)
    assert fill_u == approx(89.96355)
    loss_u = 0.9 * (fill_u - 99.9)
    assert loss_u == approx(-8.942805)
    fund_end = fund_after_t2 + loss_u
    assert_log(raw, [
        ev(1, LIQ, 0, BOOK_ID, 1.0, fill0, fee0, fill0 - 120.0, 0.0, fund),
        ev(2, LIQ, 1, BOOK_ID, 1.0, 99.95, 0.0, -20.05, 180.95 - 180.0, fund),
        ev(2, TAKEOVER, 1, FUND_ID, 9.0, 99.9, 0.05, -180.9, 0.0, fund_after_t2),
        ev(3, ADL_FILL, 4, 2, -1.0, 95.0, 0.0, 5.0, 10.0 + 25.0, fund_after_t2),
        ev(3, ADL_FILL, 3, 2, -1.0, 95.0, 0.0, 5.0, 125.0 + 4 * 30.0, fund_after_t2),
        ev(3, ADL_LIQ, 2, BOOK_ID, 2.0, 95.0, 0.0, 10.0, 0.0, fund_after_t2),
        ev(4, FUND_UNWIND, FUND_ID, BOOK_ID, 0.9, fill_u, 0.0, loss_u,
           fund_end + 8.1 * (90.0 - 99.9), fund_end),
    ])
    assert [e["ts"] // S for e in events(raw)] == [1, 2, 2, 3, 3, 3, 62]
    s = raw.scalars
    assert fund_end == approx(1000.0 + 0.3395 + 0.05 - 8.942805)
    # the fund's low is after the offload: 1000 + 0.3395 + 0.05 - 8.942805
    assert s["fund_final"] == approx(fund_end) and s["fund_min"] == approx(fund_end)
    assert s["fund_pos"] == approx(8.1) and s["fund_entry"] == approx(99.9)
    assert s["bad_debt"] == 0.0 and s["vault_pos"] == 0.0
    assert raw.collateral.tolist() == approx([0.0, 0.0, 0.0, 125.0, 35.0])
    assert raw.size.tolist() == approx([0.0, 0.0, 0.0, -4.0, 0.0])
    assert raw.status.tolist() == [Status.CLOSED] * 3 + [Status.ACTIVE, Status.CLOSED]
    assert raw.series["mark"].tolist() == approx(prices)
    check_invariants(raw, sc, params)


def test_binance_usdm_price_band_binds_in_a_high_bracket():
    """The 5% band only binds when the effective maintenance rate passes 5% (a crossing
    account's bankruptcy price is within that rate of the mark): with the 2021-03-18 BTCUSDT
    brackets a 40M position is in the 10% bracket. The IOC then stops at the band, above
    bankruptcy, and the fund takes the rest at the bankruptcy price."""
    design = preset("binance-usdm", date="2021-03-18").with_overrides({"fund": {"initial": 30e6}})
    assert design.margin.floors[5] == 20e6 and design.margin.rates[4:6] == (0.05, 0.10)
    book = ConstantDepth(depth_per_pct=1.98e6, feedback=0.0)
    params = design.engine_params(book, 1.0)
    prices = [100.0, 99.0]
    sc = scenario(prices, [(3e6, 400_000.0, 100.0), (1e6, -10_000.0, 100.0)], stream=prices)
    raw = run_both(sc, params)
    # Deductions: 50, 1300, 16300, 266300, then 266300 + 20M x (10% - 5%) = 1266300 for the
    # 20M-50M bracket. t=0: N = 40M, MM = 4M - 1266300 = 2733700 <= E = 3M. t=1, M = 99:
    # N = 39.6M, MM = 3.96M - 1266300 = 2693700 > E = 3M - 400000 = 2.6M. bk = 100 - 7.5 =
    # 92.5 < band 0.95 x 99 = 94.05: the sell is limited at the band. The book holds
    # 1.98M x (5% / 1%) / 99 = 100000 units above it: fills 100000 at
    # 99 x (1 - 0.01 x 9.9M / 1.98M / 2) = 96.525, realized 100000 x (-3.475) = -347500
    # (equity after 2652500 - 300000 = 2352500). The fund can carry the rest: 300000 x 99 =
    # 29.7M <= 30M + 300000 x (99 - 92.5) = 31.95M; it takes 300000 at 92.5 (realized
    # -2.25M), leaving 3M - 347500 - 2.25M = 402500, below the fee 1.25% x (9.6525M +
    # 27.75M) = 467531.25: the fee is the 402500 left.
    assert_log(raw, [
        ev(1, LIQ, 0, BOOK_ID, 100_000.0, 96.525, 0.0, -347_500.0, 2_352_500.0, 30e6),
        ev(1, TAKEOVER, 0, FUND_ID, 300_000.0, 92.5, 402_500.0, -2.25e6, 0.0, 30e6 + 402_500.0),
    ])
    s = raw.scalars
    assert s["fund_final"] == approx(30_402_500.0)
    assert s["fund_pos"] == approx(300_000.0) and s["fund_entry"] == approx(92.5)
    assert raw.collateral.tolist() == approx([0.0, 1e6])
    check_invariants(raw, sc, params)


# ----------------------------------------------------------------------------- hyperliquid
def test_hyperliquid_partial_cooldown_backstop_and_previous_mark_adl():
    """Hyperliquid: 20% of a position over 100k, the rest whole inside the 30 s cooldown; the
    vault takes an account below 2/3 MM with its margin; a negative-equity account is
    deleveraged at the previous mark (queue by (entry/mark) x notional/equity for shorts); the
    vault sells 25% after 10 s. The mark is the preset's hl-median with an oracle stream."""
    design = preset("hyperliquid").with_overrides({"backstop": {"vault_balance": 10_000.0}})
    assert design.margin.rates == (0.0125, 0.025) and design.mark.method == "hl-median"
    assert design.liquidation.partial_threshold == 100_000.0 and design.liquidation.cooldown_s == 30.0
    params = design.engine_params(INFINITE, 1.0)
    times = [0, 1, 2, 3, 4, 13]
    tape = [100_000.0, 95_000.0, 94_800.0, 93_000.0, 85_000.0, 85_000.0]
    oracle = [100_000.0, 95_000.0, 94_800.0, 93_000.0, 86_000.0, 85_000.0]
    sc = scenario(tape, [
        (12_000.0, 2.0, 100_000.0),   # 0: 20% partial at t=1, the rest whole at t=2
        (7_500.0, 1.0, 100_000.0),    # 1: backstop at t=3
        (10_000.0, 1.0, 100_000.0),   # 2: negative equity at t=4 -> ADL
        (20_000.0, -1.0, 100_000.0),  # 3: short, second in the ADL queue
        (5_000.0, -0.5, 100_000.0),   # 4: short, first in the ADL queue
    ], times_s=times, stream=oracle)
    raw = run_both(sc, params)

    # Mark = median(oracle + 150 s EMA of (S - oracle), S, 30 s EMA of S). While the oracle
    # equals the tape the basis samples are all 0, so the first leg is S and the median is S
    # whatever the EMA of S: marks 100000, 95000, 94800, 93000 at t=0..3. At t=4 the tape
    # wicks to 85000 under an oracle at 86000: the basis EMA gets its first non-zero sample.
    basis = ema_path([s - x for s, x in zip(tape, oracle)], times, 150.0)
    last_ema = ema_path(tape, times, 30.0)
    m4 = median3(oracle[4] + basis[4], tape[4], last_ema[4])
    # basis_4 = -1000 x 1e9 / den_4 with den_4 = 1e9 (1 + d + d^2 + d^3) + d^4, d = e^(-1/150):
    # about -1000 / 3.9603 = -252.5, so the oracle leg is about 85747.5, between the last
    # price 85000 and the lagging EMA of the last price (about 91816): it is the median.
    d = math.exp(-1.0 / 150.0)
    assert basis[4] == approx(-1000e9 / (1e9 * (1 + d + d * d + d ** 3) + d ** 4))
    assert 85_000.0 < oracle[4] + basis[4] < last_ema[4]
    assert m4 == pytest.approx(85_747.5, abs=0.1)
    # At t=13 the basis sample is 0 again: oracle leg 85000 + basis_13 < 85000 = S < EMA(S),
    # so the mark is exactly the last price 85000.
    assert oracle[5] + basis[5] < 85_000.0 < last_ema[5]
    marks = [100_000.0, 95_000.0, 94_800.0, 93_000.0, m4, 85_000.0]
    assert raw.series["mark"].tolist() == approx(marks)

    # t=1, M=95000. Account 0: E = 12000 - 2 x 5000 = 2000 < MM = 1.25% x 190000 = 2375 and
    # >= 2/3 MM = 1583.3: a market order. Notional 190000 > 100000: 20% = 0.4 at 95000,
    # realized -2000; equity stays 10000 + 1.6 x (-5000) = 2000 (now >= MM 1900).
    # t=2, M=94800, inside the cooldown (until t=31): E = 10000 - 1.6 x 5200 = 1680 < MM =
    # 1.25% x 151680 = 1896, >= 2/3 MM = 1264: the whole 1.6 at 94800, realized -8320, no fee,
    # the 1680 stays with the account.
    # t=3, M=93000. Account 1: E = 7500 - 7000 = 500 < 2/3 x MM (1.25% x 93000 = 1162.5) =
    # 775: the vault takes 1 at the mark and the 500 (the margin is not returned).
    # t=4, M=m4. Account 2: E = 10000 - (100000 - m4) = m4 - 90000 < 0: ADL of the whole 1 at
    # the previous mark 93000. Short scores (entry/mark) x notional/equity = |q| e / E:
    # account 4: 50000 / (5000 + 0.5 (100000 - m4)) = 4.12; account 3: 100000 /
    # (20000 + 100000 - m4) = 2.92 -> 4 first (its 0.5), then 0.5 of account 3. They buy back at
    # 93000 above the mark: haircut 0.5 x (93000 - m4) each. Closing at 93000 realizes
    # -7000 for account 2, whose 10000 leaves it 3000 (its equity at the previous mark); the
    # ADL row's amount is the shortfall at mark -(10000 + (m4 - 100000)) = 90000 - m4.
    # t=13: first vault unwind (due 10 s after the takeover at t=3): 25% of 1 = 0.25 at 85000,
    # realized 0.25 x (85000 - 93000) = -2000: vault cash 10500 - 2000 = 8500, equity at mark
    # 8500 + 0.75 x (85000 - 93000) = 2500.
    haircut = 0.5 * (93_000.0 - m4)
    assert_log(raw, [
        ev(1, PARTIAL, 0, BOOK_ID, 0.4, 95_000.0, 0.0, -2_000.0, 2_000.0),
        ev(2, LIQ, 0, BOOK_ID, 1.6, 94_800.0, 0.0, -8_320.0, 1_680.0),
        ev(3, BACKSTOP, 1, VAULT_ID, 1.0, 93_000.0, 0.0, 500.0, 0.0),
        ev(4, ADL_FILL, 4, 2, -0.5, 93_000.0, 0.0, haircut, 5_000.0 + 3_500.0),
        ev(4, ADL_FILL, 3, 2, -0.5, 93_000.0, 0.0, haircut, 23_500.0 + 0.5 * (100_000.0 - m4)),
        ev(4, ADL_LIQ, 2, BOOK_ID, 1.0, 93_000.0, 0.0, 90_000.0 - m4, 3_000.0),
        ev(5, VAULT_UNWIND, VAULT_ID, BOOK_ID, 0.25, 85_000.0, 0.0, -2_000.0, 2_500.0),
    ])
    s = raw.scalars
    assert s["vault_col"] == approx(8_500.0) and s["vault_pos"] == approx(0.75)
    assert s["vault_entry"] == approx(93_000.0)
    assert s["fund_final"] == 0.0 and s["bad_debt"] == 0.0
    assert raw.collateral.tolist() == approx([1_680.0, 0.0, 3_000.0, 23_500.0, 8_500.0])
    assert raw.size.tolist() == approx([0.0, 0.0, 0.0, -0.5, 0.0])
    assert raw.status.tolist() == [Status.CLOSED] * 3 + [Status.ACTIVE, Status.CLOSED]
    assert raw.series["vault_equity"].tolist()[3:] == approx(
        [10_500.0, 10_500.0 + (m4 - 93_000.0), 2_500.0])
    check_invariants(raw, sc, params)


def test_hyperliquid_vault_takes_what_the_book_cannot_close_without_a_deficit():
    """An account between 2/3 MM and MM gets a market order; when walking the book would leave
    it in deficit the book liquidation is not successful, so the vault takes the position over
    at the mark with the account's equity [DOC S21] — no ADL. Without a backstop the same
    order is auto-deleveraged."""
    design = preset("hyperliquid").with_overrides({"backstop": {"vault_balance": 10_000.0}})
    thin = ConstantDepth(depth_per_pct=20_000.0, feedback=0.0)
    params = design.engine_params(thin, 1.0)
    sc = scenario([100_000.0, 95_000.0], [
        (6_150.0, 1.0, 100_000.0),    # 0: E = 1150 at 95000, MM 1187.5, 2/3 MM 791.7
        (20_000.0, -1.0, 100_000.0),  # 1: short in profit, would be first in an ADL queue
    ])
    raw = run_both(sc, params)
    # The market order (notional 95000 < 100000: whole) would fill at 95000 (1 - 0.01 x 95000
    # / 20000 / 2) = 92743.75, leaving 6150 - 7256.25 = -1106.25: a deficit with no fund. The
    # vault takes 1 at the mark 95000 with the equity 1150.
    assert_log(raw, [ev(1, BACKSTOP, 0, VAULT_ID, 1.0, 95_000.0, 0.0, 1_150.0, 0.0)])
    assert raw.scalars["vault_col"] == approx(11_150.0) and raw.scalars["vault_pos"] == approx(1.0)
    assert raw.size.tolist() == approx([0.0, -1.0])
    check_invariants(raw, sc, params)

    no_backstop = design.with_overrides({"backstop": {"ratio": 0.0}}).engine_params(thin, 1.0)
    raw = run_both(sc, no_backstop)
    kinds = [EventKind(e["kind"]) for e in events(raw)]
    assert kinds == [ADL_FILL, ADL_LIQ] and raw.size.tolist() == approx([0.0, 0.0])
    check_invariants(raw, sc, no_backstop)


def test_hyperliquid_vault_keeps_its_inventory_within_its_threshold_and_deleverages_at_the_re_mark_past_it():
    """The vault's loss threshold (``backstop.loss_limit_share`` x ``vault_balance``, by default the
    whole balance) [DOC S36]: a takeover within it keeps the inventory; a loss up to the threshold
    does not deleverage it; the re-mark that passes it deleverages the whole inventory at once —
    at the tick's first round, before that tick's liquidations — at the previous mark; back within
    its threshold the vault takes accounts over again."""
    design = preset("hyperliquid").with_overrides({"backstop": {"vault_balance": 1_000.0}})
    assert design.backstop.loss_limit_share == 1.0 and design.backstop.loss_threshold == 1_000.0
    params = design.engine_params(INFINITE, 1.0)
    assert params.vault_loss_limit == 1_000.0
    sc = scenario([100_000.0, 98_300.0, 97_000.0, 95_000.0], [
        (1_000.0, 0.5, 100_000.0),   # 0: taken over at t=1
        (5_000.0, -1.0, 100_000.0),  # 1: short in profit: the vault's ADL counterparty
        (2_700.0, 0.5, 100_000.0),   # 2: taken over at t=3, after the vault's ADL
    ])
    raw = run_both(sc, params)
    # No oracle stream: the mark is the last price. Notionals stay below 100000: no partials.
    # t=1, M=98300. Account 0: E = 1000 - 850 = 150 < 2/3 MM = 2/3 x 1.25% x 49150 = 409.6: the
    # vault takes 0.5 at 98300 and the 150. Vault equity 1150, loss -150.
    # Account 2: E = 2700 - 850 = 1850 >= MM 614.4.
    # t=2, M=97000: vault equity 1150 + 0.5 x (97000 - 98300) = 500, loss 500 <= 1000: nothing.
    # Account 2: E = 1200 >= MM 606.25.
    # t=3, M=95000: vault equity 1150 - 0.5 x 3300 = -500, loss 1500 > 1000: before the scan its
    # whole 0.5 is deleveraged at the previous mark 97000 against account 1 (E = 10000; it buys
    # back 0.5 at 97000, 2000 above the mark: haircut 1000; realized -0.5 x (97000 - 100000) =
    # 1500: cash 6500, equity 6500 - 0.5 x (95000 - 100000) = 9000). The vault's shortfall at
    # mark: -(1150 + 0.5 x (95000 - 98300)) = 500; it realizes 0.5 x (97000 - 98300) = -650:
    # cash 500, flat, loss 500 — within its threshold again.
    # Then the scan: account 2, E = 2700 - 2500 = 200 < 2/3 MM = 2/3 x 593.75 = 395.8, so the
    # vault takes 0.5 at 95000 and the 200: cash 700, equity 700.
    assert_log(raw, [
        ev(1, BACKSTOP, 0, VAULT_ID, 0.5, 98_300.0, 0.0, 150.0, 0.0),
        ev(3, ADL_FILL, 1, VAULT_ID, -0.5, 97_000.0, 0.0, 1_000.0, 9_000.0),
        ev(3, ADL_LIQ, VAULT_ID, BOOK_ID, 0.5, 97_000.0, 0.0, 500.0, 500.0),
        ev(3, BACKSTOP, 2, VAULT_ID, 0.5, 95_000.0, 0.0, 200.0, 0.0),
    ])
    assert events(raw)[1]["round"] == events(raw)[3]["round"] == 0
    s = raw.scalars
    assert s["vault_col"] == approx(700.0) and s["vault_pos"] == approx(0.5)
    assert s["vault_entry"] == approx(95_000.0)
    # its lowest equity: the re-mark at t=3 before the deleveraging, 1500 below its start
    assert s["vault_min"] == approx(-500.0)
    assert raw.collateral.tolist() == approx([0.0, 6_500.0, 0.0])
    assert raw.size.tolist() == approx([0.0, -0.5, 0.0])
    check_invariants(raw, sc, params)
    # with a threshold of 1600 (a larger share) the loss of 1500 at t=3 is within it: no ADL
    wider = design.with_overrides({"backstop": {"loss_limit_share": 1.6}}).engine_params(INFINITE, 1.0)
    assert [e["kind"] for e in events(run_both(sc, wider))] == [BACKSTOP, BACKSTOP]


def test_the_takeover_that_passes_the_threshold_deleverages_the_vault_at_once():
    """A takeover that carries a loss (an account below zero equity, on a variant that sends those
    to the vault rather than to ADL) and passes the vault's threshold: the vault's whole inventory
    is deleveraged right after it, so the loss passes the threshold by no more than that takeover's;
    beyond its threshold the vault takes nothing over: the next account goes to the book."""
    design = preset("hyperliquid").with_overrides({
        "backstop": {"vault_balance": 2_000.0, "loss_limit_share": 0.6},
        "adl": {"on_negative_equity": False, "price": "mark"}})
    params = design.engine_params(INFINITE, 1.0)
    assert params.vault_loss_limit == 1_200.0
    sc = scenario([100_000.0, 98_300.0, 96_000.0], [
        (1_000.0, 0.5, 100_000.0),    # 0: taken over at t=1 with 150
        (3_000.0, 1.0, 100_000.0),    # 1: taken over at t=2 with -1000
        (10_000.0, -2.0, 100_000.0),  # 2: short in profit: the ADL counterparty
        (2_200.0, 0.5, 100_000.0),    # 3: below 2/3 MM at t=2, after the vault passed its threshold
    ])
    raw = run_both(sc, params)
    # t=1, M=98300: account 0 as above: the vault takes 0.5 at 98300 with 150 (cash 2150).
    # Account 1: E = 3000 - 1700 = 1300 >= MM 1228.75; account 3: E = 1350 >= MM 614.4.
    # t=2, M=96000. Re-mark: vault equity 2150 + 0.5 x (96000 - 98300) = 1000, loss 1000 <=
    # 1200. Account 1: E = 3000 - 4000 = -1000 < 2/3 MM (no ADL of negative equity here): the
    # vault takes 1 at 96000 and the -1000: position 1.5 at (0.5 x 98300 + 96000) / 1.5 =
    # 96766.67, cash 1150, equity 1150 - 1150 = 0: loss 2000 > 1200. Its whole 1.5 is
    # deleveraged at once, at the mark 96000, against account 2 (no haircut at the mark;
    # realized -1.5 x (96000 - 100000) = 6000: cash 16000, equity 16000 + 0.5 x 4000 = 18000).
    # The vault's shortfall at mark is 0 (equity 0); it realizes 1.5 x (96000 - 96766.67) =
    # -1150: cash 0. Its loss, 2000, passes the threshold by 800 <= the takeover's 1000.
    # Account 3: E = 2200 - 2000 = 200 < 2/3 MM = 400, but the vault is beyond its threshold:
    # a market order (48000 < 100000: whole) on the infinite book at 96000, realized -2000,
    # the 200 stays with the account.
    entry = (0.5 * 98_300.0 + 96_000.0) / 1.5
    assert_log(raw, [
        ev(1, BACKSTOP, 0, VAULT_ID, 0.5, 98_300.0, 0.0, 150.0, 0.0),
        ev(2, BACKSTOP, 1, VAULT_ID, 1.0, 96_000.0, 0.0, -1_000.0, 0.0),
        ev(2, ADL_FILL, 2, VAULT_ID, -1.5, 96_000.0, 0.0, 0.0, 18_000.0),
        ev(2, ADL_LIQ, VAULT_ID, BOOK_ID, 1.5, 96_000.0, 0.0, 0.0, 0.0),
        ev(2, LIQ, 3, BOOK_ID, 0.5, 96_000.0, 0.0, -2_000.0, 200.0),
    ])
    assert 1.5 * (96_000.0 - entry) == approx(-1_150.0)
    s = raw.scalars
    assert s["vault_col"] == approx(0.0) and s["vault_pos"] == 0.0 and s["vault_min"] == approx(0.0)
    assert raw.collateral.tolist() == approx([0.0, 0.0, 16_000.0, 200.0])
    check_invariants(raw, sc, params)


def test_hyperliquid_zero_balance_vault_deleverages_at_its_first_loss():
    """A vault with no money (threshold 0 x its balance): it keeps the margins it takes over, and
    the first re-mark that costs it more deleverages its inventory; what ADL cannot absorb is sold
    to the book, the vault ends below zero and takes nothing more over. The same run with a
    1,000 vault keeps its inventory and takes the next account over: the smaller vault
    deleverages sooner."""
    design = preset("hyperliquid").with_overrides({"backstop": {"vault_balance": 0.0}})
    params = design.engine_params(INFINITE, 1.0)
    assert params.vault_loss_limit == 0.0
    sc = scenario([100_000.0, 98_300.0, 97_000.0], [
        (1_000.0, 0.5, 100_000.0),  # 0: taken over at t=1 with 150
        (200.0, -0.1, 100_000.0),   # 1: the only short in profit
        (1_520.0, 0.5, 100_000.0),  # 2: below 2/3 MM at t=2
    ])
    raw = run_both(sc, params)
    # t=1: the vault takes 0.5 at 98300 with 150: equity 150, loss -150 <= 0.
    # t=2, M=97000: equity 150 - 650 = -500, loss 500 > 0: ADL of its 0.5 at the previous mark
    # 98300. Account 1 (E = 200 + 300 = 500) can give 500 / 1300 = 0.38 > its 0.1: it buys back
    # 0.1 at 98300 (haircut 0.1 x 1300 = 130; realized 0.1 x 1700 = 170: cash 370, closed).
    # The vault's ADL row: 0.1 at 98300 (realized 0), shortfall -(150 x 0.1/0.5 + 0.1 x
    # (97000 - 98300)) = 100, equity after 150 + 0.4 x (-1300) = -370. The rest, 0.4, goes to
    # the (infinite) book at 97000: realized 0.4 x (97000 - 98300) = -520, cash -370.
    # Account 2: E = 1520 - 1500 = 20 < 2/3 MM = 404.2: the vault is beyond its threshold, so a
    # market order: 0.5 at 97000, realized -1500, the 20 stays.
    assert_log(raw, [
        ev(1, BACKSTOP, 0, VAULT_ID, 0.5, 98_300.0, 0.0, 150.0, 0.0),
        ev(2, ADL_FILL, 1, VAULT_ID, -0.1, 98_300.0, 0.0, 130.0, 370.0),
        ev(2, ADL_LIQ, VAULT_ID, BOOK_ID, 0.1, 98_300.0, 0.0, 100.0, -370.0),
        ev(2, VAULT_UNWIND, VAULT_ID, BOOK_ID, 0.4, 97_000.0, 0.0, -520.0, -370.0),
        ev(2, LIQ, 2, BOOK_ID, 0.5, 97_000.0, 0.0, -1_500.0, 20.0),
    ])
    s = raw.scalars
    assert s["vault_col"] == approx(-370.0) and s["vault_pos"] == 0.0
    assert s["vault_min"] == approx(-500.0) and s["bad_debt"] == 0.0
    check_invariants(raw, sc, params)
    # A 1000 vault: at t=2 its loss is 500 <= 1000, it keeps its inventory and takes account 2
    # over at 97000 with its 20.
    bigger = design.with_overrides({"backstop": {"vault_balance": 1_000.0}}).engine_params(INFINITE, 1.0)
    raw = run_both(sc, bigger)
    assert_log(raw, [
        ev(1, BACKSTOP, 0, VAULT_ID, 0.5, 98_300.0, 0.0, 150.0, 0.0),
        ev(2, BACKSTOP, 2, VAULT_ID, 0.5, 97_000.0, 0.0, 20.0, 0.0),
    ])
    assert raw.scalars["vault_min"] == approx(500.0)  # 1150 - 650 at t=2's re-mark
    check_invariants(raw, sc, bigger)


def test_hyperliquid_max_market_order_by_max_leverage():
    """[DOC S32]: $30M at max leverage >= 25, $5M in [20, 25), $2M in [10, 20), else $500k."""
    assert [preset("hyperliquid", symbol=s).liquidation.max_order for s in ("BTC", "ETH", "SOL")] == [
        30e6, 30e6, 5e6]
    assert [preset("hyperliquid", max_leverage=x).liquidation.max_order for x in (25, 24, 10, 9)] == [
        30e6, 5e6, 2e6, 500e3]


def test_a_capped_liquidation_order_closes_the_rest_on_later_ticks():
    """A liquidation order larger than ``max_order`` is cut to it (a partial order); the rest
    waits for the next tick, so a 280,500 position under a 100,000 cap takes three ticks."""
    design = preset("binance-usdm").with_overrides(
        {"liquidation": {"max_order": 100_000.0, "fee": 0.0}, "mark": {"method": "last"}})
    params = design.engine_params(INFINITE, 1.0)
    sc = scenario([100_000.0, 93_500.0, 93_500.0, 93_000.0, 93_000.0], [(20_000.0, 3.0, 100_000.0)])
    raw = run_both(sc, params)
    # t=1, M=93500: E = 20000 - 3 x 6500 = 500, below MM (0.4%) on 280,500 = 1122. Orders of
    # 100000 / 93500 = 1.06952 fill at the mark (an infinite book), realizing -6500 per unit;
    # equity stays 500, so at t=2 the account still crosses (MM on 180,500 = 722) and is cut
    # again. The rest, 0.86096 (80,500 < the cap), no longer crosses at 93500 (MM 322), but at
    # t=3 the tape falls to 93000: E = 20000 - 2 x 6951.87 - 0.86096 x 7000 = 69.5 < MM 320,
    # and one whole order closes it.
    cut = 100_000.0 / 93_500.0
    rest = 3.0 - 2 * cut
    left = 20_000.0 - 2 * 6_500.0 * cut - 7_000.0 * rest
    assert_log(raw, [
        ev(1, PARTIAL, 0, BOOK_ID, cut, 93_500.0, 0.0, -6_500.0 * cut, 500.0),
        ev(2, PARTIAL, 0, BOOK_ID, cut, 93_500.0, 0.0, -6_500.0 * cut, 500.0),
        ev(3, LIQ, 0, BOOK_ID, rest, 93_000.0, 0.0, -7_000.0 * rest, left),
    ], skip={(j, "fund_after") for j in range(3)})
    assert raw.size.tolist() == [0.0]
    check_invariants(raw, sc, params)
    # without the cap one order closes it all at t=1
    whole = design.with_overrides({"liquidation": {"max_order": None}}).engine_params(INFINITE, 1.0)
    assert [e["tick"] for e in events(run_both(sc, whole))] == [1]


# ----------------------------------------------------------------------------------- bybit
def test_bybit_tier_step_surplus_takeover_and_adl():
    """Bybit: a tier-step partial down to the lower risk limit, the full close with the surplus
    to the fund, a gap through bankruptcy taken over by the fund, then (fund value negative)
    ADL at the bankruptcy price ranked by PnL% x effective leverage."""
    design = preset("bybit").with_overrides({
        "margin": {"floors": [0.0, 10_000.0], "rates": [0.01, 0.02]},
        "fund": {"initial": 50.0},
    })
    assert design.liquidation.partial == "tier-step" and design.liquidation.surplus_to_fund
    params = design.engine_params(INFINITE, 1.0)
    # MM(N) = 1% N below 10000, 2% N - 100 above (deduction 10000 x (2% - 1%)). The index
    # equals the tape: mark = index + EMA(0) = the tape price.
    prices = [100.0, 96.0, 95.0, 90.0, 85.0]
    sc = scenario(prices, [
        (750.0, 150.0, 100.0),  # 0: tier-step at t=1, full at t=2
        (80.0, 10.0, 100.0),    # 1: gaps through bk 92 at t=3 -> fund takeover
        (240.0, 20.0, 100.0),   # 2: gaps through bk 88 at t=4, fund short of value -> ADL
        (300.0, -30.0, 100.0),  # 3: short, score 0.51
        (20.0, -8.0, 100.0),    # 4: short, score 0.7286: first
    ], stream=prices)
    raw = run_both(sc, params)

    # t=1, M=96. Account 0: N = 14400 (tier 1), MM = 288 - 100 = 188, E = 750 - 600 = 150.
    # Tier step: target = 10000 (1 - 1e-9) just inside tier 0, MM(target) = 1% x target ~ 100
    # <= 150, so the order is 150 (1 - target/14400), leaving p = target/96 (notional = target).
    # The sell is limited at bk = 100 - 750/150 = 95 < 96: it fills at 96 on the deep book.
    target = 10_000.0 * (1 - 1e-9)
    p = target / 96.0
    step = 150.0 - p
    assert step == approx(150.0 * (1 - target / 14_400.0))
    # Realized -4 x step; collateral 750 - 4 (150 - p) = 150 + 4p; equity unchanged 150.
    # t=2, M=95: N = 95p < 10000 -> MM = 0.95p = 98.96 > E = 150 + 4p - 5p = 150 - p = 45.83.
    # Tier 0: the whole p; bk = 96 - 150/p = 94.56 < 95, so it fills at 95, realized -5p. The
    # position is closed: the surplus 150 - p (fee rate 0) goes to the fund.
    surplus = 150.0 - p
    fund2 = 50.0 + surplus
    # t=3, M=90. Account 1: E = 80 - 100 = -20, bk = 92 > 90: the IOC fills nothing. Fund
    # value with the 10: fund2 + 10 x (90 - 92) = 75.8 > 0 (capacity unlimited): it takes 10 at
    # 92, realized 10 x (92 - 100) = -80, nothing left for the fund.
    # t=4, M=85. Account 2: E = 240 - 300 = -60, bk = 88 > 85. Fund value
    # fund2 + 10 x (85 - 92) + 20 x (85 - 88) = 95.83 - 70 - 60 < 0 -> ADL at 88.
    assert fund2 + 10 * (85.0 - 92.0) + 20 * (85.0 - 88.0) < 0
    # Scores PnL% x leverage: account 4: (120/800) x 680/140 = 0.7286; account 3:
    # (450/3000) x 2550/750 = 0.51 -> 4 gives its 8, 3 gives 12; each pays 88 - 85 = 3 a unit.
    # Account 4: realized -8 x (88 - 100) = 96 -> 116. Account 3: 12 x 12 = 144 -> 444, equity
    # 444 + 18 x 15 = 714. Account 2's shortfall: -(240 + 20 x (85 - 100)) = 60 = 24 + 36.
    assert_log(raw, [
        ev(1, PARTIAL, 0, BOOK_ID, step, 96.0, 0.0, -4.0 * step, 150.0, 50.0),
        ev(2, LIQ, 0, BOOK_ID, p, 95.0, surplus, -5.0 * p, 0.0, fund2),
        ev(3, TAKEOVER, 1, FUND_ID, 10.0, 92.0, 0.0, -80.0, 0.0, fund2),
        ev(4, ADL_FILL, 4, 2, -8.0, 88.0, 0.0, 24.0, 116.0, fund2),
        ev(4, ADL_FILL, 3, 2, -12.0, 88.0, 0.0, 36.0, 714.0, fund2),
        ev(4, ADL_LIQ, 2, BOOK_ID, 20.0, 88.0, 0.0, 60.0, 0.0, fund2),
    ])
    s = raw.scalars
    assert fund2 == approx(200.0 - 10_000.0 * (1 - 1e-9) / 96.0)
    assert s["fund_final"] == approx(fund2) and s["fund_pos"] == approx(10.0)
    assert s["fund_entry"] == approx(92.0) and s["bad_debt"] == 0.0
    assert raw.collateral.tolist() == approx([0.0, 0.0, 0.0, 444.0, 116.0])
    assert raw.size.tolist() == approx([0.0, 0.0, 0.0, -18.0, 0.0])
    assert raw.status.tolist() == [Status.CLOSED] * 3 + [Status.ACTIVE, Status.CLOSED]
    check_invariants(raw, sc, params)


# ------------------------------------------------------------------------------------- okx
def test_okx_fund_drawdown_switches_the_book_to_adl_at_mark():
    """OKX: a book liquidation, a gap taken over by the fund, the fund's first 10% offload
    after 60 s takes it more than 30% below its 8 h peak, after which a liquidation that would
    have gone to the book is deleveraged at the mark instead."""
    design = preset("okx").with_overrides({
        "margin": {"floors": [0.0], "rates": [0.01]},
        "fund": {"initial": 120.0},
    })
    assert design.adl.fund_drawdown == 0.30 and design.adl.price == "mark"
    assert design.fund.unwind_interval_s == 60.0 and design.fund.unwind_fraction == 0.1
    params = design.engine_params(INFINITE, 1.0)
    prices = [100.0, 95.0, 90.0, 84.0, 80.0]
    sc = scenario(prices, [
        (55.0, 10.0, 100.0),   # 0: book at t=1
        (400.0, 50.0, 100.0),  # 1: gaps through bk 92 at t=2 -> fund takeover
        (205.0, 10.0, 100.0),  # 2: crosses at t=63 with equity 5 -> ADL (fund in drawdown)
        (80.0, -8.0, 100.0),   # 3: short, score 0.533
        (20.0, -4.0, 100.0),   # 4: short, score 0.64: first
    ], times_s=[0, 1, 2, 62, 63], stream=prices)
    raw = run_both(sc, params)

    # MM = 1% N, one tier (tier-step has nothing below, every order is whole). Mark = tape.
    # t=1, M=95. Account 0: E = 55 - 50 = 5 < 9.5; bk = 94.5 < 95: fills whole at 95,
    # realized -50, no fee, the 5 stays. Fund 120 = its peak: no drawdown.
    # t=2, M=90. Account 1: E = 400 - 500 = -100; bk = 92 > 90: nothing fills. Fund value
    # 120 + 50 x (90 - 92) = 20 > 0: it takes 50 at 92 (realized -400); its cash stays 120.
    # t=62 (60 s after the takeover), M=84, nobody crosses (account 2: E = 45 >= 8.4). The
    # fund sells 10% = 5 at 84: realized 5 x (84 - 92) = -40 -> cash 80, equity at mark
    # 80 + 45 x (84 - 92) = -280.
    # t=63, M=80: fund 80 < (1 - 0.3) x peak 120 = 84 -> the drawdown trigger is on. Account
    # 2: E = 205 - 200 = 5 < MM 8 and >= 0: instead of the book, ADL of the whole 10 at the
    # mark 80. Scores PnL% x leverage: account 4: 0.2 x 320/100 = 0.64; account 3:
    # 0.2 x 640/240 = 0.533 -> 4 gives 4, 3 gives 6, with no haircut (price = mark).
    # Account 2 keeps its 5 (shortfall -5 -> amount 0).
    assert_log(raw, [
        ev(1, LIQ, 0, BOOK_ID, 10.0, 95.0, 0.0, -50.0, 5.0, 120.0),
        ev(2, TAKEOVER, 1, FUND_ID, 50.0, 92.0, 0.0, -400.0, 0.0, 120.0),
        ev(3, FUND_UNWIND, FUND_ID, BOOK_ID, 5.0, 84.0, 0.0, -40.0, -280.0, 80.0),
        ev(4, ADL_FILL, 4, 2, -4.0, 80.0, 0.0, 0.0, 100.0, 80.0),
        ev(4, ADL_FILL, 3, 2, -6.0, 80.0, 0.0, 0.0, 200.0 + 40.0, 80.0),
        ev(4, ADL_LIQ, 2, BOOK_ID, 10.0, 80.0, 0.0, 0.0, 5.0, 80.0),
    ])
    s = raw.scalars
    assert s["fund_final"] == approx(80.0) and s["fund_min"] == approx(80.0)
    assert s["fund_pos"] == approx(45.0) and s["fund_entry"] == approx(92.0)
    assert s["bad_debt"] == 0.0
    assert raw.collateral.tolist() == approx([5.0, 0.0, 5.0, 200.0, 100.0])
    assert raw.size.tolist() == approx([0.0, 0.0, 0.0, -2.0, 0.0])
    assert raw.status.tolist() == [Status.CLOSED] * 3 + [Status.ACTIVE, Status.CLOSED]
    check_invariants(raw, sc, params)


def test_okx_same_crossing_goes_to_the_book_without_the_drawdown():
    """Control for the test above: with a fund that never drew down (no takeover), account 2
    crossing at t=63 is sold on the book at 80 and keeps its 5."""
    design = preset("okx").with_overrides({
        "margin": {"floors": [0.0], "rates": [0.01]},
        "fund": {"initial": 120.0},
    })
    params = design.engine_params(INFINITE, 1.0)
    prices = [100.0, 95.0, 90.0, 84.0, 80.0]
    sc = scenario(prices, [(205.0, 10.0, 100.0), (80.0, -8.0, 100.0)],
                  times_s=[0, 1, 2, 62, 63], stream=prices)
    raw = run_both(sc, params)
    assert_log(raw, [ev(4, LIQ, 0, BOOK_ID, 10.0, 80.0, 0.0, -200.0, 5.0, 120.0)])


# ---------------------------------------------------------------------------------- bitmex
def test_bitmex_surplus_partial_ioc_takeover_unwind_and_pnl_leverage_adl():
    """BitMEX: the liquidation order's surplus above bankruptcy goes to the fund (both on a
    whole fill and on an IOC partly filled before the fund takes the rest), the fund unwinds
    half its inventory 10 s later at a loss, and an account gapping through bankruptcy when the
    fund's value is negative is deleveraged at its bankruptcy price, PnL% x leverage first."""
    design = preset("bitmex").with_overrides({
        "margin": {"floors": [0.0], "rates": [0.01]},
        "fund": {"initial": 50.0},
    })
    assert design.fund.unwind_interval_s == 10.0 and design.fund.unwind_fraction == 0.5
    book = ConstantDepth(depth_per_pct=1000.0, feedback=0.0)
    params = design.engine_params(book, 1.0)
    prices = [100.0, 95.0, 90.0, 85.0, 80.0]
    sc = scenario(prices, [
        (59.2, 10.0, 100.0),    # 0: whole fill at t=1, surplus to the fund
        (100.81, 10.0, 100.0),  # 1: IOC fills 1 at t=2, the fund takes 9
        (90.0, 5.0, 100.0),     # 2: gaps through bk 82 at t=13 -> ADL
        (150.0, -10.0, 95.0),   # 3: short, score 0.421
        (10.0, -2.0, 100.0),    # 4: short, score 0.64: first
    ], times_s=[0, 1, 2, 12, 13], stream=prices)
    raw = run_both(sc, params)

    # MM = 1% N; mark = tape (index = tape, basis 0).
    # t=1, M=95. Account 0: E = 59.2 - 50 = 9.2 < 9.5; bk = 100 - 5.92 = 94.08: the book holds
    # 1000 x (0.92/95 / 1%) / 95 = 10.19 >= 10 before it: whole fill at
    # 95 x (1 - 0.01 x 950 / 1000 / 2) = 94.54875, realized -54.5125; the 4.6875 left is the
    # surplus, all to the fund (fee rate 0).
    fill0 = 95.0 * (1 - 0.01 * 950.0 / 1000.0 / 2)
    assert fill0 == approx(94.54875)
    surplus0 = 59.2 + 10 * (fill0 - 100.0)
    assert surplus0 == approx(4.6875)
    fund1 = 50.0 + surplus0
    # t=2, M=90. Account 1: E = 0.81 < 9; bk = 100 - 10.081 = 89.919; the book holds
    # 1000 x (0.081/90 / 1%) / 90 = 1 unit: fills 1 at 90 x (1 - 0.01 x 90 / 1000 / 2) = 89.9595
    # (realized -10.0405; equity after 90.7695 - 90 = 0.7695). The fund's value with the
    # rest, fund1 + 9 x (90 - 89.919) > 0: it takes 9 at 89.919 (realized -90.729); the
    # surplus 100.81 - 10.0405 - 90.729 = 0.0405 goes to the fund.
    fill1 = 90.0 * (1 - 0.01 * 90.0 / 1000.0 / 2)
    assert fill1 == approx(89.9595)
    surplus1 = 100.81 + (fill1 - 100.0) + 9 * (89.919 - 100.0)
    assert surplus1 == approx(0.0405)
    fund2 = fund1 + surplus1
    # t=12 (10 s after the takeover), M=85, nobody crosses (account 2: E = 15 >= 4.25). The
    # fund sells half, 4.5, at 85 x (1 - 0.01 x 382.5 / 1000 / 2) = 84.8374375: realized
    # 4.5 x (84.8374375 - 89.919) = -22.86703125.
    fill_u = 85.0 * (1 - 0.01 * 4.5 * 85.0 / 1000.0 / 2)
    assert fill_u == approx(84.8374375)
    loss_u = 4.5 * (fill_u - 89.919)
    assert loss_u == approx(-22.86703125)
    fund3 = fund2 + loss_u
    # t=13, M=80. Account 2: E = 90 - 100 = -10, bk = 82 > 80: nothing fills. Fund value
    # fund3 + 4.5 x (80 - 89.919) + 5 x (80 - 82) = 31.86 - 44.64 - 10 < 0 -> ADL at 82.
    assert fund3 + 4.5 * (80.0 - 89.919) + 5 * (80.0 - 82.0) < 0
    # Scores PnL% x (N/E): account 4: (40/200) x 160/50 = 0.64; account 3: (150/950) x
    # 800/300 = 0.421 -> 4 gives 2, 3 gives 3, each paying 82 - 80 = 2 a unit. Account 4:
    # 10 + 2 x 18 = 46. Account 3: 150 + 3 x 13 = 189, equity 189 + 7 x 15 = 294. Account 2's
    # shortfall: -(90 + 5 x (80 - 100)) = 10 = 4 + 6.
    assert_log(raw, [
        ev(1, LIQ, 0, BOOK_ID, 10.0, fill0, surplus0, 10 * (fill0 - 100.0), 0.0, fund1),
        ev(2, LIQ, 1, BOOK_ID, 1.0, fill1, 0.0, fill1 - 100.0, 0.7695, fund1),
        ev(2, TAKEOVER, 1, FUND_ID, 9.0, 89.919, surplus1, 9 * (89.919 - 100.0), 0.0, fund2),
        ev(3, FUND_UNWIND, FUND_ID, BOOK_ID, 4.5, fill_u, 0.0, loss_u,
           fund3 + 4.5 * (85.0 - 89.919), fund3),
        ev(4, ADL_FILL, 4, 2, -2.0, 82.0, 0.0, 4.0, 46.0, fund3),
        ev(4, ADL_FILL, 3, 2, -3.0, 82.0, 0.0, 6.0, 294.0, fund3),
        ev(4, ADL_LIQ, 2, BOOK_ID, 5.0, 82.0, 0.0, 10.0, 0.0, fund3),
    ])
    s = raw.scalars
    assert fund3 == approx(50.0 + 4.6875 + 0.0405 - 22.86703125)
    assert s["fund_final"] == approx(fund3) and s["fund_pos"] == approx(4.5)
    assert s["fund_entry"] == approx(89.919) and s["bad_debt"] == 0.0
    assert raw.collateral.tolist() == approx([0.0, 0.0, 0.0, 189.0, 46.0])
    assert raw.size.tolist() == approx([0.0, 0.0, 0.0, -7.0, 0.0])
    assert raw.status.tolist() == [Status.CLOSED] * 3 + [Status.ACTIVE, Status.CLOSED]
    check_invariants(raw, sc, params)


# --------------------------------------------------------------------------------- dydx-v4
def test_dydx_v4_price_band_partial_fill_then_deleveraging_at_bankruptcy():
    """dYdX v4: the liquidation order fills only within 1.5 x MMF of the oracle (fee 1.5% to the
    fund, capped at what is left); the unfilled rest is deleveraged at the account's bankruptcy
    price after that fill; an account already below zero equity is deleveraged at once."""
    # a one-tier 0.5% table given to the preset (its stored tables are larger): the price
    # band follows the given MMF
    design = preset("dydx-v4", margin=Margin(floors=(0.0,), rates=(0.005,)))
    assert design.margin.rates == (0.005,)
    assert design.liquidation.price_band == pytest.approx(1.5 * 0.005)
    assert design.liquidation.fee == 0.015 and design.adl.on_negative_equity
    book = ConstantDepth(depth_per_pct=2000.0, feedback=0.0)
    params = design.engine_params(book, 1.0)
    prices = [120.0, 100.0, 75.0, 60.0]
    sc = scenario(prices, [
        (204.0, 10.0, 120.0),   # 0: whole fill inside the band at t=1
        (1130.0, 25.0, 120.0),  # 1: band fills 20 of 25 at t=2, 5 deleveraged
        (220.0, 4.0, 120.0),    # 2: negative equity at t=3 -> deleveraged at bk 65
        (90.0, -6.0, 120.0),    # 3: short, score 0.469
        (15.0, -3.0, 120.0),    # 4: short, score 0.5625: first
    ], stream=prices)
    raw = run_both(sc, params)

    # MM = 0.5% N; band 0.75% around the oracle mark (= tape); fund starts empty.
    # t=1, M=100. Account 0: E = 204 - 200 = 4 < 5. Band limit 99.25; the book holds
    # 2000 x 0.75 / 100 = 15 >= 10 units before it: whole fill at
    # 100 x (1 - 0.01 x 1000 / 2000 / 2) = 99.75, realized -202.5, 1.5 left < fee
    # 1.5% x 997.5 = 14.96: the fee is 1.5.
    # t=2, M=75. Account 1: E = 1130 - 1125 = 5 < 9.375 (>= 0: a market order). Band limit
    # 74.4375 (below bk = 74.8: dYdX has no bankruptcy limit); the book holds
    # 2000 x 0.75 / 75 = 20 units: fills 20 at 75 x (1 - 0.01 x 1500 / 2000 / 2) = 74.71875,
    # realized 20 x (74.71875 - 120) = -905.625 -> 224.375, fee 1.5% x 1494.375 = 22.415625
    # -> 201.959375; equity 201.959375 - 5 x 45 = -23.040625.
    fill1 = 75.0 * (1 - 0.01 * 1500.0 / 2000.0 / 2)
    assert fill1 == approx(74.71875)
    fee1 = 0.015 * 20 * fill1
    assert fee1 == approx(22.415625)
    col1 = 1130.0 + 20 * (fill1 - 120.0) - fee1
    assert col1 == approx(201.959375)
    # The rest 5 is deleveraged at the bankruptcy price after that fill:
    # 120 - 201.959375 / 5 = 79.608125, 4.608125 above the mark. Scores PnL% x leverage:
    # account 4: 0.375 x 225/150 = 0.5625; account 3: 0.375 x 450/360 = 0.46875 -> 4 gives its
    # 3, 3 gives 2. Account 4: 15 + 3 x 40.391875 = 136.175625; account 3: 90 + 2 x 40.391875 =
    # 170.78375, equity 170.78375 + 4 x 45 = 350.78375. Shortfall covered:
    # -(201.959375 - 225) = 23.040625 = 5 x 4.608125.
    bk1 = 120.0 - col1 / 5
    assert bk1 == approx(79.608125)
    gap = bk1 - 75.0
    # t=3, M=60. Account 2: E = 220 - 240 = -20 < 0 -> ADL of the whole 4 at bk 65 (no book
    # order). Only account 3 is left (short 4, E = 170.78375 + 240): it gives all 4 at 65,
    # paying 5 a unit: 170.78375 + 4 x 55 = 390.78375. Shortfall -(220 - 240) = 20.
    fund = 1.5 + fee1
    assert_log(raw, [
        ev(1, LIQ, 0, BOOK_ID, 10.0, 99.75, 1.5, -202.5, 0.0, 1.5),
        ev(2, LIQ, 1, BOOK_ID, 20.0, fill1, fee1, 20 * (fill1 - 120.0), col1 - 225.0, fund),
        ev(2, ADL_FILL, 4, 1, -3.0, bk1, 0.0, 3 * gap, 15.0 + 3 * (120.0 - bk1), fund),
        ev(2, ADL_FILL, 3, 1, -2.0, bk1, 0.0, 2 * gap, 90.0 + 2 * (120.0 - bk1) + 180.0, fund),
        ev(2, ADL_LIQ, 1, BOOK_ID, 5.0, bk1, 0.0, 225.0 - col1, 0.0, fund),
        ev(3, ADL_FILL, 3, 2, -4.0, 65.0, 0.0, 20.0, 170.78375 + 220.0, fund),
        ev(3, ADL_LIQ, 2, BOOK_ID, 4.0, 65.0, 0.0, 20.0, 0.0, fund),
    ])
    s = raw.scalars
    assert s["fund_final"] == approx(23.915625) and s["bad_debt"] == 0.0
    assert s["fund_pos"] == 0.0 and s["vault_pos"] == 0.0
    assert raw.collateral.tolist() == approx([0.0, 0.0, 0.0, 390.78375, 136.175625])
    assert raw.size.tolist() == approx([0.0] * 5)
    assert raw.status.tolist() == [Status.CLOSED] * 5
    check_invariants(raw, sc, params)


# ----------------------------------------------------------------------------------- drift
DRIFT_PRICES = [100.0, 105.0, 105.0, 105.0, 70.0, 70.0]


def _drift_run():
    design = preset("drift").with_overrides({"margin": {"floors": [0.0], "rates": [0.05]}})
    assert design.liquidation.partial_fraction == 0.25 and design.liquidation.partial_threshold == 0.0
    assert design.adl.policy == "socialize" and design.mark.method == "stream"
    params = design.engine_params(INFINITE, 1.0)
    sc = scenario(DRIFT_PRICES, [
        (60.0, -8.0, 100.0),    # 0: short, three 25% steps at t=1..3
        (24.0, 4.0, 100.0),     # 1: long, bankrupt at t=4: closed whole, the deficit socialized
        (20.0, -1.625, 100.0),  # 2: short, pays its share
        (100.0, 1.0, 100.0),    # 3: long, healthy, pays its share too
    ], stream=DRIFT_PRICES)
    return sc, params, run_both(sc, params)


def test_drift_quarter_steps_and_socialized_loss():
    """Drift: 25% of the position per liquidation step (one per tick) while the account is
    solvent; a bankrupt account is closed whole, and the deficit left after the (empty) fund is
    charged to every open position by size: one SOCIALIZED_LOSS row per deficit, each account's
    share in ``raw.socialized``."""
    sc, params, raw = _drift_run()
    # MM = 5% N; mark = the oracle stream = tape; no fee, no fund.
    # t=1..3, M=105. Account 0 (short 8 @ 100, 60): E = 60 - 40 = 20 < MM 42 -> buy back 25%
    # = 2 at 105 (realized -10, collateral 50). Equity stays 20 (closing at mark); MM 31.5.
    # t=2: still 20 < 31.5 -> 1.5 (realized -7.5, 42.5); MM 23.625. t=3: 20 < 23.625 -> 1.125
    # (realized -5.625, 36.875); MM 0.05 x 3.375 x 105 = 17.72 <= 20: done.
    # t=4, M=70. Account 1 (long 4 @ 100, 24): E = 24 - 120 = -96 < 0: a bankrupt account gets
    # no partial step: all 4 sold at 70, realized -120 -> collateral -96. The empty fund pays
    # nothing; 96 is socialized over the ACTIVE positions 3.375 + 1.625 + 1 = 6 (account 1,
    # being liquidated, is not one of them): 16 a unit -> account 0 pays 54, account 2 26,
    # account 3 16, each below its equity at 70 (138.125, 68.75 and 70).
    # t=5, M=70: account 0 E = -17.125 + 101.25 = 84.125 >= MM 11.81; account 2 E = -6 + 48.75
    # = 42.75 >= 5.69; account 3 E = 84 - 30 = 54 >= 3.5: nothing crosses.
    expected = [
        ev(1, PARTIAL, 0, BOOK_ID, -2.0, 105.0, 0.0, -10.0, 20.0),
        ev(2, PARTIAL, 0, BOOK_ID, -1.5, 105.0, 0.0, -7.5, 20.0),
        ev(3, PARTIAL, 0, BOOK_ID, -1.125, 105.0, 0.0, -5.625, 20.0),
        # right after the fill the account is flat with collateral -96
        ev(4, LIQ, 1, BOOK_ID, 4.0, 70.0, 0.0, -120.0, -96.0),
        # the market covers all 96: collateral back to 0
        ev(4, SOCIALIZED, 1, MARKET_ID, 0.0, 0.0, 0.0, 96.0, 0.0),
    ]
    assert_log(raw, expected)
    assert raw.socialized.tolist() == approx([54.0, 0.0, 26.0, 16.0])
    assert raw.collateral.tolist() == approx([36.875 - 54.0, 0.0, 20.0 - 26.0, 100.0 - 16.0])
    assert raw.size.tolist() == approx([-3.375, 0.0, -1.625, 1.0])
    assert raw.status.tolist() == [Status.ACTIVE, Status.CLOSED, Status.ACTIVE, Status.ACTIVE]
    s = raw.scalars
    assert s["fund_final"] == 0.0 and s["bad_debt"] == 0.0
    check_invariants(raw, sc, params)


def test_drift_socialized_loss_row_reports_equity_after_the_charge():
    _, _, raw = _drift_run()
    rows = [e for e in events(raw) if e["kind"] == SOCIALIZED]
    # t=4: collateral 0 after the 96 is socialized, and the account is flat -> 0
    assert [r["equity_after"] for r in rows] == approx([0.0])
