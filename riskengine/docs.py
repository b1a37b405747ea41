"""The config file reference, ``docs/config.md``, rendered from the models.

Every key table is generated from the JSON schemas of :class:`riskengine.config.Config` (what
``riskengine schema`` prints) and :class:`riskengine.venue.VenueDesign`; the prose of a key is
its model field's description, the prose of a table its model's docstring. This module holds
only the layout, the preset keys of a ``[[venues]]`` table (they choose a preset, they are not
fields of a design) and the examples. So the reference cannot drift from the code::

    python -m riskengine.docs            # rewrite docs/config.md
    python -m riskengine.docs --check    # exit 1 if docs/config.md is not what the code renders
"""

from __future__ import annotations

import argparse
import inspect
import json
import re
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from riskengine.files import write_atomic

#: where the reference lives, relative to the repository root
CONFIG_DOC = Path("docs") / "config.md"

#: the preset keys of a ``[[venues]]`` table (:data:`riskengine.venues._PRESET_KEYS`), described
PRESET_KEY_DOCS = {
    "preset": "The preset whose rulebook the other keys of the table override, component by component "
              "(without a preset every component starts from the defaults in the tables below, and `name` "
              "is required)",
    "symbol": "Symbol whose margin table and symbol-specific rules the preset uses, in every scenario "
              "(default: the venue's symbol for each scenario's `underlying`, see [Margin tables](#margin-tables)). "
              "A symbol without a stored table is refused, listing the symbols the preset has, unless the table "
              "gives `margin.floors` and `margin.rates` or names `assumed_table`",
    "date": "Day (`YYYY-MM-DD`) whose margin table applies (default: each scenario's replay day, its window's "
            "start, else the day of its tape's first trade). Before a symbol's earliest table, that table is used, marked "
            "out of date (a warning, the `margin_source` column, a note in the report)",
    "max_leverage": "A single-tier margin table of this maximum leverage instead of the symbol's table "
                    "(Hyperliquid's tables below id 50; for assets without a table of their own)",
    "assumed_table": "A symbol of the same venue whose table is used, marked assumed, for a symbol that has no "
                     "table of its own (e.g. `assumed_table = \"BTCUSDT\"`): a warning on stderr, the "
                     "`margin_source` column and a note in the report say so",
}

#: which margin table a run uses (docs/config.md, "Margin tables")
MARGIN_TABLES_DOC = """Each preset reads its venue's margin tables from `riskengine/venues/tables/<preset>.toml`: per symbol,
dated tables (the first day each is known in force), each with its primary source, whether it is
complete (and what is missing), its form (`deduction`: `MM = N x rate_k - cum_k`, continuous; or
`whole-position`: `MM = N x rate_k` of the tier holding `N`, as BitMEX risk-limit steps and OKX
position tiers re-rate the whole position) and the currency of its floors.

Which table a design uses in a scenario:

1. the symbol: the `[[venues]]` table's `symbol` if given, else the venue's symbol for the
   scenario's `underlying` (binance-usdm `AAVEUSDT`, bybit `AAVEUSDT`, okx `AAVE-USDT-SWAP`,
   bitmex `AAVEUSDT` (`XBTUSDT` for BTC), hyperliquid `AAVE`, dydx-v4 `AAVE-USD`, drift `AAVE-PERP`).
   Without `underlying` it comes from the tape's `symbol` key (`BTCUSD_PERP` -> BTC), is BTC for a
   synthetic tape, and is otherwise unknown: the preset's default symbol is used, marked assumed;
2. the date: the `[[venues]]` table's `date` if given, else the scenario's replay day (its
   window's start; 2025-10-10 for a synthetic tape; else the day of the tape's first trade,
   known once `run` reads it: `validate` shows the newest tables then); the table in force that day;
3. what cannot be found: a symbol without a table is refused with one line listing the symbols the
   preset has, unless the `[[venues]]` table gives its own (`margin.floors` and `margin.rates`) or
   names one as assumed (`assumed_table`); a day before the symbol's earliest table uses that table,
   marked out of date.

In a scenario with instruments (`[[scenario.instruments]]`) each instrument takes its own table
by the same rules: the venue's symbol for the underlying of the instrument's `symbol` (`ETHUSDT` ->
ETH: binance-usdm `ETHUSDT`, hyperliquid `ETH`), on the scenario's day (or the table's `date`). A
`[[venues]]` table that gives its own table (`margin.floors` and `margin.rates`), a `max_leverage` or
a `symbol` uses that one table for every instrument; an instrument whose symbol the venue has no
table for is refused with one line naming the instrument and the design (or takes the table's
`assumed_table`).

Every assumed or out-of-date table shows in the `margin_source` result column (in brackets after the
table's name), as a `riskengine: warning:` line on stderr when the run starts, and in a note of the
report; so does an incomplete one (`(incomplete)` after its name; the warning says what is
missing). The engine simulates a linear, quote-margined perpetual: replaying a COIN-M (inverse) price
path, a design uses the same underlying's linear table: for a Binance design, the USDⓈ-M table of that
underlying (`AAVEUSD_PERP` -> `AAVEUSDT`), as in `backtests/coinm-alts-2025-10-10.toml`.
"""

