"""The console password change, and the reset AWS's console asks at sign-in: a user whose
login profile requires a reset (``PasswordResetRequired``) is sent here before any other
page (:func:`eucalite.web.session.login_required`) until they set a new password, through
the IAM service (:meth:`~eucalite.iam.service.IamService.change_password`: the one
password rule, the reset cleared, their other sessions ended)."""
from __future__ import annotations

from flask import g, redirect, render_template, request, url_for

from ...errors.iam import PasswordPolicyViolation
from .. import blueprint
from ..session import RESET_ENDPOINT, act, current_token, login_required, principal
from .iam_common import iam


@blueprint.route("/password", methods=["GET", "POST"], endpoint=RESET_ENDPOINT.split(".")[1])
@login_required
def password_reset():
    required = bool(g.get("password_reset_required"))
    if request.method == "POST":
        form = request.form
        new = form.get("new_password", "")

        def change():
            if new != form.get("confirm_password", ""):
                raise PasswordPolicyViolation("The new password and its confirmation differ.")
            iam().change_password(principal(), form.get("old_password", ""), new,
                                  keep_session=current_token())

        if act(change, "Your console password is changed."):
            return redirect(url_for("console.dashboard"))
    return render_template("console/iam_password.html", required=required)
