"""UI strings in Chinese and English, switched by one control.

Every label the app shows goes through t(); a missing key in one language is a bug that the
tests catch, rather than a silently English label in the Chinese UI.
"""

from __future__ import annotations

from typing import Literal

Lang = Literal["zh", "en"]
LANGS: tuple[Lang, ...] = ("zh", "en")

DEFAULT_SYSTEM_PROMPT: dict[str, str] = {
    "zh": "你是一个乐于助人的助手。请用中文回答用户的问题，需要时调用工具。",
    "en": "You are a helpful assistant. Answer the user's questions, calling tools when needed.",
}

STRINGS: dict[str, dict[str, str]] = {
    "title": {
        "zh": "## 通义千问 Agent 演示\n选择模型、勾选工具，然后开始对话；右侧面板显示每一步推理。",
        "en": "## Qwen Agent Demo\nPick a model, tick tools, and chat; the right pane shows "
        "every agent step.",
    },
    "language": {"zh": "语言 / Language", "en": "Language / 语言"},
    # model panel
    "model_panel": {"zh": "模型", "en": "Model"},
    "size": {"zh": "模型规模", "en": "Size"},
    "precision": {"zh": "精度", "en": "Precision"},
    "generation": {"zh": "模型代际", "en": "Generation"},
    "custom_source": {"zh": "或输入本地路径 / Hub ID", "en": "Or a local path / hub id"},
    "custom_placeholder": {
        "zh": "例如 Qwen/Qwen-7B-Chat、/models/qwen 或 scripted:examples/scripted/seed_react.json",
        "en": "e.g. Qwen/Qwen-7B-Chat, /models/qwen or scripted:examples/scripted/seed_react.json",
    },
    "load": {"zh": "加载模型", "en": "Load model"},
    "unload": {"zh": "卸载", "en": "Unload"},
    "server_model": {"zh": "服务器上的模型", "en": "Server model"},
    "refresh_models": {"zh": "刷新列表", "en": "Refresh list"},
    "status_none": {"zh": "未加载模型。", "en": "No model loaded."},
    "status_loading": {"zh": "⏳ 正在加载 {name} …", "en": "⏳ Loading {name} …"},
    "status_loaded": {
        "zh": "✅ 已加载 **{name}**，设备 {device}，占用 {memory:.1f} GB",
        "en": "✅ Loaded **{name}** on {device} using {memory:.1f} GB",
    },
    "status_failed": {"zh": "❌ 加载失败：{error}", "en": "❌ Load failed: {error}"},
    "status_remote": {
        "zh": "🌐 远程服务 {url}，模型 **{name}**",
        "en": "🌐 Remote server {url}, model **{name}**",
    },
    "fit_warning": {"zh": "⚠️ {message}", "en": "⚠️ {message}"},
    "busy_swap": {
        "zh": "正在生成回答，不能切换模型。请先停止或等待结束。",
        "en": "A reply is being generated; the model cannot be swapped now. Stop it or wait.",
    },
    "pick_model": {
        "zh": "请选择规模和精度，或输入模型路径。",
        "en": "Pick a size and precision, or enter a model path.",
    },
    # tools
    "tools_panel": {"zh": "工具", "en": "Tools"},
    "tools_hint": {
        "zh": "勾选的工具在下一轮对话中生效。",
        "en": "Ticked tools take effect on the next turn.",
    },
    "no_tools": {"zh": "没有可用的工具。", "en": "No tools are available."},
    "prompt_view": {"zh": "查看提示词", "en": "Show prompt"},
    "prompt_code": {"zh": "发给模型的完整提示词", "en": "Exact prompt sent to the model"},
    "stop_words": {"zh": "停止词", "en": "Stop words"},
    "refresh_prompt": {"zh": "刷新", "en": "Refresh"},
    "prompt_needs_model": {
        "zh": "（加载模型后才能显示提示词）",
        "en": "(load a model to see the prompt)",
    },
    "prompt_query_placeholder": {"zh": "（你的问题）", "en": "(your question)"},
    # settings
    "settings_panel": {"zh": "生成设置", "en": "Settings"},
    "system_prompt": {"zh": "系统提示词", "en": "System prompt"},
    "temperature": {"zh": "温度（0 = 贪心）", "en": "Temperature (0 = greedy)"},
    "top_p": {"zh": "Top-p", "en": "Top-p"},
    "max_new_tokens": {"zh": "每步最多生成 token 数", "en": "Max new tokens per step"},
    "max_steps": {"zh": "Agent 最多步数", "en": "Max agent steps"},
    "prompt_format": {"zh": "提示格式", "en": "Prompt format"},
    "format_auto": {"zh": "自动", "en": "auto"},
    "aids": {"zh": "小模型辅助", "en": "Small-model aids"},
    "aid_prefill": {
        "zh": "ReAct 回复以 “Thought:” 开头（让模型保持格式）",
        "en": 'Start ReAct replies with "Thought:" (keeps the model in the format)',
    },
    "aid_reject": {
        "zh": "回答跳过了明显需要的工具时，重新提问一次",
        "en": "Re-ask once when an answer skips a clearly needed tool",
    },
    "aid_dedupe": {
        "zh": "重复的工具调用不再执行，返回上次结果并要求作答",
        "en": "Answer a repeated tool call from its first result and ask for the answer",
    },
    "aid_ask": {
        "zh": "模型有了工具结果却重复调用或不作答时，请它根据结果作答一次",
        "en": "Ask once for the answer when the model has tool results but repeats or says nothing",
    },
    # chat
    "chat": {"zh": "对话", "en": "Chat"},
    "input_placeholder": {
        "zh": "输入消息，回车发送（Shift+回车换行）",
        "en": "Type a message, Enter to send (Shift+Enter for a new line)",
    },
    "send": {"zh": "发送", "en": "Send"},
    "stop": {"zh": "停止", "en": "Stop"},
    "regenerate": {"zh": "重新生成", "en": "Regenerate"},
    "undo": {"zh": "撤销", "en": "Undo"},
    "clear": {"zh": "清空", "en": "Clear"},
    "export_panel": {"zh": "导出对话", "en": "Export"},
    "export": {"zh": "导出 JSON 和 Markdown", "en": "Export JSON and Markdown"},
    "export_files": {"zh": "下载", "en": "Download"},
    "trace": {"zh": "Agent 轨迹", "en": "Agent trace"},
    # messages
    "empty_input": {"zh": "请输入消息。", "en": "Please type a message."},
    "no_model": {
        "zh": "还没有加载模型：请先在“模型”面板中加载一个。",
        "en": "No model is loaded yet: load one in the Model panel first.",
    },
    "model_loading": {
        "zh": "模型仍在加载中，请稍候再发送（状态见“模型”面板）。",
        "en": "The model is still loading; send again when it is ready (see the Model panel).",
    },
    "nothing_to_regenerate": {"zh": "没有可以重新生成的回答。", "en": "Nothing to regenerate."},
    "generation_error": {"zh": "生成出错：{error}", "en": "Generation failed: {error}"},
    "stopped": {"zh": "⏹ 已停止", "en": "⏹ Stopped"},
    "step_limit": {"zh": "⚠️ 未得到最终回答：{message}", "en": "⚠️ No final answer: {message}"},
    "empty_answer": {"zh": "（模型没有给出回答）", "en": "(the model ended without an answer)"},
    "failed": {"zh": "❌ 出错：{message}", "en": "❌ Failed: {message}"},
    # trace cards
    "turn": {"zh": "第 {n} 轮：{query}", "en": "Turn {n}: {query}"},
    "step": {"zh": "第 {n} 步", "en": "Step {n}"},
    "thought": {"zh": "💭 思考", "en": "💭 Thought"},
    "action": {"zh": "🛠️ 调用 {name}", "en": "🛠️ Action: {name}"},
    "repaired": {"zh": "参数已修复", "en": "arguments repaired"},
    "observation": {"zh": "👁️ 观察结果：{name}", "en": "👁️ Observation: {name}"},
    "badge_tool": {"zh": "来自工具", "en": "from the tool"},
    "badge_agent": {"zh": "由 Agent 生成", "en": "written by the agent"},
    "badge_failed": {"zh": "失败", "en": "failed"},
    "discarded": {
        "zh": "🚫 模型自己写的观察结果（已丢弃）",
        "en": "🚫 Model-written observation (discarded)",
    },
    "step_error": {"zh": "⚠️ 步骤错误", "en": "⚠️ Step error"},
    "final_answer": {"zh": "✅ 最终回答", "en": "✅ Final answer"},
    "aid_fired": {"zh": "↩️ 小模型辅助：{aid}", "en": "↩️ Small-model aid: {aid}"},
    "fallback_answer": {
        "zh": "📋 工具结果（模型没有组织出回答）",
        "en": "📋 Tool result (the model did not phrase an answer)",
    },
    "tokens_log": {
        "zh": "停止原因 {reason}{word} · 输入 {prompt} / 输出 {completion} token{cached}",
        "en": "stop {reason}{word} · {prompt} prompt / {completion} new tokens{cached}",
    },
    "cached_log": {"zh": "，缓存 {n}", "en": ", {n} cached"},
    "constrained": {"zh": "🔒 已约束", "en": "🔒 constrained"},
    "answered_by": {"zh": "回答模型：{model}", "en": "answered by {model}"},
    "steps_seconds": {
        "zh": "{steps} 步 · {seconds:.1f} 秒",
        "en": "{steps} steps · {seconds:.1f} s",
    },
    "share_failed": {
        "zh": "无法创建公开分享链接（可能处于离线环境）；本地地址仍可使用：{url}",
        "en": "Could not create a public share link (offline?); the local URL still works: {url}",
    },
}


def t(key: str, lang: str = "zh", **kwargs: object) -> str:
    """The string for key in lang (English when lang is unknown), formatted with kwargs."""
    entry = STRINGS[key]
    text = entry.get(lang) or entry["en"]
    return text.format(**kwargs) if kwargs else text


def default_system_prompt(lang: str) -> str:
    return DEFAULT_SYSTEM_PROMPT.get(lang, DEFAULT_SYSTEM_PROMPT["en"])


def normalize_lang(lang: str | None) -> Lang:
    """Accept "zh", "zh-CN", "en_US", ...; anything else is English."""
    if lang and lang.lower().startswith("zh"):
        return "zh"
    return "en"
