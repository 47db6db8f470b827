"""Turning ``q`` and ``scopeQ`` ASTs into SQLite WHERE fragments.

Every client-derived string (IRIs, JSON paths, literals, patterns) travels as a bound parameter;
the SQL text only ever contains constants written here plus the caller's ``doc`` expression.

The fragments run against the stored entity document (see ``dothi.ngsild.entity``): each
attribute is a list of instances, each instance a normalized attribute whose sub-attributes
are keyed by IRI. Matching follows clause 4.9:

* a term matches an entity when ANY instance (any datasetId) matches;
* the target value is ``value`` (Property, GeoProperty), ``object`` (Relationship), every
  string of ``languageMap``, the elements of ``valueList`` / ``objectList`` / ``vocab``, or
  ``json`` (JsonProperty); when the target is an array, == and the ordering operators match
  if any element matches;
* ``!=`` and ``!~=`` need the target to exist and then match when NO candidate value equals
  (matches) the query value, so a value of another data type is "unequal", as the spec says;
* literals are type-strict: numbers meet JSON numbers only, strings meet strings only,
  booleans meet booleans only; dates and times are compared after normalisation.
"""

from __future__ import annotations

import logging
import re
import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Any

import orjson

from dothi.errors import BadRequestData, TooComplexQuery
from dothi.ngsild.entity import deflate
from dothi.ngsild.qlang import (
    BOOLEAN,
    DATE,
    DATETIME,
    EQ,
    GE,
    GT,
    LE,
    LT,
    MATCH,
    NE,
    NO_MATCH,
    NUMBER,
    STRING,
    TERM,
    TIME,
    URI,
    And,
    ClientPattern,
    Literal,
    Or,
    Pattern,
    QExpr,
    Range,
    ScopeAnd,
    ScopeExpr,
    ScopeOr,
    ScopePattern,
    Term,
    ValueList,
    compile_pattern,
)
from dothi.ngsild.typeexpr import TypeExpr

if TYPE_CHECKING:
    from dothi.store.base import ReadRule

log = logging.getLogger(__name__)
Fragment = tuple[str, list]

_SQL_OP = {EQ: "=", GT: ">", GE: ">=", LT: "<", LE: "<="}
_TS_FORMAT = "%Y-%m-%dT%H:%M:%fZ"
_TIME_FORMAT = "%H:%M:%fZ"
# Shape guards: SQLite's date functions also read numbers as Julian days and "now" as the
# clock, so only strings that look like the literal's kind may reach them.
_DATETIME_GLOB = "[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]T*"
_DATE_GLOB = "[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]*"
_TIME_GLOB = "[0-9][0-9]:[0-9][0-9]:[0-9][0-9]*"
# Characters that cannot appear in a quoted SQLite JSON path label, or that SQLite compares in
# their escaped JSON form (so a key holding them could never be found).
_BAD_KEY = re.compile(r'["\\\x00-\x1f]')


@dataclass(frozen=True)
class _Source:
    """Where candidate target values live inside one instance, for some attribute types."""

    types: tuple[str, ...] | None  # attribute types this applies to; None: any
    path: str  # JSON path inside the instance
    tree: bool = False  # walk nested arrays too (language maps, objectList)
    relation: bool = False  # only == and != apply (clause 4.9, last paragraphs)
    vocab: bool = False  # values are IRIs expanded with the @context
    lookup_only: bool = False  # an alternative view of the value, not a separate target
    strings_only: bool = False  # holds nothing but strings: skip it for number/boolean literals


def _key(name: str) -> str:
    if not isinstance(name, str) or not name or _BAD_KEY.search(name):
        raise BadRequestData(f"Cannot query attribute or member name {name!r}")
    return '."' + name + '"'


