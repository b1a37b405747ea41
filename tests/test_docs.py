"""The docs against the code.

- ``docs/config.md`` is exactly what ``python -m riskengine.docs`` renders, names every key path of
  the config schema and of a venue design, and no key the schemas lack;
- every ``riskengine`` subcommand has a page ``docs/cli/<command>.md``;
- every example command in the docs and the README (``bash`` blocks, and ``$ riskengine ...``
  lines of output blocks) is accepted by the real parser, and the configs it names exist;
- every TOML example in the docs and the README validates (a fragment, merged into the embedded default), and a
  whole config whose files are in ../shared/data passes ``riskengine validate``'s checks.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import glob
import io
import re
import shlex
import tomllib
from pathlib import Path

import pytest

from riskengine import backtest, config, docs, sweep, venues
from riskengine.cli import build_parser
from riskengine.venue import VenueDesign

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
PAGES = sorted(DOCS.rglob("*.md"))
SHARED_DATA = ROOT.parent / "shared" / "data"
#: a whole config in the docs is written as a file in backtests/ (like the shipped ones)
EXAMPLE_DIR = ROOT / "backtests"


# ------------------------------------------------------------------------------ helpers
def _blocks(path: Path) -> list[tuple[str, str, int]]:
    """Fenced blocks of a Markdown file: (language, text, line of the opening fence)."""
    out, lang, lines, start, indent = [], None, [], 0, 0
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        fence = re.match(r"^( *)```(\S*)\s*$", line)
        if fence and lang is None:
            lang, lines, start, indent = fence.group(2), [], number, len(fence.group(1))
        elif fence and not fence.group(2):
            out.append((lang, "\n".join(lines), start))
            lang = None
        elif lang is not None:  # a block inside a list item: its lines carry the item's indent
            lines.append(line[indent:] if line[:indent].isspace() else line)
    return out


def _schema_paths(node: dict, defs: dict, prefix: str = "") -> set[str]:
    """Every key path of a JSON schema (``[i]`` for list items), independently of riskengine.docs."""
    if "$ref" in node:
        return _schema_paths(defs[node["$ref"].rsplit("/", 1)[1]], defs, prefix)
    paths: set[str] = set()
    for alt in node.get("anyOf", []) + node.get("oneOf", []):
        paths |= _schema_paths(alt, defs, prefix)
    if node.get("type") == "array" and isinstance(node.get("items"), dict):
        paths |= _schema_paths(node["items"], defs, f"{prefix}[i]")
    for name, prop in node.get("properties", {}).items():
        key = f"{prefix}.{name}" if prefix else name
        paths.add(key)
        paths |= _schema_paths(prop, defs, key)
    return paths


def _expected_keys() -> set[str]:
    schema = config.json_schema()
    keys = _schema_paths(schema, schema["$defs"])
    # each [[scenarios]] table has the keys of [scenario]: the reference documents them once
    keys = {k.replace("scenarios[i].", "scenario.") for k in keys}
    design = VenueDesign.model_json_schema()
    keys |= {f"venues[i].{k}" for k in _schema_paths(design, design.get("$defs", {}))}
    keys |= {f"venues[i].{k}" for k in venues._PRESET_KEYS}  # the preset's own options
    return keys


def _documented_keys(text: str) -> set[str]:
    """The first cell of every row of the reference's key tables."""
    keys, in_table = set(), False
    for line in text.splitlines():
        if line.startswith("| key |"):
            in_table = True
        elif not line.startswith("|"):
            in_table = False
        elif in_table and not line.startswith("|---"):
            cell = line.split("|")[1].strip()
            assert re.fullmatch(r"`[^`]+`", cell), f"docs/config.md: a key cell is not one `key`: {line}"
            keys.add(cell.strip("`"))
    return keys


