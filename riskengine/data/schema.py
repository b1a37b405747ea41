"""The canonical tick schema (Arrow): one schema per kind of data, whatever the source.

Times are UTC nanoseconds; prices are quote currency per unit of base; sizes are base units
(contract counts are converted by the importer, e.g. COIN-M contracts of a fixed USD face).
"""

import math
import re

import pyarrow as pa

#: what every importer says of a number cell holding NaN or an infinity ("nan", "inf")
NOT_FINITE = "expected a finite number"


def shown(value: object) -> str:
    """A cell's value in an error message: a float that is not finite as the text that spells
    it (``'nan'``, ``'inf'``, ``'-inf'``: never mistaken for an empty cell), else its repr."""
    if isinstance(value, float) and not math.isfinite(value):
        return repr(str(value))
    return repr(value)


#: USD face value of one Binance COIN-M contract (../shared/data/README.md): BTC 100, the others 10
COINM_FACE_USD = {"BTCUSD_PERP": 100.0}
COINM_DEFAULT_FACE_USD = 10.0


def coinm_face(symbol: str) -> float | None:
    """USD face of a Binance COIN-M contract (``..USD_PERP``, ``..USD_YYMMDD``), else None
    (USD-M and spot sizes are already in base units)."""
    if re.fullmatch(r"[A-Z0-9]+USD_(PERP|\d{6})", symbol):
        return COINM_FACE_USD.get(symbol, COINM_DEFAULT_FACE_USD)
    return None


#: stablecoin and fiat quotes a symbol can end in, longest first (``USDT`` before ``USD``)
QUOTES = ("USDT", "USDC", "USD")
#: Hyperliquid perps are margined in USDC, their notionals and tiers counted in USDC
#: (../shared/reference/venue-mechanisms.md §2.1 [DOC S20])
HYPERLIQUID_QUOTE = "USDC"


def quote_currency(symbol: str | None, source: str | None = None) -> str | None:
    """The currency a symbol's prices are quoted in, hence the unit of every money figure of a
    replay of its tape: ``BTCUSDT``, ``BTC-USDT-SWAP`` -> USDT; ``BTCUSD``, ``BTC-USD``, the
    COIN-M ``BTCUSD_PERP`` (priced in USD) -> USD; any Hyperliquid coin -> USDC. None when the
    symbol does not tell (the money is then in "the quote currency").

    >>> quote_currency("ATOMUSD_PERP"), quote_currency("TRXUSDT"), quote_currency("BTC", "hyperliquid")
    ('USD', 'USDT', 'USDC')
    """
    if source == "hyperliquid":
        return HYPERLIQUID_QUOTE
    if not symbol:
        return None
    name = re.sub(r"([_-](PERP|SWAP|\d{6}))+$", "", symbol.upper())  # the contract suffix
    name = name.replace("-", "").replace("/", "").replace("_", "")
    return next((q for q in QUOTES if name.endswith(q) and len(name) > len(q)), None)


#: Trades: the market tape.
TRADES = pa.schema([
    pa.field("ts", pa.timestamp("ns", tz="UTC"), nullable=False),  # exchange time
    pa.field("price", pa.float64(), nullable=False),
    pa.field("qty", pa.float64(), nullable=False),  # base units
    pa.field("side", pa.int8(), nullable=False),  # taker side: +1 buy, -1 sell, 0 unknown
    pa.field("trade_id", pa.string(), nullable=True),
])

#: A price stream (index/oracle, mark, premium index): the value as of ``ts``.
STREAM = pa.schema([
    pa.field("ts", pa.timestamp("ns", tz="UTC"), nullable=False),
    pa.field("price", pa.float64(), nullable=False),
])

#: Depth snapshots: cumulative depth within ``pct`` percent of mid (negative: bids).
DEPTH = pa.schema([
    pa.field("ts", pa.timestamp("ns", tz="UTC"), nullable=False),
    pa.field("pct", pa.float64(), nullable=False),
    pa.field("depth", pa.float64(), nullable=False),  # base units
    pa.field("notional", pa.float64(), nullable=False),  # quote
])

#: Observed venue events: liquidation and ADL fills as the venue reported them.
EVENTS = pa.schema([
    pa.field("ts", pa.timestamp("ns", tz="UTC"), nullable=False),
    pa.field("kind", pa.string(), nullable=False),  # "liquidation" or "adl"
    pa.field("method", pa.string(), nullable=True),  # liquidation method: market, backstop
    pa.field("price", pa.float64(), nullable=False),
    pa.field("size", pa.float64(), nullable=False),  # base units, of the liquidated/ADL'd side
    pa.field("notional", pa.float64(), nullable=False),
    pa.field("user", pa.string(), nullable=True),  # the liquidated or ADL'd account
    pa.field("mark", pa.float64(), nullable=True),  # mark price the venue reported, if any
    pa.field("trade_id", pa.string(), nullable=True),
    pa.field("side", pa.int8(), nullable=True),  # side of the closing order: +1 buy, -1 sell
])

#: Venue ticker: mark, index/oracle, last price, funding and open interest as of ``ts``
#: (null where the source does not give a field). Open interest in base units.
TICKER = pa.schema([
    pa.field("ts", pa.timestamp("ns", tz="UTC"), nullable=False),
    pa.field("mark", pa.float64(), nullable=True),
    pa.field("index", pa.float64(), nullable=True),  # index / oracle price
    pa.field("last", pa.float64(), nullable=True),
    pa.field("funding_rate", pa.float64(), nullable=True),  # per funding interval, as a fraction
    pa.field("predicted_funding_rate", pa.float64(), nullable=True),
    pa.field("open_interest", pa.float64(), nullable=True),  # base units
])

#: Positioning metrics (Binance Vision ``metrics``): open interest and long/short ratios.
METRICS = pa.schema([
    pa.field("ts", pa.timestamp("ns", tz="UTC"), nullable=False),
    pa.field("open_interest", pa.float64(), nullable=True),  # base units
    pa.field("open_interest_value", pa.float64(), nullable=True),  # quote
    pa.field("top_trader_long_short_accounts", pa.float64(), nullable=True),
    pa.field("top_trader_long_short_positions", pa.float64(), nullable=True),
    pa.field("long_short_accounts", pa.float64(), nullable=True),
    pa.field("taker_long_short_volume", pa.float64(), nullable=True),
])

#: Funding rates: the rate paid at each funding time ``ts``, a fraction of notional per funding
#: interval (positive: longs pay shorts), the interval that time closes (hours: Binance switches
#: symbols between 8, 4 and 1) and the interval's average premium where the source gives it
#: (Hyperliquid). Read as a validated stream by :class:`riskengine.funding.FundingStream`.
FUNDING = pa.schema([
    pa.field("ts", pa.timestamp("ns", tz="UTC"), nullable=False),
    pa.field("rate", pa.float64(), nullable=False),
    pa.field("interval_hours", pa.float64(), nullable=False),
    pa.field("premium", pa.float64(), nullable=True),
])

#: kind -> schema; the stream kinds share one schema
KINDS = {"trades": TRADES, "klines": STREAM, "mark": STREAM, "index": STREAM, "premium": STREAM,
         "depth": DEPTH, "events": EVENTS, "ticker": TICKER, "metrics": METRICS, "funding": FUNDING}
