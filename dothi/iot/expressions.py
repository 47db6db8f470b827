"""A small, safe expression language for IoT attribute mappings.

It follows the JEXL subset that FIWARE IoT Agents accept in ``expression`` fields, so that
existing provisioning documents keep working: literals (numbers, strings, ``true``,
``false``, ``null``, ``[arrays]``, ``{objects}``), context variables, member access (``a.b``,
``a["b"]``, ``a[0]``), JEXL's operators *and its precedence* (``%`` and ``^`` bind tighter
than ``*``; ``&&`` and ``||`` share one level, left to right), ``c ? a : b``, and transforms
``value|name(args)`` from a fixed table.

Values behave as in JavaScript where mappings rely on it (truthiness, ``+`` joining strings,
``%`` taking the dividend's sign, a missing variable or member being ``null``) but are
strict elsewhere: arithmetic or ordering on ``null`` or non-numbers raises
:class:`ExpressionError` instead of yielding ``NaN``. Text is compiled once into a tree of
closures; nothing is re-parsed per message and Python's ``eval`` is never involved.
"""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Callable, Mapping
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, NamedTuple, NoReturn

import orjson

MAX_LENGTH = 1000
MAX_DEPTH = 50

Fn = Callable[[Mapping[str, Any]], Any]


class ExpressionError(ValueError):
    """A syntax error (``position`` is its 0-based offset) or an evaluation error."""

    def __init__(self, message: str, position: int | None = None) -> None:
        super().__init__(message if position is None else f"{message} at position {position}")
        self.position = position


class Expression:
    """A compiled expression: :meth:`evaluate` it once per message."""

    __slots__ = ("text", "names", "_fn")

    def __init__(self, text: str, names: frozenset[str], fn: Fn) -> None:
        self.text = text
        self.names = names  # top-level variables, to tell whether a message can feed it
        self._fn = fn

    def evaluate(self, context: Mapping[str, Any]) -> Any:
        try:
            return self._fn(context)
        except ExpressionError:
            raise
        except (TypeError, ValueError, ArithmeticError) as exc:
            # A safety net: anything the operators' own checks missed still reaches callers
            # as the one error type they handle.
            raise ExpressionError(f"cannot evaluate {self.text!r}: {exc}") from None

    def __repr__(self) -> str:
        return f"Expression({self.text!r})"


def compile_expression(text: str) -> Expression:
    """Parse ``text``; a syntax error raises :class:`ExpressionError` with its position."""
    if len(text) > MAX_LENGTH:
        raise ExpressionError(f"expression is longer than {MAX_LENGTH} characters")
    if not text.strip():
        raise ExpressionError("expression is empty")
    parser = _Parser(text)
    node = parser.expression(0)
    if parser.peek().kind != "end":
        parser.fail("unexpected", parser.peek())
    return Expression(text, frozenset(parser.names), node.fn)


# --- syntax ------------------------------------------------------------------------------

class _Token(NamedTuple):
    kind: str  # "num", "str", "name", "op" (including the keyword "in") or "end"
    value: Any
    pos: int


class _Node(NamedTuple):
    fn: Fn
    depth: int  # bounded, so evaluating the closures cannot exhaust Python's stack


_TOKEN = re.compile(r"""(?P<space>\s+)
  | (?P<num>\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)
  | (?P<str>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')
  | (?P<op>in(?![\w$])|//|==|!=|<=|>=|&&|\|\||[-+*/%^<>!?:.\[\](){},|])
  | (?P<name>[A-Za-z_$][\w$]*)""", re.VERBOSE | re.DOTALL | re.ASCII)
_ESCAPE = re.compile(r"\\(u[0-9a-fA-F]{4}|.)", re.DOTALL)
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "b": "\b", "f": "\f", "0": "\0"}
_LITERALS = {"true": True, "false": False, "null": None}
_PRECEDENCE = {"||": 10, "&&": 10, "==": 20, "!=": 20, "<": 20, "<=": 20, ">": 20, ">=": 20,
               "in": 20, "+": 30, "-": 30, "*": 40, "/": 40, "//": 40, "%": 50, "^": 50}


def _unescape(match: re.Match[str]) -> str:
    code = match.group(1)
    return chr(int(code[1:], 16)) if len(code) == 5 else _ESCAPES.get(code, code)


