"""Every text the agent writes itself, in English and Chinese.

Two audiences: notes for the user (step limit, a stopped loop, a refused call, what an aid
did) follow the UI language; turns for the model (re-asks, the note on a repeated call)
follow the language of the question, so a Chinese question is re-asked in Chinese.
"""

from __future__ import annotations

import re

TEXTS: dict[str, dict[str, str]] = {
    # for the user
    "step_limit": {
        "en": "Stopped after {n} model calls without a final answer (the step limit). Ask "
        "again, simplify the question, or raise the step limit in Settings.",
        "zh": "已调用模型 {n} 次仍未得到最终回答（达到步数上限）。请重新提问、简化问题，"
        "或在设置中提高步数上限。",
    },
    "no_answer": {
        "en": "The model did not phrase an answer. What {tool} returned:",
        "zh": "模型没有组织出回答。{tool} 工具返回的结果：",
    },
    "kept_repeating": {
        "en": "The model kept calling {tool} with the same arguments instead of answering. "
        "What the tool returned:",
        "zh": "模型反复用相同参数调用 {tool}，没有给出回答。工具返回的结果：",
    },
    "retry_off": {
        "en": "The model made a tool call that cannot run ({why}); retrying is off.",
        "zh": "模型发出了无法执行的工具调用（{why}）；已关闭重试。",
    },
    "model_failed": {"en": "The model call failed: {error}", "zh": "模型调用失败：{error}"},
    "bad_call": {"en": "Tool call refused: {why}", "zh": "工具调用被拒绝：{why}"},
    "aid_reject": {
        "en": "The answer was not checked with a tool; asked again to use {tool}.",
        "zh": "回答没有经过工具验证；已要求模型使用 {tool} 重新回答。",
    },
    "aid_ask_repeat": {
        "en": "The model repeated a call it already has the result of; asked it to answer.",
        "zh": "模型重复了已有结果的调用；已要求它直接回答。",
    },
    "aid_ask_empty": {
        "en": "The model replied with nothing after the tool results; asked it to answer.",
        "zh": "模型在得到工具结果后没有回复；已要求它回答。",
    },
    "aid_junk": {
        "en": "The answer was {kind}, not words; asked once for a plain answer.",
        "zh": "回答是{kind}，不是文字；已要求模型用文字回答一次。",
    },
    "aid_dedupe": {
        "en": "Repeated call: answered from the earlier result, not run again.",
        "zh": "重复调用：直接用之前的结果回答，没有再次执行。",
    },
    "aid_dedupe_stop": {
        "en": "The model repeated the call again after that note; the turn ends with the "
        "tool's result.",
        "zh": "提示之后模型仍重复调用；本轮以工具结果结束。",
    },
    "junk_json": {"en": "raw JSON", "zh": "原始 JSON"},
    "junk_call": {"en": "tool-call syntax", "zh": "工具调用格式的文本"},
    "junk_note": {"en": "the agent's own note echoed back", "zh": "智能体自己的提示"},
    "junk_empty": {"en": "empty", "zh": "空的"},
    # for the model (language of the question)
    "nudge_tool": {
        "en": "Your answer was not checked with a tool. Use the {tool} tool to answer the "
        "question: {query}",
        "zh": "你的回答没有经过工具验证。请使用 {tool} 工具来回答这个问题：{query}",
    },
    "ask_answer": {
        "en": "Using the tool results above, answer the original question: {query}",
        "zh": "请根据上面的工具结果回答最初的问题：{query}",
    },
    "ask_words": {
        "en": "Answer the original question in plain words (no JSON, no tool calls), using "
        "the tool results above: {query}",
        "zh": "请用通顺的文字（不要 JSON，也不要工具调用）根据上面的工具结果"
        "回答最初的问题：{query}",
    },
    "repeat_note": {
        "en": "You already called {tool} with these arguments in this turn; it returned:\n"
        "{result}\nDo not call it again. Use this result and give your final answer.",
        "zh": "本轮你已经用相同参数调用过 {tool}，结果是：\n{result}\n"
        "不要再调用它，请根据这个结果给出最终回答。",
    },
}

_CJK = re.compile(r"[\u4e00-\u9fff]")


def question_lang(query: str) -> str:
    """ "zh" when the question has a Chinese character, else "en"."""
    return "zh" if _CJK.search(query) else "en"


def say(key: str, lang: str, **values: object) -> str:
    """The text `key` in `lang` ("zh" or "en"; anything else reads as English)."""
    texts = TEXTS[key]
    return texts.get(lang, texts["en"]).format(**values)


def model_text(key: str, query: str, **values: object) -> str:
    """A turn for the model, in the question's language."""
    return say(key, question_lang(query), query=query, **values)
