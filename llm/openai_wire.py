"""What OpenAIBackend sends: request bodies, message text made safe, and error sentences.

Control tokens: vLLM, SGLang and llama.cpp's server render the chat template with message
text spliced in and tokenise the result with special tokens on, so `<|im_start|>system` in
a user message or a tool result would open a real system turn there (vLLM pull 31735 and
transformers issue 29279 discuss it). escape_control_text breaks every `<|name|>` marker in
message text with a zero-width space, so no tokenizer reads it as a special token while the
model sees the same visible text. llm.serve needs no escaping (its backends tokenise message
text as text), but the client cannot tell servers apart, so escaping is on by default.
"""

from __future__ import annotations

import json
import re
from typing import Any

import openai

from llm.chatml import render_chatml
from llm.types import CHATML_STOP_WORDS, GenerationRequest, Message, PromptFamily

# <|endoftext|>, <|im_start|>, <|im_end|> in every Qwen vocabulary (v1 and 2.x).
QWEN_CHATML_TOKEN_IDS = (151643, 151644, 151645)
ZERO_WIDTH_SPACE = "\u200b"
_MARKER = re.compile(r"<\|(?=[A-Za-z0-9_]+\|>)")


def escape_control_text(text: str) -> str:
    """`<|im_start|>` -> `<\\u200b|im_start|>`: same text to the model, never a control token."""
    return _MARKER.sub("<" + ZERO_WIDTH_SPACE + "|", text)


def _escaped_call(call: dict[str, Any]) -> dict[str, Any]:
    fn = dict(call.get("function", {}))
    args = fn.get("arguments")
    if isinstance(args, str):
        fn["arguments"] = escape_control_text(args)
    elif args is not None:  # an object: escape its JSON text, keep it an object
        fn["arguments"] = json.loads(escape_control_text(json.dumps(args, ensure_ascii=False)))
    return {**call, "function": fn}


def outgoing_messages(messages: list[Message], escape: bool) -> list[Message]:
    """Messages as sent: content and tool-call arguments escaped (escape=True)."""
    if not escape:
        return messages
    out = []
    for m in messages:
        m = dict(m)
        if isinstance(m.get("content"), str):
            m["content"] = escape_control_text(m["content"])
        if m.get("tool_calls"):
            m["tool_calls"] = [_escaped_call(c) for c in m["tool_calls"]]
        out.append(m)
    return out


def completion_prompt(request: GenerationRequest, escape: bool) -> str:
    """A ChatML prompt for /v1/completions: only the markers rendered here are real."""
    messages = outgoing_messages(request.messages, escape)
    return render_chatml(messages, request.tools, continue_final=request.continue_final)


def request_params(
    request: GenerationRequest,
    model: str,
    family: PromptFamily,
    extra_body: dict[str, Any],
    *,
    chat: bool,
) -> dict[str, Any]:
    """Keyword arguments of client.chat.completions.create / completions.create."""
    cfg = request.config
    stop = list(dict.fromkeys([*request.stop, *CHATML_STOP_WORDS]))
    params: dict[str, Any] = {
        "model": model,
        "stream": True,
        "stream_options": {"include_usage": True},
        "max_tokens": cfg.max_new_tokens,
        "temperature": max(cfg.temperature, 0.0),
        "stop": stop,
    }
    if not cfg.greedy:
        params["top_p"] = cfg.top_p
    if cfg.seed is not None:
        params["seed"] = cfg.seed
    # vLLM / SGLang / llm.serve extras; other servers ignore unknown fields.
    extra = {"repetition_penalty": cfg.repetition_penalty, **extra_body}
    if family == "qwen1":
        # v1's EOS is <|endoftext|> only, and vLLM matches stop strings after dropping
        # special tokens, so "<|im_end|>" in `stop` alone may never fire there.
        extra.setdefault("stop_token_ids", list(QWEN_CHATML_TOKEN_IDS))
    if not cfg.greedy and cfg.top_k > 0:
        extra.setdefault("top_k", cfg.top_k)
    if chat and request.continue_final:
        # vLLM's way (and llm.serve's) to continue the last assistant message: no new turn.
        extra.update(continue_final_message=True, add_generation_prompt=False)
    if chat and request.thinking is not None:
        kwargs = dict(extra.get("chat_template_kwargs") or {})
        kwargs["enable_thinking"] = request.thinking
        extra["chat_template_kwargs"] = kwargs
    params["extra_body"] = extra
    return params


def describe_error(exc: BaseException, base_url: str, timeout: float | None = None) -> str:
    """One clear sentence for the UI about what went wrong with the server."""
    if isinstance(exc, openai.APITimeoutError):
        limit = f" after {timeout:g} s" if timeout else ""
        return f"The model server at {base_url} did not answer{limit} (timeout)."
    if isinstance(exc, openai.APIConnectionError):
        cause = exc.__cause__ or exc.__context__
        detail = f": {cause}" if cause else ""
        return f"Cannot connect to the model server at {base_url}{detail}."
    if isinstance(exc, openai.APIStatusError):
        msg = _status_message(exc)
        hint = {
            401: " Check the API key (--api-key / OPENAI_API_KEY).",
            403: " The API key is not allowed to use this model.",
            404: " Check the base URL (it usually ends in /v1) and the model name.",
            429: " The server is overloaded; try again shortly.",
        }.get(exc.status_code, "")
        return f"The model server at {base_url} answered HTTP {exc.status_code}: {msg}.{hint}"
    if isinstance(exc, openai.APIError):
        return f"The model server at {base_url} reported an error: {exc.message}"
    return f"Unexpected error talking to {base_url}: {type(exc).__name__}: {exc}"


def _status_message(exc: openai.APIStatusError) -> str:
    body = exc.body
    if isinstance(body, dict):
        err = body.get("error", body)
        if isinstance(err, dict) and err.get("message"):
            return str(err["message"]).rstrip(".")
        if isinstance(err, str):
            return err.rstrip(".")
        if body.get("detail"):
            return str(body["detail"]).rstrip(".")
    text = (exc.response.text or "").strip() if exc.response is not None else ""
    return (text[:300] or exc.message).rstrip(".")
