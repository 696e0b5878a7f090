"""Shared pieces for the UI tests: a recorded agent turn as events."""

from __future__ import annotations

import socket

from agent.events import (
    DiscardedObservation,
    FinalAnswer,
    ModelCallEnd,
    Observation,
    StepStarted,
    TextDelta,
    Thought,
    ToolCall,
)
from llm.types import GenerationEnd, StopReason

TOOL_TURN_MESSAGES = (
    {"role": "user", "content": "What is 3*7?"},
    {
        "role": "assistant",
        "content": "I should use the calculator.",
        "tool_calls": [
            {
                "id": "c1",
                "type": "function",
                "function": {"name": "calculator", "arguments": '{"expression": "3*7"}'},
            }
        ],
    },
    {"role": "tool", "tool_call_id": "c1", "name": "calculator", "content": "21"},
    {"role": "assistant", "content": "3*7 = 21"},
)


def tool_turn_events() -> list:
    """One turn: a tool step (with a model-written Observation discarded), then an answer."""
    return [
        StepStarted(1, prompt="<|im_start|>system ..."),
        TextDelta(step=1, text="Thought: I should use the calculator.\n"),
        TextDelta(step=1, text='Action: calculator\nAction Input: {"expression": "3*7"}'),
        ModelCallEnd(1, GenerationEnd("", StopReason.STOP_WORD, "Observation:", 120, 24, 0, 0.25)),
        Thought(1, "I should use the calculator."),
        ToolCall(1, "c1", "calculator", {"expression": "3*7"}, '{"expression": "3*7"}'),
        DiscardedObservation(1, "42 (made up)"),
        Observation(1, "c1", "calculator", "21", 0.004, True),
        StepStarted(2),
        TextDelta(step=2, text="Thought: I now know the final answer\nFinal Answer: 3*7 = 21"),
        ModelCallEnd(2, GenerationEnd("", StopReason.EOS, None, 160, 15, 120, 0.1)),
        Thought(2, "I now know the final answer"),
        FinalAnswer("3*7 = 21", 2, TOOL_TURN_MESSAGES),
    ]


# Debian's Chromium, driven by Playwright; never a downloaded browser. The flags keep it off
# the network (this machine has none) and free of GPU and sandbox needs.
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launch_local(demo) -> str:
    """Serve a Blocks app in this process on a free loopback port (as the tests and benches
    do); returns its URL. show_error: the client then sees the real error text."""
    from ui.app import CSS

    _, url, _ = demo.launch(
        server_name="127.0.0.1",
        server_port=free_port(),
        prevent_thread_lock=True,
        quiet=True,
        show_error=True,
        css=CSS,
    )
    return url
