"""The console's network pages (security groups with the rule editor, addresses) and the
launch form's group and public-IP choices, through Flask's test client on the fake
hypervisor with a small public pool."""
from __future__ import annotations

import re

import pytest

from eucalite import accounts
from eucalite.compute.models import Image, Instance
from eucalite.db import db
from eucalite.web.session import set_password

from consoleutil import PASSWORD, Console, console_app

POOL = ["198.51.100.10-198.51.100.12"]          # three public IPs
POOL_IPS = {"198.51.100.10", "198.51.100.11", "198.51.100.12"}


@pytest.fixture
def app(tmp_path):
    app = console_app(tmp_path, public_interface="lab0", public_ips=POOL)
    yield app
    app.extensions["eucalite"].compute.worker.wait()
    app.extensions["eucalite"].compute.worker.shutdown()


def flashes(html: str) -> list[str]:
    return re.findall(r'<p class="flash (?:ok|error)"[^>]*>([^<]*)</p>', html)


def codes(html: str) -> list[str]:
    """The AWS error codes the page's error messages name."""
    return re.findall(r'<p class="flash error"[^>]*>([A-Za-z.]+): ', html)


def other_account(app) -> Console:
    with app.app_context():
        accounts.create_account("other")
        set_password("other", "admin", PASSWORD)
    return Console(app, account="other")


def group_id_named(html: str, name: str) -> str:
    match = re.search(rf'<tr data-id="(sg-[0-9a-f]+)" data-name="{re.escape(name)}">', html)
    assert match, html
    return match.group(1)


def rules_of(app, group_id: str) -> list:
    """(egress, protocol, from, to, cidr, peer group, description) of each of the group's
    rules, as the service holds them."""
    with app.app_context():
        rules = app.extensions["eucalite"].compute.group_rules([group_id]).get(group_id, [])
        return sorted((bool(r.egress), r.protocol, r.from_port, r.to_port, r.cidr,
                       r.peer_group_id, r.description) for r in rules)


def rule_rows(html: str, direction: str) -> list[str]:
    """The rule ids in the page's inbound or outbound table."""
    table = re.search(rf'<table class="grid" id="{direction}">(.*?)</table>', html, re.S)
    assert table, html
    return re.findall(r'<tr data-rule="(sgr-[0-9a-f]+)">', table.group(1))


def make_image(app) -> str:
    with app.app_context():
        owner = accounts.get_account("eucalyptus").id
        db.session.add(Image(id="emi-0a1b2c3d", owner_id=owner, kind="machine",
                             name="tiny", state="available"))
        db.session.commit()
    return "emi-0a1b2c3d"


def wait(app):
    app.extensions["eucalite"].compute.worker.wait()


def instance(app, instance_id: str) -> Instance:
    with app.app_context():
        row = db.session.get(Instance, instance_id)
        db.session.expunge(row)
        return row


def public_ip_cell(html: str, instance_id: str) -> str:
    """What the instance table shows as *instance_id*'s public IP."""
    match = re.search(rf'<tr data-id="{instance_id}".*?<td class="public-ip">([^<]*)</td>',
                      html, re.S)
    assert match, html
    return match.group(1)


def launched(html: str) -> list[str]:
    [message] = [m for m in flashes(html) if m.startswith("Launched ")]
    return re.findall(r"i-[0-9a-f]+", message)


def test_pages_need_sign_in_and_are_in_the_nav(app):
    client = app.test_client()
    for path in ("/console/securitygroups", "/console/addresses",
                 "/console/securitygroups/sg-0123456789abcdef0"):
        response = client.get(path)
        assert response.status_code == 302 and "/console/login" in response.location
    page = Console(app).text("/console/dashboard")
    assert '>Security groups</a>' in page and '>Addresses</a>' in page
    assert page.index(">Key pairs</a>") < page.index(">Security groups</a>") \
        < page.index(">Addresses</a>") < page.index(">Volumes</a>")
    response = client.post("/console/securitygroups/create", data={"name": "x",
                                                                   "description": "x"})
    assert response.status_code in (302, 400)


