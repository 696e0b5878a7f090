"""Streaming chat generation with a local transformers model.

model.generate runs in a background thread and pushes token ids into a queue; the caller's
thread decodes them incrementally (only a small window of ids per step) and passes the text
through StopWordFilter, so no character of a stop word is ever shown. Stop words also end
generation at token level, within one token, and a cancel Event stops it from any thread.

Prompts are encoded so that user text can never become control tokens: the chat template is
rendered with placeholders for message contents, template pieces are encoded normally and
content pieces with split_special_tokens=True.
"""

from __future__ import annotations

import copy
import dataclasses
import gc
import queue
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from llm.chatml import arguments_as_objects, render_chatml
from llm.constrain.hf import ConstraintProcessor, supports, warm
from llm.stopwords import StopWordFilter
from llm.types import (
    CHATML_STOP_WORDS,
    GenerationEnd,
    GenerationRequest,
    LLMEvent,
    Message,
    ModelInfo,
    StopReason,
    TextDelta,
)

# Test hook type: extra logits processors for one request (e.g. forcing a token sequence).
LogitsHook = Callable[[GenerationRequest, list[int]], list[Any]]

_END = object()  # queue sentinel: generation finished
_JOIN_TIMEOUT_S = 30.0


class _QueueStreamer:
    """generate() streamer that hands new token ids to the consuming thread."""

    def __init__(self) -> None:
        self.queue: queue.Queue[Any] = queue.Queue()
        self._prompt_seen = False

    def put(self, value: Any) -> None:
        if not self._prompt_seen:  # generate() first pushes the prompt
            self._prompt_seen = True
            return
        self.queue.put(value.reshape(-1).tolist())

    def end(self) -> None:
        pass  # the generation thread puts _END itself, also after an exception

    def next_batch(self) -> Any:
        """All ids queued so far (blocks for the first), or _END when generation is over.

        Decoding what piled up in one go keeps the consumer from competing with generate()
        for the GIL once per token when it falls behind.
        """
        item = self.queue.get()
        if item is _END:
            return _END
        while True:
            try:
                more = self.queue.get_nowait()
            except queue.Empty:
                return item
            if more is _END:
                self.queue.put(_END)  # seen on the next call
                return item
            item = item + more


class _IncrementalDecoder:
    """Decode a growing id list without re-decoding it all each step.

    Keeps a small window (prefix..read) so tokenizers that change a token's text depending on
    its left neighbour (leading spaces, partial UTF-8 bytes) still decode exactly.
    """

    def __init__(self, tokenizer: Any) -> None:
        self._tok = tokenizer
        self.ids: list[int] = []
        self._prefix = 0
        self._read = 0

    def _decode(self, ids: list[int]) -> str:
        return self._tok.decode(ids, skip_special_tokens=False, clean_up_tokenization_spaces=False)

    def push(self, new_ids: Sequence[int]) -> str:
        self.ids.extend(new_ids)
        prefix_text = self._decode(self.ids[self._prefix : self._read])
        full = self._decode(self.ids[self._prefix :])
        if len(full) > len(prefix_text) and not full.endswith("\ufffd"):
            self._prefix, self._read = self._read, len(self.ids)
            return full[len(prefix_text) :]
        return ""

    def flush(self) -> str:
        if self._read >= len(self.ids):
            return ""
        prefix_text = self._decode(self.ids[self._prefix : self._read])
        full = self._decode(self.ids[self._prefix :])
        self._prefix = self._read = len(self.ids)
        return full[len(prefix_text) :]


