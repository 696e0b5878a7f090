"""Client errors of the HTTP server, answered in OpenAI's error format.

These are HTTP-level answers (a status and a message for the client), not model-layer errors:
those live in llm.errors and reach the client as a 500 with their message.
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

_KIND = {
    400: "invalid_request_error",
    401: "authentication_error",
    404: "not_found_error",
    413: "invalid_request_error",
}


class BadRequest(ValueError):
    """A client error; answered as HTTP 400 (or the given status) in OpenAI's error format."""

    def __init__(self, message: str, status: int = 400, param: str | None = None):
        super().__init__(message)
        self.status, self.param = status, param


def error_body(message: str, status: int, param: str | None = None) -> dict[str, Any]:
    kind = _KIND.get(status, "server_error")
    return {"error": {"message": message, "type": kind, "param": param, "code": status}}


def _is_union_tag(part: str) -> bool:
    """pydantic names the union member it tried in `loc` ("str", "list[str]", "FunctionIn")."""
    return part in ("str", "int", "float", "bool", "none") or "[" in part or part[:1].isupper()


def _param(loc: tuple[Any, ...]) -> str:
    """("messages", 0, "role") -> "messages[0].role"."""
    out = ""
    for part in loc:
        if isinstance(part, str) and _is_union_tag(part):
            continue
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out


def from_validation(exc: ValidationError) -> BadRequest:
    """The first problem of a request body, as one sentence naming the field."""
    err = exc.errors(include_url=False)[0]
    kind, loc = err["type"], tuple(err["loc"])
    if kind == "json_invalid":
        detail = str(err.get("ctx", {}).get("error", err["msg"]))
        if "recursion limit" in detail:
            return BadRequest("the request JSON is nested too deeply")
        return BadRequest(f"the request body is not valid JSON: {detail}")
    if kind == "model_type" and not loc:
        return BadRequest("the request body must be a JSON object")
    message = err["msg"]
    if kind == "value_error":  # our own validators: their message is the sentence
        message = str(err["ctx"]["error"])
    param = _param(loc)
    if not param:
        return BadRequest(message)
    return BadRequest(f"'{param}': {message}", param=param)
