"""Parser tests for the NGSI-LD query language (clause 4.9) and scope query language (4.19)."""

from __future__ import annotations

from typing import Any

import pytest

from dothi.errors import BadRequestData
from dothi.ngsild.qlang import (
    BOOLEAN,
    DATE,
    DATETIME,
    NUMBER,
    STRING,
    TERM,
    TIME,
    URI,
    And,
    AttrPath,
    Literal,
    Or,
    Pattern,
    QExpr,
    Range,
    ScopeAnd,
    ScopeOr,
    ScopePattern,
    Term,
    ValueList,
    attribute_names,
    compile_pattern,
    parse_q,
    parse_scope_q,
)


def term(names: str, op: str | None = None, value: Any = None, *, meta: str | None = None,
         member: tuple[str, ...] = ()) -> Term:
    return Term(AttrPath(tuple(names.split(".")), meta, member), op, value)


def num(v: float) -> Literal:
    return Literal(NUMBER, v)


def string(v: str) -> Literal:
    return Literal(STRING, v)


VALID: list[tuple[str, QExpr]] = [
    # Examples of clause 4.9, in order.
    ("temperature", term("temperature")),
    ("temperature==20", term("temperature", "==", num(20))),
    ('brandName!="Mercedes"', term("brandName", "!=", string("Mercedes"))),
    ('isParked=="urn:ngsi-ld:OffStreetParking:Downtown1"',
     term("isParked", "==", string("urn:ngsi-ld:OffStreetParking:Downtown1"))),
    ('speed>50;brandName!="Mercedes"',
     And((term("speed", ">", num(50)), term("brandName", "!=", string("Mercedes"))))),
    ("isMonitoredBy", term("isMonitoredBy")),
    ('((speed>50|rpm>3000);brandName=="Mercedes")',
     And((Or((term("speed", ">", num(50)), term("rpm", ">", num(3000)))),
          term("brandName", "==", string("Mercedes"))))),
    ("(temperature>=20;temperature<=25)|capacity<=10",
     Or((And((term("temperature", ">=", num(20)), term("temperature", "<=", num(25)))),
         term("capacity", "<=", num(10))))),
    ("temperature.observedAt>=2017-12-24T12:00:00Z",
     term("temperature", ">=", Literal(DATETIME, "2017-12-24T12:00:00.000Z"), meta="observedAt")),
    ('address[city]=="Berlin"', term("address", "==", string("Berlin"), member=("city",))),
    ("sensor.rawdata[airquality.particulate]==40",
     term("sensor.rawdata", "==", num(40), member=("airquality", "particulate"))),
    ('parkingTickets[value]=="Overstay 60 minutes"',
     term("parkingTickets", "==", string("Overstay 60 minutes"), member=("value",))),
    ("gender==Male", term("gender", "==", Literal(TERM, "Male"))),
    # Precedence: AND binds tighter than OR, on either side.
    ("a|b;c", Or((term("a"), And((term("b"), term("c")))))),
    ("a;b|c", Or((And((term("a"), term("b"))), term("c")))),
    ("a;(b|c)", And((term("a"), Or((term("b"), term("c")))))),
    ("(a;b);c", And((term("a"), term("b"), term("c")))),
    ("((a))", term("a")),
    (" a == 1 ; ( b | c ) ", And((term("a", "==", num(1)), Or((term("b"), term("c")))))),
    # Numbers as JSON writes them.
    ("a==-3", term("a", "==", num(-3))),
    ("a>=0.5", term("a", ">=", num(0.5))),
    ("a<1e3", term("a", "<", num(1000.0))),
    ("a<-2.5E-2", term("a", "<", num(-0.025))),
    # Strings with JSON escapes, and characters that are operators outside quotes.
    (r'a=="say \"hi\"\n"', term("a", "==", string('say "hi"\n'))),
    ('a=="x;y|z)(,.."', term("a", "==", string("x;y|z)(,.."))),
    ('a=="Đà Nẵng"', term("a", "==", string("Đà Nẵng"))),
    ("a==true", term("a", "==", Literal(BOOLEAN, True))),
    ("a!=false", term("a", "!=", Literal(BOOLEAN, False))),
    # Dates and times, normalised to the stored timestamp form.
    ("a==2018-12-04T12:00:00Z", term("a", "==", Literal(DATETIME, "2018-12-04T12:00:00.000Z"))),
    ("a<2018-12-04T12:00:00.1234Z", term("a", "<", Literal(DATETIME, "2018-12-04T12:00:00.123Z"))),
    ("a>2018-12-04T19:00:00+07:00", term("a", ">", Literal(DATETIME, "2018-12-04T12:00:00.000Z"))),
    ("a>=2018-12-04", term("a", ">=", Literal(DATE, "2018-12-04"))),
    ("a<12:30:00Z", term("a", "<", Literal(TIME, "12:30:00.000Z"))),
    ("a==08:15:00.5Z", term("a", "==", Literal(TIME, "08:15:00.500Z"))),
    # Unquoted URIs.
    ("rel==urn:ngsi-ld:Car:1", term("rel", "==", Literal(URI, "urn:ngsi-ld:Car:1"))),
    ("rel!=https://example.org/a/b?c=d#e",
     term("rel", "!=", Literal(URI, "https://example.org/a/b?c=d#e"))),
    # Ranges and lists.
    ("a==10..20", term("a", "==", Range(num(10), num(20)))),
    ("a!=-1.5..2", term("a", "!=", Range(num(-1.5), num(2)))),
    ('a=="a".."m"', term("a", "==", Range(string("a"), string("m")))),
    ("a==2020-01-01T00:00:00Z..2021-01-01T00:00:00Z",
     term("a", "==", Range(Literal(DATETIME, "2020-01-01T00:00:00.000Z"),
                           Literal(DATETIME, "2021-01-01T00:00:00.000Z")))),
    ('a=="black","red"', term("a", "==", ValueList((string("black"), string("red"))))),
    ("a!=1,2,3", term("a", "!=", ValueList((num(1), num(2), num(3))))),
    ("a==urn:x:1,urn:x:2", term("a", "==", ValueList((Literal(URI, "urn:x:1"),
                                                      Literal(URI, "urn:x:2"))))),
    ('a==1, "b" ,true', term("a", "==", ValueList((num(1), string("b"),
                                                   Literal(BOOLEAN, True))))),
    # Regular expressions: unquoted ones end at a top-level ';', '|' or ')'.
    ("name~=^Đèn.*", term("name", "~=", Pattern("^Đèn.*"))),
    ("name~=(Hue|DaNang);x", And((term("name", "~=", Pattern("(Hue|DaNang)")), term("x")))),
    ("name~=[;|)]x|y", Or((term("name", "~=", Pattern("[;|)]x")), term("y")))),
    (r"name~=a\)b", term("name", "~=", Pattern(r"a\)b"))),
    ("(name!~=abc)", term("name", "!~=", Pattern("abc"))),
    (r'name~="(?i)hue|\d+ \"x\""', term("name", "~=", Pattern(r'(?i)hue|\d+ "x"'))),
    # Paths: sub-attributes, reserved members, compound members, language keys.
    ("a.b.c>1", term("a.b.c", ">", num(1))),
    ("a.b.unitCode==\"CEL\"", term("a.b", "==", string("CEL"), meta="unitCode")),
    ("a.datasetId==urn:ngsi-ld:Dataset:1",
     term("a", "==", Literal(URI, "urn:ngsi-ld:Dataset:1"), meta="datasetId")),
    ("a.createdAt", term("a", meta="createdAt")),
    ("a[b][c]", term("a", member=("b", "c"))),
    ('name[vi]=="Đèn"', term("name", "==", string("Đèn"), member=("vi",))),
    ('name[*]=="x"', term("name", "==", string("x"), member=("*",))),
    ('a[@value]=="x"', term("a", "==", string("x"), member=("@value",))),
    ("ex:speed>5", term("ex:speed", ">", num(5))),
    ("nhiệt_độ>30", term("nhiệt_độ", ">", num(30))),
]


