"""CQL2 text (OGC 21-065r2, the BNF of its Annex B) read into pygeofilter's syntax tree,
the tree its CQL2 JSON reader gives too, so that one translation (``dothi.gis.cql``)
serves both encodings.

This reader is dothi's own because pygeofilter 0.4.0's text grammar departs from the
standard where it matters: it gives AND and OR the same precedence and reads
``a OR b AND c`` as ``(a OR b) AND c`` (the standard, like SQL, binds AND tighter), it
refuses NOT before a parenthesised condition, a one-letter property name and the doubled
quote of a character literal (``'it''s'``); and at about 0.4 ms for a filter with one
polygon it was a fifth of an OGC items request.

Read: boolean expressions (AND, OR, NOT, parentheses, TRUE, FALSE); comparisons
(=, <>, <, <=, >, >=); [NOT] LIKE, with CASEI on both sides for a case-insensitive
match; [NOT] BETWEEN; [NOT] IN; IS [NOT] NULL; property names, bare or in double quotes;
numbers, character literals and booleans; the spatial functions S_* of two geometry
expressions; WKT geometry literals (POINT, LINESTRING, POLYGON, their MULTI forms and
GEOMETRYCOLLECTION, each with an optional Z) and BBOX. Keywords are case-insensitive.
Temporal and array predicates, arithmetic, DATE, TIMESTAMP and INTERVAL are refused by
name; anything else is a syntax error that gives its position."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from pygeofilter import ast, values

_TOKEN = re.compile(r"""
    (?P<ws>\s+)
  | (?P<number>(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?)
  | (?P<string>'(?:''|\\'|[^'])*')
  | (?P<quoted>"[^"]+")
  | (?P<name>[^\W\d][\w:.]*)
  | (?P<op><>|<=|>=|!=|[=<>(),+\-*/%^])
""", re.VERBOSE)

SPATIAL = {"S_INTERSECTS": ast.GeometryIntersects, "S_EQUALS": ast.GeometryEquals,
           "S_DISJOINT": ast.GeometryDisjoint, "S_TOUCHES": ast.GeometryTouches,
           "S_WITHIN": ast.GeometryWithin, "S_OVERLAPS": ast.GeometryOverlaps,
           "S_CROSSES": ast.GeometryCrosses, "S_CONTAINS": ast.GeometryContains}
COMPARISONS = {"=": ast.Equal, "<>": ast.NotEqual, "<": ast.LessThan, "<=": ast.LessEqual,
               ">": ast.GreaterThan, ">=": ast.GreaterEqual}
# Geometry type -> how deep lists nest in its GeoJSON coordinates (0: one position).
GEOMETRIES = {"POINT": ("Point", 0), "LINESTRING": ("LineString", 1),
              "POLYGON": ("Polygon", 2), "MULTIPOINT": ("MultiPoint", 1),
              "MULTILINESTRING": ("MultiLineString", 2), "MULTIPOLYGON": ("MultiPolygon", 3)}
TEMPORAL = {"T_AFTER", "T_BEFORE", "T_CONTAINS", "T_DISJOINT", "T_DURING", "T_EQUALS",
            "T_FINISHEDBY", "T_FINISHES", "T_INTERSECTS", "T_MEETS", "T_METBY",
            "T_OVERLAPPEDBY", "T_OVERLAPS", "T_STARTEDBY", "T_STARTS"}
ARRAY = {"A_EQUALS", "A_CONTAINS", "A_CONTAINEDBY", "A_OVERLAPS"}
FUNCTIONS = {"CASEI", "ACCENTI"}  # read as functions of their argument
KEYWORDS = {"AND", "OR", "NOT", "LIKE", "BETWEEN", "IN", "IS", "NULL", "TRUE", "FALSE",
            "BBOX", "GEOMETRYCOLLECTION", "DATE", "TIMESTAMP", "INTERVAL", *SPATIAL,
            *GEOMETRIES, *TEMPORAL, *ARRAY}


class Unsupported(ValueError):
    """Valid CQL2 that dothi does not evaluate."""


class _Token:
    __slots__ = ("kind", "text", "pos", "word")

    def __init__(self, kind: str, text: str, pos: int) -> None:
        self.kind, self.text, self.pos = kind, text, pos
        upper = text.upper() if kind == "name" else ""
        self.word = upper if upper in KEYWORDS or upper in FUNCTIONS else ""


def _tokens(text: str) -> list[_Token]:
    out: list[_Token] = []
    pos = 0
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if match is None:
            raise ValueError(f"unexpected {text[pos]!r} at position {pos + 1}")
        kind = match.lastgroup
        assert kind is not None
        if kind != "ws":
            out.append(_Token(kind, match.group(), pos))
        pos = match.end()
    out.append(_Token("end", "", len(text)))
    return out


def parse(text: str) -> Any:
    """The filter ``text`` as a pygeofilter AST. ValueError (Unsupported for valid CQL2
    that dothi does not evaluate) says what is wrong and where."""
    reader = _Reader(_tokens(text))
    node = reader.boolean()
    reader.expect_end()
    return node


class _Reader:
    def __init__(self, tokens: list[_Token]) -> None:
        self.tokens = tokens
        self.at = 0
        self.depth = 0

    # -- tokens -------------------------------------------------------------------------------

    def peek(self) -> _Token:
        return self.tokens[self.at]

    def next(self) -> _Token:
        token = self.tokens[self.at]
        self.at += 1
        return token

    def take(self, text: str) -> bool:
        """Move past the next token if it is the operator or keyword ``text``."""
        token = self.tokens[self.at]
        if token.word == text or token.kind == "op" and token.text == text:
            self.at += 1
            return True
        return False

    def expect(self, text: str) -> None:
        if not self.take(text):
            raise self.error(f"expected {text}")

    def error(self, what: str, token: _Token | None = None) -> ValueError:
        token = token or self.peek()
        found = "the end" if token.kind == "end" else repr(token.text)
        return ValueError(f"{what} at position {token.pos + 1}, found {found}")

    def listed(self, read: Callable[[], Any]) -> list[Any]:
        """``read`` once, then again after each comma, up to the closing parenthesis."""
        items = [read()]
        while self.take(","):
            items.append(read())
        self.expect(")")
        return items

    def expect_end(self) -> None:
        if self.peek().kind != "end":
            raise self.error("expected AND, OR or the end")

    # -- boolean expressions --------------------------------------------------------------------

    def boolean(self) -> Any:
        """booleanExpression = booleanTerm {OR booleanTerm}"""
        node = self.term()
        while self.take("OR"):
            node = ast.Or(node, self.term())
        return node

    def term(self) -> Any:
        """booleanTerm = booleanFactor {AND booleanFactor}"""
        node = self.factor()
        while self.take("AND"):
            node = ast.And(node, self.factor())
        return node

    def factor(self) -> Any:
        """booleanFactor = [NOT] booleanPrimary"""
        if self.take("NOT"):
            return ast.Not(self.primary())
        return self.primary()

    def primary(self) -> Any:
        token = self.peek()
        if token.kind == "op" and token.text == "(":
            self.depth += 1
            if self.depth > 32:
                raise self.error("parentheses nest deeper than 32")
            self.at += 1
            node = self.boolean()
            self.expect(")")
            self.depth -= 1
            return node
        if token.word in ("TRUE", "FALSE") and self._after_is_boolean_end():
            self.at += 1
            return ast.Include(token.word == "FALSE")
        if token.word in SPATIAL:
            self.at += 1
            self.expect("(")
            lhs = self.geometry_expression()
            self.expect(",")
            rhs = self.geometry_expression()
            self.expect(")")
            return SPATIAL[token.word](lhs, rhs)
        if token.word in TEMPORAL:
            raise Unsupported(f"temporal predicates ({token.text}) are not supported")
        if token.word in ARRAY:
            raise Unsupported(f"array predicates ({token.text}) are not supported")
        return self.predicate()

    def _after_is_boolean_end(self) -> bool:
        following = self.tokens[self.at + 1]
        return following.kind == "end" or following.word in ("AND", "OR") or \
            following.kind == "op" and following.text == ")"

    # -- predicates -----------------------------------------------------------------------------

    def predicate(self) -> Any:
        lhs = self.scalar()
        token = self.peek()
        if token.kind == "op" and token.text in COMPARISONS:
            self.at += 1
            return COMPARISONS[token.text](lhs, self.scalar())
        if token.kind == "op" and token.text == "!=":
            raise self.error("CQL2 writes 'not equal' as <>")
        negated = self.take("NOT")
        if self.take("LIKE"):
            return self.like(lhs, negated)
        if self.take("BETWEEN"):
            low = self.scalar()
            self.expect("AND")
            return ast.Between(lhs, low, self.scalar(), negated)
        if self.take("IN"):
            self.expect("(")
            return ast.In(lhs, self.listed(self.scalar), negated)
        if not negated and self.take("IS"):
            not_null = self.take("NOT")
            self.expect("NULL")
            return ast.IsNull(lhs, not_null)
        raise self.error("expected a comparison (=, <>, <, <=, >, >=, LIKE, BETWEEN, IN "
                         "or IS NULL)")

    def like(self, lhs: Any, negated: bool) -> Any:
        token = self.peek()
        nocase = self.take("CASEI")
        if nocase:
            self.expect("(")
        pattern = self.next()
        if pattern.kind != "string":
            raise self.error("LIKE takes a character literal as its pattern", pattern)
        if nocase:
            self.expect(")")
            if not (isinstance(lhs, ast.Function) and lhs.name == "casei" and
                    len(lhs.arguments) == 1):
                raise self.error("a CASEI pattern needs CASEI on the property too", token)
            lhs = lhs.arguments[0]
        return ast.Like(lhs, _string(pattern.text), nocase, "%", "_", "\\", negated)

    # -- scalar expressions ---------------------------------------------------------------------

    def scalar(self) -> Any:
        token = self.next()
        value: Any
        if token.kind == "number":
            value = _number(token.text)
        elif token.kind == "op" and token.text == "-" and self.peek().kind == "number":
            value = -_number(self.next().text)
        elif token.kind == "string":
            value = _string(token.text)
        elif token.kind == "quoted":
            value = ast.Attribute(token.text[1:-1])
        elif token.word in ("TRUE", "FALSE"):
            value = token.word == "TRUE"
        elif token.word in ("DATE", "TIMESTAMP", "INTERVAL"):
            raise Unsupported(f"temporal literals ({token.text}) are not supported")
        elif token.kind == "name" and token.word not in KEYWORDS:
            if self.take("("):
                value = ast.Function(token.text.lower(),
                                     [] if self.take(")") else self.listed(self.scalar))
            else:
                value = ast.Attribute(token.text)
        else:
            raise self.error("expected a property, a number, a 'character literal', TRUE "
                             "or FALSE", token)
        following = self.peek()
        if following.kind == "op" and following.text in "+-*/%^":
            raise Unsupported("arithmetic is not supported")
        return value

    # -- geometries -----------------------------------------------------------------------------

    def geometry_expression(self) -> Any:
        token = self.peek()
        if token.word in GEOMETRIES or token.word == "GEOMETRYCOLLECTION":
            return values.Geometry(self.geometry())
        if token.word == "BBOX":
            self.at += 1
            self.expect("(")
            numbers = self.listed(self.signed_number)
            if len(numbers) not in (4, 6):
                raise self.error("BBOX takes 4 or 6 numbers", token)
            return ast.Function("bbox", numbers)
        return self.scalar()

    def geometry(self) -> dict[str, Any]:
        token = self.next()
        if token.word != "GEOMETRYCOLLECTION" and token.word not in GEOMETRIES:
            raise self.error("expected a geometry (POINT, LINESTRING, POLYGON, MULTIPOINT, "
                             "MULTILINESTRING, MULTIPOLYGON or GEOMETRYCOLLECTION)", token)
        self._z()
        if token.word == "GEOMETRYCOLLECTION":
            self.expect("(")
            return {"type": "GeometryCollection", "geometries": self.listed(self.geometry)}
        kind, depth = GEOMETRIES[token.word]
        start = self.peek()
        coordinates = self.coordinates()  # a list, even of the one position of a POINT
        if kind == "MultiPoint":  # MULTIPOINT((1 2), (3 4)), as CQL2 writes it, or bare
            coordinates = [p[0] if _depth(p) == 1 and len(p) == 1 else p for p in coordinates]
        if _depth(coordinates) != max(depth, 1) or kind == "Point" and len(coordinates) != 1:
            raise ValueError(f"the coordinates of the {token.text} at position "
                             f"{start.pos + 1} do not nest as its type needs")
        return {"type": kind, "coordinates": coordinates[0] if kind == "Point" else coordinates}

    def _z(self) -> None:
        token = self.peek()
        if token.kind == "name" and token.text.upper() == "Z":
            self.at += 1

    def coordinates(self) -> list[Any]:
        """ "(" then positions separated by commas, or nested groups, then ")". """
        self.expect("(")
        items: list[Any] = []
        while True:
            if self.peek().kind == "op" and self.peek().text == "(":
                items.append(self.coordinates())
            else:
                position = [self.signed_number(), self.signed_number()]
                if self.peek().kind in ("number", "op") and self.peek().text not in (",", ")"):
                    position.append(self.signed_number())
                items.append(position)
            if not self.take(","):
                break
        self.expect(")")
        return items

    def signed_number(self) -> float:
        token = self.next()
        sign = 1.0
        if token.kind == "op" and token.text in "+-":
            sign = -1.0 if token.text == "-" else 1.0
            token = self.next()
        if token.kind != "number":
            raise self.error("expected a number", token)
        return sign * float(token.text)


def _depth(node: list[Any]) -> int:
    """How deep lists nest above the numbers (a position is 0), or -1 when the items of
    one list differ in depth."""
    if not isinstance(node[0], list):
        return 0
    depths = {_depth(item) for item in node}
    return depths.pop() + 1 if len(depths) == 1 and -1 not in depths else -1


def _number(text: str) -> int | float:
    if "." in text or "e" in text or "E" in text:
        return float(text)
    return int(text)


def _string(token: str) -> str:
    return re.sub(r"''|\\'", "'", token[1:-1])
