"""Turning ``q`` and ``scopeQ`` ASTs into PostgreSQL WHERE fragments over a ``jsonb`` document.

The twin of ``dothi.store.sqlite_filters``, whose module docstring states the matching rules
(clause 4.9); they hold here unchanged. Every client-derived string (IRIs, member names,
literals, patterns) travels as a bound psycopg parameter (``%s``); the SQL text only ever
contains constants written here plus the caller's ``doc`` expression.

PostgreSQL needs a few helper functions (``FUNCTIONS``, installed by the schema migration and
run without parameters: it contains ``%``) to read dates and times the way the SQLite fragments
do, but returning NULL, never raising, for malformed text: a cast error would abort the whole
statement. The fragments are trees of small subplans that the planner prices high; JIT
compiling them can take far longer than running them, so run such queries with ``jit = off``.

Known differences from the SQLite fragments, at the edges only:

* a date-time, date or time that is not a real calendar value (``2024-02-30``, any hour 24,
  as Python and ``normalize_datetime`` also say) never matches here; SQLite's ``strftime``
  echoes such fields back and compares them as text;
* fractions of a second round half up to milliseconds on every path, where SQLite's ``%f``
  clamps ``59.9995``.. to ``59.999`` when the value has no UTC offset;
* numbers compare as exact decimals (jsonb keeps no int/float distinction), so integers beyond
  2**53 may compare differently with a float literal than SQLite's int/double rules say
  (SQLite compares an integer literal beyond 64 bits as the nearest float);
* strings containing NUL characters cannot reach PostgreSQL at all and are rejected.
"""

from __future__ import annotations

import json
import math
import re
import string
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal

from dothi.errors import BadRequestData
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
)
from dothi.store.sqlite_filters import type_expr_sql

__all__ = ["FUNCTIONS", "Fragment", "q_to_sql", "scope_q_to_sql", "type_expr_sql"]

Fragment = tuple[str, list]

_SQL_OP = {EQ: "=", GT: ">", GE: ">=", LT: "<", LE: "<="}
# The names SQLite cannot look up (see sqlite_filters._BAD_KEY) are refused here too, so a
# query means the same on either store; control characters (NUL above all) cannot reach
# PostgreSQL text anyway.
_BAD_KEY = re.compile(r'["\\\x00-\x1f]')
# Constant member names of an instance; the only names written into the SQL text.
_MEMBERS = frozenset({"value", "@value", "object", "languageMap", "valueList", "objectList",
                      "json", "vocab"})

# The candidate as text (strings only) or as a number (numbers only); CASE, not AND, because
# PostgreSQL may evaluate a cast before the type test beside it.
_STR = "(CASE WHEN jsonb_typeof(qv.v) = 'string' THEN qv.v #>> '{}' END)"
_NUM = "(CASE WHEN jsonb_typeof(qv.v) = 'number' THEN (qv.v)::numeric END)"
# A dateTime must have its 'T' right after the date (SQLite's GLOB guard); dothi_q_datetime
# checks the rest of the shape.
_DATETIME_STR = (
    "(CASE WHEN jsonb_typeof(qv.v) = 'string' AND substr(qv.v #>> '{}', 11, 1) = 'T' "
    "THEN qv.v #>> '{}' END)"
)

# Whitespace as SQLite's date parser skips it (ASCII only; [[:space:]] follows the locale).
_WS = r"[\t\n\v\f\r ]*"
_ZONE = _WS + r"(?:[Zz]|([-+])([0-9]{2}):([0-9]{2}))?" + _WS
_DATETIME_RE = (
    r"^([0-9]{4})-([0-9]{2})-([0-9]{2})[\t\n\v\f\r T]*"
    r"(?:([0-9]{2}):([0-9]{2})(?::([0-9]{2})(?:\.([0-9]+))?)?" + _ZONE + r")?$"
)
_TIME_RE = r"^([0-9]{2}):([0-9]{2}):([0-9]{2})(?:\.([0-9]+))?" + _ZONE + "$"

