"""The o1-like reasoning chain from the project's source material.

A system prompt asks the model to reason in JSON steps `{"title", "content", "next_action":
"continue" | "final_answer"}` — several steps, a critical review, alternative methods. Each
step is its own model call appended to the conversation (constrained to that schema where
the backend can), shown as a titled card with its thinking time; after at most
`reasoning_steps` steps (or when the model says final_answer) one more call, unconstrained,
writes the answer. A step that is not JSON is shown raw and the chain goes on; a failed call
is retried up to three times. Tools are not used in this mode (docs/agent.md says why).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Generator, Iterator
from typing import Any

from agent import events as ev
from agent.aids.base import CallPlan
from agent.history import assistant_message, normalize_history, user_message
from agent.messages import question_lang, say
from agent.modelcall import model_call
from agent.settings import AgentSettings
from llm.toolcalls.jsontext import decode_json
from llm.types import ChatBackend, Constraint, GenerationEnd, GenerationRequest, StopReason

STEP_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "title": {"type": "string"},
        "content": {"type": "string"},
        "next_action": {"type": "string", "enum": ["continue", "final_answer"]},
    },
    "required": ["title", "content", "next_action"],
}
RETRIES = 3

SYSTEM = {
    "en": (
        "You are an expert assistant who reasons step by step before answering. Answer each "
        'time with ONE step as a JSON object with the keys "title" (what this step does), '
        '"content" (the reasoning of this step) and "next_action" ("continue" or '
        '"final_answer"). Use as many steps as the problem needs, at least three. Know the '
        "limits of a language model: count and compute carefully, letter by letter and digit "
        "by digit. Look at alternative answers, consider that you may be wrong and where, and "
        "when you re-examine, really do it with a different method. Derive the answer in at "
        'least two independent ways. Example of a step: {"title": "Identifying the key '
        'facts", "content": "The question asks for ... so first I list ...", '
        '"next_action": "continue"}'
    ),
    "zh": (
        "你是一名先逐步推理再作答的专家助手。每次只回答一个推理步骤，格式为 JSON 对象，包含键 "
        '"title"（这一步做什么）、"content"（这一步的推理）和 "next_action"（"continue" 或 '
        '"final_answer"）。按问题需要使用足够多的步骤，至少三步。清楚语言模型的局限：逐个字母、'
        "逐位数字地仔细计数和计算。考虑其他可能的答案，想一想自己可能错在哪里；复查时要真的换一种"
        '方法。至少用两种独立的方法得出答案。步骤示例：{"title": "找出关键信息", "content": '
        '"题目问的是……所以我先列出……", "next_action": "continue"}'
    ),
}
START = {
    "en": "Thank you! I will now think step by step, starting by breaking the problem down.",
    "zh": "好的！我现在开始一步一步地思考，先把问题拆解开。",
}
FINAL = {
    "en": "Now give the final answer to the original question, based on your reasoning above, "
    "in plain words (no JSON).",
    "zh": "现在请根据上面的推理，用通顺的文字（不要 JSON）给出最初问题的最终答案。",
}


def read_step(text: str) -> tuple[str, str, str, bool]:
    """(title, content, next_action, parsed): a step's JSON, or its raw text when it is not
    a step (then it continues, as the source material's chain does)."""
    try:
        value, _ = decode_json(text.strip())
    except ValueError:
        value = None
    if isinstance(value, dict) and isinstance(value.get("content"), str):
        action = value.get("next_action")
        action = action if action in ("continue", "final_answer") else "continue"
        return str(value.get("title") or "…"), value["content"], action, True
    return "", text.strip(), "continue", False


def run_chain(
    backend: ChatBackend,
    history: list[Any],
    query: str,
    settings: AgentSettings,
    cancel: threading.Event,
) -> Iterator[ev.AgentEvent]:
    """One turn in reasoning-chain mode; ends with one terminal event like agent.loop.run."""
    lang = question_lang(query)
    turn = [user_message(query)]
    messages = [
        {"role": "system", "content": SYSTEM[lang]},
        *normalize_history(history),
        user_message(query),
        assistant_message(START[lang]),
    ]
    constraint = Constraint(json_schema=STEP_SCHEMA)
    started = time.perf_counter()
    call = 0
    for n in range(1, settings.reasoning_steps + 1):
        if cancel.is_set():
            yield ev.Stopped(call, "", tuple(turn))
            return
        result, made = yield from _call(backend, messages, settings, constraint, call + 1, cancel)
        call += made
        if result.reason is StopReason.CANCELLED or cancel.is_set():
            yield ev.Stopped(call, "", tuple(turn))
            return
        if result.reason is StopReason.ERROR:
            message = say("model_failed", settings.lang, error=result.error or "unknown error")
            yield ev.AgentFailed(call, message, tuple(turn))
            return
        title, content, action, parsed = read_step(result.text)
        yield ev.ReasoningStep(call, n, title, content, round(result.seconds, 3), parsed)
        messages.append(assistant_message(result.text.strip()))
        if action == "final_answer":
            break
    messages.append(user_message(FINAL[lang]))
    result, made = yield from _call(backend, messages, settings, None, call + 1, cancel)
    call += made
    if result.reason is StopReason.CANCELLED or cancel.is_set():
        yield ev.Stopped(call, result.text, tuple(turn))
        return
    if result.reason is StopReason.ERROR:
        message = say("model_failed", settings.lang, error=result.error or "unknown error")
        yield ev.AgentFailed(call, message, tuple(turn))
        return
    title, content, _, parsed = read_step(result.text)
    answer = content if parsed else result.text.strip()  # an answer written as one more step
    turn.append(assistant_message(answer))
    seconds = round(time.perf_counter() - started, 3)
    yield ev.FinalAnswer(answer, call, tuple(turn), thinking_seconds=seconds)


def _call(
    backend: ChatBackend,
    messages: list[Any],
    settings: AgentSettings,
    constraint: Constraint | None,
    step: int,
    cancel: threading.Event,
) -> Generator[ev.AgentEvent, None, tuple[GenerationEnd, int]]:
    """One model call, retried on errors up to RETRIES times; (end, model calls made)."""
    made = 0
    end: GenerationEnd | None = None
    for _ in range(RETRIES):
        request = GenerationRequest(
            messages=list(messages),
            config=settings.generation,
            cancel=cancel,
            constraint=constraint,
            thinking=settings.thinking,
        )
        end = yield from model_call(backend, CallPlan(request), step + made)
        made += 1
        if end.reason is not StopReason.ERROR or cancel.is_set():
            break
    assert end is not None
    return end, made
