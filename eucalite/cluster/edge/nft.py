"""Installing a rendered ruleset (:mod:`.ruleset`) with the ``nft`` command, changing only
what changed.

:func:`read_installed` reads one of eucalite's tables back (``nft -j list table``) as a
:class:`Installed`: each chain's rule count and digest comment, each set's and map's
elements. :func:`script` compares it with the desired :class:`~.ruleset.Table` and writes
the nft commands that make the one into the other: chains whose digest or rule count
differ are flushed and refilled, set and map elements added and deleted one by one,
chains and sets no longer wanted removed; nothing outside eucalite's tables is named, so
nothing else on the host is ever flushed. The commands of both tables run as ONE ``nft -f``
transaction: the kernel switches from the old ruleset to the new at once, or not at all.

Reading a table back costs more than most changes (``nft -j list`` of a 1,000-rule table
takes longer than the transaction that changes one chain), so a caller that remembers what
it applied (:func:`installed_after`) may pass that to :func:`apply_tables` instead.
"""
from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass, field
from typing import Mapping, Sequence

from .ruleset import DIGEST_MARK, Table


class FirewallError(Exception):
    """nft refused or is missing (the message says what it said)."""


@dataclass
class Installed:
    """What one of eucalite's tables holds now: chain -> (rules, digest comment of its last
    rule), set -> elements, map -> {key: value}."""

    chains: dict[str, tuple[int, str | None]] = field(default_factory=dict)
    sets: dict[str, set[str]] = field(default_factory=dict)
    maps: dict[str, dict[str, str]] = field(default_factory=dict)


def run_nft(prefix: Sequence[str], args: Sequence[str], stdin: str | None = None) -> str:
    """Run ``nft`` (after *prefix*, e.g. ``ip netns exec NS``); its stdout, or FirewallError."""
    argv = [*prefix, "nft", *args]
    try:
        done = subprocess.run(argv, input=stdin, capture_output=True, text=True, timeout=60)
    except FileNotFoundError as exc:
        raise FirewallError(f"{argv[0]} is not installed") from exc
    if done.returncode != 0:
        raise FirewallError(done.stderr.strip() or f"nft exited with {done.returncode}")
    return done.stdout


def read_installed(prefix: Sequence[str], family: str, name: str) -> Installed | None:
    """The table *family* *name* as installed, or None when there is none."""
    try:
        out = run_nft(prefix, ["-j", "list", "table", family, name])
    except FirewallError as exc:
        if "No such file or directory" in str(exc):
            return None
        raise
    return parse_listing(json.loads(out))


def parse_listing(listing: dict) -> Installed:
    """An :class:`Installed` from ``nft -j list table`` output."""
    found = Installed()
    last_comment: dict[str, str | None] = {}
    counts: dict[str, int] = {}
    for item in listing.get("nftables", []):
        if "chain" in item:
            counts.setdefault(item["chain"]["name"], 0)
            last_comment.setdefault(item["chain"]["name"], None)
        elif "rule" in item:
            chain = item["rule"]["chain"]
            counts[chain] = counts.get(chain, 0) + 1
            last_comment[chain] = item["rule"].get("comment")
        elif "set" in item:
            found.sets[item["set"]["name"]] = {_plain(e) for e in item["set"].get("elem", [])}
        elif "map" in item:
            found.maps[item["map"]["name"]] = dict(
                _pair(e) for e in item["map"].get("elem", []))
    for chain, count in counts.items():
        comment = last_comment.get(chain)
        digest = comment[len(DIGEST_MARK):] if comment and comment.startswith(DIGEST_MARK) \
            else None
        found.chains[chain] = (count, digest)
    return found


def installed_after(table: Table) -> Installed:
    """What :func:`read_installed` reads once *table* is installed (no nft is run)."""
    return Installed(
        chains={name: (len(chain.rules), chain.digest()) for name, chain in table.chains.items()},
        sets={name: set(elements) for name, (_type, elements) in table.sets.items()},
        maps={name: dict(elements) for name, (_key, _value, elements) in table.maps.items()})


def _plain(value) -> str:
    """A set element or map key as text (nft wraps some in {"elem": {"val": ...}})."""
    if isinstance(value, dict) and "elem" in value:
        value = value["elem"]["val"]
    return str(value)


def _pair(element) -> tuple[str, str]:
    key, value = element
    if isinstance(value, dict):
        verdict, target = next(iter(value.items()))
        value = f"{verdict} {target['target']}" if isinstance(target, dict) else verdict
    return _plain(key), str(value)


