"""Rouge-L and its tokeniser on hand-computed values."""

from __future__ import annotations

import pytest

from eval.metrics import arguments_rouge_l, arguments_text, lcs_length, rouge_l, tokenize


@pytest.mark.parametrize(
    ("text", "tokens"),
    [
        ("Hello, World", ["hello", ",", "world"]),
        ("张三的生日", ["张", "三", "的", "生", "日"]),
        ("Alice的生日", ["alice", "的", "生", "日"]),
        ("3.14*2+x", ["3.14", "*", "2", "+", "x"]),
        ('{"name": "李四"}', ["{", '"', "name", '"', ":", '"', "李", "四", '"', "}"]),
        ("Asia/Shanghai", ["asia", "/", "shanghai"]),
        ("  ", []),
    ],
)
def test_tokenize(text: str, tokens: list[str]) -> None:
    assert tokenize(text) == tokens


@pytest.mark.parametrize(
    ("a", "b", "n"),
    [
        ("a b c d", "a c d", 3),
        ("a b c", "c b a", 1),
        ("a b c", "x y z", 0),
        ("", "a", 0),
        ("a b a b", "b a b a", 3),
    ],
)
def test_lcs_length(a: str, b: str, n: int) -> None:
    assert lcs_length(a.split(), b.split()) == n
    assert lcs_length(b.split(), a.split()) == n


def test_rouge_l_english_known_value() -> None:
    # LCS("the cat sat on the mat", "the cat on the mat") = 5 tokens: P = 5/6, R = 5/5.
    s = rouge_l("the cat sat on the mat", "the cat on the mat")
    assert s.precision == pytest.approx(5 / 6)
    assert s.recall == pytest.approx(1.0)
    assert s.f == pytest.approx(2 * (5 / 6) / (5 / 6 + 1))


def test_rouge_l_chinese_uses_characters() -> None:
    # candidate 4 chars, reference 5 chars, LCS 4 ("张三生日").
    s = rouge_l("张三生日", "张三的生日")
    assert (s.precision, s.recall) == (pytest.approx(1.0), pytest.approx(0.8))
    assert s.f == pytest.approx(2 * 0.8 / 1.8)


def test_rouge_l_edge_cases() -> None:
    assert rouge_l("", "").f == 1.0
    assert rouge_l("", "abc").f == 0.0
    assert rouge_l("abc", "").f == 0.0
    assert rouge_l("x y", "z w").f == 0.0
    assert rouge_l("Same Words", "same words").f == 1.0


def test_rouge_l_beta_weighs_recall() -> None:
    # P = 1/1, R = 1/4: a large beta pulls F towards recall.
    s1 = rouge_l("a", "a b c d", beta=1.0)
    s8 = rouge_l("a", "a b c d", beta=8.0)
    assert s1.f == pytest.approx(2 * 0.25 / 1.25)
    assert s8.f == pytest.approx(65 * 0.25 / (64 * 1.0 + 0.25))


def test_arguments_text_is_canonical() -> None:
    assert arguments_text({"b": 1, "a": "张三"}) == '{"a": "张三", "b": 1}'


def test_arguments_rouge_l() -> None:
    assert arguments_rouge_l({"name": "张三"}, {"name": "张三"}) == 1.0
    # { " expression " : " 37 * 89 " }: 11 tokens each side, 10 shared.
    got = arguments_rouge_l({"expression": "37*89"}, {"expression": "37*90"})
    assert got == pytest.approx(10 / 11)
    # Wrong key and value: only the JSON punctuation { " " : " " } is shared (7 of 9 each).
    assert arguments_rouge_l({"query": "x"}, {"name": "y"}) == pytest.approx(7 / 9)
    # No call at all scores 0 against any expected arguments.
    assert arguments_rouge_l(None, {"name": "y"}) == 0.0
