"""The bundle format (compute/bundle.py) and the cloud key (compute/cloudkey.py), no server."""
from __future__ import annotations

import hashlib
import io
import os
import stat

import pytest

from eucalite.compute import bundle, bundling, cloudkey


@pytest.fixture(scope="module")
def cloud_key(tmp_path_factory):
    return cloudkey.cloud_private_key(tmp_path_factory.mktemp("key"))


@pytest.fixture
def image_file(tmp_path):
    path = tmp_path / "disk.img"
    path.write_bytes(os.urandom(250_000) + b"\0" * 100_000)
    return path


def _bundle(image_file, **kwargs):
    manifest_xml, parts = bundling.make_bundle(image_file, "disk.img", part_size=64 * 1024,
                                             **kwargs)
    return manifest_xml, dict(parts)


def _unbundle(manifest_xml, parts, key=None) -> bytes:
    out = io.BytesIO()
    bundle.unbundle(bundle.parse_manifest(manifest_xml), lambda name: iter([parts[name]]),
                    out, private_key=key)
    return out.getvalue()


@pytest.mark.parametrize("encrypted", [False, True])
def test_round_trip(image_file, cloud_key, encrypted):
    manifest_xml, parts = _bundle(image_file, encrypt_with=cloud_key.public_key()
                                  if encrypted else None, kernel_id="eki-0a1b2c3d")
    manifest = bundle.parse_manifest(manifest_xml)
    assert manifest.encrypted is encrypted
    assert manifest.kind == "machine" and manifest.arch == "x86_64"
    assert manifest.kernel_id == "eki-0a1b2c3d" and manifest.ramdisk_id is None
    assert manifest.image_size == image_file.stat().st_size
    assert manifest.bundled_size == sum(len(data) for data in parts.values())
    assert [name for name, _ in manifest.parts] == sorted(parts)
    assert manifest.parts[0][0] == "disk.img.part.00"
    for name, digest in manifest.parts:
        assert hashlib.sha1(parts[name]).hexdigest() == digest
    assert _unbundle(manifest_xml, parts, cloud_key) == image_file.read_bytes()


def test_manifest_elements(image_file, cloud_key):
    manifest_xml, _ = _bundle(image_file, encrypt_with=cloud_key.public_key(), kind="kernel",
                              user="123456789012", user_key=cloud_key.public_key(),
                              sign_with=cloud_key)
    text = manifest_xml.decode()
    for element in ("<version>2007-10-10</version>", "<bundler>", "<machine_configuration>",
                    "<type>kernel</type>", '<digest algorithm="SHA1">',
                    '<ec2_encrypted_key algorithm="AES-128-CBC">', "<user_encrypted_key",
                    "<ec2_encrypted_iv>", "<user_encrypted_iv>", "<parts count=",
                    '<part index="0">', "<user>123456789012</user>", "<block_device_mapping>"):
        assert element in text
    assert "<signature />" not in text and "<signature>" in text


def test_unencrypted_bundle_has_no_key_elements(image_file):
    manifest_xml, _ = _bundle(image_file)
    assert b"encrypted_key" not in manifest_xml and b"encrypted_iv" not in manifest_xml


def test_single_small_file_and_empty_file(tmp_path):
    for content in (b"tiny", b""):
        path = tmp_path / "f"
        path.write_bytes(content)
        manifest_xml, parts = bundling.make_bundle(path, "f", "ramdisk")
        assert len(parts := dict(parts)) == 1
        assert _unbundle(manifest_xml, parts) == content


def test_corrupted_part_detected(image_file, cloud_key):
    for encrypt in (None, cloud_key.public_key()):
        manifest_xml, parts = _bundle(image_file, encrypt_with=encrypt)
        name = sorted(parts)[1]
        data = bytearray(parts[name])
        data[100] ^= 1
        parts[name] = bytes(data)
        with pytest.raises(bundle.CorruptBundle, match="digest"):
            _unbundle(manifest_xml, parts, cloud_key)


