"""EC2 tag actions: CreateTags, DeleteTags, DescribeTags."""
from __future__ import annotations

from ...errors import MissingParameter
from ... import tags
from ...paging import paginate
from . import filters
from .actions import registry


@registry.action("CreateTags", params=("ResourceId", "Tag"))
def create_tags(call):
    pairs = tags.parse_tags(call.params.get_struct_list("Tag"))
    tags.create_tags(call.principal, call.params.get_list("ResourceId"), pairs)
    return {"return": True}


@registry.action("DeleteTags", params=("ResourceId", "Tag"))
def delete_tags(call):
    items = call.params.get_struct_list("Tag")
    pairs = None
    if items:
        pairs = []
        for index, item in enumerate(items, 1):
            if item.get("Key") is None:
                raise MissingParameter(f"The request must contain the parameter "
                                       f"Tag.{index}.Key")
            # No Value deletes the key whatever its value; Value="" only an empty one.
            pairs.append((tags.validate_key(item["Key"]), item.get("Value")))
    tags.delete_tags(call.principal, call.params.get_list("ResourceId"), pairs)
    return {"return": True}


@registry.action("DescribeTags", params=("Filter", "MaxResults", "NextToken"))
def describe_tags(call):
    params = call.params
    owner = call.principal.account_id
    max_results = params.get_int("MaxResults", minimum=5, maximum=1000)
    rows = tags.describe(owner)
    by_resource: dict[str, dict[str, str]] = {}
    for row in rows:
        by_resource.setdefault(row.resource_id, {})[row.key] = row.value
    rows = filters.apply(rows, params.get_filters(), {
        "key": lambda row: row.key,
        "value": lambda row: row.value,
        "resource-id": lambda row: row.resource_id,
        "resource-type": lambda row: row.resource_type,
        # tag:<k> selects the tags of resources that carry tag k with a matching value.
        "tag:*": lambda row, key: by_resource[row.resource_id].get(key),
    })
    page, next_token = paginate(rows, max_results, params.get("NextToken"),
                                key=lambda row: f"{row.resource_id}\t{row.key}")
    return {"tagSet": [{"resourceId": row.resource_id, "resourceType": row.resource_type,
                        "key": row.key, "value": row.value} for row in page],
            "nextToken": next_token}
