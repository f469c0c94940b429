"""EC2 tags over real HTTP with boto3: CreateTags, DeleteTags, DescribeTags, limits,
ownership, filters and pagination; and the helpers other Describe actions use."""
from __future__ import annotations

import pytest
from awsutil import error_code
from botocore.exceptions import ClientError
from s3util import second_account

from eucalite import accounts
from eucalite import paging, tags
from eucalite.compute.ec2 import filters
from eucalite.compute.ec2.tagparams import tag_set
from eucalite.compute.models import Image
from eucalite.db import db
from eucalite.errors.ec2 import InvalidPaginationToken


def key_id(ec2, name="k") -> str:
    return ec2.create_key_pair(KeyName=name, KeyType="ed25519")["KeyPairId"]


def described(ec2, **kwargs) -> list[tuple[str, str, str, str]]:
    return [(t["ResourceId"], t["ResourceType"], t["Key"], t["Value"])
            for t in ec2.describe_tags(**kwargs)["Tags"]]


def test_create_describe_overwrite(live):
    ec2 = live.client("ec2")
    kid = key_id(ec2)
    ec2.create_tags(Resources=[kid], Tags=[{"Key": "Name", "Value": "web"},
                                           {"Key": "empty"}])
    assert described(ec2) == [(kid, "key-pair", "Name", "web"), (kid, "key-pair", "empty", "")]
    ec2.create_tags(Resources=[kid], Tags=[{"Key": "Name", "Value": "db"}])
    assert (kid, "key-pair", "Name", "db") in described(ec2)
    assert ec2.describe_key_pairs()["KeyPairs"][0]["Tags"] == [
        {"Key": "Name", "Value": "db"}, {"Key": "empty", "Value": ""}]


def test_delete_tags_semantics(live):
    ec2 = live.client("ec2")
    kid = key_id(ec2)
    ec2.create_tags(Resources=[kid], Tags=[{"Key": k, "Value": v} for k, v in
                                           [("a", "1"), ("b", "2"), ("c", ""), ("d", "4")]])
    ec2.delete_tags(Resources=[kid], Tags=[{"Key": "a", "Value": "wrong"}])
    assert [t[2] for t in described(ec2)] == ["a", "b", "c", "d"]
    ec2.delete_tags(Resources=[kid], Tags=[{"Key": "a", "Value": "1"}, {"Key": "b"}])
    assert [t[2] for t in described(ec2)] == ["c", "d"]
    # An empty Value deletes only a tag whose value is empty.
    ec2.delete_tags(Resources=[kid], Tags=[{"Key": "c", "Value": ""}, {"Key": "d", "Value": ""}])
    assert [t[2] for t in described(ec2)] == ["d"]
    ec2.create_tags(Resources=[kid], Tags=[{"Key": "e", "Value": "5"}])
    ec2.delete_tags(Resources=[kid])                      # no Tag: every tag goes
    assert described(ec2) == []


def test_invalid_and_unknown_ids(live):
    ec2 = live.client("ec2")
    tag = [{"Key": "a", "Value": "b"}]
    for bad in ("bogus", "xyz-0123456789abcdef0", "i-XYZ"):
        with pytest.raises(ClientError) as excinfo:
            ec2.create_tags(Resources=[bad], Tags=tag)
        assert error_code(excinfo) == "InvalidID", bad
    cases = {"i-0123456789abcdef0": "InvalidInstanceID.NotFound",
             "emi-0123456789abcdef0": "InvalidAMIID.NotFound",
             "eki-01234567": "InvalidAMIID.NotFound",
             "key-0123456789abcdef0": "InvalidKeyPair.NotFound"}
    for resource_id, code in cases.items():
        with pytest.raises(ClientError) as excinfo:
            ec2.create_tags(Resources=[resource_id], Tags=tag)
        assert error_code(excinfo) == code, resource_id
        with pytest.raises(ClientError) as excinfo:
            ec2.delete_tags(Resources=[resource_id])
        assert error_code(excinfo) == code, resource_id
    # All or nothing: one bad id tags none of them.
    kid = key_id(ec2)
    with pytest.raises(ClientError):
        ec2.create_tags(Resources=[kid, "i-0123456789abcdef0"], Tags=tag)
    assert described(ec2) == []


