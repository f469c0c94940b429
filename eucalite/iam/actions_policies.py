"""IAM policy actions: inline policies (Put/Get/Delete/List User/Group/RolePolicy), managed
policies (Create/Get/Delete/ListPolicies), their versions, attachments (Attach/Detach and
ListAttached User/Group/RolePolicies, ListEntitiesForPolicy) and the simulator
(SimulatePrincipalPolicy, SimulateCustomPolicy), and GetAccountAuthorizationDetails.

Documents go back URL-encoded, as IAM sends them (boto3 and the aws CLI decode them).
"""
from __future__ import annotations

from . import common, policies_attached, policies_details, policies_managed
from .actions import (PAGED, member_list, optional_bool, policy_text, read_tags, registry,
                      tag_list)
from .actions_roles import profile
from .policies_managed import Listed, arn_of

#: Per kind: the action names' word and the request's entity parameter.
_KINDS = {"user": ("User", "UserName"), "group": ("Group", "GroupName"),
          "role": ("Role", "RoleName")}


def policy(item: Listed, description: bool = False) -> dict:
    """IAM's Policy (with Description for CreatePolicy and GetPolicy, as IAM gives it)."""
    row = item.policy
    return {"PolicyName": row.name, "PolicyId": row.id, "Arn": arn_of(row), "Path": row.path,
            "DefaultVersionId": row.default_version, "AttachmentCount": item.attachments,
            "PermissionsBoundaryUsageCount": 0, "IsAttachable": True,
            "Description": row.description if description else None,
            "CreateDate": row.created, "UpdateDate": row.updated}


def version(row, is_default: bool, with_document: bool = True) -> dict:
    return {"Document": policy_text(row.document) if with_document else None,
            "VersionId": row.version_id, "IsDefaultVersion": is_default,
            "CreateDate": row.created}


def _enum(params, name: str, values: tuple[str, ...]) -> str | None:
    value = params.get(name)
    if value is not None and value not in values:
        raise common.invalid(value, name[0].lower() + name[1:],
                             f"Member must satisfy enum value set: [{', '.join(values)}]")
    return value


def _arn(params) -> str:
    return common.required(params, "PolicyArn")


# --- inline policies, attachments: the same four (three) actions per kind ---------------

def _register_inline(kind: str, word: str, entity: str) -> None:
    @registry.action(f"Put{word}Policy", params=(entity, "PolicyName", "PolicyDocument"))
    def put(call):
        params = call.params
        call.services.iam.put_entity_policy(
            call.principal, kind, common.required(params, entity),
            common.required(params, "PolicyName"), common.required(params, "PolicyDocument"))
        return None

    @registry.action(f"Get{word}Policy", params=(entity, "PolicyName"))
    def get(call):
        params = call.params
        holder, row = call.services.iam.get_entity_policy(
            call.principal, kind, common.required(params, entity),
            common.required(params, "PolicyName"))
        return {entity: holder.name, "PolicyName": row.name,
                "PolicyDocument": policy_text(row.document)}

    @registry.action(f"Delete{word}Policy", params=(entity, "PolicyName"))
    def delete(call):
        params = call.params
        call.services.iam.delete_entity_policy(call.principal, kind,
                                               common.required(params, entity),
                                               common.required(params, "PolicyName"))
        return None

    @registry.action(f"List{word}Policies", params=(entity,) + PAGED)
    def list_(call):
        page = common.Page(call.params)
        names = call.services.iam.entity_policy_names(call.principal, kind,
                                                      common.required(call.params, entity))
        return page.result("PolicyNames", names, lambda name: name, lambda name: name)


def _register_attachments(kind: str, word: str, entity: str) -> None:
    @registry.action(f"Attach{word}Policy", params=(entity, "PolicyArn"))
    def attach(call):
        params = call.params
        call.services.iam.attach_entity_policy(call.principal, kind,
                                               common.required(params, entity), _arn(params))
        return None

    @registry.action(f"Detach{word}Policy", params=(entity, "PolicyArn"))
    def detach(call):
        params = call.params
        call.services.iam.detach_entity_policy(call.principal, kind,
                                               common.required(params, entity), _arn(params))
        return None

    @registry.action(f"ListAttached{word}Policies", params=(entity, "PathPrefix") + PAGED)
    def list_attached(call):
        params = call.params
        page = common.Page(params)
        prefix = policies_managed.policy_path(params.get("PathPrefix"), "PathPrefix")
        rows = call.services.iam.attached_entity_policies(
            call.principal, kind, common.required(params, entity), prefix)
        return page.result("AttachedPolicies", rows, lambda row: f"{row.name}\n{arn_of(row)}",
                           lambda row: {"PolicyName": row.name, "PolicyArn": arn_of(row)})


