"""Reading the integers clients send (headers, query parameters, XML and JSON values).

Python's own parsing is too generous for wire formats: ``int()`` takes any Unicode decimal
digit (``'٣'`` is 3), underscores (``'1_000'``), surrounding whitespace and a ``+``;
``str.isdigit()`` is true for ``'²'``, which ``int()`` then refuses with an exception; and a
value of thousands of digits costs quadratic time before Python refuses it. AWS takes ASCII
digits only. :func:`parse` is the one check every integer from a client goes through; each
caller turns a ``None`` into its own service's error.
"""
from __future__ import annotations

#: More digits than any value AWS takes (a 64-bit integer has at most 19 or 20).
MAX_DIGITS = 20
INT32_MAX = 2 ** 31 - 1
INT64_MAX = 2 ** 63 - 1


def parse(text: str | None, *, signed: bool = False, max_digits: int = MAX_DIGITS,
          minimum: int | None = None, maximum: int | None = None) -> int | None:
    """The value of *text* if it is one or more ASCII digits (after a ``-`` when *signed*),
    at most *max_digits* of them, within *minimum*..*maximum* (each inclusive, None for no
    bound); None otherwise. No whitespace, sign ``+``, underscore or other digits pass."""
    if not isinstance(text, str):
        return None
    digits = text[1:] if signed and text.startswith("-") else text
    if not digits or len(digits) > max_digits or not (digits.isascii() and digits.isdigit()):
        return None
    value = int(text)
    if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
        return None
    return value
