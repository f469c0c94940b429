"""Addresses: the account's public IPs, with the cloud's pool (how many there are, how many
are free); allocate an elastic IP, associate it with one of the account's instances (moving
it from another one when asked), disassociate and release it.

Every action calls what the EC2 adapter calls (AllocateAddress, AssociateAddress,
DisassociateAddress, ReleaseAddress, DescribeAddresses): the compute service's address
methods with the signed-in user's Principal. An address is named as the API names it in
its domain: a ``vpc`` address by its allocation and association ids, a ``standard`` one by
its public IP. An associated address offers to move to another instance: that is asking for
re-association (which a ``vpc`` address needs).
"""
from __future__ import annotations

from flask import redirect, render_template, request, url_for

from ...api import services
from ...compute import states
from ...db import db
from ...errors import AwsError, InvalidParameterValue
from .. import blueprint
from ..session import act, login_required, notify, principal
from . import add_nav

add_nav("console.addresses", "Addresses")

#: The instances offered for an address: those AssociateAddress takes.
ASSOCIABLE = (states.PENDING, states.RUNNING)


def _compute():
    return services().compute


@blueprint.route("/addresses", endpoint="addresses")
@login_required
def addresses_page():
    who = principal()
    pool, pool_error = None, None
    try:
        pool = _compute().address_pool()
    except AwsError as error:           # the data plane is off: say why instead of a 500
        db.session.rollback()
        pool_error = f"{error.code}: {error.message}"
    instances = [row for row in _compute().describe_instances(who) if row.state in ASSOCIABLE]
    return render_template("console/addresses.html",
                           addresses=_compute().describe_addresses(who),
                           instances=instances, pool=pool, pool_error=pool_error)


@blueprint.route("/addresses/allocate", methods=["POST"])
@login_required
def addresses_allocate():
    domain = request.form.get("domain") or "standard"
    allocated: list = []
    if act(lambda: allocated.append(_compute().allocate_address(principal(), domain=domain))):
        notify(f"Allocated {allocated[0].public_ip}.")
    return redirect(url_for("console.addresses"))


@blueprint.route("/addresses/associate", methods=["POST"])
@login_required
def addresses_associate():
    form = request.form
    public_ip, allocation_id = _names("public_ip", "allocation_id")
    instance_id = form.get("instance_id", "").strip()

    def associate():
        if not instance_id:
            raise InvalidParameterValue("Choose an instance to associate the address with.")
        _compute().associate_address(principal(), instance_id, public_ip=public_ip,
                                     allocation_id=allocation_id,
                                     allow_reassociation=form.get("allow_reassociation") == "1")

    act(associate, f"Associated {_label('allocation_id')} with {instance_id}.")
    return redirect(url_for("console.addresses"))


@blueprint.route("/addresses/disassociate", methods=["POST"])
@login_required
def addresses_disassociate():
    public_ip, association_id = _names("public_ip", "association_id")
    act(lambda: _compute().disassociate_address(principal(), public_ip=public_ip,
                                                association_id=association_id),
        f"Disassociated {_label('association_id')}.")
    return redirect(url_for("console.addresses"))


@blueprint.route("/addresses/release", methods=["POST"])
@login_required
def addresses_release():
    public_ip, allocation_id = _names("public_ip", "allocation_id")
    act(lambda: _compute().release_address(principal(), public_ip=public_ip,
                                           allocation_id=allocation_id),
        f"Released {_label('allocation_id')}.")
    return redirect(url_for("console.addresses"))


def _label(id_field: str) -> str:
    """The form's address as the user knows it: its public IP, else its id."""
    return (request.form.get("public_ip", "").strip()
            or request.form.get(id_field, "").strip())


def _names(ip_field: str, id_field: str) -> tuple[str | None, str | None]:
    """(public IP, id) to name the form's address by: its id when the form carries one
    (a ``vpc`` address), else its public IP, as the API asks for each domain."""
    address_id = request.form.get(id_field, "").strip()
    if address_id:
        return None, address_id
    return request.form.get(ip_field, "").strip() or None, None
