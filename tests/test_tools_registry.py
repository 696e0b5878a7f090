"""The tool registry: schemas from hints + docstrings, loud definition errors, safe calls."""

from __future__ import annotations

import enum
import json
import time
from pathlib import Path
from typing import Literal, Optional  # noqa: UP035 - Optional[...] must keep working

import pytest

from tools.registry import (
    DuplicateToolError,
    Tool,
    ToolDefinitionError,
    ToolRegistry,
    make_tool,
    result_text,
    tool,
)


@tool(name_for_human="Everything")
def everything(
    text: str,
    count: int,
    ratio: float,
    flag: bool,
    tags: list[str],
    mode: Literal["fast", "slow"],
    limit: int | None = None,
    note: Optional[str] = None,  # noqa: UP045
    scale: float = 1.5,
) -> str:
    """Exercise every supported parameter type.

    This second paragraph is hard-wrapped
    across two lines.

    Args:
        text: Some text.
        count: How many.
        ratio: A fraction
            that continues on the next line.
        flag: On or off.
        tags: Labels.
        mode: Speed.
        limit: Optional cap.
        note: Optional note.
        scale: A factor with a default.
    """
    return json.dumps([text, count, ratio, flag, tags, mode, limit, note, scale])


def test_schema_from_hints_and_docstring():
    props = everything.parameters["properties"]
    assert props["text"] == {"type": "string", "description": "Some text."}
    assert props["count"]["type"] == "integer"
    assert props["ratio"] == {
        "type": "number",
        "description": "A fraction that continues on the next line.",
    }
    assert props["flag"]["type"] == "boolean"
    assert props["tags"]["type"] == "array" and props["tags"]["items"] == {"type": "string"}
    assert props["mode"]["enum"] == ["fast", "slow"] and props["mode"]["type"] == "string"
    assert props["limit"]["type"] == "integer" and "default" not in props["limit"]
    assert props["note"]["type"] == "string"
    assert props["scale"]["default"] == 1.5
    assert everything.parameters["required"] == ["text", "count", "ratio", "flag", "tags", "mode"]
    assert everything.description == (
        "Exercise every supported parameter type.\n\n"
        "This second paragraph is hard-wrapped across two lines."
    )


def test_react_and_openai_renderings():
    assert everything.name == "everything" and everything.name_for_human == "Everything"
    react = everything.react_parameters()
    assert [p["name"] for p in react][:2] == ["text", "count"]
    assert react[0] == {
        "name": "text",
        "description": "Some text.",
        "required": True,
        "schema": {"type": "string"},
    }
    assert react[6]["required"] is False
    schema = everything.openai_schema()
    assert schema["type"] == "function"
    assert schema["function"]["name"] == "everything"
    assert schema["function"]["parameters"] is everything.parameters
    json.dumps(schema)  # serialisable as sent to a server


def test_missing_hint_docstring_or_param_description_fail_loudly():
    def no_doc(x: int) -> int:
        return x

    def no_hint(x) -> int:  # noqa: ANN001
        """Doc.

        Args:
            x: A number.
        """
        return x

    def undocumented_param(x: int, y: int) -> int:
        """Doc.

        Args:
            x: A number.
        """
        return x

    def bad_type(x: set[int]) -> int:
        """Doc.

        Args:
            x: A set.
        """
        return 0

    with pytest.raises(ToolDefinitionError, match="docstring"):
        make_tool(no_doc)
    with pytest.raises(ToolDefinitionError, match="missing type hint"):
        make_tool(no_hint)
    with pytest.raises(ToolDefinitionError, match="'y'.*missing description"):
        make_tool(undocumented_param)
    with pytest.raises(ToolDefinitionError, match="unsupported type"):
        make_tool(bad_type)
    with pytest.raises(ToolDefinitionError, match="tool name"):
        make_tool(everything.func, name="has space")
    with pytest.raises(ToolDefinitionError, match="not a Tool"):
        ToolRegistry().register(no_doc)  # type: ignore[arg-type]