#: a complete config: every table, real files of ../shared/data (written for a file in backtests/)
EXAMPLE_REPLAY = """\
# backtests/my-btc-replay.toml: BTC on 2025-10-10 from the shared data (paths relative to this file)
[scenario]
name = "btc-2025-10-10"
tape = { source = "tardis", path = "../../shared/data/2025-10-10/spot-trades/gemini_trades_2025-10-10_BTCUSD.csv.gz" }
stream = { source = "binance-vision", path = "../../shared/data/2025-10-10/binance-price-klines/BTCUSD_PERP-1m-2025-10-10.zip" }
window = { start = 2025-10-10T20:00:00Z, end = 2025-10-10T22:00:00Z }

[population]
accounts = 200_000
open_interest_usd = 8e9
long_share = 0.6
leverage = { values = [2, 5, 10, 20, 40], weights = [0.2, 0.3, 0.3, 0.15, 0.05] }
sizes = { distribution = "pareto", alpha = 1.5 }
cross_share = 0.5
cross_excess = [1.0, 3.0]
flat_share = 0.02
entry_lookback_s = 21_600      # entries: trades of the six hours before the window, by volume
seed = 7

[liquidity]
mode = "endogenous"
depth = { source = "binance-bookdepth", path = "../../shared/data/2025-10-10/binance-usdm-bookdepth/BTCUSDT-bookDepth-2025-10-10.csv", time_varying = true, tail_floor = 0.05 }
max_move = 0.5
resilience_half_life_s = 30
feedback = 1.0
stress_k = 0.0

[[venues]]
preset = "binance-usdm"
symbol = "BTCUSDT"
date = "2025-10-10"

[[venues]]                     # one change: the mark is the last trade
preset = "binance-usdm"
name = "binance-usdm-last-mark"
mark = { method = "last" }

[[venues]]
preset = "hyperliquid"
symbol = "BTC"
backstop = { vault_balance = 8.1e6 }

[[venues]]                     # one change: a 50M insurance fund pays deficits before ADL
preset = "hyperliquid"
name = "hyperliquid-with-fund"
backstop = { vault_balance = 8.1e6 }
fund = { initial = 5e7 }

[outputs]
dir = "../results/my-btc-replay"
series_interval_s = 1.0

[sweep]                        # `riskengine sweep` only: 3 x 2 = 6 runs
grid = { "population.seed" = [1, 2, 3], "liquidity.stress_k" = [0.0, 0.5] }
rank_by = "bad_debt"
rank_order = "ascending"
"""

#: several scenarios, synthetic: runs anywhere
EXAMPLE_SCENARIOS = """\
[[scenarios]]
name = "crash-16pct"
synthetic = { ticks = 100_000, drop = 0.12, wick = 0.035, seed = 1 }

[[scenarios]]                  # a deeper crash on a thinner book, with more longs
name = "crash-25pct-thin"
synthetic = { ticks = 100_000, drop = 0.2, wick = 0.06, seed = 2 }
population = { long_share = 0.8 }
liquidity = { depth_per_pct = 2e6 }

[population]
accounts = 20_000
open_interest_usd = 5e8

[liquidity]
depth_per_pct = 5e6

[[venues]]
preset = "hyperliquid"
backstop = { vault_balance = 5e6 }

[[venues]]                     # no preset: every component from the defaults, name required
name = "plain"
margin = { floors = [0, 1e6], rates = [0.005, 0.01] }
fund = { initial = 1e6, takeover = true }
"""

