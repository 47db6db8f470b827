"""The NGSI-LD query language ``q`` (clause 4.9) and scope query language ``scopeQ`` (clause 4.19).

Parsing only: text in, a small immutable AST out, ``BadRequestData`` for anything malformed.
The store turns the AST into SQL (``dothi.store.sqlite_filters``); names stay short terms here
because expanding them needs the request's @context, which the parser never sees.

Grammar accepted for ``q`` (a superset of the ABNF in clause 4.9, see notes)::

    Query     = OrExpr
    OrExpr    = AndExpr *("|" AndExpr)              ; AND binds tighter than OR
    AndExpr   = Primary *(";" Primary)
    Primary   = "(" OrExpr ")" / QueryTerm          ; parentheses may nest
    QueryTerm = Attribute [Operator Value]
    Attribute = Name *("." Name) *("[" Member *("." Member) "]")

Notes on leniency, all deliberate:
  * whitespace between tokens is ignored (never inside a name or an unquoted value);
  * ``attr[a][b]`` (older editions) is read as ``attr[a.b]``;
  * an unquoted bare word (``gender==Male``) is accepted as a term, because clause 4.9 example
    12 relies on it for VocabProperty values; it compares as a string;
  * dateTime literals may carry a UTC offset; they are normalised to the stored form
    ``YYYY-MM-DDThh:mm:ss.sssZ``. The comma decimal separator of clause 4.6.3 is not accepted
    here: in ``q`` a comma separates list values, so ``...00,5Z`` would be ambiguous.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import date, datetime, time, timezone
from functools import lru_cache
from typing import Any, Union

import regex

from dothi.errors import BadRequestData, TooComplexQuery

# Operators, longest first so ">=" is never read as ">" followed by a stray "=".
EQ, NE, GT, GE, LT, LE, MATCH, NO_MATCH = "==", "!=", ">", ">=", "<", "<=", "~=", "!~="
_OPERATORS = (NO_MATCH, MATCH, EQ, NE, GE, LE, GT, LT)
ORDERING_OPS = frozenset({GT, GE, LT, LE})

# Literal kinds.
NUMBER, STRING, BOOLEAN = "number", "string", "boolean"
DATETIME, DATE, TIME = "dateTime", "date", "time"
URI, TERM = "uri", "term"  # unquoted; both compare as strings
COMPARABLE_KINDS = frozenset({NUMBER, STRING, DATETIME, DATE, TIME})

# Attribute members a dotted path may name instead of a sub-attribute; these are never
# expanded against the @context and end the path.
META_MEMBERS = frozenset(
    {"observedAt", "createdAt", "modifiedAt", "deletedAt", "unitCode", "datasetId", "objectType"}
)

_MAX_DEPTH = 32  # parentheses; keeps hostile input away from Python's recursion limit


@dataclass(frozen=True)
class Literal:
    kind: str  # one of NUMBER, STRING, BOOLEAN, DATETIME, DATE, TIME, URI, TERM
    value: int | float | str | bool


@dataclass(frozen=True)
class Range:
    """``low..high``, both ends included."""

    low: Literal
    high: Literal


@dataclass(frozen=True)
class ValueList:
    items: tuple[Literal, ...]


@dataclass(frozen=True)
class Pattern:
    """A regular expression (Python ``re`` syntax, searched anywhere in the string)."""

    source: str


@dataclass(frozen=True)
class AttrPath:
    names: tuple[str, ...]  # the attribute, then sub-attributes (all short terms)
    meta: str | None = None  # a META_MEMBERS name ending the path, e.g. "observedAt"
    member: tuple[str, ...] = ()  # trailing [..] path inside the value, never expanded

    @property
    def attr(self) -> str:
        return self.names[0]


@dataclass(frozen=True)
class Term:
    path: AttrPath
    op: str | None = None  # None: existence test
    value: Literal | Range | ValueList | Pattern | None = None


@dataclass(frozen=True)
class And:
    items: tuple[QExpr, ...]


@dataclass(frozen=True)
class Or:
    items: tuple[QExpr, ...]


QExpr = Union[Term, And, Or]


@dataclass(frozen=True)
class ScopePattern:
    """``/a/+/c`` or ``/a/#``; ``+`` stands for exactly one level."""

    levels: tuple[str, ...]
    descendants: bool = False  # trailing "/#": this scope and everything below


