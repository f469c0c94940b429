"""EC2 launch templates (``lt-``): the rules behind CreateLaunchTemplate,
CreateLaunchTemplateVersion, DescribeLaunchTemplates, DescribeLaunchTemplateVersions,
ModifyLaunchTemplate, DeleteLaunchTemplate and DeleteLaunchTemplateVersions, and how a
template's data becomes a launch (:func:`launch_settings`, :func:`build_launch`).

A template has numbered versions that never change once made; *latest_version* only grows
(a deleted version's number is not reused) and *default_version* is what a launch naming no
version uses. A version's data (LaunchTemplateData) is a plain dict in the API's own names
(:data:`DATA_KEYS`): ``ImageId``, ``SecurityGroupIds``, ``TagSpecifications``... with Python
values, except ``BlockDeviceMappings``, kept in the form
:attr:`eucalite.compute.instances.LaunchRequest.block_devices` takes. The EC2 adapter reads
the Query structure into that dict and renders it back, refusing what eucalite cannot launch.

As on AWS, creating a template checks shapes and enumerations only, not whether the image,
key pair or groups it names exist: a launch from it checks those as RunInstances does. Every
change is one write transaction (:func:`eucalite.db.writing`).
"""
from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, fields
from typing import Any, Iterable

from sqlalchemy.exc import IntegrityError

from .. import ids, integers, tags
from ..accounts import Principal
from ..db import db, writing
from ..errors import InvalidParameterCombination, InvalidParameterValue, MissingParameter
from ..errors.ec2 import (IdempotentParameterMismatch, InvalidLaunchTemplateIdMalformed,
                          InvalidLaunchTemplateIdNotFound,
                          InvalidLaunchTemplateIdVersionNotFound,
                          InvalidLaunchTemplateNameAlreadyExists,
                          InvalidLaunchTemplateNameMalformed,
                          InvalidLaunchTemplateNameNotFound, UnsupportedOperation,
                          VersionLimitExceeded)
from ..query import check_text
from .instance_attributes import check_shutdown_behaviour, launch_attributes
from .instances import LaunchRequest, decode_user_data
from .metadata import validate_metadata_options
from .models import LaunchTemplate, LaunchTemplateVersion

#: AWS's limits: versions per template, description length, versions per delete call,
#: client token length.
MAX_VERSIONS = 10_000
MAX_DESCRIPTION = 255
MAX_DELETE_VERSIONS = 200
MAX_CLIENT_TOKEN = 64

_NAME = re.compile(r"^[a-zA-Z0-9().\-/_]{3,128}\Z")
_ID = re.compile(r"^lt-[0-9a-f]{17}\Z")

#: The LaunchTemplateData members eucalite can launch from, each a launch parameter of
#: RunInstances. Anything else AWS accepts is refused by the adapter, never dropped.
DATA_KEYS = frozenset({
    "ImageId", "InstanceType", "KeyName", "KernelId", "RamDiskId", "UserData",
    "SecurityGroups", "SecurityGroupIds", "Placement", "TagSpecifications",
    "MetadataOptions", "BlockDeviceMappings", "IamInstanceProfile", "Monitoring",
    "DisableApiTermination", "DisableApiStop", "InstanceInitiatedShutdownBehavior",
    "NetworkInterfaces",
})

#: Resource types a template's TagSpecifications may tag at launch: the instances and the
#: volumes their launch makes (EBS root, block device mappings).
TAGGED_AT_LAUNCH = ("instance", "volume")

#: Launch templates are taggable (CreateTags, TagSpecifications of ``launch-template``).
tags.register_resource("lt-", "launch-template", tags.row_owned(LaunchTemplate))


# --- names, ids, versions -----------------------------------------------------------

def check_name(name: str | None) -> str:
    """A template name as AWS allows it: 3 to 128 of letters, digits and ``( ) . - / _``."""
    if not name:
        raise MissingParameter("The request must contain the parameter LaunchTemplateName")
    if not _NAME.match(name):
        raise InvalidLaunchTemplateNameMalformed(
            "A launch template name must be between 3 and 128 characters, and may contain "
            "letters, numbers, and the following characters: - ( ) . / _.")
    return name


