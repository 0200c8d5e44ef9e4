"""sts:AssumeRole as AWS decides it: the role must exist and its trust policy must allow the caller.

moto lets anyone assume any ARN, even one that does not exist. The security tests of the product
(ExternalId, trust scoped to the CodeBuild role) need the refusals, so the sandbox evaluates the
role's trust policy: Allow/Deny statements, AWS and Service principals, and the common string/ARN
condition operators.
"""

from __future__ import annotations

import fnmatch
import json
import re
from dataclasses import dataclass
from typing import Any

from moto.iam.models import iam_backends


class AssumeRoleDenied(Exception):
    pass


@dataclass(frozen=True)
class Caller:
    """Who is calling: an IAM principal ARN (user or role) or an AWS service."""

    arn: str | None = None
    service: str | None = None

    @property
    def account(self) -> str | None:
        if self.arn:
            return self.arn.split(":")[4]
        return None

    @property
    def principal_arns(self) -> set[str]:
        """ARNs a trust policy may name for this caller (an assumed-role session matches its role)."""
        if not self.arn:
            return set()
        arns = {self.arn, f"arn:aws:iam::{self.account}:root"}
        match = re.match(r"arn:aws:sts::(\d+):assumed-role/([^/]+)/", self.arn)
        if match:
            arns.add(f"arn:aws:iam::{match.group(1)}:role/{match.group(2)}")
        return arns


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _principal_matches(principal: Any, caller: Caller) -> bool:
    if principal == "*":
        return caller.arn is not None
    if not isinstance(principal, dict):
        return False
    for arn in _as_list(principal.get("AWS", [])):
        if arn == "*" and caller.arn:
            return True
        if re.fullmatch(r"\d{12}", str(arn)) and caller.account == arn:
            return True
        if arn in caller.principal_arns:
            return True
    return bool(caller.service and caller.service in _as_list(principal.get("Service", [])))


def _condition_matches(conditions: dict[str, Any], context: dict[str, str]) -> bool:
    for operator, tests in conditions.items():
        if_exists = operator.endswith("IfExists")
        op = operator[: -len("IfExists")] if if_exists else operator
        for key, expected in tests.items():
            actual = next((v for k, v in context.items() if k.lower() == key.lower()), None)
            if actual is None:
                if if_exists:
                    continue
                return False
            values = [str(v) for v in _as_list(expected)]
            if op in ("StringEquals", "ArnEquals"):
                ok = actual in values
            elif op == "StringEqualsIgnoreCase":
                ok = actual.lower() in [v.lower() for v in values]
            elif op in ("StringLike", "ArnLike"):
                ok = any(fnmatch.fnmatchcase(actual, v) for v in values)
            elif op == "StringNotEquals":
                ok = actual not in values
            elif op == "StringNotLike":
                ok = not any(fnmatch.fnmatchcase(actual, v) for v in values)
            else:
                # An operator the sandbox does not know is refused rather than ignored.
                return False
            if not ok:
                return False
    return True


def evaluate_trust(policy_document: str | dict[str, Any], caller: Caller, context: dict[str, str]) -> bool:
    policy = json.loads(policy_document) if isinstance(policy_document, str) else policy_document
    allowed = False
    for statement in _as_list(policy.get("Statement", [])):
        actions = [a.lower() for a in _as_list(statement.get("Action", []))]
        if not any(fnmatch.fnmatchcase("sts:assumerole", a) for a in actions):
            continue
        if not _principal_matches(statement.get("Principal"), caller):
            continue
        if not _condition_matches(statement.get("Condition", {}), context):
            continue
        if statement.get("Effect") == "Deny":
            return False
        if statement.get("Effect") == "Allow":
            allowed = True
    return allowed


def find_role(role_arn: str):
    match = re.fullmatch(r"arn:aws:iam::(\d{12}):role/(?:.*/)?([\w+=,.@-]+)", role_arn or "")
    if not match:
        raise AssumeRoleDenied(f"'{role_arn}' is not a valid role ARN")
    account, name = match.groups()
    if account not in iam_backends:
        raise AssumeRoleDenied(f"the role {role_arn} does not exist")
    for role in iam_backends[account]["aws"].roles.values():
        if role.name == name:
            return role
    raise AssumeRoleDenied(f"the role {role_arn} does not exist")


def check_assume_role(
    role_arn: str,
    caller: Caller,
    external_id: str | None,
    source_account: str | None = None,
    source_arn: str | None = None,
) -> None:
    role = find_role(role_arn)
    context: dict[str, str] = {}
    if external_id is not None:
        context["sts:ExternalId"] = external_id
    if caller.arn:
        context["aws:PrincipalArn"] = caller.arn
        context["aws:PrincipalAccount"] = caller.account or ""
    if source_account:
        context["aws:SourceAccount"] = source_account
    if source_arn:
        context["aws:SourceArn"] = source_arn
    if not evaluate_trust(role.assume_role_policy_document, caller, context):
        who = caller.arn or caller.service
        raise AssumeRoleDenied(f"User: {who} is not authorized to perform: sts:AssumeRole on resource: {role_arn}")
