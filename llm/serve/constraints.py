"""Where constrained decoding enters a request: OpenAI's and vLLM's field names.

`response_format` ({"type": "json_object"}, {"type": "json_schema", "json_schema": {...}},
vLLM's {"type": "structural_tag", "structures": [...], "triggers": [...]}), vLLM's older
`guided_json` and its `structured_outputs: {"json": ...}` become one llm.types.Constraint
for the backend. The grammar engine is the backend's (ModelInfo.supports_constraints); a
backend without one gets a 400 rather than silently unconstrained output. Regex, choice
and grammar constraints are refused by name until a backend can apply them.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from llm.serve.errors import BadRequest
from llm.types import Constraint, TaggedSchema

_UNSUPPORTED = ("guided_regex", "guided_choice", "guided_grammar")


class _Strict(BaseModel):
    model_config = ConfigDict(strict=True, extra="ignore")


class JsonSchemaFormat(_Strict):
    name: str = ""
    schema_: dict[str, Any] = Field(default_factory=dict, alias="schema")
    strict: bool | None = None


class TagStructure(_Strict):
    begin: str
    schema_: dict[str, Any] = Field(default_factory=dict, alias="schema")
    end: str


class ResponseFormat(_Strict):
    type: Literal["text", "json_object", "json_schema", "structural_tag"]
    json_schema: JsonSchemaFormat | None = None
    structures: list[TagStructure] = []
    triggers: list[str] = []


class ConstraintFields(_Strict):
    response_format: ResponseFormat | None = None
    guided_json: dict[str, Any] | None = None
    structured_outputs: dict[str, Any] | None = None
    guided_regex: Any = None
    guided_choice: Any = None
    guided_grammar: Any = None

    def constraint(self) -> tuple[Constraint | None, str]:
        """The requested constraint and the field it came from ("" when none)."""
        for name in _UNSUPPORTED:
            if getattr(self, name) is not None:
                raise BadRequest(f"'{name}' is not supported by this server", param=name)
        if self.guided_json is not None:
            return Constraint(json_schema=self.guided_json), "guided_json"
        if self.structured_outputs:
            other = sorted(set(self.structured_outputs) - {"json"})
            if other:
                raise BadRequest(
                    f"'structured_outputs.{other[0]}' is not supported by this server",
                    param="structured_outputs",
                )
            schema = self.structured_outputs["json"]
            if not isinstance(schema, dict):
                raise BadRequest(
                    "'structured_outputs.json' must be a JSON schema object",
                    param="structured_outputs",
                )
            return Constraint(json_schema=schema), "structured_outputs"
        fmt = self.response_format
        if fmt is None or fmt.type == "text":
            return None, ""
        if fmt.type == "json_object":
            return Constraint(json_schema={"type": "object"}), "response_format"
        if fmt.type == "json_schema":
            if fmt.json_schema is None:
                raise BadRequest(
                    "'response_format.json_schema' is required for type json_schema",
                    param="response_format",
                )
            return Constraint(json_schema=fmt.json_schema.schema_), "response_format"
        if not fmt.structures or not fmt.triggers:
            raise BadRequest(
                "a structural_tag response_format needs 'structures' and 'triggers'",
                param="response_format",
            )
        structures = tuple(TaggedSchema(s.begin, s.schema_, s.end) for s in fmt.structures)
        return Constraint(structures=structures, triggers=tuple(fmt.triggers)), "response_format"

    def checked_constraint(self, supports_constraints: bool) -> Constraint | None:
        constraint, field = self.constraint()
        if constraint is not None and not supports_constraints:
            raise BadRequest(
                f"'{field}' asks for constrained decoding, which the model served here "
                "cannot apply",
                param=field,
            )
        return constraint