def test_missing_part_and_wrong_key(image_file, cloud_key, tmp_path):
    manifest_xml, parts = _bundle(image_file, encrypt_with=cloud_key.public_key())
    short = dict(parts)
    short[sorted(short)[-1]] = b""
    with pytest.raises(bundle.CorruptBundle):
        _unbundle(manifest_xml, short, cloud_key)
    with pytest.raises(bundle.CorruptBundle, match="no cloud key"):
        _unbundle(manifest_xml, parts, None)
    other = cloudkey.cloud_private_key(tmp_path / "other")
    with pytest.raises(bundle.CorruptBundle):
        _unbundle(manifest_xml, parts, other)


def test_tampered_manifest_digest(image_file):
    manifest_xml, parts = _bundle(image_file)
    manifest = bundle.parse_manifest(manifest_xml)
    manifest.digest = "0" * 40
    with pytest.raises(bundle.CorruptBundle, match="digest"):
        bundle.unbundle(manifest, lambda name: iter([parts[name]]), io.BytesIO())


@pytest.mark.parametrize("xml, message", [
    (b"not xml", "well-formed"),
    (b"<other/>", "root element"),
    (b"<manifest><version>1</version></manifest>", "<image>"),
    (b"<manifest><image><name>x</name><type>disk</type><parts count='0'/></image></manifest>",
     "image type"),
    (b"<manifest><image><name>x</name></image></manifest>", "<parts>"),
    (b"<manifest><image><name>x</name><parts count='1'/></image></manifest>", "numbered"),
    (b"<manifest><image><name>x</name><parts count='2'><part index='0'><filename>a</filename>"
     b"<digest>ab</digest></part></parts></image></manifest>", "count=2"),
    (b"<manifest><image><name>x</name><parts><part index='0'><filename>a</filename>"
     b"<digest>zz</digest></part></parts></image></manifest>", "hexadecimal"),
    (b"<manifest><image><name>x</name><parts><part index='0'><filename>../a</filename>"
     b"<digest>ab</digest></part></parts></image></manifest>", "directory"),
    (b"<manifest><image><name>x</name><size>big</size><parts><part index='0'><filename>a"
     b"</filename><digest>ab</digest></part></parts></image></manifest>", "number"),
    (b"<!DOCTYPE m [<!ENTITY a 'b'>]><manifest/>", "DOCTYPE"),
    # digits str.isdigit() takes but int() refuses, and more digits than int() will read
    ("<manifest><image><name>x</name><size>\u00b2</size><parts><part index='0'><filename>a"
     "</filename><digest>ab</digest></part></parts></image></manifest>".encode(), "number"),
    (b"<manifest><image><name>x</name><size>" + b"9" * 5000 + b"</size><parts><part "
     b"index='0'><filename>a</filename><digest>ab</digest></part></parts></image></manifest>",
     "number"),
    ("<manifest><image><name>x</name><parts><part index='\u00b2'><filename>a</filename>"
     "<digest>ab</digest></part></parts></image></manifest>".encode(), "index"),
])
def test_parse_errors(xml, message):
    with pytest.raises(bundle.InvalidManifest, match=message) as caught:
        bundle.parse_manifest(xml)
    assert caught.value.code == "InvalidManifest"


def test_old_euca2ools_kernel_marker():
    xml = (b"<manifest><machine_configuration><kernel_id>true</kernel_id>"
           b"</machine_configuration><image><name>k</name><parts count='1'><part index='0'>"
           b"<filename>k.part.0</filename><digest>ab</digest></part></parts></image></manifest>")
    manifest = bundle.parse_manifest(xml)
    assert manifest.kind == "kernel" and manifest.kernel_id is None


def test_cloud_key_created_once_private(tmp_path):
    first = cloudkey.cloud_public_key_pem(tmp_path)
    assert first.startswith(b"-----BEGIN PUBLIC KEY-----")
    assert stat.S_IMODE((tmp_path / "cloud-key.pem").stat().st_mode) == 0o600
    assert cloudkey.cloud_public_key_pem(tmp_path) == first
