"""User plugins: good ones load, broken ones are reported and skipped, the rest still load."""

from __future__ import annotations

import logging
import textwrap
from pathlib import Path

import pytest

from tools.builtin import default_registry
from tools.plugins import ENV_VAR, load_plugins, plugin_dir
from tools.registry import ToolRegistry

ROOT = Path(__file__).resolve().parent.parent

GOOD = '''
from tools import tool


@tool(name_for_human="Shout")
def shout(text: str, times: int = 1) -> str:
    """Upper-case some text.

    Args:
        text: The text.
        times: How many copies.
    """
    return " ".join([text.upper()] * times)


alias = shout  # the same Tool under two names registers once
'''

BROKEN = {
    "syntax.py": "def oops(:\n    pass\n",
    "imports.py": "import package_that_does_not_exist_anywhere\n",
    "no_doc.py": "from tools import tool\n\n@tool\ndef nodoc(x: int) -> int:\n    return x\n",
    "dup_builtin.py": GOOD.replace("shout", "calculator"),
    "z_dup.py": GOOD,  # `shout` again, after good.py loaded it (files load in name order)
    "raises.py": "raise RuntimeError('plugin init failed')\n",
    "exits.py": "import sys\nsys.exit(1)\n",
    "empty.py": "X = 1\n",
}


def _write(folder: Path, name: str, source: str) -> None:
    (folder / name).write_text(textwrap.dedent(source), encoding="utf-8")


def test_good_plugin_loads_broken_ones_are_reported_and_skipped(tmp_path, caplog):
    _write(tmp_path, "good.py", GOOD)
    for name, source in BROKEN.items():
        _write(tmp_path, name, source)
    _write(tmp_path, "_helper.py", "raise RuntimeError('helpers are not plugins')\n")
    (tmp_path / "notes.txt").write_text("not python")
    reg = default_registry(db_path=tmp_path / "e.sqlite", enable_python=False)
    with caplog.at_level(logging.WARNING, logger="tools.plugins"):
        problems = load_plugins(tmp_path, reg)
    assert reg.names() == ["calculator", "employee_db", "clock", "shout"]
    assert len(problems) == len(BROKEN)
    by_file = {p.split(":")[0].split()[-1]: p for p in problems}
    assert set(by_file) == set(BROKEN)
    assert "SyntaxError" in by_file["syntax.py"] and "line 1" in by_file["syntax.py"]
    assert "ModuleNotFoundError" in by_file["imports.py"]
    assert "docstring" in by_file["no_doc.py"]
    assert "already registered: calculator" in by_file["dup_builtin.py"]
    assert "already registered: shout" in by_file["z_dup.py"]
    assert "plugin init failed" in by_file["raises.py"]
    assert "SystemExit" in by_file["exits.py"]
    assert "no @tool" in by_file["empty.py"]
    assert [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING] == problems
    assert reg.call("shout", {"text": "hi", "times": 2}).text == "HI HI"
    assert reg.get("shout").name_for_human == "Shout"


def test_a_plugin_loads_whole_or_not_at_all(tmp_path):
    _write(
        tmp_path,
        "half.py",
        GOOD + GOOD.replace("def shout", "def clock").replace("from tools import tool", ""),
    )
    reg = default_registry(db_path=tmp_path / "e.sqlite", enable_python=False)
    problems = load_plugins(tmp_path, reg)
    assert len(problems) == 1 and "clock" in problems[0]
    assert "shout" not in reg  # nothing from the clashing file was registered


def test_same_file_name_in_two_folders_gets_unique_modules(tmp_path):
    for sub, word in (("a", "first"), ("b", "second")):
        (tmp_path / sub).mkdir()
        _write(tmp_path / sub, "tool.py", GOOD.replace("shout", f"shout_{word}"))
    reg = ToolRegistry()
    assert load_plugins(tmp_path / "a", reg) == [] and load_plugins(tmp_path / "b", reg) == []
    assert reg.names() == ["shout_first", "shout_second"]


def test_missing_folder_is_reported(tmp_path):
    problems = load_plugins(tmp_path / "nope", ToolRegistry())
    assert len(problems) == 1 and "does not exist" in problems[0]


def test_shipped_example_plugin(tmp_path):
    reg = default_registry(db_path=tmp_path / "e.sqlite", enable_python=False)
    assert load_plugins(ROOT / "examples" / "plugins", reg) == []
    assert "unit_convert" in reg and "list_units" in reg
    call = reg.call
    assert call("unit_convert", {"value": 100, "from_unit": "C", "to_unit": "F"}).text == (
        "100 C = 212 F"
    )
    assert call("unit_convert", {"value": 1, "from_unit": "mi", "to_unit": "km"}).text == (
        "1 mi = 1.60934 km"
    )
    assert call("unit_convert", {"value": 2, "from_unit": "jin", "to_unit": "kg"}).text == (
        "2 jin = 1 kg"
    )
    bad = call("unit_convert", {"value": 1, "from_unit": "kg", "to_unit": "m"})
    assert not bad.ok and "cannot convert" in bad.text
    cold = call("unit_convert", {"value": -500, "from_unit": "C", "to_unit": "K"})
    assert not cold.ok and "absolute zero" in cold.text
    assert json_list(call("list_units", {"kind": "mass"}).text)[:3] == ["mg", "g", "kg"]
    schema = reg.get("unit_convert").openai_schema()["function"]
    assert schema["parameters"]["required"] == ["value", "from_unit", "to_unit"]


def json_list(text: str) -> list[str]:
    import json

    return json.loads(text)


@pytest.mark.parametrize(
    ("cli", "env", "expected"),
    [
        (None, {}, None),
        ("/x/cli", {ENV_VAR: "/x/env"}, Path("/x/cli")),
        (None, {ENV_VAR: "/x/env"}, Path("/x/env")),
    ],
)
def test_plugin_dir_from_cli_or_env(cli, env, expected):
    assert plugin_dir(cli, env) == expected
