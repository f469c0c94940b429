"""S3 listings over real HTTP with boto3: ListObjects v1 and v2 (prefix, delimiter, markers,
continuation tokens, start-after, max-keys, encoding-type=url, fetch-owner), paginators,
and a 3000-key bucket paged 1000 at a time."""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from urllib.parse import quote_plus

import pytest

from awsutil import failure

KEYS = [
    "a", "a/1", "a/2", "a/b/3", "a/b/4", "a/c", "b/5", "b-6", "c", "d/e/f/7",
    "photos/2024/jan.jpg", "photos/2024/feb.jpg", "photos/2025/mar.jpg", "photos/readme",
]


def byte_order(keys):
    return sorted(keys, key=lambda key: key.encode("utf-8"))


@pytest.fixture
def s3(live):
    client = live.client("s3")
    client.create_bucket(Bucket="lst")
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda key: client.put_object(Bucket="lst", Key=key,
                                                    Body=key.encode()), KEYS))
    return client


def keys_of(response) -> list[str]:
    return [item["Key"] for item in response.get("Contents", [])]


def prefixes_of(response) -> list[str]:
    return [item["Prefix"] for item in response.get("CommonPrefixes", [])]


# --- whole listings ----------------------------------------------------------------------

def test_v1_and_v2_list_everything_in_order_with_details(s3):
    for response in (s3.list_objects(Bucket="lst"), s3.list_objects_v2(Bucket="lst")):
        assert keys_of(response) == byte_order(KEYS)
        assert response["IsTruncated"] is False
        assert response["Name"] == "lst"
        assert response["MaxKeys"] == 1000
        item = response["Contents"][0]
        assert item["Size"] == len(item["Key"])
        assert item["ETag"].startswith('"') and len(item["ETag"]) == 34
        assert item["StorageClass"] == "STANDARD"
        assert item["LastModified"]
    assert s3.list_objects_v2(Bucket="lst")["KeyCount"] == len(KEYS)


def test_empty_bucket_and_missing_bucket(live, s3):
    s3.create_bucket(Bucket="empty")
    response = s3.list_objects_v2(Bucket="empty")
    assert "Contents" not in response and response["KeyCount"] == 0
    assert "Contents" not in s3.list_objects(Bucket="empty")
    code, status, _ = failure(s3.list_objects_v2, Bucket="nope")
    assert (code, status) == ("NoSuchBucket", 404)
    code, status, _ = failure(s3.list_objects, Bucket="nope")
    assert (code, status) == ("NoSuchBucket", 404)


def test_listing_another_accounts_bucket_is_denied(live, s3):
    from s3util import second_account

    code, status, _ = failure(second_account(live, "second")[0].list_objects_v2, Bucket="lst")
    assert (code, status) == ("AccessDenied", 403)


# --- prefix and delimiter ------------------------------------------------------------------

@pytest.mark.parametrize("version", [1, 2])
def test_prefix(s3, version):
    call = s3.list_objects if version == 1 else s3.list_objects_v2
    response = call(Bucket="lst", Prefix="photos/2024/")
    assert keys_of(response) == ["photos/2024/feb.jpg", "photos/2024/jan.jpg"]
    assert response["Prefix"] == "photos/2024/"
    assert keys_of(call(Bucket="lst", Prefix="zzz")) == []
    assert keys_of(call(Bucket="lst", Prefix="a")) == ["a", "a/1", "a/2", "a/b/3", "a/b/4",
                                                       "a/c"]


