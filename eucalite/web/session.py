"""Console sessions: sign-in and sign-out, CSRF protection, expiry, and who is signed in.

The browser holds Flask's signed cookie (secret in ``<data_dir>/console-secret``, 0600),
HttpOnly and SameSite=Lax, Secure over TLS (:class:`.headers.SessionInterface`), with the
session's token and a CSRF token. The server holds the session itself (:mod:`.signins`):
it lasts ``console_session_minutes`` after the last request, and sign-out, a password
change, or deleting the user or its account end it for every copy of the cookie. Every
POST to the console must carry the CSRF token (form field ``csrf_token`` or header
``X-CSRF-Token``), or it is refused with 400 before any view runs.

Views use :func:`login_required` / :func:`admin_required`, :func:`principal` for the
service calls, and :func:`act` to run an action and show its result or AWS-style error.
The sign-in views, the CSRF check and the template helpers here are registered on the
console's blueprint by :mod:`eucalite.web`.
"""
from __future__ import annotations

import datetime as dt
import functools
import hmac
import os
import re
import secrets
from pathlib import Path
from urllib.parse import urlsplit
from typing import Callable

from flask import (abort, current_app, flash, g, redirect, render_template, request,
                   session, url_for)
from markupsafe import Markup
from werkzeug import security

from .. import accounts
from ..db import db
from ..errors import AwsError
from . import pages, signins, throttle
from .headers import SessionInterface

SECRET_FILE = "console-secret"
CSRF_FIELD = "csrf_token"
#: The cookie's key for the session token (see :mod:`.signins`).
TOKEN = "session"


def _secret(data_dir: str) -> bytes:
    """The cookie-signing secret, made on first use (0600)."""
    path = Path(data_dir) / SECRET_FILE
    try:
        return path.read_bytes()
    except FileNotFoundError:
        value = secrets.token_bytes(32)
        partial = path.with_suffix(".partial")
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(value)
        partial.replace(path)
        return value


def configure(app) -> None:
    """Session secret, cookie settings and sign-in throttling on *app*."""
    config = app.config["EUCALITE"]
    app.secret_key = _secret(config["data_dir"])
    app.session_interface = SessionInterface()
    throttle.init_app(app)
    app.config.update(SESSION_COOKIE_NAME="eucalite_console", SESSION_COOKIE_HTTPONLY=True,
                      SESSION_COOKIE_SAMESITE="Lax", SESSION_COOKIE_PATH="/console",
                      SESSION_COOKIE_SECURE=str(config.get("public_url", "")).startswith(
                          "https:"))


def lifetime() -> dt.timedelta:
    """How long a session lasts after its last request (``console_session_minutes``)."""
    return dt.timedelta(
        minutes=int(current_app.config["EUCALITE"].get("console_session_minutes", 480)))


# --- passwords --------------------------------------------------------------------------

def set_password(account_name: str, user_name: str, password: str,
                 keep_session: str | None = None) -> None:
    """Store a hash of *password* for the user (it may then sign in to the console) and
    end the user's console sessions, but the one of token *keep_session* (the user changing
    their own password stays signed in where they did it)."""
    user = accounts.get_user(account_name, user_name)
    accounts.store_password(user, password)
    signins.end_all(user, keep=keep_session)          # commits the new hash with it


@functools.cache
def _decoy_hash() -> str:
    return security.generate_password_hash(secrets.token_urlsafe(16))


def check_password(account_name: str, user_name: str, password: str) -> bool:
    """Whether *password* is the user's. A missing account or user, or one without a
    password, is checked against a decoy hash all the same, so the time the answer takes
    does not tell which accounts and users exist."""
    try:
        stored = accounts.get_user(account_name, user_name).password_hash
    except AwsError:
        stored = None
    if not stored:
        security.check_password_hash(_decoy_hash(), password)
        return False
    return security.check_password_hash(stored, password)


# --- who is signed in -------------------------------------------------------------------

def principal() -> accounts.Principal:
    """The signed-in user as a Principal (call in views behind login_required)."""
    return g.principal


def current_token() -> str | None:
    """The token of this browser's session (whether or not it is still valid)."""
    return session.get(TOKEN)


#: The page a user whose login profile requires a password reset is sent to first.
RESET_ENDPOINT = "console.password_reset"
#: Why a page the user's policies do not let them see is refused.
NOT_ALLOWED = "your policies do not allow you this page."
#: A console action the user's policies do not allow (EC2's words for it).
UNAUTHORIZED = "UnauthorizedOperation: You are not authorized to perform this operation."


def login_required(view: Callable) -> Callable:
    """Signed-in users only; one whose login profile requires a password reset sees only
    the reset page (AWS's console rule); a page the user may not see (:func:`.pages.shown`,
    the gate) is the access-denied page."""
    @functools.wraps(view)
    def wrapper(*args, **kwargs):
        user = signins.find(current_token(), lifetime())
        if user is None:
            signed_in = TOKEN in session
            session.clear()         # first: clearing after notify() would drop the message
            if signed_in:
                notify("Your session expired: sign in again.", "error")
            return redirect(url_for("console.login", next=request.full_path.rstrip("?")))
        g.principal = accounts.principal_of(user)
        g.password_reset_required = user.password_reset_required
        if user.password_reset_required and request.endpoint != RESET_ENDPOINT:
            return redirect(url_for(RESET_ENDPOINT))
        if not pages.shown(request.endpoint):
            return render_template("console/denied.html", reason=NOT_ALLOWED), 403
        if request.method == "POST" and not pages.permitted(
                request.endpoint, request.form, request.view_args or {}):
            notify(UNAUTHORIZED, "error")
            return redirect(safe_next(urlsplit(request.referrer or "").path))
        return view(*args, **kwargs)
    return wrapper


