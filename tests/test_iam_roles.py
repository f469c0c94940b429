"""IAM roles, trust policies and instance profiles: who may assume a role
(identity.may_assume: the trust policy with the caller's own policies), the roles and
instance profiles Query API through boto3 and the aws CLI against a live server (AWS's
shapes, codes, paging, tags, DeleteConflict, LimitExceeded, isolation between accounts)
and GetAccountSummary's counts."""
from __future__ import annotations

import json

import pytest

from eucalite import accounts, ids, identity
from eucalite.accounts import Principal
from eucalite.db import db
from eucalite.errors.iam import NoSuchEntity
from eucalite.identity import InlinePolicy, InstanceProfile, InstanceProfileRole, Role


def trust(*statements) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def allow_assume(principal, **extra) -> dict:
    return {"Effect": "Allow", "Principal": principal, "Action": "sts:AssumeRole", **extra}


# --- may_assume: the trust decision ---------------------------------------------------

def _principal(account: accounts.Account, name: str) -> Principal:
    user = accounts.get_user(account.name, name) if name == "admin" else \
        accounts.create_user(account.name, name)
    return accounts.principal_of(user)


def _role(account: accounts.Account, name: str, document: str) -> Role:
    role = Role(id=ids.unique_id("AROA"), account_id=account.id, name=name,
                trust_policy=document)
    db.session.add(role)
    db.session.commit()
    return role


def _session(role: Role, account: accounts.Account, session: str = "s1") -> Principal:
    return Principal(account_id=account.id, account_name=account.name,
                     user_id=f"{role.id}:{session}", user_name=role.name,
                     access_key_id="ASIAEXAMPLE", role_id=role.id, role_name=role.name,
                     session_name=session)


def _allow_user_assume(principal: Principal, effect: str = "Allow") -> None:
    db.session.add(InlinePolicy(user_id=principal.user_id, name=f"assume-{effect}",
                                document=json.dumps({
                                    "Version": "2012-10-17",
                                    "Statement": [{"Effect": effect, "Action": "sts:AssumeRole",
                                                   "Resource": "*"}]})))
    db.session.commit()


def test_may_assume_answers_for_accounts_users_roles_services_and_denies(app):
    with app.app_context():
        home, other = accounts.create_account("home"), accounts.create_account("other")
        root, alice, bob = (_principal(home, name) for name in ("admin", "alice", "bob"))
        stranger_root, stranger = _principal(other, "admin"), _principal(other, "eve")

        # The account as principal: it delegates to the account's own policies. Its root
        # needs none; a user needs an identity policy allowing sts:AssumeRole.
        by_account = _role(home, "by-account", trust(allow_assume({"AWS": home.id})))
        assert identity.may_assume(by_account, root).allowed
        assert identity.may_assume(by_account, alice).effect == "ImplicitDeny"
        _allow_user_assume(alice)
        decision = identity.may_assume(by_account, alice)
        assert decision.allowed and "user inline policy" in decision.explain()
        assert identity.may_assume(by_account, stranger_root).effect == "ImplicitDeny"

        # A named user of the role's account needs nothing more; another user is refused.
        by_user = _role(home, "by-user", trust(allow_assume(
            {"AWS": f"arn:aws:iam::{home.id}:user/bob"}, Sid="bob")))
        decision = identity.may_assume(by_user, bob)
        assert decision.allowed and "'bob' of the role's trust policy" in decision.explain()
        assert not identity.may_assume(by_user, alice).allowed

        # A role names every session of it (role chaining); a session of another role no.
        chained = _role(home, "chained", trust(allow_assume(
            {"AWS": f"arn:aws:iam::{home.id}:role/by-user"})))
        assert identity.may_assume(chained, _session(by_user, home)).allowed
        assert not identity.may_assume(chained, _session(by_account, home)).allowed
        assert not identity.may_assume(chained, bob).allowed

        # Another account trusted: its root may, its user only with its own policy.
        cross = _role(home, "cross", trust(allow_assume({"AWS": f"arn:aws:iam::{other.id}:root"})))
        assert identity.may_assume(cross, stranger_root).allowed
        assert not identity.may_assume(cross, stranger).allowed
        _allow_user_assume(stranger)
        assert identity.may_assume(cross, stranger).allowed
        assert not identity.may_assume(cross, root).allowed      # home is not trusted

        # The EC2 service principal (instance profiles); users are not the service.
        ec2 = _role(home, "ec2", trust(allow_assume({"Service": "ec2.amazonaws.com"})))
        assert identity.may_assume(ec2, identity.EC2_SERVICE).allowed
        assert not identity.may_assume(ec2, "lambda.amazonaws.com").allowed
        assert not identity.may_assume(ec2, root).allowed
        assert not identity.may_assume(by_account, identity.EC2_SERVICE).allowed

        # An explicit Deny in the trust policy wins over the account's Allow, and one in
        # the caller's own policies wins over the trust policy naming the caller.
        denied = _role(home, "denied", trust(
            allow_assume({"AWS": home.id}),
            {"Effect": "Deny", "Principal": {"AWS": f"arn:aws:iam::{home.id}:user/alice"},
             "Action": "sts:AssumeRole", "Sid": "NoAlice"}))
        decision = identity.may_assume(denied, alice)
        assert decision.effect == "Deny" and "'NoAlice'" in decision.explain()
        assert identity.may_assume(denied, root).allowed
        _allow_user_assume(bob, "Deny")
        assert identity.may_assume(by_user, bob).effect == "Deny"


def test_may_assume_checks_trust_conditions(app):
    with app.app_context():
        home = accounts.create_account("home")
        root = _principal(home, "admin")
        role = _role(home, "external", trust(allow_assume(
            {"AWS": home.id}, Condition={"StringEquals": {"sts:ExternalId": "secret-1"}})))
        assert not identity.may_assume(role, root).allowed
        assert not identity.may_assume(role, root, {"sts:ExternalId": "wrong"}).allowed
        assert identity.may_assume(role, root, {"sts:ExternalId": "secret-1"}).allowed


def test_instance_profile_resolves_by_name_or_arn_in_its_account_only(app):
    with app.app_context():
        home, other = accounts.create_account("home"), accounts.create_account("other")
        role = _role(home, "web", trust(allow_assume({"Service": "ec2.amazonaws.com"})))
        profile = InstanceProfile(id=ids.unique_id("AIPA"), account_id=home.id, name="web-p",
                                  path="/app/")
        empty = InstanceProfile(id=ids.unique_id("AIPA"), account_id=home.id, name="empty")
        db.session.add_all([profile, empty])
        db.session.flush()
        db.session.add(InstanceProfileRole(profile_id=profile.id, role_id=role.id))
        db.session.commit()

        found, its_role = identity.instance_profile(home.id, "web-p")
        assert (found.id, its_role.id) == (profile.id, role.id)
        arn = f"arn:aws:iam::{home.id}:instance-profile/app/web-p"
        assert identity.instance_profile(home.id, arn)[0].id == profile.id
        assert identity.instance_profile(home.id, "empty")[1] is None
        for account_id, name in ((other.id, "web-p"), (other.id, arn), (home.id, "nope"),
                                 (home.id, f"arn:aws:iam::{home.id}:instance-profile/web-p"),
                                 (home.id, f"arn:aws:iam::{home.id}:role/app/web-p")):
            with pytest.raises(NoSuchEntity):
                identity.instance_profile(account_id, name)