@dataclass(frozen=True)
class ScopeAnd:
    items: tuple[ScopeExpr, ...]


@dataclass(frozen=True)
class ScopeOr:
    items: tuple[ScopeExpr, ...]


ScopeExpr = Union[ScopePattern, ScopeAnd, ScopeOr]


# The longest one value may keep a client's regular expression busy. Python's engine
# backtracks, and some patterns ((a+)+$ on a long run of a's) would take it years.
PATTERN_TIMEOUT_S = 0.05


class ClientPattern:
    """A client's regular expression (q's ``~=``, idPattern), matched with a time limit
    per value: past it, ``search`` raises TooComplexQuery."""

    def __init__(self, compiled: regex.Pattern[str]) -> None:
        self._compiled = compiled
        self.pattern: str = compiled.pattern

    def search(self, text: str) -> regex.Match[str] | None:
        try:
            return self._compiled.search(text, timeout=PATTERN_TIMEOUT_S)
        except TimeoutError:
            raise TooComplexQuery(
                f"The regular expression {self.pattern!r} took more than "
                f"{PATTERN_TIMEOUT_S * 1000:.0f} ms on one value: simplify it "
                "(nested repetition such as (a+)+ backtracks without end)") from None


@lru_cache(maxsize=512)
def _compile(source: str) -> ClientPattern | str:
    try:
        # The regex module reads Python's own syntax (its VERSION0) and can time out.
        return ClientPattern(regex.compile(source))
    except (regex.error, RecursionError, OverflowError) as err:
        return str(err)


def compile_pattern(source: str) -> ClientPattern:
    """Compile a client regular expression, or say clearly why it is not one."""
    compiled = _compile(source)
    if isinstance(compiled, str):
        raise BadRequestData(f"Invalid regular expression {source!r}: {compiled}")
    return compiled


def attribute_names(expr: QExpr) -> set[str]:
    """Top-level attribute terms a ``q`` expression reads (for projections and watchers)."""
    if isinstance(expr, Term):
        return {expr.path.attr}
    names: set[str] = set()
    for item in expr.items:
        names |= attribute_names(item)
    return names


# --- lexical pieces -------------------------------------------------------------------------

_NAME = re.compile(r"[^\W\d][\w:\-]*")
_MEMBER = re.compile(r"[^\s.\[\]{}()\"';|,=!<>~]+")
# An unquoted value runs to a delimiter; ".." ends it too so that "1..5" is a range.
_RAW_VALUE = re.compile(r"(?:[^\s,;|()\".]|\.(?!\.))+")
_NUMBER = re.compile(r"-?(?:0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?")
_DATETIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,9})?(?:Z|[+-]\d{2}:?\d{2})?")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_TIME = re.compile(r"(\d{2}:\d{2}:\d{2})(?:\.(\d{1,9}))?Z?")
_URI = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*:[^\s\"<>\\^`{}|]+")
_BARE = re.compile(r"[^\W\d][\w\-]*")
_SCOPE_LEVEL = re.compile(r"[^\s/#+;|,()]+")


def _normalize_datetime(text: str) -> str:
    # Stored timestamps are UTC with milliseconds; matching that form keeps string
    # comparison chronological and lets equality find "...00Z" stored as "...00.000Z".
    clean = text
    if clean.endswith("Z"):
        clean = clean[:-1] + "+00:00"
    dt = datetime.fromisoformat(clean)
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    dt = dt.astimezone(timezone.utc)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


def _normalize_time(whole: str, fraction: str | None) -> str:
    t = time.fromisoformat(whole)
    millis = (fraction or "").ljust(3, "0")[:3]
    return t.strftime("%H:%M:%S.") + millis + "Z"