def admin_required(view: Callable) -> Callable:
    """Only the cloud admin (the ``eucalyptus`` account); others get the access-denied page."""
    @functools.wraps(view)
    @login_required
    def wrapper(*args, **kwargs):
        if not principal().is_cloud_admin:
            return render_template("console/denied.html"), 403
        return view(*args, **kwargs)
    return wrapper


# --- CSRF -------------------------------------------------------------------------------

def csrf_token() -> str:
    """This session's CSRF token (made on first use), for forms and scripts."""
    if CSRF_FIELD not in session:
        session[CSRF_FIELD] = secrets.token_urlsafe(32)
    return session[CSRF_FIELD]


def csrf_field():
    """The hidden form field carrying :func:`csrf_token`."""
    return Markup(f'<input type="hidden" name="{CSRF_FIELD}" value="{csrf_token()}">')


def check_csrf():
    """Refuse (400) a console POST whose CSRF token is missing or wrong: a
    ``before_request`` hook, so no view runs for it."""
    if request.method in ("GET", "HEAD", "OPTIONS"):
        return None
    sent = request.headers.get("X-CSRF-Token") or request.form.get(CSRF_FIELD) or ""
    expected = session.get(CSRF_FIELD) or ""
    # As bytes: compare_digest raises TypeError on a str with non-ASCII characters.
    if not expected or not hmac.compare_digest(sent.encode("utf-8", "replace"),
                                               expected.encode("utf-8", "replace")):
        abort(400, description="The form's security token is missing or wrong (CSRF "
                               "protection): reload the page and try again.")
    return None


# --- messages and running actions ---------------------------------------------------------

#: Longest message shown on the next page: messages ride in the session cookie until then,
#: browsers ignore a cookie over 4 KB (the message and any change to the session with it
#: would be lost), and error messages quote what the user typed, which can be anything.
MESSAGE_LIMIT = 300


def notify(message: str, category: str = "ok") -> None:
    """Show *message* ("ok" or "error") on the next page, shortened to MESSAGE_LIMIT."""
    if len(message) > MESSAGE_LIMIT:
        message = message[:MESSAGE_LIMIT - 1] + "…"
    flash(message, category)


def notify_error(error: AwsError) -> None:
    """Show *error* as the APIs would name it ("Code: message") on the next page."""
    notify(f"{error.code}: {error.message}", "error")


def act(action: Callable, done: str | None = None) -> bool:
    """Run *action*; notify *done* on success or the AWS-style error (code: message) on
    failure. Returns whether it succeeded. The database session is rolled back on error."""
    try:
        action()
    except AwsError as error:
        db.session.rollback()
        notify_error(error)
        return False
    if done:
        notify(done)
    return True


# --- sign-in and sign-out ---------------------------------------------------------------

#: A console path (and query) to return to after sign-in: nothing that could name another
#: host (``//host``, a scheme, a backslash browsers read as ``/``) and no control character
#: (CR/LF would split the Location header).
_NEXT = re.compile(r"/console(?:[/?][^\x00-\x20\x7f\\]*)?")


def safe_next(target: str) -> str:
    """*target* if it is a console page to return to after sign-in, else the dashboard."""
    if _NEXT.fullmatch(target):
        return target
    return url_for("console.dashboard")


def login():
    """``/console/login``: the sign-in form (GET) and signing in (POST)."""
    if request.method == "POST":
        account_name = request.form.get("account", "").strip()
        user_name = request.form.get("user", "").strip() or accounts.ADMIN_USER
        counts = throttle.of_app(current_app)
        wait = counts.attempt(request.remote_addr, account_name, user_name)
        if wait:
            notify(f"Too many failed sign-ins: try again in {wait} seconds.", "error")
            return render_template("console/login.html", account=account_name,
                                   user=user_name), 429, {"Retry-After": str(wait)}
        if check_password(account_name, user_name, request.form.get("password", "")):
            counts.succeeded(request.remote_addr, account_name, user_name)
            signins.end(current_token())            # a new sign-in replaces the old one
            token = signins.start(accounts.get_user(account_name, user_name), lifetime())
            # a new CSRF token too: whoever could plant the cookie knew the old one
            session.clear()
            session.update({TOKEN: token, CSRF_FIELD: secrets.token_urlsafe(32)})
            return redirect(safe_next(request.args.get("next", "")))
        notify("Wrong account, user or password.", "error")
        return render_template("console/login.html", account=account_name,
                               user=user_name), 401
    return render_template("console/login.html", account="", user="")


def logout():
    """``/console/logout`` (POST): end this browser's session."""
    signins.end(current_token())
    session.clear()
    notify("Signed out.")
    return redirect(url_for("console.login"))


def bad_request(error):
    """A 400 (the CSRF check's) as a console page."""
    return render_template("console/error.html", code="InvalidRequest",
                           message=error.description), 400
