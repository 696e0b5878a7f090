"""Robustness wrappers the eval can switch on: reject a made-up Final Answer, prompt variants.

Small models often answer "The time in Tokyo is 3 pm" without calling the clock. The guard
wraps the agent loop (it uses only agent.loop.run's public signature): when a turn ends in a
Final Answer without any tool call although the question clearly needs one of the enabled
tools, it re-asks once, naming the tool. "Clearly needed" is judged from the question and the
enabled tools only (keyword rules below), never from the eval's expected answer, so the same
guard can run in the app.
"""

from __future__ import annotations

import dataclasses
import re
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from agent.events import AgentEvent, FinalAnswer, ToolCall
from llm.types import GenerationEnd, GenerationRequest, LLMEvent, Message, TextDelta

RunFn = Callable[..., Iterator[AgentEvent]]

# Keyword rules: a tool is "clearly needed" when its rule matches the question.
# Checked in this order: an explicit "with Python" wins over the arithmetic it asks for, and
# a lookup comes before the computation that uses its result.
_NEEDS: dict[str, re.Pattern[str]] = {
    "python": re.compile(r"\bpython\b|代码|\bcode\b", re.IGNORECASE),
    "employee_db": re.compile(
        r"employee|database|birthday|department|job title|position|员工|数据库|生日|职位|部门|工作",
        re.IGNORECASE,
    ),
    "clock": re.compile(
        r"\bwhat time\b|\bcurrent time\b|\btime is it\b|\btoday'?s date\b|\bwhat day\b"
        r"|几点|时间|几月几号|日期|星期几",
        re.IGNORECASE,
    ),
    "calculator": re.compile(
        r"\d\s*[-+*/×÷^%]\s*\(?\d|\d+\s*(times|plus|minus|divided|percent|by|%|to the power)"
        r"|[乘除加减]|次方|平方根|折后|square root|\bdivide\b|\bcompute\b|\bcalculat",
        re.IGNORECASE,
    ),
}

NUDGE = {
    "en": (
        "Your answer was not checked with a tool. Use the {tool} tool to answer the question: "
        "{query}"
    ),
    "zh": "你的回答没有经过工具验证。请使用 {tool} 工具来回答这个问题：{query}",
}

# Prompt variants for AgentSettings.system_prompt ("default" keeps the settings' own;
# "prefill" keeps it too and starts the first ReAct step with "Thought:", see PrefillBackend).
PROMPT_VARIANTS: dict[str, str | None] = {
    "default": None,
    "prefill": None,
    "tool-first": (
        "You are a helpful assistant. You cannot know facts about employees, the current "
        "time or exact arithmetic results without a tool: whenever one of your tools can "
        "answer, call it first and answer only from its result. Answer chit-chat and general "
        "knowledge directly without tools."
    ),
}


def needed_tool(query: str, tool_names: list[str]) -> str | None:
    """The enabled tool the question clearly needs, or None (first rule that matches)."""
    for name, rule in _NEEDS.items():
        if name in tool_names and rule.search(query):
            return name
    return None


def _lang(text: str) -> str:
    return "zh" if re.search(r"[\u4e00-\u9fff]", text) else "en"


@dataclass(frozen=True)
class RejectedAnswer:
    """The guard threw away a Final Answer that skipped a needed tool (eval bookkeeping)."""

    text: str
    tool: str
    steps: int


def guarded_run(run: RunFn) -> RunFn:
    """Wrap agent.loop.run: one re-ask when a Final Answer skipped a clearly needed tool.

    Events of the first attempt stream as usual except its FinalAnswer, which becomes a
    RejectedAnswer; the second attempt's events follow, and its terminal event ends the turn.
    """

    def run_guarded(
        backend: Any,
        tools: Any,
        history: list[Message],
        query: str,
        settings: Any,
        cancel: threading.Event | None = None,
    ) -> Iterator[Any]:
        called = False
        for event in run(backend, tools, history, query, settings, cancel):
            if isinstance(event, ToolCall):
                called = True
            if isinstance(event, FinalAnswer) and not called:
                tool = needed_tool(query, [t.name for t in tools])
                if tool is not None:
                    yield RejectedAnswer(event.text, tool, event.steps)
                    retry_history = [*history, *event.messages]
                    nudge = NUDGE[_lang(query)].format(tool=tool, query=query)
                    yield from run(backend, tools, retry_history, nudge, settings, cancel)
                    return
            yield event

    return run_guarded


@dataclass
class PrefillBackend:
    """Starts the first ReAct step with "Thought:" written for the model.

    Small models asked for ReAct often answer in plain prose, which the parser must take as
    the final answer. Writing the first word of the format for them (the loop already ends
    later steps' prompts with "Thought:") keeps them in the format. The prefix is streamed
    back as if the model wrote it, so the parser sees a complete step. Only the first step of
    a ReAct turn with tools is touched (no tools schema, "Observation:" among the stops).
    """

    inner: Any
    prefix: str = "Thought:"

    def __post_init__(self) -> None:
        self.info = self.inner.info

    def _applies(self, request: GenerationRequest) -> bool:
        return (
            not request.continue_final
            and request.tools is None
            and any(s.startswith("Observation") for s in request.stop)
        )

    def _prefilled(self, request: GenerationRequest) -> GenerationRequest:
        messages = [*request.messages, {"role": "assistant", "content": self.prefix}]
        return dataclasses.replace(request, messages=messages, continue_final=True)

    def render(self, request: GenerationRequest) -> str:
        return self.inner.render(self._prefilled(request) if self._applies(request) else request)

    def stream(self, request: GenerationRequest) -> Iterator[LLMEvent]:
        if not self._applies(request):
            yield from self.inner.stream(request)
            return
        yield TextDelta(self.prefix)
        for event in self.inner.stream(self._prefilled(request)):
            if isinstance(event, GenerationEnd):
                event = dataclasses.replace(event, text=self.prefix + event.text)
            yield event

    def close(self) -> None:
        self.inner.close()
