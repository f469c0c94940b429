"""``MaxResults`` / ``NextToken`` paging shared by the EC2 Describe actions.

Every paged Describe declares its rules once as a :class:`Paging` (AWS's bounds for its
``MaxResults``, and the id list ``MaxResults`` may not be combined with), reads the request
with :meth:`Paging.read` before doing any work, and cuts its filtered, ordered result with
:meth:`PageRequest.page`.

A token is opaque to clients: the base64 of the last item's key on the page just returned.
Resuming from a key (rather than an offset) keeps pages stable when items are created or
deleted between two calls: nothing is skipped or repeated that was there the whole time.
"""
from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from typing import Any, Callable, TypeVar

from .errors import InvalidParameterCombination
from .errors.ec2 import InvalidPaginationToken
from .query import QueryParams

T = TypeVar("T")

#: Prefix inside the token so that a random base64 string is recognised as foreign.
_MAGIC = "eucalite:"


@dataclass(frozen=True)
class Paging:
    """How one Describe action pages.

    *ids* is the Query name of the id list that ``MaxResults`` may not be combined with
    (``"InstanceId"``), and *conflict* the two parameter names AWS's error message gives for
    that action (``("instancesSet", "maxResults")``). With *clamp*, a ``MaxResults`` above
    *maximum* asks for *maximum* items instead of being refused: AWS documents that for
    DescribeVolumes ("larger than 500, only 500 items are returned") and DescribeSnapshots,
    and the aws CLI sends ``MaxResults=1000`` to both by default.
    """

    minimum: int = 5
    maximum: int = 1000
    ids: str | None = None
    conflict: tuple[str, str] | None = None
    clamp: bool = False

    def read(self, params: QueryParams) -> "PageRequest":
        """``MaxResults`` (within bounds) and ``NextToken`` of a request;
        InvalidParameterValue or InvalidParameterCombination if they are wrong."""
        max_results = params.get_int("MaxResults", minimum=self.minimum,
                                     maximum=None if self.clamp else self.maximum)
        if max_results is not None and self.clamp:
            max_results = min(max_results, self.maximum)
        if max_results is not None and self.ids and params.get_list(self.ids):
            ids_name, max_name = self.conflict or (self.ids, "MaxResults")
            raise InvalidParameterCombination(f"The parameter {ids_name} cannot be used with "
                                              f"the parameter {max_name}")
        return PageRequest(max_results, params.get("NextToken"))


@dataclass(frozen=True)
class PageRequest:
    """What a client asked for: at most *max_results* items (None: all), after *token*."""

    max_results: int | None
    token: str | None

    @property
    def after(self) -> str | None:
        """The key the request resumes after (None: from the start), for a Describe that
        cuts its pages in the database; InvalidPaginationToken for a token not ours."""
        return decode_token(self.token) if self.token else None

    def page(self, items: list[T], key: Callable[[T], str] | None = None
             ) -> tuple[list[T], str | None]:
        """:func:`paginate` with this request (*key* defaults to the item's ``id``)."""
        return paginate(items, self.max_results, self.token, key=key or _default_key)


def encode_token(key: str) -> str:
    """The ``NextToken`` that resumes after *key*."""
    return base64.urlsafe_b64encode((_MAGIC + key).encode("utf-8")).decode("ascii")


def decode_token(token: str) -> str:
    """The key a token made by :func:`encode_token` resumes after, or InvalidPaginationToken."""
    try:
        text = base64.urlsafe_b64decode(token.encode("ascii")).decode("utf-8")
    except (binascii.Error, UnicodeError, ValueError):
        text = ""
    if not text.startswith(_MAGIC):
        raise InvalidPaginationToken(f"The specified pagination token '{token}' is not valid "
                                     "or is expired.")
    return text[len(_MAGIC):]


def _default_key(item: Any) -> str:
    return item.id


def paginate(items: list[T], max_results: int | None, next_token: str | None,
             key: Callable[[T], str] = _default_key) -> tuple[list[T], str | None]:
    """One page of *items* and the token for the next page (None on the last page).

    *items* must come in the same order on every call (callers sort them). The page starts
    right after the item whose key the token names; if that item has gone away since, it
    starts at the first item whose key sorts after it, which is exact when *items* are in
    key order. With *max_results* None the rest of the list is one page.
    """
    start = 0
    if next_token:
        last = decode_token(next_token)
        keys = [key(item) for item in items]
        if last in keys:
            start = keys.index(last) + 1
        else:
            start = next((index for index, value in enumerate(keys) if value > last),
                         len(items))
    if max_results is None:
        return items[start:], None
    page = items[start:start + max_results]
    more = start + max_results < len(items)
    return page, (encode_token(key(page[-1])) if more and page else None)
