"""The agent through a real (tiny, random) transformers model loaded the way users load one.

A random model writes gibberish, so each model call's output is forced with a test-only
LogitsProcessor (the backend's logits_hook), one character per token: stop words then span
several tokens and must be caught by real generation. One unforced run checks structure only.
"""

from __future__ import annotations

import pytest

from agent import events as ev
from agent.loop import run
from agent.settings import AgentSettings
from llm.local import TransformersBackend
from llm.sources import open_backend
from llm.types import GenerationConfig
from tests.forcing import ForcedReplies, forced_backend
from tests.test_agent_support import SEED_QUESTION, collect, make_registry, of_type

GREEDY = GenerationConfig(max_new_tokens=160, temperature=0, repetition_penalty=1.0)


@pytest.fixture(scope="module")
def tiny(tiny_model_dir) -> TransformersBackend:
    return open_backend(str(tiny_model_dir), device="cpu")


def _forced(
    tiny: TransformersBackend, replies: list[str], per_char: bool = True
) -> TransformersBackend:
    return forced_backend(tiny, ForcedReplies(tiny.tokenizer, replies, per_char=per_char))


# One token per character is not how a tokenizer writes text, and the grammar engine only
# lets the canonical tokens of a call through: forced per-character calls run with the
# constrain aid off (its own tests through this model: tests/test_constrain_tiny.py).
UNCONSTRAINED = {"constrain": False}


def test_react_turn_through_the_tiny_model(tiny):
    backend = _forced(
        tiny,
        [
            'Thought: 查张三\nAction: employee_db\nAction Input: {"name": "张三"}\n'
            "Observation: 编造的结果",  # real generation must stop at the stop word
            " I now know the final answer\nFinal Answer: 还有3个月",
        ],
    )
    # the bare format (the "Thought:" prefill has its own test in test_agent_aids.py)
    settings = AgentSettings(format="react", generation=GREEDY).with_aids(
        prefill=False, **UNCONSTRAINED
    )
    events = collect(run(backend, make_registry(), [], SEED_QUESTION, settings))
    final = events[-1]
    assert isinstance(final, ev.FinalAnswer) and final.text == "还有3个月"
    ends = of_type(events, ev.ModelCallEnd)
    assert [(e.reason, e.end.stop_word) for e in ends] == [
        ("stop_word", "Observation:"),
        ("eos", None),
    ]
    assert not of_type(events, ev.DiscardedObservation)  # the stop word kept it from being written
    assert "编造" not in "".join(e.text for e in of_type(events, ev.TextDelta))
    obs = of_type(events, ev.Observation)
    assert len(obs) == 1 and obs[0].ok and "5月5日" in obs[0].text
    first, second = (e.prompt for e in of_type(events, ev.StepStarted))
    assert "Question: " + SEED_QUESTION in first and first.endswith("<|im_start|>assistant\n")
    assert second.endswith("\nObservation: " + obs[0].text + "\nThought:")  # continued turn
    assert [m["role"] for m in final.messages] == ["user", "assistant", "tool", "assistant"]


def test_react_prefill_through_the_tiny_model(tiny):
    """The prefill aid: the real prompt ends inside the assistant turn with "Thought:", the
    model's continuation is parsed with it, and the trace shows the whole step."""
    step1 = ' 查张三\nAction: employee_db\nAction Input: {"name": "张三"}'
    backend = _forced(
        tiny, [step1 + "\nObservation: 编造", " I now know the final answer\nFinal Answer: 10月"]
    )
    settings = AgentSettings(format="react", generation=GREEDY).with_aids(
        prefill=True, **UNCONSTRAINED
    )
    events = collect(run(backend, make_registry(), [], SEED_QUESTION, settings))
    assert isinstance(events[-1], ev.FinalAnswer) and events[-1].text == "10月"
    first, second = (e.prompt for e in of_type(events, ev.StepStarted))
    assert first.endswith("<|im_start|>assistant\nThought:")  # no <|im_end|> after it
    assert [t.text for t in of_type(events, ev.Thought)][0] == "查张三"
    (call,) = of_type(events, ev.ToolCall)
    assert (call.name, call.arguments) == ("employee_db", {"name": "张三"})
    step_text = "".join(e.text for e in of_type(events, ev.TextDelta) if e.step == 1)
    assert step_text.rstrip() == "Thought:" + step1  # up to the stop word
    assert second.endswith(
        "\nObservation: " + of_type(events, ev.Observation)[0].text + "\nThought:"
    )
    assert second.count("Thought: 查张三\nAction: employee_db") == 1


def test_native_turn_through_the_tiny_model_chat_template(tiny):
    assert tiny.info.family == "qwen2"
    backend = _forced(
        tiny,
        [
            "算一下\n<tool_call>\n"
            '{"name": "calculator", "arguments": {"expression": "5 - 2"}}\n</tool_call>',
            "还有3个月。",
        ],
    )
    settings = AgentSettings(generation=GREEDY).with_aids(**UNCONSTRAINED)  # auto: native
    events = collect(run(backend, make_registry(), [], SEED_QUESTION, settings))
    final = events[-1]
    assert isinstance(final, ev.FinalAnswer) and final.text == "还有3个月。"
    assert [e.text for e in of_type(events, ev.Thought)] == ["算一下"]
    assert of_type(events, ev.Observation)[0].text == "3"
    first, second = (e.prompt for e in of_type(events, ev.StepStarted))
    assert "<tools>" in first and '"name": "employee_db"' in first  # the model's own template
    assert "Answer the following questions" not in first
    assert "<tool_response>\n3\n</tool_response>" in second
    assert [m["role"] for m in final.messages] == ["user", "assistant", "tool", "assistant"]


def test_unforced_random_model_still_ends_with_one_terminal_event(tiny):
    settings = AgentSettings(
        format="react",
        max_steps=2,
        generation=GenerationConfig(max_new_tokens=12, temperature=0),
    )
    events = collect(run(tiny, make_registry(), [], "hello", settings))
    assert isinstance(events[0], ev.StepStarted) and ev.is_terminal(events[-1])
    assert sum(ev.is_terminal(e) for e in events) == 1
    assert of_type(events, ev.ModelCallEnd)[0].end.completion_tokens > 0


def test_reasoning_chain_through_the_tiny_model(tiny):
    """The chain's steps, the step schema request and the answer call through real
    generation: two JSON steps and an answer, forced token by token."""
    steps = [
        '{"title": "数字母", "content": "s-t-r-a-w-b-e-r-r-y", "next_action": "continue"}',
        '{"title": "复查", "content": "共 3 个 r", "next_action": "final_answer"}',
    ]
    # the chain constrains each step to its schema: the tokenizer's own tokens get through
    backend = _forced(tiny, [*steps, "3 个"], per_char=False)
    settings = AgentSettings(reasoning_chain=True, generation=GREEDY)
    events = collect(run(backend, make_registry(), [], "strawberry中有多少个字母r?", settings))
    chain = of_type(events, ev.ReasoningStep)
    assert [(s.title, s.parsed) for s in chain] == [("数字母", True), ("复查", True)]
    assert isinstance(events[-1], ev.FinalAnswer) and events[-1].text == "3 个"
    assert all(e.end.completion_tokens > 0 for e in of_type(events, ev.ModelCallEnd))
    # the two steps ran under the step schema, the plain-text answer did not
    assert [e.end.constrained for e in of_type(events, ev.ModelCallEnd)] == [True, True, False]
