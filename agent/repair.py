"""From what the model wrote in Action Input (or a <tool_call>) to arguments a tool accepts.

Small models (the embedded 0.5B above all) often copy the parameter SCHEMA from the prompt
instead of giving values, wrap the arguments in a function-call object, write a bare string
for a one-parameter tool, or add text after the JSON. Repairs fix what has one clear reading
and are flagged (ToolCall.repaired); anything else becomes an ArgumentError whose message
tells the model how to write the call, so it can try again.
"""

from __future__ import annotations

import ast
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import json5

from agent.errors import ArgumentError
from llm.toolcalls.jsontext import first_json_block, strip_fences
from llm.toolcalls.react import strip_partial_stop
from tools.registry import Tool, ToolArgumentError

_SCHEMA_KEYS = frozenset(
    {"name", "description", "required", "schema", "type", "title", "enum", "properties"}
    | {"items", "format", "minimum", "maximum", "default", "example", "examples", "value"}
    | {"input", "argument", "arg", "content"}
)
_SCHEMA_MARKERS = frozenset({"description", "required", "schema", "type"})
_VALUE_KEYS = ("value", "input", "argument", "arg", "content", "example", "default")
_WRAPPER_KEYS = ("arguments", "parameters", "args", "input", "action_input")
_EXAMPLE_VALUES = {"string": "...", "integer": 0, "number": 0, "boolean": True}


def parse_json_arguments(raw: str) -> tuple[Any, bool]:
    """Action Input text -> (value, lenient): lenient means strict JSON failed, json5 read it."""
    text = strip_fences(strip_partial_stop(raw))
    try:
        return json.loads(text), False
    except ValueError:
        pass
    try:
        return json5.loads(text), True
    except ValueError as e:
        raise ArgumentError(f"Action Input is not valid JSON ({e})") from None


@dataclass(frozen=True)
class ResolvedArguments:
    arguments: dict[str, Any]
    repaired: bool


def example_arguments(tool: Tool) -> str:
    """A JSON object in the tool's shape, for error messages that show the model the format."""
    props = tool.parameters["properties"]
    names = tool.parameters.get("required") or list(props)
    example = {n: _EXAMPLE_VALUES.get(props[n].get("type"), "...") for n in names}
    return json.dumps(example, ensure_ascii=False)


def resolve_tool_name(name: str, tools: Iterable[Tool]) -> str | None:
    """The enabled tool a garbled Action line means, if exactly one fits.

    Small models write "Calculator", "Employee Database" or a sentence such as "The
    calculator API can be used to ..." where the tool's name belongs.
    """
    tools = list(tools)
    wanted = _norm(name)
    for t in tools:
        if wanted in (_norm(t.name), _norm(t.name_for_human)):
            return t.name
    mentioned = {
        t.name
        for t in tools
        for label in (t.name, t.name_for_human)
        if re.search(rf"(?<![\w]){re.escape(label)}(?![\w])", name, re.IGNORECASE)
    }
    return mentioned.pop() if len(mentioned) == 1 else None


def _norm(label: str) -> str:
    return re.sub(r"[\s_-]+", "_", label.strip().lower())


def resolve_arguments(tool: Tool, raw: Any, *, repair: bool = True) -> ResolvedArguments:
    """raw: Action Input text, or an already decoded value (native calls). Raises ArgumentError."""
    repaired = False
    if isinstance(raw, str):
        value, repaired = _decode(tool, raw, repair)
    else:
        value = raw
    if repair:
        fixed = _repair_value(tool, value)
        repaired = repaired or fixed != value
        value = fixed
    try:
        return ResolvedArguments(tool.validate(value), repaired)
    except ToolArgumentError as e:
        raise ArgumentError(
            f"{e}. Format the arguments as a JSON object, e.g. {example_arguments(tool)}"
        ) from None


def _decode(tool: Tool, raw: str, repair: bool) -> tuple[Any, bool]:
    text = strip_fences(strip_partial_stop(raw))
    if not text:
        if not tool.parameters.get("required"):
            return {}, False
        raise ArgumentError(
            f"Action Input is empty; {tool.name} needs {tool.param_names}. "
            f"Format the arguments as a JSON object, e.g. {example_arguments(tool)}"
        )
    try:
        return parse_json_arguments(text)
    except ArgumentError as e:
        if not repair:
            raise ArgumentError(f"{e}. Write e.g. {example_arguments(tool)}") from None
        error = e
    embedded = first_json_block(text)
    if embedded is not None:
        return embedded, True
    try:  # a Python dict literal: {'a': True, 'b': None}
        value = ast.literal_eval(text)
        if isinstance(value, dict | list):
            return value, True
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        pass
    if len(tool.param_names) == 1:
        return text.strip().strip("\"'"), True  # a bare string; _repair_value names it
    raise ArgumentError(f"{error}. Write e.g. {example_arguments(tool)}")


