"""Tools as typed functions: @tool builds the JSON schema from hints and docstring.

A tool renders two ways: Qwen's ReAct description line and the OpenAI / Qwen2.5 `tools`
schema. Calling a tool never raises: failures and timeouts come back as a ToolResult whose
text the agent feeds to the model as the Observation.
"""

from __future__ import annotations

import inspect
import json
import re
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

DEFAULT_TIMEOUT = 30.0
MAX_RESULT_CHARS = 4000


class ToolDefinitionError(TypeError):
    """A function cannot become a tool (missing hint or description)."""


class DuplicateToolError(ValueError):
    pass


class ToolArgumentError(ValueError):
    """Arguments do not fit the tool's schema; the message is written for the model."""


@dataclass(frozen=True)
class ToolResult:
    text: str
    ok: bool
    seconds: float
    error: str | None = None
    truncated: bool = False


def _unwrap(text: str) -> str:
    """Join hard-wrapped lines; keep blank-line paragraph breaks."""
    paragraphs = re.split(r"\n\s*\n", text.strip())
    return "\n\n".join(" ".join(line.strip() for line in p.splitlines()) for p in paragraphs)


def _function_schema(func: Callable[..., Any], tool_name: str) -> tuple[str, dict[str, Any]]:
    """(description, parameters) from transformers' get_json_schema, refusals made ours.

    get_json_schema reads the hints and the Google-style docstring; what it cannot express
    for us is refused here: a parameter must have exactly one JSON type (the validator below
    coerces to that type), so Any, unions of several types and mixed-type Literals fail.
    """
    from transformers.utils import get_json_schema
    from transformers.utils.chat_template_utils import (
        DocstringParsingException,
        TypeHintParsingException,
    )

    try:
        function = get_json_schema(func)["function"]
    except TypeHintParsingException as e:
        raise ToolDefinitionError(f"tool {tool_name!r}: unsupported type hint: {e}") from None
    except DocstringParsingException as e:
        raise ToolDefinitionError(f"tool {tool_name!r}: {e}") from None
    except Exception as e:  # noqa: BLE001 - NameError, TypeError... from a bad annotation
        raise ToolDefinitionError(f"tool {tool_name!r}: cannot resolve type hints: {e}") from None
    parameters = function["parameters"]
    for pname, schema in parameters["properties"].items():
        kind = schema.get("type")
        if not isinstance(kind, str):
            raise ToolDefinitionError(
                f"tool {tool_name!r}, parameter {pname!r}: unsupported type hint "
                f"(needs one JSON type, or X | None; got {kind or schema})"
            )
    return _unwrap(function.get("description") or ""), parameters


@dataclass(frozen=True)
class Tool:
    name: str  # name_for_model
    name_for_human: str
    description: str  # description_for_model
    parameters: dict[str, Any]  # JSON schema of an object
    func: Callable[..., Any] = field(repr=False, compare=False)
    timeout: float = DEFAULT_TIMEOUT
    # A regex over the user's question: when it matches, an answer without this tool is
    # suspect (the agent's "reject" aid re-asks once). "" for tools with no such rule.
    needed_when: str = ""
    nullable: frozenset[str] = frozenset()  # parameters typed X | None: null is a value

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.func(*args, **kwargs)

    def clearly_needed(self, question: str) -> bool:
        """Whether needed_when matches the question."""
        return bool(self.needed_when) and re.search(self.needed_when, question) is not None

    @property
    def param_names(self) -> list[str]:
        return list(self.parameters["properties"])

    def react_parameters(self) -> list[dict[str, Any]]:
        """Qwen's ReAct parameter list: [{name, description, required, schema}]."""
        required = set(self.parameters.get("required", []))
        out = []
        for pname, schema in self.parameters["properties"].items():
            s = {k: v for k, v in schema.items() if k != "description"}
            out.append(
                {
                    "name": pname,
                    "description": schema.get("description", ""),
                    "required": pname in required,
                    "schema": s,
                }
            )
        return out

    def openai_schema(self) -> dict[str, Any]:
        return {
            "type": "function",
            "function": {
                "name": self.name,
                "description": self.description,
                "parameters": self.parameters,
            },
        }

    def validate(self, arguments: Any) -> dict[str, Any]:
        """Check arguments against the schema; coerce obvious scalars ("3" -> 3)."""
        if not isinstance(arguments, dict):
            raise ToolArgumentError(
                f"{self.name} expects a JSON object with {self.param_names}, got {arguments!r}"
            )
        props = self.parameters["properties"]
        unknown = [k for k in arguments if k not in props]
        if unknown:
            raise ToolArgumentError(
                f"{self.name} got unknown parameter(s) {unknown}; its parameters are "
                f"{self.param_names}"
            )
        required = self.parameters.get("required", [])
        missing = [k for k in required if k not in arguments]
        if missing:
            raise ToolArgumentError(f"{self.name} is missing required parameter(s) {missing}")
        out: dict[str, Any] = {}
        for k, v in arguments.items():
            if v is None and k not in self.nullable:
                if k in required:
                    raise ToolArgumentError(
                        f"{self.name}.{k} is required: give a {props[k].get('type')}, not null"
                    )
                continue  # null for a parameter with a default: the default applies
            out[k] = _coerce(v, props[k], f"{self.name}.{k}")
        return out