def _commands(text: str) -> list[str]:
    """``riskengine`` command lines of a shell block: continuations joined, comments dropped,
    split at ``&&``, ``|``, ``;`` and redirections."""
    text = text.replace("\\\n", " ")
    out = []
    for line in text.splitlines():
        line = re.sub(r"^\$ ", "", line.strip())
        lexer = shlex.shlex(line, posix=True, punctuation_chars=True)
        lexer.whitespace_split, lexer.commenters = True, "#"
        words, command = list(lexer), []
        for word in [*words, ";"]:
            if word in ("&&", "||", "|", ";", "&", ">", ">>", "<", "2>"):
                if command[:1] == ["riskengine"]:
                    out.append(command)
                command = [] if word not in (">", ">>", "<", "2>") else ["<redirect>"]
            elif command[:1] != ["<redirect>"]:
                command.append(word)
    return [shlex.join(c) for c in out]


def _example_commands() -> list[tuple[str, str, str | None]]:
    """(where, command, the error line shown for it or None) of every example command: each
    ``riskengine`` command of a shell block, and each ``$ riskengine ...`` line of an output block
    (with the ``riskengine: error:`` line that follows it, if any)."""
    found = []
    for page in [*PAGES, ROOT / "README.md"]:
        where = page.relative_to(ROOT)
        for lang, text, line in _blocks(page):
            if lang in ("bash", "sh", "shell", "console"):
                found += [(f"{where}:{line}", c, None) for c in _commands(text)]
                continue
            lines = text.splitlines()
            for k, shown in enumerate(lines):
                if shown.startswith("$ riskengine"):
                    after = lines[k + 1] if k + 1 < len(lines) else ""
                    error = after if after.startswith("riskengine: error: ") else None
                    found += [(f"{where}:{line + 1 + k}", c, error) for c in _commands(shown)]
    return found


def _toml_examples() -> list[tuple[str, str]]:
    return [(f"{p.relative_to(ROOT)}:{line}", text) for p in [*PAGES, ROOT / "README.md"]
            for lang, text, line in _blocks(p) if lang == "toml"]


def _merge(base: dict, change: dict) -> dict:
    """A config fragment over a whole config: tables merged key by key, anything else replaced."""
    out = copy.deepcopy(base)
    for key, value in change.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


# ------------------------------------------------------------------------------ docs/config.md
def test_config_reference_is_what_the_models_render():
    text = (ROOT / docs.CONFIG_DOC).read_text(encoding="utf-8")
    assert text == docs.render(), "docs/config.md is stale: regenerate it with `python -m riskengine.docs`"
    assert docs.main(["--check", "--out", str(ROOT / docs.CONFIG_DOC)]) == 0


def test_config_reference_names_every_key_and_no_other():
    documented = _documented_keys((ROOT / docs.CONFIG_DOC).read_text(encoding="utf-8"))
    expected = _expected_keys()
    assert len(expected) > 100  # the walk found the nested tables, not only the top level
    assert not expected - documented, f"keys missing from docs/config.md: {sorted(expected - documented)}"
    assert not documented - expected, f"docs/config.md names keys the schema lacks: {sorted(documented - expected)}"


def test_check_mode_reports_a_stale_file(tmp_path, capsys):
    stale = tmp_path / "config.md"
    stale.write_text(docs.render().replace("| `population.seed` |", "| `population.sed` |"), encoding="utf-8")
    assert docs.main(["--check", "--out", str(stale)]) == 1
    assert "stale" in capsys.readouterr().err
    assert docs.main(["--out", str(stale)]) == 0
    assert stale.read_text(encoding="utf-8") == docs.render()
    assert not list(tmp_path.glob("*.tmp"))
    assert docs.main(["--out", str(tmp_path / "no-such-folder" / "config.md")]) == 2
    assert "no folder" in capsys.readouterr().err


# ------------------------------------------------------------------------------ CLI pages
def test_every_command_has_a_page():
    parser = build_parser()
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices
    assert {"run", "validate", "schema", "data", "sweep", "bench"} <= set(commands)
    missing = [c for c in commands if not (DOCS / "cli" / f"{c}.md").is_file()]
    assert not missing, f"no page docs/cli/<command>.md for: {', '.join(missing)}"


