"""CloudWatch metric math: parse and evaluate GetMetricData's ``Expression`` members.

Supported: numbers; the ids of other queries; ``+ - * / ^`` and unary minus (time series
combine where their timestamps match, a scalar with every point); arrays ``[m1, m2]`` and
``METRICS()`` / ``METRICS("label part")`` (the MetricStat queries' series); and the
functions ``SUM AVG MIN MAX`` (over an array: per timestamp; over one series: one scalar,
as CloudWatch does), ``RATE DIFF ABS PERIOD FILL(m, value)`` and ``FIRST LAST`` of an array.
Anything else is an :class:`ExpressionError` naming what was not understood.

A value is a float (scalar), a :class:`Series` or a list of series (array).
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Callable, Union


class ExpressionError(ValueError):
    """An expression that cannot be parsed or evaluated; the message says why."""


@dataclass
class Series:
    """Timestamps (epoch seconds) to values, with the period its points stand for."""

    points: dict[int, float]
    period: int
    label: str = ""
    partial: bool = False
    messages: list[str] = field(default_factory=list)


Value = Union[float, Series, list]

_TOKEN = re.compile(r"\s*(?:(?P<number>\d+(?:\.\d*)?(?:[eE][+-]?\d+)?|\.\d+(?:[eE][+-]?\d+)?)"
                    r"|(?P<name>[A-Za-z_][A-Za-z0-9_]*)|(?P<string>\"[^\"]*\")"
                    r"|(?P<op>[-+*/^(),\[\]]))")


def _tokens(text: str) -> list[tuple[str, str]]:
    tokens, position = [], 0
    text = text.rstrip()
    while position < len(text):
        match = _TOKEN.match(text, position)
        if match is None or match.end() == position:
            raise ExpressionError(f"Unrecognized token at position {position + 1}: "
                                  f"{text[position:position + 10]!r}.")
        kind = match.lastgroup
        tokens.append((kind, match.group(kind)))
        position = match.end()
    return tokens


# --- parsing: a precedence climber into a small tree ---------------------------------------

_BINARY = {"+": 1, "-": 1, "*": 2, "/": 2, "^": 3}


class _Parser:
    def __init__(self, text: str):
        self.tokens = _tokens(text)
        self.index = 0

    def peek(self) -> tuple[str, str] | None:
        return self.tokens[self.index] if self.index < len(self.tokens) else None

    def take(self, value: str | None = None) -> tuple[str, str]:
        token = self.peek()
        if token is None or (value is not None and token[1] != value):
            wanted = f"{value!r}" if value else "more"
            raise ExpressionError(f"Expected {wanted} in the expression.")
        self.index += 1
        return token

    def parse(self) -> tuple:
        if not self.tokens:
            raise ExpressionError("The expression is empty.")
        tree = self.expression(0)
        if self.peek() is not None:
            raise ExpressionError(f"Unexpected {self.peek()[1]!r} in the expression.")
        return tree

    def expression(self, floor: int) -> tuple:
        left = self.unary()
        while True:
            token = self.peek()
            if token is None or token[0] != "op" or token[1] not in _BINARY:
                return left
            power = _BINARY[token[1]]
            if power < floor:
                return left
            self.take()
            # ^ binds to the right, the others to the left
            right = self.expression(power if token[1] == "^" else power + 1)
            left = ("op", token[1], left, right)

    def unary(self) -> tuple:
        negative = False
        while (token := self.peek()) is not None and token[1] in ("-", "+"):
            self.take()                 # a run of signs, read without recursing
            negative ^= token[1] == "-"
        operand = self.atom()
        return ("op", "*", ("number", -1.0), operand) if negative else operand

    def atom(self) -> tuple:
        kind, text = self.take()
        if kind == "number":
            return ("number", float(text))
        if kind == "string":
            return ("string", text[1:-1])
        if text == "(":
            inner = self.expression(0)
            self.take(")")
            return inner
        if text == "[":
            items = self.arguments("]")
            return ("array", items)
        if kind == "name":
            if self.peek() == ("op", "("):
                self.take()
                return ("call", text.upper(), self.arguments(")"))
            return ("id", text)
        raise ExpressionError(f"Unexpected {text!r} in the expression.")

    def arguments(self, closing: str) -> list[tuple]:
        items: list[tuple] = []
        if self.peek() == ("op", closing):
            self.take()
            return items
        while True:
            items.append(self.expression(0))
            if self.take()[1] == closing:
                return items
            if self.tokens[self.index - 1][1] != ",":
                raise ExpressionError(f"Expected ',' or {closing!r} in the expression.")


#: How deeply parentheses, brackets and calls may nest (a parser's stack is finite).
MAX_DEPTH = 50


def parse(text: str) -> tuple:
    """The expression's tree; ExpressionError when it is not one."""
    depth = 0
    for char in text:
        depth += char in "(["
        depth -= char in ")]"
        if depth > MAX_DEPTH:
            raise ExpressionError(f"The expression nests more than {MAX_DEPTH} levels deep.")
    try:
        return _Parser(text).parse()
    except RecursionError:      # e.g. a long chain of ^, which binds to the right
        raise ExpressionError("The expression is too deeply nested.") from None


