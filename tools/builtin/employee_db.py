"""The seed's employee database, as a real SQLite file the agent can only read.

The file is created (and seeded) on first use; queries open it with `mode=ro` and bind the
name as a parameter, so neither a crafted name nor a confused model can change or dump it.
"""

from __future__ import annotations

import os
import re
import sqlite3
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal
from urllib.parse import quote

from llm.cache import cache_dir
from tools.registry import Tool, make_tool

Language = Literal["zh", "en"]


@dataclass(frozen=True)
class Employee:
    name_zh: str
    name_en: str
    gender_zh: str
    gender_en: str
    birthday: str  # ISO date
    position_zh: str
    position_en: str


# Zhang San's birthday is in October so the seed's question ("It is February now: how many
# months until his birthday?") has an answer.
SEED_EMPLOYEES: tuple[Employee, ...] = (
    Employee("张三", "Zhang San", "男", "male", "1990-10-15", "软件工程师", "Software Engineer"),
    Employee("李四", "Li Si", "女", "female", "1992-03-08", "产品经理", "Product Manager"),
    Employee("王五", "Wang Wu", "男", "male", "1988-07-22", "数据分析师", "Data Analyst"),
)

_SCHEMA = """
CREATE TABLE employees (
    id INTEGER PRIMARY KEY,
    name_zh TEXT NOT NULL UNIQUE,
    name_en TEXT NOT NULL,
    name_key TEXT NOT NULL UNIQUE,
    gender_zh TEXT NOT NULL,
    gender_en TEXT NOT NULL,
    birthday TEXT NOT NULL,
    position_zh TEXT NOT NULL,
    position_en TEXT NOT NULL
)
"""

_create_lock = threading.Lock()

# Questions about staff: an answer to them without a lookup is a guess.
NEEDED_WHEN = (
    r"(?i)employee|database|birthday|department|job title|position"
    r"|员工|职工|数据库|生日|职位|部门|工作"
)


class EmployeeDBError(RuntimeError):
    """The database file is missing, unreadable or not ours."""


def default_db_path() -> Path:
    """$QWEN_DEMO_CACHE/employees.sqlite, else ~/.cache/qwen-agent-demo/employees.sqlite."""
    return cache_dir() / "employees.sqlite"


def name_key(name: str) -> str:
    """Case- and space-insensitive key: "Zhang San", "zhangsan", "ZHANG  SAN" all match."""
    return re.sub(r"\s+", "", name).casefold()


def create_db(path: Path, employees: tuple[Employee, ...] = SEED_EMPLOYEES) -> Path:
    """Write a seeded database to `path` atomically (a temp file renamed into place)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".employees-", suffix=".sqlite", dir=path.parent)
    os.close(fd)
    try:
        with sqlite3.connect(tmp) as con:
            con.execute(_SCHEMA)
            con.executemany(
                "INSERT INTO employees (name_zh, name_en, name_key, gender_zh, gender_en, "
                "birthday, position_zh, position_en) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    (
                        e.name_zh,
                        e.name_en,
                        name_key(e.name_en),
                        e.gender_zh,
                        e.gender_en,
                        e.birthday,
                        e.position_zh,
                        e.position_en,
                    )
                    for e in employees
                ],
            )
        con.close()
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def ensure_db(path: Path | str | None = None) -> Path:
    """The database path, creating and seeding the file if it does not exist yet."""
    p = Path(path).expanduser() if path is not None else default_db_path()
    with _create_lock:
        if not p.exists():
            create_db(p)
    return p


def connect_readonly(path: Path) -> sqlite3.Connection:
    """A connection that cannot write (SQLite `mode=ro` URI)."""
    uri = f"file:{quote(str(path.resolve()))}?mode=ro"
    return sqlite3.connect(uri, uri=True)


class EmployeeDB:
    """Lookups by Chinese or English name against the read-only file."""

    def __init__(self, path: Path | str | None = None, language: Language = "zh"):
        if language not in ("zh", "en"):
            raise ValueError(f"language must be 'zh' or 'en', got {language!r}")
        self.path = ensure_db(path)
        self.language = language

    def lookup(self, name: str) -> dict[str, Any] | None:
        cleaned = name.strip()
        if not cleaned:
            return None
        try:
            con = connect_readonly(self.path)
            try:
                row = con.execute(
                    "SELECT name_zh, name_en, gender_zh, gender_en, birthday, position_zh, "
                    "position_en FROM employees WHERE name_zh = ? OR name_key = ?",
                    (cleaned, name_key(cleaned)),
                ).fetchone()
            finally:
                con.close()
        except sqlite3.Error as e:
            raise EmployeeDBError(f"employee database {self.path} is unreadable: {e}") from None
        if row is None:
            return None
        e = Employee(*row)
        if self.language == "zh":
            return {
                "name": e.name_zh,
                "name_en": e.name_en,
                "gender": e.gender_zh,
                "birthday": e.birthday,
                "position": e.position_zh,
            }
        return {
            "name": e.name_en,
            "name_zh": e.name_zh,
            "gender": e.gender_en,
            "birthday": e.birthday,
            "position": e.position_en,
        }

    def not_found(self, name: str) -> str:
        return "查无此人" if self.language == "zh" else f"No such employee: {name}"


def make_employee_db_tool(db_path: Path | str | None = None, language: Language = "zh") -> Tool:
    """The employee_db tool bound to one database file and answer language."""
    db = EmployeeDB(db_path, language)

    def employee_db(name: str) -> dict[str, Any] | str:
        """Look up a company employee by name: gender, birthday (YYYY-MM-DD) and position.

        Args:
            name: The employee's full name in Chinese (e.g. 张三) or pinyin (e.g. Zhang San).
        """
        found = db.lookup(name)
        return found if found is not None else db.not_found(name)

    return make_tool(
        employee_db,
        name="employee_db",
        name_for_human="Employee Database",
        timeout=10.0,
        needed_when=NEEDED_WHEN,
    )