@pytest.mark.parametrize("version", [1, 2])
def test_delimiter_and_common_prefixes(s3, version):
    call = s3.list_objects if version == 1 else s3.list_objects_v2
    response = call(Bucket="lst", Delimiter="/")
    assert keys_of(response) == ["a", "b-6", "c"]
    assert prefixes_of(response) == ["a/", "b/", "d/", "photos/"]
    assert response["Delimiter"] == "/"
    response = call(Bucket="lst", Prefix="a/", Delimiter="/")
    assert keys_of(response) == ["a/1", "a/2", "a/c"]
    assert prefixes_of(response) == ["a/b/"]
    response = call(Bucket="lst", Prefix="photos/", Delimiter="/")
    assert keys_of(response) == ["photos/readme"]
    assert prefixes_of(response) == ["photos/2024/", "photos/2025/"]
    # another delimiter
    response = call(Bucket="lst", Delimiter="-")
    assert prefixes_of(response) == ["b-"]
    assert "b-6" not in keys_of(response) and "b/5" in keys_of(response)
    # a multi-character delimiter
    response = call(Bucket="lst", Delimiter="/20")
    assert prefixes_of(response) == ["photos/20"]


def test_v2_key_count_counts_common_prefixes(s3):
    response = s3.list_objects_v2(Bucket="lst", Delimiter="/")
    assert response["KeyCount"] == 3 + 4


# --- markers, tokens, max-keys -------------------------------------------------------------

def test_v1_marker_and_max_keys(s3):
    ordered = byte_order(KEYS)
    response = s3.list_objects(Bucket="lst", MaxKeys=3)
    assert keys_of(response) == ordered[:3]
    assert response["IsTruncated"] is True
    assert response["MaxKeys"] == 3
    response = s3.list_objects(Bucket="lst", Marker=ordered[2], MaxKeys=3)
    assert keys_of(response) == ordered[3:6]
    assert response["Marker"] == ordered[2]
    # a marker need not be an existing key
    assert keys_of(s3.list_objects(Bucket="lst", Marker="b"))[0] == "b-6"
    response = s3.list_objects(Bucket="lst", Marker=ordered[-1])
    assert keys_of(response) == [] and response["IsTruncated"] is False


def test_v1_next_marker_with_delimiter_resumes_after_a_common_prefix(s3):
    response = s3.list_objects(Bucket="lst", Delimiter="/", MaxKeys=2)
    assert keys_of(response) == ["a"] and prefixes_of(response) == ["a/"]
    assert response["IsTruncated"] is True
    assert response["NextMarker"] == "a/"
    response = s3.list_objects(Bucket="lst", Delimiter="/", MaxKeys=2,
                               Marker=response["NextMarker"])
    assert prefixes_of(response) == ["b/"] and keys_of(response) == ["b-6"]


def test_v2_continuation_token_and_start_after(s3):
    ordered = byte_order(KEYS)
    response = s3.list_objects_v2(Bucket="lst", MaxKeys=4)
    assert keys_of(response) == ordered[:4]
    assert response["IsTruncated"] is True and response["KeyCount"] == 4
    token = response["NextContinuationToken"]
    response = s3.list_objects_v2(Bucket="lst", MaxKeys=4, ContinuationToken=token)
    assert keys_of(response) == ordered[4:8]
    assert response["ContinuationToken"] == token
    response = s3.list_objects_v2(Bucket="lst", StartAfter="b/5")
    assert keys_of(response) == ordered[ordered.index("b/5") + 1:]
    assert response["StartAfter"] == "b/5"
    # the token wins over start-after
    response = s3.list_objects_v2(Bucket="lst", MaxKeys=4, ContinuationToken=token,
                                  StartAfter="photos")
    assert keys_of(response) == ordered[4:8]


def test_v2_continuation_after_a_common_prefix_does_not_repeat_it(s3):
    seen_prefixes, seen_keys = [], []
    kwargs = {"Bucket": "lst", "Delimiter": "/", "MaxKeys": 1}
    while True:
        response = s3.list_objects_v2(**kwargs)
        seen_prefixes += prefixes_of(response)
        seen_keys += keys_of(response)
        if not response["IsTruncated"]:
            break
        kwargs["ContinuationToken"] = response["NextContinuationToken"]
    assert seen_prefixes == ["a/", "b/", "d/", "photos/"]
    assert seen_keys == ["a", "b-6", "c"]


def test_v2_start_after_inside_a_common_prefix(s3):
    response = s3.list_objects_v2(Bucket="lst", Delimiter="/", StartAfter="a/2")
    # "a/" sorts before "a/2": it is not listed again
    assert prefixes_of(response) == ["b/", "d/", "photos/"]
    assert keys_of(response) == ["b-6", "c"]