# Milliseconds are counted from the Julian Day epoch exactly as SQLite's date functions count
# them (its computeJD), so a value here equals julianday(x) * 86400000 over there.
FUNCTIONS = r"""
CREATE OR REPLACE FUNCTION dothi_q_day(y integer, mo integer, d integer) RETURNS bigint
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
  -- Milliseconds at 00:00 UTC of a proleptic Gregorian date; NULL if there is no such date.
  SELECT CASE WHEN mo BETWEEN 1 AND 12 AND d >= 1 AND d <= CASE
      WHEN mo = 2 THEN CASE WHEN y % 4 = 0 AND (y % 100 <> 0 OR y % 400 = 0) THEN 29 ELSE 28 END
      WHEN mo IN (4, 6, 9, 11) THEN 30 ELSE 31 END
    THEN (36525 * (yy + 4716) / 100 + 306001 * (mm + 1) / 10000 + d + 2 - yy / 100 + yy / 100 / 4
          - 1524)::bigint * 86400000 - 43200000
    END
  FROM (SELECT CASE WHEN mo <= 2 THEN y - 1 ELSE y END AS yy,
               CASE WHEN mo <= 2 THEN mo + 12 ELSE mo END AS mm) AS a
$$;

CREATE OR REPLACE FUNCTION dothi_q_clock(h text, mi text, s text, frac text, sign text,
                                         tzh text, tzm text) RETURNS bigint
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  -- Milliseconds since 00:00 UTC of a wall-clock time and UTC offset (outside 0..86399999
  -- when the offset crosses midnight); NULL if a field is out of range. Rounds to the
  -- millisecond as SQLite does: floor(seconds * 1000 + 0.5) in double precision.
  SELECT CASE WHEN h::int <= 23 AND mi::int <= 59 AND coalesce(s::int, 0) <= 59
                   AND coalesce(tzh::int, 0) <= 14 AND coalesce(tzm::int, 0) <= 59
    THEN h::int * 3600000 + mi::int * 60000
         + floor((coalesce(s::int, 0) + coalesce(('0.' || left(frac, 17))::float8, 0))
                 * 1000 + 0.5::float8)::bigint
         - CASE sign WHEN '+' THEN 1 WHEN '-' THEN -1 ELSE 0 END
           * (coalesce(tzh::int, 0) * 60 + coalesce(tzm::int, 0)) * 60000
    END
$$;

CREATE OR REPLACE FUNCTION dothi_q_datetime(value text) RETURNS bigint
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
  -- 'YYYY-MM-DD[T]hh:mm[:ss[.fff]][Z|+hh:mm]' or a bare date, as milliseconds (UTC); NULL
  -- for anything else, and past 9999-12-31T23:59:59.999Z like SQLite.
  SELECT CASE WHEN t BETWEEN 0 AND 464269060799999 THEN t END
  FROM (SELECT dothi_q_day(m[1]::int, m[2]::int, m[3]::int)
               + CASE WHEN m[4] IS NULL THEN 0
                      ELSE dothi_q_clock(m[4], m[5], m[6], m[7], m[8], m[9], m[10]) END AS t
        FROM regexp_match(value, '{datetime_re}') AS m) AS p
$$;

CREATE OR REPLACE FUNCTION dothi_q_date(value text) RETURNS bigint
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
  -- The (UTC) day of a date or date-time, as a Julian Day number; NULL if malformed.
  SELECT (dothi_q_datetime(value) + 43200000) / 86400000
$$;

CREATE OR REPLACE FUNCTION dothi_q_time(value text) RETURNS bigint
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
  -- 'hh:mm:ss[.fff][Z|+hh:mm]' as milliseconds since 00:00 UTC; NULL if malformed.
  SELECT ((c % 86400000) + 86400000) % 86400000
  FROM (SELECT dothi_q_clock(m[1], m[2], m[3], m[4], m[5], m[6], m[7]) AS c
        FROM regexp_match(value, '{time_re}') AS m) AS p
$$;
""".replace("{datetime_re}", _DATETIME_RE).replace("{time_re}", _TIME_RE)


@dataclass(frozen=True)
class _Source:
    """Where candidate target values live inside one instance, for some attribute types."""

    types: tuple[str, ...] | None  # attribute types this applies to; None: any
    keys: tuple[str, ...]  # constant members (from _MEMBERS) below the instance
    member: tuple[str, ...] = ()  # client member names below those: bound parameters
    tree: bool = False  # walk nested arrays too (language maps, objectList)
    relation: bool = False  # only == and != apply (clause 4.9, last paragraphs)
    vocab: bool = False  # values are IRIs expanded with the @context
    strings_only: bool = False  # holds nothing but strings: skip it for number/boolean literals


