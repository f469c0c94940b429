"""User metadata values (``x-amz-meta-*``) as S3 keeps and returns them.

HTTP header values are bytes, which WSGI hands over as Latin-1 text. S3 reads a value that
is not US-ASCII as UTF-8 and one that is an RFC 2047 encoded word (``=?UTF-8?B?...?=``) as
what it encodes, stores the text, and returns any value that is not US-ASCII RFC 2047-encoded
(UTF-8, base64) so that it stays mail-safe: :func:`stored` on the way in, :func:`returned`
on the way out.
"""
from __future__ import annotations

import base64
import email.header
import re

_ENCODED_WORD = re.compile(r"=\?[^?\s]+\?[bBqQ]\?[^?\s]*\?=(\s+=\?[^?\s]+\?[bBqQ]\?[^?\s]*\?=)*")


def stored(wire: str) -> str:
    """The text of a header value as WSGI gives it (Latin-1 decoded bytes)."""
    try:
        text = wire.encode("latin-1").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        text = wire                     # not UTF-8: take the bytes as Latin-1, as sent
    if _ENCODED_WORD.fullmatch(text.strip()):
        try:
            return str(email.header.make_header(email.header.decode_header(text.strip())))
        except (LookupError, ValueError, UnicodeDecodeError):
            return text                 # an unknown charset or broken word: kept as sent
    return text


def returned(text: str) -> str:
    """A stored value as the header S3 sends: as it is when US-ASCII, else RFC 2047."""
    if text.isascii():
        return text
    return "=?UTF-8?B?" + base64.b64encode(text.encode("utf-8")).decode("ascii") + "?="