#: the other sources: the local catalog and a population file (your own files)
EXAMPLE_CATALOG = """\
[scenario]
name = "btc-from-catalog"
tape = { catalog = "../riskengine-catalog", source = "gemini", symbol = "BTCUSD" }
stream = { catalog = "../riskengine-catalog", source = "binance", symbol = "BTCUSD_PERP", kind = "klines" }
window = { start = "2025-10-10T20:00:00Z", end = "2025-10-10T22:00:00Z" }

[population]
file = "populations/btc-accounts.parquet"   # account, side, size, entry_price, collateral, margin_mode

[[venues]]
preset = "binance-usdm"
"""

#: several instruments in one scenario, synthetic: runs anywhere
EXAMPLE_INSTRUMENTS = """\
[scenario]
name = "three-coins"

[[scenario.instruments]]       # instrument 0: each design uses its BTC margin table
symbol = "BTCUSDT"
synthetic = { ticks = 30_000, seed = 1 }

[[scenario.instruments]]       # a deeper fall on a thinner book of its own
symbol = "ETHUSDT"
synthetic = { ticks = 20_000, start_price = 4_300.0, drop = 0.2, seed = 2 }
liquidity = { depth_per_pct = 2e6 }

[[scenario.instruments]]
symbol = "SOLUSDT"
synthetic = { ticks = 15_000, start_price = 220.0, drop = 0.25, seed = 3 }

[scenario.portfolio]           # or: file = "positions.parquet" (one row per position)
accounts = 20_000
open_interest_usd = [3e8, 1.7e8, 1e8]  # one per instrument, in their order
max_leverage = [40, 25, 20]
holdings = [0.7, 0.2, 0.1]     # 70% of accounts hold one instrument, 20% two, 10% three
cross_share = 0                # every position isolated (1: every position cross, one account per user)
seed = 5

[liquidity]                    # every instrument's book, unless it changes keys of its own
depth_per_pct = 5e6

[[venues]]
preset = "binance-usdm"

[[venues]]
preset = "hyperliquid"
backstop = { vault_balance = 5e6 }
"""

#: config mistakes whose one-line message the reference shows (rendered by the real parser)
_MISTAKES = (
    ("a misspelt key", {"population": {"acounts": 10}}),
    ("a value out of range", {"population": {"long_share": 1.5}}),
    ("a value not allowed", {"liquidity": {"mode": "replays"}}),
)
#: numbers out of their kind's range (riskengine.ranges), shown in the Ranges section
_RANGE_MISTAKES = (
    ("infinite leverage", {"population": {"leverage": {"values": [float("inf")], "weights": [1.0]}}}),
    ("absurd leverage", {"population": {"leverage": {"values": [1e9], "weights": [1.0]}}}),
    ("a NaN balance", {"venues": [{"preset": "binance-usdm", "fund": {"initial": float("nan")}}]}),
)


def _schema() -> tuple[dict, dict]:
    from riskengine.config import json_schema
    from riskengine.venue import VenueDesign

    return json_schema(), VenueDesign.model_json_schema()


# ------------------------------------------------------------------------------ schema reading
def _deref(node: dict, defs: dict) -> dict:
    while "$ref" in node:
        node = defs[node["$ref"].rsplit("/", 1)[1]]
    return node


def _options(node: dict, defs: dict) -> tuple[list[dict], bool]:
    """The alternatives a property takes (references followed) and whether it may be unset."""
    if "anyOf" in node or "oneOf" in node:
        out, optional = [], False
        for alt in node.get("anyOf", node.get("oneOf")):
            if alt.get("type") == "null":
                optional = True
                continue
            inner, _ = _options(alt, defs)
            out += inner
        return out, optional
    return [_deref(node, defs)], False


def _is_table(node: dict) -> bool:
    return "properties" in node


def _slug(heading: str) -> str:
    """GitHub's anchor of a heading: lower case, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-")


def _prose(text: str | None) -> str:
    """A model's description as one Markdown line (reST roles and double backquotes made plain)."""
    if not text:
        return ""
    text = text.split("\n\n")[0] if "Attributes\n" in text else text
    text = re.sub(r":\w+:`~?([^`]+)`", r"`\1`", text)
    text = text.replace("``", "`")
    text = " ".join(text.split())
    text = text.replace("|", "\\|")
    first = text.split(" ", 1)[0]
    if first.endswith(":") or "_" in first or len(first) == 1:  # a value or key name: keep its case
        return text
    return text[:1].upper() + text[1:]


