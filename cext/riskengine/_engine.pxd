from riskengine._adl cimport AdlParams, RatioIndex
from riskengine._events cimport ColumnLog
from riskengine._index cimport KeyHeap, LiqIndex, SideIndex
from riskengine._liquidity cimport DepthBook
from riskengine._margin cimport Tiers
from riskengine._mark cimport MarkState
from riskengine._typedefs cimport float64_t, i32, i64, i8

cdef struct Params:
    # Mirrors riskengine.params.EngineParams under the same names (times in ns, money in quote
    # currency): the design's fields, shared by every instrument; the fields that may differ per
    # instrument (riskengine.params.INSTRUMENT_FIELDS) are in Inst. _fill_params in _engine.pyx
    # fills it, tests/test_engine_struct.py checks it.
    float64_t liq_fee_rate
    bint liq_limit_bankruptcy
    bint liq_surplus_to_fund
    int partial_mode
    float64_t partial_fraction
    float64_t partial_threshold
    i64 partial_cooldown_ns
    i64 max_liqs_per_step
    i64 latency_ns
    int cross_order           # CROSS_NOTIONAL or CROSS_LOSS: a crossing cross account's first position
    int funding_price         # FUNDING_AT_MARK or FUNDING_AT_INDEX: the price a funding payment values a position at
    int takeover
    float64_t fund_initial
    float64_t fund_capacity
    i64 fund_unwind_interval_ns
    float64_t fund_unwind_fraction
    float64_t adl_fund_drawdown
    i64 adl_fund_window_ns
    float64_t backstop_ratio
    float64_t vault_initial
    i64 vault_unwind_interval_ns
    float64_t vault_unwind_fraction
    float64_t vault_loss_limit
    int adl_price
    bint adl_on_negative_equity
    i64 series_interval_ns
    i64 adl_rank_interval_ns

cdef struct Inst:
    # One instrument k: its settings (from its own EngineParams), mark, book, prices, open
    # interest, external market, liquidation index, ADL ranking, drawdowns and counters.
    # _inst_init in _engine.pyx sets it up; Engine.insts holds one per instrument.
    MarkState mark
    float64_t tape            # latest tape price (counterfactual where observed flow is given)
    float64_t index_px        # its stream (index/oracle) as of its last tick (NaN: none yet; funding at the index)
    float64_t prev_mark       # the mark at the end of k's previous tick (ADL at previous mark)
    i64 book_ts               # time the book was last brought forward (seek and decay) to
    i64 mark_ts               # time of the last mark update (the EMAs' step)
    bint ticked               # k has had a tick: its mark and prices exist
    bint collateral           # a collateral asset: holdings, marked at its price (EngineParams.collateral)
    bint touched              # its index took entries since its last scan (Engine.touched)
    bint moved                # its book moved since its mark was computed (Engine.moved)
    bint remarked             # a refresh moved its mark at this tick (Engine.remarked)
    i64 scanned               # the last scan that looked at it (Engine.scan_no; _scan_cross)
    i32 id
    Py_ssize_t V              # slot of the vault's inventory in k (n_pos + 2 k)
    Py_ssize_t F              # slot of the fund's inventory in k (n_pos + 2 k + 1)
    LiqIndex index
    Tiers tiers
    AdlParams adl             # the design's ADL settings on k's tiers
    float64_t liq_price_band
    float64_t liq_max_order_notional
    i32 fund_group            # the insurance fund its deficits draw on (EngineParams.fund_group)
    i32 vault_group           # the backstop vault that takes its positions over
    # its ledgers (issue 12, step 3): the slots whose col is the cash of its vault (VC) and of
    # its fund (FC), the V and F of the ledger's first instrument, its lead (instrument 0's with
    # one vault and one fund); a lead keeps its ledgers' state
    Py_ssize_t VC
    Py_ssize_t FC
    Py_ssize_t ledger_held[2] # lead: instruments where its vault [0] / its fund [1] holds inventory
    i64 next_unwind[2]        # lead: when its vault [0] / its fund [1] next unwinds
    bint takes_over           # lead of a vault: it takes a position of the account a backstop takes over
    # lead of a fund: rolling peak of its cash (monotonic deque) for the drawdown ADL trigger
    i64* peak_ts
    float64_t* peak_val
    Py_ssize_t peak_head
    Py_ssize_t peak_tail
    Py_ssize_t peak_cap
    # the margin accounts with a position in k, ascending (NULL: all of them, 0 .. n - 1)
    const i64* members
    Py_ssize_t n_members
    Py_ssize_t n_dirty        # of Engine.dirty, those in k (_rekey_dirty)
    # n_multi: how many cross accounts with several positions hold a position in k; multi: those
    # of them whose instruments all have ticked by k's first tick and not before (k is the last
    # of theirs to tick), n_last of them, ascending: checked at k's first tick (they are keyed
    # once every instrument they hold has ticked)
    const i64* multi
    Py_ssize_t n_multi
    Py_ssize_t n_last
    # with cross accounts holding several positions: k's members by side, as their ranks in
    # members, ascending: [0] the longs, [1] the shorts (a position never changes side; the ADL
    # gathering of winners reads one side only)
    const i64* by_side[2]
    Py_ssize_t n_by_side[2]
    float64_t long_oi
    float64_t short_oi
    float64_t ext_pos
    float64_t ext_cash
    KeyHeap adl_rank[2]       # ranked ADL queue snapshots: [0] longs, [1] shorts
    i64 adl_rank_time[2]
    bint adl_rank_built[2]
    float64_t tape_peak
    float64_t sim_peak
    float64_t tape_dd
    float64_t sim_dd
    # the prices at or above which the drawdowns cannot deepen at the current peaks
    # (_drawdowns: the divisions are made only below them)
    float64_t tape_dd_below
    float64_t sim_dd_below
    float64_t tape_min
    float64_t sim_min
    i64 liquidations
    float64_t liquidated_notional
    i64 adl_fills
    float64_t adl_notional
    float64_t funding_paid    # what its funding payers paid, the rest of the market included
    DepthBook book            # the liquidity model

