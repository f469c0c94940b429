"""Security groups: the account's groups with their rule counts, create and delete, and a
group's page with its inbound and outbound rules and a rule editor (add and remove rules).

Every action calls what the EC2 adapter calls (CreateSecurityGroup, DeleteSecurityGroup,
DescribeSecurityGroups, AuthorizeSecurityGroupIngress/Egress, RevokeSecurityGroupIngress/
Egress): the compute service's security-group methods with the signed-in user's Principal.
The rule editor's fields become one :class:`eucalite.compute.secrules.Permission`, as the
adapter turns one ``IpPermissions`` item into one; what is valid is the service's to say.
"""
from __future__ import annotations

from flask import redirect, render_template, request, url_for

from ... import integers
from ...api import services
from ...compute.secrules import Peer, Permission, protocol_name
from ...errors import AwsError, InvalidParameterValue
from .. import blueprint
from ..errors import hidden
from ..session import act, login_required, notify, principal
from . import add_nav

add_nav("console.securitygroups", "Security groups")

#: The rule editor's protocol choices by name (IpProtocol takes each as it is), besides
#: "number" (the protocol's number from its own field).
PROTOCOLS = ("tcp", "udp", "icmp", "all")


def _compute():
    return services().compute


@blueprint.route("/securitygroups", endpoint="securitygroups")
@login_required
def securitygroups_page():
    groups = _compute().describe_security_groups(principal())
    rules = _compute().group_rules([group.id for group in groups])
    counts = {}                 # group id -> (inbound rules, outbound rules)
    for group in groups:
        outbound = sum(1 for rule in rules.get(group.id, []) if rule.egress)
        counts[group.id] = (len(rules.get(group.id, [])) - outbound, outbound)
    return render_template("console/securitygroups.html", groups=groups, counts=counts)


@blueprint.route("/securitygroups/create", methods=["POST"])
@login_required
def securitygroups_create():
    name = request.form.get("name", "").strip()
    description = request.form.get("description", "").strip()
    created: list = []
    if act(lambda: created.append(
            _compute().create_security_group(principal(), name, description))):
        notify(f"Created security group {created[0].name} ({created[0].id}).")
        return redirect(url_for("console.securitygroup", group_id=created[0].id))
    return redirect(url_for("console.securitygroups"))


@blueprint.route("/securitygroups/<group_id>/delete", methods=["POST"])
@login_required
def securitygroups_delete(group_id: str):
    label = request.form.get("name") or group_id
    if act(lambda: _compute().delete_security_group(principal(), group_id=group_id),
           f"Deleted security group {label}."):
        return redirect(url_for("console.securitygroups"))
    if request.form.get("next") == "detail":
        return redirect(url_for("console.securitygroup", group_id=group_id))
    return redirect(url_for("console.securitygroups"))


@blueprint.route("/securitygroups/<group_id>", endpoint="securitygroup")
@login_required
def securitygroup_page(group_id: str):
    who = principal()
    try:
        group = _compute().security_group(who, group_id=group_id)
    except AwsError as error:
        return hidden(error)
    rules = _compute().group_rules([group.id]).get(group.id, [])
    own = _compute().describe_security_groups(who)
    names = {item.id: item.name for item in own}
    return render_template(
        "console/securitygroups_detail.html", group=group, names=names, own_groups=own,
        inbound=[rule for rule in rules if not rule.egress],
        outbound=[rule for rule in rules if rule.egress],
        protocol_name=protocol_name, protocols=PROTOCOLS)


@blueprint.route("/securitygroups/<group_id>/rules", methods=["POST"])
@login_required
def securitygroup_add_rule(group_id: str):
    egress = request.form.get("direction") == "egress"

    def add():
        group = _compute().security_group(principal(), group_id=group_id)
        _compute().authorize_security_group(principal(), group, [permission_from_form()],
                                            egress)

    act(add, f"Added an {'outbound' if egress else 'inbound'} rule to {group_id}.")
    return redirect(url_for("console.securitygroup", group_id=group_id))


@blueprint.route("/securitygroups/<group_id>/rules/<rule_id>/delete", methods=["POST"])
@login_required
def securitygroup_remove_rule(group_id: str, rule_id: str):
    egress = request.form.get("direction") == "egress"

    def remove():
        group = _compute().security_group(principal(), group_id=group_id)
        _compute().revoke_security_group(principal(), group, egress=egress,
                                         rule_ids=[rule_id])

    act(remove, f"Removed rule {rule_id}.")
    return redirect(url_for("console.securitygroup", group_id=group_id))


# --- the rule editor's fields -----------------------------------------------------------

def permission_from_form() -> Permission:
    """The rule editor's fields as one Permission: protocol (tcp/udp/icmp/all or a number),
    a port range (``22``, ``8000-8080``) or ICMP type and code (empty: any), and one peer
    (a CIDR, one of the account's groups, or a group id with its owner's account id)."""
    form = request.form
    choice = form.get("protocol", "").strip()
    protocol = form.get("protocol_number", "").strip() if choice == "number" else choice
    if choice == "icmp":
        from_port = _icmp_field("icmp_type", "ICMP type")
        to_port = _icmp_field("icmp_code", "ICMP code")
    elif choice == "all":
        from_port = to_port = None
    else:
        from_port, to_port = _port_range(form.get("ports", "").strip())
    return Permission(protocol=protocol, from_port=from_port, to_port=to_port,
                      peers=(_peer(),))


def _port_range(text: str) -> tuple[int | None, int | None]:
    """``"22"`` -> (22, 22), ``"8000-8080"`` -> (8000, 8080), empty -> (None, None)."""
    if not text:
        return None, None
    low, _, high = text.partition("-")
    first, last = integers.parse(low.strip()), integers.parse((high or low).strip())
    if first is None or last is None:
        raise InvalidParameterValue(f"Invalid port range: {text!r} (a port such as 22, or a "
                                    "range such as 8000-8080).")
    return first, last


def _icmp_field(name: str, label: str) -> int:
    """An ICMP type or code from the form; empty means any (-1)."""
    raw = request.form.get(name, "").strip()
    if not raw:
        return -1
    value = integers.parse(raw, signed=True)
    if value is None:
        raise InvalidParameterValue(f"Invalid {label}: {raw!r} (a number, or -1 for any).")
    return value


def _peer() -> Peer:
    """The rule's source (inbound) or destination (outbound): exactly one of a CIDR, one of
    the account's groups, or another account's group (group id and owner account id)."""
    form = request.form
    cidr = form.get("cidr", "").strip()
    own_group = form.get("peer_group", "").strip()
    other_group = form.get("peer_group_id", "").strip()
    owner = form.get("peer_owner_id", "").strip()
    description = form.get("description", "").strip() or None
    given = [value for value in (cidr, own_group, other_group) if value]
    if len(given) != 1:
        raise InvalidParameterValue("Give exactly one source or destination: a CIDR, one of "
                                    "your groups, or another account's group.")
    if cidr:
        return Peer(cidr=cidr, description=description)
    if own_group:
        return Peer(group_id=own_group, description=description)
    return Peer(group_id=other_group, owner_id=owner or None, description=description)