def references(tree: tuple) -> set[str]:
    """The query ids *tree* reads (METRICS() reads every MetricStat: ``"*"``); walked
    with a stack of its own, so a deep tree cannot exhaust Python's."""
    found: set[str] = set()
    pending = [tree]
    while pending:
        node = pending.pop()
        kind = node[0]
        if kind == "id":
            found.add(node[1])
        elif kind == "op":
            pending += [node[2], node[3]]
        elif kind == "array":
            pending += node[1]
        elif kind == "call":
            pending += node[2]
            if node[1] == "METRICS":
                found.add("*")
    return found


# --- evaluation -------------------------------------------------------------------------

@dataclass
class Context:
    """What an expression may read: the other queries' values by id, and the MetricStat
    series (for METRICS())."""

    values: dict[str, Value]
    metric_series: list[Series]


def _combine(op: str, left: Value, right: Value) -> Value:
    function = _OPERATORS[op]
    if isinstance(left, list) or isinstance(right, list):
        if isinstance(left, list) and isinstance(right, list):
            raise ExpressionError("Two arrays of time series cannot be combined.")
        if isinstance(left, list):
            return [_combine(op, item, right) for item in left]
        return [_combine(op, left, item) for item in right]
    if isinstance(left, Series) and isinstance(right, Series):
        points = {t: _apply(function, left.points[t], right.points[t])
                  for t in left.points if t in right.points}
        return Series(_finite(points), min(left.period, right.period))
    if isinstance(left, Series):
        return Series(_finite({t: _apply(function, v, right) for t, v in left.points.items()}),
                      left.period)
    if isinstance(right, Series):
        return Series(_finite({t: _apply(function, left, v) for t, v in right.points.items()}),
                      right.period)
    return _apply(function, left, right)


def _apply(function: Callable[[float, float], float], a: float, b: float) -> float:
    try:
        return function(a, b)
    except (ZeroDivisionError, OverflowError, ValueError):
        return math.nan


def _finite(points: dict[int, float]) -> dict[int, float]:
    """Points whose value is a number (a division by zero leaves a gap, as on AWS)."""
    return {t: v for t, v in points.items() if math.isfinite(v)}


_OPERATORS: dict[str, Callable[[float, float], float]] = {
    "+": lambda a, b: a + b, "-": lambda a, b: a - b, "*": lambda a, b: a * b,
    "/": lambda a, b: a / b, "^": lambda a, b: a ** b,
}

_REDUCERS: dict[str, Callable[[list[float]], float]] = {
    "SUM": sum, "AVG": lambda values: sum(values) / len(values), "MIN": min, "MAX": max,
}


def _series_arg(name: str, args: list[Value], count: int = 1) -> list[Value]:
    if len(args) != count:
        raise ExpressionError(f"{name} takes {count} argument{'s' if count > 1 else ''}.")
    return args


