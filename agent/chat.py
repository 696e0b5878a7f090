"""`python -m agent` with no question: the seed's terminal chat, streaming.

Each line typed is one agent turn on the conversation so far; the model's text streams as
it is written, then the trace lines the one-shot mode prints (tool calls, observations,
aids) and the answer. Commands: `:clear` forgets the history, `:exit` (or Ctrl-D) leaves.
"""

from __future__ import annotations

import threading
from typing import TextIO

from agent import events as ev
from agent.cli import EXIT_OK, print_human
from agent.loop import run
from agent.settings import AgentSettings
from llm.types import ChatBackend, Message, TextDelta
from tools.registry import ToolRegistry

PROMPT = "\n> "
CLEAR = {":clear", "/clear", "clear"}
EXIT = {":exit", "/exit", ":quit", "/quit", "exit", "quit"}
HELP = "Type a message and press Enter. :clear forgets the conversation, :exit leaves."


def chat_loop(
    backend: ChatBackend,
    tools: ToolRegistry,
    settings: AgentSettings,
    stdin: TextIO,
    out: TextIO,
) -> int:
    """Read lines until :exit or end of input; returns the exit code."""
    history: list[Message] = []
    names = ", ".join(tools.names()) or "none (plain chat)"
    print(f"{backend.info.name} · tools: {names}\n{HELP}", file=out)
    while True:
        print(PROMPT, end="", file=out, flush=True)
        line = stdin.readline()
        if not line:  # end of input (Ctrl-D)
            print(file=out)
            return EXIT_OK
        text = line.strip()
        if not text:
            continue
        if text.lower() in EXIT:
            return EXIT_OK
        if text.lower() in CLEAR:
            history.clear()
            print("(conversation cleared)", file=out)
            continue
        try:
            terminal = _turn(backend, tools, history, text, settings, out)
        except KeyboardInterrupt:  # stops this turn, not the chat
            print("\n(stopped)", file=out)
            continue
        if terminal is not None:
            history.extend(terminal.messages)


def _turn(
    backend: ChatBackend,
    tools: ToolRegistry,
    history: list[Message],
    text: str,
    settings: AgentSettings,
    out: TextIO,
) -> ev.TerminalEvent | None:
    cancel = threading.Event()
    streaming = False
    try:
        for event in run(backend, tools, history, text, settings, cancel):
            if isinstance(event, TextDelta):
                print(event.text, end="", file=out, flush=True)
                streaming = True
                continue
            if streaming:
                print(file=out)
                streaming = False
            if not isinstance(event, ev.StepStarted | ev.ModelCallEnd | ev.Thought):
                print_human(event, out)
            if ev.is_terminal(event):
                return event
    finally:
        cancel.set()
    return None
