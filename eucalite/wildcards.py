"""``*`` / ``?`` wildcard matching without backtracking, for patterns clients write.

EC2 filter values (``Filter.N.Value.M``) and policy strings (``StringLike``, resource ARNs)
use the same glob: ``*`` matches any run of characters, ``?`` exactly one, and the whole
value must match. Translated to a regular expression, ``*a*a*a*a*b`` against a long run of
``a`` backtracks through every way of placing the stars, which is exponential in their
number: one request could hold the process for minutes.

:class:`Pattern` instead splits the pattern at its stars into segments and places each
segment at the leftmost position it fits after the previous one. Leftmost is always a
right choice for a star (any later fit leaves less room for the rest), so nothing is ever
retried: matching costs at most ``len(value) × len(pattern)`` character comparisons, and
is linear in ``len(value)`` when the segments hold no ``?``.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Iterable, Union


class _Any:
    """``?``: one character, whatever it is."""

    def __repr__(self) -> str:  # pragma: no cover - debugging aid
        return "?"


#: A pattern element: a literal character or ANY (``?``); STAR separates segments.
ANY = _Any()
STAR = object()
Token = Union[str, _Any, object]


def parse(pattern: str, *, escapes: bool = True) -> list[Token]:
    """*pattern*'s tokens: characters, :data:`ANY` for ``?`` and :data:`STAR` for ``*``.

    With *escapes* (EC2 filters) a backslash makes the next character literal (``\\*`` is a
    star, ``\\\\`` a backslash); a trailing lone backslash is ignored. Policies have no
    escapes (they write ``${*}`` instead): pass ``escapes=False``.
    """
    out: list[Token] = []
    escaped = False
    for char in pattern:
        if escaped:
            out.append(char)
            escaped = False
        elif escapes and char == "\\":
            escaped = True
        elif char == "*":
            out.append(STAR)
        elif char == "?":
            out.append(ANY)
        else:
            out.append(char)
    return out


@dataclass(frozen=True)
class Pattern:
    """A compiled wildcard pattern; :meth:`matches` tests a whole value against it."""

    head: tuple                  # the segment before the first star (anchored at the start)
    middle: tuple                # segments between stars, each placed leftmost
    tail: tuple | None           # the segment after the last star; None when no star
    ignore_case: bool = False

    @classmethod
    def from_tokens(cls, tokens: Iterable[Token], ignore_case: bool = False) -> "Pattern":
        segments: list[list] = [[]]
        for token in tokens:
            if token is STAR:
                segments.append([])
            elif ignore_case and isinstance(token, str):
                segments[-1].extend(token.lower())  # lower() may give several characters
            else:
                segments[-1].append(token)
        if len(segments) == 1:
            return cls(tuple(segments[0]), (), None, ignore_case)
        return cls(tuple(segments[0]), tuple(tuple(s) for s in segments[1:-1] if s),
                   tuple(segments[-1]), ignore_case)

    def matches(self, value: str) -> bool:
        if self.ignore_case:
            value = value.lower()
        if self.tail is None:                       # no star: one exact-length segment
            return len(value) == len(self.head) and _fits(self.head, value, 0)
        if len(self.head) + len(self.tail) > len(value):
            return False
        if not _fits(self.head, value, 0):
            return False
        end = len(value) - len(self.tail)
        if not _fits(self.tail, value, end):
            return False
        position = len(self.head)
        for segment in self.middle:
            found = _find(segment, value, position, end)
            if found < 0:
                return False
            position = found + len(segment)
        return True


def _fits(segment: tuple, value: str, start: int) -> bool:
    """Whether *segment* matches ``value[start:start + len(segment)]`` (which exists)."""
    for offset, token in enumerate(segment):
        if token is not ANY and value[start + offset] != token:
            return False
    return True


def _find(segment: tuple, value: str, start: int, end: int) -> int:
    """The leftmost position ≥ *start* where *segment* fits inside ``value[:end]``, or -1."""
    if ANY not in segment:
        return value.find("".join(segment), start, end)
    for position in range(start, end - len(segment) + 1):
        if _fits(segment, value, position):
            return position
    return -1


@lru_cache(maxsize=1024)
def compile(pattern: str, *, escapes: bool = True, ignore_case: bool = False) -> Pattern:
    """*pattern* (see :func:`parse`) compiled for repeated :meth:`Pattern.matches` calls."""
    return Pattern.from_tokens(parse(pattern, escapes=escapes), ignore_case)
