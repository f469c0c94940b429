"""The generic state machine: a table of allowed moves and the compare-and-swap under it.

It is tried on two plain columns: an access key's status (Active <-> Inactive) and a
volume's attachment, whose "detached" state is NULL.
"""
from __future__ import annotations

import pytest

from eucalite import accounts
from eucalite.accounts import utcnow
from eucalite.db import db
from eucalite.ebs.models import Volume
from eucalite.statemachine import StateMachine, compare_and_swap

KEY = StateMachine(accounts.AccessKey, {"Active": {"Inactive"}, "Inactive": set()},
                   column="status")
ATTACHMENT = StateMachine(Volume, {None: {"attaching"}, "attaching": {"attached", None},
                                   "attached": set()}, column="attach_state")


@pytest.fixture
def key_id(app):
    with app.app_context():
        yield accounts.first_active_key("eucalyptus", "admin").id


def status(key_id: str) -> str:
    db.session.expire_all()
    return db.session.get(accounts.AccessKey, key_id).status


def test_one_of_two_racing_moves_wins(key_id):
    assert KEY.transition(key_id, "Inactive", expected={"Active"}) is True
    assert KEY.transition(key_id, "Inactive", expected={"Active"}) is False
    assert status(key_id) == "Inactive"


def test_expected_defaults_to_every_state_the_table_allows(key_id):
    assert KEY.allowed_from("Inactive") == {"Active"}
    assert KEY.transition(key_id, "Inactive") is True
    assert status(key_id) == "Inactive"


def test_a_forbidden_move_is_refused_before_the_database_is_touched(key_id):
    KEY.transition(key_id, "Inactive")
    with pytest.raises(ValueError, match="forbids Inactive -> Active"):
        KEY.transition(key_id, "Active", expected={"Inactive"})
    assert status(key_id) == "Inactive"


def test_a_table_naming_an_unknown_state_is_refused():
    with pytest.raises(ValueError, match="does not list"):
        StateMachine(accounts.AccessKey, {"Active": {"Gone"}}, column="status")


def test_on_win_runs_in_the_winning_transaction_only(key_id):
    calls = []
    assert KEY.transition(key_id, "Inactive", on_win=lambda: calls.append("won"))
    assert not KEY.transition(key_id, "Inactive", expected={"Active"},
                              on_win=lambda: calls.append("lost"))
    assert calls == ["won"]


def test_note_records_fields_without_moving(key_id):
    created = utcnow()
    assert KEY.note(key_id, {"Active"}, created=created) is True
    assert KEY.note(key_id, {"Inactive"}, created=None) is False
    assert status(key_id) == "Active"
    with pytest.raises(ValueError, match="use transition"):
        KEY.note(key_id, {"Active"}, status="Inactive")
    with pytest.raises(ValueError, match="no state Gone"):
        KEY.note(key_id, {"Gone"}, created=created)


def test_none_is_a_state(app):
    with app.app_context():
        owner = db.session.execute(db.select(accounts.Account.id)).scalars().first()
        db.session.add(Volume(id="vol-1", owner_id=owner, size_gb=1, zone="z",
                              state="available"))
        db.session.commit()
        assert ATTACHMENT.transition("vol-1", "attaching", expected={None}, device="/dev/sdf")
        assert not ATTACHMENT.transition("vol-1", "attaching", expected={None})
        assert ATTACHMENT.transition("vol-1", None, expected={"attaching"}, device=None)
        db.session.expire_all()
        assert db.session.get(Volume, "vol-1").attach_state is None


def test_the_compare_and_swap_alone_matches_null(app):
    with app.app_context():
        key = accounts.first_active_key("eucalyptus", "admin")
        assert not compare_and_swap(accounts.AccessKey, key.id, "status", {None},
                                    {"status": "Inactive"})
        assert compare_and_swap(accounts.AccessKey, key.id, "status", {None, "Active"},
                                {"status": "Inactive"})


def test_a_column_may_be_called_target(app):
    """key and target are positional only: ``target=`` is a column to set (a volume's)."""
    with app.app_context():
        owner = db.session.execute(db.select(accounts.Account.id)).scalars().first()
        db.session.add(Volume(id="vol-2", owner_id=owner, size_gb=1, zone="z",
                              state="in-use", attach_state="attaching"))
        db.session.commit()
        assert ATTACHMENT.transition("vol-2", "attached", expected={"attaching"}, target="vdc")
        db.session.expire_all()
        assert db.session.get(Volume, "vol-2").target == "vdc"