def test_max_keys_zero_and_bad_values(s3):
    response = s3.list_objects_v2(Bucket="lst", MaxKeys=0)
    assert keys_of(response) == [] and response["KeyCount"] == 0
    code, status, _ = failure(s3.list_objects_v2, Bucket="lst", MaxKeys=-1)
    assert (code, status) == ("InvalidArgument", 400)
    assert s3.list_objects_v2(Bucket="lst", MaxKeys=5000)["MaxKeys"] == 1000


def test_bad_continuation_token(s3):
    code, status, _ = failure(s3.list_objects_v2, Bucket="lst", ContinuationToken="!!not*a*token")
    assert (code, status) == ("InvalidArgument", 400)


# --- paginators ----------------------------------------------------------------------------

@pytest.mark.parametrize("operation", ["list_objects", "list_objects_v2"])
@pytest.mark.parametrize("page_size", [1, 2, 5])
def test_paginators_give_every_key_once_in_order(s3, operation, page_size):
    keys, prefixes = [], []
    for page in s3.get_paginator(operation).paginate(
            Bucket="lst", PaginationConfig={"PageSize": page_size}):
        keys += keys_of(page)
    assert keys == byte_order(KEYS)
    keys = []
    for page in s3.get_paginator(operation).paginate(
            Bucket="lst", Delimiter="/", PaginationConfig={"PageSize": page_size}):
        keys += keys_of(page)
        prefixes += prefixes_of(page)
    assert keys == ["a", "b-6", "c"]
    assert prefixes == ["a/", "b/", "d/", "photos/"]


# --- encoding-type=url ---------------------------------------------------------------------

ODD_KEYS = ["with space", "plus+sign", "percent%25", "ünïcødé/ключ", "tab\there",
            "amp&lt<gt>", "emoji/😀 x", "slash//double", "ctrl\x01char"]


@pytest.fixture
def odd(s3):
    s3.create_bucket(Bucket="odd")
    for key in ODD_KEYS:
        s3.put_object(Bucket="odd", Key=key, Body=b"1")
    return s3


@pytest.mark.parametrize("operation", ["list_objects", "list_objects_v2"])
def test_odd_keys_round_trip_through_boto3_url_decoding(odd, operation):
    """boto3 asks for encoding-type=url itself and decodes what comes back."""
    keys = []
    for page in odd.get_paginator(operation).paginate(Bucket="odd",
                                                      PaginationConfig={"PageSize": 2}):
        keys += keys_of(page)
    assert keys == byte_order(ODD_KEYS)
    response = getattr(odd, operation)(Bucket="odd", Prefix="emoji/😀", Delimiter=" ")
    assert prefixes_of(response) == ["emoji/😀 "]
    assert response["Delimiter"] == " "
    if operation == "list_objects_v2":
        # S3 url-encodes <Prefix> in both versions (as documented), but botocore decodes
        # it only for v2; a v1 caller sees it encoded, as against AWS.
        assert response["Prefix"] == "emoji/😀"


def test_prefix_ending_just_below_the_surrogates(s3):
    """The end of a prefix range is the prefix's successor, which must skip the surrogate
    code points (unencodable) rather than fail."""
    for key in ("x\ud7ffy", "x\ue000", "x\ud7fe"):
        s3.put_object(Bucket="lst", Key=key, Body=b"1")
    assert keys_of(s3.list_objects_v2(Bucket="lst", Prefix="x\ud7ff")) == ["x\ud7ffy"]
    response = s3.list_objects_v2(Bucket="lst", Prefix="x", Delimiter="\ud7ff")
    assert prefixes_of(response) == ["x\ud7ff"]
    assert keys_of(response) == ["x\ud7fe", "x\ue000"]