def _element(key: str, key_type: str) -> str:
    return f'"{key}"' if key_type == "ifname" else key


@dataclass
class Changes:
    """What one apply changed (for tests, logs and the benchmark)."""

    chains: list[str] = field(default_factory=list)       # made or refilled
    removed_chains: list[str] = field(default_factory=list)
    elements_added: int = 0
    elements_removed: int = 0
    commands: list[str] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not self.commands


def script(desired: Table, installed: Installed | None, changes: Changes) -> None:
    """Append to *changes* the nft commands that turn *installed* into *desired*."""
    have = installed or Installed()
    ref = desired.ref
    out: list[str] = []
    if installed is None:
        out.append(f"add table {ref}")
    for name, (kind, _elements) in desired.sets.items():
        if name not in have.sets:
            out.append(f"add set {ref} {name} {{ type {kind}; }}")
    for name, (key_type, value_type, _elements) in desired.maps.items():
        if name not in have.maps:
            out.append(f"add map {ref} {name} {{ type {key_type} : {value_type}; }}")
    for name, chain in desired.chains.items():
        if name not in have.chains:
            hook = f" {{ {chain.hook} }}" if chain.hook else ""
            out.append(f"add chain {ref} {name}{hook}")
    additions: list[str] = []
    for name, (kind, elements) in desired.sets.items():
        current = have.sets.get(name, set())
        _elements_diff(out, additions, changes, ref, name, kind,
                       {e: None for e in current}, {e: None for e in elements})
    for name, (key_type, _value_type, elements) in desired.maps.items():
        _elements_diff(out, additions, changes, ref, name, key_type,
                       have.maps.get(name, {}), elements)
    for name, chain in desired.chains.items():
        if have.chains.get(name) != (len(chain.rules), chain.digest()):
            if name in have.chains:
                out.append(f"flush chain {ref} {name}")
            out.extend(f"add rule {ref} {name} {rule}" for rule in chain.sealed())
            changes.chains.append(f"{ref} {name}")
    out.extend(additions)
    for name in sorted(have.chains.keys() - desired.chains.keys()):
        out.extend([f"flush chain {ref} {name}", f"delete chain {ref} {name}"])
        changes.removed_chains.append(f"{ref} {name}")
    out.extend(f"delete set {ref} {name}"
               for name in sorted(have.sets.keys() - desired.sets.keys()))
    out.extend(f"delete map {ref} {name}"
               for name in sorted(have.maps.keys() - desired.maps.keys()))
    changes.commands.extend(out)


def _elements_diff(out: list[str], additions: list[str], changes: Changes, ref: str,
                   name: str, key_type: str, current: dict, wanted: dict) -> None:
    """Delete elements of set/map *name* that are gone or changed (now, before chains they
    jump to go) and queue the additions (after the chains they jump to exist)."""
    stale = [key for key, value in current.items() if wanted.get(key, ...) != value]
    fresh = [key for key, value in wanted.items() if current.get(key, ...) != value]
    if stale:
        keys = ", ".join(_element(key, key_type) for key in sorted(stale))
        out.append(f"delete element {ref} {name} {{ {keys} }}")
        changes.elements_removed += len(stale)
    if fresh:
        items = ", ".join(
            _element(key, key_type) + ("" if wanted[key] is None else f" : {wanted[key]}")
            for key in sorted(fresh))
        additions.append(f"add element {ref} {name} {{ {items} }}")
        changes.elements_added += len(fresh)


def apply_tables(prefix: Sequence[str], tables: Sequence[Table],
                 before: Mapping[str, Installed | None] | None = None) -> Changes:
    """Make the installed tables match *tables*, in one nft transaction; what changed.
    *before*: what each table holds now, by its ref (``"ip eucalite"``; None: no such
    table), when the caller knows; else each table is read back first. If *before* is
    wrong the commands may miss a difference or nft may refuse them (FirewallError)."""
    changes = Changes()
    for table in tables:
        have = before[table.ref] if before is not None \
            else read_installed(prefix, table.family, table.name)
        script(table, have, changes)
    if not changes.empty:
        run_nft(prefix, ["-f", "-"], "\n".join(changes.commands) + "\n")
    return changes


def remove_tables(prefix: Sequence[str], tables: Sequence[tuple[str, str]]) -> None:
    """Delete eucalite's tables (family, name) where they exist (for tests and undo)."""
    for family, name in tables:
        if read_installed(prefix, family, name) is not None:
            run_nft(prefix, ["delete", "table", family, name])