def test_groups_rule_editor_and_errors(app):
    console = Console(app)
    page = console.text("/console/securitygroups")
    default = group_id_named(page, "default")          # made on first use

    page = console.page("/console/securitygroups/create",
                        {"name": "web", "description": "web servers"})
    web = re.search(r"<h1>web <small>(sg-[0-9a-f]+)</small></h1>", page).group(1)
    assert f"Created security group web ({web})." in flashes(page)
    at_creation = rules_of(app, web)
    assert codes(console.page("/console/securitygroups/create",
                              {"name": "web", "description": "again"})) \
        == ["InvalidGroup.Duplicate"]

    rule_page = f"/console/securitygroups/{web}/rules"
    page = console.page(rule_page, {"direction": "ingress", "protocol": "tcp", "ports": "22",
                                    "cidr": "203.0.113.0/24", "description": "ssh"})
    assert f"Added an inbound rule to {web}." in flashes(page)
    console.page(rule_page, {"direction": "ingress", "protocol": "tcp",
                             "ports": "8000-8080", "cidr": "0.0.0.0/0"})
    console.page(rule_page, {"direction": "ingress", "protocol": "icmp", "icmp_type": "8",
                             "peer_group": default})
    console.page(rule_page, {"direction": "ingress", "protocol": "number",
                             "protocol_number": "47", "cidr": "192.0.2.0/24"})
    page = console.page(rule_page, {"direction": "egress", "protocol": "all",
                                    "cidr": "10.0.0.0/8"})
    assert f"Added an outbound rule to {web}." in flashes(page)
    added = [
        (False, "6", 22, 22, "203.0.113.0/24", None, "ssh"),
        (False, "6", 8000, 8080, "0.0.0.0/0", None, None),
        (False, "1", 8, -1, None, default, None),
        (False, "47", None, None, "192.0.2.0/24", None, None),
        (True, "-1", None, None, "10.0.0.0/8", None, None)]
    assert rules_of(app, web) == sorted(at_creation + added)

    page = console.text(f"/console/securitygroups/{web}")
    inbound = rule_rows(page, "inbound")
    assert len(inbound) == 4
    assert re.search(r"<td>tcp</td>\s*<td>22</td>\s*<td><code>203.0.113.0/24</code></td>"
                     r"\s*<td>ssh</td>", page)
    assert re.search(r"<td>tcp</td>\s*<td>8000-8080</td>", page)
    assert re.search(rf"<td>icmp</td>\s*<td>type 8, code any</td>\s*<td><code>{default}"
                     r"</code> \(default\)", page)
    assert re.search(r"<td>47</td>\s*<td>all</td>", page)
    outbound = len(rule_rows(page, "outbound"))
    assert outbound == 1 + sum(rule[0] for rule in at_creation)

    listing = console.text("/console/securitygroups")
    row = re.search(rf'<tr data-id="{web}".*?</tr>', listing, re.S).group(0)
    assert '<td data-count="inbound">4</td>' in row
    assert f'<td data-count="outbound">{outbound}</td>' in row

    # the service's errors show on the page, and nothing changes
    for data, code in (
            ({"protocol": "tcp", "ports": "22", "cidr": "203.0.113.0/24"},
             "InvalidPermission.Duplicate"),
            ({"protocol": "tcp", "ports": "ssh", "cidr": "0.0.0.0/0"},
             "InvalidParameterValue"),
            ({"protocol": "icmp", "icmp_type": "echo", "cidr": "0.0.0.0/0"},
             "InvalidParameterValue"),
            ({"protocol": "tcp", "ports": "22", "cidr": "0.0.0.0/0", "peer_group": default},
             "InvalidParameterValue"),
            ({"protocol": "tcp", "ports": "22"}, "InvalidParameterValue"),
            ({"protocol": "gopher", "cidr": "0.0.0.0/0"}, "InvalidParameterValue"),
            ({"protocol": "number", "cidr": "0.0.0.0/0"}, "MissingParameter"),
            ({"protocol": "tcp", "ports": "22", "peer_group_id": "sg-0123456789abcdef0"},
             "InvalidGroup.NotFound")):
        page = console.page(rule_page, dict(data, direction="ingress"))
        assert codes(page) == [code], (data, flashes(page))
    assert len(rules_of(app, web)) == len(at_creation) + len(added)

    # remove one inbound rule: the rest stay
    ssh = next(rule_id for rule_id in inbound
               if re.search(rf'data-rule="{rule_id}">\s*<td>tcp</td>\s*<td>22</td>', page))
    page = console.page(f"/console/securitygroups/{web}/rules/{ssh}/delete",
                        {"direction": "ingress"})
    assert f"Removed rule {ssh}." in flashes(page)
    assert sorted(rule_rows(page, "inbound")) == sorted(set(inbound) - {ssh})
    assert (False, "6", 22, 22, "203.0.113.0/24", None, "ssh") not in rules_of(app, web)

    # another account sees none of it, and cannot change it
    other = other_account(app)
    response = other.get(f"/console/securitygroups/{web}")
    assert response.status_code == 404
    assert "InvalidGroup.NotFound" in response.get_data(as_text=True)
    assert web not in other.text("/console/securitygroups")
    # (the group's page they are sent back to is not found either)
    before = rules_of(app, web)
    assert set(codes(other.page(rule_page, {"direction": "ingress", "protocol": "tcp",
                                            "ports": "80", "cidr": "0.0.0.0/0"},
                                status=404))) == {"InvalidGroup.NotFound"}
    assert rules_of(app, web) == before
    assert codes(other.page(f"/console/securitygroups/{web}/delete")) \
        == ["InvalidGroup.NotFound"]

    # another account's group, by its id and the account's id
    page = other.page("/console/securitygroups/create", {"name": "lab", "description": "lab"})
    lab = re.search(r"<h1>lab <small>(sg-[0-9a-f]+)</small></h1>", page).group(1)
    with app.app_context():
        other_id = accounts.get_account("other").id
    page = console.page(rule_page, {"direction": "ingress", "protocol": "udp",
                                    "ports": "53", "peer_group_id": lab,
                                    "peer_owner_id": other_id})
    assert f"Added an inbound rule to {web}." in flashes(page)
    assert re.search(rf"<td>udp</td>\s*<td>53</td>\s*<td><code>{lab}</code> <span "
                     rf'class="hint">of account {other_id}</span></td>', page)
    assert "(lab)" not in page                  # another account's group name is not shown

    page = console.page(f"/console/securitygroups/{default}/delete", {"name": "default"})
    assert codes(page) == ["CannotDelete"] and f'data-id="{default}"' in page
    page = console.page(f"/console/securitygroups/{web}/delete", {"name": "web"})
    assert "Deleted security group web." in flashes(page)
    assert f'data-id="{web}"' not in page and f'data-id="{default}"' in page
    assert console.get(f"/console/securitygroups/{web}").status_code == 404