def _make_criteria(backend: TransformersBackend, words: Sequence[str], prompt_len: int, *events):
    """StoppingCriteria: a stop word completed (checked on the new token's text) or cancel."""
    import torch
    from transformers import StoppingCriteria

    max_len = max((len(w) for w in words), default=1)
    max_bytes = max((len(w.encode("utf-8")) for w in words), default=1)
    ascii_only = all(w.isascii() for w in words)

    class _Stop(StoppingCriteria):
        def __init__(self) -> None:
            self.tail = ""
            self.hit = False
            self._results: dict[bool, Any] = {}  # reused: generate() only reads them

        def __call__(self, input_ids, scores, **kwargs):
            done = any(e.is_set() for e in events)
            if not done and input_ids.shape[1] > prompt_len:
                if ascii_only:
                    # Single-token pieces are exact for ASCII stop words and cost a dict lookup.
                    text = self.tail + backend._piece(input_ids[0, -1].item())
                    self.tail = text[-(max_len - 1) :] if max_len > 1 else ""
                else:
                    window = input_ids[0, max(prompt_len, input_ids.shape[1] - max_bytes - 1) :]
                    text = backend.tokenizer.decode(window.tolist(), skip_special_tokens=False)
                if any(w in text for w in words):
                    self.hit = done = True
            result = self._results.get(done)
            if result is None or result.shape[0] != input_ids.shape[0]:
                shape = (input_ids.shape[0],)
                result = torch.full(shape, done, dtype=torch.bool, device=input_ids.device)
                self._results[done] = result
            return result

    return _Stop()