def check_description(text: str | None) -> str | None:
    """A version description: at most 255 characters (None: none)."""
    if text is not None and len(text) > MAX_DESCRIPTION:
        raise InvalidParameterValue(f"Value for parameter VersionDescription is invalid: "
                                    f"at most {MAX_DESCRIPTION} characters.")
    return check_text(text, "VersionDescription")


def check_client_token(token: str | None) -> str | None:
    """A ClientToken: at most 64 characters, as AWS allows (None: none)."""
    if token is not None and len(token) > MAX_CLIENT_TOKEN:
        raise InvalidParameterValue(f"Value for parameter ClientToken is invalid: at most "
                                    f"{MAX_CLIENT_TOKEN} characters.")
    return token


def _check_id(template_id: str) -> str:
    if not _ID.match(template_id):
        raise InvalidLaunchTemplateIdMalformed(
            f"The specified ID for the launch template, {template_id}, is not valid. Specify "
            "a launch template ID of the form lt-xxxxxxxxxxxxxxxxx.")
    return template_id


def _id_not_found(template_id: str) -> InvalidLaunchTemplateIdNotFound:
    return InvalidLaunchTemplateIdNotFound(f"The specified launch template, with template ID "
                                           f"{template_id}, does not exist.")


def _name_not_found(name: str) -> InvalidLaunchTemplateNameNotFound:
    return InvalidLaunchTemplateNameNotFound(f"The specified launch template, with template "
                                             f"name {name}, does not exist.")


def find(principal: Principal, template_id: str | None = None,
         name: str | None = None) -> LaunchTemplate:
    """The caller's template with *template_id* or *name* (exactly one of them)."""
    if template_id and name:
        raise InvalidParameterCombination("Specify either the launch template ID or the "
                                          "launch template name, but not both.")
    if template_id:
        row = db.session.execute(db.select(LaunchTemplate).filter_by(
            owner_id=principal.account_id, id=_check_id(template_id))).scalar()
        if row is None:
            raise _id_not_found(template_id)
        return row
    if name:
        row = db.session.execute(db.select(LaunchTemplate).filter_by(
            owner_id=principal.account_id, name=name)).scalar()
        if row is None:
            raise _name_not_found(name)
        return row
    raise MissingParameter("The request must contain the parameter LaunchTemplateName or "
                           "LaunchTemplateId")


def version_number(template: LaunchTemplate, spec: str | int | None) -> int:
    """The version *spec* names: None or ``$Default`` the default, ``$Latest`` the latest,
    else a number (whether it still exists is :func:`version`'s to say)."""
    if spec is None or spec == "" or spec == "$Default":
        return template.default_version
    if spec == "$Latest":
        return template.latest_version
    number = spec if type(spec) is int else integers.parse(spec, max_digits=18)
    if number is None or number < 1:
        raise InvalidParameterValue(f"Invalid launch template version '{spec}': specify a "
                                    "version number, $Latest or $Default.")
    return number


def version(template: LaunchTemplate, spec: str | int | None = None) -> LaunchTemplateVersion:
    """The version of *template* that *spec* names (see :func:`version_number`)."""
    number = version_number(template, spec)
    row = db.session.get(LaunchTemplateVersion, (template.id, number))
    if row is None:
        raise InvalidLaunchTemplateIdVersionNotFound(
            f"Could not find launch template version {number} for launch template "
            f"{template.id}.")
    return row


# --- template data ------------------------------------------------------------------