def _repair_value(tool: Tool, value: Any) -> Any:
    params = tool.param_names
    value = _unwrap_call(tool, value)
    if _is_schema_item(tool, value) or _is_schema_list(tool, value):
        value = _values_from_schema(tool, value if isinstance(value, list) else [value])
    elif isinstance(value, dict) and value.get("type") == "object" and "properties" in value:
        props = value["properties"] if isinstance(value["properties"], dict) else {}
        value = _values_from_schema(tool, [{"name": k, **_as_dict(v)} for k, v in props.items()])
    if isinstance(value, dict):
        value = {k: _value_from_param_schema(tool, k, v) for k, v in value.items()}
    if not isinstance(value, dict | list) and len(params) == 1:
        return {params[0]: value}
    if isinstance(value, list) and len(params) == 1 and len(value) == 1:
        item = value[0]
        if not isinstance(item, dict | list):
            return {params[0]: item}
    if isinstance(value, dict) and len(params) == 1 and len(value) == 1:
        ((key, item),) = value.items()
        if key not in params and not isinstance(item, dict | list):
            return {params[0]: item}  # {"query": "1+1"} for calculator(expression)
    if isinstance(value, dict):
        required = tool.parameters.get("required", [])
        known = {k: v for k, v in value.items() if k in params}
        if known != value and required and all(r in known for r in required):
            return known  # drop extra keys the model made up
    return value


def _as_dict(v: Any) -> dict[str, Any]:
    return v if isinstance(v, dict) else {}


def _unwrap_call(tool: Tool, value: Any) -> Any:
    """{"name": tool, "arguments": {...}} or {tool: {...}} -> the arguments."""
    if not isinstance(value, dict):
        return value
    if value.get("name") == tool.name:
        for key in _WRAPPER_KEYS:
            if key in value:
                inner = value[key]
                if isinstance(inner, str):
                    try:
                        inner = json5.loads(inner)
                    except ValueError:
                        pass
                return inner
    if len(value) == 1 and tool.name in value and isinstance(value[tool.name], dict):
        return value[tool.name]
    return value


def _is_schema_item(tool: Tool, value: Any) -> bool:
    return (
        isinstance(value, dict)
        and value.get("name") in tool.param_names
        and set(value) <= _SCHEMA_KEYS
        and bool(set(value) & _SCHEMA_MARKERS)
    )


def _is_schema_list(tool: Tool, value: Any) -> bool:
    return (
        isinstance(value, list)
        and bool(value)
        and all(
            isinstance(v, dict) and "name" in v and v.get("name") in tool.param_names for v in value
        )
    )


def _values_from_schema(tool: Tool, items: list[dict[str, Any]]) -> dict[str, Any]:
    """The parameter list copied from the prompt: keep a value if the model put one in."""
    out: dict[str, Any] = {}
    for item in items:
        for key in _VALUE_KEYS:
            if key in item and not isinstance(item[key], dict):
                out[item["name"]] = item[key]
                break
    if not out:
        raise ArgumentError(
            "Action Input repeats the parameter description instead of giving values. "
            f"Format the arguments as a JSON object, e.g. {example_arguments(tool)}"
        )
    return out


def _value_from_param_schema(tool: Tool, name: str, value: Any) -> Any:
    """{"expression": {"type": "string", "description": ...}} -> a value inside, or an error."""
    props = tool.parameters["properties"]
    if name not in props or props[name].get("type") == "object" or not isinstance(value, dict):
        return value
    if not value or not set(value) <= _SCHEMA_KEYS or not set(value) & _SCHEMA_MARKERS:
        return value
    for key in _VALUE_KEYS:
        if key in value and not isinstance(value[key], dict):
            return value[key]
    raise ArgumentError(
        f"Action Input gives the schema of {name!r} instead of its value. "
        f"Format the arguments as a JSON object, e.g. {example_arguments(tool)}"
    )