class _Reader:
    """Cursor handling and the boolean layer (``;``, ``|``, parentheses) of both languages."""

    or_tokens: tuple[str, ...] = ("|",)
    and_type: type = And
    or_type: type = Or

    def __init__(self, text: str, what: str) -> None:
        self.text = text
        self.pos = 0
        self.what = what
        self.depth = 0

    def parse_leaf(self) -> Any:
        raise NotImplementedError

    def parse_or(self) -> Any:
        items = [self.parse_and()]
        while any(self.take(token) for token in self.or_tokens):
            items.append(self.parse_and())
        return join(self.or_type, items)

    def parse_and(self) -> Any:
        items = [self.parse_primary()]
        while self.take(";"):
            items.append(self.parse_primary())
        return join(self.and_type, items)

    def parse_primary(self) -> Any:
        if not self.take("("):
            return self.parse_leaf()
        self.depth += 1
        if self.depth > _MAX_DEPTH:
            raise self.fail(f"parentheses nest deeper than {_MAX_DEPTH}")
        expr = self.parse_or()
        if not self.take(")"):
            raise self.fail("missing ')'")
        self.depth -= 1
        return expr

    def fail(self, message: str, at: int | None = None) -> BadRequestData:
        where = self.pos if at is None else at
        return BadRequestData(
            f"Invalid {self.what} {self.text!r}: {message} (at character {where + 1})"
        )

    def skip_ws(self) -> None:
        while self.pos < len(self.text) and self.text[self.pos].isspace():
            self.pos += 1

    def peek(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def take(self, token: str) -> bool:
        self.skip_ws()
        if self.text.startswith(token, self.pos):
            self.pos += len(token)
            return True
        return False

    def at_term_end(self) -> bool:
        self.skip_ws()
        return self.peek() in ("", ";", "|", ")")

    def finish(self) -> None:
        self.skip_ws()
        if self.pos < len(self.text):
            if self.peek() == ")":
                raise self.fail("unbalanced ')'")
            raise self.fail(f"unexpected {self.peek()!r}")


# --- q ---------------------------------------------------------------------------------------


class _QParser(_Reader):
    def parse_leaf(self) -> Term:
        path = self.parse_path()
        if self.at_term_end():
            return Term(path)
        op = self.read_operator()
        self.skip_ws()
        value: Literal | Range | ValueList | Pattern
        if op in (MATCH, NO_MATCH):
            value = Pattern(self.read_pattern())
        elif op in (EQ, NE):
            value = self.read_equality_value()
        else:
            value = self.read_ordering_value(op)
        if not self.at_term_end():
            raise self.fail(f"unexpected {self.peek()!r} after the value")
        return Term(path, op, value)

    def parse_path(self) -> AttrPath:
        self.skip_ws()
        names = [self.read_name()]
        while self.peek() == ".":
            self.pos += 1
            names.append(self.read_name())
        if self.peek() == "{":
            raise self.fail("linked entity paths (attr{...}) are not supported")
        member: list[str] = []
        while self.peek() == "[":
            self.pos += 1
            member.append(self.read_member())
            while self.peek() == ".":
                self.pos += 1
                member.append(self.read_member())
            if self.peek() != "]":
                raise self.fail("missing ']' after the value path")
            self.pos += 1
        meta = None
        for index, name in enumerate(names[1:], start=1):
            if name in META_MEMBERS:
                if index != len(names) - 1 or member:
                    raise self.fail(f"{name!r} has no members; it must end the attribute path")
                meta = name
                names = names[:-1]
        return AttrPath(tuple(names), meta, tuple(member))

    def read_name(self) -> str:
        match = _NAME.match(self.text, self.pos)
        if not match:
            found = repr(self.peek()) if self.peek() else "the end"
            raise self.fail(f"expected an attribute name, found {found}")
        self.pos = match.end()
        return match.group()

    def read_member(self) -> str:
        match = _MEMBER.match(self.text, self.pos)
        if not match:
            raise self.fail("expected a member name inside [...]")
        self.pos = match.end()
        return match.group()

    def read_operator(self) -> str:
        for op in _OPERATORS:
            if self.text.startswith(op, self.pos):
                self.pos += len(op)
                return op
        if self.peek() == "=":
            raise self.fail("'=' is not an operator, use '=='")
        raise self.fail(f"expected an operator or ';', '|', ')' but found {self.peek()!r}")

    def read_pattern(self) -> str:
        if self.peek() == '"':
            source = self.read_quoted_raw().replace('\\"', '"')
        else:
            source = self.read_unquoted_pattern()
        if not source:
            raise self.fail("missing regular expression")
        compile_pattern(source)
        return source

    def read_unquoted_pattern(self) -> str:
        # The pattern ends at the first ';', '|' or ')' outside any group or class of the
        # regex itself, so "(a|b)" stays whole while a top-level '|' is the OR operator.
        start, i, depth, in_class = self.pos, self.pos, 0, False
        text = self.text
        while i < len(text):
            c = text[i]
            if c == "\\":
                i += 2
                continue
            if in_class:
                in_class = c != "]"
            elif c == "[":
                in_class = True
                # A ']' right after '[' or '[^' is a literal member of the class.
                if text.startswith("^]", i + 1):
                    i += 2
                elif text.startswith("]", i + 1):
                    i += 1
            elif c == "(":
                depth += 1
            elif c == ")":
                if depth == 0:
                    break
                depth -= 1
            elif c in ";|" and depth == 0:
                break
            i += 1
        self.pos = min(i, len(text))
        return text[start : self.pos].rstrip()

    def read_quoted_raw(self) -> str:
        """Return the text between double quotes, escapes untouched."""
        start = self.pos
        i = start + 1
        while i < len(self.text):
            c = self.text[i]
            if c == "\\":
                i += 2
                continue
            if c == '"':
                self.pos = i + 1
                return self.text[start + 1 : i]
            i += 1
        raise self.fail("unterminated string", start)

    def read_scalar(self) -> Literal:
        self.skip_ws()
        start = self.pos
        if self.peek() == '"':
            raw = self.read_quoted_raw()
            try:
                return Literal(STRING, json.loads('"' + raw + '"', strict=False))
            except ValueError:
                raise self.fail("invalid escape sequence in string", start) from None
        match = _RAW_VALUE.match(self.text, self.pos)
        if not match:
            found = repr(self.peek()) if self.peek() else "the end"
            raise self.fail(f"expected a value, found {found}")
        self.pos = match.end()
        return self.classify(match.group(), start)

    def classify(self, token: str, start: int) -> Literal:
        if token in ("true", "false"):
            return Literal(BOOLEAN, token == "true")
        number = _NUMBER.fullmatch(token)
        if number:
            if number.group(1) is None and number.group(2) is None:
                return Literal(NUMBER, int(token))
            value = float(token)
            if value in (float("inf"), float("-inf")):
                raise self.fail(f"number {token} is out of range", start)
            return Literal(NUMBER, value)
        try:
            if _DATETIME.fullmatch(token):
                return Literal(DATETIME, _normalize_datetime(token))
            if _DATE.fullmatch(token):
                return Literal(DATE, date.fromisoformat(token).isoformat())
            moment = _TIME.fullmatch(token)
            if moment:
                return Literal(TIME, _normalize_time(moment.group(1), moment.group(2)))
        except ValueError:
            raise self.fail(f"{token!r} is not a valid date or time", start) from None
        if _URI.fullmatch(token):
            return Literal(URI, token)
        if _BARE.fullmatch(token):
            return Literal(TERM, token)
        raise self.fail(f"invalid value {token!r} (strings must be in double quotes)", start)

    def read_equality_value(self) -> Literal | Range | ValueList:
        first = self.read_scalar()
        if self.take(".."):
            at = self.pos
            second = self.read_scalar()
            for end in (first, second):
                if end.kind not in COMPARABLE_KINDS:
                    raise self.fail(f"a range needs numbers, strings, dates or times, "
                                    f"not {end.kind}", at)
            if first.kind != second.kind:
                raise self.fail(f"range ends differ in type ({first.kind}..{second.kind})", at)
            if first.value > second.value:  # type: ignore[operator]
                raise self.fail("range minimum is greater than its maximum", at)
            if self.take(",") or self.take(".."):
                raise self.fail("a range cannot be combined with other values")
            return Range(first, second)
        items = [first]
        while self.take(","):
            items.append(self.read_scalar())
            if self.take(".."):
                raise self.fail("a range cannot be part of a value list")
        return first if len(items) == 1 else ValueList(tuple(items))

    def read_ordering_value(self, op: str) -> Literal:
        value = self.read_scalar()
        if value.kind not in COMPARABLE_KINDS:
            raise self.fail(f"operator {op} needs a number, quoted string, date, time or "
                            f"dateTime, not a {value.kind}")
        self.skip_ws()
        if self.peek() == "," or self.text.startswith("..", self.pos):
            raise self.fail("value lists and ranges are only allowed with == and !=")
        return value


def quote(text: str) -> str:
    """``text`` as a q string literal: in double quotes, its backslashes and quotes
    escaped, so that no value can end the literal and add terms of its own."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def join(kind: type, items: list[Any]) -> Any:
    """``items`` under one ``kind`` (And or Or), an item of that kind merged into it; one
    item alone is itself."""
    if len(items) == 1:
        return items[0]
    flat: list[Any] = []
    for item in items:
        # (a;b);c is a;b;c: flattening keeps the SQL shallow without changing the meaning.
        flat.extend(getattr(item, "items") if isinstance(item, kind) else (item,))
    return kind(tuple(flat))


def _parse(parser_type: type[_Reader], text: str, what: str) -> Any:
    if not isinstance(text, str) or not text.strip():
        raise BadRequestData(f"Invalid {what}: the query is empty")
    parser = parser_type(text, what)
    expr = parser.parse_or()
    parser.finish()
    return expr


def parse_q(text: str) -> QExpr:
    """Parse an (already percent-decoded) ``q`` value."""
    return _parse(_QParser, text, "q")


# --- scopeQ ----------------------------------------------------------------------------------


class _ScopeParser(_Reader):
    or_tokens = ("|", ",")  # clause 4.19 allows ',' as another spelling of OR
    and_type = ScopeAnd
    or_type = ScopeOr

    def parse_leaf(self) -> ScopePattern:
        self.skip_ws()
        if self.peek() != "/":
            found = repr(self.peek()) if self.peek() else "the end"
            raise self.fail(f"a scope starts with '/', found {found}")
        levels: list[str] = []
        while self.peek() == "/":
            self.pos += 1
            if self.peek() == "#":
                self.pos += 1
                if not self.at_level_end(slash=False):
                    raise self.fail("'#' may only end a scope")
                return ScopePattern(tuple(levels), True)
            if self.peek() == "+":
                self.pos += 1
                if not self.at_level_end(slash=True):
                    raise self.fail("'+' must stand alone as a scope level")
                levels.append("+")
                continue
            match = _SCOPE_LEVEL.match(self.text, self.pos)
            if not match:
                raise self.fail("empty or invalid scope level")
            levels.append(match.group())
            self.pos = match.end()
        if self.peek() in ("#", "+"):
            raise self.fail(f"'{self.peek()}' must stand alone as a scope level")
        return ScopePattern(tuple(levels), False)

    def at_level_end(self, slash: bool) -> bool:
        c = self.peek()
        return c in ("", ";", "|", ",", ")") or c.isspace() or (slash and c == "/")


def parse_scope_q(text: str) -> ScopeExpr:
    """Parse an (already percent-decoded) ``scopeQ`` value."""
    return _parse(_ScopeParser, text, "scopeQ")