def check_data(data: dict[str, Any]) -> dict[str, Any]:
    """*data* (LaunchTemplateData as :data:`DATA_KEYS` names it), checked as AWS checks a
    template when it is created; the checked copy is what is stored."""
    unknown = sorted(set(data) - DATA_KEYS)
    if unknown:
        raise InvalidParameterValue(f"The parameter LaunchTemplateData.{unknown[0]} is not "
                                    "supported.")
    checked = {key: value for key, value in data.items() if value is not None}
    for key in ("ImageId", "InstanceType", "KeyName", "KernelId", "RamDiskId"):
        check_text(checked.get(key), f"LaunchTemplateData.{key}")
    if str(checked.get("ImageId", "")).startswith("resolve:ssm:"):
        raise UnsupportedOperation("An ImageId that names a Systems Manager parameter "
                                   "(resolve:ssm:) is not supported by this cloud: give the "
                                   "image's ID.")
    if "UserData" in checked:
        decode_user_data(checked["UserData"])
    check_shutdown_behaviour(checked.get("InstanceInitiatedShutdownBehavior"))
    if "MetadataOptions" in checked:
        checked["MetadataOptions"] = validate_metadata_options(checked["MetadataOptions"])
    if "TagSpecifications" in checked:
        checked["TagSpecifications"] = _check_tag_specifications(checked["TagSpecifications"])
    for index, interface in enumerate(checked.get("NetworkInterfaces") or (), 1):
        if interface.get("DeviceIndex", 0) != 0 or index > 1:
            raise InvalidParameterValue("Only the primary network interface (DeviceIndex 0) "
                                        "can be specified: instances here have one.")
    profile = checked.get("IamInstanceProfile")
    if profile is not None and not (profile.get("Arn") or profile.get("Name")):
        raise MissingParameter("The request must contain the parameter "
                               "LaunchTemplateData.IamInstanceProfile.Arn or .Name")
    return checked


def _check_tag_specifications(specs: list[dict]) -> list[dict]:
    checked = []
    for index, spec in enumerate(specs, 1):
        kind = spec.get("ResourceType")
        if kind is None:
            raise MissingParameter(f"The request must contain the parameter "
                                   f"LaunchTemplateData.TagSpecification.{index}.ResourceType")
        if kind not in TAGGED_AT_LAUNCH:
            raise InvalidParameterValue(
                f"'{kind}' is not a resource type this cloud can tag at launch from a launch "
                f"template: use {', '.join(TAGGED_AT_LAUNCH)}.")
        checked.append({"ResourceType": kind,
                        "Tags": tags.check_new_tags(spec.get("Tags") or {})})
    return checked


def merged_source(source: dict[str, Any], data: dict[str, Any]) -> dict[str, Any]:
    """A new version's data made from *source* (SourceVersion's): as AWS documents it, the
    new version inherits every parameter of the source except those its own data gives."""
    return {**source, **data}


def launch_settings(data: dict[str, Any]) -> dict[str, Any]:
    """The :class:`LaunchRequest` fields a version's *data* sets, for :func:`build_launch`:
    only those it gives, so a request's own parameters can take their place. The three
    launch attributes come as ``disable_api_termination``, ``disable_api_stop`` and
    ``shutdown_behaviour``."""
    settings: dict[str, Any] = {}
    for key, field in (("ImageId", "image_id"), ("InstanceType", "instance_type"),
                       ("KeyName", "key_name"), ("KernelId", "kernel_id"),
                       ("RamDiskId", "ramdisk_id"),
                       ("DisableApiTermination", "disable_api_termination"),
                       ("DisableApiStop", "disable_api_stop"),
                       ("InstanceInitiatedShutdownBehavior", "shutdown_behaviour"),
                       ("MetadataOptions", "metadata_options"),
                       ("BlockDeviceMappings", "block_devices")):
        if key in data:
            settings[field] = data[key]
    if "SecurityGroups" in data or "SecurityGroupIds" in data:
        settings["security_groups"] = list(data.get("SecurityGroups") or ()) or None
        settings["security_group_ids"] = list(data.get("SecurityGroupIds") or ()) or None
    if "UserData" in data:
        settings["user_data"] = decode_user_data(data["UserData"])
    zone = (data.get("Placement") or {}).get("AvailabilityZone")
    if zone:
        settings["zone"] = zone
    for kind, field in (("instance", "tags"), ("volume", "volume_tags")):
        specified = {key: value for spec in data.get("TagSpecifications") or ()
                     if spec["ResourceType"] == kind for key, value in spec["Tags"].items()}
        if specified:
            settings[field] = specified
    if "Enabled" in (data.get("Monitoring") or {}):
        settings["monitoring"] = bool(data["Monitoring"]["Enabled"])
    profile = data.get("IamInstanceProfile")
    if profile:
        settings["iam_instance_profile"] = (("arn", profile["Arn"]) if profile.get("Arn")
                                            else ("name", profile["Name"]))
    primary = (data.get("NetworkInterfaces") or [{}])[0]
    if primary.get("AssociatePublicIpAddress") is not None:
        settings["public_ip"] = bool(primary["AssociatePublicIpAddress"])
    return settings


