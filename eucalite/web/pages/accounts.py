"""Accounts, users and access keys: the cloud admin's pages (every account), and every
signed-in user's "My credentials" page (their own keys, credentials file downloads).

The cloud admin's views call the functions of :mod:`eucalite.accounts` (what `eucalite
account ...` calls): the cloud admin manages anyone's keys. A user's own keys go through the
IAM service as that user, so the gate decides as it does for the IAM API (a user with no
policy may not even list its own keys; the account's root may do anything), and the page
offers only what the gate would allow. A new key's secret is shown once: the key id waits
in the session until the next page renders it, then is forgotten; the page never shows a
secret again (the credentials downloads, of a key one may list, carry it).
"""
from __future__ import annotations

import configparser
import io
import re
import zipfile

from flask import (Response, current_app, redirect, render_template, request, session,
                   url_for)

from ... import accounts
from ... import config as config_module
from ...api import services
from ...compute.ec2.actions import CLASSIC_EC2_PATH
from ...credentials import classic_urls, eucarc_text, profile_sections
from ...db import db
from ...errors import AwsError
from ...errors.iam import ValidationError
from ...iam.common import authorize
from .. import blueprint
from ..session import (act, admin_required, current_token, login_required, principal,
                       set_password)
from . import add_nav, attachment
from .iam_common import entity_arn, iam, may

#: Session key holding the id of a key created on the previous request (its secret is
#: shown once, on the next page).
NEW_KEY = "new_access_key"

#: The IAM actions on a user's access keys the key buttons stand for.
KEY_ACTIONS = ("ListAccessKeys", "CreateAccessKey", "UpdateAccessKey", "DeleteAccessKey")

#: A profile name: ASCII letters, digits, '.', '_' and '-' (\w would take any letter).
_PROFILE_NAME = re.compile(r"[A-Za-z0-9_.-]{1,64}")

add_nav("console.credentials", "Credentials")
add_nav("console.accounts", "Accounts", admin=True)


# --- helpers ----------------------------------------------------------------------------

def _is_me(account_name: str, user_name: str) -> bool:
    who = principal()
    return (who.account_name, who.user_name) == (account_name, user_name)


def _key(key_id: str) -> tuple[accounts.AccessKey, bool]:
    """The access key *key_id* and whether it is the signed-in user's own (the IAM service
    then decides each action on it, as through the API) rather than one the cloud admin
    manages as such; NoSuchEntity if neither (another user's key is reported as missing,
    not as forbidden)."""
    key = db.session.get(accounts.AccessKey, key_id)
    if key is not None:
        if _is_me(key.user.account.name, key.user.name):
            return key, True
        if principal().is_cloud_admin:
            return key, False
    raise accounts.key_not_found(key_id)


def _new_key_secret(users) -> tuple[str, str] | None:
    """(key id, secret) of the key made on the previous request, if it belongs to one of
    *users*; forgotten either way (shown once)."""
    key_id = session.pop(NEW_KEY, None)
    if not key_id:
        return None
    key = db.session.get(accounts.AccessKey, key_id)
    if key is None or key.user_id not in {user.id for user in users}:
        return None
    return key.id, key.secret


def _back(default_account: str | None = None):
    """Where a key action returns: the admin's account page or the user's credentials."""
    if request.form.get("back") == "account" and principal().is_cloud_admin:
        account = request.form.get("account") or default_account
        if account:
            return redirect(url_for("console.account", name=account))
    return redirect(url_for("console.credentials"))


def _error_page(error: AwsError):
    return render_template("console/error.html", code=error.code,
                           message=error.message), error.status


# --- accounts (cloud admin) --------------------------------------------------------------

@blueprint.route("/accounts", endpoint="accounts")
@admin_required
def accounts_page():
    rows = [(account, len(account.users)) for account in accounts.list_accounts()]
    return render_template("console/accounts.html", rows=rows,
                           admin_account=accounts.ADMIN_ACCOUNT)


@blueprint.route("/accounts/create", methods=["POST"])
@admin_required
def account_create():
    name = request.form.get("name", "").strip()
    if act(lambda: accounts.create_account(name), f"Account {name} created."):
        return redirect(url_for("console.account", name=name))
    return redirect(url_for("console.accounts"))


@blueprint.route("/accounts/<name>/delete", methods=["POST"])
@admin_required
def account_delete(name):
    act(lambda: accounts.delete_account(name), f"Account {name} deleted.")
    return redirect(url_for("console.accounts"))


