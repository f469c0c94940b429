"""EC2 tag actions: CreateTags, DeleteTags, DescribeTags."""
from __future__ import annotations

from ... import tags
from ...paging import Paging
from . import filters
from .actions import registry
from .tagparams import parse_tag_keys, parse_tags


@registry.action("CreateTags", params=("ResourceId", "Tag"))
def create_tags(call):
    tag_map = parse_tags(call.params.get_struct_list("Tag"))
    tags.create_tags(call.principal, call.params.get_list("ResourceId"), tag_map)
    return {"return": True}


@registry.action("DeleteTags", params=("ResourceId", "Tag"))
def delete_tags(call):
    pairs = parse_tag_keys(call.params.get_struct_list("Tag"))
    tags.delete_tags(call.principal, call.params.get_list("ResourceId"), pairs)
    return {"return": True}


PAGING = Paging(maximum=1000)


@registry.action("DescribeTags", params=("Filter", "MaxResults", "NextToken"))
def describe_tags(call):
    params = call.params
    owner = call.principal.account_id
    request = PAGING.read(params)
    rows = tags.describe(owner)
    by_resource: dict[str, dict[str, str]] = {}
    for row in rows:
        by_resource.setdefault(row.resource_id, {})[row.key] = row.value
    rows = filters.apply(rows, filters.parse(params), {
        "key": lambda row: row.key,
        "value": lambda row: row.value,
        "resource-id": lambda row: row.resource_id,
        "resource-type": lambda row: row.resource_type,
        # tag:<k> selects the tags of resources that carry tag k with a matching value.
        "tag:*": lambda row, key: by_resource[row.resource_id].get(key),
    })
    page, next_token = request.page(rows, key=lambda row: f"{row.resource_id}\t{row.key}")
    return {"tagSet": [{"resourceId": row.resource_id, "resourceType": row.resource_type,
                        "key": row.key, "value": row.value} for row in page],
            "nextToken": next_token}
