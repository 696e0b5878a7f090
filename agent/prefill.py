"""Joining a prefilled reply start ("Thought:") with what the model streams after it.

With AgentSettings.prefill_thought the prompt already holds the first word of the reply; the
trace and the parser must see the whole step, so the prefix is streamed first. A model (or a
script) that writes the prefix again itself is not shown it twice: the first few characters
are held back until it is clear whether they repeat the prefix.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class PrefixJoin:
    prefix: str
    _held: str = ""
    _decided: bool = False

    def feed(self, text: str) -> str:
        """The streamed text to show now for this model delta ("" while undecided)."""
        if self._decided or not self.prefix:
            return text
        self._held += text
        body = self._held.lstrip()
        if len(body) < len(self.prefix) and self.prefix.startswith(body):
            return ""
        self._decided = True
        return self.full(self._held)

    def flush(self) -> str:
        """What is still held when the stream ends."""
        if self._decided:
            return ""
        self._decided = True
        return self.full(self._held)

    def full(self, text: str) -> str:
        """The whole step: the model's text with the prefix in front, once."""
        body = text.lstrip()
        return body if body.startswith(self.prefix) else self.prefix + text
