"""EC2 key pairs over real HTTP with boto3: create, import, delete, describe, errors."""
from __future__ import annotations

import base64
import hashlib

import pytest
from botocore.exceptions import ClientError
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

from awsutil import error_code
from s3util import second_account

from eucalite import accounts
from eucalite.compute import keypairs
from eucalite.errors.ec2 import InvalidKeyPairNotFound


def openssh_public(public_key) -> bytes:
    return public_key.public_bytes(serialization.Encoding.OpenSSH,
                                   serialization.PublicFormat.OpenSSH)


def test_create_rsa_key_pair_material_matches(live):
    ec2 = live.client("ec2")
    created = ec2.create_key_pair(KeyName="alpha")
    material = created["KeyMaterial"]
    assert material.startswith("-----BEGIN RSA PRIVATE KEY-----")
    assert created["KeyPairId"].startswith("key-") and len(created["KeyPairId"]) == 21
    private = serialization.load_pem_private_key(material.encode(), password=None)
    assert isinstance(private, rsa.RSAPrivateKey) and private.key_size == 2048
    pkcs8 = private.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption())
    expected = ":".join(f"{b:02x}" for b in hashlib.sha1(pkcs8).digest())
    assert created["KeyFingerprint"] == expected

    described = ec2.describe_key_pairs(KeyNames=["alpha"], IncludePublicKey=True)["KeyPairs"]
    assert len(described) == 1
    item = described[0]
    assert item["KeyPairId"] == created["KeyPairId"] and item["KeyType"] == "rsa"
    assert item["KeyFingerprint"] == expected and "CreateTime" in item
    # The stored public half is the private key's public half.
    assert item["PublicKey"].split()[:2] == openssh_public(private.public_key()).decode().split()
    assert item["PublicKey"].endswith(" alpha")
    assert "PublicKey" not in ec2.describe_key_pairs(KeyNames=["alpha"])["KeyPairs"][0]


def test_create_ed25519_key_pair(live):
    ec2 = live.client("ec2")
    created = ec2.create_key_pair(KeyName="ed", KeyType="ed25519")
    assert created["KeyMaterial"].startswith("-----BEGIN OPENSSH PRIVATE KEY-----")
    private = serialization.load_ssh_private_key(created["KeyMaterial"].encode(), password=None)
    assert isinstance(private, ed25519.Ed25519PrivateKey)
    blob = base64.b64decode(openssh_public(private.public_key()).split()[1])
    assert created["KeyFingerprint"] == base64.b64encode(hashlib.sha256(blob).digest()).decode()
    item = ec2.describe_key_pairs(KeyNames=["ed"], IncludePublicKey=True)["KeyPairs"][0]
    assert item["KeyType"] == "ed25519"
    assert item["PublicKey"].split()[1] == openssh_public(private.public_key()).decode().split()[1]


def test_create_key_pair_errors(live):
    ec2 = live.client("ec2")
    ec2.create_key_pair(KeyName="dup")
    with pytest.raises(ClientError) as excinfo:
        ec2.create_key_pair(KeyName="dup")
    assert error_code(excinfo) == "InvalidKeyPair.Duplicate"
    for bad in ("x" * 256, "caf\u00e9"):
        with pytest.raises(ClientError) as excinfo:
            ec2.create_key_pair(KeyName=bad)
        assert error_code(excinfo) == "InvalidParameterValue"
    ec2.create_key_pair(KeyName="y" * 255)
    with pytest.raises(ClientError) as excinfo:
        ec2.create_key_pair(KeyName="t", KeyType="dsa")
    assert error_code(excinfo) == "InvalidParameterValue"
    with pytest.raises(ClientError) as excinfo:
        ec2.create_key_pair(KeyName="t", KeyFormat="ppk")
    assert error_code(excinfo) == "InvalidParameterValue"


