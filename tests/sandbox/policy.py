# Copyright: Contributors to the cloudops.ecr_replication project
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Identity-policy checks of the sandbox's ECR API: what IAM would answer to an assumed role's call.

moto's own IAM enforcement cannot serve here (one process-wide switch, ECR evaluated against ``*``), so the
sandbox front evaluates the calls of assumed roles itself, against the role's inline and attached policies:

- the action is ``ecr:<Operation>``; the resources are the repository ARNs the call names (``repositoryName``,
  ``repositoryNames``, ``resourceArn``), in the account of ``registryId`` or else the caller's, in the region
  the request is signed for; ``DescribeRepositories`` without names lists the registry, ``repository/*``;
  registry-wide operations (``GetAuthorizationToken``, registry policy, replication) act on ``*``;
- an explicit ``Deny`` wins, else an ``Allow`` whose ``Action``/``NotAction`` and ``Resource``/``NotResource``
  match is needed for every resource. Conditions (:func:`condition_matches`) are evaluated against the request
  context the caller gives (CodeBuild ``StartBuild``: :func:`codebuild_start_build_context`; ECR
  ``CreateRepository`` with a KMS key: ``kms:ViaService``), with the operators ``Null``, ``String(Not)Equals``,
  ``String(Not)Like``, their ``ForAnyValue:``/``ForAllValues:`` forms and ``...IfExists``, as IAM evaluates them
  (a key missing from the context: ``Null`` true, a negated operator true, the others false). A statement with any
  other operator is not evaluated: as an ``Allow`` it grants nothing, as a ``Deny`` it applies (the strict reading).

CodeBuild (:func:`check_codebuild`): ``StartBuild``, ``StopBuild``, ``BatchGetBuilds`` and ``BatchGetProjects`` of an
assumed role are checked as ``codebuild:<Operation>`` on the project ARNs the call names (a build id is
``<project>:<uuid>``); ``StartBuild`` with its override fields as condition keys.

Not checked: IAM users and account roots (the sandbox administrator), the administrator role of the target
account, roles tagged ``sandbox:unrestricted`` (test fixtures that are not about permissions), other CodeBuild
operations, session policies,
permission boundaries, and the registry data plane (a push is authorised by the registry token, as
``GetAuthorizationToken`` was).

Account boundaries (:func:`check_account_boundary`), for every caller, users, roots and unrestricted roles
included: a call naming another account's registry (``registryId``, the account of ``resourceArn``,
``GetAuthorizationToken``'s ``registryIds``) needs that account's registry policy or the repository's policy
to allow the caller, as on AWS; else ``AccessDeniedException``. Resource policies are evaluated as above, with
the principal matched against the caller (``*``, its account, its user or role ARN).
"""

from __future__ import annotations

import fnmatch
import json
from dataclasses import dataclass
from typing import Any
from typing import Callable
from typing import Iterable

UNRESTRICTED_TAG = "sandbox:unrestricted"
REGISTRY_WIDE = frozenset(
    (
        "GetAuthorizationToken",
        "DescribeRegistry",
        "GetRegistryPolicy",
        "PutRegistryPolicy",
        "DeleteRegistryPolicy",
        "PutReplicationConfiguration",
        "GetRegistryScanningConfiguration",
        "PutRegistryScanningConfiguration",
        "DescribePullThroughCacheRules",
    )
)


@dataclass
class Denied(Exception):
    caller: str
    action: str
    resource: str
    explicit: bool = False

    def __str__(self) -> str:
        reason = (
            "with an explicit deny in an identity-based policy"
            if self.explicit
            else f"because no identity-based policy allows the {self.action} action"
        )
        return f"User: {self.caller} is not authorized to perform: {self.action} on resource: {self.resource} {reason}"


@dataclass
class CrossAccountDenied(Denied):
    def __str__(self) -> str:
        reason = (
            "with an explicit deny in a resource-based policy"
            if self.explicit
            else f"because no resource-based policy allows the {self.action} action"
        )
        return f"User: {self.caller} is not authorized to perform: {self.action} on resource: {self.resource} {reason}"


def repository_arn(region: str, account: str, name: str) -> str:
    partition = "aws-cn" if region.startswith("cn-") else ("aws-us-gov" if region.startswith("us-gov-") else "aws")
    return f"arn:{partition}:ecr:{region}:{account}:repository/{name}"


def ecr_resources(operation: str, body: dict[str, Any], account: str, region: str) -> list[str]:
    """The resources an ECR call acts on, as IAM evaluates them."""
    if operation in REGISTRY_WIDE:
        return ["*"]
    registry = str(body.get("registryId") or account)
    if body.get("resourceArn"):
        return [str(body["resourceArn"])]
    if body.get("repositoryName"):
        return [repository_arn(region, registry, str(body["repositoryName"]))]
    if operation == "DescribeRepositories":
        names = body.get("repositoryNames") or ["*"]
        return [repository_arn(region, registry, str(name)) for name in names]
    return ["*"]


def _as_list(value: Any) -> list:
    if value is None:
        return []
    return list(value) if isinstance(value, (list, tuple)) else [value]


def _matches(patterns: Iterable[Any], value: str, case_sensitive: bool) -> bool:
    if case_sensitive:
        return any(fnmatch.fnmatchcase(value, str(p)) for p in patterns)
    return any(fnmatch.fnmatchcase(value.lower(), str(p).lower()) for p in patterns)


def statement_applies(statement: dict[str, Any], action: str, resource: str) -> bool:
    if "Action" in statement:
        action_ok = _matches(_as_list(statement["Action"]), action, case_sensitive=False)
    else:
        action_ok = not _matches(_as_list(statement.get("NotAction")), action, case_sensitive=False)
    if "Resource" in statement:
        resource_ok = _matches(_as_list(statement["Resource"]), resource, case_sensitive=True)
    else:
        resource_ok = not _matches(_as_list(statement.get("NotResource")), resource, case_sensitive=True)
    return action_ok and resource_ok


_STRING_OPERATORS: dict[str, Callable[[str, str], bool]] = {
    "StringEquals": str.__eq__,
    "StringEqualsIgnoreCase": lambda value, pattern: value.lower() == pattern.lower(),
    "StringLike": fnmatch.fnmatchcase,
}
_NEGATED = {"StringNotEquals": "StringEquals", "StringNotEqualsIgnoreCase": "StringEqualsIgnoreCase",
            "StringNotLike": "StringLike"}


def _operator_matches(operator: str, key: str, expected: Any, context: dict[str, Any]) -> bool | None:
    """One operator on one key, as IAM evaluates it; None for an operator the sandbox does not know."""
    present = key in context
    values = [str(v) for v in _as_list(context.get(key))]
    patterns = [str(p) for p in _as_list(expected)]
    if operator == "Null":
        return any((p.lower() == "true") != present for p in patterns)
    if_exists = operator.endswith("IfExists")
    operator = operator[: -len("IfExists")] if if_exists else operator
    qualifier, operator = operator.rpartition(":")[::2]
    negated = operator in _NEGATED
    test = _STRING_OPERATORS.get(_NEGATED.get(operator, operator))
    if test is None or qualifier not in ("", "ForAnyValue", "ForAllValues"):
        return None

    def one(value: str) -> bool:
        hit = any(test(value, p) for p in patterns)
        return not hit if negated else hit

    if not present or not values:
        if if_exists or qualifier == "ForAllValues":
            return True
        return negated and qualifier == ""
    if qualifier == "ForAllValues":
        return all(one(v) for v in values)
    if qualifier == "ForAnyValue":
        return any(one(v) for v in values)
    return one(values[0]) if negated else any(one(v) for v in values)


def condition_matches(condition: dict[str, Any] | None, context: dict[str, Any] | None) -> bool | None:
    """Whether a statement's ``Condition`` holds in the request ``context`` (operators AND, keys AND, values OR;
    condition keys are case-insensitive); None when it uses an operator the sandbox does not evaluate."""
    if not condition:
        return True
    lowered = {str(k).lower(): v for k, v in (context or {}).items()}
    for operator, keys in condition.items():
        for key, expected in (keys or {}).items():
            result = _operator_matches(operator, str(key).lower(), expected, lowered)
            if result is None:
                return None
            if not result:
                return False
    return True


def evaluate(documents: Iterable[Any], action: str, resource: str, context: dict[str, Any] | None = None) -> str | None:
    """IAM's evaluation of identity policies for one action on one resource in a request context: "Deny" (an
    explicit Deny, which wins), "Allow", or None (no statement allows: an implicit deny). Conditions: the module doc."""
    allowed = None
    for document in documents:
        if isinstance(document, str):
            document = json.loads(document)
        for statement in _as_list((document or {}).get("Statement")):
            if not statement_applies(statement, action, resource):
                continue
            holds = condition_matches(statement.get("Condition"), context)
            if statement.get("Effect") == "Deny" and holds is not False:
                return "Deny"
            if statement.get("Effect") == "Allow" and holds is True:
                allowed = "Allow"
    return allowed


def is_allowed(documents: Iterable[Any], action: str, resource: str, context: dict[str, Any] | None = None) -> bool:
    return evaluate(documents, action, resource, context) == "Allow"


def check(caller: str, documents: Iterable[Any], operation: str, body: dict[str, Any], account: str, region: str):
    """Raise :class:`Denied` for the first resource the policies do not allow ``ecr:<operation>`` on."""
    documents = list(documents)
    action = f"ecr:{operation}"
    for resource in ecr_resources(operation, body, account, region):
        effect = evaluate(documents, action, resource)
        if effect != "Allow":
            raise Denied(caller, action, resource, explicit=effect == "Deny")


# -- CodeBuild ----------------------------------------------------------------------------------------------

CODEBUILD_CHECKED = frozenset(("StartBuild", "StopBuild", "BatchGetBuilds", "BatchGetProjects"))

# StartBuild request fields -> the condition keys CodeBuild sets for them (AWS Service Authorization Reference,
# codebuild). Only presence matters to the Null operator; values where a policy may compare them.
_START_BUILD_KEYS = {
    "buildspecOverride": ("codebuild:source.buildspec",),
    "sourceTypeOverride": ("codebuild:source",),
    "sourceLocationOverride": ("codebuild:source", "codebuild:source.location"),
    "sourceAuthOverride": ("codebuild:source", "codebuild:source.auth.type"),
    "insecureSslOverride": ("codebuild:source", "codebuild:source.insecureSsl"),
    "secondarySourcesOverride": ("codebuild:secondarySources",),
    "artifactsOverride": ("codebuild:artifacts",),
    "secondaryArtifactsOverride": ("codebuild:secondaryArtifacts",),
    "cacheOverride": ("codebuild:cache",),
    "imageOverride": ("codebuild:environment", "codebuild:environment.image"),
    "environmentTypeOverride": ("codebuild:environment", "codebuild:environment.type"),
    "computeTypeOverride": ("codebuild:environment", "codebuild:environment.computeType"),
    "certificateOverride": ("codebuild:environment", "codebuild:environment.certificate"),
    "privilegedModeOverride": ("codebuild:environment", "codebuild:environment.privilegedMode"),
    "registryCredentialOverride": ("codebuild:environment", "codebuild:environment.registryCredential"),
    "imagePullCredentialsTypeOverride": ("codebuild:environment", "codebuild:environment.imagePullCredentialsType"),
    "serviceRoleOverride": ("codebuild:serviceRole",),
    "logsConfigOverride": ("codebuild:logsConfig",),
    "encryptionKeyOverride": ("codebuild:encryptionKey",),
}


def codebuild_start_build_context(body: dict[str, Any]) -> dict[str, Any]:
    """The condition keys of a StartBuild request."""
    context: dict[str, Any] = {}
    for field, keys in _START_BUILD_KEYS.items():
        if field in body:
            for key in keys:
                value = body[field]
                context[key] = value if isinstance(value, (str, bool, int)) else "true"
    variables = body.get("environmentVariablesOverride")
    if variables:
        context["codebuild:environment"] = "true"
        context["codebuild:environment.environmentVariables"] = "true"
        context["codebuild:environment.environmentVariables.name"] = [str(v.get("name")) for v in variables]
        context["codebuild:environment.environmentVariables.value"] = [str(v.get("value")) for v in variables]
        for v in variables:
            context[f"codebuild:environment.environmentVariables/{v.get('name')}.value"] = str(v.get("value"))
    return context


def codebuild_resources(operation: str, body: dict[str, Any], account: str, region: str) -> list[str]:
    """The project ARNs a CodeBuild call acts on (a build id or ARN names its project)."""
    partition = "aws-cn" if region.startswith("cn-") else ("aws-us-gov" if region.startswith("us-gov-") else "aws")
    base = f"arn:{partition}:codebuild:{region}:{account}:project/"
    if operation == "StartBuild":
        names = [body.get("projectName")]
    elif operation == "BatchGetProjects":
        names = list(body.get("names") or [])
    else:
        ids = [body.get("id")] if operation == "StopBuild" else list(body.get("ids") or [])
        names = [str(i).split(":build/", 1)[-1].split(":", 1)[0] for i in ids if i]
    resources = []
    for name in names:
        name = str(name or "")
        resources.append(name if name.startswith("arn:") else base + name)
    return resources


def check_codebuild(caller: str, documents: Iterable[Any], operation: str, body: dict[str, Any], account: str,
                    region: str) -> None:
    """Raise :class:`Denied` when the policies do not allow ``codebuild:<operation>`` on a project the call names
    (for ``StartBuild`` in the context of its override fields: a Deny on ``codebuild:source.buildspec`` refuses a
    ``buildspecOverride``)."""
    if operation not in CODEBUILD_CHECKED:
        return
    documents = list(documents)
    action = f"codebuild:{operation}"
    context = codebuild_start_build_context(body) if operation == "StartBuild" else {}
    for resource in codebuild_resources(operation, body, account, region):
        effect = evaluate(documents, action, resource, context)
        if effect != "Allow":
            raise Denied(caller, action, resource, explicit=effect == "Deny")


# -- account boundaries (resource policies) -----------------------------------------------------------------


def owner_accounts(operation: str, body: dict[str, Any], account: str) -> list[str]:
    """The registries a call names other than the caller's own (usually none: the fast path is this dict read)."""
    if operation == "GetAuthorizationToken":
        named = _as_list(body.get("registryIds"))
    elif body.get("resourceArn"):
        parts = str(body["resourceArn"]).split(":")
        named = [parts[4] if len(parts) > 5 else ""]
    else:
        named = [body.get("registryId")]
    return sorted({str(owner) for owner in named if owner and str(owner) != account})


def _principal_matches(principal: Any, caller: str) -> bool:
    """Whether a resource policy's ``Principal`` names the caller: ``*``, the caller's account (id or root ARN),
    its user ARN, or the role whose session it is (``assumed-role/<name>/<session>`` matches ``role/<path>/<name>``)."""
    if principal == "*":
        return True
    values = principal.get("AWS") if isinstance(principal, dict) else None
    parts = caller.split(":")
    account = parts[4] if len(parts) > 5 else ""
    resource = parts[5] if len(parts) > 5 else ""
    role = resource.split("/")[1] if resource.startswith("assumed-role/") else None
    for value in _as_list(values):
        value = str(value)
        if value in ("*", account, f"arn:aws:iam::{account}:root", caller):
            return True
        if role and value.startswith(f"arn:aws:iam::{account}:role/") and value.rsplit("/", 1)[-1] == role:
            return True
    return False


def resource_policy_effect(policy_text: str | None, caller: str, action: str, resource: str) -> str | None:
    """"Deny", "Allow" or None (not named) for ``caller`` doing ``action`` on ``resource`` under a resource policy
    (a registry or repository policy). Conditions as for identity policies: an Allow with one grants nothing, a
    Deny with one applies."""
    if not policy_text:
        return None
    document = json.loads(policy_text) if isinstance(policy_text, str) else policy_text
    effect = None
    for statement in _as_list((document or {}).get("Statement")):
        # A resource policy's statements have no Resource of their own when on a repository: the repository.
        scoped = statement
        if "Resource" not in statement and "NotResource" not in statement:
            scoped = {**statement, "Resource": "*"}
        if not (_principal_matches(statement.get("Principal"), caller) and statement_applies(scoped, action, resource)):
            continue
        if statement.get("Effect") == "Deny":
            return "Deny"
        if statement.get("Effect") == "Allow" and not statement.get("Condition"):
            effect = "Allow"
    return effect


def check_account_boundary(
    caller: Callable[[], str],
    operation: str,
    body: dict[str, Any],
    account: str,
    region: str,
    policies: Callable[[str, str, str | None], tuple[str | None, str | None]],
) -> str | None:
    """The registry a cross-account call acts in, once its resource policies allow it; None for the caller's own.

    ``caller()`` gives the caller's ARN (looked up only for a cross-account call); ``policies(owner, region,
    repository)`` the owner's registry policy and that repository's policy (None where there is none). Raises
    :class:`CrossAccountDenied` for the first resource neither policy allows (an explicit Deny in either wins).
    A call naming two other registries (``GetAuthorizationToken``) must be allowed in each and acts in the first.
    """
    owners = owner_accounts(operation, body, account)
    if not owners:
        return None
    arn = caller()
    action = f"ecr:{operation}"
    for owner in owners:
        if not (len(owner) == 12 and owner.isdigit()):
            raise CrossAccountDenied(arn, action, repository_arn(region, owner, "*"))  # no such account
        # Registry-wide calls are scoped as a registry policy scopes them: the registry's repositories.
        resources = ["*"] if operation in REGISTRY_WIDE else ecr_resources(operation, body, owner, region)
        for resource in resources:
            resource = repository_arn(region, owner, "*") if resource == "*" else resource
            name = resource.split(":repository/", 1)[1] if ":repository/" in resource else None
            effects = {resource_policy_effect(text, arn, action, resource) for text in policies(owner, region, name)}
            if "Deny" in effects:
                raise CrossAccountDenied(arn, action, resource, explicit=True)
            if "Allow" not in effects:
                raise CrossAccountDenied(arn, action, resource)
    return owners[0]
