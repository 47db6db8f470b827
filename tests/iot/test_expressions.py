"""The JEXL-like mapping expression language: syntax, semantics, transforms, limits."""

from __future__ import annotations

import math
from types import MappingProxyType
from typing import Any

import pytest

from dothi.iot import expressions
from dothi.iot.expressions import (
    MAX_DEPTH,
    MAX_LENGTH,
    Expression,
    ExpressionError,
    compile_expression,
)

CONTEXT: dict[str, Any] = {
    "value": 6, "t": 21.456, "neg": -2.5, "zero": 0, "name": "DevId629", "pad": "  ab c ",
    "on": True, "off": False, "nothing": None, "array": [1, 3], "empty": [], "blank": "",
    "object": {"name": "John", "surname": "Doe", "tags": ["a", "b"], "1": "one"},
    "lat": 21.03, "lon": 105.85, "hex": "0x1F", "raw": "12.5kg",
}


def run(text: str, context: dict[str, Any] | None = None) -> Any:
    return compile_expression(text).evaluate(CONTEXT if context is None else context)


def fails(text: str, context: dict[str, Any] | None = None) -> ExpressionError:
    with pytest.raises(ExpressionError) as caught:
        run(text, context)
    return caught.value


# --- literals ----------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "result"), [
    ("42", 42), ("0", 0), ("3.25", 3.25), ("1e3", 1000.0), ("2.5E-2", 0.025), ("1e+2", 100.0),
    ("'single'", "single"), ('"double"', "double"), ("''", ""),
    (r"'it\'s'", "it's"), (r'"say \"hi\""', 'say "hi"'), (r'"a\\b"', "a\\b"),
    (r'"tab\there"', "tab\there"), (r'"line\nbreak"', "line\nbreak"), (r'"\u00e9t\u00E9"', "été"),
    (r'"\q"', "q"), ('"Hà Nội"', "Hà Nội"), ("'a|b'", "a|b"),
    ("true", True), ("false", False), ("null", None),
    ("[]", []), ("[1, 'a', null, [true]]", [1, "a", None, [True]]),
    ("{}", {}), ("{a: 1, 'b c': [2], \"d\": {e: null}}", {"a": 1, "b c": [2], "d": {"e": None}}),
    ("{k: 1, k: 2}", {"k": 2}),
])
def test_literals(text: str, result: Any) -> None:
    assert run(text) == result
    assert type(run(text)) is type(result)


def test_geojson_location_as_iot_agents_write_it() -> None:
    assert run("{coordinates: [lon, lat], type: 'Point'}") == {
        "type": "Point", "coordinates": [105.85, 21.03]}


def test_literal_containers_are_fresh_each_time() -> None:
    expression = compile_expression("[value]")
    first = expression.evaluate(CONTEXT)
    first.append(99)
    assert expression.evaluate(CONTEXT) == [6]


# --- variables and members ---------------------------------------------------------------


@pytest.mark.parametrize(("text", "result"), [
    ("value", 6), ("missing", None), ("nothing", None), ("$x", None), ("_a1", None),
    ("object.name", "John"), ('object["surname"]', "Doe"), ("object['na' + 'me']", "John"),
    ("object.tags[1]", "b"), ("object.tags[value - 5]", "b"), ("array[0]", 1),
    ("array[1.0]", 3), ("array[2]", None), ("array[-1]", None), ("array[0.5]", None),
    ("array['0']", None), ("array[true]", None), ("object[1]", "one"), ("object.missing", None),
    ("object.missing.deeper", None), ("missing.a.b[0]", None), ("name[0]", "D"),
    ("name[100]", None), ("value.x", None), ("[10, 20][1]", 20), ("{a: {b: 7}}.a.b", 7),
    ("object . name", "John"),
])
def test_variables_and_members(text: str, result: Any) -> None:
    assert run(text) == result


def test_members_never_reach_python_attributes() -> None:
    assert run("name.__class__") is None
    assert run("object.__class__.__mro__") is None
    assert run("array.append") is None
    assert run("x.__len__", {"x": "abc"}) is None


def test_any_mapping_is_a_context() -> None:
    assert compile_expression("a + 1").evaluate(MappingProxyType({"a": 1})) == 2