@pytest.mark.parametrize(("text", "expected"), VALID, ids=[t for t, _ in VALID])
def test_valid_q(text: str, expected: QExpr) -> None:
    assert parse_q(text) == expected


INVALID = [
    "",
    "   ",
    "a=1",
    "a===1",
    "a==",
    "a>",
    "==1",
    "1a==1",
    "a;",
    "|a",
    "a;;b",
    "a||b",
    "(a",
    "a)",
    "(a;b))",
    "()",
    "a b",
    "a==1 2",
    'a=="unterminated',
    r'a=="bad \q escape"',
    "a==Hello World",
    "a==hello.world",
    "a==1.",
    "a==01",
    "a==.5",
    "a==1e999",
    "a==2018-13-01",
    "a==2018-02-30",
    "a==2018-12-04T25:00:00Z",
    "a==25:00:00Z",
    "a==2018-12-04T12:00Z",
    "a>true",
    "a<urn:x:1",
    "a>1,2",
    "a<=1..2",
    "a==1..",
    "a==..2",
    "a==5..1",
    'a==1.."b"',
    "a==true..false",
    "a==1..2,3",
    "a==1,2..3",
    "a==1..2..3",
    "a~=",
    "a~=(",
    "a~=[a-",
    'a~="("',
    "a[",
    "a[]",
    "a[b",
    "a.",
    "a..b",
    ".a",
    "a.observedAt.b",
    "a.observedAt[x]",
    "a.b.datasetId.c",
    "a{b}==1",
    "a[b]]",
    "a==\"x\"y",
    "(" * 40 + "a" + ")" * 40,
]


