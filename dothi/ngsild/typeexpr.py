"""Entity type selection expressions (clause 4.17): ``A,B`` and ``A|B`` mean either,
``A;B`` means both, parentheses group."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from dothi.errors import BadRequestData

_TOKEN = re.compile(r"\s*([(),;|]|[^(),;|\s]+)")


@dataclass(frozen=True)
class TypeExpr:
    op: str  # "type", "or", "and"
    name: str = ""
    children: tuple[TypeExpr, ...] = ()

    def matches(self, types: set[str]) -> bool:
        """Whether an entity of these (expanded) types is selected."""
        if self.op == "type":
            return self.name in types
        if self.op == "or":
            return any(c.matches(types) for c in self.children)
        return all(c.matches(types) for c in self.children)

    def names(self) -> list[str]:
        if self.op == "type":
            return [self.name]
        return [n for c in self.children for n in c.names()]


def parse_type_expr(text: str, expand: Callable[[str], str]) -> TypeExpr:
    tokens = [m.group(1) for m in _TOKEN.finditer(text)]
    if not tokens or "".join(tokens) != re.sub(r"\s+", "", text):
        raise BadRequestData(f"Invalid type selection {text!r}")
    pos = 0

    def parse_or() -> TypeExpr:
        nonlocal pos
        items = [parse_and()]
        while pos < len(tokens) and tokens[pos] in ("|", ","):
            pos += 1
            items.append(parse_and())
        return items[0] if len(items) == 1 else TypeExpr("or", children=tuple(items))

    def parse_and() -> TypeExpr:
        nonlocal pos
        items = [parse_atom()]
        while pos < len(tokens) and tokens[pos] == ";":
            pos += 1
            items.append(parse_atom())
        return items[0] if len(items) == 1 else TypeExpr("and", children=tuple(items))

    def parse_atom() -> TypeExpr:
        nonlocal pos
        if pos >= len(tokens):
            raise BadRequestData(f"Type selection {text!r} ends too early")
        tok = tokens[pos]
        pos += 1
        if tok == "(":
            inner = parse_or()
            if pos >= len(tokens) or tokens[pos] != ")":
                raise BadRequestData(f"Unbalanced parentheses in type selection {text!r}")
            pos += 1
            return inner
        if tok in "),;|":
            raise BadRequestData(f"Unexpected {tok!r} in type selection {text!r}")
        return TypeExpr("type", name=expand(tok))

    expr = parse_or()
    if pos != len(tokens):
        raise BadRequestData(f"Unexpected {tokens[pos]!r} in type selection {text!r}")
    return expr
