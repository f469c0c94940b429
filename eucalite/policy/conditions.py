"""Policy conditions, pure: the ``Condition`` block's operators (``StringLike``,
``NumericLessThan``, ``IpAddress``, ``...IfExists``, ``ForAnyValue:``...), their parsing and
validation, and their evaluation against a request's condition keys, with the ``*``/``?``
wildcards and ``${...}`` policy variables IAM defines.

:func:`parse_conditions` turns a statement's Condition object into :class:`Condition`
tuples (:class:`~eucalite.policy.grammar.Malformed` when invalid: the grammar in use says
which error and message the client sees); :func:`normalize_context` prepares the request's
keys and :func:`condition_holds` tests one condition. :func:`matches` and :func:`wildcard`
are the glob matching policies use for actions and resources too.
"""
from __future__ import annotations

import datetime as dt
import functools
import ipaddress
import re
from dataclasses import dataclass
from typing import Any, Callable, Mapping

from .. import utctime, wildcards as glob
from .grammar import Malformed


@dataclass(frozen=True)
class Condition:
    """One key test of a statement's Condition block, e.g. ``StringLike s3:prefix [...]``."""

    operator: str                 # as written, e.g. "ForAnyValue:StringLikeIfExists"
    base: str                     # "StringLike"
    qualifier: str | None         # "ForAnyValue" | "ForAllValues" | None
    if_exists: bool
    key: str                      # lower-case
    values: tuple[str, ...]


# --- operators ------------------------------------------------------------------------

#: negated operator -> the positive operator it negates.
_NEGATIONS = {
    "StringNotEquals": "StringEquals",
    "StringNotEqualsIgnoreCase": "StringEqualsIgnoreCase",
    "StringNotLike": "StringLike",
    "NumericNotEquals": "NumericEquals",
    "DateNotEquals": "DateEquals",
    "NotIpAddress": "IpAddress",
    "ArnNotEquals": "ArnEquals",
    "ArnNotLike": "ArnLike",
}
_POSITIVE = ("StringEquals", "StringEqualsIgnoreCase", "StringLike",
             "NumericEquals", "NumericLessThan", "NumericLessThanEquals", "NumericGreaterThan",
             "NumericGreaterThanEquals", "DateEquals", "DateLessThan", "DateLessThanEquals",
             "DateGreaterThan", "DateGreaterThanEquals", "Bool", "BinaryEquals", "IpAddress",
             "ArnEquals", "ArnLike")
OPERATORS = frozenset((*_POSITIVE, *_NEGATIONS, "Null"))
_OPERATOR_NAMES = {name.lower(): name for name in OPERATORS}
_QUALIFIERS = {"foranyvalue": "ForAnyValue", "forallvalues": "ForAllValues"}


def _split_operator(operator: str) -> tuple[str | None, str, bool]:
    """``ForAnyValue:StringLikeIfExists`` -> ("ForAnyValue", "StringLike", True)."""
    qualifier = None
    name = operator
    if ":" in name:
        prefix, name = name.split(":", 1)
        qualifier = _QUALIFIERS.get(prefix.lower())
        if qualifier is None:
            raise Malformed("condition_type", operator=operator)
    if_exists = name.lower().endswith("ifexists")
    if if_exists:
        name = name[:-len("IfExists")]
    base = _OPERATOR_NAMES.get(name.lower())
    if base is None or (base == "Null" and (if_exists or qualifier)):
        raise Malformed("condition_type", operator=operator)
    return qualifier, base, if_exists


def _condition_value(value: Any, operator: str) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float, str)):
        return str(value)
    raise Malformed("condition_value_type", operator=operator)


def _check_condition_values(base: str, values: tuple[str, ...]) -> None:
    family = _NEGATIONS.get(base, base)
    try:
        for value in values:
            if family.startswith("Numeric"):
                float(value)
            elif family.startswith("Date"):
                parse_date(value)
            elif family == "IpAddress":
                ipaddress.ip_network(value.strip(), strict=False)
            elif family == "Null" and value.lower() not in ("true", "false"):
                raise ValueError(value)
    except ValueError:
        if family == "IpAddress":
            raise Malformed("condition_ip")
        raise Malformed("condition_value", values=values, operator=base)