def test_tag_validation_and_limits(live):
    ec2 = live.client("ec2")
    kid = key_id(ec2)
    for bad in ([{"Key": "aws:name", "Value": "x"}], [{"Key": "AWS:name", "Value": "x"}],
                [{"Key": "k" * 129, "Value": "x"}], [{"Key": "k", "Value": "v" * 257}],
                [{"Key": "", "Value": "x"}]):
        with pytest.raises(ClientError) as excinfo:
            ec2.create_tags(Resources=[kid], Tags=bad)
        assert error_code(excinfo) in ("InvalidParameterValue", "MissingParameter"), bad
    ec2.create_tags(Resources=[kid], Tags=[{"Key": "k" * 128, "Value": "v" * 256}])
    ec2.create_tags(Resources=[kid], Tags=[{"Key": f"t{i}", "Value": ""} for i in range(49)])
    with pytest.raises(ClientError) as excinfo:
        ec2.create_tags(Resources=[kid], Tags=[{"Key": "one-too-many", "Value": ""}])
    assert error_code(excinfo) == "TagLimitExceeded"
    # Overwriting an existing key is not a new tag.
    ec2.create_tags(Resources=[kid], Tags=[{"Key": "t0", "Value": "changed"}])
    assert len(ec2.describe_tags(MaxResults=1000)["Tags"]) == 50


def test_describe_tags_filters(live):
    ec2 = live.client("ec2")
    k1, k2 = key_id(ec2, "one"), key_id(ec2, "two")
    ec2.create_tags(Resources=[k1], Tags=[{"Key": "env", "Value": "prod"},
                                          {"Key": "role", "Value": "web"}])
    ec2.create_tags(Resources=[k2], Tags=[{"Key": "env", "Value": "dev"}])

    def keys(filters):
        return sorted((t[0], t[2]) for t in described(ec2, Filters=filters))

    assert keys([{"Name": "key", "Values": ["env"]}]) == sorted([(k1, "env"), (k2, "env")])
    assert keys([{"Name": "value", "Values": ["pr*"]}]) == [(k1, "env")]
    assert keys([{"Name": "resource-id", "Values": [k2]}]) == [(k2, "env")]
    assert keys([{"Name": "resource-type", "Values": ["key-*"]}]) == sorted(
        [(k1, "env"), (k1, "role"), (k2, "env")])
    assert keys([{"Name": "resource-type", "Values": ["instance"]}]) == []
    assert keys([{"Name": "key", "Values": ["env"]},
                 {"Name": "value", "Values": ["dev", "prod"]}]) == sorted([(k1, "env"),
                                                                          (k2, "env")])
    assert keys([{"Name": "tag:role", "Values": ["web"]}]) == [(k1, "env"), (k1, "role")]
    assert keys([{"Name": "value", "Values": ["?ev"]}]) == [(k2, "env")]
    with pytest.raises(ClientError) as excinfo:
        ec2.describe_tags(Filters=[{"Name": "colour", "Values": ["x"]}])
    assert error_code(excinfo) == "InvalidParameterValue"


def test_describe_tags_pagination(live):
    ec2 = live.client("ec2")
    kid = key_id(ec2)
    ec2.create_tags(Resources=[kid], Tags=[{"Key": f"k{i:02d}", "Value": str(i)}
                                           for i in range(12)])
    seen, token = [], None
    while True:
        kwargs = {"MaxResults": 5, **({"NextToken": token} if token else {})}
        page = ec2.describe_tags(**kwargs)
        assert len(page["Tags"]) <= 5
        seen += [t["Key"] for t in page["Tags"]]
        token = page.get("NextToken")
        if not token:
            break
    assert seen == [f"k{i:02d}" for i in range(12)]
    # boto3's paginator follows the same tokens.
    pages = ec2.get_paginator("describe_tags").paginate(PaginationConfig={"PageSize": 5})
    assert sum(len(p["Tags"]) for p in pages) == 12
    # A token survives deletion of the item it points after.
    first = ec2.describe_tags(MaxResults=5)
    ec2.delete_tags(Resources=[kid], Tags=[{"Key": "k04"}])
    rest = ec2.describe_tags(MaxResults=5, NextToken=first["NextToken"])
    assert [t["Key"] for t in rest["Tags"]] == ["k05", "k06", "k07", "k08", "k09"]
    for bad in (4, 1001):
        with pytest.raises(ClientError) as excinfo:
            ec2.describe_tags(MaxResults=bad)
        assert error_code(excinfo) == "InvalidParameterValue"
    with pytest.raises(ClientError) as excinfo:
        ec2.describe_tags(NextToken="not-a-token")
    assert error_code(excinfo) == "InvalidPaginationToken"


