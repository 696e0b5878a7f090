"""The seed's employee database, as a real SQLite file the agent can only read.

The data is the seed's, fact for fact: 张三 男 5月5日 业务员; 李四 女 10月3日 画师;
王五 男 12月19日 业务经理. The seed gives month and day only, no year, so that is what is
stored. The file is created (and seeded) on first use and stamped with SCHEMA_VERSION; a file
left by an older version (other data, other columns) is rebuilt, never served stale. Queries
open it with `mode=ro` and bind the name as a parameter, so neither a crafted name nor a
confused model can change or dump it.
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

# Bump when SEED_EMPLOYEES or _SCHEMA change: older files are then rebuilt on first use.
# 0: files from before the stamp (birthdays 1990-10-15 ...); 1: the seed's data.
SCHEMA_VERSION = 1

MONTHS_EN = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)


@dataclass(frozen=True)
class Employee:
    name_zh: str
    name_en: str
    gender_zh: str
    gender_en: str
    birth_month: int
    birth_day: int
    position_zh: str
    position_en: str


SEED_EMPLOYEES: tuple[Employee, ...] = (
    Employee("张三", "Zhang San", "男", "male", 5, 5, "业务员", "Salesperson"),
    Employee("李四", "Li Si", "女", "female", 10, 3, "画师", "Illustrator"),
    Employee("王五", "Wang Wu", "男", "male", 12, 19, "业务经理", "Sales Manager"),
)

_SCHEMA = """
CREATE TABLE employees (
    id INTEGER PRIMARY KEY,
    name_zh TEXT NOT NULL UNIQUE,
    name_en TEXT NOT NULL,
    name_key TEXT NOT NULL UNIQUE,
    gender_zh TEXT NOT NULL,
    gender_en TEXT NOT NULL,
    birth_month INTEGER NOT NULL CHECK (birth_month BETWEEN 1 AND 12),
    birth_day INTEGER NOT NULL CHECK (birth_day BETWEEN 1 AND 31),
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


def birthday_text(month: int, day: int, language: Language) -> str:
    """The birthday as the seed writes it: "5月5日", or "May 5" in English."""
    return f"{month}月{day}日" if language == "zh" else f"{MONTHS_EN[month - 1]} {day}"


def create_db(path: Path, employees: tuple[Employee, ...] = SEED_EMPLOYEES) -> Path:
    """Write a seeded, version-stamped database to `path` atomically (temp file renamed)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".employees-", suffix=".sqlite", dir=path.parent)
    os.close(fd)
    try:
        with sqlite3.connect(tmp) as con:
            con.execute(_SCHEMA)
            con.executemany(
                "INSERT INTO employees (name_zh, name_en, name_key, gender_zh, gender_en, "
                "birth_month, birth_day, position_zh, position_en) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    (
                        e.name_zh,
                        e.name_en,
                        name_key(e.name_en),
                        e.gender_zh,
                        e.gender_en,
                        e.birth_month,
                        e.birth_day,
                        e.position_zh,
                        e.position_en,
                    )
                    for e in employees
                ],
            )
            con.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        con.close()
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def connect_readonly(path: Path) -> sqlite3.Connection:
    """A connection that cannot write (SQLite `mode=ro` URI)."""
    uri = f"file:{quote(str(path.resolve()))}?mode=ro"
    return sqlite3.connect(uri, uri=True)


def _file_version(path: Path) -> int:
    """The file's SCHEMA_VERSION stamp; EmployeeDBError if it is not a readable database."""
    try:
        con = connect_readonly(path)
        try:
            (version,) = con.execute("PRAGMA user_version").fetchone()
            con.execute("SELECT count(*) FROM employees").fetchone()
        finally:
            con.close()
    except sqlite3.Error as e:
        raise EmployeeDBError(f"employee database {path} is unreadable: {e}") from None
    return int(version)


def ensure_db(path: Path | str | None = None) -> Path:
    """The database path, creating it if missing and rebuilding it if an older version wrote it.

    An older file is kept beside the new one as `<name>.old`. A file that is not a readable
    employee database is left alone; lookups then report it as unreadable.
    """
    p = Path(path).expanduser() if path is not None else default_db_path()
    with _create_lock:
        if not p.exists():
            create_db(p)
            return p
        try:
            version = _file_version(p)
        except EmployeeDBError:
            return p
        if version < SCHEMA_VERSION:
            os.replace(p, p.with_name(p.name + ".old"))
            create_db(p)
        elif version > SCHEMA_VERSION:
            raise EmployeeDBError(
                f"employee database {p} was written by a newer version of this app "
                f"(schema {version}, this one reads {SCHEMA_VERSION}); move it away to rebuild it"
            )
    return p


class EmployeeDB:
    """Lookups by Chinese or English name against the read-only file."""

    def __init__(self, path: Path | str | None = None, language: Language = "zh"):
        if language not in ("zh", "en"):
            raise ValueError(f"language must be 'zh' or 'en', got {language!r}")
        self.path = ensure_db(path)
        self.language = language

    def lookup(self, name: str) -> dict[str, Any] | None:
        """The employee's record in the DB's language, or None when there is no such name."""
        if not isinstance(name, str):
            raise TypeError(f"the employee's name must be text, got {name!r}")
        cleaned = name.strip()
        if not cleaned:
            return None
        try:
            con = connect_readonly(self.path)
            try:
                row = con.execute(
                    "SELECT name_zh, name_en, gender_zh, gender_en, birth_month, birth_day, "
                    "position_zh, position_en FROM employees WHERE name_zh = ? OR name_key = ?",
                    (cleaned, name_key(cleaned)),
                ).fetchone()
            finally:
                con.close()
        except sqlite3.Error as e:
            raise EmployeeDBError(f"employee database {self.path} is unreadable: {e}") from None
        if row is None:
            return None
        e = Employee(*row)
        zh = self.language == "zh"
        record: dict[str, Any] = {"name": e.name_zh if zh else e.name_en}
        record["name_en" if zh else "name_zh"] = e.name_en if zh else e.name_zh
        record["gender"] = e.gender_zh if zh else e.gender_en
        record["birthday"] = birthday_text(e.birth_month, e.birth_day, self.language)
        record["birth_month"] = e.birth_month
        record["birth_day"] = e.birth_day
        record["position"] = e.position_zh if zh else e.position_en
        return record

    def not_found(self, name: str) -> str:
        return "查无此人" if self.language == "zh" else f"No such employee: {name}"


def make_employee_db_tool(db_path: Path | str | None = None, language: Language = "zh") -> Tool:
    """The employee_db tool bound to one database file and answer language."""
    db = EmployeeDB(db_path, language)

    def employee_db(name: str) -> dict[str, Any] | str:
        """Look up a company employee by name: gender, birthday (month and day) and position.

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
