"""A calculator that walks a parsed `ast` tree: arithmetic only, never eval/exec.

The original Qwen example ran `eval(formula)`, so a model (or a user steering it) could run
any code. Here only numbers, arithmetic operators, a few math functions and constants are
understood; everything else is refused with a message the model can act on. Limits on
length, nesting, exponents and result size keep `9**9**9**9` from hanging the app.
"""

from __future__ import annotations

import ast
import math
import operator
import re
import unicodedata
from collections.abc import Callable
from typing import Any

from tools.registry import Tool, make_tool

MAX_EXPRESSION_CHARS = 500
MAX_DEPTH = 40
MAX_NODES = 400
MAX_INT_BITS = 12_000  # ~3600 digits: below Python's 4300-digit str() limit
MAX_EXPONENT = 10_000
MAX_FACTORIAL = 1000
MAX_FLOAT = 1e300

Number = int | float


# Arithmetic in the question: an answer computed in the model's head is often wrong.
NEEDED_WHEN = (
    r"(?i)\d\s*[-+*/×÷^%]\s*\(?\d|\d+\s*(times|plus|minus|divided|percent|by|%|to the power)"
    r"|[乘除加减]|次方|平方根|折后|square root|\bdivide\b|\bcompute\b|\bcalculat"
)


class CalculatorError(ValueError):
    """Bad or unsafe expression; the message is written for the model."""