def _key(name: str) -> str:
    if not isinstance(name, str) or not name or _BAD_KEY.search(name):
        raise BadRequestData(f"Cannot query attribute or member name {name!r}")
    return name


def _text(value: object) -> object:
    """A client string bound as a parameter: PostgreSQL text cannot hold NUL."""
    if isinstance(value, str) and "\x00" in value:
        raise BadRequestData("Query values cannot contain NUL characters")
    return value


def _sources(term: Term) -> list[_Source]:
    path = term.path
    if path.meta is not None:
        return [_Source(None, (), (path.meta,))]
    member = tuple(_key(m) for m in path.member)
    if not member:
        return [
            _Source(("Property", "GeoProperty"), ("value",)),
            # Typed literals ({"@type": "DateTime", "@value": ...}) compare by their @value.
            _Source(("Property",), ("value", "@value")),
            _Source(("Relationship",), ("object",), relation=True, strings_only=True),
            _Source(("LanguageProperty",), ("languageMap",), tree=True, strings_only=True),
            _Source(("ListProperty",), ("valueList",)),
            _Source(("ListRelationship",), ("objectList",), tree=True, relation=True,
                    strings_only=True),
            _Source(("JsonProperty",), ("json",)),
            _Source(("VocabProperty",), ("vocab",), vocab=True, strings_only=True),
        ]
    sources = [
        _Source(("Property", "GeoProperty"), ("value",), member),
        _Source(("JsonProperty",), ("json",), member),
    ]
    if len(member) == 1:
        # For a LanguageProperty the bracket names a language; "*" means any language.
        lang = () if member[0] == "*" else member
        sources.append(_Source(("LanguageProperty",), ("languageMap",), lang, tree=True,
                               strings_only=True))
    return sources


def _path(source: _Source) -> Fragment:
    """The jsonb value a source names inside the instance ``qi.v`` (NULL when absent).

    ``->`` with a text operand only ever reads object members (SQLite's quoted path labels);
    ``#>`` would also take "0" as an array index.
    """
    assert _MEMBERS.issuperset(source.keys)
    sql = "qi.v" + "".join(f" -> '{k}'" for k in source.keys)
    return sql + " -> %s::text" * len(source.member), list(source.member)


def _type_guard(source: _Source) -> str:
    if source.types is None:
        return "TRUE"
    names = ", ".join(f"'{t}'" for t in source.types)  # constants from _sources, not input
    return f"(qi.v ->> 'type') IN ({names})"


def _rows(source: _Source) -> Fragment:
    """FROM clause of the candidates ``qv.v`` of one source.

    Containers are candidates here too (SQLite leaves them out) but no comparison below ever
    matches an object or an array, so the outcome is the same.
    """
    path, params = _path(source)
    if not source.tree:
        # An array's items, or a lone scalar itself.
        return f"jsonb_path_query({path}, 'lax $[*]') AS qv(v)", params
    if not source.relation:
        return f"jsonb_path_query({path}, 'strict $.**') AS qv(v)", params
    # objectList: array items (plain URIs) and "object" members at any depth, nothing else.
    return (
        f"(SELECT jsonb_path_query({path}, 'strict $.** ? (@.type() == \"array\")[*]') "
        f"UNION ALL SELECT jsonb_path_query({path}, 'lax $.**.object')) AS qv(v)",
        params + params,
    )


def _number(value: object) -> object:
    # jsonb numbers are decimals: a float literal is compared by its shortest repr, the form
    # in which the store (orjson) wrote the float, so equal doubles stay equal.
    return Decimal(repr(value)) if isinstance(value, float) else value


def _kind_sql(kind: str) -> tuple[str, str]:
    """(stored side, literal side) for comparing a literal of ``kind``."""
    if kind == NUMBER:
        return _NUM, "%s::numeric"
    if kind == DATETIME:
        return f"dothi_q_datetime{_DATETIME_STR}", "dothi_q_datetime(%s)"
    if kind == DATE:
        # A date also meets the (UTC) date part of a dateTime: "observedAt==2024-05-01"
        # reads naturally as "observed that day".
        return f"dothi_q_date{_STR}", "dothi_q_date(%s)"
    if kind == TIME:
        return f"dothi_q_time{_STR}", "dothi_q_time(%s)"
    # STRING, URI, TERM: code point order, as SQLite's BINARY collation compares UTF-8.
    return f'{_STR} COLLATE "C"', "%s"


