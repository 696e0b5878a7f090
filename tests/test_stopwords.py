from __future__ import annotations

import pytest

from llm.stopwords import StopWordFilter, apply_stop_words

STOPS = ["Observation:", "Observation:\n", "<|im_end|>", "<|im_start|>", "<|endoftext|>"]


def stream(pieces: list[str], stops=STOPS) -> tuple[list[str], StopWordFilter]:
    f = StopWordFilter(stops)
    shown = [f.push(p) for p in pieces]
    if f.stop_word is None:
        shown.append(f.finish())
    return [s for s in shown if s], f


@pytest.mark.parametrize(
    "pieces, visible, stop",
    [
        (
            ["Thought: x\nAction: a\nAction Input: {}\n", "Observ", "ation", ":"],
            "Thought: x\nAction: a\nAction Input: {}\n",
            "Observation:",
        ),
        (["O", "b", "s", "e", "r", "v", "a", "t", "i", "o", "n", ": result"], "", "Observation:"),
        (["Final Answer: 42<|im_", "end|>ignored"], "Final Answer: 42", "<|im_end|>"),
        (["hello <|im_start|>system"], "hello ", "<|im_start|>"),
        (["plain text"], "plain text", None),
        (["the answer is NO"], "the answer is NO", None),  # "O" alone is real text
        (["cut here Observ"], "cut here ", None),  # half-written stop word stripped
        (["x <|im"], "x ", None),
        (["text Observ<|im_start|>user"], "text ", "<|im_start|>"),  # half word before a stop
        (["answer NO<|im_end|>"], "answer NO", "<|im_end|>"),
        (["Observe the sky"], "Observe the sky", None),  # diverges from the stop word
        (["a", "Observation", ":\nb"], "a", "Observation:\n"),  # longer word on a tie
    ],
)
def test_stream_table(pieces, visible, stop):
    shown, f = stream(pieces)
    assert "".join(shown) == visible == f.text
    assert f.stop_word == stop


def test_no_character_of_a_stop_word_is_ever_released():
    text = (
        'Thought: look it up\nAction: employee_db\nAction Input: {"name": "张三"}\nObservation: hi'
    )
    for size in range(1, 6):
        pieces = [text[i : i + size] for i in range(0, len(text), size)]
        shown, f = stream(pieces)
        joined = "".join(shown)
        assert "Obs" not in joined
        assert joined == text[: text.index("Observation:")]
        # every prefix released so far is a prefix of the final visible text
        acc = ""
        for s in shown:
            acc += s
            assert joined.startswith(acc)


def test_push_after_stop_releases_nothing():
    f = StopWordFilter(["STOP"])
    assert f.push("aSTOPb") == "a"
    assert f.push("more") == ""
    assert f.text == "a"


def test_earliest_stop_word_wins_and_longer_on_tie():
    assert apply_stop_words("x Observation:\nmore", STOPS) == ("x ", "Observation:\n")
    assert apply_stop_words("a<|im_end|>b Observation:", STOPS) == ("a", "<|im_end|>")


def test_empty_stop_words_pass_everything():
    assert apply_stop_words("anything <|im_end|>", []) == ("anything <|im_end|>", None)
