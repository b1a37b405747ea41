"""Venue designs: the rulebook of a venue as data.

A :class:`VenueDesign` names each mechanism — margin tiers, mark method, liquidation policy,
insurance fund, backstop vault, ADL policy, fees and limits — in user units (seconds, rates,
quote currency). :meth:`VenueDesign.engine_params` resolves it, with a liquidity model, into
the numbers the engines consume. Documented presets (Binance, Hyperliquid, ...) are built on
this class; ``dataclasses.replace`` makes a variant that changes one mechanism.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from riskengine.codes import AdlPolicy, AdlPrice, AdlRanking, MarkMethod
from riskengine.liquidity import ConstantDepth
from riskengine.params import EngineParams

NS = 1_000_000_000


def _code(enum, value, name: str) -> int:
    if isinstance(value, enum):
        return int(value)
    if isinstance(value, str):
        key = value.strip().upper().replace("-", "_")
        if key in enum.__members__:
            return int(enum[key])
        raise ValueError(
            f"{name}: expected one of {', '.join(m.name.lower().replace('_', '-') for m in enum)} (got {value!r})"
        )
    raise ValueError(f"{name}: expected a name (got {value!r})")


def _ns(seconds: float) -> int:
    return int(round(float(seconds) * NS))


#: EngineParams field -> the VenueDesign field it comes from (for error messages)
_DESIGN_FIELD = {
    "mark_ema_tau_ns": "mark_ema_s", "liq_fee_rate": "liquidation_fee",
    "partial_cooldown_ns": "partial_cooldown_s", "max_liqs_per_step": "max_liquidations_per_step",
    "latency_ns": "latency_s", "fund_initial": "insurance_fund", "vault_initial": "vault_balance",
    "vault_unwind_interval_ns": "vault_unwind_interval_s", "adl_policy": "adl",
    "adl_rank_interval_ns": "adl_rank_interval_s",
}
#: VenueDesign fields in seconds: (allow zero)
_SECONDS = {"mark_ema_s": False, "partial_cooldown_s": True, "latency_s": True,
            "vault_unwind_interval_s": False, "adl_rank_interval_s": True}


@dataclass(frozen=True)
class VenueDesign:
    """One venue design.

    Parameters
    ----------
    name : str
        Label used in result tables.
    mm_floors, mm_rates : tuple of float
        Maintenance-margin tiers: notional floor (first 0) and rate of each tier; the
        maintenance deductions are derived so the schedule is continuous.
    mark : str
        ``last``, ``ema``, ``stream`` or ``index-ema-basis``.
    mark_ema_s : float
        EMA time constant in seconds (Hyperliquid: 150).
    liquidation_fee : float
        Fee rate on liquidated notional paid into the insurance fund (capped at the margin left).
    partial_fraction, partial_threshold, partial_cooldown_s : float
        Liquidate only this fraction when the notional is above the threshold, then liquidate
        fully during the cooldown (Hyperliquid: 0.2, 100,000 USDC, 30 s). 1 = always full.
    max_liquidations_per_step : int
        Cap on liquidations processed per tape tick (0 = unlimited).
    latency_s : float
        Delay between the trigger and the liquidation order.
    insurance_fund : float
        Insurance-fund balance at the start.
    backstop_ratio : float
        The vault takes over accounts whose equity is below this share of maintenance margin
        (Hyperliquid: 2/3); 0 = no backstop.
    vault_balance, vault_unwind_interval_s, vault_unwind_fraction, vault_loss_limit : float
        Backstop vault start balance, how often and how much of its inventory it sells, and
        the loss beyond which its inventory is auto-deleveraged (inf = never).
    adl : str
        ``queue``, ``pro-rata`` or ``none``.
    adl_ranking : str
        ``pnl-leverage`` (BitMEX/Bybit), ``hl-index`` (Hyperliquid) or
        ``binance-leverage-pnl``.
    adl_price : str
        ``bankruptcy`` or ``mark``.
    adl_on_negative_equity : bool
        Deleverage an account whose equity is already negative instead of sending it to the book
        (Hyperliquid).
    adl_short_mark_over_entry : bool
        Hyperliquid index for shorts as written (mark/entry) rather than side-adjusted.
    adl_rank_interval_s : float
        The ADL queue is ranked at most this often (tape time) and consumed in between, as
        venues publish periodic ADL rankings (Binance: every 30 s). 0 re-ranks before every
        ADL order (exact, but O(accounts) per order).
    """

    name: str
    mm_floors: tuple[float, ...] = (0.0,)
    mm_rates: tuple[float, ...] = (0.005,)
    mark: str = "last"
    mark_ema_s: float = 150.0
    liquidation_fee: float = 0.0
    partial_fraction: float = 1.0
    partial_threshold: float = math.inf
    partial_cooldown_s: float = 0.0
    max_liquidations_per_step: int = 0
    latency_s: float = 0.0
    insurance_fund: float = 0.0
    backstop_ratio: float = 0.0
    vault_balance: float = 0.0
    vault_unwind_interval_s: float = 10.0
    vault_unwind_fraction: float = 0.25
    vault_loss_limit: float = math.inf
    adl: str = "queue"
    adl_ranking: str = "pnl-leverage"
    adl_price: str = "bankruptcy"
    adl_on_negative_equity: bool = False
    adl_short_mark_over_entry: bool = False
    adl_rank_interval_s: float = 1.0
    notes: str = field(default="", compare=False)

    def engine_params(self, liquidity: ConstantDepth | None = None,
                      series_interval_s: float = 1.0) -> EngineParams:
        """Resolve this design and a liquidity model into :class:`EngineParams`.

        Raises
        ------
        ValueError
            Naming the design, the field and what was expected.
        """
        liquidity = liquidity or ConstantDepth()
        prefix = f"venue design {self.name!r}: "
        for name, zero_ok in _SECONDS.items():
            value = getattr(self, name)
            ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
            if not ok or value < 0 or (value == 0 and not zero_ok):
                expected = "a finite number of seconds >= 0" if zero_ok else "a finite number of seconds > 0"
                raise ValueError(f"{prefix}{name}: expected {expected} (got {value!r})")
        count = self.max_liquidations_per_step
        if isinstance(count, bool) or not isinstance(count, int) and not (isinstance(count, float) and count.is_integer()):
            raise ValueError(f"{prefix}max_liquidations_per_step: expected a whole number (got {count!r})")
        try:
            return EngineParams(
                mm_floors=self.mm_floors,
                mm_rates=self.mm_rates,
                mark_method=_code(MarkMethod, self.mark, "mark"),
                mark_ema_tau_ns=float(self.mark_ema_s) * NS,
                liq_fee_rate=float(self.liquidation_fee),
                partial_fraction=float(self.partial_fraction),
                partial_threshold=float(self.partial_threshold),
                partial_cooldown_ns=_ns(self.partial_cooldown_s),
                max_liqs_per_step=int(self.max_liquidations_per_step),
                latency_ns=_ns(self.latency_s),
                fund_initial=float(self.insurance_fund),
                backstop_ratio=float(self.backstop_ratio),
                vault_initial=float(self.vault_balance),
                vault_unwind_interval_ns=_ns(self.vault_unwind_interval_s),
                vault_unwind_fraction=float(self.vault_unwind_fraction),
                vault_loss_limit=float(self.vault_loss_limit),
                adl_policy=_code(AdlPolicy, self.adl, "adl"),
                adl_ranking=_code(AdlRanking, self.adl_ranking, "adl_ranking"),
                adl_price=_code(AdlPrice, self.adl_price, "adl_price"),
                adl_on_negative_equity=bool(self.adl_on_negative_equity),
                adl_short_mark_over_entry=bool(self.adl_short_mark_over_entry),
                adl_rank_interval_ns=_ns(self.adl_rank_interval_s),
                series_interval_ns=max(1, _ns(series_interval_s)),
                **liquidity.engine_fields(),
            )
        except (TypeError, ValueError) as exc:
            message = str(exc)
            field_name = message.split(":", 1)[0]
            if field_name in _DESIGN_FIELD:
                message = _DESIGN_FIELD[field_name] + ":" + message.split(":", 1)[1]
            raise ValueError(prefix + message) from None