def _sources(term: Term, element: str) -> list[_Source]:
    path = term.path
    if path.meta is not None:
        return [_Source(None, element + "." + path.meta)]
    member = "".join(_key(m) for m in path.member)
    if not path.member:
        return [
            _Source(("Property", "GeoProperty"), element + ".value"),
            # Typed literals ({"@type": "DateTime", "@value": ...}) compare by their @value.
            _Source(("Property",), element + '.value."@value"', lookup_only=True),
            _Source(("Relationship",), element + ".object", relation=True, strings_only=True),
            _Source(("LanguageProperty",), element + ".languageMap", tree=True,
                    strings_only=True),
            _Source(("ListProperty",), element + ".valueList"),
            _Source(("ListRelationship",), element + ".objectList", tree=True, relation=True,
                    strings_only=True),
            _Source(("JsonProperty",), element + ".json"),
            _Source(("VocabProperty",), element + ".vocab", vocab=True, strings_only=True),
        ]
    sources = [
        _Source(("Property", "GeoProperty"), element + ".value" + member),
        _Source(("JsonProperty",), element + ".json" + member),
    ]
    if len(path.member) == 1:
        # For a LanguageProperty the bracket names a language; "*" means any language.
        lang = "" if path.member[0] == "*" else member
        sources.append(_Source(("LanguageProperty",), element + ".languageMap" + lang,
                               tree=True, strings_only=True))
    return sources


def _by_type(element: str, parts: list[tuple[_Source, Fragment]], empty: str) -> Fragment:
    """Any of ``parts`` holds, each only for the attribute types of its source: one CASE on
    the instance's type, so the type is read once, not once per source."""
    if not parts:
        return empty, []
    untyped = [fragment for source, fragment in parts if source.types is None]
    if untyped:  # a meta member: the same place in an instance of any type
        return " OR ".join(f"({sql})" for sql, _ in untyped), \
            [p for _, ps in untyped for p in ps]
    by_type: dict[str, list[Fragment]] = {}
    for source, fragment in parts:
        for name in source.types or ():
            by_type.setdefault(name, []).append(fragment)
    sql = ["CASE json_extract(qi.value, ?)"]
    params: list = [element + ".type"]
    for name, fragments in by_type.items():  # names are constants from _sources, not input
        sql.append(f"WHEN '{name}' THEN " + " OR ".join(f"({f})" for f, _ in fragments))
        params += [p for _, ps in fragments for p in ps]
    return " ".join(sql) + " ELSE 0 END", params


def _rows(source: _Source) -> str:
    """Candidate rows ``qv`` of one source: atoms only, never the members of an object."""
    if source.tree:
        rows = "json_tree(qi.value, ?) AS qv WHERE qv.type NOT IN ('object', 'array')"
        if source.relation:
            # objectList items are {"object": uri}; skip any other member they may carry.
            rows += " AND (qv.key = 'object' OR typeof(qv.key) = 'integer')"
        return rows
    # json_each keys are integers for array items, NULL for a lone scalar, text for object
    # members: an object is not a comparable value, so its members must not be candidates.
    return "json_each(qi.value, ?) AS qv WHERE typeof(qv.key) <> 'text'"


def _kind_sql(kind: str) -> tuple[str, str, str]:
    """(guard on qv, stored side, literal side) for comparing a literal of ``kind``."""
    if kind == NUMBER:
        return "qv.type IN ('integer', 'real')", "qv.value", "?"
    if kind == DATETIME:
        return (
            f"qv.type = 'text' AND qv.value GLOB '{_DATETIME_GLOB}'",
            f"strftime('{_TS_FORMAT}', qv.value)",
            f"strftime('{_TS_FORMAT}', ?)",
        )
    if kind == DATE:
        # A date also meets the (UTC) date part of a dateTime: "observedAt==2024-05-01"
        # reads naturally as "observed that day".
        return f"qv.type = 'text' AND qv.value GLOB '{_DATE_GLOB}'", "date(qv.value)", "?"
    if kind == TIME:
        return (
            f"qv.type = 'text' AND qv.value GLOB '{_TIME_GLOB}'",
            f"strftime('{_TIME_FORMAT}', qv.value)",
            f"strftime('{_TIME_FORMAT}', ?)",
        )
    return "qv.type = 'text'", "qv.value", "?"  # STRING, URI, TERM


def _literal_match(lit: Literal, op: str, source: _Source,
                   expand: Callable[[str], str]) -> Fragment:
    if lit.kind == BOOLEAN:
        return ("qv.type = 'true'" if lit.value else "qv.type = 'false'"), []
    if source.vocab and op == EQ and lit.kind in (STRING, URI, TERM):
        # Stored vocab values are expanded IRIs; the query may name them by term.
        return "qv.type = 'text' AND qv.value IN (?, ?)", [lit.value,
                                                           _expand(expand, str(lit.value))]
    guard, stored, literal = _kind_sql(lit.kind)
    return f"{guard} AND {stored} {_SQL_OP[op]} {literal}", [_bindable(lit.value)]