_REQUEST_FIELDS = frozenset(field.name for field in fields(LaunchRequest))
_ATTRIBUTE_SETTINGS = ("disable_api_termination", "disable_api_stop", "shutdown_behaviour")


def build_launch(template: dict[str, Any], explicit: dict[str, Any]) -> LaunchRequest:
    """The launch a request makes: the *template*'s settings (:func:`launch_settings`; {}
    without one) under the request's *explicit* ones (same keys, only those it gave),
    which win, as on AWS. Instance and volume tags merge, the request's winning on a key.
    MissingParameter when neither names an image."""
    merged = {**template, **explicit}
    for field in ("tags", "volume_tags"):
        merged[field] = {**(template.get(field) or {}), **(explicit.get(field) or {})} or None
    attributes = launch_attributes(bool(merged.pop("disable_api_termination", False)),
                                   bool(merged.pop("disable_api_stop", False)),
                                   merged.pop("shutdown_behaviour", None))
    if not merged.get("image_id"):
        raise MissingParameter("The request must contain the parameter ImageId")
    unknown = set(merged) - _REQUEST_FIELDS
    if unknown:
        raise ValueError(f"not launch settings: {sorted(unknown)}")
    return LaunchRequest(**merged, attributes=attributes)


def origin_tags(template: LaunchTemplate, row: LaunchTemplateVersion) -> dict[str, str]:
    """The ``aws:`` tags AWS gives an instance launched from a template version."""
    return {"aws:ec2launchtemplate:id": template.id,
            "aws:ec2launchtemplate:version": str(row.version_number)}


# --- changes ------------------------------------------------------------------------

def _new_version(template: LaunchTemplate, number: int, principal: Principal,
                 data: dict[str, Any], description: str | None,
                 client_token: str | None) -> LaunchTemplateVersion:
    row = LaunchTemplateVersion(template_id=template.id, version_number=number,
                                description=description, created_by=principal.arn,
                                client_token=client_token)
    row.set_json("data", data)
    db.session.add(row)
    return row


def create(principal: Principal, name: str, data: dict[str, Any], *,
           description: str | None = None, tag_map: dict[str, str] | None = None,
           client_token: str | None = None) -> LaunchTemplate:
    """A new template with version 1 (its default) holding *data*; a retry with the same
    *client_token* answers the template that token made."""
    check_name(name)
    check_description(description)
    check_client_token(client_token)
    data = check_data(data)
    tag_map = tags.check_new_tags(tag_map)
    try:
        with writing():
            if client_token:
                earlier = db.session.execute(db.select(LaunchTemplate).filter_by(
                    owner_id=principal.account_id, client_token=client_token)).scalar()
                if earlier is not None:
                    if earlier.name != name:
                        raise IdempotentParameterMismatch(
                            "Client token already used with different parameters.")
                    return earlier
            if db.session.execute(db.select(LaunchTemplate.id).filter_by(
                    owner_id=principal.account_id, name=name)).first():
                raise _name_in_use()
            template = LaunchTemplate(id=ids.resource_id("lt"), owner_id=principal.account_id,
                                      name=name, created_by=principal.arn,
                                      default_version=1, latest_version=1,
                                      client_token=client_token)
            db.session.add(template)
            db.session.flush()
            _new_version(template, 1, principal, data, description, None)
            tags.tag_new_resources(principal, "launch-template", [template.id], tag_map)
    except IntegrityError:      # the same name made by a concurrent create
        raise _name_in_use() from None
    return template


def _name_in_use() -> InvalidLaunchTemplateNameAlreadyExists:
    return InvalidLaunchTemplateNameAlreadyExists("Launch template name already in use.")


