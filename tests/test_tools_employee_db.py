"""The employee database: the seed's facts in a real SQLite file, read-only to the agent."""

from __future__ import annotations

import json
import sqlite3
import sys

import pytest

from tools.builtin.employee_db import (
    SCHEMA_VERSION,
    EmployeeDB,
    EmployeeDBError,
    default_db_path,
    make_employee_db_tool,
)
from tools.registry import ToolRegistry


@pytest.fixture
def db_path(tmp_path):
    return tmp_path / "sub" / "employees.sqlite"


# The seed, fact for fact: 张三 男 5月5日 业务员; 李四 女 10月3日 画师; 王五 男 12月19日 业务经理.
SEED_ZH = {
    "张三": ("男", "5月5日", 5, 5, "业务员"),
    "李四": ("女", "10月3日", 10, 3, "画师"),
    "王五": ("男", "12月19日", 12, 19, "业务经理"),
}
SEED_EN = {
    "Zhang San": ("male", "May 5", 5, 5, "Salesperson"),
    "Li Si": ("female", "October 3", 10, 3, "Illustrator"),
    "Wang Wu": ("male", "December 19", 12, 19, "Sales Manager"),
}


def _facts(record: dict) -> tuple:
    return tuple(record[k] for k in ("gender", "birthday", "birth_month", "birth_day", "position"))


def test_file_is_created_on_first_use_and_seeded(db_path):
    assert not db_path.exists()
    EmployeeDB(db_path)
    assert db_path.exists()
    with sqlite3.connect(db_path) as con:
        names = [r[0] for r in con.execute("SELECT name_zh FROM employees ORDER BY id")]
        assert con.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert names == ["张三", "李四", "王五"]
    before = db_path.stat().st_mtime_ns
    EmployeeDB(db_path)  # existing file is reused, not rewritten
    assert db_path.stat().st_mtime_ns == before


def test_the_seed_facts_in_both_languages(db_path):
    zh, en = EmployeeDB(db_path, "zh"), EmployeeDB(db_path, "en")
    for (name_zh, facts_zh), (name_en, facts_en) in zip(
        SEED_ZH.items(), SEED_EN.items(), strict=True
    ):
        for spelling in (name_zh, name_en):
            record = zh.lookup(spelling)
            assert record["name"] == name_zh and record["name_en"] == name_en
            assert _facts(record) == facts_zh
            record = en.lookup(spelling)
            assert record["name"] == name_en and record["name_zh"] == name_zh
            assert _facts(record) == facts_en
    assert zh.lookup("张三") == {
        "name": "张三",
        "name_en": "Zhang San",
        "gender": "男",
        "birthday": "5月5日",
        "birth_month": 5,
        "birth_day": 5,
        "position": "业务员",
    }
    for spelling in ("zhang san", "ZHANGSAN", "  Zhang   San "):
        assert zh.lookup(spelling) == zh.lookup("张三")


def test_the_seed_question_has_the_seed_answer(db_path):
    """The seed asks: 职工张三的生日是在今年10月份吗？现在是2月份，距离张三的生日还有几个月？
    Its answer: no, May 5; 3 months."""
    record = EmployeeDB(db_path).lookup("张三")
    assert record["birth_month"] != 10 and record["birthday"] == "5月5日"
    assert record["birth_month"] - 2 == 3


def test_not_found_and_bad_names_through_the_registry(db_path):
    reg = ToolRegistry([make_employee_db_tool(db_path, "zh")])
    assert reg.call("employee_db", {"name": "赵六"}).text == "查无此人"
    assert reg.call("employee_db", {"name": ""}).text == "查无此人"
    reg_en = ToolRegistry([make_employee_db_tool(db_path, "en")])
    assert reg_en.call("employee_db", {"name": "Zhao Liu"}).text == "No such employee: Zhao Liu"
    found = reg.call("employee_db", {"name": "张三"})
    assert json.loads(found.text)["birthday"] == "5月5日" and "业务员" in found.text
    assert reg.get("employee_db").name_for_human == "Employee Database"
    for bad in (None, ["张三"], {"name": "张三"}):
        res = reg.call("employee_db", {"name": bad})
        assert not res.ok and res.text.startswith("Error: employee_db.name "), res.text
        assert "string" in res.text
    with pytest.raises(TypeError, match="must be text"):
        EmployeeDB(db_path).lookup(None)  # type: ignore[arg-type]


