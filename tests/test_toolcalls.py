"""ReAct and <tool_call> parsing (llm/toolcalls) over real-world malformed model outputs."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agent.errors import ArgumentError
from agent.repair import parse_json_arguments, resolve_arguments
from llm.toolcalls.hermes import ToolCallStream, parse_reply, split_tool_calls
from llm.toolcalls.jsontext import strip_fences
from llm.toolcalls.react import (
    ParsedActions,
    ParsedFinal,
    ReactAction,
    parse_react,
    strip_partial_stop,
)

F = ParsedFinal


def A(thought: str, name: str, raw: str, discarded: str = "") -> ParsedActions:  # noqa: N802
    """One action, as most replies have."""
    return ParsedActions(thought, (ReactAction(name, raw),), discarded)


# (model text, expected parse). Names say which real-world failure each case is.
REACT_CASES = [
    (
        "well_formed",
        'Thought: 查张三\nAction: employee_db\nAction Input: {"name": "张三"}',
        A("查张三", "employee_db", '{"name": "张三"}'),
    ),
    (
        "swallowed_stop_word",
        'Thought: t\nAction: calculator\nAction Input: {"expression": "1+1"}\nObservation:',
        A("t", "calculator", '{"expression": "1+1"}'),
    ),
    (
        "stop_word_without_colon",
        'Action: calculator\nAction Input: {"expression": "2"}\nObservation',
        A("", "calculator", '{"expression": "2"}'),
    ),
    (
        "trailing_observ",
        'Thought: t\nAction: calculator\nAction Input: {"expression": "3"}\nObserv',
        A("t", "calculator", '{"expression": "3"}'),
    ),
    (
        "trailing_single_O_on_its_own_line",
        'Action: calculator\nAction Input: {"expression": "4"}\nO',
        A("", "calculator", '{"expression": "4"}'),
    ),
    (
        "missing_leading_newlines",
        'Thought: I should use the calculatorAction: calculatorAction Input: {"expression": "5"}',
        A("I should use the calculator", "calculator", '{"expression": "5"}'),
    ),
    (
        "continuation_after_prompt_thought",
        ' 需要计算\nAction: calculator\nAction Input: {"expression": "6"}',
        A("需要计算", "calculator", '{"expression": "6"}'),
    ),
    (
        "fenced_json",
        'Thought: t\nAction: calculator\nAction Input: ```json\n{"expression": "7"}\n```',
        A("t", "calculator", '```json\n{"expression": "7"}\n```'),
    ),
    (
        "input_on_next_line_and_multiline_json",
        'Action: employee_db\nAction Input:\n{\n  "name": "张三"\n}\n',
        A("", "employee_db", '{\n  "name": "张三"\n}'),
    ),
    (
        "backticked_action_name",
        'Action: `calculator`\nAction Input: {"expression": "8"}',
        A("", "calculator", '{"expression": "8"}'),
    ),
    (
        "bracketed_action_name",
        'Action: [employee_db]\nAction Input: {"name": "李四"}',
        A("", "employee_db", '{"name": "李四"}'),
    ),
    (
        "call_syntax_action_name",
        'Action: calculator(expression="9")\nAction Input: {"expression": "9"}',
        A("", "calculator", '{"expression": "9"}'),
    ),
    (
        "full_width_colons",
        'Thought： 查\nAction： employee_db\nAction Input： {"name": "王五"}',
        A("查", "employee_db", '{"name": "王五"}'),
    ),
    (
        "lower_case_labels",
        'thought: t\naction: calculator\naction input: {"expression": "10"}',
        A("t", "calculator", '{"expression": "10"}'),
    ),
    (
        "two_actions_in_one_reply_both_count",  # Qwen2 does this (the LLaMA-Factory article)
        'Action: employee_db\nAction Input: {"name": "x"}\nAction: calculator\n'
        'Action Input: {"expression": "11"}',
        ParsedActions(
            "",
            (
                ReactAction("employee_db", '{"name": "x"}'),
                ReactAction("calculator", '{"expression": "11"}'),
            ),
        ),
    ),
    (
        "thought_between_two_actions_goes_with_the_second",
        "Thought: a\nAction: clock\nAction Input: {}\nThought: and b\nAction: calculator\n"
        'Action Input: {"expression": "1"}\nObservation:',
        ParsedActions(
            "a",
            (ReactAction("clock", "{}"), ReactAction("calculator", '{"expression": "1"}', "and b")),
        ),
    ),
    (
        "an_action_line_corrected_by_the_next_one",
        'Action: employee_db\nAction: calculator\nAction Input: {"expression": "11"}',
        A("", "calculator", '{"expression": "11"}'),
    ),
    (
        "action_input_without_action_is_an_error_not_an_answer",
        'Thought: look him up\nAction Input: {"name": "张三"}',
        ParsedActions(
            "look him up",
            (),
            error="Action Input was written without an Action line naming the tool. "
            "Write: Action: <tool name> then Action Input: <JSON arguments>",
        ),
    ),
    (
        "final_answer_followed_by_action_lines_shows_only_the_answer",
        "Thought: done\nFinal Answer: 5月5日\nAction: calculator\n"
        'Action Input: {"expression": "1"}',
        F("done", "5月5日", True, 'Action: calculator\nAction Input: {"expression": "1"}'),
    ),
    (
        "hallucinated_observation_is_split_off",
        'Thought: t\nAction: employee_db\nAction Input: {"name": "张三"}\nObservation: 张三生日'
        "是10月1日\nThought: I now know the final answer\nFinal Answer: 8个月",
        A(
            "t",
            "employee_db",
            '{"name": "张三"}',
            "Observation: 张三生日是10月1日\nThought: I now know the final answer\n"
            "Final Answer: 8个月",
        ),
    ),
    (
        "answer_written_before_any_result",
        'Action: calculator\nAction Input: {"expression": "12"}\nThought: done\nFinal Answer: 12',
        A("", "calculator", '{"expression": "12"}', "Thought: done\nFinal Answer: 12"),
    ),
    (
        "action_without_input",
        "Thought: what time is it\nAction: clock",
        A("what time is it", "clock", ""),
    ),
    (
        "bare_string_input",
        "Action: calculator\nAction Input: 3 * 4",
        A("", "calculator", "3 * 4"),
    ),
    (
        "final_answer",
        "Thought: I now know the final answer\nFinal Answer: 张三的生日是10月，还有8个月。",
        F("I now know the final answer", "张三的生日是10月，还有8个月。", True),
    ),
    (
        "final_answer_after_continuation",
        " I now know the final answer\nFinal Answer: 8",
        F("I now know the final answer", "8", True),
    ),
    (
        "multiline_final_answer",
        "Final Answer: line one\nline two",
        F("", "line one\nline two", True),
    ),
    (
        "final_answer_without_thought_and_full_width_colon",
        "Final Answer：42",
        F("", "42", True),
    ),
    (
        "final_answer_before_a_stray_action_line",
        "Thought: t\nFinal Answer: I can't; no Action: needed",
        F("t", "I can't; no Action: needed", True),
    ),
    (
        "no_labels_is_the_answer",
        "你好！有什么可以帮你？",
        F("", "你好！有什么可以帮你？", False),
    ),
    (
        "lower_case_label_words_inside_an_answer_are_text",
        "You should take action: call the office. The final answer: wait.",
        F("", "You should take action: call the office. The final answer: wait.", False),
    ),
    (
        "thought_only_is_the_answer",
        "Thought: 张三是工程师。",
        F("", "张三是工程师。", False),
    ),
    (
        "answer_ending_in_word_prefix_is_kept",
        "Final Answer: the answer is NO",
        F("", "the answer is NO", True),
    ),
    (
        "observation_inside_arguments_is_kept",
        'Action: employee_db\nAction Input: {"name": "Observation deck"}',
        A("", "employee_db", '{"name": "Observation deck"}'),
    ),
]


@pytest.mark.parametrize(
    ("text", "expected"), [c[1:] for c in REACT_CASES], ids=[c[0] for c in REACT_CASES]
)
def test_parse_react(text, expected):
    assert parse_react(text) == expected


@pytest.mark.parametrize(
    ("raw", "value", "lenient"),
    [
        ('{"a": 1}', {"a": 1}, False),
        ('```json\n{"a": 1}\n```', {"a": 1}, False),
        ('`{"a": 1}`', {"a": 1}, False),
        ("{'a': 1,}", {"a": 1}, True),  # single quotes + trailing comma
        ('{"a": 1 // the count\n}', {"a": 1}, True),  # a comment
        ('{a: "x"}', {"a": "x"}, True),  # unquoted key
        ('{"a": 1}\nObserv', {"a": 1}, False),
        ('"plain"', "plain", False),
    ],
)
def test_parse_json_arguments(raw, value, lenient):
    assert parse_json_arguments(raw) == (value, lenient)


@pytest.mark.parametrize("raw", ["3 * 4", '{"a": ', "张三"])
def test_parse_json_arguments_rejects_non_json(raw):
    with pytest.raises(ArgumentError, match="not valid JSON"):
        parse_json_arguments(raw)


def test_strip_helpers():
    assert strip_fences("```\nx\n```") == "x"
    assert strip_partial_stop("abc\nObservation") == "abc"
    assert strip_partial_stop("the ratio is NO") == "the ratio is NO"
    assert strip_partial_stop("see Obs", line_start_only=True) == "see Obs"


NATIVE_CASES = [
    (
        "one_call_with_thought",
        'Let me look.\n<tool_call>\n{"name": "employee_db", "arguments": {"name": "张三"}}\n'
        "</tool_call>",
        "Let me look.",
        [("employee_db", {"name": "张三"}, None)],
    ),
    (
        "two_calls",
        '<tool_call>\n{"name": "calculator", "arguments": {"expression": "1+1"}}\n</tool_call>\n'
        '<tool_call>\n{"name": "calculator", "arguments": {"expression": "2+2"}}\n</tool_call>',
        "",
        [("calculator", {"expression": "1+1"}, None), ("calculator", {"expression": "2+2"}, None)],
    ),
    (
        "unclosed_last_block",
        '<tool_call>\n{"name": "clock", "arguments": {}}',
        "",
        [("clock", {}, None)],
    ),
    (
        "double_encoded_arguments",
        '<tool_call>{"name": "calculator", "arguments": "{\\"expression\\": \\"3\\"}"}</tool_call>',
        "",
        [("calculator", {"expression": "3"}, None)],
    ),
    (
        "parameters_key_and_fence",
        '<tool_call>```json\n{"name": "calculator", "parameters": {"expression": "4"}}\n```'
        "</tool_call>",
        "",
        [("calculator", {"expression": "4"}, None)],
    ),
    (
        "openai_shaped",
        '<tool_call>{"function": {"name": "clock", "arguments": {}}}</tool_call>',
        "",
        [("clock", {}, None)],
    ),
    (
        "broken_json_keeps_name",
        '<tool_call>{"name": "calculator", "arguments": {"expression": </tool_call>',
        "",
        [("calculator", '{"name": "calculator", "arguments": {"expression":', "not valid JSON")],
    ),
    (
        "no_name",
        '<tool_call>{"arguments": {"x": 1}}</tool_call>',
        "",
        [("", '{"arguments": {"x": 1}}', "needs a name")],
    ),
    ("plain_answer", "张三是工程师。", "张三是工程师。", []),
    (
        "qwen_coder_tools_wrapper",  # Qwen2.5-Coder writes its call inside <tools> tags
        'Let me check.\n<tools>\n{"name": "employee_db", "arguments": {"name": "张三"}}\n</tools>',
        "Let me check.",
        [("employee_db", {"name": "张三"}, None)],
    ),
    (
        "two_tools_wrappers_in_one_reply",
        '<tools>\n{"name": "clock", "arguments": {}}\n</tools>\n<tools>\n'
        '{"name": "calculator", "arguments": {"expression": "2"}}\n</tools>',
        "",
        [("clock", {}, None), ("calculator", {"expression": "2"}, None)],
    ),
    (
        "tools_wrapper_with_one_call_per_line",
        '<tools>\n{"name": "clock", "arguments": {}}\n'
        '{"name": "calculator", "arguments": {"expression": "3"}}\n</tools>',
        "",
        [("clock", {}, None), ("calculator", {"expression": "3"}, None)],
    ),
]


@pytest.mark.parametrize(
    ("text", "content", "calls"),
    [c[1:] for c in NATIVE_CASES],
    ids=[c[0] for c in NATIVE_CASES],
)
def test_parse_native(text, content, calls):
    reply = parse_reply(text)
    assert reply.content == content
    got = [(c.name, c.arguments, c.error) for c in reply.calls]
    for (name, args, err), (gname, gargs, gerr) in zip(calls, got, strict=True):
        assert (gname, gargs) == (name, args)
        assert (err is None and gerr is None) or (err and gerr and err in gerr)


def test_parse_native_splits_off_a_made_up_tool_response():
    reply = parse_reply(
        '<tool_call>{"name": "clock", "arguments": {}}</tool_call>\n<tool_response>10:00'
    )
    assert [c.name for c in reply.calls] == ["clock"]
    assert reply.discarded == "<tool_response>10:00"


_PIECES = st.sampled_from(
    [
        "Thought:",
        "Action:",
        "Action Input:",
        "Observation:",
        "Final Answer:",
        "\n",
        " ",
        "{",
        "}",
        "[",
        "]",
        '"',
        "'",
        "`",
        "```",
        ":",
        "：",
        "<tool_call>",
        "</tool_call>",
        "<tool_response>",
        "calculator",
        "name",
        "张三",
        "1+1",
        "//",
        ",",
        "Observ",
    ]
)
_MODEL_TEXT = st.lists(st.one_of(_PIECES, st.text(max_size=5)), max_size=25).map("".join)


@settings(max_examples=150, deadline=None)
@given(_MODEL_TEXT)
def test_parsers_never_raise_on_any_model_text(text):
    from tests.test_agent_support import make_registry

    step = parse_react(text)
    assert isinstance(step, ParsedActions | ParsedFinal)
    reply = parse_reply(text)
    split_tool_calls(text)
    tools = make_registry()
    raws = [a.raw_arguments for a in step.actions] if isinstance(step, ParsedActions) else []
    for raw in [*raws, text]:
        for tool in tools:
            try:
                resolve_arguments(tool, raw, repair=True)
            except ArgumentError:
                pass
    for call in reply.calls:
        assert isinstance(call.name, str)


SMALL_MODEL_REPLY = (  # Qwen2.5-Coder-0.5B's actual reply to the seed question, native format
    '```json\n{\n  "name": "employee_db",\n  "arguments": {\n    "name": "张三"\n  }\n}\n```'
)


@pytest.mark.parametrize(
    ("text", "names", "calls", "content"),
    [
        (SMALL_MODEL_REPLY, ["employee_db"], [("employee_db", {"name": "张三"})], ""),
        (
            'Let me check.\n{"name": "calculator", "arguments": {"expression": "1+1"}}',
            ["calculator"],
            [("calculator", {"expression": "1+1"})],
            "Let me check.",
        ),
        (
            '{"name": "calculator", "arguments": {"expression": "1+1"}}',
            ["calculator"],
            [("calculator", {"expression": "1+1"})],
            "",
        ),
        (
            'Two:\n```json\n[{"name": "clock", "arguments": {}}, '
            '{"name": "calculator", "parameters": {"expression": "2"}}]\n```',
            ["clock", "calculator"],
            [("clock", {}), ("calculator", {"expression": "2"})],
            "Two:",
        ),
        (SMALL_MODEL_REPLY, ["calculator"], [], SMALL_MODEL_REPLY),  # not an enabled tool
        (SMALL_MODEL_REPLY, [], [], SMALL_MODEL_REPLY),  # repair off
        ('```json\n{"name": "张三", "age": 30}\n```', ["employee_db"], [], None),  # data, no call
    ],
)
def test_untagged_native_calls_are_read_only_when_they_call_an_enabled_tool(
    text, names, calls, content
):
    reply = parse_reply(text, names)
    assert [(c.name, c.arguments) for c in reply.calls] == calls
    assert all(c.repaired for c in reply.calls)
    assert reply.content == (text.strip() if content is None else content)


def test_tools_wrapper_tags_never_reach_the_answer():
    reply = parse_reply('<tools>\n{"name": "clock", "arguments": {}}\n</tools>\nDone.')
    assert "<tools>" not in reply.content and "</tools>" not in reply.content
    assert [c.name for c in reply.calls] == ["clock"] and reply.content == "Done."


# -- the server's split of a stream into content and calls ---------------------

CALL = '<tool_call>\n{"name": "f", "arguments": {"a": 1}}\n</tool_call>'


@pytest.mark.parametrize(
    ("text", "content", "names"),
    [
        ("plain text", "plain text", []),
        (CALL, "", ["f"]),
        ("Sure.\n" + CALL, "Sure.", ["f"]),
        (CALL + "\n" + CALL, "", ["f", "f"]),
        ("<tool_call>\nnot json\n</tool_call>", "<tool_call>\nnot json\n</tool_call>", []),
        ('<tool_call>\n{"name": "f", "arguments": {}}', "", ["f"]),  # unterminated at EOS
        ("<tool_call>\n{broken", "<tool_call>\n{broken", []),
        ('<tool_call>{"name": "f", "arguments": "{\\"a\\": 2}"}</tool_call>', "", ["f"]),
        ("a < b and <tool_ but no call", "a < b and <tool_ but no call", []),
    ],
)
def test_split_tool_calls(text, content, names):
    got_content, calls = split_tool_calls(text)
    assert got_content == content
    assert [c.name for c in calls] == names


@pytest.mark.parametrize("size", [1, 2, 3, 7])
def test_tool_call_parser_is_chunking_independent(size):
    text = "Hi there.\n" + CALL + "\n" + CALL.replace('"a": 1', '"b": [1, 2]')
    parser = ToolCallStream()
    items = []
    for i in range(0, len(text), size):
        items += parser.push(text[i : i + size])
    items += parser.finish()
    assert "".join(i for i in items if isinstance(i, str)) == "Hi there."
    assert [c.arguments for c in parser.calls] == [{"a": 1}, {"b": [1, 2]}]
