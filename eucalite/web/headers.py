"""What every console response carries to protect the browser, and the session cookie's
Secure flag.

Headers (:func:`protect`, after every console request, error pages and static files
included): a Content-Security-Policy whose ``script-src`` is a fresh per-request nonce (the
console's pages load one script, ``console.js``, with that nonce; nothing inline, and not
even a script stored in a bucket, which is the console's own origin, can run), no framing
(``frame-ancestors 'none'`` and ``X-Frame-Options: DENY``), ``nosniff``, no Referer to
other sites, and ``no-store`` on pages so a shared browser's back button shows nothing
after sign-out.

The session cookie is Secure when the console is served over TLS: the request arrived
over https (``request.is_secure``), or ``public_url`` is https (TLS ends in front).
"""
from __future__ import annotations

import secrets

from flask import g, has_request_context, request
from flask.sessions import SecureCookieSessionInterface

#: Everything from the console's origin, except scripts (only the nonce'd one), plugins,
#: <base> and being framed; images may also be data: URLs.
POLICY = ("default-src 'self'; script-src 'nonce-{nonce}'; object-src 'none'; "
          "base-uri 'none'; form-action 'self'; frame-ancestors 'none'; "
          "img-src 'self' data:")


def csp_nonce() -> str:
    """This response's script nonce (``<script nonce="{{ csp_nonce() }}" src=...>``)."""
    if "csp_nonce" not in g:
        g.csp_nonce = secrets.token_urlsafe(16)
    return g.csp_nonce


def protect(response):
    """The protective headers, on every console response (an ``after_request`` hook)."""
    headers = response.headers
    headers["Content-Security-Policy"] = POLICY.format(nonce=csp_nonce())
    headers["X-Frame-Options"] = "DENY"
    headers["X-Content-Type-Options"] = "nosniff"
    headers["Referrer-Policy"] = "same-origin"
    if request.endpoint != "console.static":
        headers.setdefault("Cache-Control", "no-store")
    return response


class SessionInterface(SecureCookieSessionInterface):
    """Flask's signed-cookie sessions, with the cookie Secure whenever the request came
    over https, whatever the configuration says."""

    def open_session(self, app, request):
        # Flask builds the cookie's signing serializer on every request before it looks for
        # the cookie; API requests (every S3 and EC2 call) carry none, so look first.
        if not request.cookies.get(self.get_cookie_name(app)):
            return self.session_class()
        return super().open_session(app, request)

    def get_cookie_secure(self, app) -> bool:
        return bool(super().get_cookie_secure(app)
                    or (has_request_context() and request.is_secure))