def _literal_param(lit: Literal) -> object:
    return _number(lit.value) if lit.kind == NUMBER else _text(lit.value)


def _literal_match(lit: Literal, op: str, source: _Source,
                   expand: Callable[[str], str]) -> Fragment:
    if lit.kind == BOOLEAN:
        return ("qv.v = 'true'::jsonb" if lit.value else "qv.v = 'false'::jsonb"), []
    if source.vocab and op == EQ and lit.kind in (STRING, URI, TERM):
        # Stored vocab values are expanded IRIs; the query may name them by term.
        return f"{_STR} IN (%s, %s)", [_text(lit.value),
                                       _text(_expand(expand, str(lit.value)))]
    stored, literal = _kind_sql(lit.kind)
    return f"{stored} {_SQL_OP[op]} {literal}", [_literal_param(lit)]


def _value_match(term: Term, op: str, source: _Source, expand: Callable[[str], str]) -> Fragment:
    value = term.value
    if isinstance(value, Pattern):
        # POSIX ARE, not Python re (the pattern was checked with re when parsed). They agree on
        # the common ground (literals, . * + ? {m,n}, classes, groups, |, ^ $, \d \s \w, a
        # leading (?i)); differences: ARE's \b is a backspace (word edges are \y \m \M), "."
        # and [^x] also match a newline, $ never matches before a final newline, and Python-only
        # syntax such as (?P<name>...), (?P=name), possessive *+ or atomic (?>...) makes
        # PostgreSQL raise an error for the statement.
        return f"{_STR} ~ %s", [_text(value.source)]
    if isinstance(value, Range):
        stored, literal = _kind_sql(value.low.kind)
        return (
            f"{stored} BETWEEN {literal} AND {literal}",
            [_literal_param(value.low), _literal_param(value.high)],
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


def _positive(term: Term, op: str, sources: list[_Source],
              expand: Callable[[str], str]) -> Fragment:
    """Some candidate of some source matches ``op`` (== or an ordering or ~=)."""
    parts: list[str] = []
    params: list = []
    never_string = _literal_kinds(term.value) <= {NUMBER, BOOLEAN}
    for source in sources:
        if (source.relation and op != EQ) or (source.strings_only and never_string):
            continue
        rows_sql, rows_params = _rows(source)
        match_sql, match_params = _value_match(term, op, source, expand)
        parts.append(f"({_type_guard(source)} AND EXISTS (SELECT 1 FROM {rows_sql} "
                     f"WHERE {match_sql}))")
        params += rows_params + match_params
    return (" OR ".join(parts) or "FALSE"), params


def _exists(term: Term, sources: list[_Source]) -> Fragment:
    """The target exists: the element, a meta member, or the member path inside the value."""
    if term.path.meta is None and not term.path.member:
        return "qi.v IS NOT NULL", []
    parts: list[str] = []
    params: list = []
    for source in sources:
        path_sql, path_params = _path(source)
        parts.append(f"({_type_guard(source)} AND ({path_sql}) IS NOT NULL)")
        params += path_params
    return " OR ".join(parts), params


def _has_string(sources: list[_Source]) -> Fragment:
    """Some candidate is a string: !~= never matches other data types (clause 4.9)."""
    parts: list[str] = []
    params: list = []
    for source in sources:
        if source.relation:
            continue
        rows_sql, rows_params = _rows(source)
        parts.append(f"({_type_guard(source)} AND EXISTS (SELECT 1 FROM {rows_sql} "
                     f"WHERE jsonb_typeof(qv.v) = 'string'))")
        params += rows_params
    return (" OR ".join(parts) or "FALSE"), params


def _instances(doc: str, attr: str, subs: list[str]) -> Fragment:
    """FROM clause of ``qi.v``: each instance of the attribute, or the (sub-)sub-attribute
    of each instance that the path names (NULL where it has none)."""
    rows = f"jsonb_path_query({doc} -> %s::text, 'lax $[*]')"
    if not subs:
        return f"{rows} AS qi(v)", [attr]
    element = "qa.v" + " -> %s::text" * len(subs)
    return f"(SELECT {element} FROM {rows} AS qa(v)) AS qi(v)", subs + [attr]


# One instance's values, per attribute type, as jsonpath (``@`` is the instance): the sources
# of ``_sources`` for a plain attribute name. Lax mode compares a lone value or each item of
# an array, as ``lax $[*]`` does above. ``strings`` sources hold only strings; ``relation``
# ones take == only.
_JSONPATH_SOURCES = (
    ('@.type == "Property" || @.type == "GeoProperty"', "@.value", False, False),
    ('@.type == "Property"', '@.value."@value"', False, False),
    ('@.type == "Relationship"', "@.object", True, True),
    ('@.type == "LanguageProperty"', "@.languageMap.**", True, False),
    ('@.type == "ListProperty"', "@.valueList", False, False),
    ('@.type == "ListRelationship"', '@.objectList.** ? (@.type() == "array")[*]', True, True),
    ('@.type == "ListRelationship"', "@.objectList.**.object", True, True),
    ('@.type == "JsonProperty"', "@.json", False, False),
)


def _jsonpath_term(term: Term, expand: Callable[[str], str], doc: str,
                   attr: str) -> Fragment | None:
    """The term as one ``jsonb_path_exists`` call, when it compares a plain attribute with
    strings or numbers (==, <, <=, >, >=, lists with ==) or booleans (==); None otherwise.

    The same matches as the subplans ``_positive`` writes, but PostgreSQL plans one function
    call instead of a tree of subplans, and planning that tree took longer than running it
    (bench/ogc.py's CQL2 filter: 1.4 ms of planning per request). Comparisons in lax mode
    are false, never errors, across types; strings compare by code point, numbers exactly.
    """
    path, op, value = term.path, term.op, term.value
    if path.meta is not None or path.member or len(path.names) != 1 or \
            op not in (EQ, GT, GE, LT, LE):
        return None
    literals: list[Literal] = []
    for lit in value.items if isinstance(value, ValueList) and op == EQ else [value]:
        if not isinstance(lit, Literal) or lit.kind not in (STRING, URI, TERM, NUMBER, BOOLEAN) \
                or (lit.kind == BOOLEAN and op != EQ) \
                or (isinstance(lit.value, float) and not math.isfinite(lit.value)):
            return None
        literals.append(lit)
    variables: dict[str, object] = {}
    tests: list[tuple[str, bool]] = []  # (comparison on "{}", the literal is a string)
    for k, lit in enumerate(literals):
        variables[f"v{k}"] = _text(lit.value)
        tests.append((f"{{}} {op} $v{k}", lit.kind not in (NUMBER, BOOLEAN)))
    alternatives = []
    for guard, where, strings, relation in _JSONPATH_SOURCES:
        if relation and op != EQ:
            continue
        found = [test.format(where) for test, string in tests if string or not strings]
        if found:
            alternatives.append(f"(({guard}) && ({' || '.join(found)}))")
    # Stored vocab values are expanded IRIs; the query may name them by term.
    vocab = []
    for k, lit in enumerate(literals):
        if lit.kind in (STRING, URI, TERM):
            vocab.append(f"@.vocab {op} $v{k}")
            if op == EQ:
                variables[f"x{k}"] = _text(_expand(expand, str(lit.value)))
                vocab.append(f"@.vocab == $x{k}")
    if vocab:
        alternatives.append(f'((@.type == "VocabProperty") && ({" || ".join(vocab)}))')
    if not alternatives:
        return "FALSE", []
    jsonpath = "lax $[*] ? (" + " || ".join(alternatives) + ")"
    return (f"({doc} ? %s AND jsonb_path_exists({doc} -> %s, %s::jsonpath, %s::jsonb))",
            [attr, attr, jsonpath, json.dumps(variables)])


def _term_sql(term: Term, expand: Callable[[str], str], doc: str) -> Fragment:
    names = term.path.names
    attr = _key(_expand(expand, names[0]))
    subs = [_key(_expand(expand, n)) for n in names[1:]]
    if term.op is None and len(names) == 1 and term.path.meta is None and not term.path.member:
        return f"{doc} ? %s", [attr]
    fast = _jsonpath_term(term, expand, doc, attr)
    if fast is not None:
        return fast
    sources = _sources(term)
    if term.op is None:
        inner, params = _exists(term, sources)
    elif term.op in (NE, NO_MATCH):
        positive_op = EQ if term.op == NE else MATCH
        pos_sql, pos_params = _positive(term, positive_op, sources, expand)
        if term.op == NE:
            pre_sql, pre_params = _exists(term, sources)
        else:
            pre_sql, pre_params = _has_string(sources)
        inner, params = f"({pre_sql}) AND NOT ({pos_sql})", pre_params + pos_params
    else:
        inner, params = _positive(term, term.op, sources, expand)
    rows_sql, rows_params = _instances(doc, attr, subs)
    # "doc ? attr" changes nothing (no instance, no match) but lets a GIN index help.
    return (
        f"({doc} ? %s AND EXISTS (SELECT 1 FROM {rows_sql} WHERE {inner}))",
        [attr] + rows_params + params,
    )


def _expand(expand: Callable[[str], str], term: str) -> str:
    iri = expand(term)
    if not isinstance(iri, str) or not iri:
        raise BadRequestData(f"Cannot expand {term!r} to an IRI")
    return iri


def q_to_sql(expr: QExpr, expand: Callable[[str], str], doc: str = "e.doc") -> Fragment:
    """A WHERE fragment (and its parameters) selecting the entities ``expr`` matches.

    ``doc`` is SQL text naming the jsonb document column; it comes from the store, never a
    client.
    """
    if isinstance(expr, Term):
        return _term_sql(expr, expand, doc)
    joiner = " AND " if isinstance(expr, And) else " OR "
    if not isinstance(expr, (And, Or)):
        raise TypeError(f"not a q expression: {expr!r}")
    parts = [q_to_sql(item, expand, doc) for item in expr.items]
    return joiner.join(f"({sql})" for sql, _ in parts), [p for _, ps in parts for p in ps]


# ASCII punctuation is all ARE could read as syntax; "\" before it always means the character
# itself, while "\" before a letter or digit would start an escape.
_ARE_SPECIAL = frozenset(string.punctuation)


def _are_literal(text: str) -> str:
    return "".join("\\" + c if c in _ARE_SPECIAL else c for c in text)


def _scope_pattern_sql(pattern: ScopePattern) -> Fragment:
    scope_str = "(CASE WHEN jsonb_typeof(qs.v) = 'string' THEN qs.v #>> '{}' END)"
    for level in pattern.levels:
        _text(level)
    if "+" in pattern.levels:
        regex = "^" + "".join("/[^/]+" if level == "+" else "/" + _are_literal(level)
                              for level in pattern.levels)
        # [^\n]: Python's "." (the SQLite side) stops at a newline, ARE's would not.
        regex += ("(?:/[^\\n]*)?" if pattern.descendants else "") + "$"
        return f"{scope_str} ~ %s", [regex]
    if not pattern.levels:
        return "jsonb_typeof(qs.v) = 'string'", []  # "/#": any scope at all
    scope = "/" + "/".join(pattern.levels)
    if not pattern.descendants:
        return f"{scope_str} = %s", [scope]
    # starts_with, not LIKE: scope levels may contain LIKE's wildcard characters.
    return f"({scope_str} = %s OR starts_with({scope_str}, %s))", [scope, scope + "/"]


def scope_q_to_sql(expr: ScopeExpr, doc: str = "e.doc") -> Fragment:
    """A WHERE fragment selecting the entities whose ``scope`` satisfies ``expr``."""
    if isinstance(expr, ScopePattern):
        sql, params = _scope_pattern_sql(expr)
        return (
            f"EXISTS (SELECT 1 FROM jsonb_path_query({doc} -> 'scope', 'lax $[*]') AS qs(v) "
            f"WHERE {sql})",
            params,
        )
    if not isinstance(expr, (ScopeAnd, ScopeOr)):
        raise TypeError(f"not a scopeQ expression: {expr!r}")
    joiner = " AND " if isinstance(expr, ScopeAnd) else " OR "
    parts = [scope_q_to_sql(item, doc) for item in expr.items]
    return joiner.join(f"({sql})" for sql, _ in parts), [p for _, ps in parts for p in ps]
