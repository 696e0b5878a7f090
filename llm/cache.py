"""Where the project keeps what it builds once: converted checkpoints, the assembled GGUF,
tokenizers, the demo's employee database."""

from __future__ import annotations

import os
from pathlib import Path

CACHE_ENV = "QWEN_DEMO_CACHE"


def cache_dir() -> Path:
    """$QWEN_DEMO_CACHE, else ~/.cache/qwen-agent-demo (not created here)."""
    raw = os.environ.get(CACHE_ENV, "").strip()
    return Path(raw).expanduser() if raw else Path.home() / ".cache" / "qwen-agent-demo"