def _bindable(value: Any) -> Any:
    """SQLite binds integers of 64 bits at most: a larger literal is compared as the
    float it is closest to (stored values that large are floats too)."""
    if type(value) is int and not -(2**63) <= value < 2**63:
        return float(value)
    return value


def _value_match(term: Term, op: str, source: _Source, expand: Callable[[str], str]) -> Fragment:
    value = term.value
    if isinstance(value, Pattern):
        return "qv.type = 'text' AND regexp(?, qv.value)", [value.source]
    if isinstance(value, Range):
        guard, stored, literal = _kind_sql(value.low.kind)
        return (
            f"{guard} AND {stored} BETWEEN {literal} AND {literal}",
            [_bindable(value.low.value), _bindable(value.high.value)],
        )
    if isinstance(value, ValueList):
        parts = [_literal_match(item, EQ, source, expand) for item in value.items]
        return " OR ".join(f"({sql})" for sql, _ in parts), [p for _, ps in parts for p in ps]
    assert isinstance(value, Literal)
    return _literal_match(value, op, source, expand)


def _literal_kinds(value: Literal | Range | ValueList | Pattern | None) -> set[str]:
    if isinstance(value, Literal):
        return {value.kind}
    if isinstance(value, Range):
        return {value.low.kind}
    if isinstance(value, ValueList):
        return {item.kind for item in value.items}
    return {STRING}  # a Pattern only ever meets strings


def _positive(term: Term, op: str, sources: list[_Source], element: str,
              expand: Callable[[str], str]) -> Fragment:
    """Some candidate of some source matches ``op`` (== or an ordering or ~=)."""
    parts: list[tuple[_Source, Fragment]] = []
    never_string = _literal_kinds(term.value) <= {NUMBER, BOOLEAN}
    for source in sources:
        if (source.relation and op != EQ) or (source.strings_only and never_string):
            continue
        match_sql, match_params = _value_match(term, op, source, expand)
        parts.append((source, (f"EXISTS (SELECT 1 FROM {_rows(source)} AND ({match_sql}))",
                               [source.path, *match_params])))
    return _by_type(element, parts, "0")


def _exists(term: Term, sources: list[_Source], element: str) -> Fragment:
    """The target exists: the element, a meta member, or the member path inside the value."""
    if term.path.meta is None and not term.path.member:
        return "json_type(qi.value, ?) IS NOT NULL", [element]
    return _by_type(element, [(source, ("json_type(qi.value, ?) IS NOT NULL", [source.path]))
                              for source in sources], "0")


def _has_string(sources: list[_Source], element: str) -> Fragment:
    """Some candidate is a string: !~= never matches other data types (clause 4.9)."""
    return _by_type(element, [
        (source, (f"EXISTS (SELECT 1 FROM {_rows(source)} AND qv.type = 'text')", [source.path]))
        for source in sources if not source.relation], "0")


def _term_sql(term: Term, expand: Callable[[str], str], doc: str) -> Fragment:
    names = term.path.names
    attr_path = "$" + _key(_expand(expand, names[0]))
    element = "$" + "".join(_key(_expand(expand, n)) for n in names[1:])
    if term.op is None and len(names) == 1 and term.path.meta is None and not term.path.member:
        return f"json_type({doc}, ?) IS NOT NULL", [attr_path]
    sources = _sources(term, element)
    if term.op is None:
        inner, params = _exists(term, sources, element)
    elif term.op in (NE, NO_MATCH):
        positive_op = EQ if term.op == NE else MATCH
        pos_sql, pos_params = _positive(term, positive_op, sources, element, expand)
        if term.op == NE:
            pre_sql, pre_params = _exists(term, sources, element)
        else:
            pre_sql, pre_params = _has_string(sources, element)
        inner, params = f"({pre_sql}) AND NOT ({pos_sql})", pre_params + pos_params
    else:
        inner, params = _positive(term, term.op, sources, element, expand)
    return (
        f"EXISTS (SELECT 1 FROM json_each({doc}, ?) AS qi WHERE {inner})",
        [attr_path] + params,
    )


def _expand(expand: Callable[[str], str], term: str) -> str:
    iri = expand(term)
    if not isinstance(iri, str) or not iri:
        raise BadRequestData(f"Cannot expand {term!r} to an IRI")
    return iri