def _literal(value: Any) -> str:
    """A default for the table: ``unset``, or the TOML value in backquotes."""
    return "unset" if value is None else f"`{_value(value)}`"


def _value(value: Any) -> str:
    """A default as TOML would spell it."""
    if value is None:
        return "unset"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, float):
        if value.is_integer() and abs(value) >= 1e6:
            mantissa, exponent = f"{value:.12e}".split("e")
            return f"{mantissa.rstrip('0').rstrip('.')}e{int(exponent)}"
        text = f"{value:.6g}"
        return text if ("." in text or "e" in text) else text + ".0"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {_value(v)}" for k, v in value.items()) + " }" if value else "{}"
    return str(value)


_NAMES = {"string": "text", "integer": "integer", "number": "number", "boolean": "boolean", "object": "table"}


def _scalar(node: dict) -> str:
    if "enum" in node or "const" in node:
        return "text"
    if node.get("format") == "date-time":
        return "datetime"
    if node.get("type") == "array":
        if "prefixItems" in node:
            return "[" + ", ".join(_scalar(i) for i in node["prefixItems"]) + "]"
        items = node.get("items") or {}
        if items.get("type") == "array":  # a list of lists
            return "list of " + _scalar(items).replace("list of", "lists of", 1)
        return f"list of {_scalar(items)}s" if items.get("type") else "list"
    if node.get("type") == "object":
        if isinstance(node.get("additionalProperties"), dict):
            return f"table of {_scalar(node['additionalProperties'])}s"
        return "table"
    return _NAMES.get(node.get("type", ""), "any value")


def _bounds(node: dict) -> list[str]:
    out = []
    for key, sign in (("minimum", ">="), ("exclusiveMinimum", ">"), ("maximum", "<="), ("exclusiveMaximum", "<")):
        if key in node:
            bound = node[key]
            out.append(f"{sign} {bound:_}" if isinstance(bound, int) and not isinstance(bound, bool)
                       else f"{sign} {_value(bound)}")
    if "minLength" in node:
        out.append("not empty")
    if "minItems" in node and node.get("type") == "array" and "prefixItems" not in node:
        out.append(f"at least {node['minItems']} item{'s' if node['minItems'] > 1 else ''}")
    if "minProperties" in node:
        out.append(f"at least {node['minProperties']} key{'s' if node['minProperties'] > 1 else ''}")
    return out


def _kind(node: dict) -> str:
    """``[kind](#ranges): `` for a number of a kind of :mod:`riskengine.ranges`, else nothing."""
    from riskengine.ranges import SCHEMA_KEY

    return f"[{node[SCHEMA_KEY]}](#ranges): " if SCHEMA_KEY in node else ""


def _allowed(node: dict) -> str:
    """Allowed values: the enum, or the kind and bounds of the value (of each item of a list)."""
    if "enum" in node or "const" in node:
        return ", ".join(f"`{json.dumps(v)}`" for v in node.get("enum", [node.get("const")]))
    parts = _bounds(node)
    items = node.get("prefixItems") or ([node["items"]] if isinstance(node.get("items"), dict) else [])
    item_bounds = list(dict.fromkeys(b for item in items for b in _bounds(item)))  # lower bound first
    if item_bounds:
        kinds = list(dict.fromkeys(_kind(item) for item in items))
        parts.append("each " + "".join(kinds) + ", ".join(item_bounds))
    return _kind(node) + ", ".join(parts)


# ------------------------------------------------------------------------------ sections
class _Section:
    """One table of keys: its heading, key path prefix, model schema and extra rows."""

    def __init__(self, heading: str, prefix: str, node: dict, intro: str = "") -> None:
        self.heading, self.prefix, self.node, self.intro = heading, prefix, node, intro
        self.rows: list[tuple[str, str, str, str, str]] = []

    @property
    def anchor(self) -> str:
        return "#" + _slug(self.heading)


def _variant_name(node: dict) -> str:
    """``from a file`` / ``from the catalog`` for the union members of a tape or stream."""
    title = node.get("title", "")
    return "from the catalog" if title.startswith("Catalog") else "from a file"


