"""Agent errors. Misuse by the caller raises; model misbehaviour goes back to the model.

AgentInputError and its kin reach the caller (bad settings, malformed history). ToolCallError
never leaves the loop: its message becomes the Observation the model reads next step, so it is
written for the model.
"""

from __future__ import annotations


class AgentError(Exception):
    """Base class of everything the agent raises."""


class AgentInputError(AgentError, ValueError):
    """The caller passed something unusable (empty query, bad settings)."""


class HistoryError(AgentInputError):
    """The conversation history is not in the OpenAI message format the agent expects."""


class ToolCallError(AgentError):
    """The model's tool call cannot be run (unknown tool, unusable arguments)."""


class UnknownToolError(ToolCallError):
    pass


class ArgumentError(ToolCallError):
    """Arguments could not be parsed or repaired into what the tool accepts."""
