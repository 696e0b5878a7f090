"""Forcing a real model's output, for tests and benches only (never in the app).

A random tiny model never writes "Observation:" or a tool call by itself. Passing these as
TransformersBackend's test-only `logits_hook` makes it write a scripted reply token by token
through the real generate / stop-word / streaming path.
"""

from __future__ import annotations

from typing import Any

import torch
from transformers import LogitsProcessor


class ForceTokens(LogitsProcessor):
    """Make the model emit exactly `ids` after the prompt, then whatever it likes."""

    def __init__(self, ids: list[int], prompt_len: int):
        self.ids, self.prompt_len = ids, prompt_len

    def __call__(self, input_ids, scores):
        step = input_ids.shape[1] - self.prompt_len
        if step < len(self.ids):
            scores = torch.full_like(scores, float("-inf"))
            scores[:, self.ids[step]] = 0.0
        return scores


def char_ids(tokenizer: Any, text: str) -> list[int]:
    """One token per character (or fewer per byte), so a stop word spans many tokens."""
    return [i for ch in text for i in tokenizer.encode(ch, add_special_tokens=False)]


class ForcedReplies:
    """logits_hook: the n-th model call writes replies[n], then <|im_end|>; calls past the
    script repeat the last reply. per_char: one token per character (multi-token stop words);
    otherwise the tokenizer's own encoding. Records every request it served."""

    def __init__(self, tokenizer: Any, replies: list[str], *, per_char: bool = True):
        end = tokenizer.convert_tokens_to_ids("<|im_end|>")
        encode = (
            (lambda r: char_ids(tokenizer, r))
            if per_char
            else (lambda r: tokenizer.encode(r, add_special_tokens=False))
        )
        self.replies = [encode(r) + [end] for r in replies]
        self.requests: list[Any] = []

    @property
    def calls(self) -> int:
        return len(self.requests)

    def __call__(self, request: Any, prompt_ids: list[int]) -> list[Any]:
        ids = self.replies[min(self.calls, len(self.replies) - 1)]
        self.requests.append(request)
        return [ForceTokens(ids, len(prompt_ids))]


def forced_backend(backend: Any, hook: Any, **options: Any) -> Any:
    """The same weights and tokenizer behind a new TransformersBackend with `hook`."""
    from llm.local import TransformersBackend

    return TransformersBackend(
        backend.model, backend.tokenizer, backend.info, logits_hook=hook, **options
    )