def _sections(schema: dict, design: dict) -> list[_Section]:
    """Every table of a config, in the order of the fields, with its rows."""
    from riskengine import venues as venue_presets

    defs = schema["$defs"]
    out: list[_Section] = []
    by_title: dict[str, str] = {}  # model title -> the heading of its first section

    def walk(heading: str, prefix: str, node: dict, intro: str = "") -> _Section:
        section = _Section(heading, prefix, node, intro)
        out.append(section)
        pending: list[tuple[str, str, dict, str]] = []
        required = set(node.get("required", ()))
        for name, prop in node["properties"].items():
            key = f"{prefix}.{name}" if prefix else name
            options, optional = _options(prop, defs)
            # a list of tables, or of one of several tables (e.g. a stream from a file or the catalog)
            items = [item for o in options if o.get("type") == "array"
                     for item in _options(o.get("items", {}), defs)[0] if _is_table(item)]
            lists = bool(items)
            tables = [o for o in options if _is_table(o)] + items
            links = []
            for o in tables:
                known = by_title.get(o.get("title")) if lists and not prefix else None
                if known is not None:  # [[scenarios]]: the keys of [scenario], documented once
                    links.append(f"[{known}](#{_slug(known)})")
                    continue
                item = f"{key}[i]" if lists and prefix else key  # a list inside a table: its items' keys
                sub = f"{item} ({_variant_name(o)})" if len(tables) > 1 else item
                by_title.setdefault(o.get("title", sub), sub)
                pending.append((sub, item, o, ""))
                links.append(f"[{sub}](#{_slug(sub)})")
            if name == "venues" and not prefix:  # free-form tables here: a venue design each
                kind, allowed, links = "list of tables", _allowed(prop), ["[venues](#venues)"]
            elif lists:
                kind, allowed = "list of tables", ""
            elif tables:
                kind, allowed = "table", ""
            else:  # one value, or one of several shapes (a number or a list of numbers)
                kind = " or ".join(dict.fromkeys(_scalar(o) for o in options))
                shown = {a.removeprefix("each "): a for a in map(_allowed, reversed(options)) if a}
                allowed = "; ".join(shown.values())  # a number or a list of them: one range
            if links:
                kind += ": " + " or ".join(links)
            default = "required" if name in required else _literal(prop.get("default"))
            if tables and name not in required:
                default = "unset" if optional else "see the table"
            section.rows.append((key, kind, default, allowed, _prose(prop.get("description"))))
        for sub, key, o, intro_text in pending:
            walk(sub, key, o, intro_text)
        return section

    root = walk("Top level", "", schema)
    root.intro = ("Exactly one of `[scenario]` or `[[scenarios]]`, and at least one `[[venues]]` table; "
                  "every other table is optional.")
    # a scenario's own [population] / [liquidity] changes: tables of the same keys
    for section in out:
        if section.prefix in ("scenario",):
            section.intro = (_prose(section.node.get("description")) + " Each `[[scenarios]]` table has the "
                             "same keys (key paths `scenarios[i]...`, e.g. `scenarios[1].window.start` in a "
                             "sweep grid).")
            section.rows = [(k, _retarget(kind, k, out), d, a, m) for k, kind, d, a, m in section.rows]
    # [[venues]]: the preset keys, then the design's fields and its components
    keys = tuple(venue_presets._PRESET_KEYS)
    if set(keys) != set(PRESET_KEY_DOCS):
        raise RuntimeError(f"riskengine.docs.PRESET_KEY_DOCS describes {sorted(PRESET_KEY_DOCS)}, "
                           f"the presets take {sorted(keys)}: describe each preset key")
    venues = _Section("venues", "venues[i]", design, _prose(
        "Each ``[[venues]]`` table is one venue design (:class:`riskengine.venue.VenueDesign`): a "
        "preset and the keys it changes. Nested tables are merged key by key, so "
        "``adl = { policy = \"pro-rata\" }`` changes the policy and keeps the preset's other ADL "
        "settings. The defaults below are those of a design without a preset; a preset's own values "
        "are in [Preset values](#preset-values). Mistakes name the key path, e.g. "
        "``venues[1].adl.polcy: unknown key (did you mean 'policy'?)``."))
    venues.rows = [(f"venues[i].{k}", *_preset_row(k)) for k in keys]
    ddefs = design["$defs"]
    components: list[_Section] = []
    for name, prop in design["properties"].items():
        if name in keys:
            continue
        options, _ = _options(prop, ddefs)
        node = options[0]
        key = f"venues[i].{name}"
        if _is_table(node):
            components.append(_component(key, node))
            venues.rows.append((key, f"table: [{key}](#{_slug(key)})", "see the table", "",
                                _prose(prop.get("description"))))
        else:
            default = ("the preset's name; required without a preset" if name == "name"
                       else _literal(prop.get("default")))
            venues.rows.append((key, _scalar(node), default, _allowed(node), _prose(prop.get("description"))))
    at = next(i for i, s in enumerate(out) if s.prefix == "outputs")
    out[at:at] = [venues, *components]
    return out


