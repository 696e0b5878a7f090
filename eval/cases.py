"""The case set: one question a line (JSONL), what tool it wants and what a right answer says.

The loader checks every line and names the line of any mistake, so a broken case file stops
the eval before a model is loaded, not an hour into the run.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from eval.answers import AnswerSpec, AnswerSpecError, parse_answer_spec


class CaseFileError(ValueError):
    """cases.jsonl is malformed; the message names the line."""


@dataclass(frozen=True)
class Case:
    id: str
    query: str
    expected_tool: str | None
    expected_arguments: dict[str, Any] | None = None
    tools: tuple[str, ...] | None = None  # None: every tool of the registry
    expected_sequence: tuple[str, ...] | None = None
    lang: str = ""
    category: str = ""
    answer: AnswerSpec | None = None  # None: the answer is not scored (cases built in code)


def _names(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(t, str) for t in value)


def parse_case(data: Any, where: str = "case") -> Case:
    """One case from its JSON object; the answer spec is required (eval/README.md)."""
    if not isinstance(data, dict):
        raise CaseFileError(f"{where}: expected a JSON object, got {type(data).__name__}")
    for key in ("id", "query"):
        if not isinstance(data.get(key), str) or not data[key].strip():
            raise CaseFileError(f"{where}: {key!r} must be a non-empty string")
    if "expected_tool" not in data:
        raise CaseFileError(f"{where}: 'expected_tool' is required (null when no tool is wanted)")
    tool = data["expected_tool"]
    if tool is not None and not isinstance(tool, str):
        raise CaseFileError(f"{where}: 'expected_tool' must be a tool name or null")
    args = data.get("expected_arguments")
    if tool is not None and not isinstance(args, dict):
        raise CaseFileError(
            f"{where}: 'expected_arguments' must be an object when a tool is wanted"
        )
    tools = data.get("tools")
    if tools is not None and not _names(tools):
        raise CaseFileError(f"{where}: 'tools' must be a list of tool names")
    if tool is not None and tools is not None and tool not in tools:
        raise CaseFileError(f"{where}: expected tool {tool!r} is not among its tools {tools}")
    seq = data.get("expected_sequence")
    if seq is not None and not _names(seq):
        raise CaseFileError(f"{where}: 'expected_sequence' must be a list of tool names")
    if seq and seq[0] != tool:
        raise CaseFileError(f"{where}: 'expected_sequence' must start with the expected tool")
    if "answer" not in data:
        raise CaseFileError(f"{where}: 'answer' is required (what a right answer contains)")
    try:
        answer = parse_answer_spec(data["answer"])
    except AnswerSpecError as e:
        raise CaseFileError(f"{where}: answer: {e}") from None
    return Case(
        id=data["id"],
        query=data["query"],
        expected_tool=tool,
        expected_arguments=args if tool is not None else None,
        tools=tuple(tools) if tools is not None else None,
        expected_sequence=tuple(seq) if seq else None,
        lang=str(data.get("lang", "")),
        category=str(data.get("category", "")),
        answer=answer,
    )


def load_cases(path: str | Path) -> list[Case]:
    """Read a JSONL case file (blank lines and lines starting with # are skipped)."""
    path = Path(path)
    if not path.is_file():
        raise CaseFileError(f"case file not found: {path}")
    cases: list[Case] = []
    seen: set[str] = set()
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        where = f"{path}:{n}"
        try:
            data = json.loads(line)
        except json.JSONDecodeError as e:
            raise CaseFileError(f"{where}: not valid JSON ({e.msg})") from None
        case = parse_case(data, where)
        if case.id in seen:
            raise CaseFileError(f"{where}: duplicate case id {case.id!r}")
        seen.add(case.id)
        cases.append(case)
    if not cases:
        raise CaseFileError(f"{path}: no cases")
    return cases


def select_cases(
    cases: Sequence[Case], ids: Sequence[str] = (), limit: int = 0, tools: Sequence[str] = ()
) -> list[Case]:
    """The cases to run: chosen ids (in that order), those whose tool is enabled (each case's
    tool set cut to `tools`), then the first `limit`."""
    out = list(cases)
    if ids:
        by_id = {c.id: c for c in out}
        unknown = [i for i in ids if i not in by_id]
        if unknown:
            raise CaseFileError(f"--ids: unknown case id(s) {unknown}")
        out = [by_id[i] for i in ids]
    if tools:
        out = [
            dataclasses.replace(c, tools=tuple(t for t in (c.tools or tools) if t in tools))
            for c in out
            if c.expected_tool is None or c.expected_tool in tools
        ]
    return out[:limit] if limit > 0 else out
