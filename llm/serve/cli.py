"""``python -m llm.serve --model SOURCE``: serve any model the demo can load."""

from __future__ import annotations

import argparse
import os

from llm.serve.requests import ServeLimits

_LIMITS = ServeLimits()


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m llm.serve", description="Serve a model over an OpenAI-compatible API."
    )
    parser.add_argument("--model", required=True, help="model source: hub id, dir, scripted:PATH")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--served-model-name", help="model id clients use (default: its name)")
    parser.add_argument(
        "--api-key",
        default=os.environ.get("LLM_SERVE_API_KEY"),
        help="require this bearer key (env LLM_SERVE_API_KEY)",
    )
    parser.add_argument(
        "--max-concurrent", type=int, default=1, help="generations at once (1 for a local model)"
    )
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1, ...")
    limits = parser.add_argument_group("limits per request")
    limits.add_argument(
        "--max-body-mb",
        type=float,
        default=_LIMITS.max_body_bytes / (1 << 20),
        help="largest request body in MiB (default %(default)g)",
    )
    limits.add_argument(
        "--max-tokens",
        type=int,
        default=_LIMITS.max_tokens,
        help="largest max_tokens a request may ask for (default %(default)s)",
    )
    limits.add_argument(
        "--max-stop",
        type=int,
        default=_LIMITS.max_stop,
        help="most stop strings per request (default %(default)s)",
    )
    limits.add_argument(
        "--max-stop-chars",
        type=int,
        default=_LIMITS.max_stop_chars,
        help="longest stop string (default %(default)s)",
    )
    return parser


def main(argv: list[str] | None = None) -> None:
    args = _parser().parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    import uvicorn

    from llm.serve.app import create_app
    from llm.sources import open_backend

    try:
        backend = open_backend(args.model, device=args.device)
    except Exception as exc:  # a bad source is the user's input: say why, no traceback
        raise SystemExit(f"llm.serve: cannot load {args.model!r}: {exc}") from exc
    limits = ServeLimits(
        max_body_bytes=int(args.max_body_mb * (1 << 20)),
        max_tokens=args.max_tokens,
        max_stop=args.max_stop,
        max_stop_chars=args.max_stop_chars,
    )
    app = create_app(
        backend,
        served_model_name=args.served_model_name,
        api_key=args.api_key,
        max_concurrent=args.max_concurrent,
        limits=limits,
    )
    name = args.served_model_name or backend.info.name
    print(f"Serving {name!r} at http://{args.host}:{args.port}/v1", flush=True)
    try:
        uvicorn.run(app, host=args.host, port=args.port, log_level="info")
    finally:
        backend.close()