EXAMPLES = _example_commands()


def test_the_docs_have_example_commands():
    pages = {where.split(":")[0] for where, _, _ in EXAMPLES}
    for name in ("run", "validate", "schema", "data"):
        assert f"docs/cli/{name}.md" in pages, f"docs/cli/{name}.md has no example command"


def _parse(argv: list[str]) -> tuple[argparse.Namespace | None, str]:
    """The real parser's namespace, or None and the one line it printed."""
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        try:
            return build_parser().parse_args(argv), ""
        except SystemExit as exc:
            assert exc.code == 2
    return None, err.getvalue().strip()


@pytest.mark.parametrize("where, command, error", EXAMPLES, ids=[f"{w} {c}"[:90] for w, c, _ in EXAMPLES])
def test_example_command_parses_and_its_configs_exist(where, command, error):
    args, refusal = _parse(shlex.split(command)[1:])
    if error is not None and args is None:  # an example of a bad argument: the parser says just that
        assert refusal == error, f"{where}: `{command}` prints {refusal!r}, the docs show {error!r}"
        return
    assert args is not None, f"{where}: `{command}`: the parser refuses it: {refusal}"
    if error is not None:  # an example of a bad config or file: it parses, the command then refuses
        return
    names = list(getattr(args, "configs", None) or []) + ([args.config] if getattr(args, "config", None) else [])
    for name in names:
        if re.fullmatch(r"[A-Z][A-Z_]*(\.toml)?", name):  # a placeholder, as in a usage line
            continue
        assert glob.glob(str(ROOT / name)), f"{where}: `{command}`: no config {name} (relative to the repository)"


def test_example_data_files_exist(shared_data):
    for where, command, error in EXAMPLES:
        for word in shlex.split(command):
            if word.startswith("../shared/data/") and error is None:
                assert (ROOT / word).exists(), f"{where}: `{command}`: no file {word}"


def test_a_bad_example_command_is_caught():
    commands = _commands("riskengine run --out x --fast && riskengine schema > s.json  # note\n"
                         "$ riskengine validate \\\n  backtests/*.toml\necho riskengine run")
    assert commands == ["riskengine run --out x --fast", "riskengine schema", "riskengine validate 'backtests/*.toml'"]
    assert _parse(shlex.split(commands[0])[1:]) == (None, "riskengine: error: unrecognized arguments: --fast")


# ------------------------------------------------------------------------------ TOML examples
TOMLS = _toml_examples()


def test_the_docs_have_toml_examples():
    assert sum(where.startswith("docs/config.md") for where, _ in TOMLS) >= 3


@pytest.mark.parametrize("where, text", TOMLS, ids=[w for w, _ in TOMLS])
def test_toml_example_validates(where, text, request):
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        pytest.fail(f"{where}: not valid TOML: {exc}")
    whole = "scenario" in data or "scenarios" in data
    if not whole:  # a fragment: it must fit the embedded default
        data = _merge(config.load_default().config.model_dump(mode="json", exclude_none=True), data)
    loaded = config.parse(data, where, EXAMPLE_DIR, EXAMPLE_DIR / "example.toml")
    assert backtest.build_designs(loaded)  # every design within the ranges (riskengine.ranges), whatever the files
    files = [v for k, v in _leaves(loaded.resolved(loaded.config)) if k in config.PATH_KEYS and v is not None]
    if all(Path(f).is_relative_to(SHARED_DATA.resolve()) for f in files):  # not the reader's own files
        if files:
            request.getfixturevalue("shared_data")  # skipped without the data, failed under CI
        assert backtest.check(loaded)  # as `riskengine validate`: designs resolve, files exist, ...
        if loaded.config.sweep is not None:
            assert sweep.expand(loaded)  # ... and every run of the grid validates


def _leaves(value, key=None):
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _leaves(v, k)
    elif isinstance(value, list):
        for v in value:
            yield from _leaves(v, key)
    else:
        yield key, value
