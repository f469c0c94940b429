"""The shapes of the ids the cloud mints, where a client depends on them."""
from eucalite import ids


def test_s3_version_and_upload_ids_never_start_with_a_dash():
    """The aws CLI reads ``--version-id -abc`` as a missing value and a new option: an id
    starting with a dash cannot be passed to it at all (1 in 64 did before)."""
    minted = [ids.version_id() for _ in range(2000)] + [ids.upload_id() for _ in range(2000)]
    assert not [token for token in minted if token.startswith("-")]
    assert all(len(token) in (32, 48) and token.isascii() for token in minted)
    assert all(ch.isalnum() or ch in "._" for token in minted for ch in token)
