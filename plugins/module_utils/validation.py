# -*- coding: utf-8 -*-

# Copyright: Contributors to the cloudops.ecr_replication project
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Option validation for the whole collection: one error class, one validator per kind of value.

Every check that a module, an action plugin, a filter or a role makes on a user's input lives here and raises
:class:`OptionError`, whose ``option`` names the option (or the role variable) and whose message says what was
wrong and what is expected. Modules turn it into ``fail_json(msg=..., option=...)``; the action plugins into a
failed result. Plain Python: no Ansible, no boto3.
"""

from __future__ import annotations

import re
from typing import Any
from typing import Optional

_ACCOUNT_RE = re.compile(r"^\d{12}$")
_REGION_RE = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d+$")
_ROLE_ARN_RE = re.compile(r"^arn:(aws|aws-cn|aws-us-gov):iam::(\d{12}):role/([\w+=,.@/-]+)$")
# ECR repository names: lowercase, digits, separators . _ - and / between components.
_PRINCIPAL_ARN_RE = re.compile(
    r"^arn:(aws|aws-cn|aws-us-gov):iam::(\d{12}):(root|role/[\w+=,.@/-]+|user/[\w+=,.@/-]+)$"
)
_EXTERNAL_ID_RE = re.compile(r"^[\w+=,.@:/-]{2,1224}$")
_LOG_GROUP_RE = re.compile(r"^[\w./#-]{1,512}$")
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{1,254}$")


class OptionError(ValueError):
    """An input that cannot be used; ``option`` names it (a module option, a suboption path or a role variable)."""

    def __init__(self, option: str, message: str) -> None:
        self.option = option
        self.message = message
        super().__init__(f"{option}: {message}")


def flag(value: Any, option: str) -> bool:
    """A boolean input; the strings Ansible passes from ``-e x=false`` are read as what they say."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "yes", "on", "1", "false", "no", "off", "0", ""):
        return value.strip().lower() in ("true", "yes", "on", "1")
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    raise OptionError(option, f"must be true or false, got {value!r}")


def partition_for_region(region: str) -> str:
    """The ARN partition of a region (``aws``, ``aws-cn``, ``aws-us-gov``)."""
    if region.startswith("cn-"):
        return "aws-cn"
    if region.startswith("us-gov-"):
        return "aws-us-gov"
    return "aws"


def validate_account_id(value: Any, option: str) -> str:
    value = "" if value is None else str(value)
    if not _ACCOUNT_RE.match(value):
        raise OptionError(option, f"must be a 12-digit AWS account id, got {value!r}")
    return value


def validate_region(value: Any, option: str) -> str:
    value = "" if value is None else str(value)
    if not _REGION_RE.match(value):
        raise OptionError(option, f"must be an AWS region name such as 'ap-south-1', got {value!r}")
    return value


def validate_role_arn(value: Any, option: str) -> str:
    value = "" if value is None else str(value)
    if not _ROLE_ARN_RE.match(value):
        raise OptionError(
            option, f"must be an IAM role ARN such as 'arn:aws:iam::222222222222:role/name', got {value!r}"
        )
    return value


def account_of_role_arn(role_arn: str) -> str:
    match = _ROLE_ARN_RE.match(role_arn)
    if not match:
        raise OptionError("role_arn", f"not an IAM role ARN: {role_arn!r}")
    return match.group(2)


def validate_role_arns(values: Any, option: str) -> list[str]:
    if isinstance(values, str) or not isinstance(values, (list, tuple)):
        raise OptionError(option, "must be a list of IAM role ARNs")
    if not values:
        raise OptionError(option, "must name at least one IAM role ARN")
    arns = [validate_role_arn(v, option) for v in values]
    return sorted(set(arns))


def validate_principal_arns(values: Any, option: str) -> list[str]:
    """IAM principals a trust policy may name: account roots, roles and users (sorted, unique)."""
    if isinstance(values, str) or not isinstance(values, (list, tuple)):
        raise OptionError(option, "must be a list of IAM principal ARNs")
    if not values:
        raise OptionError(option, "must name at least one IAM principal ARN")
    for value in values:
        if not isinstance(value, str) or not _PRINCIPAL_ARN_RE.match(value):
            raise OptionError(
                option,
                "must be IAM principal ARNs (arn:aws:iam::111111111111:root, ...:role/name or ...:user/name), "
                f"got {value!r}",
            )
    return sorted(set(values))


