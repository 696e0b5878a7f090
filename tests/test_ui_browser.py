"""The app in headless Chromium: streaming, trace pane, Stop, tool toggles, model switch,
isolation of two browser sessions, Chinese labels. Screenshots go to test-artifacts/.

The app runs in-process with the real ModelManager; each test loads the model it needs
(a scripted file, or the tiny random Qwen2 checkpoint) the same way the Load button does.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from tests.ui_helpers import CHROMIUM, CHROMIUM_ARGS, launch_local

pytestmark = pytest.mark.browser


TOOL_SCRIPT = [
    "Thought: I should use the calculator.\nAction: calculator\n"
    'Action Input: {"expression": "3*7"}\nObservation: 42',
    "Thought: I now know the final answer\nFinal Answer: 3*7 = 21",
]


def _calculator():
    from tools.registry import tool

    @tool
    def calculator(expression: str) -> str:
        """Evaluate an arithmetic expression.

        Args:
            expression: the expression, e.g. 3*7
        """
        allowed = set("0123456789+-*/(). ")
        if not set(expression) <= allowed:
            raise ValueError("only arithmetic is allowed")
        return str(eval(expression, {"__builtins__": {}}))  # noqa: S307 - checked above

    return calculator


def _clock():
    from tools.registry import tool

    @tool
    def world_clock(city: str) -> str:
        """Tell the local time in a city.

        Args:
            city: the city name
        """
        return f"12:00 in {city}"

    return world_clock


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    """(url, models, script_dir): one launched app for the module."""
    pytest.importorskip("playwright")
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian chromium is not installed")
    from llm.manager import ModelManager
    from tools.registry import ToolRegistry
    from ui.app import AppConfig, build_demo
    from ui.models import LocalModels

    models = LocalModels(ModelManager(device="cpu"))
    tools = ToolRegistry([_calculator(), _clock()])
    demo = build_demo(models, tools, AppConfig(lang="en", stop_grace_s=5.0))
    url = launch_local(demo)
    yield url, models, tmp_path_factory.mktemp("scripts")
    demo.close()


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield b
        b.close()


def load_script(app, name: str, completions: list[str], delay: float = 0.01) -> str:
    _, models, folder = app
    path = folder / name
    path.write_text(json.dumps({"completions": completions, "delay": delay}), encoding="utf-8")
    models.load(f"scripted:{path}")
    return models.info.name


def open_page(browser, url: str):
    page = browser.new_page(viewport={"width": 1600, "height": 1000})
    page.goto(url)
    page.locator("#qwen-input textarea").wait_for()
    return page


def send(page, text: str) -> None:
    box = page.locator("#qwen-input textarea")
    box.fill(text)
    box.press("Enter")


def chat_text(page) -> str:
    return page.locator("#qwen-chat").inner_text()


def wait_for(predicate, timeout: float = 20.0, interval: float = 0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError("condition not met in time")


def test_tool_turn_streams_and_shows_trace(app, browser, artifacts_dir):
    url, _, _ = app
    name = load_script(app, "tool.json", TOOL_SCRIPT, delay=0.06)
    page = open_page(browser, url)
    send(page, "What is 3*7?")
    # Tokens stream: the live step text grows while the turn is pending.
    first = wait_for(lambda: "Thought" in chat_text(page) and chat_text(page))
    wait_for(lambda: len(chat_text(page)) > len(first) + 5)
    page.screenshot(path=str(artifacts_dir / "ui_streaming.png"))
    page.get_by_text("3*7 = 21").first.wait_for(timeout=20000)
    assert page.locator("#qwen-input textarea").input_value() == ""  # sent: input cleared
    chat = chat_text(page)
    assert f"answered by {name}" in chat
    trace = page.locator("#qwen-trace")
    trace.get_by_text("Step 1 · 🛠️ calculator").click()  # expand the collapsed step card
    observation = trace.get_by_text("Observation: calculator")
    observation.wait_for()
    observation.click()
    wait_for(lambda: "21" in trace.inner_text() and "from the tool" in trace.inner_text())
    assert "stop_word 'Observation:'" in trace.inner_text()
    page.screenshot(path=str(artifacts_dir / "ui_tool_trace.png"))
    page.close()


def test_stop_mid_stream_keeps_partial_and_frees_the_model(app, browser, artifacts_dir):
    url, models, _ = app
    long = "Thought: " + " ".join(f"word{i}" for i in range(400))
    load_script(app, "long.json", [long, "Final Answer: after stop"], delay=0.05)
    page = open_page(browser, url)
    send(page, "Tell me a long story")
    wait_for(lambda: "word5" in chat_text(page))
    page.locator("#stop").click()
    page.get_by_text("Stopped").first.wait_for(timeout=10000)
    frozen = chat_text(page)
    assert "word399" not in frozen
    time.sleep(0.6)
    assert chat_text(page) == frozen  # nothing streams after Stop
    wait_for(lambda: not models.busy, timeout=5)  # the generate loop saw the cancel
    page.screenshot(path=str(artifacts_dir / "ui_stopped.png"))
    # The conversation goes on after a stop: the next turn uses the next scripted reply.
    send(page, "Go on")
    page.get_by_text("after stop").first.wait_for(timeout=10000)
    page.close()


def test_tool_toggle_changes_the_prompt_view(app, browser, artifacts_dir):
    url, _, _ = app
    load_script(app, "prompt.json", ["Final Answer: ok"])
    page = open_page(browser, url)
    page.get_by_text("Show prompt").click()
    page.locator("#refresh-prompt").click()
    code = page.locator("#prompt-code")
    wait_for(lambda: "calculator:" in code.inner_text() and "world_clock:" in code.inner_text())
    assert "Observation:" in page.locator("#stop-words textarea").input_value()
    page.locator("#tool-calculator input[type=checkbox]").uncheck()
    wait_for(lambda: "calculator" not in code.inner_text() and "world_clock:" in code.inner_text())
    page.screenshot(path=str(artifacts_dir / "ui_prompt_view.png"))
    page.close()


def test_two_sessions_stay_isolated(app, browser):
    url, _, _ = app
    slow = "Final Answer: reply-one " + " ".join(f"x{i}" for i in range(60))
    load_script(app, "two.json", [slow, "Final Answer: reply-two"], delay=0.05)
    ctx_a, ctx_b = browser.new_context(), browser.new_context()
    page_a = ctx_a.new_page()
    page_b = ctx_b.new_page()
    for page in (page_a, page_b):
        page.goto(url)
        page.locator("#qwen-input textarea").wait_for()
    send(page_a, "question from A")
    wait_for(lambda: "reply-one" in chat_text(page_a))  # A is streaming
    send(page_b, "question from B")
    # one local model: B waits in the queue and is shown its position
    wait_for(lambda: "queue: 1/1" in page_b.locator("body").inner_text())
    page_a.get_by_text("x59").first.wait_for(timeout=20000)
    page_b.get_by_text("reply-two").first.wait_for(timeout=20000)
    a, b = chat_text(page_a), chat_text(page_b)
    assert "question from A" in a and "question from B" not in a and "reply-two" not in a
    assert "question from B" in b and "question from A" not in b and "reply-one" not in b
    ctx_a.close()
    ctx_b.close()


def test_switch_to_tiny_real_model_and_back(app, browser, tiny_model_dir, artifacts_dir):
    url, models, folder = app
    load_script(app, "before.json", ["Final Answer: scripted here"])
    page = open_page(browser, url)
    page.locator("#custom-source textarea").fill(str(tiny_model_dir))
    page.locator("#load").click()
    status = page.locator("#model-status")
    wait_for(lambda: "Loaded" in status.inner_text() and "scripted" not in status.inner_text(), 60)
    real_name = models.info.name
    assert models.info.backend == "transformers"
    send(page, "hello")
    page.get_by_text(f"answered by {real_name}").first.wait_for(timeout=60000)
    page.screenshot(path=str(artifacts_dir / "ui_tiny_model.png"))
    # back to a scripted model through the same field; the next answer says which model
    path = folder / "after.json"
    path.write_text(json.dumps(["Final Answer: scripted again"]), encoding="utf-8")
    page.locator("#custom-source textarea").fill(f"scripted:{path}")
    page.locator("#load").click()
    wait_for(lambda: "after.json" in status.inner_text(), 30)
    send(page, "hello again")
    page.get_by_text("scripted again").first.wait_for(timeout=10000)
    chat = chat_text(page)
    assert f"answered by {real_name}" in chat and "answered by scripted: after.json" in chat
    page.close()


def test_load_failure_is_reported_and_chat_survives(app, browser):
    url, models, _ = app
    load_script(app, "survive.json", ["Final Answer: still here"])
    page = open_page(browser, url)
    page.locator("#custom-source textarea").fill("/nonexistent/model/dir")
    page.locator("#load").click()
    status = page.locator("#model-status")
    wait_for(lambda: "Load failed" in status.inner_text(), 30)
    assert models.backend is not None  # the previous model keeps serving
    send(page, "are you there?")
    page.get_by_text("still here").first.wait_for(timeout=10000)
    page.close()


def test_chinese_ui_and_send_without_model_keeps_input(app, browser, artifacts_dir):
    url, models, _ = app
    models.unload()
    page = open_page(browser, url)
    page.get_by_text("中文", exact=True).click()
    page.get_by_text("发送", exact=True).wait_for()
    page.get_by_text("Agent 轨迹").first.wait_for()
    send(page, "你好，今天几号？")
    page.get_by_text("还没有加载模型").first.wait_for(timeout=10000)
    assert page.locator("#qwen-input textarea").input_value() == "你好，今天几号？"
    page.screenshot(path=str(artifacts_dir / "ui_chinese.png"))
    page.close()


def test_builtin_tools_in_chinese(browser, tmp_path, artifacts_dir):
    """The real built-in registry, a Chinese UI and a Chinese tool turn end to end."""
    from llm.manager import ModelManager
    from tools.builtin import default_registry
    from ui.app import AppConfig, build_demo
    from ui.models import LocalModels

    script = tmp_path / "zh.json"
    completions = [
        "Thought: 需要查询员工数据库。\nAction: employee_db\n"
        'Action Input: {"name": "张三"}\nObservation:',
        "Thought: I now know the final answer\nFinal Answer: 张三的职位见上方查询结果。",
    ]
    script.write_text(json.dumps({"completions": completions, "delay": 0.01}), encoding="utf-8")
    models = LocalModels(ModelManager(device="cpu"))
    models.load(f"scripted:{script}")
    tools = default_registry(language="zh", enable_python=False)
    demo = build_demo(models, tools, AppConfig(lang="zh"))
    url = launch_local(demo)
    try:
        page = open_page(browser, url)
        for tool in tools:
            page.locator(f"#tool-{tool.name}").wait_for()
        send(page, "张三是做什么的？")
        page.get_by_text("张三的职位见上方查询结果").first.wait_for(timeout=20000)
        trace = page.locator("#qwen-trace")
        trace.get_by_text("第 1 步 · 🛠️ employee_db").click()
        trace.get_by_text("观察结果：employee_db").click()
        wait_for(lambda: "来自工具" in trace.inner_text())
        observation = models.backend.requests[-1].messages[-1]["content"]
        assert "张三" in observation  # the tool's real answer went back to the model
        page.screenshot(path=str(artifacts_dir / "ui_chinese_tools.png"))
        page.close()
    finally:
        demo.close()