def test_other_account_cannot_see_or_tag(live):
    ec2 = live.client("ec2")
    other = second_account(live, "other", "ec2")[0]
    kid = key_id(ec2)
    ec2.create_tags(Resources=[kid], Tags=[{"Key": "secret", "Value": "x"}])
    assert other.describe_tags()["Tags"] == []
    for action in (lambda: other.create_tags(Resources=[kid], Tags=[{"Key": "a", "Value": ""}]),
                   lambda: other.delete_tags(Resources=[kid])):
        with pytest.raises(ClientError) as excinfo:
            action()
        assert error_code(excinfo) == "InvalidKeyPair.NotFound"
    assert len(ec2.describe_tags()["Tags"]) == 1


def test_deleting_key_pair_drops_its_tags(live):
    ec2 = live.client("ec2")
    kid = key_id(ec2)
    ec2.create_tags(Resources=[kid], Tags=[{"Key": "a", "Value": "b"}])
    ec2.delete_key_pair(KeyPairId=kid)
    assert ec2.describe_tags()["Tags"] == []


def test_images_are_taggable(live):
    ec2 = live.client("ec2")
    with live.app.app_context():
        owner = accounts.get_account(accounts.ADMIN_ACCOUNT).id
        db.session.add(Image(id="emi-0123456789abcdef0", owner_id=owner, kind="machine",
                             name="img"))
        db.session.commit()
    ec2.create_tags(Resources=["emi-0123456789abcdef0"], Tags=[{"Key": "os", "Value": "linux"}])
    assert described(ec2) == [("emi-0123456789abcdef0", "image", "os", "linux")]


def test_helpers(live):
    ec2 = live.client("ec2")
    k1, k2 = key_id(ec2, "one"), key_id(ec2, "two")
    ec2.create_tags(Resources=[k1], Tags=[{"Key": "b", "Value": "2"}, {"Key": "a", "Value": "1"}])
    with live.app.app_context():
        owner = accounts.get_account(accounts.ADMIN_ACCOUNT).id
        found = tags.tags_for(owner, [k1, k2])
        assert found == {k1: {"a": "1", "b": "2"}, k2: {}}
        assert tags.tags_for("000000000000", [k1]) == {k1: {}}
        assert tag_set(found[k1]) == [{"key": "a", "value": "1"}, {"key": "b", "value": "2"}]
        getters = filters.tag_getters(lambda item: found[item])
        assert getters["tag:*"](k1, "a") == "1" and getters["tag:*"](k2, "a") is None
        assert getters["tag-key"](k1) == ["a", "b"] and getters["tag-value"](k2) == []


def test_paginate_unit():
    items = [f"i{n}" for n in range(7)]
    page, token = paging.paginate(items, 3, None, key=str)
    assert page == ["i0", "i1", "i2"] and token
    page, token = paging.paginate(items, 3, token, key=str)
    assert page == ["i3", "i4", "i5"]
    page, token = paging.paginate(items, 3, token, key=str)
    assert page == ["i6"] and token is None
    assert paging.paginate(items, None, None, key=str) == (items, None)
    assert paging.paginate(items, 7, None, key=str) == (items, None)
    with pytest.raises(InvalidPaginationToken):
        paging.paginate(items, 3, "Zm9v", key=str)        # base64, but not ours
