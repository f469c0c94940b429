"""Burst targets, for the cloud admin: each remote cloud with its zone, policy, health
(last contact, last error), maps and the instances running there; adding, switching on
and off, checking and removing one (what `eucalite burst add/list/set/check/remove` do)."""
from __future__ import annotations

from flask import redirect, render_template, request, url_for

from ...api import services
from ...burst.models import POLICIES
from ...errors import InvalidParameterValue
from .. import blueprint
from ..session import act, admin_required
from . import add_nav

add_nav("console.burst", "Bursting", admin=True)


def _pairs(text: str, what: str) -> dict[str, str]:
    """``LOCAL=REMOTE`` lines (or comma-separated) as a dict."""
    result = {}
    for item in text.replace(",", "\n").splitlines():
        if not item.strip():
            continue
        local, sep, remote = (part.strip() for part in item.partition("="))
        if not sep or not local or not remote:
            raise InvalidParameterValue(f"{what}: {item.strip()!r} is not LOCAL=REMOTE.")
        result[local] = remote
    return result


def _names(text: str) -> list[str]:
    return [item.strip() for item in text.replace("\n", ",").split(",") if item.strip()]


@blueprint.route("/burst")
@admin_required
def burst():
    burst_service = services().burst
    targets = burst_service.targets()
    return render_template(
        "console/burst.html", targets=targets, policies=POLICIES,
        instances={target.name: burst_service.instances_on(target.name)
                   for target in targets})


@blueprint.route("/burst/add", methods=["POST"])
@admin_required
def burst_add():
    form = request.form
    name = form.get("name", "").strip()
    act(lambda: services().burst.add_target(
        name, endpoint_url=form.get("endpoint", "").strip(),
        region=form.get("region", "").strip(),
        access_key_id=form.get("access_key_id", "").strip(),
        secret_access_key=form.get("secret_access_key", ""),
        image_map=_pairs(form.get("images", ""), "Images"),
        type_map=_pairs(form.get("types", ""), "Instance types"),
        policy=form.get("policy", "when-full"), accounts=_names(form.get("accounts", "")),
        groups=_names(form.get("groups", ""))),
        f"Burst target {name} is added (zone burst-{name}).")
    return redirect(url_for("console.burst"))


@blueprint.route("/burst/<name>/enabled", methods=["POST"])
@admin_required
def burst_enabled(name):
    enabled = request.form.get("enabled") == "true"
    act(lambda: services().burst.change_target(name, {"enabled": enabled}),
        f"Burst target {name} is now {'enabled' if enabled else 'disabled'}.")
    return redirect(url_for("console.burst"))


@blueprint.route("/burst/<name>/check", methods=["POST"])
@admin_required
def burst_check(name):
    outcome = {}
    if act(lambda: outcome.setdefault("error", services().burst.check_target(name))):
        act(lambda: None, f"Burst target {name} answers." if outcome["error"] is None
            else f"Burst target {name} does not answer: {outcome['error']}")
    return redirect(url_for("console.burst"))


@blueprint.route("/burst/<name>/remove", methods=["POST"])
@admin_required
def burst_remove(name):
    act(lambda: services().burst.remove_target(name), f"Burst target {name} is removed.")
    return redirect(url_for("console.burst"))