def _texts_sought(term: Term, expand: Callable[[str], str]) -> list[str] | None:
    """The JSON texts one of which a document that ``term`` matches must contain, for
    an equality with strings; None when there is no such simple necessary condition.
    The store writes documents with orjson, which writes a string without ``"``, ``\\``
    or control characters as exactly itself between quotes (other characters as they
    are, in UTF-8). (On PostgreSQL the same look, ``strpos(doc::text, ...)``, made that
    query slower, 1.53 to 2.04 ms: turning each jsonb back into text costs more than the
    JSON scans it saves.)"""
    if term.op != EQ:
        return None
    value = term.value
    items = value.items if isinstance(value, ValueList) else [value]
    sought: list[str] = []
    for item in items:
        if not isinstance(item, Literal) or item.kind not in (STRING, URI, TERM) or \
                not isinstance(item.value, str):
            return None
        # A VocabProperty stores the expanded IRI, which a plain string may name too.
        for text in dict.fromkeys([item.value, _expand(expand, item.value)]):
            if any(c in text for c in '"\\') or any(ord(c) < 0x20 for c in text):
                return None
            sought.append(f'"{text}"')
    return sought or None


def q_to_sql(expr: QExpr, expand: Callable[[str], str], doc: str = "e.doc") -> Fragment:
    """A WHERE fragment (and its parameters) selecting the entities ``expr`` matches.

    ``doc`` is SQL text naming the document column; it comes from the store, never a client.
    Each equality with strings first looks for the strings in the document's text
    (``_texts_sought``), all of an AND's looks before any of its terms: most documents that
    fail are then refused without their JSON being scanned (bench/ogc.py's CQL2 filter on
    100,000 polygons: its SQL from 1.43 to 0.68 ms, the store's query from 2.38 to 1.35).
    """

    def look(item: QExpr) -> Fragment | None:
        texts = _texts_sought(item, expand) if isinstance(item, Term) else None
        return None if texts is None else (
            " OR ".join([f"instr({doc}, ?) > 0"] * len(texts)), list(texts))

    def walk(item: QExpr, looked: bool) -> Fragment:
        if isinstance(item, Term):
            sql, params = _term_sql(item, expand, doc)
            pre = None if looked else look(item)
            return (sql, params) if pre is None else (f"({pre[0]}) AND {sql}",
                                                      pre[1] + params)
        if isinstance(item, Or):
            parts = [walk(i, False) for i in item.items]
        elif isinstance(item, And):
            looks = [pre for i in item.items if (pre := look(i))]
            parts = [*looks, *(walk(i, True) for i in item.items)]
        else:
            raise TypeError(f"not a q expression: {item!r}")
        joiner = " OR " if isinstance(item, Or) else " AND "
        return joiner.join(f"({sql})" for sql, _ in parts), [p for _, ps in parts for p in ps]

    return walk(expr, False)


def _scope_pattern_sql(pattern: ScopePattern) -> Fragment:
    if "+" in pattern.levels:
        regex = "^" + "".join("/[^/]+" if level == "+" else "/" + re.escape(level)
                              for level in pattern.levels)
        regex += ("(?:/.*)?" if pattern.descendants else "") + r"\Z"
        return "qs.type = 'text' AND regexp(?, qs.value)", [regex]
    if not pattern.levels:
        return "qs.type = 'text'", []  # "/#": any scope at all
    scope = "/" + "/".join(pattern.levels)
    if not pattern.descendants:
        return "qs.value = ?", [scope]
    # substr, not LIKE/GLOB: scope levels may contain those languages' wildcard characters.
    prefix = scope + "/"
    return "(qs.value = ? OR substr(qs.value, 1, ?) = ?)", [scope, len(prefix), prefix]


def scope_q_to_sql(expr: ScopeExpr, doc: str = "e.doc") -> Fragment:
    """A WHERE fragment selecting the entities whose ``scope`` satisfies ``expr``."""
    if isinstance(expr, ScopePattern):
        sql, params = _scope_pattern_sql(expr)
        return f"EXISTS (SELECT 1 FROM json_each({doc}, '$.scope') AS qs WHERE {sql})", params
    if not isinstance(expr, (ScopeAnd, ScopeOr)):
        raise TypeError(f"not a scopeQ expression: {expr!r}")
    joiner = " AND " if isinstance(expr, ScopeAnd) else " OR "
    parts = [scope_q_to_sql(item, doc) for item in expr.items]
    return joiner.join(f"({sql})" for sql, _ in parts), [p for _, ps in parts for p in ps]


