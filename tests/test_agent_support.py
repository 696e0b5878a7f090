"""Tools and helpers shared by the agent tests (the seed example's tools, a fake model that
ignores stop words), plus checks that the helpers themselves behave."""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace

from agent import events as ev
from agent.aids import AID_KEYS
from agent.settings import AgentSettings
from llm.scripted import ScriptedBackend
from llm.types import GenerationRequest, LLMEvent
from tools.builtin import calculator, clock, employee_db
from tools.registry import Tool, ToolRegistry, make_tool

SEED_QUESTION = "张三的生日是10月吗？现在是2月，距离他生日还有几个月？"
EMPLOYEES = {"张三": {"name": "张三", "gender": "男", "birthday": "5月5日", "position": "业务员"}}


def _employee_db(name: str) -> dict | str:
    """Look up an employee by name: gender, birthday and position.

    Args:
        name: The employee's name, e.g. 张三.
    """
    return EMPLOYEES.get(name.strip(), "查无此人")


def _calculator(expression: str) -> str:
    """Evaluate an arithmetic expression.

    Args:
        expression: The arithmetic expression, e.g. "(10 - 2) * 3".
    """
    if not set(expression) <= set("0123456789+-*/(). "):
        raise ValueError(f"unsupported characters in {expression!r}")
    return str(eval(expression, {"__builtins__": {}}))  # digits and operators only


def _boom(text: str) -> str:
    """Always fails (a tool with a bug).

    Args:
        text: Anything.
    """
    raise RuntimeError("the database is down")


def _slow(seconds: float) -> str:
    """Sleeps (a tool that hangs).

    Args:
        seconds: How long to sleep.
    """
    time.sleep(seconds)
    return "done"


def _clock() -> str:
    """The current date and time."""
    return "2025-02-14 10:00"


def seed_tools() -> list[Tool]:
    """The seed's two tools, declaring when they are clearly needed as the built-ins do."""
    return [
        make_tool(
            _employee_db,
            name="employee_db",
            name_for_human="Employee Database",
            needed_when=employee_db.NEEDED_WHEN,
        ),
        make_tool(
            _calculator,
            name="calculator",
            name_for_human="Calculator",
            needed_when=calculator.NEEDED_WHEN,
        ),
    ]


def make_registry(*extra: str) -> ToolRegistry:
    """Seed tools plus any of "boom", "slow", "clock"."""
    more = {
        "boom": lambda: make_tool(_boom, name="boom", name_for_human="Boom"),
        "slow": lambda: make_tool(_slow, name="slow", name_for_human="Slow", timeout=0.2),
        "clock": lambda: make_tool(
            _clock, name="clock", name_for_human="Clock", needed_when=clock.NEEDED_WHEN
        ),
    }
    return ToolRegistry([*seed_tools(), *(more[name]() for name in extra)])


@dataclass
class NoStopBackend:
    """A scripted model that ignores stop words, like a server that drops `stop`."""

    inner: ScriptedBackend

    @property
    def info(self):
        return self.inner.info

    @property
    def requests(self) -> list[GenerationRequest]:
        return self.inner.requests

    def render(self, request: GenerationRequest) -> str:
        return self.inner.render(request)

    def stream(self, request: GenerationRequest) -> Iterator[LLMEvent]:
        yield from self.inner.stream(replace(request, stop=()))
        self.inner.requests[-1] = request  # record the request as the agent sent it

    def close(self) -> None:
        pass


def agent_settings(**kw) -> AgentSettings:
    """AgentSettings from keyword values; aid keys (prefill=False, ...) switch aids."""
    aids = {k: kw.pop(k) for k in list(kw) if k in AID_KEYS}
    return AgentSettings(**kw).with_aids(**aids)


def collect(events: Iterable[ev.AgentEvent]) -> list[ev.AgentEvent]:
    return list(events)


def of_type(events: list[ev.AgentEvent], kind: type) -> list:
    return [e for e in events if isinstance(e, kind)]


def test_seed_tools_run_and_fail_as_tools_should():
    reg = make_registry("boom", "slow", "clock")
    assert reg.call("employee_db", {"name": "张三"}).ok
    assert reg.call("employee_db", {"name": "李四"}).text == "查无此人"
    assert reg.call("calculator", {"expression": "(10-2)*3"}).text == "24"
    assert not reg.call("calculator", {"expression": "__import__('os')"}).ok
    assert "database is down" in reg.call("boom", {"text": "x"}).text
    assert "timed out" in reg.call("slow", {"seconds": 2}).text


def test_no_stop_backend_keeps_what_the_model_wrote_past_the_stop_word():
    inner = ScriptedBackend(["Action: a\nAction Input: {}\nObservation: made up"])
    backend = NoStopBackend(inner)
    events = list(backend.stream(GenerationRequest([], stop=["Observation:"])))
    assert events[-1].text.endswith("Observation: made up")
    assert backend.requests[0].stop == ["Observation:"]