def parse_conditions(raw: Any, key_pattern: re.Pattern[str]) -> tuple[Condition, ...]:
    """A statement's Condition object as conditions; keys must match *key_pattern* (each
    grammar names the services whose keys it knows)."""
    if not isinstance(raw, dict):
        raise Malformed("json")
    conditions: list[Condition] = []
    for operator, tests in raw.items():
        qualifier, base, if_exists = _split_operator(operator)
        if not isinstance(tests, dict):
            raise Malformed("json")
        for key, value in tests.items():
            if not key_pattern.match(key):
                raise Malformed("condition_key", key=key)
            items = value if isinstance(value, list) else [value]
            values = tuple(_condition_value(item, operator) for item in items)
            _check_condition_values(base, values)
            conditions.append(Condition(operator, base, qualifier, if_exists, key.lower(),
                                        values))
    return tuple(conditions)


# --- matching helpers -----------------------------------------------------------------

def wildcard(pattern: str, ignore_case: bool) -> glob.Pattern:
    """``*`` (any run) and ``?`` (one character) glob, matched without backtracking (a
    regular expression took seconds to hours on ``*a*a*a*b`` against a long key)."""
    return glob.compile(pattern, escapes=False, ignore_case=ignore_case)


def glob_matches(pattern: str, value: str, ignore_case: bool = False) -> bool:
    """Does *value* match ``*``/``?`` glob *pattern* (see :func:`wildcard`)?"""
    return _matcher(pattern, ignore_case)(value)


@functools.lru_cache(maxsize=4096)
def _matcher(pattern: str, ignore_case: bool) -> Callable[[str], bool]:
    """*pattern* as a test: the common shapes (no wildcard, one trailing ``*``, as in
    ``ec2:Describe*``) as plain string comparisons, the rest through :func:`wildcard`."""
    fold = str.lower if ignore_case else str
    if "?" not in pattern and "*" not in pattern[:-1]:
        if pattern.endswith("*"):
            prefix = fold(pattern[:-1])
            return lambda value: fold(value).startswith(prefix)
        literal = fold(pattern)
        return lambda value: fold(value) == literal
    return wildcard(pattern, ignore_case).matches


def _tokens(text: str, wildcards: bool) -> list:
    return glob.parse(text, escapes=False) if wildcards else list(text)


_VARIABLE = re.compile(r"\$\{([^}]*)\}")
_LITERAL_VARIABLES = {"*": "*", "?": "?", "$": "$"}


def _variable(name: str, context: Mapping[str, list[str]]) -> str | None:
    """The value of ``${name}`` (``${key, 'default'}`` allowed), None when unresolvable."""
    name = name.strip()
    if name in _LITERAL_VARIABLES:
        return _LITERAL_VARIABLES[name]
    default = None
    if "," in name:
        name, fallback = (part.strip() for part in name.split(",", 1))
        if len(fallback) >= 2 and fallback[0] == fallback[-1] == "'":
            default = fallback[1:-1]
    values = context.get(name.lower())
    if values is None or len(values) != 1:
        return default
    return values[0]


def _pattern(text: str, context: Mapping[str, list[str]], variables: bool, wildcards: bool,
             ignore_case: bool = False) -> glob.Pattern | None:
    """*text* as a glob: ``*``/``?`` wildcards when *wildcards*, ``${...}`` policy variables
    (substituted literally) when *variables*; None when a variable cannot be resolved."""
    if not (variables and "${" in text):
        return glob.Pattern.from_tokens(_tokens(text, wildcards), ignore_case)
    tokens: list = []
    position = 0
    for match in _VARIABLE.finditer(text):
        tokens += _tokens(text[position:match.start()], wildcards)
        value = _variable(match.group(1), context)
        if value is None:
            return None
        tokens += list(value)
        position = match.end()
    tokens += _tokens(text[position:], wildcards)
    return glob.Pattern.from_tokens(tokens, ignore_case)


def matches(text: str, value: str, context: Mapping[str, list[str]], *, variables: bool,
            wildcards: bool, ignore_case: bool = False) -> bool:
    """Does *value* match policy string *text* (see :func:`_pattern`)? Text without
    variables is compared directly or through the compiled-pattern cache: every request
    reads every statement, so nothing is compiled twice."""
    if not (variables and "${" in text):
        if not wildcards:
            return text.lower() == value.lower() if ignore_case else text == value
        return glob_matches(text, value, ignore_case)
    pattern = _pattern(text, context, variables, wildcards, ignore_case)
    return pattern is not None and pattern.matches(value)