def test_launch_with_a_group_and_public_ips_then_addresses(app):
    console = Console(app)
    image = make_image(app)
    page = console.page("/console/securitygroups/create",
                        {"name": "web", "description": "web servers"})
    web = re.search(r"<h1>web <small>(sg-[0-9a-f]+)</small></h1>", page).group(1)

    form = console.text("/console/instances")
    assert re.search(r'<option value="(sg-[0-9a-f]+)" selected>default \(\1\)</option>', form)
    assert f'<option value="{web}" >web ({web})</option>' in form
    assert '<th>Public IP</th>' in form

    # in the chosen group, with a public IP from the pool
    [first] = launched(console.page("/console/instances/launch", {
        "image_id": image, "security_group_ids": web, "public_ip": "yes"}))
    # no group chosen: the default group; no public IP asked for
    [second] = launched(console.page("/console/instances/launch", {
        "image_id": image, "public_ip": "no"}))
    wait(app)
    with app.app_context():
        groups = app.extensions["eucalite"].compute.instance_groups([first, second])
        assert [g.name for g in groups[first]] == ["web"]
        assert [g.name for g in groups[second]] == ["default"]
    first_ip = instance(app, first).public_ip
    assert first_ip in POOL_IPS and instance(app, second).public_ip is None
    rows = console.text("/console/instances/rows")
    assert public_ip_cell(rows, first) == first_ip and public_ip_cell(rows, second) == ""
    detail = console.text(f"/console/instances/{first}")
    assert f'<a href="/console/securitygroups/{web}">web</a> <code>{web}</code>' in detail
    assert f"<tr><th>Public IP</th><td>{first_ip}</td></tr>" in detail

    # a group in use cannot be deleted: AWS's error on the page
    page = console.page(f"/console/securitygroups/{web}/delete", {"name": "web"})
    assert codes(page) == ["InvalidGroup.InUse"] and f'data-id="{web}"' in page

    # addresses: the pool, allocate, associate, move, disassociate, release
    page = console.text("/console/addresses")
    assert '<b data-pool="total">3</b>' in page and "<code>lab0</code>" in page
    free = int(re.search(r'<b data-pool="free">(\d+)</b>', page).group(1))
    page = console.page("/console/addresses/allocate", {"domain": "standard"})
    [elastic] = [m.split()[1].rstrip(".") for m in flashes(page) if m.startswith("Allocated ")]
    assert elastic in POOL_IPS - {first_ip}
    assert f'<tr data-ip="{elastic}" data-instance="">' in page
    assert f'<b data-pool="free">{free - 1}</b>' in page

    page = console.page("/console/addresses/associate",
                        {"public_ip": elastic, "instance_id": second})
    assert f"Associated {elastic} with {second}." in flashes(page)
    assert f'<tr data-ip="{elastic}" data-instance="{second}">' in page
    assert instance(app, second).public_ip == elastic
    assert public_ip_cell(console.text("/console/instances/rows"), second) == elastic
    # moved to another instance (the page's Move button asks for re-association)
    page = console.page("/console/addresses/associate", {
        "public_ip": elastic, "instance_id": first, "allow_reassociation": "1"})
    assert f'<tr data-ip="{elastic}" data-instance="{first}">' in page
    assert instance(app, first).public_ip == elastic
    assert instance(app, second).public_ip != elastic

    page = console.page("/console/addresses/disassociate", {"public_ip": elastic})
    assert f"Disassociated {elastic}." in flashes(page)
    assert f'<tr data-ip="{elastic}" data-instance="">' in page
    assert instance(app, first).public_ip != elastic

    page = console.page("/console/addresses/release", {"public_ip": elastic})
    assert f"Released {elastic}." in flashes(page)
    assert f'data-ip="{elastic}"' not in page
    assert f'<b data-pool="free">{free}</b>' in page
    assert codes(console.page("/console/addresses/release", {"public_ip": elastic})) \
        == ["InvalidAddress.NotFound"]
    assert codes(console.page("/console/addresses/associate", {"public_ip": elastic})) \
        == ["InvalidParameterValue"]

    # a vpc address is named by its ids; on an instance it moves only when asked to
    page = console.page("/console/addresses/allocate", {"domain": "vpc"})
    [vpc_ip] = [m.split()[1].rstrip(".") for m in flashes(page) if m.startswith("Allocated ")]
    allocation = re.search(rf'<tr data-ip="{re.escape(vpc_ip)}".*?(eipalloc-[0-9a-f]+)', page,
                           re.S).group(1)
    assert f'name="allocation_id" value="{allocation}"' in page
    page = console.page("/console/addresses/associate",
                        {"allocation_id": allocation, "instance_id": second})
    assert f'<tr data-ip="{vpc_ip}" data-instance="{second}">' in page
    assert codes(console.page("/console/addresses/associate",
                              {"allocation_id": allocation, "instance_id": first})) \
        == ["Resource.AlreadyAssociated"]
    assert codes(console.page("/console/addresses/release", {"allocation_id": allocation})) \
        == ["InvalidIPAddress.InUse"]
    association = re.search(r'name="association_id" value="(eipassoc-[0-9a-f]+)"', page)
    page = console.page("/console/addresses/disassociate",
                        {"public_ip": vpc_ip, "association_id": association.group(1)})
    assert f'<tr data-ip="{vpc_ip}" data-instance="">' in page
    page = console.page("/console/addresses/release", {"allocation_id": allocation})
    assert f"Released {allocation}." in flashes(page) and f'data-ip="{vpc_ip}"' not in page

    # another account cannot use this account's address
    page = console.page("/console/addresses/allocate", {"domain": "standard"})
    [mine] = [m.split()[1].rstrip(".") for m in flashes(page) if m.startswith("Allocated ")]
    other = other_account(app)
    assert mine not in other.text("/console/addresses")
    assert codes(other.page("/console/addresses/release", {"public_ip": mine})) \
        == ["AuthFailure"]
    assert f'data-ip="{mine}"' in console.text("/console/addresses")


def test_public_ips_off_is_said_not_a_500(tmp_path):
    app = console_app(tmp_path)                 # no public_interface / public_ips
    try:
        console = Console(app)
        page = console.text("/console/addresses")
        assert re.search(r'<p class="flash error" id="pool">ServiceUnavailable: Public IPs '
                         r'are OFF', page)
        page = console.page("/console/addresses/allocate", {"domain": "standard"})
        assert re.findall(r'<p class="flash error" role="alert">([A-Za-z.]+): ', page) \
            == ["ServiceUnavailable"]              # the allocation's, besides the pool's
        [instance_id] = launched(console.page("/console/instances/launch",
                                              {"image_id": make_image(app)}))
        wait(app)
        assert instance(app, instance_id).public_ip is None
    finally:
        app.extensions["eucalite"].compute.worker.wait()
        app.extensions["eucalite"].compute.worker.shutdown()
