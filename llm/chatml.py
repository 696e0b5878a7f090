"""ChatML rendering for models without a usable chat template (Qwen v1, scripted).

Qwen v1 checkpoints ship no Jinja chat template; their remote code builds ChatML by hand.
CHATML_TEMPLATE is that format as a template, given to converted v1 tokenizers.
"""

from __future__ import annotations

import json
from typing import Any

from llm.toolcalls.hermes import render_tool_call
from llm.types import Message

DEFAULT_SYSTEM = "You are a helpful assistant."

CHATML_TEMPLATE = (
    "{%- if messages[0]['role'] != 'system' %}"
    "{{- '<|im_start|>system\\n" + DEFAULT_SYSTEM + "<|im_end|>\\n' }}"
    "{%- endif %}"
    "{%- for message in messages %}"
    "{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}"
)

_TOOLS_HEADER = (
    "\n\n# Tools\n\nYou may call one or more functions to assist with the user query.\n\n"
    "You are provided with function signatures within <tools></tools> XML tags:\n<tools>"
)
_TOOLS_FOOTER = (
    "\n</tools>\n\nFor each function call, return a json object with function name and "
    "arguments within <tool_call></tool_call> XML tags:\n<tool_call>\n"
    '{"name": <function-name>, "arguments": <args-json-object>}\n</tool_call>'
)


def arguments_as_objects(message: Message) -> Message:
    """Tool-call arguments decoded from JSON strings into objects.

    History keeps them as JSON strings (OpenAI style), but Qwen2.5-style templates apply
    `arguments | tojson`, which would show the model a doubly encoded string; ChatML output
    embeds them as objects too. A string that is not JSON is kept: the model sees what it wrote.
    """
    calls = message.get("tool_calls")
    if not calls:
        return message
    fixed = []
    for call in calls:
        fn = call.get("function", call)
        args = fn.get("arguments")
        if isinstance(args, str):
            try:
                args = json.loads(args)
            except ValueError:
                pass  # not JSON: show the model what it wrote
        fn = {**fn, "arguments": args}
        fixed.append({**call, "function": fn} if "function" in call else fn)
    return {**message, "tool_calls": fixed}


def render_chatml(
    messages: list[Message],
    tools: list[dict[str, Any]] | None = None,
    continue_final: bool = False,
) -> str:
    """Render messages as ChatML text; tools in the Qwen2.5 system-prompt style."""
    msgs = list(messages)
    if not msgs or msgs[0]["role"] != "system":
        msgs.insert(0, {"role": "system", "content": DEFAULT_SYSTEM})
    parts: list[str] = []
    for i, m in enumerate(msgs):
        m = arguments_as_objects(m)
        content = m.get("content") or ""
        role = m["role"]
        if i == 0 and tools:
            content += _TOOLS_HEADER
            content += "".join("\n" + json.dumps(t, ensure_ascii=False) for t in tools)
            content += _TOOLS_FOOTER
        if role == "assistant" and m.get("tool_calls"):
            for call in m["tool_calls"]:
                fn = call["function"]
                block = render_tool_call(fn["name"], fn["arguments"])
                content += ("\n" if content else "") + block
        if role == "tool":
            # consecutive results share one user turn, one block each (as Qwen2.5's template)
            block = f"<tool_response>\n{content}\n</tool_response>"
            if i > 0 and msgs[i - 1]["role"] == "tool":
                parts[-1] = parts[-1].removesuffix("<|im_end|>\n") + f"\n{block}<|im_end|>\n"
                continue
            role, content = "user", block
        last = i == len(msgs) - 1
        if last and continue_final and role == "assistant":
            parts.append(f"<|im_start|>{role}\n{content}")
        else:
            parts.append(f"<|im_start|>{role}\n{content}<|im_end|>\n")
    if not continue_final:
        parts.append("<|im_start|>assistant\n")
    return "".join(parts)