@blueprint.route("/accounts/<name>")
@admin_required
def account(name):
    try:
        found = accounts.get_account(name)
        users = accounts.list_users(name)
    except AwsError as error:
        return _error_page(error)
    return render_template("console/accounts_detail.html", account=found, users=users,
                           can=dict.fromkeys(KEY_ACTIONS, True),
                           new_key=_new_key_secret(users))


@blueprint.route("/accounts/<name>/users/create", methods=["POST"])
@admin_required
def user_create(name):
    user = request.form.get("user", "").strip()
    act(lambda: accounts.create_user(name, user), f"User {user} created.")
    return redirect(url_for("console.account", name=name))


@blueprint.route("/accounts/<name>/users/<user>/delete", methods=["POST"])
@admin_required
def user_delete(name, user):
    who = principal()

    def delete():
        if (who.account_name, who.user_name) == (name, user):
            raise ValidationError("You cannot delete the user you are signed in as.")
        accounts.delete_user(name, user)

    act(delete, f"User {user} deleted.")
    return redirect(url_for("console.account", name=name))


@blueprint.route("/accounts/<name>/users/<user>/password", methods=["POST"])
@admin_required
def user_password(name, user):
    password = request.form.get("password", "")
    who = principal()
    mine = (who.account_name, who.user_name) == (name, user)
    act(lambda: set_password(name, user, password, current_token() if mine else None),
        f"Console password of {user} in {name} set.")
    return redirect(url_for("console.account", name=name))


# --- access keys (the admin for anyone, a user for themselves) ----------------------------

@blueprint.route("/accounts/<name>/users/<user>/keys/create", methods=["POST"])
@login_required
def access_key_create(name, user):
    who, mine = principal(), _is_me(name, user)
    if not (mine or who.is_cloud_admin):
        return render_template("console/denied.html"), 403

    def create():
        key = (iam().create_access_key(who, user) if mine
               else accounts.create_access_key(name, user))
        session[NEW_KEY] = key.id

    act(create, "Access key created: copy its secret now, it is shown only once.")
    return _back(name)


@blueprint.route("/access-keys/<key_id>/rotate", methods=["POST"])
@login_required
def access_key_rotate(key_id):
    """Create a new key for the key's user and make *key_id* Inactive (delete it once
    everything uses the new one): both or neither."""
    def rotate():
        old, mine = _key(key_id)
        user = old.user
        if mine:
            who, service = principal(), iam()
            # asked first, so a user who may not deactivate the old key gets no new one
            authorize(who, "UpdateAccessKey", entity_arn("user", user.name, user.path))
            session[NEW_KEY] = service.create_access_key(who, user.name).id
            service.update_access_key(who, user.name, key_id, "Inactive")
        else:
            session[NEW_KEY] = accounts.create_access_key(user.account.name, user.name).id
            accounts.set_access_key_status(key_id, "Inactive")

    act(rotate, f"New access key created and {key_id} made Inactive: copy the new secret "
                "now, it is shown only once; delete the old key when nothing uses it.")
    return _back()


@blueprint.route("/access-keys/<key_id>/status", methods=["POST"])
@login_required
def access_key_status(key_id):
    status = request.form.get("status", "")

    def change():
        key, mine = _key(key_id)
        if mine:
            iam().update_access_key(principal(), key.user.name, key_id, status)
        else:
            accounts.set_access_key_status(key_id, status)

    act(change, f"Access key {key_id} is now {status}.")
    return _back()


@blueprint.route("/access-keys/<key_id>/delete", methods=["POST"])
@login_required
def access_key_delete(key_id):
    def delete():
        key, mine = _key(key_id)
        if mine:
            iam().delete_access_key(principal(), key.user.name, key_id)
        else:
            accounts.delete_access_key(key_id)

    act(delete, f"Access key {key_id} deleted.")
    return _back()


# --- credentials files ---------------------------------------------------------------------

def eucarc(key: accounts.AccessKey, config, beside: dict[str, str] | None = None) -> str:
    """*key*'s euca2ools eucarc, as `eucalite credentials --format eucarc` prints it: the
    cloud certificate at its path on this host, or, with *beside*, files next to the eucarc
    (a credentials zip's)."""
    endpoints = config_module.endpoints(config)
    compute = services().compute
    return eucarc_text(
        key.user.name, key.user.account.name, key.user.account.id, key.id, key.secret,
        config["region"], endpoints,
        classic_urls(endpoints, CLASSIC_EC2_PATH),
        cloud_cert=None if beside else str(compute.cloud_certificate_path()), beside=beside)