def create_version(principal: Principal, data: dict[str, Any], *,
                   template_id: str | None = None, name: str | None = None,
                   source_version: str | None = None, description: str | None = None,
                   client_token: str | None = None
                   ) -> tuple[LaunchTemplate, LaunchTemplateVersion]:
    """A new version (latest + 1) of the template; with *source_version*, its data is that
    version's with *data* over it (:func:`merged_source`)."""
    check_description(description)
    check_client_token(client_token)
    check_data(data)
    with writing():
        template = find(principal, template_id, name)
        if client_token:
            earlier = db.session.execute(db.select(LaunchTemplateVersion).filter_by(
                template_id=template.id, client_token=client_token)).scalar()
            if earlier is not None:
                return template, earlier
        if source_version is not None:
            data = merged_source(version(template, source_version).get_json("data", {}), data)
        data = check_data(data)
        count = db.session.execute(db.select(db.func.count()).select_from(
            LaunchTemplateVersion).filter_by(template_id=template.id)).scalar()
        if count >= MAX_VERSIONS:
            raise VersionLimitExceeded(f"A launch template may have at most {MAX_VERSIONS} "
                                       "versions: delete some first.")
        template.latest_version += 1
        row = _new_version(template, template.latest_version, principal, data, description,
                           client_token)
    return template, row


def set_default(principal: Principal, spec: str | None, *, template_id: str | None = None,
                name: str | None = None) -> LaunchTemplate:
    """ModifyLaunchTemplate: make the version *spec* names the default (None: no change)."""
    with writing():
        template = find(principal, template_id, name)
        if spec is not None:
            template.default_version = version(template, spec).version_number
    return template


@dataclass(frozen=True)
class Deleted:
    """What DeleteLaunchTemplate answers about the template it deleted."""

    id: str
    name: str
    created: dt.datetime
    created_by: str
    default_version: int
    latest_version: int


def delete(principal: Principal, *, template_id: str | None = None,
           name: str | None = None) -> Deleted:
    """Delete the template, every version and its tags."""
    with writing():
        template = find(principal, template_id, name)
        gone = Deleted(template.id, template.name, template.created, template.created_by,
                       template.default_version, template.latest_version)
        db.session.execute(db.delete(LaunchTemplateVersion).where(
            LaunchTemplateVersion.template_id == template.id))
        tags.delete_all(template.id)
        db.session.delete(template)
    return gone


@dataclass(frozen=True)
class VersionFailure:
    """A version DeleteLaunchTemplateVersions did not delete, with AWS's ResponseError
    code (``launchTemplateVersionDoesNotExist``...) and message."""

    version: int | None
    code: str
    message: str


def delete_versions(principal: Principal, specs: list[str], *,
                    template_id: str | None = None, name: str | None = None
                    ) -> tuple[LaunchTemplate | None, list[int], list[VersionFailure]]:
    """Delete the versions *specs* names, each on its own: (the template, the numbers
    deleted, the failures). A template that is not found fails every version, as AWS
    reports it; the default version cannot be deleted (DeleteLaunchTemplate can)."""
    if not specs:
        raise MissingParameter("The request must contain the parameter LaunchTemplateVersion")
    if len(specs) > MAX_DELETE_VERSIONS:
        raise InvalidParameterValue(f"At most {MAX_DELETE_VERSIONS} launch template versions "
                                    "can be deleted in one request.")
    numbers = [integers.parse(spec, max_digits=18) for spec in specs]
    with writing():
        try:
            template = find(principal, template_id, name)
        except (InvalidLaunchTemplateIdMalformed, InvalidLaunchTemplateIdNotFound,
                InvalidLaunchTemplateNameNotFound) as error:
            code = {InvalidLaunchTemplateIdMalformed: "launchTemplateIdMalformed",
                    InvalidLaunchTemplateIdNotFound: "launchTemplateIdDoesNotExist",
                    InvalidLaunchTemplateNameNotFound: "launchTemplateNameDoesNotExist"
                    }[type(error)]
            return None, [], [VersionFailure(number, code, error.message) for number in numbers]
        deleted, failed = [], []
        for number in numbers:
            row = db.session.get(LaunchTemplateVersion, (template.id, number)) \
                if number else None
            if row is None:
                failed.append(VersionFailure(number, "launchTemplateVersionDoesNotExist",
                                             "The specified launch template version does "
                                             "not exist."))
            elif number == template.default_version:
                failed.append(VersionFailure(
                    number, "unexpectedError", "The default version of a launch template "
                    "cannot be deleted: set another version as the default first, or delete "
                    "the launch template."))
            else:
                db.session.delete(row)
                db.session.flush()
                deleted.append(number)
    return template, deleted, failed


