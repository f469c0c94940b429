"""Console and instance-metadata requests for the fuzz test (tests/test_fuzz.py): the two
endpoints that speak plain HTTP rather than an AWS protocol.

Console: every route the blueprint registers, with ids in the path that exist or are
malformed, query strings and form fields (the names the templates and views use) with
malformed values, multipart uploads, and the CSRF token right, missing or malformed.
Metadata: every path of the tree, under every version, with malformed segments, methods,
IMDSv2 tokens and TTLs, from the instance's address or another.
"""
from __future__ import annotations

import re
from pathlib import Path

from eucalite.compute import metadata
from fuzzutil import Wire, encode_pairs, maybe_nasty, nasty, pct

ROOT = Path(__file__).resolve().parent.parent


def console_field_names() -> list[str]:
    """Every form and query field the console's templates and views name."""
    names = set()
    for path in (ROOT / "eucalite" / "templates" / "console").glob("*.html"):
        names.update(re.findall(r'name="([A-Za-z_.-]+)"', path.read_text()))
    for path in (ROOT / "eucalite" / "web").rglob("*.py"):
        names.update(re.findall(r'request\.(?:args|form|files)(?:\.get)?[\[(]"([\w-]+)"',
                                path.read_text()))
    return sorted(names - {"csrf_token", "viewport", "csrf-token"})


def console_routes(app) -> list[tuple[str, str]]:
    """(method, rule) of every console route but its static files."""
    routes = []
    for rule in app.url_map.iter_rules():
        if rule.endpoint.startswith("console.") and rule.endpoint != "console.static":
            for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
                routes.append((method, rule.rule))
    return sorted(routes)


def multipart(fields: list[tuple[str, str]], boundary: str = "fuzzform") -> bytes:
    parts = []
    for name, value in fields:
        disposition = f'form-data; name="{name}"'
        if name == "file":
            disposition += '; filename="f.img"'
        parts.append(f"--{boundary}\r\nContent-Disposition: {disposition}\r\n\r\n{value}\r\n")
    return ("".join(parts) + f"--{boundary}--\r\n").encode("utf-8", "surrogatepass")


def console_request(rng, routes, fields: list[str], ids: list[str], token: str,
                    counter: int) -> Wire:
    """One console request: a route (in turn), its path ids, fields, and the CSRF token."""
    method, rule = routes[counter % len(routes)]
    path = re.sub(r"<(?:path:)?(\w+)>", lambda m: pct(maybe_nasty(rng, rng.choice(ids), 0.4),
                                                      safe=""), rule)
    pairs = [(name, maybe_nasty(rng, rng.choice(ids + ["1", "true", "on", "x"]), 0.5))
             for name in rng.sample(fields, rng.randint(0, 4))]
    if rng.random() < 0.1:
        pairs.append(("next", rng.choice(["//evil.example", "/console/\r\nX: y", "\x00",
                                          "https://x", nasty(rng, "/console/")])))
    headers, body, query = [], b"", ""
    if method == "GET":
        query = encode_pairs(pairs)
    else:
        csrf = token if rng.random() < 0.85 else rng.choice(["", "é", "\x00", nasty(rng, token)])
        pairs.append(("csrf_token", csrf))
        if rng.random() < 0.2:
            body = multipart(pairs + [("file", maybe_nasty(rng, "data", 0.3))])
            headers.append(("Content-Type", "multipart/form-data; boundary=fuzzform"))
        else:
            body = encode_pairs(pairs).encode()
            headers.append(("Content-Type", "application/x-www-form-urlencoded"))
        if rng.random() < 0.1:
            headers.append(("X-CSRF-Token", nasty(rng, token)))
    return Wire(method, path, query, headers, body, f"console {method} {rule}")


IMDS_PATHS = ["", "meta-data/", "meta-data/ami-id", "meta-data/instance-id",
              "meta-data/local-ipv4", "meta-data/public-keys/", "meta-data/public-keys/0/",
              "meta-data/public-keys/0/openssh-key", "meta-data/block-device-mapping/root",
              "meta-data/placement/availability-zone", "meta-data/network/interfaces/macs/",
              "meta-data/tags/instance/", "meta-data/iam/", "user-data",
              "dynamic/instance-identity/document", "api/token"]


def imds_request(rng, token: str) -> Wire:
    """One metadata request: a path under a version, a method, maybe a token and a TTL."""
    version = rng.choice(metadata.VERSIONS) if rng.random() < 0.9 else pct(
        nasty(rng, "latest"), safe="")
    path = "/" + version + "/" + rng.choice(IMDS_PATHS)
    if rng.random() < 0.3:
        path += rng.choice(["/", "//", "/..", "/%00", "/%ED%A0%80", "/%C2%B2", "/%",
                            "/" + pct(nasty(rng, "x"), safe="")])
    method = rng.choice(["GET"] * 6 + ["HEAD", "PUT", "PUT", "POST", "DELETE"])
    if method == "PUT" and rng.random() < 0.7:
        path = "/" + version + "/api/token"
    headers = []
    if rng.random() < 0.5:
        headers.append((metadata.TOKEN_HEADER, maybe_nasty(rng, token, 0.5)))
    if method == "PUT" or rng.random() < 0.1:
        headers.append((metadata.TTL_HEADER, maybe_nasty(rng, "21600", 0.8)))
    if rng.random() < 0.05:
        headers.append(("X-Forwarded-For", "10.0.0.1"))
    return Wire(method, path, "", headers, b"", f"imds {method}")
