"""Grammar-constrained tool calls (llguidance), triggered only when the model starts a call.

- structures.py: the Constraint of each wire format, built from the enabled tools;
- grammar.py: a Constraint compiled into llguidance grammars for one tokenizer;
- session.py: one generation under it (trigger watch, matcher, token bitmask), engine-neutral;
- hf.py: the transformers logits processor.

docs/constraints.md says how it works and what it costs.
"""

from __future__ import annotations

from llm.constrain.structures import ToolSpec, hermes_constraint, react_constraint

__all__ = ["ToolSpec", "hermes_constraint", "react_constraint"]