# --- reading ------------------------------------------------------------------------

def _ordered(query):
    return query.order_by(LaunchTemplate.created, LaunchTemplate.id)


def describe(principal: Principal, template_ids: Iterable[str] = (),
             names: Iterable[str] = ()) -> list[LaunchTemplate]:
    """The caller's templates in creation order; only those with *template_ids* or *names*
    when given, every one of which must exist."""
    template_ids, names = list(template_ids), list(names)
    query = _ordered(db.select(LaunchTemplate).filter_by(owner_id=principal.account_id))
    if template_ids:
        query = query.where(LaunchTemplate.id.in_([_check_id(i) for i in template_ids]))
    if names:
        query = query.where(LaunchTemplate.name.in_(names))
    rows = list(db.session.execute(query).scalars())
    missing_ids = [i for i in template_ids if i not in {row.id for row in rows}]
    if missing_ids:
        raise _id_not_found(missing_ids[0])
    if set(names) - {row.name for row in rows}:
        raise InvalidLaunchTemplateNameNotFound("At least one of the launch templates "
                                                "specified in the request does not exist.")
    return rows


def versions(principal: Principal, *, template_id: str | None = None,
             name: str | None = None, specs: list[str] = (), minimum: str | None = None,
             maximum: str | None = None
             ) -> list[tuple[LaunchTemplate, LaunchTemplateVersion]]:
    """DescribeLaunchTemplateVersions' versions, each with its template: of one template
    (the versions *specs* names, else those within *minimum*..*maximum*, else all; newest
    first), or with no template named, the ``$Latest``/``$Default`` versions *specs* names
    of every template the caller has."""
    if not (template_id or name):
        aliases = set(specs)
        if not aliases or not aliases <= {"$Latest", "$Default"}:
            raise MissingParameter("The request must contain the parameter LaunchTemplateName "
                                   "or LaunchTemplateId (without one, the versions can be "
                                   "only $Latest or $Default)")
        found = []
        for template in describe(principal):
            numbers = sorted({version_number(template, spec) for spec in specs}, reverse=True)
            found += [(template, row) for row in _rows(template, numbers)]
        return found
    template = find(principal, template_id, name)
    if specs:
        numbers = {version(template, spec).version_number for spec in specs}
        return [(template, row) for row in _rows(template, sorted(numbers, reverse=True))]
    low, high = _bound(minimum, "MinVersion"), _bound(maximum, "MaxVersion")
    query = db.select(LaunchTemplateVersion).filter_by(template_id=template.id)
    if low is not None:
        query = query.where(LaunchTemplateVersion.version_number >= low)
    if high is not None:
        query = query.where(LaunchTemplateVersion.version_number <= high)
    rows = db.session.execute(query.order_by(LaunchTemplateVersion.version_number.desc()))
    return [(template, row) for row in rows.scalars()]


def _rows(template: LaunchTemplate, numbers: list[int]) -> list[LaunchTemplateVersion]:
    rows = [db.session.get(LaunchTemplateVersion, (template.id, number)) for number in numbers]
    return [row for row in rows if row is not None]


def _bound(text: str | None, name: str) -> int | None:
    if text is None:
        return None
    number = integers.parse(text, max_digits=18)
    if number is None:
        raise InvalidParameterValue(f"Value ({text}) for parameter {name} is invalid. "
                                    "Expected a version number.")
    return number


def page_key(template: LaunchTemplate, row: LaunchTemplateVersion | None = None) -> str:
    """A key that sorts templates in creation order (and a template's versions newest
    first), for paging DescribeLaunchTemplates and DescribeLaunchTemplateVersions."""
    key = f"{template.created.isoformat()}|{template.id}"
    return key if row is None else f"{key}|{10**15 - row.version_number:016d}"