def _check(value: Any) -> Number:
    """Reject results that are too large, complex or not finite."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise CalculatorError(f"result {value!r} is not a real number")
    if isinstance(value, int):
        if value.bit_length() > MAX_INT_BITS:
            raise CalculatorError("result is too large (more than ~3600 digits)")
        return value
    if math.isnan(value):
        raise CalculatorError("result is not a number (NaN)")
    if math.isinf(value) or abs(value) > MAX_FLOAT:
        raise CalculatorError("result is too large")
    return value


def _power(base: Number, exp: Number) -> Number:
    """`**` with the size of the result estimated before computing it."""
    if isinstance(exp, int) and abs(exp) > MAX_EXPONENT and abs(base) > 1:
        raise CalculatorError(f"exponent {exp} is too large (limit {MAX_EXPONENT})")
    if isinstance(base, int) and isinstance(exp, int) and exp > 0 and abs(base) > 1:
        if exp * math.log2(abs(base)) > MAX_INT_BITS:
            raise CalculatorError("result is too large (more than ~3600 digits)")
    if isinstance(base, float) or isinstance(exp, float):
        if base < 0 and not float(exp).is_integer():
            raise CalculatorError("a negative number to a fractional power is not real")
        if base == 0 and exp < 0:
            raise CalculatorError("division by zero (0 to a negative power)")
        try:
            return math.pow(base, exp)
        except OverflowError:
            raise CalculatorError("result is too large") from None
    if base == 0 and exp < 0:
        raise CalculatorError("division by zero (0 to a negative power)")
    return base**exp


def _int_arg(x: Number, what: str, limit: int) -> int:
    if isinstance(x, float):
        if not x.is_integer():
            raise CalculatorError(f"{what} needs a whole number, got {x}")
        x = int(x)
    if x < 0 or x > limit:
        raise CalculatorError(f"{what} needs a whole number from 0 to {limit}, got {x}")
    return x


def _factorial(x: Number) -> int:
    return math.factorial(_int_arg(x, "factorial", MAX_FACTORIAL))


def _round(x: Number, ndigits: Number | None = None) -> Number:
    if ndigits is None:
        return round(x)
    if isinstance(ndigits, float) and not ndigits.is_integer():
        raise CalculatorError("round() digits must be a whole number")
    n = int(ndigits)
    if abs(n) > 100:
        raise CalculatorError("round() digits must be between -100 and 100")
    return round(x, n)


def _log(x: Number, base: Number | None = None) -> float:
    return math.log(x) if base is None else math.log(x, base)


def _minmax(fn: Callable[..., Number]) -> Callable[..., Number]:
    def call(*args: Number) -> Number:
        if not args:
            raise CalculatorError(f"{fn.__name__}() needs at least one number")
        return fn(args)

    return call


# name -> (function, smallest and largest number of arguments)
FUNCTIONS: dict[str, tuple[Callable[..., Number], int, int]] = {
    "sqrt": (math.sqrt, 1, 1),
    "sin": (math.sin, 1, 1),
    "cos": (math.cos, 1, 1),
    "tan": (math.tan, 1, 1),
    "asin": (math.asin, 1, 1),
    "acos": (math.acos, 1, 1),
    "atan": (math.atan, 1, 1),
    "log": (_log, 1, 2),
    "ln": (math.log, 1, 1),
    "log10": (math.log10, 1, 1),
    "log2": (math.log2, 1, 1),
    "exp": (math.exp, 1, 1),
    "abs": (abs, 1, 1),
    "round": (_round, 1, 2),
    "floor": (math.floor, 1, 1),
    "ceil": (math.ceil, 1, 1),
    "min": (_minmax(min), 1, 20),
    "max": (_minmax(max), 1, 20),
    "pow": (_power, 2, 2),
    "factorial": (_factorial, 1, 1),
    "degrees": (math.degrees, 1, 1),
    "radians": (math.radians, 1, 1),
    "hypot": (math.hypot, 1, 20),
}
CONSTANTS: dict[str, float] = {"pi": math.pi, "e": math.e, "tau": math.tau}


def _div(a: Number, b: Number) -> Number:
    if b == 0:
        raise CalculatorError("division by zero")
    return a / b


def _floordiv(a: Number, b: Number) -> Number:
    if b == 0:
        raise CalculatorError("division by zero")
    return a // b


def _mod(a: Number, b: Number) -> Number:
    if b == 0:
        raise CalculatorError("modulo by zero")
    return a % b


_BINARY: dict[type, Callable[[Number, Number], Number]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: _div,
    ast.FloorDiv: _floordiv,
    ast.Mod: _mod,
    ast.Pow: _power,
}
_UNARY: dict[type, Callable[[Number], Number]] = {ast.UAdd: operator.pos, ast.USub: operator.neg}

_REFUSED: dict[type, str] = {
    ast.Attribute: "attribute access",
    ast.Subscript: "subscripts",
    ast.Lambda: "lambdas",
    ast.ListComp: "comprehensions",
    ast.SetComp: "comprehensions",
    ast.DictComp: "comprehensions",
    ast.GeneratorExp: "comprehensions",
    ast.List: "lists",
    ast.Tuple: "tuples",
    ast.Dict: "dicts",
    ast.Set: "sets",
    ast.Compare: "comparisons",
    ast.BoolOp: "boolean operators",
    ast.IfExp: "conditional expressions",
    ast.NamedExpr: "assignments",
    ast.JoinedStr: "strings",
    ast.Starred: "star arguments",
    ast.Await: "await",
}


_SUPERSCRIPT = str.maketrans("⁰¹²³⁴⁵⁶⁷⁸⁹⁺⁻⁽⁾", "0123456789+-()")
_SUPERSCRIPT_RUN = re.compile("[⁰¹²³⁴⁵⁶⁷⁸⁹⁺⁻⁽⁾]+")
_VULGAR = "¼½¾⅐⅑⅒⅓⅔⅕⅖⅗⅘⅙⅚⅛⅜⅝⅞"
# "3½" is a mixed number (3.5); a fraction after a decimal ("0.5½") is refused below.
_MIXED = re.compile(rf"(?<![\d.])(\d+)?([{_VULGAR}])")
_SYMBOLS = {
    "×": "*",
    "÷": "/",
    "−": "-",  # minus sign
    "–": "-",  # en dash, as typed for minus
    "·": "*",
    "⋅": "*",
    "∗": "*",
    "∕": "/",
    "⁄": "/",  # fraction slash
    "π": "pi",
}


def _fraction(match: re.Match[str]) -> str:
    num, den = unicodedata.normalize("NFKC", match.group(2)).split("⁄")
    whole = match.group(1)
    return f"({whole}+{num}/{den})" if whole else f"({num}/{den})"


def normalize(expression: str) -> str:
    """Accept what people and models write, each character with its written meaning.

    Full-width forms (`１２＋３`, `（）`) become ASCII; superscripts are exponents (`3²` ->
    `3**(2)`, `10⁻³` -> `10**(-3)`); vulgar fractions are fractions (`½`, `3½` = 3.5); `×`,
    `÷`, the minus sign, `^` and `π` are operators and pi. Unicode's NFKC is not used: it
    turns `3²` into `32` and `①` into `1`, a different number. Any other non-ASCII character
    is refused by name.
    """
    chars = []
    for ch in expression:
        code = ord(ch)
        if 0xFF01 <= code <= 0xFF5E:  # full-width ASCII
            ch = chr(code - 0xFEE0)
        elif ch != " " and unicodedata.category(ch) == "Zs":  # ideographic / no-break spaces
            ch = " "
        chars.append(ch)
    text = "".join(chars)
    text = _SUPERSCRIPT_RUN.sub(lambda m: f"**({m.group().translate(_SUPERSCRIPT)})", text)
    text = _MIXED.sub(_fraction, text)
    for src, dst in _SYMBOLS.items():
        text = text.replace(src, dst)
    text = text.replace("^", "**")
    for ch in text:
        if not (ch.isascii() and (ch.isprintable() or ch in "\t\n\r")):
            name = unicodedata.name(ch, "unnamed character")
            raise CalculatorError(
                f"unsupported character {ch!r} (U+{ord(ch):04X} {name}); write the expression "
                "with digits, + - * / ** ( ) and the listed functions"
            )
    return text.strip().rstrip("=").strip()


class _Evaluator:
    def __init__(self) -> None:
        self.nodes = 0

    def eval(self, node: ast.AST, depth: int = 0) -> Number:
        self.nodes += 1
        if self.nodes > MAX_NODES:
            raise CalculatorError(f"expression is too long (over {MAX_NODES} parts)")
        if depth > MAX_DEPTH:
            raise CalculatorError(f"expression is nested too deeply (limit {MAX_DEPTH})")
        if isinstance(node, ast.Constant):
            v = node.value
            if isinstance(v, bool) or not isinstance(v, int | float):
                kind = "strings" if isinstance(v, str | bytes) else type(v).__name__
                raise CalculatorError(f"only numbers are allowed, not {kind}: {v!r}"[:200])
            return _check(v)
        if isinstance(node, ast.BinOp):
            op = _BINARY.get(type(node.op))
            if op is None:
                raise CalculatorError(f"operator {type(node.op).__name__} is not supported")
            left = self.eval(node.left, depth)  # a long chain 1+2+...+n is not nesting
            right = self.eval(node.right, depth + 1)
            return _check(op(left, right))
        if isinstance(node, ast.UnaryOp):
            uop = _UNARY.get(type(node.op))
            if uop is None:
                raise CalculatorError(f"operator {type(node.op).__name__} is not supported")
            return _check(uop(self.eval(node.operand, depth + 1)))
        if isinstance(node, ast.Name):
            if node.id in CONSTANTS:
                return CONSTANTS[node.id]
            if node.id in FUNCTIONS:
                raise CalculatorError(f"{node.id} is a function: call it like {node.id}(2)")
            raise CalculatorError(f"unknown name {node.id!r}; allowed constants: pi, e, tau")
        if isinstance(node, ast.Call):
            return self._call(node, depth)
        what = _REFUSED.get(type(node), type(node).__name__)
        raise CalculatorError(f"not allowed in a calculation: {what}")

    def _call(self, node: ast.Call, depth: int) -> Number:
        if not isinstance(node.func, ast.Name) or node.func.id not in FUNCTIONS:
            name = ast.unparse(node.func)[:60]
            raise CalculatorError(
                f"calling {name!r} is not allowed; allowed functions: {', '.join(FUNCTIONS)}"
            )
        fn, lo, hi = FUNCTIONS[node.func.id]
        if node.keywords:
            raise CalculatorError(f"{node.func.id}() takes no keyword arguments")
        if not lo <= len(node.args) <= hi:
            count = str(lo) if lo == hi else f"{lo} to {hi}"
            raise CalculatorError(f"{node.func.id}() takes {count} argument(s)")
        args = [self.eval(a, depth + 1) for a in node.args]
        try:
            return _check(fn(*args))
        except CalculatorError:
            raise
        except OverflowError:
            raise CalculatorError(f"{node.func.id}(): result is too large") from None
        except (ValueError, ZeroDivisionError) as e:
            raise CalculatorError(f"{node.func.id}(): {e}") from None


def format_number(value: Number) -> str:
    """Ints exactly; floats to 15 significant digits (0.1 + 0.2 -> 0.3)."""
    if isinstance(value, int):
        return str(value)
    if value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return format(value, ".15g")


def evaluate(expression: str) -> Number:
    """Evaluate an arithmetic expression; raises CalculatorError for anything else."""
    if not isinstance(expression, str):
        raise CalculatorError("the expression must be text")
    if len(expression) > MAX_EXPRESSION_CHARS:
        raise CalculatorError(f"expression is too long (limit {MAX_EXPRESSION_CHARS} characters)")
    text = normalize(expression)
    if not text:
        raise CalculatorError("the expression is empty")
    try:
        tree = ast.parse(text, mode="eval")
    except SyntaxError as e:
        raise CalculatorError(f"cannot parse {text!r}: {e.msg}") from None
    except (ValueError, RecursionError, MemoryError):
        raise CalculatorError(f"cannot parse {text!r}") from None
    try:
        return _Evaluator().eval(tree.body)
    except CalculatorError:
        raise
    except ZeroDivisionError:
        raise CalculatorError("division by zero") from None
    except OverflowError:
        raise CalculatorError("result is too large") from None
    except (ValueError, TypeError, RecursionError, MemoryError) as e:
        raise CalculatorError(f"cannot evaluate {text!r}: {e}"[:300]) from None


def calculator(expression: str) -> str:
    """Evaluate an arithmetic expression and return the number.

    Supports + - * / // % ** (or ^), parentheses, decimals, the constants pi, e and tau, and
    the functions sqrt, sin, cos, tan, asin, acos, atan, log (natural, or log(x, base)), ln,
    log10, log2, exp, abs, round, floor, ceil, min, max, pow, factorial, degrees, radians,
    hypot. Angles are in radians.

    Args:
        expression: The arithmetic expression, for example "(3 + 4) * 2 ** 3" or "sqrt(2) / 2".
    """
    return format_number(evaluate(expression))


def make_calculator_tool() -> Tool:
    return make_tool(
        calculator,
        name="calculator",
        name_for_human="Calculator",
        timeout=5.0,
        needed_when=NEEDED_WHEN,
    )
