"""A scripted model: replays a list of completions, one per model call.

For deterministic agent scenarios (tests, demos without a GPU). Stop words are applied to
the scripted text exactly as a real model's output, and every request is recorded.
It is labelled "scripted" wherever it appears.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from llm.chatml import render_chatml
from llm.stopwords import StopWordFilter
from llm.types import (
    CHATML_STOP_WORDS,
    GenerationEnd,
    GenerationRequest,
    LLMEvent,
    ModelInfo,
    PromptFamily,
    StopReason,
    TextDelta,
)

_CHUNK = re.compile(r"\s*\S{1,4}|\s+")  # roughly token-sized pieces


@dataclass
class ScriptedBackend:
    """completions: one item per call; an Exception item makes that call fail."""

    completions: Sequence[str | Exception]
    family: PromptFamily = "qwen1"
    delay: float = 0.0  # seconds per streamed piece, so a UI can be seen streaming
    name: str = "scripted"
    requests: list[GenerationRequest] = field(default_factory=list)
    _next: int = 0

    def __post_init__(self) -> None:
        self.info = ModelInfo(
            name=self.name if self.name.startswith("scripted") else f"scripted: {self.name}",
            family=self.family,
            backend="scripted",
            supports_native_tools=self.family == "qwen2",
            source=self.name,
        )

    @classmethod
    def from_file(cls, path: str | Path) -> ScriptedBackend:
        """JSON: a list of completions, or {"completions": [...], "family": ..., "delay": ...}."""
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        if isinstance(data, list):
            data = {"completions": data}
        if not isinstance(data, dict) or not isinstance(data.get("completions"), list):
            raise ValueError(f"{path}: expected a JSON list of completions")
        return cls(
            completions=[str(c) for c in data["completions"]],
            family=data.get("family", "qwen1"),
            delay=float(data.get("delay", 0.0)),
            name=f"scripted: {Path(path).name}",
        )

    @property
    def remaining(self) -> int:
        return len(self.completions) - self._next

    def render(self, request: GenerationRequest) -> str:
        return render_chatml(request.messages, request.tools, request.continue_final)

    def stream(self, request: GenerationRequest) -> Iterator[LLMEvent]:
        self.requests.append(request)
        start = time.perf_counter()
        prompt_tokens = len(self.render(request)) // 4
        if self._next >= len(self.completions):
            msg = "the scripted model has no more replies"
            yield GenerationEnd("", StopReason.ERROR, error=msg)
            return
        item = self.completions[self._next]
        self._next += 1
        if isinstance(item, Exception):
            yield GenerationEnd("", StopReason.ERROR, error=f"{type(item).__name__}: {item}")
            return
        filt = StopWordFilter([*request.stop, *CHATML_STOP_WORDS])
        pieces = _CHUNK.findall(item)
        reason = StopReason.EOS
        produced = 0
        for piece in pieces:
            if request.cancel.is_set():
                reason = StopReason.CANCELLED
                break
            if produced >= request.config.max_new_tokens:
                reason = StopReason.LENGTH
                break
            if self.delay:
                time.sleep(self.delay)
            produced += 1
            out = filt.push(piece)
            if out:
                yield TextDelta(out)
            if filt.stop_word is not None:
                reason = StopReason.STOP_WORD
                break
        if filt.stop_word is None:
            out = filt.finish()
            if out:
                yield TextDelta(out)
        yield GenerationEnd(
            filt.text,
            reason,
            stop_word=filt.stop_word,
            prompt_tokens=prompt_tokens,
            completion_tokens=produced,
            seconds=time.perf_counter() - start,
        )

    def close(self) -> None:
        pass
