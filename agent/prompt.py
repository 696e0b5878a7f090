"""The ReAct prompt as data, one strict renderer, and Qwen's way of replaying history.

The wording is Qwen's own (QwenLM/Qwen examples/react_prompt.md): Qwen v1 chat models were
trained on exactly this text, so changing a word costs tool-use accuracy. The history replay
follows Qwen's openai_api.py: an earlier tool call becomes Thought / Action / Action Input, its
result an Observation, a plain earlier answer "Thought: I now know the final answer.\\nFinal
Answer: ...", and the instruction sits on the latest user turn only.
"""

from __future__ import annotations

import json
import re
import string
from collections.abc import Sequence

from agent.errors import AgentError
from llm.toolcalls.react import FINAL_THOUGHT, render_action
from llm.types import Message
from tools.registry import Tool

TOOL_DESC = (
    "{name_for_model}: Call this tool to interact with the {name_for_human} API. "
    "What is the {name_for_human} API useful for? {description_for_model} "
    "Parameters: {parameters} Format the arguments as a JSON object."
)

REACT_PROMPT = """Answer the following questions as best you can. You have access to the following tools:

{tool_descs}

Use the following format:

Question: the input question you must answer
Thought: you should always think about what to do
Action: the action to take, should be one of [{tool_names}]
Action Input: the input to the action
Observation: the result of the action
... (this Thought/Action/Action Input/Observation can be repeated zero or more times)
Thought: I now know the final answer
Final Answer: the final answer to the original input question

Begin!

Question: {query}"""  # noqa: E501 - the prompt is data; its lines must stay as Qwen wrote them

TOOL_DESC_SEPARATOR = "\n\n"
TOOL_NAME_SEPARATOR = ","

# Stop before the model writes the tool result itself (the backend adds the ChatML ones).
REACT_STOP_WORDS: tuple[str, ...] = ("Observation:", "Observation:\n")


class TemplateError(AgentError):
    """A template and its values do not match (a programming error, caught by tests)."""


def render_template(template: str, **values: str) -> str:
    """Fill every {field} of template; a missing or an unused value is an error, not a guess."""
    fields = {name for _, name, _, _ in string.Formatter().parse(template) if name is not None}
    missing = fields - values.keys()
    unused = values.keys() - fields
    if missing or unused:
        raise TemplateError(f"template fields {sorted(fields)}; missing {missing}, unused {unused}")
    return template.format(**values)


def tool_description(tool: Tool) -> str:
    return render_template(
        TOOL_DESC,
        name_for_model=tool.name,
        name_for_human=tool.name_for_human,
        description_for_model=tool.description,
        parameters=json.dumps(tool.react_parameters(), ensure_ascii=False),
    )


def react_prompt(tools: Sequence[Tool], query: str) -> str:
    """The user turn that starts a ReAct episode: instruction, enabled tools, the question."""
    if not tools:
        raise TemplateError("the ReAct prompt needs at least one tool")
    return render_template(
        REACT_PROMPT,
        tool_descs=TOOL_DESC_SEPARATOR.join(tool_description(t) for t in tools),
        tool_names=TOOL_NAME_SEPARATOR.join(t.name for t in tools),
        query=query,
    )


def replay_react(
    system: str,
    history: Sequence[Message],
    turn: Sequence[Message],
    tools: Sequence[Tool],
) -> tuple[list[Message], bool]:
    """ChatML messages for a ReAct model call, and whether the model continues the last one.

    history: earlier turns; turn: this turn so far (its user message first). Returns
    continue_final=True when this turn already has tool steps: the last assistant message then
    ends with "Observation: <result>\\nThought:" for the model to go on from.
    """
    msgs = [*history, *turn]
    # this turn's latest user message (its question, or a re-ask after a rejected answer)
    current = len(history) + max(i for i, m in enumerate(turn) if m["role"] == "user")
    out: list[Message] = [{"role": "system", "content": system}]

    def add_assistant(text: str) -> None:
        if out[-1]["role"] == "assistant":
            out[-1]["content"] += "\n" + text
        else:
            out.append({"role": "assistant", "content": text})

    i = 0
    while i < len(msgs):
        m = msgs[i]
        content = (m.get("content") or "").strip()
        if m["role"] == "user":
            if i == current and tools:
                content = react_prompt(tools, content)
            out.append({"role": "user", "content": content})
        elif m["role"] == "assistant" and m.get("tool_calls"):
            results: list[Message] = []
            while i + 1 < len(msgs) and msgs[i + 1]["role"] == "tool":
                i += 1
                results.append(msgs[i])
            by_id = {r.get("tool_call_id"): r for r in results}
            for n, call in enumerate(m["tool_calls"]):
                result = by_id.get(call.get("id")) or (results[n] if n < len(results) else None)
                fn = call.get("function", call)
                thought = content if n == 0 else None
                block = render_action(fn["name"], fn.get("arguments"), thought)
                if result is not None:
                    block += f"\nObservation: {(result.get('content') or '').strip()}"
                add_assistant(block)
        elif m["role"] == "assistant":
            add_assistant(f"{FINAL_THOUGHT}\nFinal Answer: {content}" if tools else content)
        elif m["role"] == "tool":  # a result without its call: still show it to the model
            add_assistant(f"Observation: {content}")
        i += 1
    continue_final = len(turn) > 1 and out[-1]["role"] == "assistant"
    if continue_final:
        out[-1]["content"] += "\nThought:"
    return out, continue_final


def question_lang(query: str) -> str:
    """ "zh" when the question has a Chinese character, else "en": the language the agent's own
    follow-up turns (re-asks) are written in."""
    return "zh" if re.search(r"[\u4e00-\u9fff]", query) else "en"
