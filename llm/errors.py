"""The model layer's errors, in one place: every module of llm/ raises one of these.

Each message is written for the person who can act on it (a path that does not exist, a
package to install, a GPU that is missing); constructors do not log.
"""

from __future__ import annotations


class LLMError(Exception):
    """Base class of everything the model layer raises."""


class ModelLoadError(LLMError):
    """A model could not be loaded; str(error) is the message for the user."""


class EmbeddedModelError(ModelLoadError):
    """The embedded model cannot be had: a slice is missing or damaged, or conversion failed."""


class Qwen1ConversionError(ModelLoadError, ValueError):
    """A v1 checkpoint that cannot be converted; the message says why and what to do."""


class ModelBusyError(LLMError):
    """The model is in use (a reply is being generated, or a load is running)."""


class OpenAIServerError(LLMError, RuntimeError):
    """The server could not be reached or refused the request; the message says why."""


class ConstraintError(LLMError, ValueError):
    """A decoding constraint cannot be built (a schema the grammar engine refuses)."""
