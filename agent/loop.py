"""The agent loop: call the model, run the tools it asks for, repeat until it answers.

run() checks its inputs eagerly (misuse raises AgentError at call time, before any event)
and returns the event stream. The stream always ends with exactly one terminal event whose
`messages` are this turn's new OpenAI-style messages, user message first.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Generator, Iterator

from agent import events as ev
from agent.errors import AgentInputError
from agent.followup import ask_for_answer
from agent.history import assistant_message, normalize_history, user_message
from agent.native import NativeFormat
from agent.prefill import PrefixJoin
from agent.react import ReactFormat
from agent.reject import review_answer
from agent.settings import AgentSettings, resolve_format
from agent.steps import FinalOutput, ToolFormat
from llm.types import (
    CHATML_STOP_WORDS,
    ChatBackend,
    GenerationEnd,
    GenerationRequest,
    Message,
    StopReason,
    TextDelta,
    ThinkingDelta,
)
from tools.registry import ToolRegistry


def run(
    backend: ChatBackend,
    tools: ToolRegistry,
    history: list[Message],
    query: str,
    settings: AgentSettings = AgentSettings(),  # noqa: B008 - frozen, safe to share
    cancel: threading.Event | None = None,
) -> Iterator[ev.AgentEvent]:
    """One turn. tools: the enabled tools (empty: plain chat). cancel: set it to stop."""
    fmt = _format(backend, tools, history, query, settings)
    return _run(backend, fmt, query.strip(), settings, cancel or threading.Event())


def preview_prompt(
    backend: ChatBackend,
    tools: ToolRegistry,
    history: list[Message],
    query: str,
    settings: AgentSettings = AgentSettings(),  # noqa: B008
) -> tuple[str, list[str]]:
    """The exact prompt text of the turn's first model call, and every stop word it uses."""
    fmt = _format(backend, tools, history, query, settings)
    request = fmt.request([user_message(query.strip())])
    return backend.render(request), [*request.stop, *CHATML_STOP_WORDS]


def _run(
    backend: ChatBackend,
    fmt: ToolFormat,
    query: str,
    settings: AgentSettings,
    cancel: threading.Event,
) -> Iterator[ev.AgentEvent]:
    turn: list[Message] = [user_message(query)]
    repeats = 0
    for step in range(1, settings.max_steps + 1):
        if cancel.is_set():
            yield ev.Stopped(step - 1, "", tuple(turn))
            return
        request = fmt.request(turn)
        request.cancel = cancel
        end = yield from _model_call(backend, request, step, fmt.prefill(turn))
        if end.reason is StopReason.CANCELLED:
            partial = fmt.visible(end.text)
            kept = [*turn, assistant_message(partial)] if partial else turn
            yield ev.Stopped(step, end.text, tuple(kept))
            return
        if end.reason is StopReason.ERROR:
            yield ev.AgentFailed(step, end.error or "the model call failed", tuple(turn))
            return
        nxt = yield from fmt.step(end, step, turn)
        if isinstance(nxt, FinalOutput):
            rejected = _review(nxt, step, turn, fmt, settings)
            if rejected is not None:
                yield rejected
                continue
            if settings.ask_for_answer and step < settings.max_steps and not nxt.answer.strip():
                asked = ask_for_answer(turn, step, "empty_answer")
                if asked is not None:
                    yield asked
                    continue
            turn.append(assistant_message(nxt.answer))
            yield ev.FinalAnswer(nxt.answer, step, tuple(turn))
            return
        if nxt.invalid and not settings.retry_invalid:
            message = f"The model made an invalid tool call ({nxt.invalid}); retrying is off."
            yield ev.AgentFailed(step, message, tuple(turn))
            return
        repeats = repeats + 1 if nxt.repeated else 0
        if repeats == 1 and settings.ask_for_answer:
            asked = ask_for_answer(turn, step, "repeated_call")
            if asked is not None:
                yield asked
        if repeats >= 2:  # told once that the call already ran, and it called it again
            name, result = nxt.repeated
            message = (
                f"Stopped early: the model kept calling {name} with the same arguments instead "
                f"of answering. The tool's result was:\n{result}"
            )
            turn.append(assistant_message(message))
            yield ev.StepLimitReached(step, message, tuple(turn))
            return
    message = (
        f"Stopped after {settings.max_steps} model calls without a final answer "
        "(the step limit). Ask again, simplify the question, or raise max_steps."
    )
    turn.append(assistant_message(message))
    yield ev.StepLimitReached(settings.max_steps, message, tuple(turn))


def _review(
    out: FinalOutput, step: int, turn: list[Message], fmt: ToolFormat, settings: AgentSettings
) -> ev.AnswerRejected | None:
    """reject_unverified: an answer that skipped a clearly needed tool gets one re-ask (added
    to turn), while a step is left for it."""
    if not settings.reject_unverified or step >= settings.max_steps:
        return None
    return review_answer(out.answer, step, turn, fmt.tools.names())


def _model_call(
    backend: ChatBackend, request: GenerationRequest, step: int, prefix: str = ""
) -> Generator[ev.AgentEvent, None, GenerationEnd]:
    """Stream one model call as events; a backend that raises becomes an ERROR end.

    prefix: what the prompt already wrote of the reply; it streams first and leads the
    returned text, so the trace and the parser see the whole step.
    """
    try:
        prompt = backend.render(request)
    except Exception as e:  # noqa: BLE001 - the UI shows the failure, the app keeps running
        return GenerationEnd("", StopReason.ERROR, error=f"rendering the prompt failed: {e}")
    yield ev.StepStarted(step, prompt)
    join = PrefixJoin(prefix)
    end: GenerationEnd | None = None
    try:
        for item in backend.stream(request):
            if isinstance(item, TextDelta) and (text := join.feed(item.text)):
                yield TextDelta(text, step)
            elif isinstance(item, ThinkingDelta):
                yield ThinkingDelta(item.text, step)
            elif isinstance(item, GenerationEnd):
                end = item
    except Exception as e:  # noqa: BLE001
        end = GenerationEnd("", StopReason.ERROR, error=f"{type(e).__name__}: {e}")
    if end is None:
        end = GenerationEnd("", StopReason.ERROR, error="the model stream ended without a result")
    if prefix and end.reason is not StopReason.ERROR:
        if held := join.flush():
            yield TextDelta(held, step)
        end = dataclasses.replace(end, text=join.full(end.text))
    yield ev.ModelCallEnd(step, end)
    return end


def _format(
    backend: ChatBackend,
    tools: ToolRegistry,
    history: list[Message],
    query: str,
    settings: AgentSettings,
) -> ToolFormat:
    """Check the caller's inputs and pick the tool-calling format for this turn."""
    if not isinstance(settings, AgentSettings):
        raise AgentInputError("settings must be an agent.settings.AgentSettings")
    if not isinstance(tools, ToolRegistry):
        raise AgentInputError("tools must be a ToolRegistry (the enabled tools)")
    if not callable(getattr(backend, "stream", None)) or not hasattr(backend, "info"):
        raise AgentInputError("backend must implement llm.types.ChatBackend")
    if not isinstance(query, str) or not query.strip():
        raise AgentInputError("the question is empty")
    past = normalize_history(history)
    if resolve_format(settings, backend.info) == "native":
        return NativeFormat(tools, past, settings)
    return ReactFormat(tools, past, settings)