@pytest.mark.parametrize(("text", "names"), [
    ("1 + 2", set()),
    ("value", {"value"}),
    ("a.b.c + a['d'] + e[f]", {"a", "e", "f"}),
    ("x|round(digits)|clamp(lo, 10)", {"x", "digits", "lo"}),
    ("{type: 'Point', coordinates: [lon, lat]}", {"lon", "lat"}),
    ("c ? yes : no", {"c", "yes", "no"}),
    ("true && null || in_range", {"in_range"}),
    ("'value' + \"name\"", set()),
])
def test_names_are_the_top_level_variables(text: str, names: set[str]) -> None:
    assert compile_expression(text).names == frozenset(names)


# --- operators ---------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "result"), [
    # The IoT Agent documentation's own examples.
    ("5 * value", 30), ("(6 + value) * 3", 36), ("value / 12 + 1", 1.5),
    ("(5 + 2) * (value + 7)", 91), ("value * 5.2", 31.200000000000003),
    ('"Pruebas " + "De Strings"', "Pruebas De Strings"),
    ('name + "value is " +value', "DevId629value is 6"), ("array[1]+1", 4),
    ("value == 6? true : false", True), ('value == 6 && name|indexOf("e")>0', True),
    # Arithmetic.
    ("-value", -6), ("- -value", 6), ("--3", 3), ("-t|abs", -21.456), ("1 - -1", 2),
    ("6 / 3", 2), ("7 / 2", 3.5), ("1.5 / 0.5", 3.0), ("7 // 2", 3), ("-7 // 2", -4),
    ("7.5 // 2", 3), ("7 % 3", 1), ("-7 % 3", -1), ("7 % -3", 1), ("5.5 % 2", 1.5),
    ("2 ^ 10", 1024), ("2 ^ -1", 0.5), ("4 ^ 0.5", 2.0), ("2 ^ 3 ^ 2", 64),
    ("10 - 4 - 3", 3), ("64 / 4 / 2", 8), ("2 + 3 * 4", 14), ("(2 + 3) * 4", 20),
    # JEXL precedence: % and ^ bind tighter than *, && and || share a level.
    ("2 * 7 % 4", 6), ("2 * 3 ^ 2", 18), ("1 || 0 && 0", 0), ("0 && 1 || 1", 1),
    ("1 + 2 == 3", True), ("1 < 2 == true", True), ("'b' in 'abc' == true", True),
    # Concatenation.
    ("'n=' + value", "n=6"), ("value + 'px'", "6px"), ("'x' + 1.0", "x1"), ("'x' + 0.5", "x0.5"),
    ("'x' + true", "xtrue"), ("'x' + [1, 'a']", 'x[1,"a"]'), ("'x' + {a: 1}", 'x{"a":1}'),
    ("lon + ', ' + lat", "105.85, 21.03"), ("1 + 2 + 'a'", "3a"), ("'a' + 1 + 2", "a12"),
    ("'' + ''", ""),
])
def test_operators(text: str, result: Any) -> None:
    got = run(text)
    assert got == result
    assert type(got) is type(result)


@pytest.mark.parametrize(("text", "result"), [
    ("1 == 1.0", True), ("1 == '1'", False), ("true == 1", False), ("false == 0", False),
    ("null == null", True), ("missing == null", True), ("nothing != null", False),
    ("0 == null", False), ("'' == null", False), ("[1, 2] == [1, 2]", True),
    ("{a: 1} == {a: 1}", True), ("name != 'x'", True),
    ("1 < 2", True), ("2 <= 2", True), ("3 > 2.5", True), ("2 >= 3", False),
    ("'abc' < 'abd'", True), ("'b' > 'abc'", True), ("'10' < '9'", True),
    ("'Dev' in name", True), ("'dev' in name", False), ("629 in name", True),
    ("3 in array", True), ("3.0 in array", True), ("'3' in array", False),
    ("'name' in object", True), ("'John' in object", False), ("1 in 123", False),
    ("1 in null", False), ("null in [null]", True), ("true in [1]", False),
])
def test_comparisons(text: str, result: bool) -> None:
    assert run(text) is result