@functools.lru_cache(maxsize=4096)
def _network(text: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    return ipaddress.ip_network(text.strip(), strict=False)


@functools.lru_cache(maxsize=4096)
def parse_date(text: str) -> dt.datetime:
    """ISO 8601 (``Z`` or offset; naive means UTC) or epoch seconds -> aware datetime."""
    value = text.strip()
    if re.fullmatch(r"-?[0-9]+(\.[0-9]+)?", value):
        try:
            return dt.datetime.fromtimestamp(float(value), dt.timezone.utc)
        except (OverflowError, OSError):        # beyond what a datetime holds
            raise ValueError(f"not a date: {value}") from None
    if value[-1:] in ("Z", "z"):
        value = value[:-1] + "+00:00"
    parsed = dt.datetime.fromisoformat(value)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.timezone.utc)


def _compare(base: str, request: str, policy: str, context: Mapping[str, list[str]],
             variables: bool) -> bool:
    """Does one request value satisfy positive operator *base* against one policy value?"""
    if base in ("StringEquals", "StringEqualsIgnoreCase"):
        return matches(policy, request, context, variables=variables, wildcards=False,
                       ignore_case=base == "StringEqualsIgnoreCase")
    if base in ("StringLike", "ArnLike", "ArnEquals"):
        return matches(policy, request, context, variables=variables, wildcards=True)
    if base == "Bool":
        return request.strip().lower() == policy.strip().lower()
    if base == "BinaryEquals":
        return request == policy
    try:
        if base == "IpAddress":
            network = _network(policy)
            return ipaddress.ip_address(request.strip()) in network
        if base.startswith("Numeric"):
            return _ORDER[base[len("Numeric"):]](float(request), float(policy))
        if base.startswith("Date"):
            return _ORDER[base[len("Date"):]](parse_date(request), parse_date(policy))
    except (ValueError, TypeError, OverflowError):
        return False
    raise AssertionError(base)  # pragma: no cover - every operator is handled above


_ORDER: dict[str, Callable[[Any, Any], bool]] = {
    "Equals": lambda a, b: a == b,
    "LessThan": lambda a, b: a < b,
    "LessThanEquals": lambda a, b: a <= b,
    "GreaterThan": lambda a, b: a > b,
    "GreaterThanEquals": lambda a, b: a >= b,
}


def normalize_context(context: Mapping[str, Any] | None) -> dict[str, list[str]]:
    """Lower-case keys; every value a list of strings (booleans as ``true``/``false``)."""
    normalized: dict[str, list[str]] = {}
    for key, value in (context or {}).items():
        if value is None:
            continue
        items = list(value) if isinstance(value, (list, tuple, set, frozenset)) else [value]
        normalized[key.lower()] = [_context_text(item) for item in items]
    return normalized


def _context_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dt.datetime):
        value = utctime.naive(value)
        return value.strftime("%Y-%m-%dT%H:%M:%SZ")
    return str(value)


def condition_holds(condition: Condition, context: Mapping[str, list[str]],
                    variables: bool = True) -> bool:
    """Evaluate one condition against a normalized context (see :func:`evaluate`).

    Several policy values are ORed (NORed for negated operators). A missing key fails
    positive operators and satisfies negated ones, ``...IfExists`` and ``ForAllValues``;
    ``Null`` tests presence itself.
    """
    present = context.get(condition.key)
    if condition.base == "Null":
        absent = not present
        return any((value.lower() == "true") == absent for value in condition.values)
    negated = condition.base in _NEGATIONS
    positive = _NEGATIONS.get(condition.base, condition.base)
    if not present:
        if condition.if_exists or condition.qualifier == "ForAllValues":
            return True
        return negated and condition.qualifier is None

    def holds(value: str) -> bool:
        matched = any(_compare(positive, value, policy_value, context, variables)
                      for policy_value in condition.values)
        return matched != negated

    if condition.qualifier == "ForAllValues":
        return all(holds(value) for value in present)
    if condition.qualifier == "ForAnyValue":
        return any(holds(value) for value in present)
    return all(map(holds, present)) if negated else any(map(holds, present))