def test_import_rsa_openssh_and_pem(live):
    ec2 = live.client("ec2")
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public = private.public_key()
    der = public.public_bytes(serialization.Encoding.DER,
                              serialization.PublicFormat.SubjectPublicKeyInfo)
    md5 = ":".join(f"{b:02x}" for b in hashlib.md5(der).digest())
    imported = ec2.import_key_pair(KeyName="ssh",
                                   PublicKeyMaterial=openssh_public(public) + b" me@host\n")
    assert imported["KeyFingerprint"] == md5 and imported["KeyPairId"].startswith("key-")
    pem = public.public_bytes(serialization.Encoding.PEM,
                              serialization.PublicFormat.SubjectPublicKeyInfo)
    assert ec2.import_key_pair(KeyName="pem", PublicKeyMaterial=pem)["KeyFingerprint"] == md5
    item = ec2.describe_key_pairs(KeyNames=["pem"], IncludePublicKey=True)["KeyPairs"][0]
    assert item["PublicKey"].split()[:2] == openssh_public(public).decode().split()


def test_import_ed25519(live):
    ec2 = live.client("ec2")
    public = ed25519.Ed25519PrivateKey.generate().public_key()
    line = openssh_public(public)
    blob = base64.b64decode(line.split()[1])
    imported = ec2.import_key_pair(KeyName="ed", PublicKeyMaterial=line)
    assert imported["KeyFingerprint"] == base64.b64encode(hashlib.sha256(blob).digest()).decode()
    assert ec2.describe_key_pairs(KeyNames=["ed"])["KeyPairs"][0]["KeyType"] == "ed25519"


def test_import_errors(live):
    ec2 = live.client("ec2")
    with pytest.raises(ClientError) as excinfo:
        ec2.import_key_pair(KeyName="bad", PublicKeyMaterial=b"ssh-rsa not-a-key")
    assert error_code(excinfo) == "InvalidKeyPair.Format"
    with pytest.raises(ClientError) as excinfo:
        ec2.import_key_pair(KeyName="bad", PublicKeyMaterial=b"hello world")
    assert error_code(excinfo) == "InvalidKeyPair.Format"
    public = ed25519.Ed25519PrivateKey.generate().public_key()
    ec2.import_key_pair(KeyName="once", PublicKeyMaterial=openssh_public(public))
    with pytest.raises(ClientError) as excinfo:
        ec2.import_key_pair(KeyName="once", PublicKeyMaterial=openssh_public(public))
    assert error_code(excinfo) == "InvalidKeyPair.Duplicate"


def test_delete_by_name_and_id_and_missing(live):
    ec2 = live.client("ec2")
    ec2.create_key_pair(KeyName="a")
    b = ec2.create_key_pair(KeyName="b", KeyType="ed25519")
    ec2.delete_key_pair(KeyName="a")
    ec2.delete_key_pair(KeyPairId=b["KeyPairId"])
    assert ec2.describe_key_pairs()["KeyPairs"] == []
    # Deleting what is not there succeeds, as in AWS.
    ec2.delete_key_pair(KeyName="a")
    ec2.delete_key_pair(KeyPairId="key-0123456789abcdef0")
    # The name is free again.
    ec2.create_key_pair(KeyName="a")


def test_describe_not_found(live):
    ec2 = live.client("ec2")
    ec2.create_key_pair(KeyName="here")
    with pytest.raises(ClientError) as excinfo:
        ec2.describe_key_pairs(KeyNames=["here", "missing"])
    assert error_code(excinfo) == "InvalidKeyPair.NotFound"
    with pytest.raises(ClientError) as excinfo:
        ec2.describe_key_pairs(KeyPairIds=["key-0123456789abcdef0"])
    assert error_code(excinfo) == "InvalidKeyPair.NotFound"


