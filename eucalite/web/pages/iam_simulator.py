"""The policy simulator in the console: "may this user, group or role (or this pasted
policy) take these actions on this resource?", answered by the IAM service's simulator
(SimulatePrincipalPolicy / SimulateCustomPolicy: the engine that authorises every request),
with the statement that decided (:meth:`eucalite.policy.evaluation.Decision.explain`) and
the condition keys the answer may hang on that the simulation did not give."""
from __future__ import annotations

import re

from flask import render_template, request

from ...db import db
from ...errors import AwsError
from .. import blueprint
from ..session import login_required, notify_error, principal
from . import add_nav
from .iam_common import EXAMPLE, entity_arn, iam, may

add_nav("console.iam_simulator", "Simulator",
        visible=lambda: may("SimulatePrincipalPolicy", entity_arn("user", "*"))
        or may("SimulateCustomPolicy"))

_SPLIT = re.compile(r"[\s,]+")


def _context(text: str) -> list[tuple[str, str, list[str]]]:
    """``key=value[,value...]`` per line, as string (one value) or stringList entries."""
    entries = []
    for line in text.splitlines():
        if not line.strip():
            continue
        key, _, values = line.partition("=")
        listed = [value.strip() for value in values.split(",")]
        entries.append((key.strip(), "stringList" if len(listed) > 1 else "string", listed))
    return entries


def _sources() -> list[tuple[str, str]]:
    """(value, label) of every user, group and role the signed-in user may list."""
    who, service, found = principal(), iam(), []
    for kind, call in (("user", service.list_users), ("group", service.list_groups),
                       ("role", service.list_roles)):
        try:
            found += [(entity_arn(kind, row.name, row.path), f"{kind} {row.name}")
                      for row in call(who, "/")]
        except AwsError:
            db.session.rollback()
    return found


@blueprint.route("/iam/simulator", methods=["GET", "POST"], endpoint="iam_simulator")
@login_required
def iam_simulator_page():
    form = request.form if request.method == "POST" else request.args
    values = {"source": form.get("source", ""), "actions": form.get("actions", ""),
              "resource": form.get("resource", ""), "context": form.get("context", ""),
              "document": form.get("document", "")}
    results = None
    if request.method == "POST":
        actions = [a for a in _SPLIT.split(values["actions"]) if a]
        resources = [r for r in _SPLIT.split(values["resource"]) if r]
        who, service = principal(), iam()
        try:
            context = _context(values["context"])
            if values["source"] == "custom":
                results = service.simulate_custom_policy(who, [values["document"]], actions,
                                                         resources, context)
            else:
                results = service.simulate_principal_policy(who, values["source"], actions,
                                                            resources, context)
        except AwsError as error:
            db.session.rollback()
            notify_error(error)
    return render_template("console/iam_simulator.html", sources=_sources(), values=values,
                           results=results, example=EXAMPLE)
