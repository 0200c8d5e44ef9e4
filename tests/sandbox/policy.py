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
  match is needed for every resource. A statement with a ``Condition`` is not evaluated: as an ``Allow`` it
  grants nothing, as a ``Deny`` it applies (the strict reading; the collection's identity policies have none).

Not checked: IAM users and account roots (the sandbox administrator), the administrator role of the target
account, roles tagged ``sandbox:unrestricted`` (test fixtures that are not about permissions), session policies,
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

    def __str__(self) -> str:
        return (
            f"User: {self.caller} is not authorized to perform: {self.action} on resource: {self.resource} "
            f"because no identity-based policy allows the {self.action} action"
        )


@dataclass
class CrossAccountDenied(Denied):
    explicit: bool = False

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


def is_allowed(documents: Iterable[Any], action: str, resource: str) -> bool:
    """IAM's evaluation of identity policies for one action on one resource (conditions: see the module doc)."""
    allowed = False
    for document in documents:
        if isinstance(document, str):
            document = json.loads(document)
        for statement in _as_list((document or {}).get("Statement")):
            if not statement_applies(statement, action, resource):
                continue
            if statement.get("Effect") == "Deny":
                return False
            if statement.get("Effect") == "Allow" and not statement.get("Condition"):
                allowed = True
    return allowed


def check(caller: str, documents: Iterable[Any], operation: str, body: dict[str, Any], account: str, region: str):
    """Raise :class:`Denied` for the first resource the policies do not allow ``ecr:<operation>`` on."""
    documents = list(documents)
    action = f"ecr:{operation}"
    for resource in ecr_resources(operation, body, account, region):
        if not is_allowed(documents, action, resource):
            raise Denied(caller, action, resource)


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
