"""ChatML prompts of /v1/completions, read back into messages.

A ChatBackend takes messages, not raw text, so a completions prompt is parsed: in a
well-formed ChatML prompt `<|im_start|>ROLE\\n ... <|im_end|>` are the turn markers (as
vLLM and llama.cpp tokenise a completions prompt with special tokens on), and each turn's
content then goes to the backend as message text, which it tokenises as text. So markers
that split the prompt into turns are structure; everything else, `<|endoftext|>` or a
half-written marker included, is text. A prompt that is not well-formed ChatML is continued
as one unfinished assistant message: all of it is text.

The one place where untrusted text must never go is this prompt: a client that puts user or
tool text into it hands those markers the turn structure (OpenAIBackend therefore sends chat
messages, or escapes the markers in message text; see docs/openai.md).
"""

from __future__ import annotations

import re

from llm.types import Message

IM_START, IM_END = "<|im_start|>", "<|im_end|>"
_ROLE = re.compile(r"(system|user|assistant)\n")


def chatml_to_messages(prompt: str) -> tuple[list[Message], bool]:
    """Parse a ChatML prompt into (messages, continue_final).

    An open assistant turn at the end is continued; a prompt ending in a closed turn gets a
    new assistant turn. Text that is not ChatML becomes an assistant message to continue.
    """
    fallback: tuple[list[Message], bool] = ([{"role": "assistant", "content": prompt}], True)
    head, *turns = prompt.split(IM_START)
    if head.strip() or not turns:
        return fallback
    messages: list[Message] = []
    for i, turn in enumerate(turns):
        m = _ROLE.match(turn)
        if m is None:
            return fallback
        role, body = m.group(1), turn[m.end() :]
        last = i == len(turns) - 1
        if body.endswith(IM_END + "\n"):
            body = body[: -len(IM_END) - 1]
        elif last and body.endswith(IM_END):
            body = body[: -len(IM_END)]
        elif last and role == "assistant":
            messages.append({"role": role, "content": body})
            return messages, True
        else:
            return fallback
        if IM_END in body:
            return fallback
        messages.append({"role": role, "content": body})
    return messages, False
