"""Constraints on the transformers backend: a logits processor around a ConstraintSession.

llguidance's view of a Hugging Face tokenizer takes one to several seconds to build (and
holds the GIL while it parses), so the backend starts building it in the background when it
is created (warm) and keeps it per tokenizer; the first constrained request waits for it if
it is not done. The processor runs inside generate() after the repetition penalty and before
temperature / top-k / top-p, so sampling only ever chooses among tokens the grammar allows.
"""

from __future__ import annotations

import threading
import weakref
from typing import Any

from llm.constrain.grammar import GrammarCache
from llm.constrain.session import ConstraintSession, allowed_tokens
from llm.types import Constraint

_caches: weakref.WeakKeyDictionary[Any, tuple[tuple[int, tuple[int, ...]], GrammarCache]] = (
    weakref.WeakKeyDictionary()
)
_lock = threading.Lock()


def supports(tokenizer: Any) -> bool:
    """llguidance reads fast (Rust) tokenizers; slow ones have no tokenizer.json to give it."""
    from transformers import PreTrainedTokenizerFast

    return isinstance(tokenizer, PreTrainedTokenizerFast)


def grammar_cache(tokenizer: Any, vocab_size: int, eos_ids: tuple[int, ...]) -> GrammarCache:
    """The (cached) llguidance tokenizer and grammars for an HF tokenizer and model vocab."""
    import llguidance.hf

    key = (vocab_size, eos_ids)
    with _lock:
        entry = _caches.get(tokenizer)
        if entry is None or entry[0] != key:
            eos: Any = list(eos_ids) or None
            lltok = llguidance.hf.from_tokenizer(tokenizer, n_vocab=vocab_size, eos_token=eos)
            entry = (key, GrammarCache(lltok))
            _caches[tokenizer] = entry
        return entry[1]


def logits_width(model: Any) -> int:
    """How many logits the model produces per step (its vocabulary as the sampler sees it)."""
    head = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    weight = getattr(head, "weight", None)
    if weight is not None:
        return int(weight.shape[0])
    return int(model.config.get_text_config().vocab_size)


def warm(model: Any, tokenizer: Any, eos_ids: tuple[int, ...]) -> threading.Thread:
    """Build the grammar cache for this model in a background thread (errors surface, as a
    note, on the first constrained request instead)."""

    def build() -> None:
        try:
            grammar_cache(tokenizer, logits_width(model), eos_ids)
        except Exception:  # noqa: BLE001 - retried (and reported) on first use
            pass

    thread = threading.Thread(target=build, name="llguidance-tokenizer", daemon=True)
    thread.start()
    return thread


class ConstraintProcessor:
    """A generate() logits processor: feeds each generated token to the session and masks
    the logits while a structure is open.

    The session is set up on the first call, when the width of the logits is known. Nothing
    raises into generate(): a constraint that cannot be set up or run leaves decoding
    unconstrained and says why in notes, which the backend puts on GenerationEnd.
    """

    def __init__(
        self, tokenizer: Any, constraint: Constraint, prompt_len: int, eos_ids: tuple[int, ...]
    ) -> None:
        self.tokenizer, self.constraint = tokenizer, constraint
        self.prompt_len, self.eos_ids = prompt_len, eos_ids
        self.session: ConstraintSession | None = None
        self._failed: list[str] = []
        self._fed = 0

    @property
    def applied(self) -> bool:
        return self.session is not None and self.session.applied

    @property
    def notes(self) -> tuple[str, ...]:
        session_notes = self.session.notes if self.session is not None else []
        return tuple(dict.fromkeys([*self._failed, *session_notes]))

    def _start(self, vocab: int) -> None:
        cache = grammar_cache(self.tokenizer, vocab, self.eos_ids)
        compiled = cache.compile(self.constraint)
        if compiled.empty:
            self._failed += compiled.notes
        else:
            self.session = ConstraintSession(cache, compiled)

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        if self._failed:
            return scores
        try:
            return self._apply(input_ids, scores)
        except Exception as exc:  # noqa: BLE001 - decoding goes on unconstrained, with a note
            self._failed.append(f"constraint: off ({type(exc).__name__}: {exc}); unconstrained")
            self.session = None
            return scores

    def _apply(self, input_ids: Any, scores: Any) -> Any:
        import torch

        if self.session is None:
            self._start(int(scores.shape[-1]))
            if self.session is None:
                return scores
        session = self.session
        row = input_ids[0]
        while self.prompt_len + self._fed < row.shape[0]:
            session.advance(int(row[self.prompt_len + self._fed]))
            self._fed += 1
        bitmask = session.mask()
        if bitmask is None:
            return scores
        blocked = ~torch.from_numpy(allowed_tokens(bitmask, scores.shape[-1]))
        return scores.masked_fill(blocked.to(scores.device), float("-inf"))
