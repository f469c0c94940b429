"""Burst targets as the cloud admin manages them: add, list, change, remove, and their
health (what the reconciler and launches learn when they reach them). Needs an app
context; every change commits."""
from __future__ import annotations

import re
from typing import Any, Iterable, Mapping
from urllib.parse import urlparse

from cryptography.exceptions import InvalidTag

from ..accounts import utcnow
from ..db import db, write_lock
from ..errors import InvalidParameterValue
from ..errors.ec2 import IncorrectState
from ..compute import states
from ..compute.models import Instance
from . import sealed
from .models import POLICIES, WHEN_FULL, BurstTarget
from .remote import Endpoint, RemoteError

NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,39}$")
#: What ``set`` may change (credentials go through their own argument pair).
SETTABLE = ("endpoint_url", "region", "image_map", "type_map", "policy", "accounts",
            "groups", "enabled")


def _check_url(url: str) -> str:
    parsed = urlparse(url or "")
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise InvalidParameterValue(f"The endpoint URL {url!r} is not an http(s) URL.")
    return url


def _check_map(kind: str, mapping: Mapping[str, str]) -> dict[str, str]:
    clean = {}
    for local, remote in (mapping or {}).items():
        if not local or not remote or len(local) > 64 or len(remote) > 64:
            raise InvalidParameterValue(f"Invalid {kind} mapping {local!r} -> {remote!r}.")
        clean[str(local)] = str(remote)
    return clean


def _apply(target: BurstTarget, changes: Mapping[str, Any]) -> None:
    """Validate *changes* (names of :data:`SETTABLE`) and write them on *target*."""
    for key, value in changes.items():
        if key not in SETTABLE:
            raise InvalidParameterValue(f"{key} is not a burst target setting.")
        if key == "endpoint_url":
            target.endpoint_url = _check_url(value)
        elif key == "region":
            if not value or len(value) > 64:
                raise InvalidParameterValue(f"Invalid region {value!r}.")
            target.region = value
        elif key in ("image_map", "type_map"):
            target.set_json(key, _check_map(key.split("_")[0], value))
        elif key == "policy":
            if value not in POLICIES:
                raise InvalidParameterValue(
                    f"Policy must be one of {', '.join(POLICIES)}, not {value!r}.")
            target.policy = value
        elif key in ("accounts", "groups"):
            target.set_json(key, sorted({str(item) for item in value or ()}))
        elif key == "enabled":
            target.enabled = bool(value)


def add(data_dir: str, name: str, *, endpoint_url: str, region: str, access_key_id: str,
        secret_access_key: str, image_map: Mapping[str, str] | None = None,
        type_map: Mapping[str, str] | None = None, policy: str = WHEN_FULL,
        accounts: Iterable[str] = (), groups: Iterable[str] = (),
        enabled: bool = True) -> BurstTarget:
    """A new target (InvalidParameterValue for a bad or taken name, URL, policy, map)."""
    if not NAME.match(name or ""):
        raise InvalidParameterValue(
            f"Invalid burst target name {name!r}: 1-40 lower-case letters, digits and "
            "hyphens, starting with a letter or digit.")
    if not access_key_id or not secret_access_key:
        raise InvalidParameterValue("A burst target needs an access key id and a secret.")
    write_lock()
    try:
        if db.session.get(BurstTarget, name) is not None:
            raise InvalidParameterValue(f"A burst target named {name!r} already exists.")
        target = BurstTarget(name=name, credentials=sealed.seal(
            data_dir, name, access_key_id, secret_access_key))
        _apply(target, {"endpoint_url": endpoint_url, "region": region,
                        "image_map": image_map or {}, "type_map": type_map or {},
                        "policy": policy, "accounts": accounts, "groups": groups,
                        "enabled": enabled})
        db.session.add(target)
        db.session.commit()
    except BaseException:
        db.session.rollback()
        raise
    return target


def list_all() -> list[BurstTarget]:
    return list(db.session.execute(db.select(BurstTarget).order_by(BurstTarget.name))
                .scalars())


def get(name: str) -> BurstTarget:
    target = db.session.get(BurstTarget, name)
    if target is None:
        raise InvalidParameterValue(f"There is no burst target named {name!r}.")
    return target


def change(data_dir: str, name: str, changes: Mapping[str, Any], *,
           access_key_id: str | None = None,
           secret_access_key: str | None = None) -> BurstTarget:
    """Change *name*'s settings (:data:`SETTABLE`) and, given both, its credentials."""
    if (access_key_id is None) != (secret_access_key is None):
        raise InvalidParameterValue("Give both the access key id and the secret, or neither.")
    write_lock()
    try:
        target = get(name)
        _apply(target, changes)
        if access_key_id is not None:
            target.credentials = sealed.seal(data_dir, name, access_key_id, secret_access_key)
        db.session.commit()
    except BaseException:
        db.session.rollback()
        raise
    return target


def live_instances(name: str) -> int:
    """How many instances on target *name* have not ended."""
    return db.session.execute(db.select(db.func.count()).select_from(Instance).where(
        Instance.burst_target == name, Instance.state != states.TERMINATED)).scalar()


def instances_on(name: str) -> list[Instance]:
    """The instances on target *name* that have not ended, oldest first."""
    return list(db.session.execute(db.select(Instance).where(
        Instance.burst_target == name, Instance.state != states.TERMINATED)
        .order_by(Instance.launch_time, Instance.id)).scalars())


def remove(name: str) -> None:
    """Forget target *name*; IncorrectState while instances run there (terminate them
    first: forgetting the target would leave them running, unwatched)."""
    write_lock()
    try:
        target = get(name)
        count = live_instances(name)
        if count:
            raise IncorrectState(f"The burst target {name!r} has {count} instance(s) that "
                                 "have not ended; terminate them first.")
        db.session.delete(target)
        db.session.commit()
    except BaseException:
        db.session.rollback()
        raise


def endpoint(data_dir: str, target: BurstTarget) -> Endpoint:
    """Where and as whom to reach *target* (its credentials unsealed). RemoteError when
    they cannot be unsealed (the data directory's key file was replaced): the target is
    then as unreachable as one that does not answer, until its credentials are set again."""
    try:
        access_key_id, secret = sealed.unseal(data_dir, target.name, target.credentials)
    except (InvalidTag, ValueError, KeyError) as error:
        raise RemoteError(f"the credentials of burst target {target.name} cannot be "
                          f"unsealed ({type(error).__name__}: was {sealed.KEY_FILE} "
                          "replaced?): set them again with `eucalite burst set`") from None
    return Endpoint(target.endpoint_url, target.region, access_key_id, secret)


def record_health(name: str, error: str | None) -> None:
    """Note that target *name* answered (*error* None) or did not (what went wrong)."""
    values: dict[str, Any] = {"last_error": error[:1024] if error else None}
    if error is None:
        values["last_contact"] = utcnow()
    write_lock()
    db.session.execute(db.update(BurstTarget).where(BurstTarget.name == name).values(**values))
    db.session.commit()
