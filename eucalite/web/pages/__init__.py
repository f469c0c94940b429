"""The console's pages, one module per resource family; importing one registers its views
on :data:`eucalite.web.blueprint`. Also what they share: the navigation bar, reading a whole
number from a form, and naming a download's file."""
from __future__ import annotations

import importlib
import pkgutil
from urllib.parse import quote

from flask import request

from ... import integers
from ...errors import InvalidParameterValue

#: (endpoint, label) of the navigation bar, in order; ADMIN_NAV only for the cloud admin.
NAV: list[tuple[str, str]] = []
ADMIN_NAV: list[tuple[str, str]] = []
_ORDER = ("instances", "images", "keypairs", "securitygroups", "addresses", "volumes",
          "snapshots", "buckets", "accounts", "nodes")


def add_nav(endpoint: str, label: str, admin: bool = False) -> None:
    """Show *label* linking to *endpoint* in the navigation bar (once)."""
    entries = ADMIN_NAV if admin else NAV
    if (endpoint, label) not in entries:
        entries.append((endpoint, label))
        entries.sort(key=lambda item: _ORDER.index(item[0].split(".")[-1])
                     if item[0].split(".")[-1] in _ORDER else len(_ORDER))


def load_all() -> None:
    """Import every page module in this package (each registers its own routes)."""
    for module in pkgutil.iter_modules(__path__):
        importlib.import_module(f"{__name__}.{module.name}")


def int_field(name: str, label: str, *, required: bool = True,
              default: int | None = None) -> int | None:
    """The form field *name* as a whole number, read as the APIs read integers (ASCII
    digits, at most 20: :func:`eucalite.integers.parse`); *default* when empty and not
    *required*. A bad or missing value is the InvalidParameterValue the API would give."""
    raw = (request.form.get(name) or "").strip()
    if not raw:
        if required:
            raise InvalidParameterValue(f"The request must contain a value for {label}.")
        return default
    value = integers.parse(raw)
    if value is None:
        raise InvalidParameterValue(f"Value ({raw}) for parameter {label} is invalid: "
                                    "expected a whole number.")
    return value


def attachment(filename: str) -> str:
    """A Content-Disposition that downloads as *filename*: printable ASCII in ``filename``
    (what every browser reads; anything else becomes ``_``) and exactly in ``filename*``.
    Names come from users (object keys, key pair and user names) and may hold anything; a
    header value cannot."""
    ascii_name = "".join(c if " " <= c < "\x7f" and c not in '"\\?' else "_"
                         for c in filename)
    return f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(filename)}"
