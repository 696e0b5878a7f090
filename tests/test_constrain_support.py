"""What the constraint tests share: a model that would write a given reply, and tools.

tests/forcing.py forces a reply outright (every other token at -inf), which leaves a grammar
nothing to choose. Here the scripted reply is only strongly preferred, line by line: while
the current line of the output still matches the script's line, the next character of the
script gets a large logit bonus; once a constraint has changed the line, the model is on its
own until the next line. So without a constraint the output is exactly the script, and with
one the constrained parts are the model's own choice among what the grammar allows.
"""

from __future__ import annotations

from typing import Any

from transformers import LogitsProcessor

from tools.registry import Tool, ToolRegistry

BONUS = 50.0  # far above a random tiny model's logits


class LineScript:
    """Which character a script wants next, given the output so far, line by line."""

    def __init__(self, script: str):
        assert script.isascii(), "one token per ASCII character keeps the alignment exact"
        self.lines = script.split("\n")

    def next_char(self, text: str) -> str | None:
        """The script's next character for output `text` ("" = the end), None if off script."""
        lines = text.split("\n")
        i, line = len(lines) - 1, lines[-1]
        if i >= len(self.lines) or not self.lines[i].startswith(line):
            return None
        if len(line) < len(self.lines[i]):
            return self.lines[i][len(line)]
        return "\n" if i + 1 < len(self.lines) else ""


class PreferLines(LogitsProcessor):
    """The transformers form: a logits processor for TransformersBackend's logits_hook."""

    def __init__(self, tokenizer: Any, script: str, prompt_len: int, bonus: float = BONUS):
        self.tok, self.script = tokenizer, LineScript(script)
        self.prompt_len, self.bonus = prompt_len, bonus
        self.end = tokenizer.convert_tokens_to_ids("<|im_end|>")

    def __call__(self, input_ids, scores):
        ids = input_ids[0, self.prompt_len :].tolist()
        ch = self.script.next_char(self.tok.decode(ids, skip_special_tokens=False))
        if ch is None:
            return scores
        token = self.end if ch == "" else self.tok.encode(ch, add_special_tokens=False)[0]
        scores = scores.clone()
        scores[:, token] += self.bonus
        return scores


class PreferredReplies:
    """logits_hook: the n-th model call prefers replies[n] (the last one repeats)."""

    def __init__(self, tokenizer: Any, replies: list[str]):
        self.tokenizer, self.replies = tokenizer, replies
        self.requests: list[Any] = []

    def __call__(self, request: Any, prompt_ids: list[int]) -> list[Any]:
        reply = self.replies[min(len(self.requests), len(self.replies) - 1)]
        self.requests.append(request)
        return [PreferLines(self.tokenizer, reply, len(prompt_ids))]


def _add(a: int, b: int) -> str:
    return str(a + b)


def _now() -> str:
    return "12:00"


ADD_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "a": {"type": "integer", "minimum": 0, "maximum": 9, "description": "first digit"},
        "b": {"type": "integer", "minimum": 0, "maximum": 9, "description": "second digit"},
    },
    "required": ["a", "b"],
}
NOW_SCHEMA: dict[str, Any] = {"type": "object", "properties": {}, "required": []}
# look-ahead: llguidance refuses it (its regexes have no look-around)
ODD_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"code": {"type": "string", "pattern": "^(?=x)x+$", "description": "code"}},
    "required": ["code"],
}


def small_tools(*, odd: bool = False) -> ToolRegistry:
    """Tools whose arguments a random tiny model can complete: bounded integers, none."""
    tools = [
        Tool("add", "Add", "Add two digits.", ADD_SCHEMA, _add),
        Tool("now", "Now", "The time.", NOW_SCHEMA, _now),
    ]
    if odd:
        tools.append(Tool("odd", "Odd", "Echo a code.", ODD_SCHEMA, lambda code: code))
    return ToolRegistry(tools)
