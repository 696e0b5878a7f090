"""The agent loop: call the model, run the tools it asks for, repeat until it answers.

run() checks its inputs eagerly (misuse raises AgentError at call time, before any event)
and returns the event stream. The stream always ends with exactly one terminal event whose
`messages` are this turn's new OpenAI-style messages, user message first. What the aids
decide (agent/aids) comes back as a Verdict the loop applies; the loop itself knows no aid.
"""

from __future__ import annotations

import threading
from collections.abc import Generator, Iterator, Sequence

from agent import events as ev
from agent.aids import make_aids
from agent.aids.base import Aid, CallPlan, Continue, Fail, Finish, ReAsk, TurnContext, Verdict
from agent.answers import fallback_answer, junk_kind
from agent.calls import run_calls
from agent.errors import AgentInputError
from agent.history import assistant_message, normalize_history, user_message
from agent.messages import say
from agent.modelcall import model_call
from agent.native import NativeFormat
from agent.react import ReactFormat
from agent.reasoning import run_chain
from agent.settings import AgentSettings, resolve_format
from agent.steps import Reply, ToolFormat
from llm.types import CHATML_STOP_WORDS, ChatBackend, Message, StopReason
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
    fmt, ctx = _start(backend, tools, history, query, settings)
    cancel = cancel or threading.Event()
    if settings.reasoning_chain:
        return run_chain(backend, history, ctx.query, settings, cancel)
    return _run(backend, fmt, ctx, make_aids(settings.aids), cancel)


def preview_prompt(
    backend: ChatBackend,
    tools: ToolRegistry,
    history: list[Message],
    query: str,
    settings: AgentSettings = AgentSettings(),  # noqa: B008
) -> tuple[str, list[str]]:
    """The exact prompt text of the turn's first model call, and every stop word it uses."""
    fmt, ctx = _start(backend, tools, history, query, settings)
    request = _plan(fmt, ctx, make_aids(settings.aids), threading.Event()).request
    return backend.render(request), [*request.stop, *CHATML_STOP_WORDS]


def _run(
    backend: ChatBackend,
    fmt: ToolFormat,
    ctx: TurnContext,
    aids: Sequence[Aid],
    cancel: threading.Event,
) -> Iterator[ev.AgentEvent]:
    for step in range(1, ctx.max_steps + 1):
        ctx.step = step
        if cancel.is_set():
            yield ev.Stopped(step - 1, "", tuple(ctx.turn))
            return
        end = yield from model_call(backend, _plan(fmt, ctx, aids, cancel), step)
        if end.reason is StopReason.CANCELLED:
            partial = fmt.visible(end.text)
            kept = [*ctx.turn, assistant_message(partial)] if partial else ctx.turn
            yield ev.Stopped(step, end.text, tuple(kept))
            return
        if end.reason is StopReason.ERROR:
            message = say("model_failed", ctx.lang, error=end.error or "unknown error")
            yield ev.AgentFailed(step, message, tuple(ctx.turn))
            return
        reply = fmt.parse(end)
        aid, verdict = yield from _step(ctx, aids, reply)
        final = yield from _apply(ctx, aid, verdict, reply)
        if final is not None:
            yield final
            return
    message = say("step_limit", ctx.lang, n=ctx.max_steps)
    ctx.turn.append(assistant_message(message))
    yield ev.StepLimitReached(ctx.max_steps, message, tuple(ctx.turn))


def _plan(
    fmt: ToolFormat, ctx: TurnContext, aids: Sequence[Aid], cancel: threading.Event
) -> CallPlan:
    plan = CallPlan(fmt.request(ctx.turn))
    for aid in aids:
        plan = aid.on_request(ctx, plan)
    plan.request.cancel = cancel
    return plan


Decided = tuple[str, Verdict]  # the aid that decided ("" for the loop's default), its verdict


def _step(
    ctx: TurnContext, aids: Sequence[Aid], reply: Reply
) -> Generator[ev.AgentEvent, None, Decided]:
    """Events for the reply and the verdict on it: the aids' opinion, else the default (an
    answer ends the turn; a step whose calls ran goes on; one that could not run fails)."""
    if reply.discarded:
        yield ev.DiscardedObservation(ctx.step, reply.discarded)
    if reply.thought:
        yield ev.Thought(ctx.step, reply.thought)
    if not reply.calls:
        decided = _first((a.info.key, a.on_final(ctx, reply.answer)) for a in aids)
        return decided or ("", Finish(reply.answer))
    outcome = yield from run_calls(ctx, aids, reply.thought, reply.calls)
    decided = _first((a.info.key, a.on_step(ctx, outcome)) for a in aids)
    if decided is None and outcome.invalid:
        return "", Fail(say("retry_off", ctx.lang, why=outcome.invalid))
    return decided or ("", Continue())


def _first(opinions: Iterator[tuple[str, Verdict | None]]) -> Decided | None:
    """The first aid with an opinion decides (aids run in AIDS order)."""
    return next(((key, v) for key, v in opinions if v is not None), None)


def _apply(
    ctx: TurnContext, aid: str, verdict: Verdict, reply: Reply
) -> Generator[ev.AgentEvent, None, ev.TerminalEvent | None]:
    """Apply a verdict to the turn; the terminal event when the turn ends, else None."""
    if isinstance(verdict, ReAsk) and ctx.steps_left:
        if verdict.after_answer:
            ctx.turn.append(assistant_message(reply.answer))
        ctx.turn.append(user_message(verdict.text))
        yield ev.AidFired(ctx.step, aid, verdict.message, reply.answer)
        return None
    if isinstance(verdict, Fail):
        return ev.AgentFailed(ctx.step, verdict.message, tuple(ctx.turn))
    if isinstance(verdict, Continue):
        return None
    answer = verdict.answer if isinstance(verdict, Finish) else reply.answer
    fallback = isinstance(verdict, Finish) and verdict.fallback
    if aid and isinstance(verdict, Finish) and verdict.message:
        yield ev.AidFired(ctx.step, aid, verdict.message)
    if not fallback and junk_kind(answer) is not None:  # never hand junk to the user
        readable = fallback_answer(ctx.turn, ctx.lang)
        if readable is not None:
            answer, fallback = readable, True
    ctx.turn.append(assistant_message(answer))
    return ev.FinalAnswer(answer, ctx.step, tuple(ctx.turn), fallback=fallback)


def _start(
    backend: ChatBackend,
    tools: ToolRegistry,
    history: list[Message],
    query: str,
    settings: AgentSettings,
) -> tuple[ToolFormat, TurnContext]:
    """Check the caller's inputs; the turn's tool-calling format and context."""
    if not isinstance(settings, AgentSettings):
        raise AgentInputError("settings must be an agent.settings.AgentSettings")
    if not isinstance(tools, ToolRegistry):
        raise AgentInputError("tools must be a ToolRegistry (the enabled tools)")
    if not callable(getattr(backend, "stream", None)) or not hasattr(backend, "info"):
        raise AgentInputError("backend must implement llm.types.ChatBackend")
    if not isinstance(query, str) or not query.strip():
        raise AgentInputError("the question is empty")
    past = normalize_history(history)
    kind = resolve_format(settings, backend.info)
    fmt: ToolFormat = (NativeFormat if kind == "native" else ReactFormat)(tools, past, settings)
    query = query.strip()
    ctx = TurnContext(
        query=query,
        tools=tools,
        turn=[user_message(query)],
        format=kind,
        model=backend.info,
        lang=settings.lang,
        max_steps=settings.max_steps,
    )
    return fmt, ctx
