"""Headless runner: one agent turn from the command line, events printed as they happen.

    python -m agent "question" --model scripted:examples/scripted/seed_react.json \\
        --tools calculator,employee_db,clock [--format react|native] [--json] [--max-steps N]

Human-readable by default; --json prints one JSON object per event (with a "type" field),
the same stream the UI and the eval harness consume.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

from agent import events as ev
from agent.aids import AID_INFO
from agent.errors import AgentError
from agent.loop import run
from agent.settings import FORMATS, AgentSettings
from llm.types import ChatBackend, GenerationConfig
from tools.registry import ToolRegistry

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_STOPPED = 0, 1, 2, 130


class CliError(Exception):
    """A problem to report in one line (bad model source, unknown tool name)."""


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m agent", description="Run one agent turn and print its events."
    )
    p.add_argument("question", nargs="?", help="one turn; leave out for an interactive chat")
    p.add_argument(
        "--model",
        default=None,
        help="registry key, hub id, local directory, 'embedded', or scripted:<file.json> "
        "(default: the same model web_demo.py starts with)",
    )
    p.add_argument(
        "--tools", default="", help="comma-separated tool names, or 'all' (default: none, chat)"
    )
    p.add_argument("--format", choices=FORMATS, default="auto")
    p.add_argument("--json", action="store_true", help="print one JSON object per event")
    p.add_argument("--max-steps", type=int, default=AgentSettings.max_steps)
    p.add_argument("--system", default=None, help="system prompt")
    p.add_argument("--max-new-tokens", type=int, default=GenerationConfig.max_new_tokens)
    p.add_argument("--temperature", type=float, default=GenerationConfig.temperature)
    p.add_argument("--seed", type=int, default=None)
    for aid in AID_INFO:  # --no-<key> for an aid that is on by default, --<key> otherwise
        flag = f"--no-{aid.key}" if aid.default else f"--{aid.key}"
        p.add_argument(
            flag,
            dest=f"aid_{aid.key}",
            action="store_const",
            const=not aid.default,
            default=aid.default,
            help=f"{'off' if aid.default else 'on'}: {aid.label['en']}",
        )
    p.add_argument(
        "--reasoning-chain",
        action="store_true",
        help="reason in titled JSON steps, then answer (the o1-like chain; no tools)",
    )
    p.add_argument("--reasoning-steps", type=int, default=AgentSettings.reasoning_steps)
    p.add_argument(
        "--thinking",
        choices=["on", "off"],
        default=None,
        help="thinking models (Qwen3): let the model think first (default: the model's own)",
    )
    p.add_argument("--device", default="auto")
    p.add_argument("--show-prompt", action="store_true", help="print each step's prompt")
    # For tests and plugin authors: a module (dotted name or .py file) whose
    # default_registry() or `registry` supplies the tools instead of the built-ins.
    p.add_argument("--tools-module", default=None, help=argparse.SUPPRESS)
    return p


def open_backend(source: str | None, device: str = "auto") -> ChatBackend:
    """The model to talk to; None: the default model of this machine (as web_demo.py)."""
    from llm.registry import default_source, gpu_memory_gb
    from llm.sources import open_backend as open_source

    if source is None:
        source = default_source(cpu_only=device == "cpu" or gpu_memory_gb() is None)
        print(f"model: {source} (the default here; --model picks another)", file=sys.stderr)
    return open_source(source, device=device)


def _load_module(spec: str) -> Any:
    if spec.endswith(".py") or os.sep in spec:
        path = Path(spec)
        if not path.is_file():
            raise CliError(f"tools module not found: {path}")
        module_spec = importlib.util.spec_from_file_location(path.stem, path)
        assert module_spec is not None and module_spec.loader is not None
        module = importlib.util.module_from_spec(module_spec)
        module_spec.loader.exec_module(module)
        return module
    return importlib.import_module(spec)


def load_registry(tools_module: str | None) -> ToolRegistry:
    if tools_module is None:
        from tools.builtin import default_registry

        return default_registry()
    module = _load_module(tools_module)
    if hasattr(module, "default_registry"):
        return module.default_registry()
    if isinstance(getattr(module, "registry", None), ToolRegistry):
        return module.registry
    raise CliError(f"{tools_module} defines neither default_registry() nor `registry`")


def select_tools(registry: ToolRegistry, spec: str) -> ToolRegistry:
    names = [n.strip() for n in spec.split(",") if n.strip()]
    if names == ["all"]:
        return registry
    unknown = [n for n in names if n not in registry]
    if unknown:
        raise CliError(f"unknown tool(s) {unknown}; available: {', '.join(registry.names())}")
    return registry.subset(names)


def _short(text: str, limit: int = 500) -> str:
    return text if len(text) <= limit else text[:limit] + f"... [{len(text) - limit} more]"


def print_human(event: ev.AgentEvent, out: TextIO, show_prompt: bool = False) -> None:
    """One readable line (or block) per event; raw text deltas are skipped."""
    match event:
        case ev.StepStarted(step=step, prompt=prompt):
            print(f"── step {step}", file=out)
            if show_prompt:
                print(prompt, file=out)
        case ev.ModelCallEnd(end=end) as e:
            speed = f", {end.completion_tokens / end.seconds:.1f} tok/s" if end.seconds > 0 else ""
            print(
                f"   model: {e.reason}, {end.prompt_tokens} prompt + {end.completion_tokens} "
                f"generated tokens, {end.seconds:.2f} s{speed}",
                file=out,
            )
        case ev.Thought(text=text):
            print(f"Thought: {text}", file=out)
        case ev.ReasoningStep() as e:
            raw = "" if e.parsed else " (not JSON, shown raw)"
            print(f"Step {e.index}: {e.title or '…'} ({e.seconds:.1f} s){raw}", file=out)
            print(f"   {_short(e.content)}", file=out)
        case ev.ToolCall() as e:
            flag = " (repaired)" if e.repaired else ""
            args = json.dumps(e.arguments, ensure_ascii=False)
            print(f"Action: {e.name} {args}{flag}", file=out)
        case ev.Observation() as e:
            status = "ok" if e.ok else "error"
            print(f"Observation ({status}, {e.seconds:.2f} s): {_short(e.text)}", file=out)
        case ev.DiscardedObservation(text=text):
            print(f"! discarded a result the model wrote itself: {_short(text, 200)}", file=out)
        case ev.StepError(message=message):
            print(f"! {message}", file=out)
        case ev.AidFired(aid=aid, message=message, text=text):
            set_aside = f" (set aside: {_short(text, 200)})" if text else ""
            print(f"! aid {aid}: {message}{set_aside}", file=out)
        case ev.FinalAnswer(text=text, steps=steps, fallback=fallback, thinking_seconds=t):
            note = ", from the tool result" if fallback else ""
            note += f", thought for {t:.1f} s" if t else ""
            print(f"Final Answer ({steps} step{'s' if steps != 1 else ''}{note}): {text}", file=out)
        case ev.StepLimitReached(message=message):
            print(f"Step limit: {message}", file=out)
        case ev.Stopped(steps=steps):
            print(f"Stopped after {steps} step(s).", file=out)
        case ev.AgentFailed(message=message):
            print(f"Failed: {message}", file=out)


def exit_code(terminal: ev.AgentEvent | None) -> int:
    if isinstance(terminal, ev.FinalAnswer):
        return EXIT_OK
    if isinstance(terminal, ev.Stopped):
        return EXIT_STOPPED
    return EXIT_FAILED


def main(argv: Sequence[str] | None = None, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    args = build_parser().parse_args(argv)
    try:
        settings = AgentSettings(
            system_prompt=args.system or AgentSettings.system_prompt,
            format=args.format,
            max_steps=args.max_steps,
            generation=GenerationConfig(
                max_new_tokens=args.max_new_tokens, temperature=args.temperature, seed=args.seed
            ),
            aids=frozenset(a.key for a in AID_INFO if getattr(args, f"aid_{a.key}")),
            reasoning_chain=args.reasoning_chain,
            reasoning_steps=args.reasoning_steps,
            thinking=None if args.thinking is None else args.thinking == "on",
        )
        tools = select_tools(load_registry(args.tools_module), args.tools)
        backend = open_backend(args.model, args.device)
    except (CliError, AgentError) as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_USAGE
    except Exception as e:  # noqa: BLE001 - a model that cannot load is reported, not traced
        print(f"error: {type(e).__name__}: {e}", file=sys.stderr)
        return EXIT_USAGE
    if args.question is None:
        from agent.chat import chat_loop

        try:
            return chat_loop(backend, tools, settings, sys.stdin, out)
        finally:
            backend.close()
    terminal: ev.AgentEvent | None = None
    try:
        for event in run(backend, tools, [], args.question, settings):
            if args.json:
                print(json.dumps(ev.event_to_dict(event), ensure_ascii=False), file=out)
            else:
                print_human(event, out, args.show_prompt)
            out.flush()
            if ev.is_terminal(event):
                terminal = event
    except AgentError as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("Stopped.", file=sys.stderr)
        return EXIT_STOPPED
    finally:
        backend.close()
    return exit_code(terminal)
