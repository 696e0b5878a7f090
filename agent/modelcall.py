"""One model call of the agent: the backend's stream as agent events, with a prefilled reply
start joined in.

When an aid prefills the reply ("Thought:"), the prompt already holds its first words; the
trace and the parser must see the whole step, so the prefix is streamed first. A model (or a
script) that writes the prefix again itself is not shown it twice: the first few characters
are held back until it is clear whether they repeat the prefix.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Generator
from dataclasses import dataclass

from agent import events as ev
from agent.aids.base import CallPlan
from llm.types import ChatBackend, GenerationEnd, StopReason, TextDelta, ThinkingDelta


@dataclass
class PrefixJoin:
    prefix: str
    _held: str = ""
    _decided: bool = False

    def feed(self, text: str) -> str:
        """The streamed text to show now for this model delta ("" while undecided)."""
        if self._decided or not self.prefix:
            return text
        self._held += text
        body = self._held.lstrip()
        if len(body) < len(self.prefix) and self.prefix.startswith(body):
            return ""
        self._decided = True
        return self.full(self._held)

    def flush(self) -> str:
        """What is still held when the stream ends."""
        if self._decided:
            return ""
        self._decided = True
        return self.full(self._held)

    def full(self, text: str) -> str:
        """The whole step: the model's text with the prefix in front, once."""
        body = text.lstrip()
        return body if body.startswith(self.prefix) else self.prefix + text


def model_call(
    backend: ChatBackend, plan: CallPlan, step: int
) -> Generator[ev.AgentEvent, None, GenerationEnd]:
    """Stream one model call as events; a backend that raises becomes an ERROR end.

    The prefix streams first and leads the returned text, so the trace and the parser see the
    whole step.
    """
    request = plan.request
    try:
        prompt = backend.render(request)
    except Exception as e:  # noqa: BLE001 - the UI shows the failure, the app keeps running
        return GenerationEnd("", StopReason.ERROR, error=f"rendering the prompt failed: {e}")
    yield ev.StepStarted(step, prompt)
    join = PrefixJoin(plan.prefix)
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
    if plan.prefix and end.reason is not StopReason.ERROR:
        if held := join.flush():
            yield TextDelta(held, step)
        end = dataclasses.replace(end, text=join.full(end.text))
    yield ev.ModelCallEnd(step, end)
    return end
