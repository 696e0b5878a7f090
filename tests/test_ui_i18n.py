"""Language table, settings validation."""

from __future__ import annotations

import re

import pytest

from agent.aids import AID_INFO
from agent.settings import AgentSettings
from ui.i18n import LANGS, STRINGS, default_system_prompt, normalize_lang, t
from ui.settings import SettingsError, make_settings


def test_every_string_has_both_languages_and_same_placeholders():
    for key, entry in STRINGS.items():
        assert set(entry) == set(LANGS), key
        fields = [set(re.findall(r"{(\w+)", entry[lang])) for lang in LANGS]
        assert fields[0] == fields[1], key


def test_t_formats_and_falls_back_to_english():
    assert t("status_loading", "en", name="X") == "⏳ Loading X …"
    assert t("send", "fr") == "Send"
    assert t("send", "zh") == "发送"


def test_lang_helpers():
    assert normalize_lang("zh-CN") == "zh" and normalize_lang("en_US") == "en"
    assert normalize_lang(None) == "en"
    assert "助手" in default_system_prompt("zh")
    assert "assistant" in default_system_prompt("en")


def test_make_settings_builds_agent_settings():
    s = make_settings("sys", 0, 0.9, 256.0, 5, "react")
    assert isinstance(s, AgentSettings)
    assert s.format == "react" and s.max_steps == 5 and s.system_prompt == "sys"
    assert s.generation.greedy and s.generation.max_new_tokens == 256
    assert make_settings("  ", 0.7, 0.8, 512, 8, None).system_prompt  # never empty


def test_make_settings_passes_the_aid_checkboxes():
    keys = [a.key for a in AID_INFO]
    off = make_settings("sys", 0, 0.9, 256, 5, "react", *[False] * len(keys))
    assert off.aids == frozenset()
    # checkboxes in AID_INFO order; the first three on, the rest off
    mixed = make_settings("sys", 0, 0.9, 256, 5, "react", True, True, True, *[False] * 9)
    assert mixed.aids == set(keys[:3])
    # no widget values (or None): the agent's own defaults
    assert make_settings("sys", 0, 0.9, 256, 5, "react").aids == AgentSettings().aids
    assert make_settings("sys", 0, 0.9, 256, 5, "react", None, False).aids == (
        AgentSettings().aids - {keys[1]}
    )
    assert make_settings("sys", 0, 0.9, 256, 5, "react", lang="zh").lang == "zh"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("s", None, 0.8, 512, 8, "auto"), "temperature is empty"),
        (("s", 0.7, 0.8, 0, 8, "auto"), "max new tokens must be between"),
        (("s", 0.7, 0.8, 512, 99, "auto"), "max agent steps"),
        (("s", 0.7, "x", 512, 8, "auto"), "top_p must be a number"),
        (("s", 0.7, 0.8, 512, 8, "xml"), "prompt format"),
    ],
)
def test_make_settings_rejects_bad_values(args, message):
    with pytest.raises(SettingsError, match=message):
        make_settings(*args)
