from __future__ import annotations

import json
import threading

from llm.chatml import render_chatml
from llm.scripted import ScriptedBackend
from llm.types import (
    ChatBackend,
    GenerationConfig,
    GenerationEnd,
    GenerationRequest,
    StopReason,
    TextDelta,
    drain,
)


def req(**kw) -> GenerationRequest:
    return GenerationRequest(messages=[{"role": "user", "content": "hi"}], **kw)


def test_replays_in_order_and_applies_stop_words():
    b = ScriptedBackend(["Thought: t\nAction: calc\nAction Input: {}\nObservation: fake", "done"])
    assert isinstance(b, ChatBackend)
    events = list(b.stream(req(stop=["Observation:"])))
    deltas = "".join(e.text for e in events if isinstance(e, TextDelta))
    end = events[-1]
    assert isinstance(end, GenerationEnd)
    assert deltas == end.text == "Thought: t\nAction: calc\nAction Input: {}\n"
    assert (end.reason, end.stop_word) == (StopReason.STOP_WORD, "Observation:")
    end2 = drain(b.stream(req()))
    assert (end2.text, end2.reason) == ("done", StopReason.EOS)
    assert len(b.requests) == 2 and b.remaining == 0


def test_exhausted_and_exception_items_end_with_error():
    b = ScriptedBackend([RuntimeError("boom")])
    end = drain(b.stream(req()))
    assert end.reason == StopReason.ERROR and "boom" in end.error
    end = drain(b.stream(req()))
    assert end.reason == StopReason.ERROR and "no more" in end.error


def test_length_and_cancel():
    b = ScriptedBackend(["one two three four five six", "a b c d e f g h"])
    end = drain(b.stream(req(config=GenerationConfig(max_new_tokens=2))))
    assert end.reason == StopReason.LENGTH and end.text == "one two"
    cancel = threading.Event()
    stream = b.stream(req(cancel=cancel))
    first = next(stream)
    assert isinstance(first, TextDelta)
    cancel.set()
    rest = list(stream)
    assert rest[-1].reason == StopReason.CANCELLED
    assert len(rest[-1].text) < len("a b c d e f g h")


def test_from_file(tmp_path):
    p = tmp_path / "s.json"
    p.write_text(json.dumps({"completions": ["x"], "family": "qwen2"}), encoding="utf-8")
    b = ScriptedBackend.from_file(p)
    assert b.info.family == "qwen2" and b.info.name.startswith("scripted")
    assert b.info.supports_native_tools


def test_render_chatml_tools_and_continue():
    tools = [{"type": "function", "function": {"name": "calc", "parameters": {}}}]
    msgs = [
        {"role": "user", "content": "q"},
        {
            "role": "assistant",
            "content": "",
            "tool_calls": [{"function": {"name": "calc", "arguments": '{"x": 1}'}}],
        },
        {"role": "tool", "content": "2"},
        {"role": "assistant", "content": "Thought:"},
    ]
    text = render_chatml(msgs, tools, continue_final=True)
    assert text.startswith("<|im_start|>system\nYou are a helpful assistant.\n\n# Tools")
    assert '<tool_call>\n{"name": "calc", "arguments": {"x": 1}}\n</tool_call><|im_end|>' in text
    assert "<|im_start|>user\n<tool_response>\n2\n</tool_response><|im_end|>" in text
    assert text.endswith("<|im_start|>assistant\nThought:")
    plain = render_chatml([{"role": "user", "content": "q"}])
    assert plain.endswith("<|im_start|>user\nq<|im_end|>\n<|im_start|>assistant\n")