@pytest.mark.parametrize("text", INVALID)
def test_invalid_q(text: str) -> None:
    with pytest.raises(BadRequestData):
        parse_q(text)


def test_error_message_says_where() -> None:
    with pytest.raises(BadRequestData) as caught:
        parse_q("speed>50;brandName=Mercedes")
    detail = caught.value.detail
    assert "'='" in detail and "==" in detail and "character 19" in detail


def test_nesting_below_the_limit_is_fine() -> None:
    assert parse_q("(" * 30 + "a" + ")" * 30) == term("a")


def test_attribute_names() -> None:
    expr = parse_q("(a.b>1|c[d]==2);a.observedAt>2020-01-01T00:00:00Z;e")
    assert attribute_names(expr) == {"a", "c", "e"}


def test_compile_pattern_rejects_bad_regex() -> None:
    assert compile_pattern("^a+$").search("aaa")
    with pytest.raises(BadRequestData):
        compile_pattern("a(")


VALID_SCOPES = [
    ("/Madrid", ScopePattern(("Madrid",))),
    ("/Madrid/Gardens/#", ScopePattern(("Madrid", "Gardens"), True)),
    ("/Madrid/+/ParqueNorte", ScopePattern(("Madrid", "+", "ParqueNorte"))),
    ("/#", ScopePattern((), True)),
    ("/+", ScopePattern(("+",))),
    ("/a/+/#", ScopePattern(("a", "+"), True)),
    ("(/Madrid/Districts;/CompanyA)",
     ScopeAnd((ScopePattern(("Madrid", "Districts")), ScopePattern(("CompanyA",))))),
    ("(/Madrid/Districts;/CompanyA)|/CompanyB",
     ScopeOr((ScopeAnd((ScopePattern(("Madrid", "Districts")), ScopePattern(("CompanyA",)))),
              ScopePattern(("CompanyB",))))),
    ("(/Madrid/Districts;/CompanyA),/CompanyB",
     ScopeOr((ScopeAnd((ScopePattern(("Madrid", "Districts")), ScopePattern(("CompanyA",)))),
              ScopePattern(("CompanyB",))))),
    ("/a,/b|/c", ScopeOr((ScopePattern(("a",)), ScopePattern(("b",)), ScopePattern(("c",))))),
    ("/a;/b|/c", ScopeOr((ScopeAnd((ScopePattern(("a",)), ScopePattern(("b",)))),
                          ScopePattern(("c",))))),
    ("/Việt_Nam/Đà_Nẵng", ScopePattern(("Việt_Nam", "Đà_Nẵng"))),
]


@pytest.mark.parametrize(("text", "expected"), VALID_SCOPES, ids=[t for t, _ in VALID_SCOPES])
def test_valid_scope_q(text: str, expected: object) -> None:
    assert parse_scope_q(text) == expected


@pytest.mark.parametrize(
    "text",
    ["", "a", "CompanyB", "/", "//a", "/a/", "/a//b", "/a/#/b", "/a#", "/a+", "/a/+b",
     "/#/a", "(/a", "/a)", "/a;", "/a|", "/a,,/b", "(/a;/b", "()", "/a /b"],
)
def test_invalid_scope_q(text: str) -> None:
    with pytest.raises(BadRequestData):
        parse_scope_q(text)
