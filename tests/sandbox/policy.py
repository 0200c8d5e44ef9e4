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
account, roles tagged ``sandbox:unrestricted`` (test fixtures that are not about permissions), resource
policies (repository and registry policies), session policies, permission boundaries, and the registry data
plane (a push is authorised by the registry token, as ``GetAuthorizationToken`` was).
"""

from __future__ import annotations

import fnmatch
import json
from dataclasses import dataclass
from typing import Any
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