def _tokenize(text: str) -> list[_Token]:
    tokens: list[_Token] = []
    pos = 0
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if match is None:
            what = "unterminated string" if text[pos] in "'\"" else f"unexpected {text[pos]!r}"
            raise ExpressionError(what, pos)
        kind, raw = str(match.lastgroup), match.group()
        if kind == "num":
            number = int(raw) if raw.isdigit() else float(raw)
            if isinstance(number, float) and not math.isfinite(number):
                raise ExpressionError(f"number {raw} is out of range", pos)
            tokens.append(_Token(kind, number, pos))
        elif kind == "str":
            tokens.append(_Token(kind, _ESCAPE.sub(_unescape, raw[1:-1]), pos))
        elif kind != "space":
            tokens.append(_Token(kind, raw, pos))
        pos = match.end()
    tokens.append(_Token("end", None, len(text)))
    return tokens


class _Parser:
    """Precedence climbing over the tokens, building closures as it goes."""

    def __init__(self, text: str) -> None:
        self.tokens = _tokenize(text)
        self.index = 0
        self.nesting = 0
        self.names: set[str] = set()

    def fail(self, message: str, token: _Token) -> NoReturn:
        shown = "end of expression" if token.kind == "end" else repr(token.value)
        raise ExpressionError(f"{message} {shown}", token.pos)

    def peek(self) -> _Token:
        return self.tokens[self.index]

    def at(self, op: str) -> bool:
        return self.tokens[self.index][:2] == ("op", op)

    def take(self, op: str | None = None, kind: str = "op", what: str = "") -> _Token:
        token = self.tokens[self.index]
        if (op is not None and token[:2] != ("op", op)) or (kind != "op" and token.kind != kind):
            self.fail(f"expected {what or repr(op)} but found", token)
        self.index += 1
        return token

    def node(self, fn: Fn, children: list[_Node], pos: int) -> _Node:
        depth = 1 + max((child.depth for child in children), default=0)
        if depth > MAX_DEPTH:
            raise ExpressionError(f"expression is nested more than {MAX_DEPTH} deep", pos)
        return _Node(fn, depth)

    def expression(self, min_prec: int) -> _Node:
        self.nesting += 1
        if self.nesting > MAX_DEPTH:  # before recursing further, to protect the parser too
            raise ExpressionError(f"expression is nested more than {MAX_DEPTH} deep",
                                  self.peek().pos)
        left = self.unary()
        while True:
            token = self.peek()
            op = token.value if token.kind == "op" else ""
            if op == "?" and min_prec == 0:
                self.take()
                yes = self.expression(0)
                self.take(":")
                no = self.expression(0)
                fn = _ternary(left.fn, yes.fn, no.fn)
                left = self.node(fn, [left, yes, no], token.pos)
                continue
            prec = _PRECEDENCE.get(op, 0)
            if prec <= min_prec:
                break
            self.take()
            right = self.expression(prec)
            left = self.node(_binary(op, left.fn, right.fn), [left, right], token.pos)
        self.nesting -= 1
        return left

    def unary(self) -> _Node:
        prefixes: list[_Token] = []
        while self.at("-") or self.at("!"):  # a loop, not recursion: "!!!!…" is cheap
            prefixes.append(self.take())
        node = self.postfix(self.primary())
        for token in reversed(prefixes):
            node = self.node(_prefix(token.value, node.fn), [node], token.pos)
        return node

    def postfix(self, node: _Node) -> _Node:
        while True:
            token = self.peek()
            if self.at("."):
                self.take()
                name = self.take(kind="name", what="a name after '.'")
                node = self.node(_member(node.fn, _const(name.value)), [node], token.pos)
            elif self.at("["):
                self.take()
                key = self.expression(0)
                self.take("]")
                node = self.node(_member(node.fn, key.fn), [node, key], token.pos)
            elif self.at("|"):
                self.take()
                node = self.transform(node)
            else:
                return node

    def transform(self, subject: _Node) -> _Node:
        name = self.take(kind="name", what="a transform name after '|'")
        if name.value not in _TRANSFORMS:
            self.fail("unknown transform", name)
        func, least, most = _TRANSFORMS[name.value]
        args = self.sequence("(", ")") if self.at("(") else []
        if not least <= len(args) <= most:
            wanted = str(least) if least == most else f"{least} to {most}"
            raise ExpressionError(f"transform {name.value!r} takes {wanted} argument(s), "
                                  f"got {len(args)}", name.pos)
        first, rest = subject.fn, [arg.fn for arg in args]
        return self.node(lambda ctx: func(first(ctx), *[f(ctx) for f in rest]),
                         [subject, *args], name.pos)

    def sequence(self, open_: str, close: str) -> list[_Node]:
        self.take(open_)
        items: list[_Node] = []
        while not self.at(close):
            if items:
                self.take(",")
            items.append(self.expression(0))
        self.take()
        return items

    def primary(self) -> _Node:
        token = self.peek()
        if token.kind in ("num", "str"):
            self.take(kind=token.kind)
            return _Node(_const(token.value), 1)
        if token.kind == "name":
            self.take(kind="name")
            if token.value in _LITERALS:
                return _Node(_const(_LITERALS[token.value]), 1)
            name: str = token.value
            self.names.add(name)
            return _Node(lambda ctx: ctx.get(name), 1)
        if self.at("("):
            self.take()
            inner = self.expression(0)
            self.take(")")
            return inner
        if self.at("["):
            items = self.sequence("[", "]")
            fns = [item.fn for item in items]
            return self.node(lambda ctx: [f(ctx) for f in fns], items, token.pos)
        if not self.at("{"):
            self.fail("unexpected", token)
        self.take()
        keys: list[str] = []
        values: list[_Node] = []
        while not self.at("}"):
            if keys:
                self.take(",")
            key = self.take()
            if key.kind not in ("name", "str"):
                self.fail("expected an object key but found", key)
            self.take(":")
            keys.append(key.value)
            values.append(self.expression(0))
        self.take()
        pairs = list(zip(keys, [value.fn for value in values]))
        return self.node(lambda ctx: {k: f(ctx) for k, f in pairs}, values, token.pos)


