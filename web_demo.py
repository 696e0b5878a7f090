"""Entry point: parse flags / environment, wire model, tools and UI, launch.

Every flag also reads an environment variable, so a Hugging Face / ModelScope Space (which
cannot pass flags) is configured through its settings. Heavy modules (torch, transformers,
gradio) are imported only after parsing, so `--help` is instant.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Mapping, Sequence
from typing import Any

TRUE = {"1", "true", "yes", "on"}
FALSE = {"0", "false", "no", "off"}

# flag dest -> environment variables, first one set wins
ENV: dict[str, tuple[str, ...]] = {
    "model": ("QWEN_DEMO_MODEL",),
    "host": ("QWEN_DEMO_HOST", "GRADIO_SERVER_NAME"),
    "port": ("QWEN_DEMO_PORT", "GRADIO_SERVER_PORT"),
    "share": ("QWEN_DEMO_SHARE",),
    "tools_dir": ("QWEN_DEMO_TOOLS_DIR",),
    "cpu_only": ("QWEN_DEMO_CPU_ONLY",),
    "auth": ("QWEN_DEMO_AUTH",),
    "format": ("QWEN_DEMO_FORMAT",),
    "backend": ("QWEN_DEMO_BACKEND",),
    "base_url": ("QWEN_DEMO_BASE_URL", "OPENAI_BASE_URL"),
    "api_key": ("QWEN_DEMO_API_KEY", "OPENAI_API_KEY"),
    "concurrency": ("QWEN_DEMO_CONCURRENCY",),
    "python": ("QWEN_DEMO_PYTHON",),
    "lang": ("QWEN_DEMO_LANG",),
    "db_path": ("QWEN_DEMO_DB",),
}


def _env(env: Mapping[str, str], dest: str) -> str | None:
    for name in ENV[dest]:
        value = env.get(name)
        if value not in (None, ""):
            return value
    return None


def _env_bool(env: Mapping[str, str], dest: str) -> bool | None:
    value = _env(env, dest)
    if value is None:
        return None
    if value.lower() in TRUE:
        return True
    if value.lower() in FALSE:
        return False
    names = "/".join(ENV[dest])
    raise SystemExit(f"error: {names}={value!r} is not a boolean (use 1/0, true/false)")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="web_demo.py",
        description="Web demo for Qwen chat models with a ReAct / function-calling agent. "
        "Each flag can also be set by the environment variable shown.",
    )
    p.add_argument(
        "--model",
        help="registry key (qwen-7b-chat, qwen-14b-chat-int4, ...), hub id, local directory, "
        "x.gguf or scripted:file.json; with --backend openai the server's model name. "
        "Default: Qwen-7B-Chat on a GPU, the embedded Qwen2.5-Coder-0.5B on CPU "
        "[QWEN_DEMO_MODEL]",
    )
    p.add_argument("--host", help="address to listen on (default 127.0.0.1) [QWEN_DEMO_HOST]")
    p.add_argument(
        "--port", type=int, help="port (default 7860) [QWEN_DEMO_PORT, GRADIO_SERVER_PORT]"
    )
    p.add_argument(
        "--share",
        action=argparse.BooleanOptionalAction,
        help="create a public gradio.live link [QWEN_DEMO_SHARE]",
    )
    p.add_argument("--tools-dir", help="directory of extra tool plugins [QWEN_DEMO_TOOLS_DIR]")
    p.add_argument(
        "--cpu-only",
        action=argparse.BooleanOptionalAction,
        help="never use a GPU [QWEN_DEMO_CPU_ONLY]",
    )
    p.add_argument("--auth", help="user:pass, comma-separated for several users [QWEN_DEMO_AUTH]")
    p.add_argument(
        "--format",
        choices=["auto", "react", "native"],
        help="tool-calling prompt format (default auto) [QWEN_DEMO_FORMAT]",
    )
    p.add_argument(
        "--backend",
        choices=["transformers", "openai"],
        help="run the model here or use an OpenAI-compatible server [QWEN_DEMO_BACKEND]",
    )
    p.add_argument("--base-url", help="OpenAI-compatible server URL [QWEN_DEMO_BASE_URL]")
    p.add_argument("--api-key", help="API key for the server [QWEN_DEMO_API_KEY]")
    p.add_argument(
        "--concurrency",
        type=int,
        help="generations at once (default 1 for a local model, 4 for a server) "
        "[QWEN_DEMO_CONCURRENCY]",
    )
    p.add_argument(
        "--enable-python",
        "--disable-python",
        dest="python",
        action=_PythonFlag,
        nargs=0,
        help="offer the Python code tool (default: on locally, off with --share or on a "
        "Space) [QWEN_DEMO_PYTHON]",
    )
    p.add_argument("--lang", choices=["zh", "en"], help="UI language (default zh) [QWEN_DEMO_LANG]")
    p.add_argument("--db-path", help="employee database file for the demo tool [QWEN_DEMO_DB]")
    return p


class _PythonFlag(argparse.Action):
    def __call__(self, parser, namespace, values, option_string=None):  # noqa: ANN001
        setattr(namespace, self.dest, option_string == "--enable-python")


def parse_args(
    argv: Sequence[str] | None = None, env: Mapping[str, str] | None = None
) -> argparse.Namespace:
    """Flags win over environment variables, which win over defaults."""
    env = os.environ if env is None else env
    args = build_parser().parse_args(argv)
    for dest in ("model", "host", "tools_dir", "auth", "format", "backend", "base_url"):
        if getattr(args, dest) is None:
            setattr(args, dest, _env(env, dest))
    for dest in ("api_key", "lang", "db_path"):
        if getattr(args, dest) is None:
            setattr(args, dest, _env(env, dest))
    for dest in ("share", "cpu_only", "python"):
        if getattr(args, dest) is None:
            setattr(args, dest, _env_bool(env, dest))
    for dest in ("port", "concurrency"):
        if getattr(args, dest) is None:
            raw = _env(env, dest)
            if raw is not None:
                try:
                    setattr(args, dest, int(raw))
                except ValueError:
                    raise SystemExit(
                        f"error: {'/'.join(ENV[dest])}={raw!r} is not a number"
                    ) from None
    args.host = args.host or "127.0.0.1"
    args.port = args.port or 7860
    args.share = bool(args.share)
    args.cpu_only = bool(args.cpu_only)
    args.format = (args.format or "auto").lower()
    args.backend = (args.backend or "transformers").lower()
    args.lang = args.lang or "zh"
    args.on_space = bool(env.get("SPACE_ID") or env.get("MODELSCOPE_ENVIRONMENT"))
    if args.format not in ("auto", "react", "native"):
        raise SystemExit(f"error: unknown prompt format {args.format!r}")
    if args.backend not in ("transformers", "openai"):
        raise SystemExit(f"error: unknown backend {args.backend!r}")
    if args.backend == "openai" and not args.base_url:
        raise SystemExit("error: --backend openai needs --base-url (or QWEN_DEMO_BASE_URL)")
    if args.concurrency is None:
        args.concurrency = 4 if args.backend == "openai" else 1
    if args.concurrency < 1:
        raise SystemExit("error: --concurrency must be at least 1")
    args.auth_pairs = parse_auth(args.auth)
    return args


def parse_auth(value: str | None) -> list[tuple[str, str]] | None:
    if not value:
        return None
    pairs = []
    for item in value.split(","):
        user, sep, password = item.strip().partition(":")
        if not sep or not user or not password:
            raise SystemExit(f"error: --auth expects user:pass, got {item.strip()!r}")
        pairs.append((user, password))
    return pairs


def build_tools(args: argparse.Namespace) -> tuple[Any, list[str]]:
    """The tool registry plus notices to show: plugin errors, or why the python tool is left
    out (neither stops the app)."""
    from tools.builtin import default_registry, python_tool_allowed, sandbox_problem

    enable = python_tool_allowed(args.share, args.on_space, args.python)
    errors: list[str] = []
    problem = sandbox_problem() if enable else None
    if problem:  # never run code outside the sandbox: leave the tool out and say why
        errors.append(f"python tool unavailable: {problem}")
    registry = default_registry(
        db_path=args.db_path,
        language=args.lang,
        enable_python=enable and not problem,
        warm_python=True,
    )
    if args.tools_dir:
        from tools.plugins import load_plugins

        errors = list(load_plugins(args.tools_dir, registry))
    return registry, errors


def build_models(args: argparse.Namespace) -> Any:
    """The model service; a local model starts loading in the background right away."""
    if args.backend == "openai":
        from ui.models import RemoteModels

        models = RemoteModels(args.base_url, args.api_key or "", model=args.model)
        names = models.list_models()
        if models.backend is None and names:
            models.select(names[0])
        return models
    from llm.registry import default_source, gpu_memory_gb
    from ui.models import LocalModels

    cpu = args.cpu_only or gpu_memory_gb() is None
    models = LocalModels(device="cpu" if args.cpu_only else "auto")
    models.load_in_background(args.model or default_source(cpu))
    return models


def main(argv: Sequence[str] | None = None, block: bool = True) -> Any:
    """Launch the app; block=False returns the running Blocks (tests close it)."""
    args = parse_args(argv)

    from ui.app import CSS, AppConfig, build_demo
    from ui.i18n import t

    tools, plugin_errors = build_tools(args)
    for err in plugin_errors:
        print(f"tools: {err}", file=sys.stderr)
    models = build_models(args)
    config = AppConfig(
        lang=args.lang,
        prompt_format=args.format,
        concurrency=args.concurrency,
        default_source=models.state.loading if args.backend == "transformers" else None,
        notices=plugin_errors,
    )
    demo = build_demo(models, tools, config)
    _, local_url, share_url = demo.launch(
        server_name=args.host,
        server_port=args.port,
        share=args.share,
        auth=args.auth_pairs,
        show_error=True,
        css=CSS,
        prevent_thread_lock=True,
        quiet=not block,
    )
    if args.share and not share_url:
        print(t("share_failed", args.lang, url=local_url), file=sys.stderr)
    if not block:
        return demo
    demo.block_thread()
    return 0


if __name__ == "__main__":
    sys.exit(main())