def test_explicit_encoding_type_url_returns_encoded_names(odd):
    """Asked for explicitly, boto3 leaves the encoding for the caller to undo."""
    response = odd.list_objects_v2(Bucket="odd", EncodingType="url", Prefix="with")
    assert response["EncodingType"] == "url"
    assert keys_of(response) == [quote_plus("with space", safe="/")]
    response = odd.list_objects_v2(Bucket="odd", EncodingType="url", Prefix="ünï")
    assert keys_of(response) == ["%C3%BCn%C3%AFc%C3%B8d%C3%A9/%D0%BA%D0%BB%D1%8E%D1%87"]


def test_bad_encoding_type(odd):
    code, status, _ = failure(odd.list_objects_v2, Bucket="odd", EncodingType="base64")
    assert (code, status) == ("InvalidArgument", 400)


# --- fetch-owner ---------------------------------------------------------------------------

def test_fetch_owner(s3):
    owner_id = s3.list_buckets()["Owner"]["ID"]
    response = s3.list_objects_v2(Bucket="lst", MaxKeys=2)
    assert all("Owner" not in item for item in response["Contents"])
    response = s3.list_objects_v2(Bucket="lst", MaxKeys=2, FetchOwner=True)
    assert all(item["Owner"]["ID"] == owner_id for item in response["Contents"])
    # v1 always tells the owner
    assert all(item["Owner"]["ID"] == owner_id
               for item in s3.list_objects(Bucket="lst", MaxKeys=2)["Contents"])


# --- a bucket of 3000 keys -----------------------------------------------------------------

def _insert_empty_objects(live, bucket_name: str, keys: list[str]) -> None:
    """The fast path: rows for empty objects straight into the database, one transaction
    (3000 PUTs over HTTP, each fsynced, take far longer than the listing under test)."""
    import hashlib

    from eucalite.accounts import utcnow
    from eucalite.db import db
    from eucalite.s3 import buckets
    from eucalite.s3.models import ObjectVersion

    with live.app.app_context():
        bucket = buckets.find(bucket_name)
        now = utcnow()
        db.session.add_all(ObjectVersion(
            bucket_id=bucket.id, key=key, size=0, etag=hashlib.md5(b"").hexdigest(),
            last_modified=now, owner_id=bucket.owner_id, segments_json="[]")
            for key in keys)
        db.session.commit()


def test_3000_keys_paged_by_1000(live):
    s3 = live.client("s3", max_pool_connections=8)
    s3.create_bucket(Bucket="many")
    keys = [f"k/{index:05d}/{'ü' if index % 7 == 0 else 'u'}" for index in range(3000)]
    # a few through the real PUT path, the rest through the fast path
    http_keys = keys[::10]
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda key: s3.put_object(Bucket="many", Key=key, Body=b""),
                      http_keys))
    _insert_empty_objects(live, "many", sorted(set(keys) - set(http_keys)))
    assert s3.get_object(Bucket="many", Key=keys[1])["Body"].read() == b""
    for operation in ("list_objects_v2", "list_objects"):
        pages = list(s3.get_paginator(operation).paginate(
            Bucket="many", PaginationConfig={"PageSize": 1000}))
        assert [len(page["Contents"]) for page in pages] == [1000, 1000, 1000]
        assert [page["IsTruncated"] for page in pages] == [True, True, False]
        listed = [key for page in pages for key in keys_of(page)]
        assert listed == byte_order(keys)
    response = s3.list_objects_v2(Bucket="many", Prefix="k/", Delimiter="/")
    assert prefixes_of(response)[:2] == ["k/00000/", "k/00001/"]
    assert len(prefixes_of(response)) == 1000 and response["IsTruncated"] is True
    prefixes = [prefix for page in s3.get_paginator("list_objects_v2").paginate(
        Bucket="many", Prefix="k/", Delimiter="/") for prefix in prefixes_of(page)]
    assert prefixes == [key.rsplit("/", 1)[0] + "/" for key in byte_order(keys)]
    # 3000 keys under one common prefix: one entry, found without reading them all
    response = s3.list_objects_v2(Bucket="many", Delimiter="/")
    assert prefixes_of(response) == ["k/"] and "Contents" not in response
    assert response["IsTruncated"] is False