@pytest.mark.parametrize(("text", "result"), [
    ("on && 'yes'", "yes"), ("off && 'yes'", False), ("zero || 'default'", "default"),
    ("blank || nothing", None), ("value || 1/0", 6), ("off && 1/0", False),
    ("nothing && nothing.x + 1", None), ("!on", False), ("!off", True), ("!missing", True),
    ("!!value", True), ("!0", True), ("!''", True), ("!'0'", False), ("![]", False),
    ("!{}", False), ("!nan", True), ("!0.0", True),
    ("on ? 'a' : 'b'", "a"), ("empty ? 'a' : 'b'", "a"), ("blank ? 'a' : 'b'", "b"),
    ("off ? 1/0 : 2", 2), ("on ? 1 : 1/0", 1),
    ("off ? 1 : off ? 2 : 3", 3), ("on ? off ? 1 : 2 : 3", 2),
    ("off || on ? 'x' : 'y'", "x"), ("value > 5 ? 'hot' + '!' : 'cold'", "hot!"),
    ("value == 6 ? [value, value] : null", [6, 6]),
])
def test_logic_truthiness_and_ternary(text: str, result: Any) -> None:
    assert run(text, {**CONTEXT, "nan": math.nan}) == result


# --- transforms --------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "result"), [
    ("t|round", 21), ("t|round(1)", 21.5), ("t|round(2)", 21.46), ("2.5|round", 3),
    ("neg|round", -3), ("1.005|round(2)", 1.01), ("value|round(3)", 6), ("t|round(0)", 21),
    ("t|floor", 21), ("neg|floor", -3), ("t|ceil", 22), ("neg|ceil", -2),
    ("neg|abs", 2.5), ("-value|abs", -6), ("(-value)|abs", 6),
    ("t|toFixed(2)", "21.46"), ("t|toFixed", "21"), ("value|toFixed(1)", "6.0"),
    ("'21.5'|number", 21.5), ("'21'|number", 21), ("' -1e2 '|parseFloat", -100),
    ("raw|parsefloat", 12.5), ("'.5'|number", 0.5), ("value|number", 6), ("t|number", 21.456),
    ("'42'|parseInt", 42), ("'12px'|parseint", 12), ("' -7.9'|parseInt", -7), ("t|parseInt", 21),
    ("neg|parseInt", -2), ("hex|parseInt(16)", 31), ("'ff'|parseInt(16)", 255),
    ("'101'|parseInt(2)", 5), ("'+12'|parseInt", 12),
    ("value|toString", "6"), ("t|tostring", "21.456"), ("on|toString", "true"),
    ("array|toString", "[1,3]"), ("1e21|toString", "1e+21"), ("2.0|toString", "2"),
    ("name|lowercase", "devid629"), ("name|toLowerCase", "devid629"),
    ("name|uppercase", "DEVID629"), ("name|toUpperCase", "DEVID629"), ("pad|trim", "ab c"),
    ("value|uppercase", "6"),
    ("name|substr(3)", "Id629"), ("name|substr(0, 3)", "Dev"), ("name|substr(-3)", "629"),
    ("name|substr(-3, 2)", "62"), ("name|substr(2, 0)", ""), ("name|substr(2, -1)", ""),
    ("name|substr(50)", ""), ("name|substr(-50, 2)", "De"),
    ("'a-b-c'|replace('-', '+')", "a+b+c"), ("'a-b-c'|replaceallstr('-', '')", "abc"),
    ("'a-b-c'|replacestr('-', '')", "ab-c"),
    ("'a,b,,c'|split(',')", ["a", "b", "", "c"]), ("'abc'|split('')", ["a", "b", "c"]),
    ("'21.0,105.8'|split(',')[1]|number", 105.8),
    ("name|length", 8), ("array|length", 2), ("object|length", 4), ("value|length", 1),
    ("blank|length", 0),
    ("name|indexOf('e')", 1), ("name|indexOf('z')", -1), ("array|indexOf(3)", 1),
    ("array|indexOf('3')", -1),
    ("[3, 1, 2]|min", 1), ("[3, 1.5, 2]|max", 3), ("value|max(0)", 6), ("neg|max(0)", 0),
    ("value|min(10, 2)", 2), ("[7]|max", 7),
    ("t|clamp(0, 20)", 20), ("neg|clamp(0, 20)", 0), ("value|clamp(0, 20)", 6),
    ("t|clamp(0.5, 0.5)", 0.5),
    ("name|substr(0, name|indexOf('e') + 1)", "De"), ("pad | trim | uppercase", "AB C"),
    ("(value + 0.5)|round", 7), ("value + 0.5|round", 7), ("'v' + t|round(1)", "v21.5"),
])
def test_transforms(text: str, result: Any) -> None:
    got = run(text)
    assert got == result
    assert type(got) is type(result)