@lru_cache(maxsize=512)
def _pattern(source: str) -> ClientPattern | None:
    try:
        return compile_pattern(source)
    except BadRequestData:
        return None


_matching = threading.local()


def _regexp(pattern: object, value: object) -> int | None:
    if not isinstance(pattern, str) or not isinstance(value, str):
        return 0
    compiled = _pattern(pattern)
    # Patterns are checked when the query is parsed; a bad one here (e.g. from another
    # caller) simply matches nothing instead of aborting the statement.
    if compiled is None:
        return 0
    try:
        return int(compiled.search(value) is not None)
    except TooComplexQuery as exc:
        _matching.error = exc  # SQLite passes on only "user-defined function raised ..."
        raise


@contextmanager
def client_patterns() -> Iterator[None]:
    """Around statements that may run clients' regular expressions: one that ran out of
    time comes out as TooComplexQuery, not as SQLite's bare OperationalError."""
    _matching.error = None
    try:
        yield
    except sqlite3.OperationalError:
        error, _matching.error = getattr(_matching, "error", None), None
        if error is not None:
            raise error from None
        raise


def register_sqlite_functions(conn: sqlite3.Connection) -> None:
    """Install ``regexp(pattern, value)`` (also behind ``value REGEXP pattern``)."""
    conn.create_function("regexp", 2, _regexp, deterministic=True)


def type_expr_sql(
    expr: TypeExpr, leaf: Callable[[str], tuple[str, list[Any]]]
) -> tuple[str, list[Any]]:
    """SQL for a type expression (``,``/``|`` or, ``;`` and); ``leaf`` gives the test for
    one type name."""
    if expr.op == "type":
        return leaf(expr.name)
    parts = [type_expr_sql(c, leaf) for c in expr.children]
    joiner = " OR " if expr.op == "or" else " AND "
    return (
        "(" + joiner.join(p[0] for p in parts) + ")",
        [x for p in parts for x in p[1]],
    )


def read_rule_sql(rule: ReadRule, types_sql: Callable[[frozenset[str]], Fragment],
                  q_sql: Callable[..., Fragment]) -> Fragment:
    """SQL for one of the reader's rules (``dothi.store.base.ReadRule``) in either
    backend's dialect: not of the rule's types, or its q holds."""
    parts: list[str] = []
    params: list[Any] = []
    if rule.types is not None:
        sql, p = types_sql(rule.types)
        parts.append(f"NOT {sql}")
        params.extend(p)
    if rule.q is not None:
        sql, p = q_sql(rule.q, rule.expand, "e.doc")
        parts.append(f"({sql})")
        params.extend(p)
    return ("(" + " OR ".join(parts) + ")" if parts else "1 = 0"), params


class DocFilter:
    """q and scopeQ decided on one document by the very SQL that queries the store, so a
    subscription matches exactly what a query with the same q would return."""

    def __init__(self) -> None:
        self._conn = sqlite3.connect(":memory:", check_same_thread=False)
        register_sqlite_functions(self._conn)
        self._lock = threading.Lock()

    def compile(self, q: QExpr | None, scope_q: ScopeExpr | None,
                expand: Callable[[str], str]) -> Callable[[dict], bool]:
        parts: list[Fragment] = []
        if q is not None:
            parts.append(q_to_sql(q, expand, "e.doc"))
        if scope_q is not None:
            parts.append(scope_q_to_sql(scope_q, "e.doc"))
        clauses = [f"({sql})" for sql, _ in parts]
        params = [p for _, ps in parts for p in ps]
        statement = f"SELECT 1 FROM (SELECT ? AS doc) AS e WHERE {' AND '.join(clauses) or '1'}"

        def matches(doc: dict) -> bool:
            text = orjson.dumps(deflate(doc))
            try:
                with self._lock, client_patterns():
                    return self._conn.execute(statement, (text, *params)).fetchone() \
                        is not None
            except TooComplexQuery as exc:
                # A write must not fail for a subscription's pattern: it matches nothing.
                log.warning("%s: %s", doc.get("id"), exc.detail)
                return False

        return matches
