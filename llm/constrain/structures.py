"""The tool-call constraint of each wire format, built from the enabled tools.

Both are structural tags (llm.types.Constraint): text is free until the model writes the
trigger, then one call is forced into shape, then text is free again, so the model still
decides whether to call a tool, what to think and when to answer. The literals are the ones
llm/toolcalls renders, so a constrained call reads back through the same parsers.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from llm.toolcalls.hermes import TOOL_CLOSE, TOOL_OPEN
from llm.types import Constraint, TaggedSchema

# (tool name, JSON schema of its arguments object)
ToolSpec = tuple[str, Mapping[str, Any]]

REACT_TRIGGER = "Action:"


def react_constraint(tools: Sequence[ToolSpec]) -> Constraint:
    """ReAct: after "Action:", `Action: <tool>\\nAction Input: <its arguments>\\n`.

    The Observation stop word ends generation as before; another "Action:" written after the
    newline starts the next constrained call of the same reply.
    """
    structures = tuple(
        TaggedSchema(f"{REACT_TRIGGER} {name}\nAction Input: ", dict(schema), "\n")
        for name, schema in tools
    )
    return Constraint(structures=structures, triggers=(REACT_TRIGGER,) if structures else ())


def hermes_constraint(tools: Sequence[ToolSpec]) -> Constraint:
    """Native Qwen2.5 / Qwen3: after <tool_call>, `{"name": <tool>, "arguments": <its
    arguments>}` then </tool_call>, written exactly as the chat template renders calls."""
    structures = tuple(
        TaggedSchema(
            f'{TOOL_OPEN}\n{{"name": {json.dumps(name)}, "arguments": ',
            dict(schema),
            f"}}\n{TOOL_CLOSE}",
        )
        for name, schema in tools
    )
    return Constraint(structures=structures, triggers=(TOOL_OPEN,) if structures else ())