for _kind, (_word, _entity) in _KINDS.items():
    _register_inline(_kind, _word, _entity)
    _register_attachments(_kind, _word, _entity)


# --- managed policies -------------------------------------------------------------------

@registry.action("CreatePolicy", params=("PolicyName", "Path", "PolicyDocument",
                                         "Description", "Tags"))
def create_policy(call):
    params = call.params
    item = call.services.iam.create_policy(
        call.principal, common.required(params, "PolicyName"),
        policies_managed.policy_path(params.get("Path")), params.get("Description"),
        common.required(params, "PolicyDocument"), read_tags(params))
    return {"Policy": policy(item, description=True)}


@registry.action("GetPolicy", params=("PolicyArn",))
def get_policy(call):
    return {"Policy": policy(call.services.iam.get_policy(call.principal, _arn(call.params)),
                             description=True)}


@registry.action("DeletePolicy", params=("PolicyArn",))
def delete_policy(call):
    call.services.iam.delete_policy(call.principal, _arn(call.params))
    return None


@registry.action("ListPolicies", params=("Scope", "OnlyAttached", "PathPrefix",
                                         "PolicyUsageFilter") + PAGED)
def list_policies(call):
    params = call.params
    page = common.Page(params)
    items = call.services.iam.list_policies(
        call.principal, _enum(params, "Scope", policies_managed.SCOPES) or "All",
        bool(optional_bool(params, "OnlyAttached")),
        policies_managed.policy_path(params.get("PathPrefix"), "PathPrefix"),
        _enum(params, "PolicyUsageFilter", ("PermissionsPolicy", "PermissionsBoundary")))
    return page.result("Policies", items, policies_managed.list_key, policy)


# --- versions ---------------------------------------------------------------------------

@registry.action("CreatePolicyVersion", params=("PolicyArn", "PolicyDocument",
                                                "SetAsDefault"))
def create_policy_version(call):
    params = call.params
    row, is_default = call.services.iam.create_policy_version(
        call.principal, _arn(params), common.required(params, "PolicyDocument"),
        bool(optional_bool(params, "SetAsDefault")))
    return {"PolicyVersion": version(row, is_default, with_document=False)}


@registry.action("GetPolicyVersion", params=("PolicyArn", "VersionId"))
def get_policy_version(call):
    params = call.params
    row, is_default = call.services.iam.get_policy_version(
        call.principal, _arn(params), common.required(params, "VersionId"))
    return {"PolicyVersion": version(row, is_default)}


@registry.action("ListPolicyVersions", params=("PolicyArn",) + PAGED)
def list_policy_versions(call):
    page = common.Page(call.params)
    rows = call.services.iam.list_policy_versions(call.principal, _arn(call.params))
    # Newest first: the key grows down the list as paging needs (v9 before v10 reversed).
    return page.result("Versions", rows,
                       lambda pair: f"{10**6 - int(pair[0].version_id[1:].split('.')[0]):07d}",
                       lambda pair: version(*pair, with_document=False))


@registry.action("DeletePolicyVersion", params=("PolicyArn", "VersionId"))
def delete_policy_version(call):
    params = call.params
    call.services.iam.delete_policy_version(call.principal, _arn(params),
                                            common.required(params, "VersionId"))
    return None


@registry.action("SetDefaultPolicyVersion", params=("PolicyArn", "VersionId"))
def set_default_policy_version(call):
    params = call.params
    call.services.iam.set_default_policy_version(call.principal, _arn(params),
                                                 common.required(params, "VersionId"))
    return None


@registry.action("ListEntitiesForPolicy", params=("PolicyArn", "EntityFilter", "PathPrefix",
                                                  "PolicyUsageFilter") + PAGED)
def list_entities_for_policy(call):
    params = call.params
    page = common.Page(params)
    found = call.services.iam.entities_for_policy(
        call.principal, _arn(params),
        _enum(params, "EntityFilter", policies_attached.ENTITY_FILTERS),
        common.path(params.get("PathPrefix"), "PathPrefix"),
        _enum(params, "PolicyUsageFilter", ("PermissionsPolicy", "PermissionsBoundary")))
    rows, marker = page.cut(found, lambda entity: entity.key)
    return {**{member: [{f"{word}Name": row.name, f"{word}Id": row.id} for row in rows
                        if row.kind == kind]
               for kind, member, word in (("group", "PolicyGroups", "Group"),
                                          ("user", "PolicyUsers", "User"),
                                          ("role", "PolicyRoles", "Role"))},
            "IsTruncated": marker is not None, "Marker": marker}


# --- the simulator ----------------------------------------------------------------------

_SIMULATION = ("ActionNames", "ResourceArns", "ContextEntries", "CallerArn") + PAGED