def _component(key: str, node: dict) -> _Section:
    section = _Section(key, key, node, _prose(node.get("description")))
    for name, prop in node["properties"].items():
        options, _ = _options(prop, {})
        kind = " or ".join(dict.fromkeys(_scalar(o) for o in options))  # e.g. text or list of lists of texts
        section.rows.append((f"{key}.{name}", kind, _literal(prop.get("default")),
                             _allowed(options[0]), _prose(prop.get("description"))))
    return section


def _retarget(kind: str, key: str, sections: list[_Section]) -> str:
    """A scenario's ``population`` / ``liquidity`` changes: link the table they change."""
    name = key.rsplit(".", 1)[1]
    if name in ("population", "liquidity"):
        return f"table of [{name}](#{name}) keys"
    return kind


def _preset_row(key: str) -> tuple[str, str, str, str]:
    """Type, default, allowed values and meaning of a preset key, from the presets' signatures."""
    from riskengine import venues
    from riskengine.venues import _tables

    takes = {name: inspect.signature(venues._PRESETS[name]).parameters for name in venues.names()}
    meaning = PRESET_KEY_DOCS[key]
    if key == "preset":
        return "text", "unset", ", ".join(f"`{json.dumps(n)}`" for n in venues.names()), meaning
    users = [n for n in venues.names() if key in takes[n]]
    if key == "symbol":
        per = [f"{n}: {', '.join(_tables.symbols(n))}" for n in users]
        meaning += ". Symbols with a stored table: " + "; ".join(per)
    elif len(users) < len(takes):
        meaning += f". Only {', '.join(users)} take{'s' if len(users) == 1 else ''} it"
    if key == "max_leverage":
        from riskengine.ranges import MAX_LEVERAGE

        return "number", "unset", f"[leverage](#ranges): >= 1, <= {_value(MAX_LEVERAGE)}", meaning
    return "text", ("the scenario's" if key in ("symbol", "date") else "unset"), "", meaning


def _flatten(value: Any, prefix: str) -> Iterator[tuple[str, Any]]:
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _flatten(v, f"{prefix}.{k}")
    else:
        yield prefix, value


def _preset_symbol(name: str) -> str:
    """The symbol a preset is shown with: its default symbol, or its first with a table."""
    from riskengine import venues
    from riskengine.venues import _tables

    default = venues._MODULES[name].DEFAULT_SYMBOL
    known = _tables.symbols(name)
    return default if default in known else known[0]


