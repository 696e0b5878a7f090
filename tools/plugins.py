"""User tool plugins: every `*.py` in a folder, each module-level @tool registered.

A broken plugin (syntax error, failing import, bad tool definition, clashing name) is
reported and skipped as a whole; the others still load, so one bad file never stops the app.
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
import os
import sys
import traceback
from collections.abc import Mapping
from pathlib import Path

from tools.registry import Tool, ToolRegistry

log = logging.getLogger(__name__)

ENV_VAR = "QWEN_DEMO_TOOLS_DIR"


def plugin_dir(cli_value: str | None = None, env: Mapping[str, str] | None = None) -> Path | None:
    """The plugin folder: `--tools-dir` if given, else $QWEN_DEMO_TOOLS_DIR, else None."""
    env = os.environ if env is None else env
    value = cli_value or env.get(ENV_VAR)
    return Path(value).expanduser() if value else None


def _module_name(path: Path) -> str:
    digest = hashlib.sha1(str(path.resolve()).encode("utf-8")).hexdigest()[:10]
    stem = "".join(c if c.isalnum() else "_" for c in path.stem)
    return f"qwen_demo_plugin_{stem}_{digest}"


def _short_error(e: BaseException) -> str:
    if isinstance(e, SyntaxError):
        return f"SyntaxError: {e.msg} (line {e.lineno})"
    return "".join(traceback.format_exception_only(type(e), e)).strip()


def load_plugin(path: Path, registry: ToolRegistry) -> list[str]:
    """Import one plugin file and register its tools; returns the names registered.

    Raises on any problem, before registering anything (a plugin loads whole or not at all).
    """
    name = _module_name(path)
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot import {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses, pickling etc. look the module up by name
    try:
        spec.loader.exec_module(module)
        found: dict[int, Tool] = {}
        for value in vars(module).values():
            if isinstance(value, Tool):
                found.setdefault(id(value), value)
        tools = list(found.values())
        if not tools:
            raise ValueError("defines no @tool functions at module level")
        names = [t.name for t in tools]
        clashes = sorted({n for n in names if n in registry or names.count(n) > 1})
        if clashes:
            raise ValueError(f"tool name(s) already registered: {', '.join(clashes)}")
    except BaseException:
        sys.modules.pop(name, None)
        raise
    for t in tools:
        registry.register(t)
    return names


def load_plugins(directory: str | Path, registry: ToolRegistry) -> list[str]:
    """Load every `*.py` in `directory` (not `_*.py`) into `registry`, in name order.

    Returns one message per plugin that was skipped (empty when all loaded); each is also
    logged as a warning. Loaded tools are logged at INFO level.
    """
    folder = Path(directory).expanduser()
    if not folder.is_dir():
        msg = f"tool plugin folder {folder} does not exist or is not a folder"
        log.warning(msg)
        return [msg]
    problems: list[str] = []
    for path in sorted(folder.glob("*.py")):
        if path.name.startswith("_"):
            continue
        try:
            names = load_plugin(path, registry)
        except (Exception, SystemExit) as e:  # noqa: BLE001 - a plugin's failure is reported
            msg = f"skipped tool plugin {path.name}: {_short_error(e)}"
            log.warning(msg)
            problems.append(msg)
            continue
        log.info("loaded tool plugin %s: %s", path.name, ", ".join(names))
    return problems
