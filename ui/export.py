"""Download the conversation: JSON (OpenAI-style messages + traces) and Markdown.

The JSON `messages` are exactly what the model is given as history, so a saved chat can be
replayed or evaluated; `turns` keeps the full event trace of each turn.
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path
from typing import Any

from agent.events import (
    DiscardedObservation,
    ModelCallEnd,
    Observation,
    StepError,
    StepStarted,
    TextDelta,
    Thought,
    ToolCall,
    event_to_dict,
)
from ui.render import fence, pretty_json
from ui.state import ChatSession


def to_dict(session: ChatSession) -> dict[str, Any]:
    turns = []
    for turn in session.turns:
        events = [event_to_dict(e) for e in turn.events if not isinstance(e, TextDelta)]
        turns.append(
            {
                "query": turn.query,
                "model": turn.model,
                "status": turn.status,
                "answer": turn.answer,
                "seconds": round(turn.seconds, 3),
                "messages": turn.messages,
                "events": events,
            }
        )
    return {
        "format": "qwen-agent-web-demo/1",
        "exported_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "messages": session.history(),
        "turns": turns,
    }


def to_json(session: ChatSession) -> str:
    return json.dumps(to_dict(session), ensure_ascii=False, indent=2, default=str)


def to_markdown(session: ChatSession) -> str:
    lines = ["# Conversation", ""]
    for n, turn in enumerate(session.turns, start=1):
        lines += [f"## Turn {n}", "", f"**User:** {turn.query}", ""]
        trace = _trace_lines(turn.events)
        if trace:
            lines += ["<details><summary>Agent trace</summary>", "", *trace, "</details>", ""]
        label = {"done": "Assistant", "stopped": "Assistant (stopped)"}.get(
            turn.status, f"Assistant ({turn.status})"
        )
        lines += [f"**{label}** — _{turn.model}, {turn.seconds:.1f} s_:", "", turn.answer, ""]
    return "\n".join(lines).rstrip() + "\n"


def _trace_lines(events: list) -> list[str]:
    out: list[str] = []
    for e in events:
        if isinstance(e, StepStarted):
            out += [f"### Step {e.step}", ""]
        elif isinstance(e, Thought):
            out += [f"**Thought:** {e.text}", ""]
        elif isinstance(e, ToolCall):
            out += [f"**Action:** `{e.name}`", "", fence(pretty_json(e.arguments), "json"), ""]
        elif isinstance(e, Observation):
            src = "tool" if e.source == "tool" else "agent"
            status = "ok" if e.ok else "error"
            out += [f"**Observation** ({src}, {status}, {e.seconds:.3f} s):", "", fence(e.text), ""]
        elif isinstance(e, DiscardedObservation):
            out += ["**Model-written observation (discarded):**", "", fence(e.text), ""]
        elif isinstance(e, StepError):
            out += [f"**Step error:** {e.message}", ""]
        elif isinstance(e, ModelCallEnd):
            end = e.end
            word = f" at {end.stop_word!r}" if end.stop_word else ""
            out += [
                f"_model call: {e.reason}{word}, {end.prompt_tokens} prompt / "
                f"{end.completion_tokens} new tokens, {end.seconds:.2f} s_",
                "",
            ]
    return out


def write_exports(session: ChatSession, directory: str | Path | None = None) -> list[str]:
    """Write conversation.json and conversation.md into a fresh directory; return the paths."""
    base = Path(directory) if directory else Path(tempfile.gettempdir()) / "qwen-demo-exports"
    base.mkdir(parents=True, exist_ok=True)
    out = Path(tempfile.mkdtemp(prefix="chat-", dir=base))
    json_path = out / "conversation.json"
    md_path = out / "conversation.md"
    json_path.write_text(to_json(session), encoding="utf-8")
    md_path.write_text(to_markdown(session), encoding="utf-8")
    return [str(json_path), str(md_path)]
