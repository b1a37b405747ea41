"""Plain-Python reference engine: the oracle the Cython engine is tested against.

It implements the engine's semantics the obvious way — every account is scanned at every
cascade round, nothing is indexed — and is slow on purpose. The Cython engine
(``cext/riskengine/_engine.pyx``) must produce the same event log on every scenario; the
property-based tests in ``tests/test_parity.py`` check that. The package mirrors
``cext/riskengine/`` module by module (see "Modules" at the end), and the tolerances that decide
a branch in both engines come from one place, :mod:`riskengine.tolerances`.

Semantics (this docstring is the specification both engines follow)
--------------------------------------------------------------------
Accounts hold collateral ``c``, one signed position ``q`` with entry price ``e`` on the
scenario's instrument, a margin mode and a status. Equity at mark ``M`` is
``E = c + q (M - e)``; maintenance margin is the tiered ``MM(|q| M)``. An account is
*crossing* when ``E < MM``. Besides the accounts there are three ledgers: the insurance fund
(cash plus any inventory it took over), the backstop vault (cash plus inventory) and the
external market (the order book's counterparties).

For each tape tick ``i`` at time ``t``:

1. **Price.** The depth book switches to the latest snapshot at or before ``t``; the transient
   impact multiplier ``m`` (and the stress flow) decay toward 1 (0) with the impact half-life;
   the simulated price is ``S = tape_price * m``. In a counterfactual replay ``tape_price`` is
   the tape with the observed liquidation flow's impact taken out (:func:`counterfactual_tape`).
2. **Mark.** The venue's method gives ``M`` (last = ``S``; EMA = time-weighted EMA of ``S``;
   stream = the supplied stream, ``S`` until it starts; index + EMA of ``S - index``; Binance's
   median(index, index + EMA basis, last); Hyperliquid's median(oracle + EMA basis, last,
   30 s EMA of last)). The mark before this update is the *previous mark*. If the fund
   drawdown trigger is set, the fund balance is sampled for its rolling peak.
3. **Cascade rounds.** Repeat: refresh ``S`` (and ``M`` where it follows ``S`` directly) and
   check the backstop vault's loss at the new mark (below); every
   ACTIVE account that crosses and was not partially liquidated at this tick becomes PENDING,
   due at ``t + latency``, appended in account-id order to one FIFO queue; then due entries
   are taken from the queue front, at most ``max_liqs_per_step`` per tick, re-checked (an
   account that no longer crosses becomes ACTIVE again) and liquidated. Stop when a round
   liquidates nothing or the cap is reached.
4. **Inventories.** Every ``vault_unwind_interval`` the backstop vault sells
   ``vault_unwind_fraction`` of its inventory into the book. The insurance fund offloads any
   inventory the same way every ``fund_unwind_interval``.
5. **Record** drawdowns and, at most once per ``series_interval``, a series sample.

Liquidating an account (the loss waterfall), first rule that applies:

* equity below zero and ``adl_on_negative_equity``: the whole position is auto-deleveraged;
* equity below ``backstop_ratio x MM`` while the vault is within its loss threshold (below): the
  vault takes the position at mark and the account's remaining equity (the maintenance margin is
  not returned);
* the fund-drawdown trigger is active (fund below ``1 - adl_fund_drawdown`` of its peak over
  ``adl_fund_window``): the whole position is auto-deleveraged instead of going to the book;
* otherwise a market order: the whole position, or a partial order — a fraction above a
  notional threshold outside the cooldown while the account is solvent (and leaving at least
  the dust notional), or just enough to step the notional down into a lower margin tier where
  the account is healthy — capped at ``liq_max_order_notional`` at mark (the venue's largest
  market order; a capped order is partial: the rest waits for the next tick, without the
  partial-liquidation cooldown) — walking the depth curve from ``S`` (:class:`Book`: sells walk the
  bids, buys the asks, thinned by recent flow under stress; a wall at ``tape x (1 +/- max_move)``;
  ``feedback`` of the move persists in ``m``).

  - Unlimited order: if its fill would leave a deficit larger than the fund's cash, the book
    cannot liquidate the account successfully, so the vault takes the whole position over as
    above when the venue has a backstop within its loss threshold (Hyperliquid [DOC S21]: the
    vault steps in "without successful book liquidation"), else the order is auto-deleveraged;
    otherwise it fills, the liquidation fee (capped at the
    collateral left; all of it with ``liq_surplus_to_fund`` once the position is closed) goes
    to the fund, and the fund pays any deficit.
  - Limited order (at the bankruptcy price and/or within a price band around the mark): it
    fills only as far as the limit. The rest is taken over by the insurance fund at the
    bankruptcy price when the venue does that and the fund can carry it (its inventory within
    ``fund_capacity`` x its equity, its equity not negative, both after paying the deficit the
    takeover can leave: a partial order's share of negative collateral); otherwise it is
    auto-deleveraged, or, without ADL, sent to the book unlimited. The fee is charged on the
    whole liquidated notional, capped at the collateral left.

The backstop vault's loss threshold. The vault's loss is its start balance minus its equity at
the mark; ``vault_loss_limit`` is the loss it may carry (the venue layer sets it to a share of the
balance, ``Backstop.loss_limit_share``). The loss is checked whenever the vault's equity
changes: after every takeover, after every unwind, and at every re-mark (each cascade round,
after the mark is refreshed, before the scan). Once the loss passes the threshold (equity below
``vault_initial - vault_loss_limit``) while the vault holds inventory, the whole inventory is
auto-deleveraged at once, so the loss passes the threshold by no more than the takeover, unwind
or price move that crossed it — plus, when the opposite side cannot absorb the whole inventory,
the slippage of selling the rest to the book (as for an account's ADL order). A vault beyond its
threshold takes nothing over: an account that would go to it is liquidated as on a venue without
a backstop (a market order; one the book cannot close without a deficit the fund cannot pay is
auto-deleveraged). Without ADL (``NONE``, ``SOCIALIZE``) the vault keeps its inventory and keeps
unwinding it, and takes over again once its loss is back within the threshold. ``vault_min``
is the lowest vault equity at any of these checks.

Auto-deleveraging closes the order against opposite-side accounts in profit at mark, at the
bankruptcy price of the liquidated account, the mark or the previous mark. The policy decides
how much each absorbs: a queue by score (ties by account id, ranked at most once per
``adl_rank_interval`` and consumed in between), or a capped allocation by weight (size,
positive equity, positive PnL, notional, notional x leverage^p) or water-filling on leverage.
A fill never takes an ADL'd account's equity below zero; what the opposite side cannot absorb
goes to the book. The haircut of a fill is what the account gives up against the mark; the
deficit an ADL order covers is the liquidated side's shortfall at mark on the closed size, and
the order's overshoot is its fills' haircut beyond that deficit (summed over orders in the
``adl_overshoot`` scalar; ``adl_fills`` counts the fills, one per winner per order).

Logging ADL fills. The queue logs every fill as one ADL_FILL row, just before its order's
ADL_LIQUIDATION row. The weighted policies and water-filling fill *every* winner on every
order, so k orders against m winners would log k x m fills (on the default scenario with 100k
accounts and no backstop vault: 457M rows, 42 GB, and the OOM killer). They log at most one row
per winner per series interval of tape time instead — interval ``k`` holds the ticks with
``k = (t - t0) // series_interval_ns``, the resolution of the sampled series (by default a
2,000th of the tape), so rows <= winners x intervals with ADL. A winner's first fill in an
interval writes its row, and each later fill in the same interval is added to that row: size,
notional and haircut summed, price the volume-weighted price (notional / |size|), equity and
fund balance as after the latest fill, counterparty the liquidated account, or
``ADL_ORDERS_ID`` once fills from several orders are in the row; ts, tick and round stay those
of the first fill. (With an interval shorter than the tick spacing this is one row per winner
per tick.) The account state changes fill by fill, exactly as unmerged, and sums over rows (ADL
notional, haircuts per account, distinct accounts, first ADL time) are unchanged; what the rows
no longer show — fills per order — the two scalars keep.

Lazy pro-rata bursts (issue 14, ``docs/design/weighted-adl.md``). Pro-rata by size and levered
pro-rata (by notional: size x one mark) scale every winner by one factor ``1 - tau`` per
uncapped order, and pro-rata by equity every winner's equity by ``1 - tau d`` (closing ``d``
worse than the mark), so the orders of one cascade round against one side of one instrument — a
burst — are applied to each winner once, where no margin account holds several positions: the
burst gathers its winners at its first order (and opens each one's row there, where its first
fill would), keeps per unit of each winner's starting size the factor and the sums of size
closed, notional, haircut and equity change, and moves the counters, open interest and order
haircut per order; it is flushed — each winner's position, wallet and row take the sums — at
the end of the round, before the scan, before a pending account on the winners' side of the
instrument is processed, and when an order comes for another instrument, side or mark. An
order that would cap a winner (found from the least equity per unit of size, or by equity the
least size per unit of equity, which every uncapped order maps by one increasing function)
flushes the burst
and is split at once, as is the rest of the round. The split is the same as order by order;
its floating-point sums are associated differently (``LAZY_BURSTS = False`` in ``_engine.py``
splits every order at once: the recorded canonical logs).

A deficit left after the fund is socialized over every open position in proportion to its
size (never below zero equity) under the ``SOCIALIZE`` policy — one event per deficit, each
account's share in ``RawRun.socialized``; what nobody covers is bad debt.

All money moves conserve ``sum(c - q e) + fund + vault + external market - bad debt``, and every
closed size has a counterparty: the book (the external market), the fund, the vault or an
ADL'd account.

Portfolios (issue 12, step 1)
-----------------------------
:func:`run_portfolio` replays several instruments ``k = 0..I-1`` at once; everything above is
the rule for one margin account on its instrument, and :func:`run_reference` is the run with
one instrument and margin account ``a`` = account ``a`` (its results are exactly the
single-instrument results, plus the ``instrument`` columns, all 0, and ``by_instrument``).

*Inputs.* The **merged tape**: ``ts`` (int64), ``inst`` (int32, the instrument the tick moves),
``price`` and ``stream`` (that instrument's tape price and stream value as of the tick, NaN where
it has none yet), merged by time with equal times in instrument order, then each tape's own order;
the engine processes ticks in the order given. **Margin accounts** ``m = 0..M-1`` in CSR form:
``owner[m]`` (the user account, the id events show), ``collateral[m]`` (a cross wallet or an
isolated position's margin), positions ``start[m]:start[m+1]`` with ``instrument``, ``size``,
``entry``. Step 1: at most one position per margin account (step 2 below lifts this for cross
accounts; a user's isolated positions are
margin accounts of their own sharing its ``owner``); no user holds one instrument twice; a margin
account without a position is FLAT for the whole run. **Parameters**: one ``EngineParams`` per
instrument; ``riskengine.engine_inputs.PER_INSTRUMENT_FIELDS`` (margin tiers, liquidity model
and book, observed flow, ``liq_max_order_notional``, ``liq_price_band``) are the instrument's,
every other field is the venue design's and must be equal in every entry. Violations are one
``ValueError`` line (``riskengine.engine_inputs``, which both engines call).

*State.* Per instrument ``k``: its parameters, mark state ``M_k`` and previous mark, tape price,
book (snapshot cursor, impact ``m_k``, stress flow and ``book_t_k``, the time it was last
brought to), the time of its last mark update, its margin accounts (those with a position in
``k``, by index), long/short open interest, external position and cash, ADL ranking snapshots per
side, drawdown trackers and counters (liquidations, liquidated notional, ADL fills and
notional). Ledgers (step 3, below): each fund's and each vault's cash, inventory per instrument
(size, entry) and unwind schedule, each fund's rolling peaks. Shared: the pending queue (one
FIFO), the cumulative counters, bad debt, the ADL overshoot and merged fill rows, the event log
and the series. A ledger's equity is its cash plus its inventory in each of its instruments at
that instrument's mark, summed in instrument order. Before its first tick an instrument has no mark (``M_k = 0``): its
margin accounts are not scanned and it has no ledger inventory.

*Tick* ``i`` (instrument ``k = inst[i]``, time ``t``):

1. Price: at ``k``'s first tick ``book_t_k`` and the mark time are set to ``t``. The tape price
   is ``price[i]``, in a counterfactual replay with ``k``'s observed flow taken out of ``k``'s own
   ticks (:func:`counterfactual_tape` on the subsequence of ``k``'s ticks). Book ``k`` is
   *brought to* ``t``: ``seek(t)``, ``decay(t - book_t_k)``, ``book_t_k = t``. ``S_k = tape_k m_k``.
2. Mark: ``M_k = mark_update(S_k, stream[i], dt)`` with ``dt = t -`` the time of ``k``'s previous
   mark update (0 at its first tick, where its previous mark becomes ``M_k`` too). Other marks do
   not change. Each fund's peak is sampled, in ledger order (when the drawdown trigger is set).
3. Cascade rounds as above. At every round, before the vault's check and the scan, the mark of
   every instrument that has ticked is refreshed from its ``S_j`` (:func:`mark_refresh`), so a
   mark follows the orders (and inventory unwinds) that moved its book at earlier ticks too.
   With one instrument this is the rule above: at round 0 the refresh follows the mark update
   and changes nothing. A refresh of a mark whose ``S_j`` has not moved since the mark was last
   computed gives the same mark to the bit, so an implementation may refresh only instruments
   flagged when their book moved. The scan takes every ACTIVE margin account of every instrument that has ticked, not
   partially liquidated at this tick, crossing at its instrument's mark with its instrument's
   tiers, in margin-account index order. A liquidation of a position in ``j`` uses ``j``'s mark,
   previous mark, tiers, simulated and tape price, book and order limits; the vault or fund takes
   it into its inventory in ``j``; its ADL closes against margin accounts in ``j`` only.
   **Lazy books**: before an order reads book ``j`` at time ``t`` (a market order's walk, the
   fillable size under a limit, an inventory unwind, the rest of an ADL order sent to the book),
   book ``j`` is brought to ``t`` (bringing it to the time it is at changes nothing). Nothing
   else moves ``m_j``: between its ticks and orders it stays as of ``book_t_j`` (series rows and
   mark refreshes read it so); decayed in one step it equals the step-by-step decay to rounding.
4. Inventories: each vault in ledger order, once it holds inventory in any of its instruments
   and ``t`` reaches its unwind time, unwinds ``vault_unwind_fraction`` of each of its
   inventories (instrument order; the dust rule at ``S_j``), its loss checked after each; then
   its next unwind time is ``t`` plus the interval. Then each fund likewise (the funds' minimum
   noted after each). A ledger's first unwind time is set when it takes inventory while holding
   none in any of its instruments.
5. Every instrument's previous mark becomes its mark; ``k``'s drawdowns are updated; a series
   sample (decided by ``t`` as above) writes one row per instrument in instrument order:
   ``instrument``, its tape price, ``S_j`` and mark (NaN before its first tick) and open
   interest, the cash of its fund and the equity of its vault; the cumulative counters shared.

*Ledgers and the waterfall across instruments (step 3: shared funds and vaults).* Instrument
``k`` draws on fund ``fund_group[k]`` and vault ``vault_group[k]`` (``EngineParams`` fields, per
instrument; ledgers ``0..G-1`` numbered in the order of their first instrument,
:func:`riskengine.engine_inputs.ledger_groups`; the venue layer derives them from
``fund.shared`` and ``backstop.shared``: one ledger for every instrument, one each, or groups of
symbols). Every ledger starts with the design's balance (``fund_initial``, ``vault_initial``) and
has the design's loss threshold, capacity and unwind settings of its own; a ledger's instruments
are those that draw on it, and "its equity", "its inventory" below are over them only. With one
fund and one vault (the default) every instrument draws on both: this is step 1's rule.
A vault's loss check uses its whole equity (at every round while it holds inventory in any of
its instruments, vaults in ledger order, and after each of its takeovers and unwinds); beyond
its threshold it auto-deleverages its inventory in each of its instruments (instrument order,
each an ADL order in that instrument), and while beyond it takes nothing over: a position in one
of its instruments is liquidated as on a venue without a backstop (another vault's state does
not matter for a one-position account; a cross account with several positions, whose backstop
hands each position to its instrument's vault, needs every one of those vaults within its
threshold: step 2, rule 5). ``vault_min`` is the lowest sum of every vault's equity (ledger order) at these
checks, noted before and after the deleveraging. The fund of ``j`` can take ``dq`` of ``j`` at
``price`` after paying ``deficit`` when ``value = cash + sum_k inv_k (M_k - e_k) + dq (M_j -
price) - deficit >= 0`` and ``sum_k |inv_k'| M_k <= fund_capacity x value`` with ``inv_j' = inv_j
+ dq`` (sums over its instruments, in instrument order). A position's fee, its deficit payment
and a fund takeover go to or from the cash of its instrument's fund; a backstop's handed-over
equity to its instrument's vault (a cross account's: that of the position the liquidation chose); a deficit is "larger than the fund" when larger than that
fund's cash. The fund-drawdown trigger watches the fund of the liquidated position's instrument
(its own rolling peak). ``fund_min`` is the lowest sum of every fund's cash (ledger order),
noted where a fund's cash falls (payments, unwinds, a takeover netted against its own opposite
inventory). A ledger's ADL price at bankruptcy and its
order's shortfall use its whole cash against its inventory in the order's instrument.
ADL candidates of an order in ``j`` are the margin accounts in ``j``, scored with ``j``'s
parameters at ``M_j``, ties by margin-account index; queue snapshots are per instrument and side.
Weighted policies merge fill rows per winning margin account and series interval, intervals
counted from the merged tape's first tick. ``SOCIALIZE`` charges the open positions of the
deficit's instrument only.

*Outputs.* Events (``riskengine.runlog.EVENT_COLUMNS``): ``account`` is the margin
account's ``owner`` (or the vault's or fund's id), ``instrument`` the instrument of the position
or inventory the row is about (a fund payment, bad debt or socialized loss: the liquidated
position's; an ADL fill: the winner's, the order's instrument), ``counterparty`` the other margin
account's ``owner`` or a negative id; ``fund_after`` the cash of the fund the row's instrument
draws on. A ledger's rows keep the vault's and the fund's ids (which vault or fund: the row's
``instrument`` and ``by_instrument``'s ``vault_group`` / ``fund_group``). Series: ``SERIES_COLUMNS``. Final collateral,
size, entry, status and socialized share per margin account. Scalars as above, instrument 0's
value where a figure is per instrument (``final_mark``, ``final_sim_price``, ``tape_*``,
``sim_*``, ``fund_pos``, ``fund_entry``, ``vault_pos``, ``vault_entry``, ``ext_pos``,
``ext_cash``; ``fund_final`` and ``vault_col`` are the cash, summed over every fund and vault in
ledger order); ``by_instrument``
(``riskengine.runlog.BY_INSTRUMENT``) holds each per-instrument figure as an array of length
``I``, with the instrument's ``fund_group`` and ``vault_group``. Money is conserved across instruments and positions per instrument
(``riskengine.invariants.portfolio_violations``). ``max_events`` > 0 is a budget of event rows:
one more raises ``MemoryError``.

Portfolios, step 2 (issue 12): cross accounts with several positions
--------------------------------------------------------------------
Step 2 lifts step 1's limit for CROSS margin accounts; an isolated position stays a margin
account of its own with exactly one position.

1. *Positions.* A cross margin account ``m`` holds positions ``start[m]:start[m+1]``, each in a
   different instrument. For a position ``j`` of it, ``q_j``, ``e_j`` are its size and entry and
   ``M_j`` its instrument's mark.
2. *Account figures* at the current marks: ``E = c + sum_j q_j (M_j - e_j)`` and
   ``MM = sum_j MM_j(|q_j| M_j)`` with instrument ``j``'s tiers, summed in position (CSR) order:
   ``E`` starts at ``c`` and adds each ``U_j = q_j (M_j - e_j)``, ``MM`` starts at 0.0 and adds
   each ``MM_j``. For position ``j`` the *rest of the account* is ``W_j = c + O_j`` with ``O_j``
   the other positions' ``U_i`` summed from 0.0 in position order (skipping ``j``); ``MMo_j`` is
   likewise the other positions' MM. With one position ``W_j = c`` and ``MMo_j = 0``, so every
   single-position figure is computed exactly as before.
   A position in an instrument that has not ticked yet is valued at its entry (PnL 0, MM at
   ``|q| e``) wherever a figure needs it (ADL ranking, weights, vault takeover); an account is
   *scanned* only once every instrument it holds has ticked (step 1's rule), so single-position
   results do not change.
3. *Trigger*: the account crosses when ``E < MM`` (the ``crosses`` test and tolerance, on the
   account's sums): Hyperliquid [DOC S21] "account equity (cross) < maintenance margin"
   (reference §2.4); Binance [DOC S2, S14] margin balance < maintenance margin (§1.2, §1.4).
4. *Which position.* A crossing account is liquidated ONE position per liquidation, chosen by
   the design setting ``liquidation.cross_order`` (``EngineParams.cross_order``,
   :class:`riskengine.codes.CrossOrder`; venues do not document an order, so it is a named
   setting): ``notional`` (default) the largest notional ``|q_j| M_j`` first, ``loss`` the most
   negative unrealized PnL ``q_j (M_j - e_j)`` first; ties: the lowest position index. The
   account then stays ACTIVE while it holds positions and is found again by the next cascade
   round's scan (with latency, as any account). Closing a whole position is not a partial
   liquidation; a partial order of a position marks the account "partially liquidated at this
   tick" as for one position.
5. *Route* of the chosen position ``j`` with the ACCOUNT's ``E`` and ``MM``, first rule that
   applies (the single-position waterfall's order):

   - ``E < 0`` and ``adl_on_negative_equity``: ``j`` is auto-deleveraged whole at its bankruptcy
     price ``p_bk,j = M_j - E / q_j`` (the price of ``j`` at which account equity is 0, the
     others at their marks), computed as ``e_j - W_j / q_j`` (step 1's ``bankruptcy_price`` with
     ``W_j`` for the collateral; the same number up to rounding);
   - ``E < backstop_ratio x MM`` and the vaults within their thresholds: the vaults take over
     ALL the account's positions at their marks and its remaining equity, the maintenance margin
     not returned (Hyperliquid [DOC S21], reference §2.4: "cross -> all cross positions and
     cross margin transferred"); one takeover event per position, in position order. With funds
     and vaults shared by groups (step 3) each position goes to the vault of its instrument, and
     the takeover needs every vault the account's open positions draw on within its threshold (a
     vault beyond it takes nothing over); *chosen* (venues have one backstop, so nothing is
     documented): the remaining equity ``E`` goes to the vault of ``j``'s instrument. Order: each
     of those vaults holding no inventory in any of its instruments starts its unwind clock;
     each open position is taken into its vault's inventory at its mark (position order); the
     cash of ``j``'s vault gains ``E``; each position is closed in the account at its mark
     (realized PnL into the wallet), one BACKSTOP event each (``amount`` = ``E`` on the first, 0
     on the others, ``equity_after`` 0); the wallet is set to 0; then the loss of each vault that
     took a position is checked, in ledger order (with one vault: once). The same takeover of
     the whole account happens, when the vaults may take it, if an unlimited order on ``j`` would
     leave a deficit larger than the cash of the fund of ``j``'s instrument (step 1's rule);
   - the fund-drawdown trigger of the fund of ``j``'s instrument active: ``j`` auto-deleveraged
     whole;
   - otherwise a market order on ``j``: the partial rules on ``j``'s notional, the order cap and
     price band of ``j``'s instrument, limited at ``p_bk,j`` where the venue limits orders at
     bankruptcy (Binance [DOC S2]: the bankruptcy price of the account, §1.4).
6. *Money after an order on j.* Realized PnL and fees go to the wallet ``c``. The order's deficit
   is ``max(0, -E_after)``, ``E_after`` the account equity at marks after the fill (``= c`` when
   no position is left, as in step 1); the fund of ``j``'s instrument pays it into the wallet
   (and the fee goes to that fund: step 3's ledgers are those of the position's instrument). The liquidation fee is
   capped at ``max(0, E_after)``. The "unlimited order would leave a deficit larger than the
   fund's cash" test uses the same deficit. *Chosen:* ``E_after`` is ``W_j`` after the fill:
   the account's equity at marks once ``j`` is closed whole; after a partial order ``j``'s
   remaining part is not counted, as step 1 counted only the collateral after a partial order
   (so single-instrument logs do not change). Wherever step 1 read the collateral of the
   liquidated position it reads ``W_j``: the test for a deficit (``W_j < 0``, after every order,
   ADL order or fund takeover on ``j``), the fee cap, the share of negative collateral a partial
   fund takeover leaves (``-W_j`` times the share of ``j`` left), an ADL order's shortfall
   (``-(W_j |closed| / |q_j| + closed (M_j - e_j))``) and the limit at ``p_bk,j``. Settling sets
   the wallet so that ``W_j`` is what the collateral was in step 1: ``-rest - O_j`` after a
   socialized loss, ``0.0 - O_j`` once the deficit is paid or written off. With
   ``liq_surplus_to_fund`` the whole of ``W_j`` goes to the fund once the account holds no
   position at all. The partial rules' "healthy" test of a tier step of ``j`` to notional
   ``N'`` is ``E >= MMo_j + MM_j(N')``; "solvent" is ``E >= 0``.
7. *Cooldown per user.* Hyperliquid [DOC S21, S35] (reference §2.4): "after a block in which any
   of the user's positions is partially liquidated there is a 30 s cooldown; during the cooldown
   all market liquidation orders for that user are for the entire position". The cooldown is
   keyed by the user (``owner``), shared by the user's cross account and isolated margin accounts.
8. *ADL* stays per instrument: an order in ``j`` closes against opposite-side positions in ``j``
   in profit at mark (the position's PnL > 0). Every figure that is the account's on the venue is
   the margin account's: equity / account value, wallet balance, maintenance margin (Binance
   LeveragePnl [DOC S2, S27], reference §1.6: ``PnlPercent = max(0, U_j) / max(1, WB)``,
   ``MarginRatio = MM_account / (WB + U_account)``; Hyperliquid [DOC S38], §2.5:
   ``(mark/entry) x (notional_j / account value)``); size, notional, entry and PnL are the
   position's. Weights by "positive equity" use the account's equity. A fill never takes the
   ADL'd account's equity below zero (the cap uses account equity). ``SOCIALIZE`` charges the
   open positions of the deficit's instrument in proportion to size, never below zero account
   equity. Hyperliquid [DOC S38]: "a user with no open positions never socializes losses".
   The ADL candidates are positions (``members`` of the instrument are position slots); a
   winner's row of merged fills is per position (user and instrument); a winner's margin
   account becomes CLOSED once it holds no position.
9. *Outputs.* ``RawRun`` gains the final positions (``positions_size``, ``positions_entry``, one
   entry per position, CSR order); the margin-account arrays keep collateral and status, and
   ``size`` / ``entry`` hold each margin account's first position (0 without one).
   ``riskengine.invariants.portfolio_violations`` takes the positions in CSR form (``start=``).
   Single-instrument runs log exactly the events they logged before.

Funding (issue 13)
------------------
A run may carry funding payments: a time ``T``, an instrument ``k`` and a rate ``r`` each,
sorted by time, then instrument (``riskengine.engine_inputs.check_funding``). Perpetual funding
is a payment between longs and shorts of ``position value x funding rate`` at each funding time,
a long paying a positive rate (Binance [DOC S2], "Funding"; Hyperliquid [DOC S32], hourly, on
the oracle... the engine pays at the mark, the value its other rules use):

1. *When.* Before the first tape tick later than ``T`` (with its ``tick`` and ``ts`` in the
   event log), so at the marks of the ticks at or before ``T``; several due payments in their
   order. A payment at or after the last tick is not made (no later tick); one in an instrument
   that has not ticked yet pays nothing (it has no mark).
2. *Who pays what.* Every open position ``s`` in ``k``, in position order, then the vault's and
   the fund's inventories in ``k``: ``pay = q_s M r``, taken from its cash (its margin
   account's wallet or isolated margin; a ledger's cash), which may go negative (the scan of
   that tick finds an account the payment left below its maintenance margin). A payment by the
   fund's inventory notes the funds' lowest cash.
3. *Zero-sum.* The modelled positions need not balance (a population is a sample of the
   market, and liquidations on the book hand positions to the outside): the rest of the market,
   which holds ``ext_pos`` (the opposite of every modelled position), pays or receives the net
   ``sum pay``, credited to the instrument's ``ext_cash``. Money is conserved as before.
4. *Outputs.* One FUNDING row per payment made (account MARKET_ID, counterparty BOOK_ID,
   ``size`` the modelled positions' net size, ``price`` the mark, ``amount`` the net paid to the
   rest of the market, ``fee`` and ``equity_after`` 0). ``funding_paid`` per instrument
   (``by_instrument``) and summed over instruments in instrument order (the scalar): what the
   payers paid, the rest of the market included: ``(sum |pay| + |sum pay|) / 2`` per payment.
5. *The compiled engine* re-keys each account that paid (a cross account with several
   positions is checked exactly at the next scan); one that received keeps its entries, set
   with less collateral, which still fire before it can cross. A vault whose inventory paid is
   checked at that tick's first round, as every round's check would.

Collateral (issue 13)
---------------------
A collateral asset is an instrument whose ``EngineParams.collateral`` is set: its positions are
holdings of the asset (long, entry 0, in cross accounts), its tape the asset's price as the
design values it (its index, as the design builds it, times its collateral ratio: Binance
Multi-Assets Mode counts a holding at ``index x (1 - bidBuffer)`` [Binance API "Multi-Assets
Mode Asset Index"; FAQ "How to Calculate Margin in Multi-Assets Mode"]; ``riskengine.collateral``),
its maintenance margin 0 (``mm_rates`` all 0), its mark its price whatever the design's mark
method. So a cross account's equity counts each holding at its price, and a fall of an asset
(a depeg of its index) can liquidate an account none of whose positions lost.

1. *Choice.* A liquidation closes the account's positions first (``cross_order`` among them);
   a holding only once no other position is open (Binance liquidates positions and
   auto-exchanges assets to cover a negative balance).
2. *Auto-exchange at liquidation.* After a liquidation of a position (not of a holding), an
   account left with holdings only and a negative wallet sells the same share ``min(1, -wallet
   / value)`` of every holding (``value``: their sum at their prices) at market in position
   order (COLLATERAL_EXCHANGE rows, no fee, not counted as liquidations); the last sale settles
   what is still owed (the deficit waterfall). Binance sells "in proportion to each asset's
   holding" [Binance "Multi-Assets Info"]; at the asset's price (index x ratio) here, not at
   Binance's auto-exchange bid rate, a named simplification. The other triggers (an asset
   balance below -10,000 USD, LTV >= 1 without a position) are not modelled in the engines.
3. *A crossing account of holdings only* (its wallet in debt beyond their value: equity < 0 =
   its maintenance margin) sells them all at market, one COLLATERAL_EXCHANGE row each, the
   deficit waterfall settling what they miss.
4. Everything else treats a holding as a position: it is in the liquidation index (a trigger
   on its asset's price, :mod:`riskengine._index`'s slack share), a vault taking the account
   over takes it, funding payments in its instrument (none unless given) are paid by it.

Modules
-------
Each module is the plain-Python twin of the compiled module of the same name in
``cext/riskengine/``, with the same arithmetic in the same order:

* ``_engine.py`` — ``_engine.pyx``: the tick loop, the loss waterfall, settlement, ADL orders,
  the per-instrument state (:func:`run_portfolio`, :func:`run_reference`);
* ``_adl.py`` — ``_adl.pyx``: ADL scores, candidates, weights, the capped allocation and
  water-filling (:func:`adl_score`, :func:`adl_gather`, :func:`adl_weight`,
  :func:`capped_allocation`, :func:`water_filling`);
* ``_liquidity.py`` — ``_liquidity.pyx``: the depth book, impact and stress
  (:class:`Book`, :func:`curve_depth`, :func:`curve_walk`, :func:`counterfactual_tape`,
  :func:`walk_depth`, :func:`fillable_depth`);
* ``_mark.py`` — ``_mark.pyx``: the mark methods and their EMAs (:class:`MarkState`,
  :func:`mark_update`, :func:`mark_refresh`, :func:`ema_update`);
* ``_margin.py`` — ``_margin.pyx``: maintenance margin, the trigger test, the tier holding a
  notional, the bankruptcy price (:func:`maintenance_margin`, :func:`crosses`, :func:`crossing`,
  :func:`tier_index`, :func:`bankruptcy_price`);
* ``_events.py`` — ``_events.pyx``: the event log and the series (one list per column);
* ``_calc.py`` — ``_calc.pyx``: :func:`median3` (its other kernels are calculators the engine
  does not use).

No twin: ``_index.pyx`` (the liquidation index; the reference scans every margin account each
cascade round instead, its equity and maintenance margin summed over its positions;
:func:`crossing` is that test for accounts of one position) and ``_typedefs.pyx`` (the integer codes, which the reference
takes from :mod:`riskengine.codes`; ``tests/test_codes.py`` checks they agree).
"""

from __future__ import annotations

from riskengine.reference._adl import (
    adl_gather, adl_score, adl_weight, capped_allocation, water_filling,
)
from riskengine.reference._calc import median3
from riskengine.reference._engine import PROGRESS_STEPS, run_portfolio, run_reference
from riskengine.reference._liquidity import (
    Book, counterfactual_tape, curve_depth, curve_walk, fillable_depth, walk_depth,
)
from riskengine.reference._margin import (
    bankruptcy_price, crosses, crossing, maintenance_margin, tier_index,
)
from riskengine.reference._mark import Ema, MarkState, ema_update, mark_refresh, mark_update

__all__ = [
    "PROGRESS_STEPS",
    "Book",
    "Ema",
    "MarkState",
    "adl_gather",
    "adl_score",
    "adl_weight",
    "bankruptcy_price",
    "capped_allocation",
    "counterfactual_tape",
    "crosses",
    "crossing",
    "curve_depth",
    "curve_walk",
    "ema_update",
    "fillable_depth",
    "maintenance_margin",
    "mark_refresh",
    "mark_update",
    "median3",
    "run_portfolio",
    "run_reference",
    "tier_index",
    "walk_depth",
    "water_filling",
]
