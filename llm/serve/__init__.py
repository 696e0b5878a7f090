"""An OpenAI-compatible HTTP server for any ChatBackend: ``python -m llm.serve --model SOURCE``.

It lets one machine with the weights serve many demo front-ends (or any OpenAI client):
GET /v1/models, POST /v1/chat/completions and POST /v1/completions, streamed as server-sent
events or answered whole. Generations to one backend are serialised (a local model runs one
at a time); a client that disconnects cancels its generation.

Modules, one concept each: requests (pydantic request models, limits), constraints (where
constrained-decoding fields enter), prompt (ChatML prompts of /v1/completions), runner (a
blocking backend under asyncio), responses (response objects and SSE chunks), app (routes),
server (uvicorn in a thread), cli.
"""

from __future__ import annotations

from llm.serve.app import create_app
from llm.serve.prompt import chatml_to_messages
from llm.serve.requests import ServeLimits
from llm.serve.server import ServerThread

__all__ = ["ServeLimits", "ServerThread", "chatml_to_messages", "create_app"]
