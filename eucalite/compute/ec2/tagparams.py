"""The Query shapes of tags: ``Tag.N.Key``/``Tag.N.Value`` and ``TagSpecification.N`` (a
resource type and its ``Tag.N``) read into plain dicts, and ``tagSet`` rendered from them.

Services take tags as ``{key: value}`` (:mod:`eucalite.tags`); only the EC2 adapter knows the
wire shape. Keys and values are checked here, in parameter order, so the first bad one is the
one reported, with the parameter name the client sent.
"""
from __future__ import annotations

from typing import Mapping

from ... import tags
from ...errors import InvalidParameterValue, MissingParameter
from ...query import QueryParams, Struct


def parse_tags(items: list[Struct], prefix: str = "Tag") -> dict[str, str]:
    """``Tag.N.Key`` / ``Tag.N.Value`` structs (``params.get_struct_list("Tag")``) as a
    checked ``{key: value}``; a later duplicate key wins, as AWS does."""
    tag_map: dict[str, str] = {}
    for index, item in enumerate(items, 1):
        if item.get("Key") is None:
            raise MissingParameter(f"The request must contain the parameter "
                                   f"{prefix}.{index}.Key")
        tag_map[tags.validate_key(item.get("Key"))] = tags.validate_value(item.get("Value"))
    return tag_map


def parse_tag_keys(items: list[Struct]) -> list[tuple[str, str | None]] | None:
    """DeleteTags' ``Tag.N``: (key, value or None) pairs, or None when no tag is named
    (delete them all). No Value deletes the key whatever its value; Value="" only an empty
    one."""
    if not items:
        return None
    pairs = []
    for index, item in enumerate(items, 1):
        if item.get("Key") is None:
            raise MissingParameter(f"The request must contain the parameter Tag.{index}.Key")
        pairs.append((tags.validate_key(item["Key"]), item.get("Value")))
    return pairs


def specified_tags(params: QueryParams, resource_type: str, *,
                   other_types: bool = False) -> dict[str, str]:
    """The tags ``TagSpecification.N`` gives a new resource of *resource_type*, checked
    (:func:`eucalite.tags.check_new_tags`).

    A specification for another resource type is InvalidParameterValue, unless
    *other_types* (RunInstances, whose specifications may name volumes too): then it is
    skipped.
    """
    tag_map: dict[str, str] = {}
    for spec in params.get_struct_list("TagSpecification"):
        spec_type = spec.get("ResourceType")
        if other_types and spec_type != resource_type:
            continue
        if spec_type is None:
            raise MissingParameter(f"The request must contain the parameter "
                                   f"{spec.name}.ResourceType")
        if spec_type != resource_type:
            raise InvalidParameterValue(f"'{spec_type}' is not a valid taggable resource "
                                        f"type for this operation.")
        tag_map.update(parse_tags(spec.structs("Tag"), prefix=f"{spec.name}.Tag"))
    return tags.check_new_tags(tag_map)


def tag_set(tag_map: Mapping[str, str]) -> list[dict[str, str]]:
    """A resource's ``tagSet`` as EC2 renders it: ``[{"key": …, "value": …}]``."""
    return [{"key": key, "value": value} for key, value in sorted(tag_map.items())]