def test_describe_filters(live):
    ec2 = live.client("ec2")
    rsa_key = ec2.create_key_pair(KeyName="web-rsa")
    ed_key = ec2.create_key_pair(
        KeyName="db-ed", KeyType="ed25519",
        TagSpecifications=[{"ResourceType": "key-pair",
                            "Tags": [{"Key": "env", "Value": "prod"}]}])
    assert ed_key["Tags"] == [{"Key": "env", "Value": "prod"}]

    def names(filters):
        return sorted(k["KeyName"] for k in ec2.describe_key_pairs(Filters=filters)["KeyPairs"])

    assert names([{"Name": "key-name", "Values": ["web-*"]}]) == ["web-rsa"]
    assert names([{"Name": "key-type", "Values": ["ed25519"]}]) == ["db-ed"]
    assert names([{"Name": "key-pair-id", "Values": [rsa_key["KeyPairId"]]}]) == ["web-rsa"]
    assert names([{"Name": "fingerprint", "Values": [rsa_key["KeyFingerprint"]]}]) == ["web-rsa"]
    assert names([{"Name": "tag:env", "Values": ["prod"]}]) == ["db-ed"]
    assert names([{"Name": "tag:env", "Values": ["dev"]}]) == []
    assert names([{"Name": "tag-key", "Values": ["env"]}]) == ["db-ed"]
    assert names([{"Name": "tag-value", "Values": ["pr*"]}]) == ["db-ed"]
    item = ec2.describe_key_pairs(KeyNames=["db-ed"])["KeyPairs"][0]
    assert item["Tags"] == [{"Key": "env", "Value": "prod"}]
    with pytest.raises(ClientError) as excinfo:
        ec2.describe_key_pairs(Filters=[{"Name": "colour", "Values": ["x"]}])
    assert error_code(excinfo) == "InvalidParameterValue"


def test_tag_specification_errors_create_nothing(live):
    ec2 = live.client("ec2")
    with pytest.raises(ClientError) as excinfo:
        ec2.create_key_pair(KeyName="k", TagSpecifications=[
            {"ResourceType": "instance", "Tags": [{"Key": "a", "Value": "b"}]}])
    assert error_code(excinfo) == "InvalidParameterValue"
    with pytest.raises(ClientError) as excinfo:
        ec2.create_key_pair(KeyName="k", TagSpecifications=[
            {"ResourceType": "key-pair", "Tags": [{"Key": "aws:x", "Value": "b"}]}])
    assert error_code(excinfo) == "InvalidParameterValue"
    assert ec2.describe_key_pairs()["KeyPairs"] == []


def test_other_account_never_sees_key_pairs(live):
    ec2 = live.client("ec2")
    other = second_account(live, "other", "ec2")[0]
    mine = ec2.create_key_pair(KeyName="shared-name")
    assert other.describe_key_pairs()["KeyPairs"] == []
    with pytest.raises(ClientError) as excinfo:
        other.describe_key_pairs(KeyNames=["shared-name"])
    assert error_code(excinfo) == "InvalidKeyPair.NotFound"
    with pytest.raises(ClientError) as excinfo:
        other.describe_key_pairs(KeyPairIds=[mine["KeyPairId"]])
    assert error_code(excinfo) == "InvalidKeyPair.NotFound"
    # Names are per account: the other account may use the same one...
    theirs = other.create_key_pair(KeyName="shared-name")
    assert theirs["KeyPairId"] != mine["KeyPairId"]
    # ...and deleting by my id from there does nothing to mine.
    other.delete_key_pair(KeyPairId=mine["KeyPairId"])
    assert ec2.describe_key_pairs()["KeyPairs"][0]["KeyPairId"] == mine["KeyPairId"]


def test_get_for_run_instances(live):
    ec2 = live.client("ec2")
    ec2.create_key_pair(KeyName="launch")
    with live.app.app_context():
        owner = accounts.get_account(accounts.ADMIN_ACCOUNT).id
        assert keypairs.get(owner, "launch").public_key.startswith("ssh-rsa ")
        with pytest.raises(InvalidKeyPairNotFound) as excinfo:
            keypairs.get(owner, "nope")
        assert excinfo.value.code == "InvalidKeyPair.NotFound"