class TransformersBackend:
    """A loaded transformers causal LM + tokenizer behind the ChatBackend protocol.

    logits_hook is for tests only (force a token sequence); production code leaves it None.

    prefix_cache: keep the previous call's KV cache and reuse it for the longest common
    prefix of the next prompt, so an agent step only prefills the new tokens (the tool's
    Observation) instead of the whole conversation. GenerationEnd.cached_tokens says how many
    prompt tokens were served from it. last_ids: the previous call's prompt + output ids.
    """

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        info: ModelInfo,
        *,
        logits_hook: LogitsHook | None = None,
        prefix_cache: bool = True,
    ) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.info = dataclasses.replace(info, supports_constraints=supports(tokenizer))
        self.logits_hook = logits_hook
        self.prefix_cache = prefix_cache
        self.last_ids: list[int] = []
        self._cache: Any = None  # KV cache covering exactly self._cache_ids
        self._cache_ids: list[int] = []
        self._lock = threading.Lock()  # one generation at a time on this model
        self._pieces: dict[int, str] = {}
        self.eos_ids = self._eos_ids()
        if self.info.supports_constraints:  # the grammar engine's tokenizer, built once
            warm(model, tokenizer, tuple(sorted(self.eos_ids)))

    # ---- prompt -----------------------------------------------------------------------

    def _eos_ids(self) -> set[int]:
        ids: set[int] = set()
        eos = getattr(self.model.generation_config, "eos_token_id", None)
        if eos is not None:
            ids.update(eos if isinstance(eos, (list, tuple)) else [eos])
        if self.tokenizer.eos_token_id is not None:
            ids.add(self.tokenizer.eos_token_id)
        vocab = self.tokenizer.get_vocab()
        ids.update(vocab[t] for t in ("<|im_end|>", "<|endoftext|>") if t in vocab)
        return ids

    def _template(self, messages: list[Message], tools: Any, generation_prompt: bool) -> str:
        if getattr(self.tokenizer, "chat_template", None):
            return self.tokenizer.apply_chat_template(
                [arguments_as_objects(m) for m in messages],
                tools=tools or None,
                add_generation_prompt=generation_prompt,
                tokenize=False,
            )
        return render_chatml(messages, tools, continue_final=not generation_prompt)

    def prompt_parts(self, request: GenerationRequest) -> list[tuple[str, bool]]:
        """The prompt as (text, is_user_content) pieces, in order."""
        nonce = uuid.uuid4().hex[:10]
        contents: list[str] = []
        msgs: list[Message] = []
        for m in request.messages:
            content = m.get("content")
            if isinstance(content, str) and content:
                m = {**m, "content": f"\ue000{nonce}{len(contents)}\ue001"}
                contents.append(content)
            msgs.append(m)
        cont = bool(request.continue_final and msgs and msgs[-1].get("role") == "assistant")
        final_mark = msgs[-1].get("content") if cont else None
        if cont and not (isinstance(final_mark, str) and final_mark.startswith("\ue000")):
            cont, msgs = False, msgs[:-1]  # an empty assistant turn: just open a new one
        text = self._template(msgs, request.tools, generation_prompt=not cont)
        if cont:  # cut right after the unfinished assistant content: no end-of-turn token
            text = text[: text.rindex(final_mark) + len(final_mark)]
        parts: list[tuple[str, bool]] = []
        pos = 0
        for match in re.finditer(f"\ue000{nonce}(\\d+)\ue001", text):
            if match.start() > pos:
                parts.append((text[pos : match.start()], False))
            parts.append((contents[int(match.group(1))], True))
            pos = match.end()
        if pos < len(text):
            parts.append((text[pos:], False))
        return parts

    def render(self, request: GenerationRequest) -> str:
        return "".join(text for text, _ in self.prompt_parts(request))

    def encode(self, request: GenerationRequest) -> list[int]:
        """Prompt ids; user content can never encode to special (control) tokens."""
        ids: list[int] = []
        for text, is_content in self.prompt_parts(request):
            if is_content:
                enc = self.tokenizer(text, add_special_tokens=False, split_special_tokens=True)
            else:
                enc = self.tokenizer(text, add_special_tokens=False)
            ids.extend(enc["input_ids"])
        return ids

    def _piece(self, token_id: int) -> str:
        piece = self._pieces.get(token_id)
        if piece is None:
            piece = self.tokenizer.decode([token_id], skip_special_tokens=False)
            self._pieces[token_id] = piece
        return piece

    # ---- generation -------------------------------------------------------------------

    def _generation_config(self, request: GenerationRequest) -> Any:
        cfg = request.config
        gen = copy.deepcopy(self.model.generation_config)
        pad = self.tokenizer.pad_token_id
        if pad is None:
            pad = min(self.eos_ids) if self.eos_ids else 0
        gen.update(
            max_new_tokens=int(cfg.max_new_tokens),
            do_sample=not cfg.greedy,
            repetition_penalty=float(cfg.repetition_penalty),
            eos_token_id=sorted(self.eos_ids),
            pad_token_id=pad,
        )
        if cfg.greedy:
            gen.update(temperature=None, top_p=None, top_k=None)
        else:
            gen.update(temperature=float(cfg.temperature), top_p=float(cfg.top_p))
            gen.update(top_k=int(cfg.top_k) if cfg.top_k and cfg.top_k > 0 else None)
        return gen

    def stream(self, request: GenerationRequest) -> Iterator[LLMEvent]:
        start = time.perf_counter()
        if self.model is None:
            yield GenerationEnd("", StopReason.ERROR, error="the model was unloaded")
            return
        try:
            prompt_ids = self.encode(request)
        except Exception as exc:  # a template error is the caller's input problem
            yield GenerationEnd("", StopReason.ERROR, error=f"could not render the prompt: {exc}")
            return
        words = list(dict.fromkeys(w for w in [*request.stop, *CHATML_STOP_WORDS] if w))
        with self._lock:
            yield from self._run(request, prompt_ids, words, start)

    def _run(
        self, request: GenerationRequest, prompt_ids: list[int], words: list[str], start: float
    ) -> Iterator[LLMEvent]:
        import torch

        abort = threading.Event()
        streamer = _QueueStreamer()
        criteria = _make_criteria(self, words, len(prompt_ids), request.cancel, abort)
        errors: list[BaseException] = []
        input_ids = torch.tensor([prompt_ids], dtype=torch.long, device=self.model.device)
        kwargs: dict[str, Any] = dict(
            input_ids=input_ids,
            attention_mask=torch.ones_like(input_ids),
            generation_config=self._generation_config(request),
            streamer=streamer,
            stopping_criteria=[criteria],
        )
        processors = self.logits_hook(request, prompt_ids) if self.logits_hook else []
        constraint = None
        if request.constraint is not None:  # after the hook: forcing stays a preference
            constraint = ConstraintProcessor(
                self.tokenizer, request.constraint, len(prompt_ids), tuple(sorted(self.eos_ids))
            )
            processors = [*processors, constraint]
        if processors:
            kwargs["logits_processor"] = processors
        cache, cached = self._take_cache(prompt_ids)
        if cache is not None:
            kwargs["past_key_values"] = cache
        seed = request.config.seed

        def work() -> None:
            try:
                if seed is not None:
                    torch.manual_seed(seed)
                with torch.inference_mode():
                    self.model.generate(**kwargs)
            except BaseException as exc:  # reported as StopReason.ERROR
                errors.append(exc)
            finally:
                streamer.queue.put(_END)

        thread = threading.Thread(target=work, name="llm-generate", daemon=True)
        decoder = _IncrementalDecoder(self.tokenizer)
        filt = StopWordFilter(words)
        counted: list[int] = []  # generated ids that are not decoded (EOS and after a stop)
        eos_seen = False
        finished = False
        thread.start()
        try:
            while (item := streamer.next_batch()) is not _END:
                if filt.stop_word is not None or eos_seen:
                    counted.extend(item)  # count only: the text is already cut
                    continue
                for i, token in enumerate(item):
                    if token in self.eos_ids:  # not shown: finish() strips a half stop word
                        eos_seen = True
                        counted.extend(item[i:])
                        item = item[:i]
                        break
                out = filt.push(decoder.push(item))
                if filt.stop_word is not None:
                    abort.set()  # safety net if token-level stopping missed it
                if out:
                    yield TextDelta(out)
            thread.join()
            if filt.stop_word is None:
                out = filt.push(decoder.flush())
                if filt.stop_word is None:
                    out += filt.finish()
                if out:
                    yield TextDelta(out)
            gen_ids = decoder.ids + counted
            self.last_ids = prompt_ids + gen_ids
            if cache is not None and not errors:
                self._keep_cache(cache, self.last_ids)
            reason, stop_word, error = self._reason(request, filt, criteria, gen_ids, errors)
            finished = True
            yield GenerationEnd(
                filt.text,
                reason,
                stop_word=stop_word,
                prompt_tokens=len(prompt_ids),
                completion_tokens=len(gen_ids),
                cached_tokens=cached,
                seconds=time.perf_counter() - start,
                error=error,
                constrained=bool(constraint and constraint.applied),
                notes=constraint.notes if constraint else (),
            )
        finally:
            if not finished:  # the consumer closed the stream early: free the thread
                request.cancel.set()
                abort.set()
            thread.join(timeout=_JOIN_TIMEOUT_S)

    def _reason(
        self,
        request: GenerationRequest,
        filt: StopWordFilter,
        criteria: Any,
        gen_ids: list[int],
        errors: list[BaseException],
    ) -> tuple[StopReason, str | None, str | None]:
        if errors:
            exc = errors[0]
            return StopReason.ERROR, None, f"{type(exc).__name__}: {exc}"
        if gen_ids and gen_ids[-1] in self.eos_ids:
            return StopReason.EOS, None, None
        if filt.stop_word is not None:
            return StopReason.STOP_WORD, filt.stop_word, None
        if request.cancel.is_set():
            return StopReason.CANCELLED, None, None
        if len(gen_ids) >= request.config.max_new_tokens:
            return StopReason.LENGTH, None, None
        return StopReason.EOS, None, None

    def close(self) -> None:
        """Drop the weights; the manager then runs gc and empties the CUDA cache."""
        with self._lock:
            self.model = None
            self.tokenizer = None
            self._pieces.clear()
            self.last_ids = []
            self._cache, self._cache_ids = None, []
        gc.collect()

    # ---- KV-cache prefix reuse --------------------------------------------------------

    def _take_cache(self, prompt_ids: list[int]) -> tuple[Any, int]:
        """(cache for this call, prompt tokens it already covers); (None, 0) when disabled.

        The kept cache is cropped to the longest common prefix with prompt_ids, leaving at
        least one prompt token to prefill (generate needs logits for the last one).
        """
        if not self.prefix_cache:
            return None, 0
        cache, ids = self._cache, self._cache_ids
        self._cache, self._cache_ids = None, []  # in use; put back by _keep_cache
        n = 0
        if cache is not None:
            limit = min(len(ids), len(prompt_ids) - 1)
            while n < limit and ids[n] == prompt_ids[n]:
                n += 1
            try:
                length = cache.get_seq_length()
                if length != len(ids) or n == 0:
                    cache, n = None, 0
                elif length > n:
                    cache.crop(n - length)  # negative: tokens to remove
                if cache is not None and cache.get_seq_length() != n:
                    cache, n = None, 0
            except Exception:  # a cache type that cannot be cropped: start afresh
                cache, n = None, 0
        if cache is None:
            from transformers import DynamicCache

            cache = DynamicCache(config=self.model.config)
        return cache, n

    def _keep_cache(self, cache: Any, ids: list[int]) -> None:
        try:
            length = cache.get_seq_length()
        except Exception:
            return
        if 0 < length <= len(ids):
            self._cache, self._cache_ids = cache, ids[:length]
