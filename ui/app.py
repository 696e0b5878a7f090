"""The Gradio Blocks app: chat, model selector, tools, settings, trace pane, export.

build_demo() only lays out components and wires handlers; the conversation lives in a
per-session ChatSession (gr.State), the model in one shared ModelService, and every view is
re-rendered from state by ui.render, so Stop, Undo and a language switch all redraw the same.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import gradio as gr

from agent.aids import AID_INFO
from agent.events import Stopped, TextDelta, is_terminal
from tools.registry import ToolRegistry
from ui.export import write_exports
from ui.i18n import LANGS, default_system_prompt, normalize_lang, t
from ui.models import NotReadyError
from ui.render import session_views
from ui.settings import FORMAT_CHOICES, FORMAT_LABELS, SettingsError, make_settings
from ui.state import ChatSession, Turn

STREAM_INTERVAL = 0.05  # seconds between redraws while tokens stream
CSS = """
#qwen-trace .message-wrap { font-size: 0.9em; }
"""

AgentRun = Callable[..., Iterator[Any]]
PromptPreview = Callable[..., tuple[str, list[str]]]


@dataclass
class AppConfig:
    lang: str = "zh"
    prompt_format: str = "auto"
    concurrency: int = 1  # generations at once (1 for a local model)
    max_queue: int | None = 64
    default_source: str | None = None  # preselected in the custom source field
    export_dir: str | None = None
    stop_grace_s: float = 5.0  # how long a redraw after Stop waits for the agent to wind down
    title: str = "Qwen Agent Demo"
    registry: list[Any] | None = None  # llm.registry ModelSpecs for the size / precision pickers
    agent_run: AgentRun | None = None  # defaults to agent.loop.run
    preview_prompt: PromptPreview | None = None  # defaults to agent.loop.preview_prompt
    notices: list[str] = field(default_factory=list)  # startup problems (skipped plugins)


def _agent_fns(config: AppConfig) -> tuple[AgentRun, PromptPreview]:
    run, preview = config.agent_run, config.preview_prompt
    if run is None or preview is None:
        from agent import loop

        run = run or loop.run
        preview = preview or loop.preview_prompt
    return run, preview


def _text_of(value: Any) -> str:
    """Textbox values are strings; chat contents may be a list of parts (gradio 6)."""
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return "".join(p.get("text", "") if isinstance(p, dict) else str(p) for p in value)
    return "" if value is None else str(value)


def _registry_specs(config: AppConfig) -> list[Any]:
    if config.registry is not None:
        return list(config.registry)
    try:
        from llm.registry import REGISTRY
    except ImportError:
        return []
    return list(REGISTRY.values()) if isinstance(REGISTRY, dict) else list(REGISTRY)


def _size_choices(specs: list[Any]) -> list[str]:
    seen: list[str] = []
    for spec in specs:
        if spec.size not in seen:
            seen.append(spec.size)
    return seen


def _precision_choices(specs: list[Any], size: str | None) -> list[str]:
    seen: list[str] = []
    for spec in specs:
        if spec.size == size and spec.precision not in seen:
            seen.append(spec.precision)
    return seen


GENERATIONS = [("Qwen (v1)", "qwen1"), ("Qwen2.5", "qwen2")]


def _find_spec(
    specs: list[Any], size: str | None, precision: str | None, generation: str | None
) -> Any:
    """Size x precision, preferring the chosen generation (GGUF entries fit any)."""
    fits = [s for s in specs if s.size == size and s.precision == precision]
    for spec in fits:
        if spec.family == generation or spec.fmt == "gguf":
            return spec
    return fits[0] if fits else None


def _resolve_source(
    specs: list[Any], size: str | None, precision: str | None, generation: str | None, custom: str
) -> str:
    """The free field wins; else the registry entry for size x precision."""
    if custom.strip():
        return custom.strip()
    spec = _find_spec(specs, size, precision, generation)
    if spec is None:
        raise ValueError(f"no registry entry for {size} / {precision}")
    return spec.key


def _initial_pick(specs: list[Any], source: str | None) -> tuple[Any, str]:
    """(registry spec, custom text) for the source loaded at startup."""
    if not source:
        return None, ""
    wanted = source.strip().lower()
    for spec in specs:
        if wanted in (spec.key, spec.hub_id.lower()):
            return spec, ""
    return None, source


def build_demo(models: Any, tools: ToolRegistry, config: AppConfig | None = None) -> gr.Blocks:
    """The app for one shared model service and tool registry."""
    config = config or AppConfig()
    lang0 = normalize_lang(config.lang)
    specs = _registry_specs(config)
    sizes = _size_choices(specs)
    labelled: list[tuple[Any, str, str]] = []  # (component, i18n key, attribute) for lang switch

    def L(component: Any, key: str, attr: str = "label") -> Any:  # noqa: N802 - short on purpose
        labelled.append((component, key, attr))
        return component

    with gr.Blocks(title=config.title, fill_height=False) as demo:
        session = gr.State(ChatSession(lang=lang0))

        with gr.Sidebar(label="trace", open=True, width=440, position="right"):
            trace_title = L(gr.Markdown(f"### {t('trace', lang0)}"), "trace", "md_title")
            trace = L(
                gr.Chatbot(
                    label=t("trace", lang0),
                    elem_id="qwen-trace",
                    height="80vh",
                    group_consecutive_messages=False,
                    show_label=False,
                ),
                "trace",
            )

        title_md = L(gr.Markdown(t("title", lang0)), "title", "value")
        with gr.Row(equal_height=False):
            with gr.Column(scale=3):
                chatbot = L(
                    gr.Chatbot(label=t("chat", lang0), elem_id="qwen-chat", height=540), "chat"
                )
                textbox = L(
                    gr.Textbox(
                        placeholder=t("input_placeholder", lang0),
                        show_label=False,
                        lines=1,  # Enter sends only from a one-line box; it grows to max_lines
                        max_lines=8,
                        elem_id="qwen-input",
                        autofocus=True,
                    ),
                    "input_placeholder",
                    "placeholder",
                )
                with gr.Row():
                    send = L(
                        gr.Button(
                            t("send", lang0), variant="primary", elem_id="send", min_width=80
                        ),
                        "send",
                        "value",
                    )
                    stop = L(
                        gr.Button(t("stop", lang0), variant="stop", elem_id="stop", min_width=80),
                        "stop",
                        "value",
                    )
                    regen = L(
                        gr.Button(t("regenerate", lang0), elem_id="regen", min_width=80),
                        "regenerate",
                        "value",
                    )
                    undo = L(
                        gr.Button(t("undo", lang0), elem_id="undo", min_width=80), "undo", "value"
                    )
                    clear = L(
                        gr.Button(t("clear", lang0), elem_id="clear", min_width=80),
                        "clear",
                        "value",
                    )
                with L(gr.Accordion(t("export_panel", lang0), open=False), "export_panel"):
                    export_btn = L(
                        gr.Button(t("export", lang0), elem_id="export"), "export", "value"
                    )
                    export_files = L(
                        gr.File(
                            label=t("export_files", lang0),
                            file_count="multiple",
                            interactive=False,
                            elem_id="export-files",
                        ),
                        "export_files",
                    )

            with gr.Column(scale=2):
                lang = L(
                    gr.Radio(
                        choices=[("中文", "zh"), ("English", "en")],
                        value=lang0,
                        label=t("language", lang0),
                        elem_id="lang",
                    ),
                    "language",
                )
                with L(gr.Accordion(t("model_panel", lang0), open=True), "model_panel"):
                    remote = bool(getattr(models, "remote", False))
                    with gr.Group(visible=not remote):
                        spec0, custom0 = _initial_pick(specs, config.default_source)
                        size0 = spec0.size if spec0 else (sizes[0] if sizes else None)
                        precisions0 = _precision_choices(specs, size0)
                        with gr.Row():
                            size = L(
                                gr.Dropdown(
                                    choices=sizes,
                                    value=size0,
                                    label=t("size", lang0),
                                    visible=bool(sizes),
                                    elem_id="size",
                                ),
                                "size",
                            )
                            precision = L(
                                gr.Radio(
                                    choices=precisions0,
                                    value=spec0.precision
                                    if spec0
                                    else (precisions0[0] if precisions0 else None),
                                    label=t("precision", lang0),
                                    visible=bool(sizes),
                                    elem_id="precision",
                                ),
                                "precision",
                            )
                        generation = L(
                            gr.Radio(
                                choices=GENERATIONS,
                                value=spec0.family if spec0 else "qwen1",
                                label=t("generation", lang0),
                                visible=len({s.family for s in specs}) > 1,
                                elem_id="generation",
                            ),
                            "generation",
                        )
                        custom = L(
                            gr.Textbox(
                                value=custom0,
                                label=t("custom_source", lang0),
                                placeholder=t("custom_placeholder", lang0),
                                elem_id="custom-source",
                            ),
                            "custom_source",
                        )
                        with gr.Row():
                            load_btn = L(
                                gr.Button(t("load", lang0), variant="primary", elem_id="load"),
                                "load",
                                "value",
                            )
                            unload_btn = L(
                                gr.Button(t("unload", lang0), elem_id="unload"), "unload", "value"
                            )
                    available = list(getattr(models, "available", []) or [])
                    current = models.info.name if getattr(models, "info", None) else None
                    with gr.Row(visible=remote):
                        server_model = L(
                            gr.Dropdown(
                                choices=available,
                                value=current if current in available else None,
                                label=t("server_model", lang0),
                                allow_custom_value=True,
                                elem_id="server-model",
                                scale=3,
                            ),
                            "server_model",
                        )
                        refresh_models = L(
                            gr.Button(t("refresh_models", lang0), scale=1),
                            "refresh_models",
                            "value",
                        )
                    status = gr.Markdown(models.status(lang0), elem_id="model-status")

                with L(gr.Accordion(t("tools_panel", lang0), open=True), "tools_panel"):
                    tools_hint = L(
                        gr.Markdown(t("tools_hint", lang0) if len(tools) else t("no_tools", lang0)),
                        "tools_hint" if len(tools) else "no_tools",
                        "value",
                    )
                    if config.notices:
                        gr.Markdown("\n".join(f"- ⚠️ {n}" for n in config.notices))
                    tool_boxes = [
                        gr.Checkbox(
                            value=True,
                            label=f"{tool.name_for_human} ({tool.name})",
                            info=tool.description.strip().split("\n\n")[0],
                            elem_id=f"tool-{tool.name}",
                        )
                        for tool in tools
                    ]
                with L(gr.Accordion(t("prompt_view", lang0), open=False), "prompt_view"):
                    prompt_code = L(
                        gr.Code(
                            value="",
                            language=None,
                            label=t("prompt_code", lang0),
                            interactive=False,
                            wrap_lines=True,
                            max_lines=30,
                            elem_id="prompt-code",
                        ),
                        "prompt_code",
                    )
                    stop_words = L(
                        gr.Textbox(
                            label=t("stop_words", lang0), interactive=False, elem_id="stop-words"
                        ),
                        "stop_words",
                    )
                    refresh_prompt = L(
                        gr.Button(t("refresh_prompt", lang0), elem_id="refresh-prompt"),
                        "refresh_prompt",
                        "value",
                    )
                with L(gr.Accordion(t("settings_panel", lang0), open=False), "settings_panel"):
                    system_prompt = gr.Textbox(
                        value=default_system_prompt(lang0),
                        label=t("system_prompt", lang0),
                        lines=3,
                        elem_id="system-prompt",
                    )
                    temperature = L(
                        gr.Slider(0.0, 2.0, value=0.7, step=0.05, label=t("temperature", lang0)),
                        "temperature",
                    )
                    top_p = L(
                        gr.Slider(0.05, 1.0, value=0.8, step=0.05, label=t("top_p", lang0)), "top_p"
                    )
                    max_new_tokens = L(
                        gr.Slider(16, 4096, value=512, step=16, label=t("max_new_tokens", lang0)),
                        "max_new_tokens",
                    )
                    max_steps = L(
                        gr.Slider(1, 20, value=8, step=1, label=t("max_steps", lang0)), "max_steps"
                    )
                    prompt_format = L(
                        gr.Radio(
                            choices=[(FORMAT_LABELS[f], f) for f in FORMAT_CHOICES],
                            value=config.prompt_format,
                            label=t("prompt_format", lang0),
                            elem_id="prompt-format",
                        ),
                        "prompt_format",
                    )
                    L(gr.Markdown(t("aids", lang0)), "aids", "value")
                    aid_boxes = [  # one per agent aid, in agent.aids.AID_INFO order
                        gr.Checkbox(
                            value=aid.default,
                            label=aid.label.get(lang0, aid.label["en"]),
                            elem_id=f"aid-{aid.key}",
                        )
                        for aid in AID_INFO
                    ]
        timer = gr.Timer(1.0)

        settings_inputs = [
            system_prompt,
            temperature,
            top_p,
            max_new_tokens,
            max_steps,
            prompt_format,
            *aid_boxes,
        ]
        n_tools = len(tool_boxes)
        handlers = _Handlers(models, tools, config)

        def split(values: tuple[Any, ...]) -> tuple[list[bool], list[Any]]:
            return list(values[:n_tools]), list(values[n_tools:])

        def respond(text: Any, sess: ChatSession, *values: Any) -> Iterator[tuple[Any, ...]]:
            flags, settings = split(values)
            yield from handlers.respond(_text_of(text), sess, flags, settings)

        def regenerate(sess: ChatSession, *values: Any) -> Iterator[tuple[Any, ...]]:
            flags, settings = split(values)
            yield from handlers.regenerate(sess, flags, settings)

        run_inputs = [textbox, session, *tool_boxes, *settings_inputs]
        run_outputs = [textbox, chatbot, trace, session]
        gen_opts: dict[str, Any] = dict(
            concurrency_limit=config.concurrency, concurrency_id="generate", show_progress="minimal"
        )
        light: dict[str, Any] = dict(concurrency_limit=None, show_progress="hidden")
        ev_submit = textbox.submit(respond, run_inputs, run_outputs, api_name="chat", **gen_opts)
        ev_send = send.click(respond, run_inputs, run_outputs, api_name=False, **gen_opts)
        ev_regen = regen.click(
            regenerate,
            [session, *tool_boxes, *settings_inputs],
            run_outputs,
            api_name="regenerate",
            **gen_opts,
        )
        # Cancel first (the handler's finally: sets the cancel Event), then redraw once the
        # agent has recorded its Stopped event; a handler on the click itself delays the cancel.
        stop.click(None, None, None, cancels=[ev_submit, ev_send, ev_regen]).then(
            handlers.after_stop, [session], [chatbot, trace], api_name="stop", **light
        )
        undo.click(handlers.undo, [textbox, session], [textbox, chatbot, trace, session], **light)
        clear.click(handlers.clear, [session], [chatbot, trace, session, export_files], **light)
        export_btn.click(handlers.export, [session], [export_files], api_name="export", **light)

        preview_inputs = [textbox, session, *tool_boxes, *settings_inputs]

        def preview(text: Any, sess: ChatSession, *values: Any) -> tuple[str, str]:
            flags, settings = split(values)
            return handlers.preview(_text_of(text), sess, flags, settings)

        preview_out = [prompt_code, stop_words]
        refresh_prompt.click(preview, preview_inputs, preview_out, api_name="preview", **light)
        for box in tool_boxes:
            box.change(preview, preview_inputs, preview_out, **light)
        prompt_format.change(preview, preview_inputs, preview_out, **light)

        def load(sz, prec, gen, src, lg, progress=gr.Progress()):  # noqa: B008
            return handlers.load(specs, sz, prec, gen, src, lg, progress)

        def pick_size(sz: str | None, prec: str | None):
            choices = _precision_choices(specs, sz)
            value = prec if prec in choices else (choices[0] if choices else None)
            return gr.update(choices=choices, value=value), ""

        # Touching a picker means "load this entry": the free field no longer applies.
        size.input(pick_size, [size, precision], [precision, custom], **light)
        precision.input(lambda: "", None, [custom], **light)
        generation.input(lambda: "", None, [custom], **light)

        load_btn.click(
            load,
            [size, precision, generation, custom, lang],
            [status],
            api_name="load",
            concurrency_limit=1,
            concurrency_id="load",
        ).then(preview, preview_inputs, preview_out, **light)
        unload_btn.click(handlers.unload, [lang], [status], api_name="unload", **light)
        refresh_models.click(handlers.refresh_models, [lang], [server_model, status], **light)
        server_model.change(handlers.select_remote, [server_model, lang], [status], **light)
        timer.tick(lambda lg: models.status(lg), [lang], [status], api_name=False, **light)

        def switch_lang(lg: str, sess: ChatSession, prompt: str) -> list[Any]:
            lg = normalize_lang(lg)
            sess.lang = lg
            updates = []
            for _component, key, attr in labelled:
                text = t(key, lg)
                if attr == "md_title":
                    updates.append(gr.update(value=f"### {text}"))
                elif attr == "value":
                    updates.append(gr.update(value=text))
                else:
                    updates.append(gr.update(**{attr: text}))
            # A default system prompt follows the language; an edited one is kept.
            defaults = {default_system_prompt(x) for x in LANGS}
            new_prompt = default_system_prompt(lg) if not prompt or prompt in defaults else prompt
            prompt_update = gr.update(value=new_prompt, label=t("system_prompt", lg))
            return [*updates, prompt_update, *session_views(sess), models.status(lg)]

        lang.change(
            switch_lang,
            [lang, session, system_prompt],
            [*(c for c, _, _ in labelled), system_prompt, chatbot, trace, status],
            api_name=False,
            **light,
        )
        demo.load(
            lambda sess: session_views(sess),
            [session],
            [chatbot, trace],
            api_name=False,
            **light,
        )
        _ = (title_md, tools_hint, trace_title)
    demo.queue(max_size=config.max_queue, default_concurrency_limit=config.concurrency)
    return demo


class _Handlers:
    """Event handlers, kept apart from the layout so the flow reads top to bottom."""

    def __init__(self, models: Any, tools: ToolRegistry, config: AppConfig):
        self.models = models
        self.tools = tools
        self.config = config

    # chat -------------------------------------------------------------------------------

    def _views(self, sess: ChatSession) -> tuple[Any, Any]:
        return session_views(sess)

    def _enabled(self, flags: list[bool]) -> ToolRegistry:
        names = [tool.name for tool, on in zip(self.tools, flags, strict=False) if on]
        return self.tools.subset(names)

    def respond(
        self, text: str, sess: ChatSession, flags: list[bool], settings: list[Any]
    ) -> Iterator[tuple[Any, ...]]:
        query = text.strip()
        if not query:
            gr.Warning(t("empty_input", sess.lang))
            yield (gr.update(), *self._views(sess), sess)
            return
        try:
            agent_settings = make_settings(*settings, lang=sess.lang)
            self.models.require_backend(sess.lang)
        except (SettingsError, NotReadyError) as e:
            gr.Warning(str(e))
            yield (text, *self._views(sess), sess)  # the input stays in the box
            return
        yield from self._run_turn(sess, query, flags, agent_settings)

    def regenerate(
        self, sess: ChatSession, flags: list[bool], settings: list[Any]
    ) -> Iterator[tuple[Any, ...]]:
        if not sess.turns or sess.running:
            gr.Warning(t("nothing_to_regenerate", sess.lang))
            yield (gr.update(), *self._views(sess), sess)
            return
        try:
            agent_settings = make_settings(*settings, lang=sess.lang)
            self.models.require_backend(sess.lang)
        except (SettingsError, NotReadyError) as e:
            gr.Warning(str(e))
            yield (gr.update(), *self._views(sess), sess)
            return
        last = sess.pop()
        assert last is not None
        yield from self._run_turn(sess, last.query, flags, agent_settings, clear_input=False)

    def _run_turn(
        self, sess: ChatSession, query: str, flags: list[bool], settings: Any, clear_input=True
    ) -> Iterator[tuple[Any, ...]]:
        run, _ = _agent_fns(self.config)
        box = "" if clear_input else gr.update()
        history = sess.history()
        cancel = threading.Event()
        turn: Turn | None = None
        events: Iterator[Any] | None = None
        try:
            with self.models.generating() as backend:
                turn = sess.begin(query, backend.info.name)
                yield (box, *self._views(sess), sess)
                events = run(backend, self._enabled(flags), history, query, settings, cancel)
                last = 0.0
                for event in events:
                    turn.events.append(event)
                    if is_terminal(event):
                        turn.finish(event)
                        break
                    now = time.monotonic()
                    if not isinstance(event, TextDelta) or now - last >= STREAM_INTERVAL:
                        last = now
                        yield (box, *self._views(sess), sess)
                if turn.status == "running":
                    turn.fail("the agent ended without a final event")
        except Exception as e:  # nothing a turn does may take the app down
            message = str(e) or type(e).__name__
            if turn is None:
                gr.Warning(message)
                yield (gr.update(value=query), *self._views(sess), sess)
                return
            turn.fail(message)
            gr.Warning(t("generation_error", sess.lang, error=message))
        finally:
            cancel.set()  # stops the model's generate thread when Stop cancelled us
            if turn is not None and turn.status == "running":
                _wind_down(turn, events)
        yield (box, *self._views(sess), sess)

    def after_stop(self, sess: ChatSession) -> tuple[Any, Any]:
        """Stop cancelled the turn; wait briefly for it to record Stopped, then redraw."""
        deadline = time.monotonic() + self.config.stop_grace_s
        while sess.running and time.monotonic() < deadline:
            time.sleep(0.05)
        return self._views(sess)

    def undo(self, text: Any, sess: ChatSession) -> tuple[Any, ...]:
        if sess.running:
            return (gr.update(), *self._views(sess), sess)
        last = sess.pop()
        restored = last.query if last is not None and not _text_of(text).strip() else gr.update()
        return (restored, *self._views(sess), sess)

    def clear(self, sess: ChatSession) -> tuple[Any, ...]:
        if not sess.running:
            sess.clear()
        return (*self._views(sess), sess, None)

    def export(self, sess: ChatSession) -> list[str]:
        return write_exports(sess, self.config.export_dir)

    def preview(
        self, text: str, sess: ChatSession, flags: list[bool], settings: list[Any]
    ) -> tuple[str, str]:
        backend = self.models.backend
        if backend is None:
            return t("prompt_needs_model", sess.lang), ""
        try:
            agent_settings = make_settings(*settings, lang=sess.lang)
            _, preview = _agent_fns(self.config)
            query = text.strip() or t("prompt_query_placeholder", sess.lang)
            prompt, stops = preview(
                backend, self._enabled(flags), sess.history(), query, agent_settings
            )
        except Exception as e:
            return f"{type(e).__name__}: {e}", ""
        return prompt, "  ".join(repr(s) for s in stops)

    # model ------------------------------------------------------------------------------

    def load(self, specs, size, precision, generation, custom, lang, progress) -> str:
        lang = normalize_lang(lang)
        try:
            source = _resolve_source(specs, size, precision, generation, custom or "")
        except ValueError:
            gr.Warning(t("pick_model", lang))
            return self.models.status(lang)
        notice = _fit_notice(specs, source, lang)
        if notice:
            gr.Info(notice)

        def report(fraction: float | None, message: str) -> None:
            progress(fraction if fraction is not None else 0.0, desc=message or source)

        try:
            self.models.load(source, progress=report)
        except Exception as e:
            busy = type(e).__name__ == "ModelBusyError"
            gr.Warning(t("busy_swap", lang) if busy else t("status_failed", lang, error=e))
        return self.models.status(lang)

    def unload(self, lang: str) -> str:
        lang = normalize_lang(lang)
        try:
            self.models.unload()
        except Exception as e:
            busy = type(e).__name__ == "ModelBusyError"
            gr.Warning(t("busy_swap", lang) if busy else str(e))
        return self.models.status(lang)

    def refresh_models(self, lang: str) -> tuple[Any, str]:
        names = self.models.list_models()
        current = self.models.info.name if self.models.info else None
        return gr.update(choices=names, value=current), self.models.status(normalize_lang(lang))

    def select_remote(self, name: str | None, lang: str) -> str:
        if name:
            try:
                self.models.select(name)
            except Exception as e:
                gr.Warning(str(e))
        return self.models.status(normalize_lang(lang))


def _fit_notice(specs: list[Any], source: str, lang: str) -> str:
    """The registry's warning when a model will not fit this machine (e.g. 14B on CPU)."""
    spec = next((s for s in specs if s.key == source), None)
    if spec is None:
        return ""
    try:
        from llm.registry import fit_message
    except ImportError:
        return ""
    try:
        message = fit_message(spec, "auto")
    except Exception:
        return ""
    return t("fit_warning", lang, message=message) if message else ""


def _wind_down(turn: Turn, events: Iterator[Any] | None) -> None:
    """After Stop: let the agent finish its Stopped event in the background (it saw cancel)."""

    def drain() -> None:
        try:
            for event in events or ():
                if isinstance(event, TextDelta):
                    continue
                turn.events.append(event)
                if is_terminal(event):
                    turn.finish(event)
                    return
        except Exception:  # a half-closed generator; fall back to a plain Stopped
            pass
        if turn.status == "running":
            turn.finish(Stopped(steps=turn.steps))

    threading.Thread(target=drain, name="agent-wind-down", daemon=True).start()
