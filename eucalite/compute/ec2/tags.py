"""EC2 tag actions: CreateTags, DeleteTags, DescribeTags."""
from __future__ import annotations

from ... import tags
from ...paging import Paging, encode_token
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

#: DescribeTags' filters on a column, and the TagQuery field the database tests them with.
_NARROWED = {"resource-id": "resource_ids", "resource-type": "resource_types", "key": "keys",
             "value": "values"}


def _narrowing(wanted) -> tags.TagQuery:
    """The filters of *wanted* whose values are all literal, for the database to apply
    before it cuts the page; every filter applies again to the page itself."""
    fields: dict[str, list] = {field: [] for field in _NARROWED.values()}
    tagged = []
    for name, values in wanted:
        exact = filters.literal(values)
        if exact is None:
            continue
        if name in _NARROWED:
            fields[_NARROWED[name]].append(exact)
        elif name.startswith("tag:"):
            tagged.append((name[4:], exact))
    return tags.TagQuery(**{field: tuple(conditions) for field, conditions in fields.items()},
                         tagged=tuple(tagged))


@registry.action("DescribeTags", params=("Filter", "MaxResults", "NextToken"))
def describe_tags(call):
    """Filters: key, value, resource-id, resource-type and tag:<key> (the tags of
    resources that carry that tag), as AWS. The database cuts the page after the literal
    filters; a page may then hold fewer than MaxResults tags beside a NextToken."""
    owner = call.principal.account_id
    request = PAGING.read(call.params)
    wanted = filters.parse(call.params)
    rows, next_key = tags.describe(owner, _narrowing(wanted), request.after,
                                   request.max_results)
    by_resource = tags.tags_for(owner, [row.resource_id for row in rows])
    rows = filters.apply(rows, wanted, {
        "key": lambda row: row.key,
        "value": lambda row: row.value,
        "resource-id": lambda row: row.resource_id,
        "resource-type": lambda row: row.resource_type,
        # tag:<k> selects the tags of resources that carry tag k with a matching value.
        "tag:*": lambda row, key: by_resource[row.resource_id].get(key),
    })
    return {"tagSet": [{"resourceId": row.resource_id, "resourceType": row.resource_type,
                        "key": row.key, "value": row.value} for row in rows],
            "nextToken": encode_token(next_key) if next_key else None}
