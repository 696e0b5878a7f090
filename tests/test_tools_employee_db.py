"""The employee database: a real SQLite file, read-only to the agent, parameterised queries."""

from __future__ import annotations

import json
import sqlite3

import pytest

from tools.builtin.employee_db import (
    EmployeeDB,
    EmployeeDBError,
    connect_readonly,
    default_db_path,
    make_employee_db_tool,
)
from tools.registry import ToolRegistry


@pytest.fixture
def db_path(tmp_path):
    return tmp_path / "sub" / "employees.sqlite"


def test_file_is_created_on_first_use_and_seeded(db_path):
    assert not db_path.exists()
    EmployeeDB(db_path)
    assert db_path.exists()
    with sqlite3.connect(db_path) as con:
        names = [r[0] for r in con.execute("SELECT name_zh FROM employees ORDER BY id")]
    assert names == ["张三", "李四", "王五"]
    before = db_path.stat().st_mtime_ns
    EmployeeDB(db_path)  # existing file is reused, not rewritten
    assert db_path.stat().st_mtime_ns == before


def test_zhang_san_by_chinese_and_english_name(db_path):
    zh = EmployeeDB(db_path, "zh")
    record = zh.lookup("张三")
    assert record == {
        "name": "张三",
        "name_en": "Zhang San",
        "gender": "男",
        "birthday": "1990-10-15",
        "position": "软件工程师",
    }
    assert record["birthday"][5:7] == "10"  # October: the seed question has an answer
    for spelling in ("Zhang San", "zhang san", "ZHANGSAN", "  Zhang   San "):
        assert zh.lookup(spelling) == record
    en = EmployeeDB(db_path, "en").lookup("Li Si")
    assert en is not None and en["name"] == "Li Si" and en["gender"] == "female"
    assert EmployeeDB(db_path, "en").lookup("王五")["position"] == "Data Analyst"


def test_not_found_messages_through_the_registry(db_path):
    reg = ToolRegistry([make_employee_db_tool(db_path, "zh")])
    assert reg.call("employee_db", {"name": "赵六"}).text == "查无此人"
    assert reg.call("employee_db", {"name": ""}).text == "查无此人"
    reg_en = ToolRegistry([make_employee_db_tool(db_path, "en")])
    assert reg_en.call("employee_db", {"name": "Zhao Liu"}).text == "No such employee: Zhao Liu"
    found = reg.call("employee_db", {"name": "张三"})
    assert json.loads(found.text)["birthday"] == "1990-10-15" and "张三" in found.text
    assert reg.get("employee_db").name_for_human == "Employee Database"


@pytest.mark.parametrize(
    "attack",
    [
        "张三' OR '1'='1",
        "' OR 1=1 --",
        "张三'; DROP TABLE employees; --",
        '" OR ""="',
        "%",
        "*",
    ],
)
def test_sql_injection_finds_nothing_and_changes_nothing(db_path, attack):
    db = EmployeeDB(db_path, "zh")
    assert db.lookup(attack) is None
    with sqlite3.connect(db_path) as con:
        assert con.execute("SELECT count(*) FROM employees").fetchone()[0] == 3


def test_agent_side_connection_cannot_write(db_path):
    db = EmployeeDB(db_path)
    con = connect_readonly(db.path)
    try:
        with pytest.raises(sqlite3.OperationalError, match="readonly"):
            con.execute("INSERT INTO employees VALUES (9, 'x', 'x', 'x', 'x', 'x', 'x', 'x', 'x')")
        with pytest.raises(sqlite3.OperationalError, match="readonly"):
            con.execute("DROP TABLE employees")
    finally:
        con.close()
    assert db.lookup("张三") is not None


def test_path_with_special_characters(tmp_path):
    path = tmp_path / "we?ird #dir %20" / "db.sqlite"
    assert EmployeeDB(path).lookup("李四")["gender"] == "女"


def test_unreadable_file_gives_a_clear_error(tmp_path):
    path = tmp_path / "employees.sqlite"
    path.write_text("this is not a database")
    reg = ToolRegistry([make_employee_db_tool(path)])
    res = reg.call("employee_db", {"name": "张三"})
    assert not res.ok and "unreadable" in res.text
    with pytest.raises(EmployeeDBError):
        EmployeeDB(path).lookup("张三")


def test_default_path_follows_the_cache_env(monkeypatch, tmp_path):
    monkeypatch.setenv("QWEN_DEMO_CACHE", str(tmp_path / "cache"))
    assert default_db_path() == tmp_path / "cache" / "employees.sqlite"
    monkeypatch.delenv("QWEN_DEMO_CACHE")
    assert default_db_path().parts[-3:] == (".cache", "qwen-agent-demo", "employees.sqlite")


def test_bad_language_is_refused(db_path):
    with pytest.raises(ValueError, match="language"):
        EmployeeDB(db_path, "fr")  # type: ignore[arg-type]