def validate_external_id(value: Any, option: str) -> str:
    """Validate an sts:ExternalId. The value is a secret: it never appears in the message."""
    value = "" if value is None else str(value)
    if not _EXTERNAL_ID_RE.match(value):
        raise OptionError(
            option,
            "must be 2 to 1224 characters of letters, digits and +=,.@:/-_ (value not shown: it is a secret)",
        )
    return value


def validate_log_group_name(value: Any, option: str) -> str:
    value = "" if value is None else str(value)
    if not _LOG_GROUP_RE.match(value):
        raise OptionError(option, f"must be a CloudWatch Logs log group name, got {value!r}")
    return value


def validate_name(value: Any, option: str) -> str:
    """Names of CodeBuild projects (2-255 chars, letters, digits, '-' and '_')."""
    value = "" if value is None else str(value)
    if not _NAME_RE.match(value):
        raise OptionError(
            option, f"must be 2-255 letters, digits, '-' or '_', starting alphanumeric, got {value!r}"
        )
    return value


# ECR: "repositoryName" is at most 256 characters; a reference <host>/<name> at most 255 (distribution's limit).
REPOSITORY_NAME_MAX = 256
REFERENCE_NAME_MAX = 255


def registry_host_for(account: str, region: str) -> str:
    """The ECR registry host of an account and region, used only to check lengths before any AWS call (the
    copy itself takes hosts from ``proxyEndpoint``, registry.py)."""
    suffix = ".amazonaws.com.cn" if region.startswith("cn-") else ".amazonaws.com"
    return f"{account}.dkr.ecr.{region}{suffix}"


def validate_repository_name(name: Any, option: str, hosts: tuple = ()) -> str:
    """A repository name that ECR accepts and that fits in a registry reference on every host given."""
    from ansible_collections.cloudops.ecr_replication.plugins.module_utils.registry import REPOSITORY_RE

    name = "" if name is None else str(name)
    if len(name) > REPOSITORY_NAME_MAX or not REPOSITORY_RE.match(name):
        raise OptionError(
            option,
            f"{name[:80]!r}{'...' if len(name) > 80 else ''} is not an ECR repository name "
            f"(lowercase letters, digits, '.', '_', '-', '/'; at most {REPOSITORY_NAME_MAX} characters)",
        )
    for host in hosts:
        if len(host) + 1 + len(name) > REFERENCE_NAME_MAX:
            raise OptionError(
                option,
                f"repository name of {len(name)} characters does not fit in a registry reference on {host} "
                f"({REFERENCE_NAME_MAX} characters for host and name; at most {REFERENCE_NAME_MAX - len(host) - 1} "
                f"here): {name[:60]!r}...",
            )
    return name


def validate_int(value: Any, option: str, minimum: int, maximum: int, why: str = "") -> int:
    """An integer between ``minimum`` and ``maximum`` (strings of digits from ``-e`` accepted)."""
    number: Optional[int] = None
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif isinstance(value, str) and re.match(r"^\s*-?\d+\s*$", value):
        number = int(value)
    elif isinstance(value, float) and value.is_integer():
        number = int(value)
    if number is None or not minimum <= number <= maximum:
        raise OptionError(option, f"must be an integer from {minimum} to {maximum}{why}, got {value!r}")
    return number


def validate_seconds(value: Any, option: str, minimum: float, maximum: float) -> float:
    """A duration in seconds (int or float) between ``minimum`` and ``maximum``."""
    number: Optional[float] = None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        number = float(value)
    elif isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            number = None
    if number is None or number != number or not minimum <= number <= maximum:
        raise OptionError(option, f"must be a number of seconds from {minimum:g} to {maximum:g}, got {value!r}")
    return number


def validate_choice(value: Any, option: str, choices: tuple) -> str:
    if value not in choices:
        raise OptionError(option, f"must be one of {', '.join(choices)}, got {value!r}")
    return value


def name_list(value: Any, option: str) -> list:
    """A list of names given as a list, or as a comma- or newline-separated string (``-e x=a,b``, AWX surveys)."""
    if value is None or value == "":
        return []
    if isinstance(value, str):
        return [item.strip() for item in re.split(r"[\n,]", value) if item.strip()]
    if not isinstance(value, (list, tuple)):
        raise OptionError(option, f"must be a list of names (or a comma-separated string), got {type(value).__name__}")
    for item in value:
        if not isinstance(item, str) or not item.strip():
            raise OptionError(option, f"{item!r} is not a name")
    return [item.strip() for item in value]
