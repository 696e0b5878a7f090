"""Tools the agent can call: the registry API, built-ins and user plugins.

Plugins need only `from tools import tool`.
"""

from __future__ import annotations

from tools.registry import Tool, ToolRegistry, ToolResult, tool

__all__ = ["Tool", "ToolRegistry", "ToolResult", "tool"]