@pytest.mark.parametrize(("text", "message"), [
    ("name|round", "round needs a number, got the string 'DevId629'"),
    ("missing|floor", "floor needs a number, got null"),
    ("on|ceil", "ceil needs a number, got a boolean"),
    ("t|round(-1)", "round's digits must be a whole number from 0 to 15, got -1"),
    ("t|round(1.5)", "round's digits must be a whole number from 0 to 15, got 1.5"),
    ("t|round('2')", "got the string '2'"),
    ("t|toFixed(21)", "toFixed must be a whole number from 0 to 20, got 21"),
    ("'abc'|number", "cannot read a number from the string 'abc'"),
    ("''|parseFloat", "cannot read a number from the string ''"),
    ("missing|number", "cannot read a number from null"),
    ("on|number", "from a boolean"),
    ("'px'|parseInt", "cannot read an integer from the string 'px'"),
    ("'12'|parseInt(1)", "parseInt's radix must be a whole number from 2 to 36, got 1"),
    ("missing|toString", "cannot make a string of null"),
    ("missing|trim", "cannot make a string of null"),
    ("name|substr('a')", "substr needs a number"),
    ("[]|max", "max of an empty array"),
    ("[1, 'a']|min", "min needs a number, got the string 'a'"),
    ("t|clamp(5, 1)", "clamp's bounds are reversed: 5 > 1"),
    ("t|clamp(0, null)", "clamp needs a number, got null"),
])
def test_transform_errors(text: str, message: str) -> None:
    assert message in str(fails(text))


# --- evaluation errors -------------------------------------------------------------------


@pytest.mark.parametrize(("text", "message"), [
    ("missing + 1", "'+' needs a number, got null"),
    ("1 - nothing", "'-' needs a number, got null"),
    ("'a' * 2", "'*' needs a number, got the string 'a'"),
    ("on + 1", "'+' needs a number, got a boolean"),
    ("array + 1", "'+' needs a number, got an array"),
    ("object - 1", "got an object"),
    ("-name", "unary '-' needs a number, got the string 'DevId629'"),
    ("'x' + missing", "cannot make a string of null"),
    ("1 / 0", "division by zero"), ("1 / zero", "division by zero"),
    ("1.5 // 0.0", "division by zero"), ("1 % 0", "division by zero"),
    ("null < 1", "cannot compare null < the number 1"),
    ("'a' >= 1", "cannot compare the string 'a' >= the number 1"),
    ("array > 1", "cannot compare an array > the number 1"),
    ("on <= off", "cannot compare a boolean <= a boolean"),
    ("1e308 * 10", "numeric result of '*' is out of range"),
    ("10 ^ 400", "numeric result of '^' is out of range"),
    ("1e308 + 1e308", "numeric result of '+' is out of range"),
    ("(-8) ^ 0.5", "cannot evaluate '(-8) ^ 0.5'"),
])
def test_evaluation_errors(text: str, message: str) -> None:
    error = fails(text)
    assert message in str(error)
    assert error.position is None


def test_error_type_is_a_value_error() -> None:
    assert issubclass(ExpressionError, ValueError)


# --- syntax errors -----------------------------------------------------------------------