# --- semantics ---------------------------------------------------------------------------

def _const(value: Any) -> Fn:
    return lambda ctx: value


def _prefix(op: str, operand: Fn) -> Fn:
    if op == "!":
        return lambda ctx: not _truthy(operand(ctx))
    return lambda ctx: -_num(operand(ctx), "unary '-'")


def _ternary(cond: Fn, yes: Fn, no: Fn) -> Fn:
    return lambda ctx: yes(ctx) if _truthy(cond(ctx)) else no(ctx)


def _member(obj: Fn, key: Fn) -> Fn:
    return lambda ctx: _lookup(obj(ctx), key(ctx))


def _binary(op: str, left: Fn, right: Fn) -> Fn:
    if op == "&&":
        return lambda ctx: right(ctx) if _truthy(value := left(ctx)) else value
    if op == "||":
        return lambda ctx: value if _truthy(value := left(ctx)) else right(ctx)
    apply = _OPERATORS[op]
    return lambda ctx: apply(left(ctx), right(ctx))


def _lookup(obj: Any, key: Any) -> Any:
    # As in JEXL, a missing member (or a member of null) is null rather than an error, so
    # optional parts of a payload can be tested with ``==`` or ``?:``.
    if isinstance(obj, Mapping):
        return obj.get(key if isinstance(key, str) else _to_str(key))
    if isinstance(obj, (list, str)) and _is_num(key) and key == int(key) \
            and 0 <= key < len(obj):
        return obj[int(key)]
    return None


def _truthy(value: Any) -> bool:
    # JavaScript truthiness: empty arrays and objects are true, unlike in Python.
    if isinstance(value, (int, float, str)) or value is None:
        return bool(value) and value == value
    return True