def _preset_values() -> list[str]:
    """Each preset's component values (a symbol of it, its newest table)."""
    from riskengine import venues

    names = venues.names()
    dumps = {n: venues.preset(n, symbol=_preset_symbol(n)).model_dump(exclude={"name", "preset", "notes"})
             for n in names}
    lines = ["| key | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
    keys = [k for k, _ in _flatten(dumps[names[0]], "venues[i]")]
    for key in keys:
        cells = []
        for n in names:
            value = dict(_flatten(dumps[n], "venues[i]"))[key]
            if key.endswith("margin.floors"):
                cells.append(f"{len(value)} tier{'s' if len(value) > 1 else ''}")
            elif key.endswith("margin.rates"):
                cells.append(", ".join(f"{r:.4g}" for r in value) if len(value) <= 3 else
                             f"{value[0]:.4g} .. {value[-1]:.4g}")
            elif key.endswith("margin.source"):
                cells.append(f"`tables/{n}.toml`")
            elif isinstance(value, float) and not value.is_integer():
                cells.append(f"{value:.4g}")
            else:
                cells.append(_value(value).replace("|", "\\|"))
        lines.append(f"| `{key}` | " + " | ".join(cells) + " |")
    return lines


def _ranges() -> list[str]:
    """The section on the kinds of numbers (:data:`riskengine.ranges.KINDS`)."""
    from riskengine.ranges import KINDS

    lines = ["## Ranges", "",
             *textwrap.wrap("Every number of a config is finite and of one of these kinds (`riskengine/ranges.py`); "
                            "a key may narrow its kind's range (its *allowed* cell above says how, e.g. a share "
                            "below 1, money above 0). A value outside its range is one line naming the file and "
                            "the key, exit status 2:", 100, break_long_words=False, break_on_hyphens=False),
             "", "```", *_mistakes(_RANGE_MISTAKES), "```", "",
             "| kind | range | for | why this range |", "|---|---|---|---|"]
    lines += [f"| {k.name} | {k.bounds} | {k.used_for} | {k.why} |" for k in KINDS]
    return [*lines, ""]


def _mistakes(mistakes: tuple = _MISTAKES) -> list[str]:
    """The one line `riskengine validate` prints for each mistake (checked as it checks: the
    models, then the designs built from their presets)."""
    from pathlib import Path

    from riskengine import backtest, config

    base = {"scenario": {"name": "x", "synthetic": {}}, "venues": [{"preset": "binance-usdm"}]}
    lines = []
    for what, change in mistakes:
        try:
            backtest.build_designs(config.parse({**base, **change}, "my.toml", path=Path("my.toml")))
        except ValueError as exc:
            lines.append(f"riskengine: error: {exc}")
        else:  # pragma: no cover - the examples are mistakes by construction
            raise RuntimeError(f"riskengine.docs: the example of {what} validates")
    return lines


# ------------------------------------------------------------------------------ rendering
def _stored_tables() -> list[str]:
    """The stored tables, per preset and symbol: each table's effective date, ``*`` when it is
    incomplete (its file says what is missing and where each table comes from)."""
    from riskengine import venues
    from riskengine.venues import _tables

    out = ["The stored tables (effective dates; `*`: incomplete; sources, gaps and tiers in each file):", "",
           "| preset | form | symbol: tables |", "|---|---|---|"]
    for venue in venues.names():
        stored = _tables._load(venue)
        forms = sorted({t.form for tables in stored.values() for t in tables})
        cells = "; ".join(f"{symbol}: " + ", ".join(f"{t.effective}{'' if t.complete else '*'}" for t in tables)
                          for symbol, tables in sorted(stored.items()))
        out.append(f"| `{venue}` | {', '.join(forms)} | {cells} |")
    return [*out, ""]


def render() -> str:
    """The text of ``docs/config.md``."""
    schema, design = _schema()
    sections = _sections(schema, design)
    out = [
        "# Config file reference",
        "",
        "<!-- Generated by `python -m riskengine.docs` from the models in riskengine/config.py and",
        "     riskengine/venue.py (the text of a key is its field's description): edit those, then",
        "     regenerate. tests/test_docs.py fails when this file is stale. -->",
        "",
        "A config is a TOML file that `riskengine run`, `riskengine validate` and `riskengine sweep` read",
        "([docs/cli](cli/)). It is validated with typed models before anything runs; `riskengine schema`",
        "prints the same models as a JSON schema for editors. The embedded default of `riskengine run` is",
        "`riskengine/defaults/default.toml`; the shipped replays are in `backtests/`.",
        "",
        "- **Paths** (`path`, `catalog`, `file`, `outputs.dir`) are relative to the config file's folder;",
        "  `~` and `$VARIABLES` are expanded.",
        "- **Units**: times in seconds (`_s`), money in the tape's quote currency (USD, USDT or USDC; the",
        "  result table's `currency` column), shares and rates as fractions (`0.05` is 5%), datetimes in",
        "  UTC (a TOML datetime or ISO text; without a time zone: UTC).",
        "- **Key paths** name a key by its tables, as a sweep grid writes them: `population.seed`,",
        "  `scenario.tape.path`, `scenarios[1].window.start`, `venues[2].adl.policy`. Below, `[i]` stands for",
        "  any index.",
        "- **Defaults**: a key left out takes its default; *unset* means the key is absent (None in Python),",
        "  and the meaning says what that does.",
        "- **Numbers** are finite (`nan`, `inf` and `-inf` are refused everywhere) and within the range of",
        "  their kind: see [Ranges](#ranges) and each key's *allowed* cell.",
        "- **Mistakes** (an unknown key, a wrong type, a value out of range, a missing file) are reported as",
        "  one line naming the file, the key path and what was expected, with the nearest valid key for a",
        "  misspelt one; the command exits with status 2:",
        "",
        "```",
        *_mistakes(),
        "```",
        "",
        "## Contents",
        "",
        *[f"- [{s.heading}]({s.anchor})" for s in sections],
        "- [Ranges](#ranges)",
        "- [Preset values](#preset-values)",
        "- [Examples](#examples)",
        "",
    ]
    for section in sections:
        out += [f"## {section.heading}", ""]
        intro = section.intro or _prose(section.node.get("description"))
        if intro:
            out += [*textwrap.wrap(intro, 100, break_long_words=False, break_on_hyphens=False), ""]
        out += ["| key | type | default | allowed | meaning |", "|---|---|---|---|---|"]
        for key, kind, default, allowed, meaning in section.rows:
            out.append(f"| `{key}` | {kind} | {default} | {allowed} | {meaning} |")
        out.append("")
    out += ["## Margin tables", "", *MARGIN_TABLES_DOC.rstrip("\n").splitlines(), "", *_stored_tables()]
    out += _ranges()
    out += [
        "## Preset values",
        "",
        "What each preset sets (for its default symbol, or its first symbol with a table where the default has",
        "none; the newest margin table; `riskengine/venues/`, one file per rulebook with its sources). A key of a",
        "`[[venues]]` table replaces the preset's value; `margin.floors` and `margin.rates` are replaced",
        "together (a whole table).",
        "",
        *_preset_values(),
        "",
        "## Examples",
        "",
        "A real replay using every table (`riskengine validate` checks it, `riskengine run` runs it,",
        "`riskengine sweep` runs its grid):",
        "",
        "```toml",
        EXAMPLE_REPLAY.rstrip("\n"),
        "```",
        "",
        "Several synthetic scenarios, each with its own changes of `[population]` and `[liquidity]`, and a",
        "design without a preset:",
        "",
        "```toml",
        EXAMPLE_SCENARIOS.rstrip("\n"),
        "```",
        "",
        "Several instruments replayed together, merged in time order: each with its own tape (a file, the",
        "catalog or synthetic), stream and changes of `[liquidity]`, the accounts from a generated portfolio or",
        "a positions file (columns `account, instrument, size, entry_price, margin_mode, isolated_margin,",
        "wallet`, one row per position). Each design takes each instrument's margin table by its symbol;",
        "`results_by_instrument.parquet` holds a row per instrument:",
        "",
        "```toml",
        EXAMPLE_INSTRUMENTS.rstrip("\n"),
        "```",
        "",
        "A tape and stream from the local catalog (`riskengine data import`, [docs/cli/data.md](cli/data.md))",
        "and a population read from a file:",
        "",
        "```toml",
        EXAMPLE_CATALOG.rstrip("\n"),
        "```",
        "",
    ]
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    """``python -m riskengine.docs [--check] [--out FILE]``."""
    parser = argparse.ArgumentParser(prog="python -m riskengine.docs", description=__doc__.split("\n\n")[0])
    default = Path(__file__).resolve().parents[1] / CONFIG_DOC  # the checkout's docs/ (editable install)
    parser.add_argument("--out", default=str(default), help=f"the file to write (default {default})")
    parser.add_argument("--check", action="store_true", help="do not write; exit 1 if the file differs")
    args = parser.parse_args(argv)
    text = render()
    out = Path(args.out)
    if args.check:
        current = out.read_text(encoding="utf-8") if out.is_file() else None
        if current != text:
            print(f"{out}: stale (regenerate with: python -m riskengine.docs)", file=sys.stderr)
            return 1
        return 0
    if not out.parent.is_dir():
        print(f"{out}: no folder {out.parent} (give --out FILE)", file=sys.stderr)
        return 2
    write_atomic(out, lambda tmp: tmp.write_text(text, encoding="utf-8"))
    print(f"wrote {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
