"""What an image's owner switches on after registering it: deregistration protection (with
its optional 24-hour cooldown) and ImdsSupport (instances launched from it require IMDSv2).

Deregistration protection, as EC2 has it: EnableImageDeregistrationProtection turns it on,
``WithCooldown`` or not; DisableImageDeregistrationProtection turns it off, but an image
protected *with* cooldown stays protected for :data:`COOLDOWN` after that. While protected,
DeregisterImage is refused with ``OperationNotPermitted``. The stored state is the model's
(``disabled``, ``enabled``, ``enabled-with-cooldown``, and ``deregistration_protected_until``
while a cooldown runs); :func:`protection` is AWS's rendering of it.

ImdsSupport has one value, ``v2.0``, and cannot be unset (AWS: "you can't undo it"). An
instance launched from such an image gets ``HttpTokens=required`` and a hop limit of 2,
unless the launch's own MetadataOptions say otherwise (AWS's order of precedence: the
launch's parameters, then the image's). CopyImage and CreateImage carry it over.

Functions take rows the caller has already found and checked (owner only: see
:func:`eucalite.compute.images.owned`); the write ones commit.
"""
from __future__ import annotations

import dataclasses
import datetime as dt

from ..accounts import utcnow
from ..db import writing
from ..errors import InvalidParameterValue
from ..errors import ec2 as ec2_errors
from .models import Image

#: How long an image protected with cooldown stays protected once protection is disabled.
COOLDOWN = dt.timedelta(hours=24)
DISABLED, ENABLED, WITH_COOLDOWN = "disabled", "enabled", "enabled-with-cooldown"

#: ImdsSupport's only value.
IMDS_V2 = "v2.0"
#: What ImdsSupport v2.0 sets on the instances launched from the image.
IMDS_V2_OPTIONS = {"HttpTokens": "required", "HttpPutResponseHopLimit": 2}


def _iso(moment: dt.datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.000Z")


# --- deregistration protection ------------------------------------------------------------

def protection(image: Image, now: dt.datetime | None = None) -> str:
    """AWS's ``deregistrationProtection``: ``enabled-without-cooldown``,
    ``enabled-with-cooldown``, ``disabled-until <time>`` while a cooldown runs, else
    ``disabled``."""
    state = image.deregistration_protection or DISABLED
    if state == ENABLED:
        return "enabled-without-cooldown"
    if state == WITH_COOLDOWN:
        return WITH_COOLDOWN
    until = image.deregistration_protected_until
    if until is not None and until > (now or utcnow()):
        return f"disabled-until {_iso(until)}"
    return DISABLED


def check_deregistrable(image: Image) -> Image:
    """*image*, or OperationNotPermitted while deregistration protection holds it."""
    state = protection(image)
    if state != DISABLED:
        raise ec2_errors.OperationNotPermitted(
            f"The image {image.id} is protected from deregistration ({state}). Disable "
            "deregistration protection with DisableImageDeregistrationProtection first.")
    return image


def enable_protection(image: Image, with_cooldown: bool) -> str:
    """EnableImageDeregistrationProtection: on, with or without cooldown (a running
    cooldown ends: the image is protected anyway). Returns :func:`protection`."""
    with writing():
        image.deregistration_protection = WITH_COOLDOWN if with_cooldown else ENABLED
        image.deregistration_protected_until = None
    return protection(image)


def disable_protection(image: Image) -> str:
    """DisableImageDeregistrationProtection: off; an image enabled with cooldown stays
    protected for :data:`COOLDOWN` from now. Disabling a disabled image changes nothing
    (a running cooldown keeps running). Returns :func:`protection`."""
    with writing():
        if image.deregistration_protection == WITH_COOLDOWN:
            image.deregistration_protected_until = utcnow() + COOLDOWN
        image.deregistration_protection = DISABLED
    return protection(image)


# --- ImdsSupport ----------------------------------------------------------------------------

def check_imds_support(value: str | None) -> str | None:
    """A RegisterImage/ModifyImageAttribute ImdsSupport value: ``v2.0`` (or None: not
    given); anything else is InvalidParameterValue."""
    if value is not None and value != IMDS_V2:
        raise InvalidParameterValue(f"Value ({value}) for parameter ImdsSupport is invalid. "
                                    f"Valid values: {IMDS_V2}")
    return value


def set_imds_support(image: Image, value: str | None) -> None:
    """ModifyImageAttribute ImdsSupport: only ``v2.0``, for good (setting it again is no
    change). A missing value is MissingParameter's job upstream: here it is invalid."""
    if value is None:
        raise InvalidParameterValue(f"Value () for parameter ImdsSupport is invalid. "
                                    f"Valid values: {IMDS_V2}")
    check_imds_support(value)
    with writing():
        image.imds_support = value


def with_image_defaults(request, image: Image):
    """*request* (a :class:`eucalite.compute.instances.LaunchRequest`) with the metadata
    options *image*'s ImdsSupport implies under the ones the launch gave (a new request;
    the same one when the image implies nothing)."""
    if image.imds_support != IMDS_V2:
        return request
    options = {**IMDS_V2_OPTIONS, **(request.metadata_options or {})}
    return dataclasses.replace(request, metadata_options=options)