def test_duplicate_names_are_refused():
    reg = ToolRegistry([everything])
    with pytest.raises(DuplicateToolError):
        reg.register(make_tool(everything.func))
    assert reg.names() == ["everything"]


_BASE = {"text": "t", "count": 1, "ratio": 1.0, "flag": True, "tags": [], "mode": "slow"}


def test_call_validates_and_coerces():
    reg = ToolRegistry([everything])
    ok = reg.call(
        "everything",
        {"text": 5, "count": "3", "ratio": "0.5", "flag": "true", "tags": ["a"], "mode": "fast"},
    )
    assert ok.ok, ok.text
    assert json.loads(ok.text) == ["5", 3, 0.5, True, ["a"], "fast", None, None, 1.5]
    bad = [
        ("nope", {}, "unknown tool"),
        ("everything", "not a dict", "expects a JSON object"),
        ("everything", {"text": "x"}, "missing required"),
        ("everything", {"text": "x", "zzz": 1}, "unknown parameter"),
        ("everything", {"count": "1e400"}, "must be of type integer"),
    ]
    base = _BASE
    for name, args, message in bad:
        if name == "everything" and isinstance(args, dict) and "count" in args:
            args = {**base, **args}
        res = reg.call(name, args)
        assert not res.ok and message in res.text and res.text.startswith("Error: ")
    res = reg.call("everything", {**base, "mode": "medium"})
    assert not res.ok and "must be one of" in res.text


def _sleepy_tool(seconds: float) -> Tool:
    def sleepy(n: int) -> str:
        """Sleep, then answer.

        Args:
            n: Ignored.
        """
        time.sleep(seconds)
        return "late"

    return make_tool(sleepy, timeout=0.2)


def test_timeout_becomes_an_error_result_and_registry_keeps_working():
    reg = ToolRegistry([_sleepy_tool(2.0), everything])
    start = time.perf_counter()
    res = reg.call("sleepy", {"n": 1})
    assert time.perf_counter() - start < 1.5
    assert not res.ok and "timed out after 0.2 s" in res.text
    assert reg.call("everything", {**_BASE}).ok


def test_exceptions_become_error_text():
    @tool
    def boom(x: int) -> int:
        """Always fails.

        Args:
            x: Anything.
        """
        raise RuntimeError(f"bad {x}")

    @tool
    def exits(x: int) -> int:
        """Calls sys.exit.

        Args:
            x: Anything.
        """
        raise SystemExit(3)

    reg = ToolRegistry([boom, exits])
    res = reg.call("boom", {"x": 7})
    assert not res.ok and res.text == "Error: tool 'boom' failed: RuntimeError: bad 7"
    res = reg.call("exits", {"x": 1})
    assert not res.ok and "SystemExit" in res.text


def test_truncation_and_non_ascii_json():
    @tool
    def big(n: int) -> str:
        """Return n characters.

        Args:
            n: Length.
        """
        return "x" * n

    @tool
    def person(name: str) -> dict:
        """Return a record.

        Args:
            name: A name.
        """
        return {"name": name, "city": "北京"}

    reg = ToolRegistry([big, person], max_result_chars=100)
    res = reg.call("big", {"n": 150})
    assert res.ok and res.truncated
    assert res.text == "x" * 100 + "\n...[truncated 50 characters]"
    assert not reg.call("big", {"n": 100}).truncated
    res = reg.call("person", {"name": "张三"})
    assert res.text == '{"name": "张三", "city": "北京"}'
    assert result_text(None) == ("null", False)


def test_subset_keeps_registry_order():
    reg = ToolRegistry([everything, _sleepy_tool(0)])
    assert reg.subset(["sleepy", "everything", "ghost"]).names() == ["everything", "sleepy"]


def _one_param_tool(hint: str) -> Tool:
    namespace: dict = {}
    source = (
        "from typing import Any, Literal\n"
        f"def f(x: {hint}) -> int:\n"
        '    """Doc.\n\n    Args:\n        x: A value.\n    """\n'
        "    return 0\n"
    )
    exec(source, namespace)  # noqa: S102 - builds a function with the given hint
    return make_tool(namespace["f"])


