"""Example tool plugin: unit conversion (length, mass, temperature), fully offline.

Copy this file into your plugin folder and start the demo with `--tools-dir FOLDER` (or set
QWEN_DEMO_TOOLS_DIR). Every module-level function decorated with @tool becomes a tool; its
type hints and docstring become the schema the model sees.
"""

from __future__ import annotations

from typing import Literal

from tools import tool

# Factors to the base unit (metre, kilogram).
LENGTH = {
    "mm": 0.001,
    "cm": 0.01,
    "m": 1.0,
    "km": 1000.0,
    "in": 0.0254,
    "ft": 0.3048,
    "yd": 0.9144,
    "mi": 1609.344,
    "li": 500.0,  # 市里
    "chi": 1 / 3,  # 市尺
}
MASS = {
    "mg": 1e-6,
    "g": 0.001,
    "kg": 1.0,
    "t": 1000.0,
    "oz": 0.028349523125,
    "lb": 0.45359237,
    "jin": 0.5,  # 市斤
    "liang": 0.05,  # 两
}
TEMPERATURE = ("C", "F", "K")


def _to_kelvin(value: float, unit: str) -> float:
    if unit == "C":
        return value + 273.15
    if unit == "F":
        return (value - 32) * 5 / 9 + 273.15
    return value


def _from_kelvin(kelvin: float, unit: str) -> float:
    if unit == "C":
        return kelvin - 273.15
    if unit == "F":
        return (kelvin - 273.15) * 9 / 5 + 32
    return kelvin


@tool(name_for_human="Unit Converter", timeout=2.0)
def unit_convert(value: float, from_unit: str, to_unit: str) -> str:
    """Convert a length, mass or temperature between units.

    Length: mm, cm, m, km, in, ft, yd, mi, li, chi. Mass: mg, g, kg, t, oz, lb, jin, liang.
    Temperature: C, F, K.

    Args:
        value: The number to convert.
        from_unit: The unit of the value, e.g. "km", "lb" or "F".
        to_unit: The unit to convert to, e.g. "mi", "kg" or "C".
    """
    src, dst = from_unit.strip(), to_unit.strip()
    for table in (LENGTH, MASS):
        if src in table and dst in table:
            result = value * table[src] / table[dst]
            return f"{value:g} {src} = {result:.6g} {dst}"
    src_t, dst_t = src.upper().lstrip("°"), dst.upper().lstrip("°")
    if src_t in TEMPERATURE and dst_t in TEMPERATURE:
        kelvin = _to_kelvin(value, src_t)
        if kelvin < 0:
            raise ValueError(f"{value:g} {src} is below absolute zero")
        return f"{value:g} {src_t} = {_from_kelvin(kelvin, dst_t):.6g} {dst_t}"
    known = ", ".join([*LENGTH, *MASS, *TEMPERATURE])
    raise ValueError(f"cannot convert {src!r} to {dst!r}; both must be one kind of: {known}")


Kind = Literal["length", "mass", "temperature"]


@tool(name_for_human="Unit List", timeout=2.0)
def list_units(kind: Kind = "length") -> list[str]:
    """List the units unit_convert understands for one kind of quantity.

    Args:
        kind: Which quantity: "length", "mass" or "temperature".
    """
    return {"length": list(LENGTH), "mass": list(MASS), "temperature": list(TEMPERATURE)}[kind]