cdef struct Engine:
    # Zeroed, then set up, by _engine_init in _engine.pyx; the work arrays it allocates and frees
    # are listed once, in _work_arrays (a new array is one row there).
    Params p
    # instruments, and the merged tape (borrowed, read-only): tick i moves instrument
    # tick_inst[i] (NULL: one instrument, every tick is instrument 0)
    Inst* insts
    Py_ssize_t n_inst
    const i64* ts
    const i32* tick_inst
    const float64_t* px
    const float64_t* stream
    Py_ssize_t n_ticks
    # funding payments (borrowed, read-only; issue 13): time, instrument and rate of each, sorted
    # by time then instrument; the next one to pay, and whether a vault's inventory paid since the
    # vaults were last checked
    const i64* funding_ts
    const i32* funding_inst
    const float64_t* funding_rate
    Py_ssize_t n_funding
    Py_ssize_t funding_next
    bint funding_vault
    # slots: struct of arrays, n_pos + 2 I entries. Slots 0 .. n - 1 are the margin accounts:
    # account a's wallet (col), status and per-account state, and its first position (pos, ep, in
    # instrument slot_inst[a]: allocated, set and read only when I > 1, _inst_id); owner[a] is the
    # public id events name (owner NULL: a). Slots n .. n_pos - 1 hold the other positions of the
    # cross accounts with several (their account xacc[s - n]; col unused): account a's positions
    # are a, then n + xstart[a] .. n + xstart[a + 1] - 1, in position (CSR) order. Slot
    # n_pos + 2 k holds the backstop vault's inventory in instrument k, n_pos + 2 k + 1 the
    # insurance fund's. A ledger's cash is the col of its lead's slot (Inst.VC, Inst.FC); with one
    # vault and one fund col[V] (V = n_pos) and col[F] (F = n_pos + 1), the slots of instrument 0.
    # The col of the other inventory slots stays 0 (_cash).
    float64_t* col
    float64_t* pos
    float64_t* ep
    i8* status
    i32* slot_inst
    const i64* owner
    i64* partial_tick         # the tick of the account's last partial liquidation + 1 (0: none)
    i64* cooldown_until       # each user's cooldown end, its sign bit flipped (0: none; _cooling)
    i64* version
    float64_t* socialized
    Py_ssize_t n
    Py_ssize_t n_pos          # n + the extra positions (slots before the ledgers')
    Py_ssize_t n_slots
    const i64* xacc           # account of extra position slot n + j (NULL: no account holds several)
    const i64* xstart         # n + 1 offsets of each account's extra slots (NULL: none)
    const i64* user           # each account's user, dense (the cooldown's key; NULL: the account)
    Py_ssize_t V
    Py_ssize_t F
    Py_ssize_t held[2]        # instruments where a vault [0] / a fund [1] holds inventory
    Py_ssize_t n_vaults       # ledgers: vaults and funds (Inst.VC, Inst.FC)
    Py_ssize_t n_funds
    # ledgers
    float64_t fund_min        # lowest sum of the funds' cash
    float64_t vault_min       # lowest sum of the vaults' equity at mark, at every check of a loss
    float64_t bad_debt
    i64 cum_liq
    float64_t cum_liq_notional
    i64 cum_adl
    float64_t cum_adl_notional
    float64_t adl_overshoot   # sum over ADL orders of max(0, haircut - deficit covered)
    float64_t order_haircut   # haircut of the ADL order being filled
    # weighted ADL policies log one row per account per series interval of tape time: the
    # interval of the current order (adl_bucket, from 1), and per account the row of its
    # first fill in its latest interval (fill_row) and that interval (fill_bucket; 0: none)
    bint merge_fills
    i64 adl_bucket
    i64* fill_row
    i64* fill_bucket
    # a lazy pro-rata burst (issue 14, docs/design/weighted-adl.md): the orders of one cascade
    # round that pro-rata by size (or notional) or by equity splits over one side of one
    # instrument, applied to the burst's winners (lz_ids, ascending; lz_unit their weights at
    # its start, per unit of which the sums below run) once, by _lazy_flush, not fill by fill
    bint lazy_adl             # the design's policy allows bursts (lz_ids, lz_unit allocated)
    bint lz_on                # a burst is open
    bint lz_skip              # a cap bound in this round: its orders are split at once
    bint lz_by_equity         # its weights are equities (else sizes)
    Inst* lz_x
    float64_t lz_side         # sign of the positions its orders close (the winners: the other)
    float64_t lz_mark
    i64* lz_ids
    float64_t* lz_unit
    Py_ssize_t lz_n
    float64_t lz_s0           # sum of lz_unit
    float64_t lz_bound        # least equity per unit of size (by equity: size per unit of equity) at its start
    float64_t lz_f            # a winner's weight now per unit of its weight at the start
    float64_t lz_closed       # per unit: size closed, its notional, its haircut, the equity change
    float64_t lz_notional
    float64_t lz_haircut
    float64_t lz_equity
    float64_t lz_fund         # the fund's cash at its latest order
    i64 lz_counterparty       # its first order's liquidated account; lz_mixed: not all orders'
    bint lz_mixed
    i64 lz_bursts             # how many bursts and orders ran lazily (run stats)
    i64 lz_orders
    # current step
    i64 t
    i64 i
    i32 round
    # work queues
    i64* pend_ids
    i64* pend_due
    Py_ssize_t pend_head
    Py_ssize_t pend_tail
    Py_ssize_t pend_cap
    i64* work_ids
    float64_t* work_vals
    float64_t* work_caps
    float64_t* work_out
    float64_t* work_a
    float64_t* work_b
    RatioIndex* work_ratio
    i64* work_live
    float64_t* hold_keys
    i64* hold_ids
    i64* hold_vers
    Py_ssize_t* radix_count   # 65536 counters for sorting account ids
    i64* deferred
    Py_ssize_t n_deferred
    i64* dirty                # ADL'd winners to re-key before the next scan (each once)
    i8* is_dirty
    Py_ssize_t n_dirty
    i32* touched              # instruments whose index took entries since their last scan
    Py_ssize_t n_touched
    i32* moved                # instruments whose book moved since their mark was computed
    Py_ssize_t n_moved
    i32* remarked             # instruments other than the ticking one whose mark moved at this tick
    Py_ssize_t n_remarked
    i64* member_ids           # Inst.members of every instrument, one after the other (I > 1)
    i64* multi_ids            # Inst.multi of every instrument, one after the other (I > 1)
    i64* side_ids             # Inst.by_side of every instrument, one after the other (I > 1)
    i64* recheck              # cross accounts with several positions to check at the next scan
    i8* in_recheck
    Py_ssize_t n_recheck
    i64* seen                 # the scan that last checked each such account (scan_no)
    i64 scan_no
    # _scan_cross, called through a pointer: the compiler does not inline it into the scan, which
    # stays small enough to be inlined into the tick loop
    Py_ssize_t (*scan_cross)(Engine* e, Py_ssize_t ncross) except -1 nogil
    float64_t* trig           # each such account's positions' keys as last split (-inf: no entry)
    i8* keyed                 # each such account: its positions are in the indexes (version)
    i8* hot                   # each such account: on the hot list (checked at every scan)
    i64* hot_ids
    Py_ssize_t n_hot
    # what the index of cross accounts with several positions did (run_portfolio(stats=True)):
    # exact checks, splits (of which ended on the hot list), triggers passed
    i64 cross_checks
    i64 cross_splits
    i64 cross_hot
    i64 cross_fired
    ColumnLog log
    ColumnLog series