def _old_version_file(path):
    """A database as versions before the seed-faithful data wrote it (no version stamp)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with sqlite3.connect(path) as con:
        con.execute(
            "CREATE TABLE employees (id INTEGER PRIMARY KEY, name_zh TEXT, name_en TEXT, "
            "name_key TEXT, gender_zh TEXT, gender_en TEXT, birthday TEXT, position_zh TEXT, "
            "position_en TEXT)"
        )
        con.execute(
            "INSERT INTO employees VALUES (1, '张三', 'Zhang San', 'zhangsan', '男', 'male', "
            "'1990-10-15', '软件工程师', 'Software Engineer')"
        )
    con.close()


def test_a_file_from_an_older_version_is_rebuilt_not_served(db_path):
    _old_version_file(db_path)
    record = EmployeeDB(db_path).lookup("张三")
    assert record["birthday"] == "5月5日" and record["position"] == "业务员"
    assert "1990" not in json.dumps(record, ensure_ascii=False)
    backup = db_path.with_name(db_path.name + ".old")
    with sqlite3.connect(backup) as con:  # the old file is kept beside it, not lost
        assert con.execute("SELECT birthday FROM employees").fetchone() == ("1990-10-15",)
    con.close()


def test_a_file_from_a_newer_version_is_refused_clearly(db_path):
    EmployeeDB(db_path)
    with sqlite3.connect(db_path) as con:
        con.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    con.close()
    with pytest.raises(EmployeeDBError, match="newer version"):
        EmployeeDB(db_path)


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
def test_sql_injection_finds_nothing(db_path, attack):
    assert EmployeeDB(db_path, "zh").lookup(attack) is None


def _writes_refused_during(call) -> list[str]:
    """Run call(); for each SQLite connection it queries through, try a write on it.

    A profile hook sees every C call; when one is a method of a sqlite3 Connection or Cursor,
    that connection is asked to CREATE TABLE. Returns one outcome per connection.
    """
    outcomes: list[tuple[sqlite3.Connection, str]] = []

    def probe(frame, event, arg):
        if event != "c_call":
            return
        owner = getattr(arg, "__self__", None)
        con = owner.connection if isinstance(owner, sqlite3.Cursor) else owner
        if isinstance(con, sqlite3.Connection) and all(c is not con for c, _ in outcomes):
            try:
                con.execute("CREATE TABLE probe (x)")
                outcomes.append((con, "wrote"))
            except sqlite3.Error as e:
                outcomes.append((con, str(e)))

    sys.setprofile(probe)
    try:
        call()
    finally:
        sys.setprofile(None)
    return [outcome for _, outcome in outcomes]


def test_lookups_read_through_a_connection_that_cannot_write(db_path):
    db = EmployeeDB(db_path)
    for name in ("张三", "张三'; DROP TABLE employees; --", "nobody"):
        outcomes = _writes_refused_during(lambda n=name: db.lookup(n))
        assert outcomes and all("readonly" in o for o in outcomes), outcomes
    with sqlite3.connect(db_path) as con:
        tables = [r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        assert tables == ["employees"]
        assert con.execute("SELECT count(*) FROM employees").fetchone()[0] == 3
    con.close()


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
    assert path.read_text() == "this is not a database"  # someone else's file: left alone


def test_default_path_follows_the_cache_env(monkeypatch, tmp_path):
    monkeypatch.setenv("QWEN_DEMO_CACHE", str(tmp_path / "cache"))
    assert default_db_path() == tmp_path / "cache" / "employees.sqlite"
    monkeypatch.delenv("QWEN_DEMO_CACHE")
    assert default_db_path().parts[-3:] == (".cache", "qwen-agent-demo", "employees.sqlite")


def test_bad_language_is_refused(db_path):
    with pytest.raises(ValueError, match="language"):
        EmployeeDB(db_path, "fr")  # type: ignore[arg-type]
