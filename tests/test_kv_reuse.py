"""KV-cache prefix reuse claims (issue 8) not covered by tests/test_local_stream.py: a whole
agent turn through agent.loop.run is unchanged by reuse, and the cache's memory stays bounded
(a new conversation does not keep the old one's tensors; a swap or unload frees them).

The tiny random model's output is shaped by a LogitsProcessor (the backend's test-only
logits_hook): the ReAct structure is forced, but the words of each Thought and of the final
answer are the model's own greedy choice (restricted to plain-word tokens), so a wrong cache
would change them.
"""

from __future__ import annotations

import dataclasses
import gc
import re
import weakref

import pytest
import torch
from transformers import LogitsProcessor

from agent import events as ev
from agent.loop import run
from agent.settings import AgentSettings
from llm.local import TransformersBackend
from llm.manager import ModelManager
from llm.sources import open_backend
from llm.types import GenerationConfig, GenerationRequest, drain
from tools.builtin.calculator import make_calculator_tool
from tools.registry import ToolRegistry

GREEDY = GenerationConfig(max_new_tokens=120, temperature=0, repetition_penalty=1.0)
FREE = None  # a template slot the model fills itself
WORDS = 5  # free tokens per slot


class _Template(LogitsProcessor):
    """Force the template's token ids; at FREE slots allow only plain-word tokens."""

    def __init__(
        self, template: list[int | None], prompt_len: int, banned: torch.Tensor, seen: list
    ):
        self.template, self.prompt_len, self.banned, self.seen = template, prompt_len, banned, seen

    def __call__(self, input_ids, scores):
        self.seen.append(scores[0].clone())  # the model's own logits, before any forcing
        step = input_ids.shape[1] - self.prompt_len
        if step >= len(self.template):
            return scores
        if self.template[step] is FREE:
            return scores.masked_fill(self.banned, float("-inf"))
        forced = torch.full_like(scores, float("-inf"))
        forced[:, self.template[step]] = 0.0
        return forced


class _Episode:
    """logits_hook: model call n follows templates[n]."""

    def __init__(self, tokenizer, replies: list[list[str | None]]):
        self.templates = []
        for parts in replies:
            ids: list[int | None] = []
            for part in parts:
                ids.extend([FREE] * WORDS if part is None else tokenizer.encode(part))
            self.templates.append(ids + [tokenizer.convert_tokens_to_ids("<|im_end|>")])
        vocab = len(tokenizer)
        plain = [
            tokenizer.decode([i]).replace(" ", "").isalpha() and i not in tokenizer.all_special_ids
            for i in range(vocab)
        ]
        self.banned = ~torch.tensor(plain)
        self.calls = 0
        self.logits: list[torch.Tensor] = []  # every generated position, all calls

    def __call__(self, request, prompt_ids):
        template = self.templates[min(self.calls, len(self.templates) - 1)]
        self.calls += 1
        return [_Template(template, len(prompt_ids), self.banned, self.logits)]


REPLIES = [
    ["Thought: ", FREE, '\nAction: calculator\nAction Input: {"expression": "6*7"}\nObservation:'],
    [" ", FREE, '\nAction: calculator\nAction Input: {"expression": "42-2"}\nObservation:'],
    [" I now know the final answer\nFinal Answer: ", FREE],
]


@pytest.fixture(scope="module")
def tiny(tiny_model_dir) -> TransformersBackend:
    return open_backend(str(tiny_model_dir), device="cpu")


def _backend(tiny: TransformersBackend, reuse: bool) -> TransformersBackend:
    hook = _Episode(tiny.tokenizer, REPLIES)
    return TransformersBackend(
        tiny.model, tiny.tokenizer, tiny.info, logits_hook=hook, prefix_cache=reuse
    )


def _comparable(events: list) -> list:
    """Events without timings, cache counts and random call ids, as text; streamed text
    joined per step (the size of each delta depends on thread timing, not on the model)."""
    out: list = []
    for e in events:
        if isinstance(e, ev.TextDelta) and out and isinstance(out[-1], ev.TextDelta):
            out[-1] = ev.TextDelta(out[-1].text + e.text, e.step)
            continue
        if isinstance(e, ev.ModelCallEnd):
            end = dataclasses.replace(e.end, seconds=0.0, cached_tokens=0)
            e = dataclasses.replace(e, end=end)
        elif isinstance(e, ev.Observation):
            e = dataclasses.replace(e, seconds=0.0)
        out.append(e)
    ids: dict[str, str] = {}  # tool call ids are random: number them in order of appearance
    return [
        re.sub(r"call_[0-9a-f]+", lambda m: ids.setdefault(m[0], f"call{len(ids)}"), repr(e))
        for e in out
    ]