@pytest.mark.parametrize("hint", ["int | str", "Any", "Literal[1, 'a']", "list[int] | str"])
def test_hints_without_one_json_type_are_refused(hint):
    with pytest.raises(ToolDefinitionError, match="unsupported type hint"):
        _one_param_tool(hint)


class Unit(enum.Enum):
    C = "celsius"
    F = "fahrenheit"


def test_library_schema_extras():
    """What transformers' get_json_schema adds over the old hint walker: Enum classes, dict
    value types, fixed-length tuples and a "(choices: [...])" note in a description."""

    def convert(unit: Unit, weights: dict[str, int], pair: tuple[int, str], size: str) -> str:
        """Convert.

        Args:
            unit: The unit.
            weights: Weights by name.
            pair: A number and a label.
            size: How big (choices: ["S", "M"])
        """
        return ""

    props = make_tool(convert).parameters["properties"]
    assert props["unit"] == {
        "type": "string",
        "enum": ["celsius", "fahrenheit"],
        "description": "The unit.",
    }
    assert props["weights"]["additionalProperties"] == {"type": "integer"}
    assert props["pair"]["prefixItems"] == [{"type": "integer"}, {"type": "string"}]
    assert props["size"] == {"type": "string", "enum": ["S", "M"], "description": "How big"}


def test_needed_when_is_declared_and_checked():
    @tool(needed_when=r"(?i)\bweather\b|天气")
    def weather(city: str) -> str:
        """The weather in a city.

        Args:
            city: The city.
        """
        return "sunny"

    assert weather.needed_when == r"(?i)\bweather\b|天气"
    assert weather.clearly_needed("What's the Weather in Paris?")
    assert weather.clearly_needed("北京今天天气怎么样")
    assert not weather.clearly_needed("Tell me a joke")
    assert everything.needed_when == "" and not everything.clearly_needed("anything")
    with pytest.raises(ToolDefinitionError, match="needed_when is not a regex"):
        make_tool(weather.func, needed_when="(unclosed")


def test_null_arguments():
    """null is a value only for X | None; for a parameter with a default it means the default;
    for a required one it is refused with a message the model can act on."""
    reg = ToolRegistry([everything])
    assert everything.nullable == {"limit", "note"}
    assert "nullable" not in json.dumps(everything.parameters)  # not JSON Schema
    res = reg.call("everything", {**_BASE, "limit": None, "note": None, "scale": None})
    assert res.ok and json.loads(res.text)[-3:] == [None, None, 1.5]
    res = reg.call("everything", {**_BASE, "text": None})
    assert not res.ok and res.text == "Error: everything.text is required: give a string, not null"


CASES = Path(__file__).resolve().parent.parent / "eval" / "cases.jsonl"


def test_builtins_declare_when_they_are_clearly_needed(tmp_path):
    from tools.builtin import default_registry

    reg = default_registry(db_path=tmp_path / "employees.sqlite")
    assert all(t.needed_when for t in reg), [t.name for t in reg if not t.needed_when]
    needs = {
        "calculator": ["What is 37 * 89?", "37乘以89等于多少"],
        "employee_db": ["职工张三的生日是在今年10月份吗？", "What is Li Si's job title?"],
        "clock": ["What time is it in Tokyo?", "今天星期几"],
        "python": ["Write Python to sort a list", "用代码算一下"],
    }
    for name, questions in needs.items():
        assert all(reg.get(name).clearly_needed(q) for q in questions), name
    # never on the evaluation's chit-chat cases, or the reject aid would force a tool call
    for line in CASES.read_text(encoding="utf-8").splitlines():
        case = json.loads(line) if line.strip() and not line.startswith("#") else None
        if case and case["expected_tool"] is None:
            fired = [t.name for t in reg if t.clearly_needed(case["query"])]
            assert not fired, (case["id"], fired)
