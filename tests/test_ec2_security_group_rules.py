"""EC2 security-group rules over real HTTP with boto3 (and the aws CLI): Authorize and Revoke
for ingress and egress in both parameter styles (IpPermissions and the legacy flat ones),
protocols, ports, CIDRs and peer groups (another account's too), duplicates, limits,
descriptions, DescribeSecurityGroupRules with its filters, paging and tags,
ModifySecurityGroupRules, what happens while the data plane is off, and the plan a node
enforces right after a change (the fake hypervisor's in-memory data plane)."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from awsutil import error_code
from ec2util import make_image, wait_for_state
from liveutil import start_live, start_live_node, stop_live
from s3util import second_account

from eucalite.cluster.edge.plan import Rule

AWS = Path(sys.executable).parent / "aws"


def make_group(ec2, name="web") -> str:
    return ec2.create_security_group(GroupName=name, Description=f"{name} group")["GroupId"]


def rules_of(ec2, group_id, egress=False) -> list[dict]:
    rules = ec2.describe_security_group_rules(
        Filters=[{"Name": "group-id", "Values": [group_id]}])["SecurityGroupRules"]
    return [rule for rule in rules if rule["IsEgress"] == egress]


def shape(rule: dict) -> tuple:
    """What a SecurityGroupRule item says the rule allows."""
    peer = rule.get("CidrIpv4") or rule["ReferencedGroupInfo"]["GroupId"]
    return rule["IpProtocol"], rule["FromPort"], rule["ToPort"], peer


def tcp(port, *cidrs, to_port=None) -> dict:
    return {"IpProtocol": "tcp", "FromPort": port, "ToPort": to_port or port,
            "IpRanges": [{"CidrIp": cidr} for cidr in cidrs]}


# --- authorising ------------------------------------------------------------------------------

def test_authorize_ip_permissions_returns_the_rules_and_describe_shows_them(live):
    ec2 = live.client("ec2")
    web = make_group(ec2)
    default = ec2.describe_security_groups(GroupNames=["default"])["SecurityGroups"][0]
    answer = ec2.authorize_security_group_ingress(GroupId=web, IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22,
         "IpRanges": [{"CidrIp": "10.1.2.3/8", "Description": "lab (ssh)"}]},
        {"IpProtocol": "tcp", "FromPort": 80, "ToPort": 81,
         "IpRanges": [{"CidrIp": "192.0.2.0/24"}, {"CidrIp": "198.51.100.7/32"}],
         "UserIdGroupPairs": [{"GroupName": "default", "Description": "members"}]}])
    assert answer["Return"] is True
    made = answer["SecurityGroupRules"]
    # AWS clears the bits right of the mask.
    assert [shape(rule) for rule in made] == [
        ("tcp", 22, 22, "10.0.0.0/8"), ("tcp", 80, 81, "192.0.2.0/24"),
        ("tcp", 80, 81, "198.51.100.7/32"), ("tcp", 80, 81, default["GroupId"])]
    first, *_, pair = made
    assert first["SecurityGroupRuleId"].startswith("sgr-") and first["GroupId"] == web
    assert first["GroupOwnerId"] == default["OwnerId"] and first["IsEgress"] is False
    assert first["Description"] == "lab (ssh)"
    assert first["SecurityGroupRuleArn"].endswith(
        f":{default['OwnerId']}:security-group-rule/{first['SecurityGroupRuleId']}")
    assert pair["ReferencedGroupInfo"] == {"GroupId": default["GroupId"],
                                           "UserId": default["OwnerId"]}
    assert pair["Description"] == "members"
    assert sorted(map(shape, rules_of(ec2, web))) == sorted(map(shape, made))
    # DescribeSecurityGroups folds them into one IpPermissions item per protocol and ports.
    [group] = ec2.describe_security_groups(GroupIds=[web])["SecurityGroups"]
    ssh, http = sorted(group["IpPermissions"], key=lambda item: item["FromPort"])
    assert ssh == {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "UserIdGroupPairs": [],
                   "IpRanges": [{"CidrIp": "10.0.0.0/8", "Description": "lab (ssh)"}],
                   "Ipv6Ranges": [], "PrefixListIds": []}
    assert sorted(r["CidrIp"] for r in http["IpRanges"]) == ["192.0.2.0/24", "198.51.100.7/32"]
    assert http["UserIdGroupPairs"] == [{"Description": "members", "UserId": default["OwnerId"],
                                         "GroupId": default["GroupId"], "GroupName": "default"}]
    # The ip-permission.* filters of DescribeSecurityGroups see the new rules.
    found = ec2.describe_security_groups(Filters=[
        {"Name": "ip-permission.cidr", "Values": ["198.51.100.7/32"]}])["SecurityGroups"]
    assert [g["GroupId"] for g in found] == [web]


def test_flat_parameters_make_one_cidr_rule_or_grant_a_source_group(live):
    ec2 = live.client("ec2")
    web = make_group(ec2)
    answer = ec2.authorize_security_group_ingress(GroupName="web", IpProtocol="tcp",
                                                  FromPort=22, ToPort=22,
                                                  CidrIp="203.0.113.0/24")
    assert [shape(rule) for rule in answer["SecurityGroupRules"]] \
        == [("tcp", 22, 22, "203.0.113.0/24")]
    # A source group by name gets all of TCP, UDP and ICMP (EC2-Classic's form).
    default = ec2.describe_security_groups(GroupNames=["default"])["SecurityGroups"][0]
    granted = ec2.authorize_security_group_ingress(GroupName="web",
                                                   SourceSecurityGroupName="default")
    assert [shape(rule) for rule in granted["SecurityGroupRules"]] == [
        ("tcp", 0, 65535, default["GroupId"]), ("udp", 0, 65535, default["GroupId"]),
        ("icmp", -1, -1, default["GroupId"])]
    assert len(rules_of(ec2, web)) == 4
    # Revoked the same ways.
    ec2.revoke_security_group_ingress(GroupName="web", SourceSecurityGroupName="default")
    ec2.revoke_security_group_ingress(GroupId=web, IpProtocol="tcp", FromPort=22, ToPort=22,
                                      CidrIp="203.0.113.0/24")
    assert rules_of(ec2, web) == []


def test_flat_parameters_combinations_aws_refuses(live):
    ec2 = live.client("ec2")
    make_group(ec2)
    call = ec2.authorize_security_group_ingress
    assert error_code(call, GroupName="web", SourceSecurityGroupName="default",
                      IpProtocol="tcp", FromPort=1, ToPort=2) == "InvalidParameterCombination"
    assert error_code(call, GroupName="web", SourceSecurityGroupName="default",
                      CidrIp="10.0.0.0/8") == "InvalidParameterCombination"
    assert error_code(call, GroupName="web", CidrIp="10.0.0.0/8",
                      IpPermissions=[tcp(22, "10.0.0.0/8")]) == "InvalidParameterCombination"
    assert error_code(call, GroupName="web", SourceSecurityGroupOwnerId="123456789012") \
        == "MissingParameter"
    # A protocol and ports, but no source.
    assert error_code(call, GroupName="web", IpProtocol="tcp", FromPort=1, ToPort=2) \
        == "MissingParameter"
    assert error_code(call, GroupName="web", IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 1, "ToPort": 2}]) == "MissingParameter"
    assert error_code(call, GroupName="web") == "MissingParameter"
    # No group named, or one that does not exist.
    assert error_code(call, IpPermissions=[tcp(22, "10.0.0.0/8")]) == "MissingParameter"
    assert error_code(call, GroupName="nope", IpPermissions=[tcp(22, "10.0.0.0/8")]) \
        == "InvalidGroup.NotFound"
    assert error_code(call, GroupId="sg-0123456789abcdef0",
                      IpPermissions=[tcp(22, "10.0.0.0/8")]) == "InvalidGroup.NotFound"


def test_protocols_and_ports(live):
    ec2 = live.client("ec2")
    web = make_group(ec2)

    def allow(protocol, from_port=None, to_port=None, cidr="10.0.0.0/8"):
        permission = {"IpProtocol": protocol, "IpRanges": [{"CidrIp": cidr}]}
        if from_port is not None:
            permission["FromPort"] = from_port
        if to_port is not None:
            permission["ToPort"] = to_port
        answer = ec2.authorize_security_group_ingress(GroupId=web, IpPermissions=[permission])
        return shape(answer["SecurityGroupRules"][0])

    assert allow("udp", 53, 53) == ("udp", 53, 53, "10.0.0.0/8")
    assert allow("icmp", 8, -1) == ("icmp", 8, -1, "10.0.0.0/8")
    assert allow("icmp", -1, -1, "10.1.0.0/16") == ("icmp", -1, -1, "10.1.0.0/16")
    # Numbers become names where AWS has one; ports mean nothing to other protocols.
    assert allow("6", 443, 443) == ("tcp", 443, 443, "10.0.0.0/8")
    assert allow("47", 1, 2) == ("47", -1, -1, "10.0.0.0/8")
    assert allow("-1", 5, 6) == ("-1", -1, -1, "10.0.0.0/8")
    assert error_code(allow, "all", cidr="10.0.0.0/8") == "InvalidPermission.Duplicate"
    assert allow("all", cidr="172.16.0.0/12") == ("-1", -1, -1, "172.16.0.0/12")
    for bad in (("foo", 1, 2), ("256", None, None), ("tcp", None, None), ("tcp", 22, None),
                ("tcp", 80, 22), ("udp", 0, 65536), ("tcp", -1, -1), ("icmp", -1, 0),
                ("icmp", 256, 0), ("icmp", None, None), ("icmpv6", -1, -1), ("58", -1, -1)):
        assert error_code(allow, *bad, cidr="10.9.0.0/16") == "InvalidParameterValue", bad
    assert len(rules_of(ec2, web)) == 7


def test_cidrs_ipv6_and_prefix_lists(live):
    ec2 = live.client("ec2")
    web = make_group(ec2)
    call = ec2.authorize_security_group_ingress
    for cidr in ("10.0.0.1", "10.0.0.0/33", "300.1.1.1/32", "10.0.0.0/x", "::/0", "", "a/8"):
        assert error_code(call, GroupId=web, IpPermissions=[tcp(22, cidr)]) in \
            ("InvalidParameterValue", "MissingParameter"), cidr
    assert error_code(call, GroupId=web, IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 1, "ToPort": 1,
         "Ipv6Ranges": [{"CidrIpv6": "::/0"}]}]) == "InvalidParameterValue"
    assert error_code(call, GroupId=web, IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 1, "ToPort": 1,
         "PrefixListIds": [{"PrefixListId": "pl-12345678"}]}]) == "InvalidParameterValue"
    assert rules_of(ec2, web) == []


def test_duplicates_fail_the_whole_request(live):
    ec2 = live.client("ec2")
    web = make_group(ec2)
    ec2.authorize_security_group_ingress(GroupId=web, IpPermissions=[tcp(22, "10.0.0.0/8")])
    # The same rule with another description, or written with host bits, is the same rule.
    again = {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22,
             "IpRanges": [{"CidrIp": "10.9.9.9/8", "Description": "other words"}]}
    assert error_code(ec2.authorize_security_group_ingress, GroupId=web,
                      IpPermissions=[tcp(80, "10.0.0.0/8"), again]) \
        == "InvalidPermission.Duplicate"
    # Nothing of the failed request was added, tcp/80 included.
    assert [shape(rule) for rule in rules_of(ec2, web)] == [("tcp", 22, 22, "10.0.0.0/8")]
    # The same rule twice in one request.
    assert error_code(ec2.authorize_security_group_ingress, GroupId=web,
                      IpPermissions=[tcp(80, "10.0.0.0/8", "10.0.0.0/8")]) \
        == "InvalidPermission.Duplicate"
    # An ingress rule and an egress rule may be alike.
    ec2.authorize_security_group_egress(GroupId=web, IpPermissions=[tcp(22, "10.0.0.0/8")])


def test_peer_groups_of_this_and_another_account(live):
    ec2 = live.client("ec2")
    web = make_group(ec2)
    other, other_id = second_account(live, service="ec2")
    theirs = make_group(other, "db")
    call = ec2.authorize_security_group_ingress

    def pair(**fields):
        return [{"IpProtocol": "tcp", "FromPort": 5432, "ToPort": 5432,
                 "UserIdGroupPairs": [fields]}]

    by_name = call(GroupId=web, IpPermissions=pair(UserId=other_id, GroupName="db"))
    assert by_name["SecurityGroupRules"][0]["ReferencedGroupInfo"] \
        == {"GroupId": theirs, "UserId": other_id}
    call(GroupId=web, IpPermissions=[{"IpProtocol": "udp", "FromPort": 1, "ToPort": 1,
                                      "UserIdGroupPairs": [{"UserId": other_id,
                                                            "GroupId": theirs}]}])
    [group] = ec2.describe_security_groups(GroupIds=[web])["SecurityGroups"]
    assert {(p["IpProtocol"], g["GroupId"], g["UserId"], g["GroupName"])
            for p in group["IpPermissions"] for g in p["UserIdGroupPairs"]} \
        == {("tcp", theirs, other_id, "db"), ("udp", theirs, other_id, "db")}
    # ModifySecurityGroupRules names the peer by id alone: the rule keeps its owner.
    rule_id = by_name["SecurityGroupRules"][0]["SecurityGroupRuleId"]
    ec2.modify_security_group_rules(GroupId=web, SecurityGroupRules=[
        {"SecurityGroupRuleId": rule_id,
         "SecurityGroupRule": {"IpProtocol": "tcp", "FromPort": 5433, "ToPort": 5433,
                               "ReferencedGroupId": theirs}}])
    [modified] = ec2.describe_security_group_rules(
        SecurityGroupRuleIds=[rule_id])["SecurityGroupRules"]
    assert (modified["FromPort"], modified["ReferencedGroupInfo"]) \
        == (5433, {"GroupId": theirs, "UserId": other_id})
    # Without the owner's id a group is looked for in the caller's own account.
    assert error_code(call, GroupId=web, IpPermissions=pair(GroupId=theirs)) \
        == "InvalidGroup.NotFound"
    assert error_code(call, GroupId=web, IpPermissions=pair(GroupName="db")) \
        == "InvalidGroup.NotFound"
    assert error_code(call, GroupId=web, IpPermissions=pair(UserId=other_id,
                                                            GroupName="nope")) \
        == "InvalidGroup.NotFound"
    assert error_code(call, GroupId=web, IpPermissions=pair(GroupId="sg-nothex")) \
        == "InvalidGroupId.Malformed"
    # The other account cannot change this account's group, by id or name.
    assert error_code(other.authorize_security_group_ingress, GroupId=web,
                      IpPermissions=[tcp(22, "10.0.0.0/8")]) == "InvalidGroup.NotFound"
    assert error_code(other.revoke_security_group_ingress, GroupId=web,
                      IpPermissions=pair(UserId=other_id, GroupName="db")) \
        == "InvalidGroup.NotFound"
    # Its group is in use while this account's rule names it.
    assert error_code(other.delete_security_group, GroupId=theirs) == "InvalidGroup.InUse"


# --- revoking ---------------------------------------------------------------------------------

def test_revoke_by_permission_reports_what_it_did_not_find(live):
    ec2 = live.client("ec2")
    web = make_group(ec2)
    made = ec2.authorize_security_group_ingress(GroupId=web, IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22,
         "IpRanges": [{"CidrIp": "10.0.0.0/8", "Description": "kept apart"},
                      {"CidrIp": "192.0.2.0/24"}]}])["SecurityGroupRules"]
    # Unknown rules are no error in EC2-Classic: they come back, and nothing goes.
    answer = ec2.revoke_security_group_ingress(GroupId=web,
                                               IpPermissions=[tcp(23, "10.0.0.0/8")])
    assert answer["Return"] is True
    [unknown] = answer["UnknownIpPermissions"]
    assert (unknown["IpProtocol"], unknown["FromPort"], unknown["ToPort"]) == ("tcp", 23, 23)
    assert [r["CidrIp"] for r in unknown["IpRanges"]] == ["10.0.0.0/8"]
    assert answer.get("RevokedSecurityGroupRules", []) == []
    assert len(rules_of(ec2, web)) == 2
    # A description is not needed to match; the peer that matched nothing is reported.
    answer = ec2.revoke_security_group_ingress(GroupId=web, IpPermissions=[
        tcp(22, "10.0.0.0/8", "172.16.0.0/12")])
    [unknown] = answer["UnknownIpPermissions"]
    assert [r["CidrIp"] for r in unknown["IpRanges"]] == ["172.16.0.0/12"]
    [revoked] = answer["RevokedSecurityGroupRules"]
    assert revoked["SecurityGroupRuleId"] == made[0]["SecurityGroupRuleId"]
    assert (revoked["CidrIpv4"], revoked["Description"]) == ("10.0.0.0/8", "kept apart")
    assert [shape(rule) for rule in rules_of(ec2, web)] == [("tcp", 22, 22, "192.0.2.0/24")]


def test_revoke_by_rule_ids(live):
    ec2 = live.client("ec2")
    web = make_group(ec2)
    made = ec2.authorize_security_group_ingress(GroupId=web, IpPermissions=[
        tcp(22, "10.0.0.0/8", "192.0.2.0/24")])["SecurityGroupRules"]
    ids = [rule["SecurityGroupRuleId"] for rule in made]
    [egress_rule] = rules_of(ec2, web, egress=True)
    call = ec2.revoke_security_group_ingress
    # One unknown id fails the request and revokes nothing.
    assert error_code(call, GroupId=web, SecurityGroupRuleIds=[ids[0], "sgr-0123456789abcdef0"]) \
        == "InvalidSecurityGroupRuleId.NotFound"
    assert error_code(call, GroupId=web, SecurityGroupRuleIds=["sgr-nothex"]) \
        == "InvalidSecurityGroupRuleId.Malformed"
    # An egress rule is not an ingress rule.
    assert error_code(call, GroupId=web,
                      SecurityGroupRuleIds=[egress_rule["SecurityGroupRuleId"]]) \
        == "InvalidSecurityGroupRuleId.NotFound"
    assert error_code(call, GroupId=web, SecurityGroupRuleIds=[ids[0]],
                      IpPermissions=[tcp(22, "10.0.0.0/8")]) == "InvalidParameterCombination"
    assert error_code(call, GroupId=web) == "MissingParameter"
    assert len(rules_of(ec2, web)) == 2
    answer = call(GroupId=web, SecurityGroupRuleIds=[ids[0]])
    assert [rule["SecurityGroupRuleId"] for rule in answer["RevokedSecurityGroupRules"]] \
        == [ids[0]]
    assert [rule["SecurityGroupRuleId"] for rule in rules_of(ec2, web)] == [ids[1]]
    # The revoked rule's tags went with it.
    assert error_code(ec2.describe_security_group_rules, SecurityGroupRuleIds=[ids[0]]) \
        == "InvalidSecurityGroupRuleId.NotFound"


def test_egress_rules(live):
    ec2 = live.client("ec2")
    web = make_group(ec2)
    # A new group may send anything anywhere, as in AWS.
    [everything] = rules_of(ec2, web, egress=True)
    assert shape(everything) == ("-1", -1, -1, "0.0.0.0/0")
    made = ec2.authorize_security_group_egress(GroupId=web, IpPermissions=[
        tcp(443, "0.0.0.0/0"),
        {"IpProtocol": "udp", "FromPort": 53, "ToPort": 53,
         "UserIdGroupPairs": [{"GroupName": "default"}]}])["SecurityGroupRules"]
    assert all(rule["IsEgress"] for rule in made)
    assert {shape(rule)[:3] for rule in rules_of(ec2, web, egress=True)} \
        == {("-1", -1, -1), ("tcp", 443, 443), ("udp", 53, 53)}
    [group] = ec2.describe_security_groups(GroupIds=[web])["SecurityGroups"]
    assert {p["IpProtocol"] for p in group["IpPermissionsEgress"]} == {"-1", "tcp", "udp"}
    assert group["IpPermissions"] == []
    # The flat parameters are not for outbound rules (AWS: "Not supported").
    assert error_code(ec2.authorize_security_group_egress, GroupId=web, IpProtocol="tcp",
                      FromPort=1, ToPort=1, CidrIp="10.0.0.0/8") == "InvalidParameterValue"
    ec2.revoke_security_group_egress(GroupId=web, IpPermissions=[
        {"IpProtocol": "-1", "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}])
    assert {shape(rule)[0] for rule in rules_of(ec2, web, egress=True)} == {"tcp", "udp"}


# --- limits and descriptions ------------------------------------------------------------------

def test_rules_per_group_limit_per_direction(tmp_path):
    live, server = start_live(tmp_path / "data", security_group_rule_limit=3)
    try:
        ec2 = live.client("ec2")
        web = make_group(ec2)
        ec2.authorize_security_group_ingress(GroupId=web, IpPermissions=[
            tcp(1, "10.0.0.0/8"), tcp(2, "10.0.0.0/8")])
        # Two more would make four: the whole request fails.
        assert error_code(ec2.authorize_security_group_ingress, GroupId=web, IpPermissions=[
            tcp(3, "10.0.0.0/8", "192.0.2.0/24")]) == "RulesPerSecurityGroupLimitExceeded"
        ec2.authorize_security_group_ingress(GroupId=web, IpPermissions=[tcp(3, "10.0.0.0/8")])
        assert error_code(ec2.authorize_security_group_ingress, GroupId=web,
                          IpPermissions=[tcp(4, "10.0.0.0/8")]) \
            == "RulesPerSecurityGroupLimitExceeded"
        assert len(rules_of(ec2, web)) == 3
        # Outbound rules count on their own (the group has its allow-all one).
        ec2.authorize_security_group_egress(GroupId=web, IpPermissions=[
            tcp(1, "10.0.0.0/8"), tcp(2, "10.0.0.0/8")])
    finally:
        server.shutdown()


def test_descriptions_checked_and_updated(live):
    ec2 = live.client("ec2")
    web = make_group(ec2)

    def allow(description, port=22):
        return ec2.authorize_security_group_ingress(GroupId=web, IpPermissions=[
            {"IpProtocol": "tcp", "FromPort": port, "ToPort": port,
             "IpRanges": [{"CidrIp": "10.0.0.0/8", "Description": description}]}])

    every = "aZ09 ._-:/()#,@[]+=&;{}!$*"
    made = allow(every)["SecurityGroupRules"][0]
    assert made["Description"] == every
    for bad in ("x" * 256, "caf\u00e9", "<b>", "quote'", "tab\t"):
        assert error_code(allow, bad, port=23) == "InvalidParameterValue", bad
    allow("x" * 255, port=24)
    # By permission: the peer's description replaces the rule's.
    ec2.update_security_group_rule_descriptions_ingress(GroupId=web, IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22,
         "IpRanges": [{"CidrIp": "10.0.0.0/8", "Description": "new words"}]}])
    descriptions = {r["FromPort"]: r.get("Description") for r in rules_of(ec2, web)}
    assert descriptions[22] == "new words"
    # By rule id; none given clears it.
    ec2.update_security_group_rule_descriptions_ingress(
        GroupName="web",
        SecurityGroupRuleDescriptions=[{"SecurityGroupRuleId": made["SecurityGroupRuleId"]}])
    assert "Description" not in next(r for r in rules_of(ec2, web) if r["FromPort"] == 22)
    call = ec2.update_security_group_rule_descriptions_ingress
    assert error_code(call, GroupId=web, IpPermissions=[tcp(99, "10.0.0.0/8")]) \
        == "InvalidPermission.NotFound"
    assert error_code(call, GroupId=web, SecurityGroupRuleDescriptions=[
        {"SecurityGroupRuleId": "sgr-0123456789abcdef0", "Description": "x"}]) \
        == "InvalidSecurityGroupRuleId.NotFound"
    assert error_code(call, GroupId=web, SecurityGroupRuleDescriptions=[
        {"SecurityGroupRuleId": made["SecurityGroupRuleId"], "Description": "caf\u00e9"}]) \
        == "InvalidParameterValue"
    assert error_code(call, GroupId=web) == "MissingParameter"
    # Outbound rules by id, through the egress action only.
    [egress_rule] = rules_of(ec2, web, egress=True)
    assert error_code(call, GroupId=web, SecurityGroupRuleDescriptions=[
        {"SecurityGroupRuleId": egress_rule["SecurityGroupRuleId"], "Description": "x"}]) \
        == "InvalidSecurityGroupRuleId.NotFound"
    ec2.update_security_group_rule_descriptions_egress(
        GroupId=web, SecurityGroupRuleDescriptions=[
            {"SecurityGroupRuleId": egress_rule["SecurityGroupRuleId"], "Description": "out"}])
    assert rules_of(ec2, web, egress=True)[0]["Description"] == "out"


# --- describing and modifying -----------------------------------------------------------------

def test_describe_rules_filters_paging_and_tags(live):
    ec2 = live.client("ec2")
    web, db = make_group(ec2), make_group(ec2, "db")
    tagged = ec2.authorize_security_group_ingress(
        GroupId=web, IpPermissions=[tcp(22, "10.0.0.0/8")],
        TagSpecifications=[{"ResourceType": "security-group-rule",
                            "Tags": [{"Key": "team", "Value": "ops"}]}])["SecurityGroupRules"]
    assert tagged[0]["Tags"] == [{"Key": "team", "Value": "ops"}]
    tagged_id = tagged[0]["SecurityGroupRuleId"]
    ec2.authorize_security_group_ingress(GroupId=db, IpPermissions=[
        tcp(port, "10.0.0.0/8") for port in range(5000, 5006)])
    everything = ec2.describe_security_group_rules()["SecurityGroupRules"]
    # default's two rules, web's and db's egress rule, and the seven above.
    assert len(everything) == 11

    def ids(**kwargs):
        return {rule["SecurityGroupRuleId"]
                for rule in ec2.describe_security_group_rules(**kwargs)["SecurityGroupRules"]}

    assert ids(Filters=[{"Name": "tag:team", "Values": ["ops"]}]) == {tagged_id}
    assert ids(Filters=[{"Name": "tag-key", "Values": ["te*"]}]) == {tagged_id}
    assert ids(Filters=[{"Name": "tag:team", "Values": ["dev"]}]) == set()
    assert ids(Filters=[{"Name": "security-group-rule-id", "Values": [tagged_id]}]) \
        == {tagged_id}
    assert len(ids(Filters=[{"Name": "group-id", "Values": [db]}])) == 7
    assert ids(SecurityGroupRuleIds=[tagged_id]) == {tagged_id}
    assert error_code(ec2.describe_security_group_rules,
                      Filters=[{"Name": "cidr", "Values": ["x"]}]) == "InvalidParameterValue"
    assert error_code(ec2.describe_security_group_rules,
                      SecurityGroupRuleIds=["sgr-0123456789abcdef0"]) \
        == "InvalidSecurityGroupRuleId.NotFound"
    # Pages of five, every rule once.
    pages = list(ec2.get_paginator("describe_security_group_rules").paginate(
        PaginationConfig={"PageSize": 5}))
    assert [len(page["SecurityGroupRules"]) for page in pages] == [5, 5, 1]
    assert {rule["SecurityGroupRuleId"] for page in pages for rule in page["SecurityGroupRules"]} \
        == {rule["SecurityGroupRuleId"] for rule in everything}
    # Rule tags are tags like any other resource's.
    described = ec2.describe_tags(Filters=[{"Name": "resource-id", "Values": [tagged_id]}])
    assert [(t["ResourceType"], t["Key"]) for t in described["Tags"]] \
        == [("security-group-rule", "team")]
    assert error_code(ec2.authorize_security_group_ingress, GroupId=web,
                      IpPermissions=[tcp(23, "10.0.0.0/8")],
                      TagSpecifications=[{"ResourceType": "instance",
                                          "Tags": [{"Key": "a", "Value": "b"}]}]) \
        == "InvalidParameterValue"
    # Another account sees none of them.
    other, _ = second_account(live, service="ec2")
    assert tagged_id not in {rule["SecurityGroupRuleId"] for rule in
                             other.describe_security_group_rules()["SecurityGroupRules"]}
    assert error_code(other.describe_security_group_rules, SecurityGroupRuleIds=[tagged_id]) \
        == "InvalidSecurityGroupRuleId.NotFound"


def test_modify_rules_in_place(live):
    ec2 = live.client("ec2")
    web = make_group(ec2)
    default = ec2.describe_security_groups(GroupNames=["default"])["SecurityGroups"][0]
    first, second = ec2.authorize_security_group_ingress(GroupId=web, IpPermissions=[
        tcp(22, "10.0.0.0/8"), tcp(80, "10.0.0.0/8")])["SecurityGroupRules"]
    rule_id = first["SecurityGroupRuleId"]
    ec2.modify_security_group_rules(GroupId=web, SecurityGroupRules=[
        {"SecurityGroupRuleId": rule_id,
         "SecurityGroupRule": {"IpProtocol": "tcp", "FromPort": 2222, "ToPort": 2223,
                               "CidrIpv4": "192.0.2.9/24", "Description": "moved"}}])
    [modified] = ec2.describe_security_group_rules(
        SecurityGroupRuleIds=[rule_id])["SecurityGroupRules"]
    assert shape(modified) == ("tcp", 2222, 2223, "192.0.2.0/24")
    assert modified["Description"] == "moved"
    ec2.modify_security_group_rules(GroupId=web, SecurityGroupRules=[
        {"SecurityGroupRuleId": rule_id,
         "SecurityGroupRule": {"IpProtocol": "-1", "ReferencedGroupId": default["GroupId"]}}])
    [modified] = ec2.describe_security_group_rules(
        SecurityGroupRuleIds=[rule_id])["SecurityGroupRules"]
    assert shape(modified) == ("-1", -1, -1, default["GroupId"])
    call = ec2.modify_security_group_rules
    # Made equal to the other rule: a duplicate, and nothing changes.
    assert error_code(call, GroupId=web, SecurityGroupRules=[
        {"SecurityGroupRuleId": rule_id,
         "SecurityGroupRule": {"IpProtocol": "tcp", "FromPort": 80, "ToPort": 80,
                               "CidrIpv4": "10.0.0.0/8"}}]) == "InvalidPermission.Duplicate"
    assert error_code(call, GroupId=web, SecurityGroupRules=[
        {"SecurityGroupRuleId": "sgr-0123456789abcdef0",
         "SecurityGroupRule": {"IpProtocol": "-1", "CidrIpv4": "10.0.0.0/8"}}]) \
        == "InvalidSecurityGroupRuleId.NotFound"
    assert error_code(call, GroupId=web, SecurityGroupRules=[
        {"SecurityGroupRuleId": rule_id,
         "SecurityGroupRule": {"IpProtocol": "-1", "CidrIpv6": "::/0"}}]) \
        == "InvalidParameterValue"
    assert error_code(call, GroupId=web, SecurityGroupRules=[
        {"SecurityGroupRuleId": rule_id, "SecurityGroupRule": {"IpProtocol": "-1"}}]) \
        == "InvalidPermission.Malformed"
    assert {shape(rule) for rule in rules_of(ec2, web)} \
        == {("-1", -1, -1, default["GroupId"]), shape(second)}


# --- the data plane ---------------------------------------------------------------------------

def test_changes_refused_while_the_network_is_off(live):
    ec2 = live.client("ec2")
    web = make_group(ec2)
    made = ec2.authorize_security_group_ingress(GroupId=web, IpPermissions=[
        tcp(22, "10.0.0.0/8")])["SecurityGroupRules"]
    cluster = live.app.extensions["eucalite"].cluster
    cluster.network_problem = "security groups and public IPs are OFF: nft is missing " \
                              "(apt install nftables)"
    try:
        for call, kwargs in (
                (ec2.authorize_security_group_ingress,
                 {"GroupId": web, "IpPermissions": [tcp(80, "10.0.0.0/8")]}),
                (ec2.revoke_security_group_ingress,
                 {"GroupId": web, "IpPermissions": [tcp(22, "10.0.0.0/8")]}),
                (ec2.modify_security_group_rules,
                 {"GroupId": web, "SecurityGroupRules": [
                     {"SecurityGroupRuleId": made[0]["SecurityGroupRuleId"],
                      "SecurityGroupRule": {"IpProtocol": "-1", "CidrIpv4": "10.0.0.0/8"}}]})):
            assert error_code(call, **kwargs) == "ServiceUnavailable"
        # Reading still works, and nothing changed.
        assert [shape(rule) for rule in rules_of(ec2, web)] == [("tcp", 22, 22, "10.0.0.0/8")]
    finally:
        cluster.network_problem = None


@pytest.fixture
def node(tmp_path):
    """A live cloud with node duty on the fake hypervisor (and its in-memory data plane)."""
    live, server = start_live_node(tmp_path / "data", hypervisor="fake")
    yield live
    stop_live(live, server)


def test_node_enforces_a_rule_right_after_authorize_and_drops_it_on_revoke(node):
    ec2 = node.client("ec2")
    web = make_group(ec2)
    image = make_image(node)
    [instance] = ec2.run_instances(ImageId=image, MinCount=1, MaxCount=1,
                                   SecurityGroupIds=[web])["Instances"]
    wait_for_state(ec2, [instance["InstanceId"]], "running")
    firewall = node.services.cluster.local_node.firewall
    allowed = Rule(protocol="6", from_port=8080, to_port=8080, cidr="198.51.100.0/24")
    assert allowed not in firewall.plan.groups[web].ingress
    ec2.authorize_security_group_ingress(GroupId=web, IpPermissions=[
        tcp(8080, "198.51.100.0/24")])
    # No waiting: the plan is pushed before Authorize answers.
    assert allowed in firewall.plan.groups[web].ingress
    [port] = [port for port in firewall.plan.ports if port.instance_id == instance["InstanceId"]]
    assert web in port.groups
    ec2.revoke_security_group_ingress(GroupId=web, IpPermissions=[tcp(8080, "198.51.100.0/24")])
    assert allowed not in firewall.plan.groups[web].ingress


# --- the aws CLI ------------------------------------------------------------------------------

@pytest.mark.skipif(not AWS.exists(), reason="the aws CLI is not installed in the venv")
def test_aws_cli_authorize_describe_revoke(live):
    env = live.env()
    ec2 = live.client("ec2")
    web = make_group(ec2)

    def aws(*args) -> str:
        done = subprocess.run([str(AWS), "ec2", *args, "--output", "json"], env=env,
                              capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        return done.stdout

    aws("authorize-security-group-ingress", "--group-name", "web", "--protocol", "tcp",
        "--port", "8000-8080", "--cidr", "203.0.113.0/24")
    aws("authorize-security-group-ingress", "--group-id", web, "--ip-permissions",
        "IpProtocol=udp,FromPort=53,ToPort=53,IpRanges=[{CidrIp=10.0.0.0/8,Description=dns}]")
    assert sorted(map(shape, rules_of(ec2, web))) == [
        ("tcp", 8000, 8080, "203.0.113.0/24"), ("udp", 53, 53, "10.0.0.0/8")]
    assert web in aws("describe-security-group-rules", "--filters", f"Name=group-id,Values={web}")
    aws("revoke-security-group-ingress", "--group-name", "web", "--protocol", "tcp",
        "--port", "8000-8080", "--cidr", "203.0.113.0/24")
    assert [shape(rule) for rule in rules_of(ec2, web)] == [("udp", 53, 53, "10.0.0.0/8")]