def _coerce(value: Any, schema: dict[str, Any], where: str) -> Any:
    kind = schema.get("type")
    if value is None:
        return None
    ok = {
        "string": lambda v: isinstance(v, str),
        "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
        "number": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
        "boolean": lambda v: isinstance(v, bool),
        "array": lambda v: isinstance(v, list),
        "object": lambda v: isinstance(v, dict),
    }.get(kind, lambda v: True)
    if not ok(value):
        try:
            if kind == "string" and isinstance(value, int | float | bool):
                value = str(value)
            elif kind == "integer" and isinstance(value, str | float):
                if float(value) != int(float(value)):
                    raise ValueError
                value = int(float(value))
            elif kind == "number" and isinstance(value, str):
                value = float(value)
            elif (
                kind == "boolean"
                and isinstance(value, str)
                and value.lower()
                in (
                    "true",
                    "false",
                )
            ):
                value = value.lower() == "true"
            else:
                raise ValueError
        except (ValueError, OverflowError):
            raise ToolArgumentError(f"{where} must be of type {kind}, got {value!r}") from None
    if "enum" in schema and value not in schema["enum"]:
        raise ToolArgumentError(f"{where} must be one of {schema['enum']}, got {value!r}")
    return value


_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")


def _json_safe(value: Any) -> bool:
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError):
        return False
    return True


def make_tool(
    func: Callable[..., Any],
    *,
    name: str | None = None,
    name_for_human: str | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    needed_when: str = "",
) -> Tool:
    """A Tool from a typed, documented function; raises ToolDefinitionError when it can't be."""
    from transformers.utils.chat_template_utils import parse_google_format_docstring

    tool_name = name or func.__name__
    if not _NAME.fullmatch(tool_name):
        raise ToolDefinitionError(
            f"tool name {tool_name!r} must be 1-64 letters, digits, '_' or '-' (function-calling "
            "APIs refuse other names)"
        )
    doc = inspect.getdoc(func)
    if not doc or not doc.strip():
        raise ToolDefinitionError(f"tool {tool_name!r} needs a docstring describing it")
    # Checked here first so the messages name the parameter and say what to add.
    _, param_docs, _ = parse_google_format_docstring(doc)
    signature = inspect.signature(func)
    for pname, param in signature.parameters.items():
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            raise ToolDefinitionError(f"tool {tool_name!r}: *args/**kwargs are not supported")
        where = f"tool {tool_name!r}, parameter {pname!r}"
        if param.annotation is inspect.Parameter.empty:
            raise ToolDefinitionError(f"{where}: missing type hint")
        if not (param_docs or {}).get(pname):
            raise ToolDefinitionError(f"{where}: missing description in the docstring Args")
    summary, parameters = _function_schema(func, tool_name)
    if not summary:
        raise ToolDefinitionError(f"tool {tool_name!r}: the docstring needs a summary line")
    nullable: set[str] = set()
    required: list[str] = []
    for pname, param in signature.parameters.items():
        schema = parameters["properties"][pname]
        if schema.pop("nullable", False):  # not JSON Schema; grammar engines refuse it
            nullable.add(pname)
        if param.default is not inspect.Parameter.empty and param.default is not None:
            if not _json_safe(param.default):
                where = f"tool {tool_name!r}, parameter {pname!r}"
                raise ToolDefinitionError(f"{where}: default {param.default!r} is not JSON")
            schema["default"] = param.default
        if param.default is inspect.Parameter.empty and pname not in nullable:
            required.append(pname)
    parameters["required"] = required
    if needed_when:
        try:
            re.compile(needed_when)
        except re.error as e:
            msg = f"tool {tool_name!r}: needed_when is not a regex: {e}"
            raise ToolDefinitionError(msg) from None
    return Tool(
        name=tool_name,
        name_for_human=name_for_human or tool_name.replace("_", " ").title(),
        description=summary,
        parameters=parameters,
        func=func,
        timeout=timeout,
        needed_when=needed_when,
        nullable=frozenset(nullable),
    )


