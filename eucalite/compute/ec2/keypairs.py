"""EC2 key pair actions: CreateKeyPair, ImportKeyPair, DeleteKeyPair, DescribeKeyPairs."""
from __future__ import annotations

import base64
import binascii

from ...errors import MissingParameter
from ... import tags
from . import filters
from .actions import registry
from .tagparams import specified_tags, tag_set


def _render(row, tag_map: dict[str, str], include_public_key: bool = False) -> dict:
    """One key pair as DescribeKeyPairs' ``keySet`` item."""
    return {
        "keyPairId": row.id,
        "keyFingerprint": row.fingerprint,
        "keyName": row.name,
        "keyType": row.key_type,
        "tagSet": tag_set(tag_map),
        # AWS appends the key name as the OpenSSH comment.
        "publicKey": f"{row.public_key} {row.name}" if include_public_key else None,
        "createTime": row.created,
    }


@registry.action("CreateKeyPair", params=("KeyName", "KeyType", "KeyFormat",
                                          "TagSpecification"))
def create_key_pair(call):
    params = call.params
    row, material = call.services.compute.create_key_pair(
        call.principal, params.require("KeyName"), key_type=params.get("KeyType") or "rsa",
        key_format=params.get("KeyFormat") or "pem",
        tag_map=specified_tags(params, "key-pair"))
    tag_map = tags.tags_for(call.principal.account_id, [row.id])[row.id]
    return {"keyName": row.name, "keyFingerprint": row.fingerprint, "keyMaterial": material,
            "keyPairId": row.id, "tagSet": tag_set(tag_map)}


@registry.action("ImportKeyPair", params=("KeyName", "PublicKeyMaterial",
                                          "TagSpecification"))
def import_key_pair(call):
    params = call.params
    name = params.require("KeyName")
    encoded = params.get("PublicKeyMaterial")
    if not encoded:
        raise MissingParameter("The request must contain the parameter PublicKeyMaterial")
    try:
        material = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        # The API wants base64, but some older tools send the OpenSSH line itself.
        material = encoded.encode("utf-8", "replace")
    row = call.services.compute.import_key_pair(call.principal, name, material,
                                                tag_map=specified_tags(params, "key-pair"))
    tag_map = tags.tags_for(call.principal.account_id, [row.id])[row.id]
    return {"keyName": row.name, "keyFingerprint": row.fingerprint, "keyPairId": row.id,
            "tagSet": tag_set(tag_map)}


@registry.action("DeleteKeyPair", params=("KeyName", "KeyPairId"))
def delete_key_pair(call):
    deleted = call.services.compute.delete_key_pair(
        call.principal, name=call.params.get("KeyName"),
        key_pair_id=call.params.get("KeyPairId"))
    return {"return": True, "keyPairId": deleted}


@registry.action("DescribeKeyPairs", params=("KeyName", "KeyPairId", "Filter",
                                             "IncludePublicKey"))
def describe_key_pairs(call):
    params = call.params
    owner = call.principal.account_id
    include_public_key = params.get_bool("IncludePublicKey")
    rows = call.services.compute.describe_key_pairs(call.principal, params.get_list("KeyName"),
                                                    params.get_list("KeyPairId"))
    tag_maps = tags.tags_for(owner, [row.id for row in rows])
    rows = filters.apply(rows, filters.parse(params), {
        "key-name": lambda row: row.name,
        "key-pair-id": lambda row: row.id,
        "fingerprint": lambda row: row.fingerprint,
        "key-type": lambda row: row.key_type,
        **filters.tag_getters(lambda row: tag_maps[row.id]),
    })
    return {"keySet": [_render(row, tag_maps[row.id], include_public_key) for row in rows]}