@pytest.mark.parametrize(("text", "message"), [
    ("", "expression is empty"),
    ("  \n ", "expression is empty"),
    ("1 +", "unexpected end of expression at position 3"),
    ("(1", "expected ')' but found end of expression at position 2"),
    ("(1]", "expected ')' but found ']' at position 2"),
    ("a..b", "expected a name after '.' but found '.' at position 2"),
    ("a.1", "expected a name after '.' but found 1 at position 2"),
    ("a.in", "expected a name after '.' but found 'in' at position 2"),
    ("\"abc", "unterminated string at position 0"),
    ("x + 'abc", "unterminated string at position 4"),
    ("1 = 2", "unexpected '=' at position 2"),
    ("a & b", "unexpected '&' at position 2"),
    ("a === b", "unexpected '=' at position 4"),
    ("@", "unexpected '@' at position 0"),
    ("1 2", "unexpected 2 at position 2"),
    ("a b", "unexpected 'b' at position 2"),
    ("a|nope", "unknown transform 'nope' at position 2"),
    ("a|", "expected a transform name after '|' but found end of expression at position 2"),
    ("a|1", "expected a transform name after '|' but found 1 at position 2"),
    ("a|round(1, 2)", "transform 'round' takes 0 to 1 argument(s), got 2 at position 2"),
    ("a|clamp(1)", "transform 'clamp' takes 2 argument(s), got 1 at position 2"),
    ("a|floor()", None),
    ("a|round(1", "expected ',' but found end of expression at position 9"),
    ("[1, 2", "expected ',' but found end of expression at position 5"),
    ("[1,]", "unexpected ']' at position 3"),
    ("{a 1}", "expected ':' but found 1 at position 3"),
    ("{1: 2}", "expected an object key but found 1 at position 1"),
    ("{a: 1,}", "expected an object key but found '}' at position 6"),
    ("a ? b", "expected ':' but found end of expression at position 5"),
    ("a : b", "unexpected ':' at position 2"),
    ("in", "unexpected 'in' at position 0"),
    ("1 in", "unexpected end of expression at position 4"),
    ("a[", "unexpected end of expression at position 2"),
    ("a[1", "expected ']' but found end of expression at position 3"),
    ("()", "unexpected ')' at position 1"),
    ("1e999", "number 1e999 is out of range at position 0"),
    ("__import__('os')", "unexpected '(' at position 10"),
    ("name.upper()", "unexpected '(' at position 10"),
    ("lambda: 1", "unexpected ':' at position 6"),
    ("a;b", "unexpected ';' at position 1"),
])
def test_syntax_errors(text: str, message: str | None) -> None:
    if message is None:  # empty parentheses are allowed for a transform without arguments
        compile_expression(text)
        return
    with pytest.raises(ExpressionError) as caught:
        compile_expression(text)
    assert str(caught.value) == message
    assert caught.value.position == int(message.rsplit(" ", 1)[1]) \
        if "position" in message else caught.value.position is None


def test_in_is_a_keyword_only_as_a_whole_word() -> None:
    assert run("index + inner", {"index": 1, "inner": 2}) == 3
    assert compile_expression("input in inputs").names == {"input", "inputs"}


# --- limits ------------------------------------------------------------------------------


def test_length_limit() -> None:
    assert run("1" + " " * (MAX_LENGTH - 1)) == 1
    with pytest.raises(ExpressionError, match=f"longer than {MAX_LENGTH} characters"):
        compile_expression("1" + " " * MAX_LENGTH)


@pytest.mark.parametrize("build", [
    lambda n: "(" * n + "1" + ")" * n,
    lambda n: "[" * n + "]" * n,
    lambda n: "!" * n + "1",
    lambda n: "+".join(["1"] * (n + 1)),
    lambda n: "a" + ".b" * n,
    lambda n: "a" + "|abs" * n,
    lambda n: "a ? " * n + "1" + " : 2" * n,
])
def test_nesting_limit(build: Any) -> None:
    compile_expression(build(MAX_DEPTH - 2))
    with pytest.raises(ExpressionError, match=f"nested more than {MAX_DEPTH} deep at position"):
        compile_expression(build(MAX_DEPTH + 1))


@pytest.mark.parametrize("text", [
    "(" * 499 + ")" * 499, "!" * 999 + "a", "-" * 999 + "1", "[" * 500 + "]" * 500,
    "{a:" * 250, "a" + "|abs" * 249, "1" + "+1" * 499,
])
def test_hostile_input_is_refused_quickly(text: str) -> None:
    with pytest.raises(ExpressionError):
        compile_expression(text)


def test_deep_but_allowed_expression_evaluates() -> None:
    text = "+".join(["value"] * MAX_DEPTH)
    assert run(text) == 6 * MAX_DEPTH


# --- compiled once -----------------------------------------------------------------------


def test_evaluation_does_not_parse_again(monkeypatch: pytest.MonkeyPatch) -> None:
    expression = compile_expression("value|round + 1 > 2 ? name|uppercase : 'no'")

    def refuse(text: str) -> Any:
        raise AssertionError("re-tokenized at evaluation")

    monkeypatch.setattr(expressions, "_tokenize", refuse)
    assert expression.evaluate(CONTEXT) == "DEVID629"
    assert expression.evaluate({"value": 0}) == "no"


def test_expression_object() -> None:
    expression = compile_expression("level / 100")
    assert isinstance(expression, Expression)
    assert expression.text == "level / 100"
    assert repr(expression) == "Expression('level / 100')"
    assert [expression.evaluate({"level": n}) for n in (85.3, 100, 50)] == [0.853, 1, 0.5]