def credentials_zip(key: accounts.AccessKey, config) -> bytes:
    """Eucalyptus' credentials zip for *key*: ``eucarc`` (finding the files beside it),
    ``cloud-cert.pem`` (``EUCALYPTUS_CERT``) and a new X.509 key pair for the key's user
    signed by the cloud (``EC2_PRIVATE_KEY``/``EC2_CERT``, named as Eucalyptus named them)."""
    compute = services().compute
    prefix = f"euca2-{key.user.name}-{key.id[-8:].lower()}"
    user_key, user_cert = compute.user_certificate(key.user.account.id, key.user.name)
    files = {"EUCALYPTUS_CERT": "cloud-cert.pem", "EC2_PRIVATE_KEY": f"{prefix}-pk.pem",
             "EC2_CERT": f"{prefix}-cert.pem"}
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("eucarc", eucarc(key, config, beside=files))
        archive.writestr(files["EUCALYPTUS_CERT"], compute.cloud_certificate_path().read_bytes())
        private = zipfile.ZipInfo(files["EC2_PRIVATE_KEY"])
        private.external_attr = 0o600 << 16         # unzip keeps the private key private
        private.compress_type = zipfile.ZIP_DEFLATED
        archive.writestr(private, user_key)
        archive.writestr(files["EC2_CERT"], user_cert)
    return out.getvalue()


def aws_profile(key: accounts.AccessKey, config, name: str) -> str:
    """The sections `eucalite credentials --profile NAME` writes to ~/.aws/credentials and
    ~/.aws/config, as one text to paste."""
    endpoints = config_module.endpoints(config)

    def render(parser: configparser.ConfigParser) -> str:
        out = io.StringIO()
        parser.write(out)
        return out.getvalue().strip()

    creds_sections, config_sections = profile_sections(name, key.id, key.secret,
                                                       config["region"], endpoints)
    creds = configparser.ConfigParser(interpolation=None)
    creds.update(creds_sections)
    conf = configparser.ConfigParser(interpolation=None)
    conf.update(config_sections)
    return (f"# eucalite aws CLI profile {name!r} for user {key.user.name} in account "
            f"{key.user.account.name}; use it with --profile {name} or AWS_PROFILE={name}\n"
            f"\n# --- add to ~/.aws/credentials ---\n{render(creds)}\n"
            f"\n# --- add to ~/.aws/config ---\n{render(conf)}\n")


def _download(key_id: str, kind: str):
    try:
        key, mine = _key(key_id)
        if mine:        # one's own key's files: for whoever the page would list it to
            iam().list_access_keys(principal(), key.user.name)
    except AwsError as error:
        return _error_page(error)
    config = current_app.config["EUCALITE"]
    mimetype = "text/plain"
    if kind == "eucarc":
        body, filename = eucarc(key, config), f"eucarc-{key.user.account.name}-{key.user.name}"
    elif kind == "zip":
        body, mimetype = credentials_zip(key, config), "application/zip"
        filename = f"euca2-{key.user.account.name}-{key.user.name}-x509.zip"
    else:
        name = request.args.get("profile", "").strip() or "eucalite"
        if not _PROFILE_NAME.fullmatch(name):
            return _error_page(ValidationError(
                f"Invalid profile name {name!r}: letters, digits, '.', '_' and '-'."))
        body, filename = aws_profile(key, config, name), f"aws-profile-{name}.ini"
    response = Response(body, mimetype=mimetype)
    response.headers["Content-Disposition"] = attachment(filename)
    response.headers["Cache-Control"] = "no-store"
    return response


@blueprint.route("/access-keys/<key_id>/eucarc")
@login_required
def access_key_eucarc(key_id):
    return _download(key_id, "eucarc")


@blueprint.route("/access-keys/<key_id>/credentials.zip")
@login_required
def access_key_zip(key_id):
    return _download(key_id, "zip")


@blueprint.route("/access-keys/<key_id>/aws-profile")
@login_required
def access_key_profile(key_id):
    return _download(key_id, "profile")


@blueprint.route("/credentials")
@login_required
def credentials():
    """The signed-in user's keys as the IAM service lists them to that user (None: its
    policies do not allow it) and the key buttons the gate would allow."""
    who = principal()
    try:
        user = accounts.get_user(who.account_name, who.user_name)
    except AwsError as error:
        return _error_page(error)
    try:
        keys = iam().list_access_keys(who, user.name)[1]
    except AwsError:
        db.session.rollback()
        keys = None
    arn = entity_arn("user", user.name, user.path)
    return render_template("console/credentials.html", user=user, keys=keys,
                           can={action: may(action, arn) for action in KEY_ACTIONS},
                           new_key=_new_key_secret([user]))
