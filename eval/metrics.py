"""Text similarity for the tool-use evaluation: Rouge-L over tool arguments.

Qwen's own plugin eval scores the model's Action Input against the reference with Rouge-L;
we do the same on the JSON-serialised first tool call. Tokens are words for Latin text and
single characters for Chinese (no word segmenter needed, and character-level Rouge is the
usual choice for Chinese), so a mixed zh/en case set is scored on one scale.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff]")
# After CJK characters are spaced apart, a token is a run of letters/digits (with inner
# "." "-" "'" as in "3.14", "new-york") or any other single non-space character: operators
# matter in "2+3" vs "2*3".
_TOKEN = re.compile(r"[^\W_]+(?:[.'-][^\W_]+)*|\S")


def tokenize(text: str) -> list[str]:
    """Lower-cased tokens: CJK characters one by one, Latin words whole, symbols one by one."""
    return _TOKEN.findall(_CJK.sub(r" \g<0> ", text.lower()))


def lcs_length(a: list[str], b: list[str]) -> int:
    """Length of the longest common subsequence (O(len(a)*len(b)) time, O(len(b)) memory)."""
    if not a or not b:
        return 0
    if len(b) > len(a):
        a, b = b, a
    prev = [0] * (len(b) + 1)
    for x in a:
        cur = [0] * (len(b) + 1)
        for j, y in enumerate(b, 1):
            cur[j] = prev[j - 1] + 1 if x == y else max(prev[j], cur[j - 1])
        prev = cur
    return prev[-1]


@dataclass(frozen=True)
class RougeScore:
    precision: float
    recall: float
    f: float


def rouge_l(candidate: str, reference: str, beta: float = 1.0) -> RougeScore:
    """Rouge-L: LCS-based precision, recall and F-measure over tokens.

    beta weighs recall against precision (1.0: the harmonic mean). Two empty texts match
    perfectly; an empty text against a non-empty one scores 0.
    """
    cand, ref = tokenize(candidate), tokenize(reference)
    if not cand and not ref:
        return RougeScore(1.0, 1.0, 1.0)
    lcs = lcs_length(cand, ref)
    if lcs == 0:
        return RougeScore(0.0, 0.0, 0.0)
    p, r = lcs / len(cand), lcs / len(ref)
    f = (1 + beta**2) * p * r / (r + beta**2 * p)
    return RougeScore(p, r, f)


def arguments_text(arguments: Any) -> str:
    """Canonical JSON of tool arguments: sorted keys, non-ASCII kept (so Chinese stays
    Chinese tokens), compact separators with a space so keys and values tokenise apart."""
    return json.dumps(arguments, ensure_ascii=False, sort_keys=True, default=str)


def arguments_rouge_l(arguments: Any, expected: Any) -> float:
    """Rouge-L F of the serialised arguments against the expected ones (1.0 when equal,
    0.0 when there were no arguments at all, i.e. no call)."""
    if arguments == expected:
        return 1.0
    if arguments is None or expected is None:
        return 0.0
    return rouge_l(arguments_text(arguments), arguments_text(expected)).f