def tool(
    func: Callable[..., Any] | None = None,
    *,
    name: str | None = None,
    name_for_human: str | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    needed_when: str = "",
) -> Any:
    """Decorator: @tool or @tool(name=..., name_for_human=..., timeout=..., needed_when=...)."""

    def wrap(f: Callable[..., Any]) -> Tool:
        return make_tool(
            f, name=name, name_for_human=name_for_human, timeout=timeout, needed_when=needed_when
        )

    return wrap(func) if func is not None else wrap


def result_text(value: Any, max_chars: int = MAX_RESULT_CHARS) -> tuple[str, bool]:
    """Tool return value -> Observation text (JSON for structures, non-ASCII kept)."""
    if isinstance(value, str):
        text = value
    elif isinstance(value, dict | list | tuple | int | float | bool) or value is None:
        text = json.dumps(value, ensure_ascii=False, default=str)
    else:
        text = str(value)
    if len(text) > max_chars:
        cut = len(text) - max_chars
        return text[:max_chars] + f"\n...[truncated {cut} characters]", True
    return text, False


class ToolRegistry:
    """An explicit, ordered set of tools; names are unique."""

    def __init__(self, tools: list[Tool] | None = None, max_result_chars: int = MAX_RESULT_CHARS):
        self._tools: dict[str, Tool] = {}
        self.max_result_chars = max_result_chars
        for t in tools or []:
            self.register(t)

    def register(self, t: Tool) -> Tool:
        if not isinstance(t, Tool):
            raise ToolDefinitionError(f"{t!r} is not a Tool: decorate it with @tool first")
        if t.name in self._tools:
            raise DuplicateToolError(f"a tool named {t.name!r} is already registered")
        self._tools[t.name] = t
        return t

    def get(self, name: str) -> Tool | None:
        return self._tools.get(name)

    def names(self) -> list[str]:
        return list(self._tools)

    def __iter__(self) -> Iterator[Tool]:
        return iter(self._tools.values())

    def __len__(self) -> int:
        return len(self._tools)

    def __contains__(self, name: object) -> bool:
        return name in self._tools

    def subset(self, names: list[str] | tuple[str, ...] | set[str]) -> ToolRegistry:
        """The enabled tools, in registry order; unknown names are ignored."""
        wanted = set(names)
        return ToolRegistry(
            [t for t in self if t.name in wanted], max_result_chars=self.max_result_chars
        )

    def call(self, name: str, arguments: Any, timeout: float | None = None) -> ToolResult:
        """Run a tool; any failure becomes an error ToolResult, never an exception."""
        start = time.perf_counter()

        def fail(msg: str) -> ToolResult:
            return ToolResult(f"Error: {msg}", False, time.perf_counter() - start, error=msg)

        t = self._tools.get(name)
        if t is None:
            return fail(f"unknown tool {name!r}. Available tools: {', '.join(self.names())}")
        try:
            kwargs = t.validate(arguments)
        except ToolArgumentError as e:
            return fail(str(e))
        box: dict[str, Any] = {}

        def target() -> None:
            try:
                box["value"] = t.func(**kwargs)
            except BaseException as e:  # noqa: BLE001 - a tool's failure is the model's feedback
                box["error"] = f"{type(e).__name__}: {e}"

        worker = threading.Thread(target=target, name=f"tool-{name}", daemon=True)
        worker.start()
        limit = t.timeout if timeout is None else timeout
        worker.join(limit)
        if worker.is_alive():
            return fail(f"tool {name!r} timed out after {limit:g} s")
        if "error" in box:
            return fail(f"tool {name!r} failed: {box['error']}")
        text, truncated = result_text(box.get("value"), self.max_result_chars)
        return ToolResult(text, True, time.perf_counter() - start, truncated=truncated)