def _is_num(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _describe(value: Any) -> str:
    if value is None or isinstance(value, bool):
        return "null" if value is None else "a boolean"
    if isinstance(value, str):
        return f"the string {value!r}"
    if _is_num(value):
        return f"the number {value}"
    return "an array" if isinstance(value, list) else "an object" if isinstance(
        value, Mapping) else f"a {type(value).__name__}"


def _num(value: Any, what: str) -> int | float:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return value
    raise ExpressionError(f"{what} needs a number, got {_describe(value)}")


def _finite(value: int | float) -> int | float:
    if isinstance(value, float) and not math.isfinite(value):
        raise ExpressionError("numeric result is out of range")
    return value


def _whole(value: float) -> int | float:
    # Integral results print as JavaScript would (2, not 2.0) in the entity.
    return int(value) if value.is_integer() and abs(value) < 2 ** 53 else value


def _to_str(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return str(_whole(value)) if abs(value) < 1e21 else repr(value)
    if isinstance(value, int):
        return str(value)
    if value is None:
        raise ExpressionError("cannot make a string of null")
    return orjson.dumps(value).decode()


def _arith(symbol: str, apply: Callable[[Any, Any], Any]) -> Callable[[Any, Any], Any]:
    def run(a: Any, b: Any) -> Any:
        x, y = _num(a, repr(symbol)), _num(b, repr(symbol))
        if y == 0 and symbol in ("/", "//", "%"):
            raise ExpressionError("division by zero")
        try:
            result = apply(x, y)
        except OverflowError:
            result = math.inf
        if isinstance(result, float) and not math.isfinite(result):
            raise ExpressionError(f"numeric result of {symbol!r} is out of range")
        return result
    return run


def _divide(x: int | float, y: int | float) -> int | float:
    return x // y if isinstance(x, int) and isinstance(y, int) and x % y == 0 else x / y


def _modulo(x: int | float, y: int | float) -> int | float:
    if isinstance(x, int) and isinstance(y, int):
        rest = abs(x) % abs(y)  # JavaScript's remainder takes the sign of the dividend
        return -rest if x < 0 else rest
    return math.fmod(x, y)


def _power(x: int | float, y: int | float) -> int | float:
    # Always through floats: an integer power could take unbounded time and memory.
    result = math.pow(x, y)
    return _whole(result) if isinstance(x, int) and isinstance(y, int) and y >= 0 else result


def _add(a: Any, b: Any) -> Any:
    if isinstance(a, str) or isinstance(b, str):
        return _to_str(a) + _to_str(b)
    return _sum(a, b)


def _equal(a: Any, b: Any) -> bool:
    if a is None or b is None:
        return a is b
    # Python's True == 1 would surprise here.
    return isinstance(a, bool) == isinstance(b, bool) and bool(a == b)


def _order(test: Callable[[Any, Any], bool], symbol: str) -> Callable[[Any, Any], bool]:
    def compare(a: Any, b: Any) -> bool:
        if (_is_num(a) and _is_num(b)) or (isinstance(a, str) and isinstance(b, str)):
            return test(a, b)
        raise ExpressionError(f"cannot compare {_describe(a)} {symbol} {_describe(b)}")
    return compare


def _contains(a: Any, b: Any) -> bool:
    if isinstance(b, str):
        return _to_str(a) in b
    if isinstance(b, list):
        return any(_equal(a, item) for item in b)
    return isinstance(b, Mapping) and a in b


_sum = _arith("+", operator.add)
_OPERATORS: dict[str, Callable[[Any, Any], Any]] = {
    "+": _add, "-": _arith("-", operator.sub), "*": _arith("*", operator.mul),
    "/": _arith("/", _divide), "%": _arith("%", _modulo), "^": _arith("^", _power),
    "//": _arith("//", lambda x, y: math.floor(x / y) if isinstance(x, float)
                 or isinstance(y, float) else x // y),
    "==": _equal, "!=": lambda a, b: not _equal(a, b), "in": _contains,
    "<": _order(operator.lt, "<"), "<=": _order(operator.le, "<="),
    ">": _order(operator.gt, ">"), ">=": _order(operator.ge, ">="),
}


# --- transforms --------------------------------------------------------------------------

def _whole_arg(value: Any, what: str, low: int, high: int) -> int:
    if isinstance(value, int) and not isinstance(value, bool) and low <= value <= high:
        return value
    shown = value if _is_num(value) else _describe(value)
    raise ExpressionError(f"{what} must be a whole number from {low} to {high}, got {shown}")


def _round(value: Any, digits: Any = 0) -> int | float:
    places = _whole_arg(digits, "round's digits", 0, 15)
    number = _finite(_num(value, "round"))
    if isinstance(number, int):
        return number
    # Through the shortest decimal form, so 1.005 rounds to 1.01 as a reader expects, and
    # halves away from zero (Python's round() goes to even).
    exact = Decimal(repr(number)).quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)
    return int(exact) if places == 0 else float(exact)


_FLOAT_PREFIX = re.compile(r"\s*([+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)")
_DIGITS = "0123456789abcdefghijklmnopqrstuvwxyz"


def _parse_float(value: Any) -> int | float:
    if _is_num(value):
        return _num(value, "number")
    match = _FLOAT_PREFIX.match(value) if isinstance(value, str) else None
    if match is None:
        raise ExpressionError(f"cannot read a number from {_describe(value)}")
    return _whole(_finite(float(match.group(1))))


def _parse_int(value: Any, radix: Any = 10) -> int:
    base = _whole_arg(radix, "parseInt's radix", 2, 36)
    if _is_num(value):
        return math.trunc(_finite(_num(value, "parseInt")))
    text = value.strip().lower() if isinstance(value, str) else ""
    sign = -1 if text.startswith("-") else 1
    text = text[1:] if text[:1] in ("+", "-") else text
    text = text[2:] if base == 16 and text.startswith("0x") else text
    end = 0
    while end < len(text) and text[end] in _DIGITS[:base]:
        end += 1  # like JavaScript, read the longest valid prefix ("12px" is 12)
    if end == 0:
        raise ExpressionError(f"cannot read an integer from {_describe(value)}")
    return sign * int(text[:end], base)


def _substr(value: Any, start: Any, length: Any = None) -> str:
    text, first = _to_str(value), int(_num(start, "substr"))
    first = max(len(text) + first, 0) if first < 0 else first
    if length is None:
        return text[first:]
    return text[first:first + max(int(_num(length, "substr")), 0)]


def _index_of(value: Any, item: Any) -> int:
    if isinstance(value, list):
        return next((i for i, x in enumerate(value) if _equal(x, item)), -1)
    return _to_str(value).find(_to_str(item))


def _extreme(pick: Callable[[list[int | float]], int | float], name: str
             ) -> Callable[..., int | float]:
    def transform(value: Any, *others: Any) -> int | float:
        # Over an array (``a|max``) or over the subject and the arguments (``t|max(0)``).
        items = value if isinstance(value, list) and not others else [value, *others]
        if not items:
            raise ExpressionError(f"{name} of an empty array")
        return pick([_num(item, name) for item in items])
    return transform


def _clamp(value: Any, low: Any, high: Any) -> int | float:
    number, lo, hi = _num(value, "clamp"), _num(low, "clamp"), _num(high, "clamp")
    if lo > hi:
        raise ExpressionError(f"clamp's bounds are reversed: {lo} > {hi}")
    return min(max(number, lo), hi)


def _text(method: Callable[..., Any]) -> Callable[..., Any]:
    return lambda value, *args: method(_to_str(value), *(_to_str(arg) for arg in args))


# name: (function, fewest and most arguments after the subject)
_TRANSFORMS: dict[str, tuple[Callable[..., Any], int, int]] = {
    "round": (_round, 0, 1),
    "floor": (lambda v: math.floor(_finite(_num(v, "floor"))), 0, 0),
    "ceil": (lambda v: math.ceil(_finite(_num(v, "ceil"))), 0, 0),
    "abs": (lambda v: abs(_num(v, "abs")), 0, 0),
    "toFixed": (lambda v, n=0: f"{_num(v, 'toFixed'):.{_whole_arg(n, 'toFixed', 0, 20)}f}",
                0, 1),
    "number": (_parse_float, 0, 0), "parseFloat": (_parse_float, 0, 0),
    "parsefloat": (_parse_float, 0, 0),
    "parseInt": (_parse_int, 0, 1), "parseint": (_parse_int, 0, 1),
    "toString": (_to_str, 0, 0), "tostring": (_to_str, 0, 0),
    "lowercase": (_text(str.lower), 0, 0), "toLowerCase": (_text(str.lower), 0, 0),
    "uppercase": (_text(str.upper), 0, 0), "toUpperCase": (_text(str.upper), 0, 0),
    "trim": (_text(str.strip), 0, 0),
    "substr": (_substr, 1, 2),
    # IoT Agents' replacestr replaces the first occurrence only, as JavaScript's replace.
    "replace": (_text(str.replace), 2, 2), "replaceallstr": (_text(str.replace), 2, 2),
    "replacestr": (_text(lambda s, a, b: s.replace(a, b, 1)), 2, 2),
    "split": (_text(lambda s, sep: list(s) if sep == "" else s.split(sep)), 1, 1),
    "length": (lambda v: len(v) if isinstance(v, (list, Mapping)) else len(_to_str(v)), 0, 0),
    "indexOf": (_index_of, 1, 1),
    "min": (_extreme(min, "min"), 0, MAX_LENGTH), "max": (_extreme(max, "max"), 0, MAX_LENGTH),
    "clamp": (_clamp, 2, 2),
}
