"""Stop words on streamed text: hold back what could start a stop word, cut at the first one.

Token-level stopping (llm.local) ends generation; this filter decides which characters the
user may see, so no character of a stop word ever reaches a TextDelta.
"""

from __future__ import annotations

from collections.abc import Iterable

# A held-back tail shorter than this is real text ("... is NO" ends in "O", a prefix of
# "Observation:"), so it is kept when generation ends without a stop word.
_MIN_PARTIAL = 3


def partial_suffix(buf: str, word: str, longer_than: int = 0) -> int:
    """Length of the longest suffix of buf that is a proper prefix of word (text that could
    still become word and so must be held back); 0 when none is longer than longer_than."""
    for k in range(min(len(word) - 1, len(buf)), longer_than, -1):
        if buf.endswith(word[:k]):
            return k
    return 0


class StopWordFilter:
    def __init__(self, stop_words: Iterable[str]):
        self.stop_words = tuple(sorted({s for s in stop_words if s}, key=len, reverse=True))
        self._pending = ""
        self.text = ""  # everything released so far
        self.stop_word: str | None = None

    def push(self, piece: str) -> str:
        """Add generated text; return the part that is now safe to show."""
        if self.stop_word is not None:
            return ""
        buf = self._pending + piece
        cut, found = len(buf), None
        for word in self.stop_words:  # longest first: equal positions keep the longer word
            i = buf.find(word)
            if i != -1 and i < cut:
                cut, found = i, word
        if found is not None:
            self.stop_word = found
            self._pending = ""
            return self._release(self._strip_half_written(buf[:cut]))
        hold = self._partial_len(buf)
        self._pending = buf[len(buf) - hold :] if hold else ""
        return self._release(buf[: len(buf) - hold])

    def finish(self) -> str:
        """Generation ended: release a held-back tail unless it is a half-written stop word."""
        tail, self._pending = self._pending, ""
        return self._release(self._strip_half_written(tail))

    def _strip_half_written(self, text: str) -> str:
        """Drop a half-written stop word at the end of text ("…Observ" before EOS or before
        another stop word)."""
        for k in range(self._partial_len(text), 0, -1):
            if self._is_half_written(text[-k:]):
                return text[:-k]
        return text

    def _release(self, text: str) -> str:
        self.text += text
        return text

    def _partial_len(self, buf: str) -> int:
        """Length of the longest suffix of buf that is a proper prefix of a stop word."""
        best = 0
        for word in self.stop_words:
            best = max(best, partial_suffix(buf, word, longer_than=best))
        return best

    def _is_half_written(self, tail: str) -> bool:
        for word in self.stop_words:
            if word.startswith(tail) and (len(tail) >= _MIN_PARTIAL or word.startswith("<|")):
                return True
        return False


def apply_stop_words(text: str, stop_words: Iterable[str]) -> tuple[str, str | None]:
    """Whole-text version: (visible text, stop word hit or None)."""
    f = StopWordFilter(stop_words)
    out = f.push(text)
    if f.stop_word is None:
        out += f.finish()
    return out, f.stop_word