def _episode(backend: TransformersBackend) -> list:
    settings = AgentSettings(format="react", generation=GREEDY)
    tools = ToolRegistry([make_calculator_tool()])
    return list(run(backend, tools, [], "What is 6*7, minus 2?", settings))


def _cache_bytes(cache) -> tuple[int, int]:
    """(bytes the cache's tensors show, bytes their storages hold)."""
    shown = held = 0
    for layer in cache.layers:
        for t in (layer.keys, layer.values):
            shown += t.numel() * t.element_size()
            held += t.untyped_storage().nbytes()
    return shown, held


def test_three_step_react_turn_is_identical_with_and_without_reuse(tiny):
    reused, fresh = _backend(tiny, True), _backend(tiny, False)
    with_reuse, without = _episode(reused), _episode(fresh)
    assert isinstance(with_reuse[-1], ev.FinalAnswer)
    assert _comparable(with_reuse) == _comparable(without)
    ends = [e.end for e in with_reuse if isinstance(e, ev.ModelCallEnd)]
    assert [e.reason.value for e in ends] == ["stop_word", "stop_word", "eos"]
    assert [e.end.cached_tokens for e in without if isinstance(e, ev.ModelCallEnd)] == [0, 0, 0]
    # each step reuses at least the whole previous prompt: only the new text is prefilled
    assert ends[0].cached_tokens == 0
    for before, after in zip(ends, ends[1:], strict=False):
        assert after.cached_tokens >= before.prompt_tokens
    assert reused.last_ids == fresh.last_ids
    # the logits themselves, at every generated position: a wrong cache shows here first
    a, b = reused.logits_hook.logits, fresh.logits_hook.logits
    assert len(a) == len(b) == sum(e.completion_tokens for e in ends)
    assert max((x - y).abs().max().item() for x, y in zip(a, b, strict=True)) < 1e-4
    # the model really chose words (a cache bug would change them): free slots are not empty
    thoughts = [e.text for e in with_reuse if isinstance(e, ev.Thought)]
    assert len(thoughts) == 3 and all(len(t) > 0 for t in thoughts[:2])
    assert len(with_reuse[-1].text) > 0


def test_a_new_conversation_does_not_keep_the_old_cache(tiny):
    backend = _backend(tiny, True)
    _episode(backend)
    long_len = backend._cache.get_seq_length()
    request = GenerationRequest(
        [{"role": "user", "content": "Something else"}],
        config=GenerationConfig(max_new_tokens=6, temperature=0),
    )
    backend.logits_hook = None
    end = drain(backend.stream(request))
    head = backend.prompt_parts(request)[0][0]  # the template text before the user's content
    assert end.cached_tokens == len(tiny.tokenizer.encode(head))
    cache = backend._cache
    assert cache.get_seq_length() < long_len
    assert cache.get_seq_length() <= len(backend.last_ids)
    assert backend._cache_ids == backend.last_ids[: cache.get_seq_length()]
    shown, held = _cache_bytes(cache)
    assert held == shown  # no storage of the longer conversation is still held


def test_swap_and_unload_free_the_cache(tiny_model_dir, tmp_path):
    from tests.tiny_models import build_tiny_qwen2

    other = build_tiny_qwen2(tmp_path / "other", seed=1)
    mgr = ModelManager(device="cpu")
    mgr.load(str(tiny_model_dir))
    request = GenerationRequest(
        [{"role": "user", "content": "Who is Zhang San?"}],
        config=GenerationConfig(max_new_tokens=8, temperature=0),
    )
    with mgr.generating() as backend:
        drain(backend.stream(request))
        assert drain(backend.stream(request)).cached_tokens > 0
        old = backend
    key = weakref.ref(old._cache.layers[0].keys)
    weights = weakref.ref(next(old.model.parameters()))
    mgr.load(str(other))
    gc.collect()
    assert old._cache is None and key() is None and weights() is None
    with mgr.generating() as backend:
        assert drain(backend.stream(request)).cached_tokens == 0  # nothing carried over
        new_key = weakref.ref(backend._cache.layers[0].keys)
    mgr.unload()
    gc.collect()
    assert new_key() is None
