"""Built-in tools, registered through the same public API as user plugins."""

from __future__ import annotations

from pathlib import Path

from tools.builtin.calculator import make_calculator_tool
from tools.builtin.clock import make_clock_tool
from tools.builtin.employee_db import Language, make_employee_db_tool
from tools.builtin.python_sandbox import (
    PythonLimits,
    make_python_tool,
    python_tool_allowed,
    running_on_space,
)
from tools.registry import ToolRegistry

BUILTIN_TOOL_NAMES: tuple[str, ...] = ("calculator", "employee_db", "clock", "python")


def register_builtins(
    registry: ToolRegistry,
    *,
    db_path: Path | str | None = None,
    language: Language = "zh",
    enable_python: bool = True,
    python_limits: PythonLimits | None = None,
) -> ToolRegistry:
    """Add calculator, employee_db, clock and (unless disabled) python to `registry`."""
    registry.register(make_calculator_tool())
    registry.register(make_employee_db_tool(db_path, language))
    registry.register(make_clock_tool())
    if enable_python:
        registry.register(make_python_tool(python_limits))
    return registry


def default_registry(
    *,
    db_path: Path | str | None = None,
    language: Language = "zh",
    enable_python: bool = True,
    python_limits: PythonLimits | None = None,
) -> ToolRegistry:
    """A fresh registry holding the built-in tools."""
    return register_builtins(
        ToolRegistry(),
        db_path=db_path,
        language=language,
        enable_python=enable_python,
        python_limits=python_limits,
    )


__all__ = [
    "BUILTIN_TOOL_NAMES",
    "PythonLimits",
    "default_registry",
    "python_tool_allowed",
    "register_builtins",
    "running_on_space",
]