def _reduce(name: str, args: list[Value]) -> Value:
    (value,) = _series_arg(name, args)
    reducer = _REDUCERS[name]
    if isinstance(value, list):
        if not value:
            raise ExpressionError(f"{name} of an empty array.")
        stamps = sorted(set().union(*(item.points for item in value)))
        points = {t: reducer([item.points[t] for item in value if t in item.points])
                  for t in stamps}
        return Series(points, min(item.period for item in value))
    if isinstance(value, Series):
        if not value.points:
            return math.nan
        return reducer(list(value.points.values()))
    return value


def _each(value: Value, transform: Callable[[Series], Series]) -> Value:
    if isinstance(value, list):
        return [transform(item) for item in value]
    if isinstance(value, Series):
        return transform(value)
    raise ExpressionError("The function needs a time series.")


def _rate(series: Series, per_second: bool) -> Series:
    stamps = sorted(series.points)
    points = {}
    for before, after in zip(stamps, stamps[1:]):
        change = series.points[after] - series.points[before]
        points[after] = change / (after - before) if per_second else change
    return Series(points, series.period)


def _fill(series: Series, filler: float, start: int, end: int) -> Series:
    first = start - start % series.period if series.period < 60 else start - start % 60
    points = {t: filler for t in range(first, end, series.period)}
    points.update(series.points)
    return Series(points, series.period)


def evaluate(tree: tuple, context: Context, start: int, end: int) -> Value:
    """The value of *tree* over the queries in *context*, for [start, end)."""
    try:
        return _value(tree, context, start, end)
    except RecursionError:
        raise ExpressionError("The expression is too deeply nested.") from None


def _value(tree: tuple, context: Context, start: int, end: int) -> Value:
    kind = tree[0]
    if kind == "number":
        return tree[1]
    if kind == "string":
        raise ExpressionError("A string may only be METRICS()'s argument.")
    if kind == "id":
        if tree[1] not in context.values:
            raise ExpressionError(f"Unknown metric id {tree[1]!r}: each id an expression "
                                  "uses must be the Id of another query.")
        return context.values[tree[1]]
    if kind == "op":
        return _combine(tree[1], _value(tree[2], context, start, end),
                        _value(tree[3], context, start, end))
    if kind == "array":
        items = [_value(item, context, start, end) for item in tree[1]]
        flat: list[Series] = []
        for item in items:
            if isinstance(item, list):
                flat.extend(item)
            elif isinstance(item, Series):
                flat.append(item)
            else:
                raise ExpressionError("An array holds time series only.")
        return flat
    name, raw = tree[1], tree[2]
    if name == "METRICS":
        if len(raw) > 1 or (raw and raw[0][0] != "string"):
            raise ExpressionError('METRICS takes no argument or one string: METRICS("x").')
        part = raw[0][1] if raw else ""
        return [series for series in context.metric_series if part in series.label]
    args = [_value(item, context, start, end) for item in raw]
    if name in _REDUCERS:
        return _reduce(name, args)
    if name in ("RATE", "DIFF"):
        (value,) = _series_arg(name, args)
        return _each(value, lambda series: _rate(series, name == "RATE"))
    if name == "ABS":
        (value,) = _series_arg(name, args)
        if isinstance(value, float):
            return abs(value)
        return _each(value, lambda s: Series({t: abs(v) for t, v in s.points.items()},
                                             s.period))
    if name == "PERIOD":
        (value,) = _series_arg(name, args)
        return _each(value, lambda s: Series({t: float(s.period) for t in s.points},
                                             s.period))
    if name == "FILL":
        value, filler = _series_arg(name, args, 2)
        if not isinstance(filler, float):
            raise ExpressionError("FILL's second argument must be a number.")
        return _each(value, lambda s: _fill(s, filler, start, end))
    if name in ("FIRST", "LAST"):
        (value,) = _series_arg(name, args)
        if not isinstance(value, list) or not value:
            raise ExpressionError(f"{name} takes a non-empty array of time series.")
        return value[0] if name == "FIRST" else value[-1]
    raise ExpressionError(f"Unknown function {name}.")