def _members(params, name: str) -> list[str]:
    """``Name.member.N`` values; an empty list comes as ``Name=`` (boto3 sends that)."""
    return [] if params.tree.get(name) == "" else member_list(params, name)


def _simulation(params) -> dict:
    """The inputs both simulations share, as IamService takes them."""
    actions = _members(params, "ActionNames")
    if not actions:
        raise common.invalid(None, "actionNames", "Member must not be null")
    context = []
    entries = [] if params.tree.get("ContextEntries") == "" else \
        params.get_struct("ContextEntries").structs("member")
    for entry in entries:
        name = entry.get("ContextKeyName")
        if name is None:
            raise common.invalid(None, "contextEntries.member.contextKeyName",
                                 "Member must not be null")
        context.append((name, entry.get("ContextKeyType") or "string",
                        entry.struct("ContextKeyValues").scalars("member")))
    return {"actions": actions, "resources": _members(params, "ResourceArns"),
            "context": context, "caller_arn": params.get("CallerArn")}


def _results(page: common.Page, results) -> dict:
    numbered = list(enumerate(results))
    return page.result("EvaluationResults", numbered, lambda pair: f"{pair[0]:08d}",
                       lambda pair: _result(pair[1]))


def _result(result) -> dict:
    matched = [] if result.matched is None else [
        {"SourcePolicyId": result.matched.policy_id,
         "SourcePolicyType": result.matched.kind}]
    return {"EvalActionName": result.action, "EvalResourceName": result.resource,
            "EvalDecision": result.decision, "MatchedStatements": matched,
            "MissingContextValues": list(result.missing)}


@registry.action("SimulatePrincipalPolicy", params=("PolicySourceArn", "PolicyInputList")
                 + _SIMULATION)
def simulate_principal_policy(call):
    params = call.params
    page = common.Page(params)
    results = call.services.iam.simulate_principal_policy(
        call.principal, common.required(params, "PolicySourceArn"),
        extra_policies=_members(params, "PolicyInputList"), **_simulation(params))
    return _results(page, results)


@registry.action("SimulateCustomPolicy", params=("PolicyInputList",) + _SIMULATION)
def simulate_custom_policy(call):
    params = call.params
    page = common.Page(params)
    texts = _members(params, "PolicyInputList")
    if not texts:
        raise common.invalid(None, "policyInputList", "Member must not be null")
    results = call.services.iam.simulate_custom_policy(call.principal, texts,
                                                       **_simulation(params))
    return _results(page, results)


# --- the whole account ------------------------------------------------------------------

@registry.action("GetAccountAuthorizationDetails", params=("Filter",) + PAGED)
def get_account_authorization_details(call):
    params = call.params
    page = common.Page(params)
    filters = _members(params, "Filter")
    for value in filters:
        if value not in policies_details.FILTERS:
            raise common.invalid(value, "filter", "Member must satisfy constraint: [Member "
                                 "must satisfy enum value set: "
                                 f"[{', '.join(policies_details.FILTERS)}]]")
    details, marker = call.services.iam.authorization_details(
        call.principal, filters, lambda items: page.cut(items, lambda entry: entry.key))
    lists = {"UserDetailList": [], "GroupDetailList": [], "RoleDetailList": [],
             "Policies": []}
    for found in details:
        member, rendered = _detail(found)
        lists[member].append(rendered)
    return {**lists, "IsTruncated": marker is not None, "Marker": marker}


def _detail(found) -> tuple[str, dict]:
    """One entry of GetAccountAuthorizationDetails: its list and its rendering."""
    kind, row = found.entry.kind, found.entry.row
    if kind == "policy":
        return "Policies", {**policy(row, description=True), "PolicyVersionList": [
            version(each, each.version_id == row.policy.default_version)
            for each in found.versions]}
    word = kind.title()
    rendered = {"Path": row.path, f"{word}Name": row.name, f"{word}Id": row.id,
                "Arn": common.arn(row.account_id, kind, row.path, row.name),
                "CreateDate": row.created}
    inline = [{"PolicyName": name, "PolicyDocument": policy_text(text)}
              for name, text in found.inline]
    attached = [{"PolicyName": each.name, "PolicyArn": arn_of(each)}
                for each in found.attached]
    if kind == "role":
        rendered.update(AssumeRolePolicyDocument=policy_text(row.trust_policy),
                        InstanceProfileList=[profile((each, row)) for each in found.profiles])
    rendered.update({f"{word}PolicyList": inline})
    if kind == "user":
        rendered["GroupList"] = found.groups
    rendered["AttachedManagedPolicies"] = attached
    if kind != "group":
        rendered["Tags"] = tag_list(found.tags) if found.tags else None
    if kind == "role":
        rendered["RoleLastUsed"] = {"LastUsedDate": row.last_used} if row.last_used else {}
    return f"{word}DetailList", rendered
