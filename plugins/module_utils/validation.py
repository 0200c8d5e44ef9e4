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

import math
import re
from typing import Any
from typing import Optional

from ansible_collections.cloudops.ecr_replication.plugins.module_utils.action_specs import COPY_STRATEGIES
from ansible_collections.cloudops.ecr_replication.plugins.module_utils.action_specs import STRATEGIES

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


def _matching(value: Any, pattern: "re.Pattern[str]", option: str, message) -> str:
    """``value`` as text when ``pattern`` matches it, else OptionError(option, message(text))."""
    text = "" if value is None else str(value)
    if not pattern.match(text):
        raise OptionError(option, message(text))
    return text


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
    return _matching(value, _ACCOUNT_RE, option, lambda text: f"must be a 12-digit AWS account id, got {text!r}")


def validate_region(value: Any, option: str) -> str:
    return _matching(
        value, _REGION_RE, option, lambda text: f"must be an AWS region name such as 'ap-south-1', got {text!r}"
    )


def check_known_region(region: str, option: str, known: frozenset) -> None:
    """A well-formed region name that no endpoint serves would fail only at the first call, after other regions
    were already read or written; ``known`` comes from the endpoint data of the installed botocore."""
    if known and region not in known:
        raise OptionError(
            option,
            f"{region!r} is not an ECR region this botocore knows (a typo? otherwise upgrade botocore); known: "
            + ", ".join(sorted(known)),
        )


def validate_role_arn(value: Any, option: str) -> str:
    return _matching(
        value,
        _ROLE_ARN_RE,
        option,
        lambda text: f"must be an IAM role ARN such as 'arn:aws:iam::222222222222:role/name', got {text!r}",
    )


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
    return _matching(
        value, _LOG_GROUP_RE, option, lambda text: f"must be a CloudWatch Logs log group name, got {text!r}"
    )


def validate_name(value: Any, option: str) -> str:
    """Names of CodeBuild projects (2-255 chars, letters, digits, '-' and '_')."""
    return _matching(
        value,
        _NAME_RE,
        option,
        lambda text: f"must be 2-255 letters, digits, '-' or '_', starting alphanumeric, got {text!r}",
    )


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


# Tags are at most 128 characters of [A-Za-z0-9_.-] (ECR): the alphabet a tag regex can ever be matched against.
_TAG_ALPHABET = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-")
_DIGITS = frozenset("0123456789")
_WORD = _TAG_ALPHABET - frozenset(".-")


def _regex_parser():
    try:
        from re import _parser as parser  # Python >= 3.11
    except ImportError:  # pragma: no cover - Python < 3.11
        import sre_parse as parser  # pylint: disable=deprecated-module
    return parser


def _char_set(op, av, constants) -> frozenset | None:
    """The tag characters one single-character element matches; None when the element is not one."""
    if op is constants.LITERAL:
        return _TAG_ALPHABET & {chr(av)}
    if op is constants.NOT_LITERAL:
        return _TAG_ALPHABET - {chr(av)}
    if op is constants.ANY:
        return _TAG_ALPHABET
    if op is not constants.IN:
        return None
    chars: set = set()
    negate = False
    categories = {
        constants.CATEGORY_DIGIT: _DIGITS,
        constants.CATEGORY_NOT_DIGIT: _TAG_ALPHABET - _DIGITS,
        constants.CATEGORY_WORD: _WORD,
        constants.CATEGORY_NOT_WORD: _TAG_ALPHABET - _WORD,
        constants.CATEGORY_SPACE: frozenset(),
        constants.CATEGORY_NOT_SPACE: _TAG_ALPHABET,
    }
    for item_op, item in av:
        if item_op is constants.NEGATE:
            negate = True
        elif item_op is constants.LITERAL:
            chars |= {chr(item)}
        elif item_op is constants.RANGE:
            chars |= {c for c in _TAG_ALPHABET if item[0] <= ord(c) <= item[1]}
        elif item_op is constants.CATEGORY:
            chars |= categories.get(item, _TAG_ALPHABET)
        else:
            chars |= _TAG_ALPHABET
    return frozenset(_TAG_ALPHABET - chars if negate else _TAG_ALPHABET & chars)


def _regex_nodes(parsed, constants):
    """Every (op, av) of a parsed pattern, depth first; repeats, groups and branches included."""
    for op, av in parsed:
        yield op, av
        if op in (constants.MAX_REPEAT, constants.MIN_REPEAT):
            yield from _regex_nodes(av[2], constants)
        elif op is constants.SUBPATTERN:
            yield from _regex_nodes(av[-1], constants)
        elif op is constants.BRANCH:
            for branch in av[1]:
                yield from _regex_nodes(branch, constants)


def _alphabet(parsed, constants) -> frozenset:
    chars: frozenset = frozenset()
    for op, av in _regex_nodes(parsed, constants):
        single = _char_set(op, av, constants)
        if single is not None:
            chars |= single
        elif op in (constants.GROUPREF, constants.GROUPREF_EXISTS):
            chars |= _TAG_ALPHABET
    return chars


def _mandatory_chars(parsed, constants) -> list:
    """The single-character elements a match of ``parsed`` must consume, outside any repeat."""
    found = []
    for op, av in parsed:
        single = _char_set(op, av, constants)
        if single is not None:
            found.append(single)
        elif op is constants.SUBPATTERN:
            found.extend(_mandatory_chars(av[-1], constants))
    return found


def _first_chars(parsed, constants) -> frozenset:
    first: frozenset = frozenset()
    for op, av in parsed:
        single = _char_set(op, av, constants)
        if single is not None:
            return first | single
        if op is constants.SUBPATTERN:
            return first | _first_chars(av[-1], constants)
        if op is constants.BRANCH:
            return first | frozenset().union(*(_first_chars(b, constants) for b in av[1]))
        if op in (constants.MAX_REPEAT, constants.MIN_REPEAT):
            first |= _first_chars(av[2], constants)
            if av[0] > 0:
                return first
        elif op is not constants.AT:
            return _TAG_ALPHABET
    return first


def _ambiguous_repeat(body, constants) -> str:
    """Why repeating ``body`` can backtrack exponentially, or "" (the two shapes ReDoS checkers flag)."""
    # the parts of the body that can match strings of several lengths: a repeat like a+, a?, a{1,3}, and a branch
    # with an empty alternative (the parser turns a|aa into a(?:|a))
    variable = [_alphabet(av[2], constants) for op, av in _regex_nodes(body, constants)
                if op in (constants.MAX_REPEAT, constants.MIN_REPEAT) and av[0] < av[1]]
    variable += [_alphabet([(op, av)], constants) for op, av in _regex_nodes(body, constants)
                 if op is constants.BRANCH and any(not branch for branch in av[1])]
    if variable:
        # (a+)+, (\w+\s?)*, (.*a){20}, (a|aa)+: the variable parts can take every character the body must match,
        # so a string can be split between the repetitions in exponentially many ways. (\d+\.)+ is safe: the
        # dot is not a digit.
        variable_chars = frozenset().union(*variable)
        if all(chars <= variable_chars for chars in _mandatory_chars(body, constants)):
            return "a repeated group can match the same text in several ways (nested quantifiers)"
    for op, av in body:
        if op is constants.SUBPATTERN:
            return _ambiguous_repeat(av[-1], constants)
        if op is constants.BRANCH:
            firsts = [_first_chars(branch, constants) for branch in av[1]]
            for n, first in enumerate(firsts):
                if any(first & other for other in firsts[n + 1:]):
                    return "a repeated alternation has branches that can start with the same character"
    return ""


def compile_tag_regex(value: Any, option: str) -> "re.Pattern[str]":
    """A tag filter regex: valid, and free of the shapes that backtrack exponentially on a 128-character tag
    (Python's ``re`` has no time limit: one such tag in a registry of thousands would hang the run)."""
    text = "" if value is None else str(value)
    try:
        pattern = re.compile(text)
    except re.error as e:
        raise OptionError(option, f"{text!r} is not a valid regular expression: {e}") from None
    parser = _regex_parser()
    constants = getattr(parser, "_constants", None) or parser
    for op, av in _regex_nodes(parser.parse(text), constants):
        if op in (constants.MAX_REPEAT, constants.MIN_REPEAT) and av[1] > 1:
            why = _ambiguous_repeat(av[2], constants)
            if why:
                raise OptionError(
                    option,
                    f"{text!r} can take exponential time on a long tag (catastrophic backtracking: {why}); "
                    "rewrite it, e.g. (a+)+ as a+, (\\w+\\s?)* as [\\w\\s]*",
                )
    return pattern


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
    if number is None or math.isnan(number) or not minimum <= number <= maximum:
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


# Limits of the replicate role's numbers: CodeBuild's environment (batch_size: a batch must fit in the build's
# environment variables, batching.MAX_PARTS), its quotas (concurrent builds) and what a poll loop needs.
REPLICATE_LIMITS = {
    "batch_size": (1, 500),
    "max_concurrent_builds": (1, 100),
    "parallel_copies": (1, 32),
    "max_rounds": (1, 10),
    "most_recent": (0, 100000),
}
POLL_INTERVAL_RANGE = (0.05, 3600.0)
WAIT_TIMEOUT_RANGE = (60.0, 30 * 24 * 3600.0)


_KMS_KEY_ID = r"([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|mrk-[0-9a-f]{32})"
_KMS_ALIAS = r"alias/[A-Za-z0-9/_-]{1,250}"
_KMS_KEY_RE = re.compile(
    rf"^({_KMS_KEY_ID}|{_KMS_ALIAS}|arn:aws(-cn|-us-gov)?:kms:[a-z0-9-]+:[0-9]{{12}}:(key/{_KMS_KEY_ID}|{_KMS_ALIAS}))$"
)


def validate_kms_key(value: Any, option: str, regions: tuple = ()) -> str:
    """A KMS key as ECR's ``kmsKey`` takes it: key id, key ARN, alias name (``alias/...``) or alias ARN; empty: none.
    An ARN must be of one of ``regions`` (ECR uses a key of the repository's region), when given."""
    text = "" if value is None else str(value).strip()
    if not text:
        return ""
    if not _KMS_KEY_RE.match(text) or text.startswith("alias/aws/"):
        raise OptionError(
            option,
            f"{text!r} is not a customer managed KMS key: a key id, key ARN (arn:aws:kms:<region>:<account>:key/<id>), "
            "alias name (alias/<name>) or alias ARN (leave it empty for the AWS managed key)",
        )
    if text.startswith("arn:") and regions and text.split(":")[3] not in regions:
        raise OptionError(option, f"{text} is a key of {text.split(':')[3]}; the destination region is {regions[0]}")
    return text


def _role_arn_for(partition: str, account: str, name: str) -> str:
    return f"arn:{partition}:iam::{account}:role/{name}"


def check_replicate_inputs(params: dict, prefix: str = "replicate_") -> dict:
    """Every option of the replicate role, checked before any AWS call; returns them normalised.

    ``params`` holds the role variables without ``prefix``; errors name the variable with it. The destinations
    are resolved later by :func:`resolve_destinations`, once the source account is known.
    """

    def name(option: str) -> str:
        return prefix + option

    out: dict = {}
    source_region = params.get("source_region") or ""
    if not source_region:
        raise OptionError(name("source_region"), "is required: set it (playbook: -e src_region=...) or AWS_REGION")
    out["source_region"] = validate_region(source_region, name("source_region"))
    out["source_account"] = ""
    if params.get("source_account"):
        out["source_account"] = validate_account_id(params["source_account"], name("source_account"))
    out["strategy"] = validate_choice(params.get("strategy") or "codebuild", name("strategy"), STRATEGIES)
    # what copies the images no backfill serves (strategy auto): a CodeBuild build or the controller
    out["copy_strategy"] = validate_choice(
        params.get("copy_strategy") or "codebuild", name("copy_strategy"), COPY_STRATEGIES
    )
    out["executor"] = out["strategy"] if out["strategy"] in COPY_STRATEGIES else out["copy_strategy"]
    for option, (low, high) in REPLICATE_LIMITS.items():
        default = {"most_recent": 0, "max_rounds": 3, "batch_size": 50, "max_concurrent_builds": 5,
                   "parallel_copies": 4}[option]
        value = params.get(option, default)
        out[option] = validate_int(default if value in (None, "") else value, name(option), low, high)
    out["poll_interval"] = validate_seconds(
        params.get("poll_interval", 15), name("poll_interval"), *POLL_INTERVAL_RANGE
    )
    out["wait_timeout"] = validate_seconds(params.get("wait_timeout", 3600), name("wait_timeout"), *WAIT_TIMEOUT_RANGE)
    if out["wait_timeout"] < out["poll_interval"]:
        raise OptionError(name("wait_timeout"), f"({out['wait_timeout']:g} s) is shorter than poll_interval")
    for option in ("include_untagged", "force_tags", "dry_run", "allow_partial"):
        out[option] = flag(params.get(option, option == "include_untagged"), name(option))
    out["project_name"] = validate_name(params.get("project_name") or "ecr-replication", name("project_name"))
    # the customer managed key of repositories created for a KMS-encrypted source (empty: the AWS managed key)
    out["kms_key"] = validate_kms_key(
        params.get("kms_key"), name("kms_key"), (params["dest_region"],) if params.get("dest_region") else ()
    )
    out["repositories"] = name_list(params.get("repositories"), name("repositories"))
    out["exclude_repositories"] = name_list(params.get("exclude_repositories"), name("exclude_repositories"))
    out["repository_prefix"] = params.get("repository_prefix") or ""
    if out["repository_prefix"] and not re.match(r"^[a-z0-9][a-z0-9._/-]*$", out["repository_prefix"]):
        raise OptionError(
            name("repository_prefix"), f"{out['repository_prefix']!r} cannot start an ECR repository name"
        )
    out["tag_regex"] = params.get("tag_regex") or ""
    if out["tag_regex"]:
        compile_tag_regex(out["tag_regex"], name("tag_regex"))
    out["pushed_after"] = params.get("pushed_after") or ""
    if out["pushed_after"]:
        from ansible_collections.cloudops.ecr_replication.plugins.module_utils.image_catalog import parse_pushed_after

        parse_pushed_after(out["pushed_after"], option=name("pushed_after"))
    if out["strategy"] == "backfill":
        # a backfill copies every image of the repositories a rule covers: it cannot honour an image filter
        for option, narrowed in (
            ("tag_regex", out["tag_regex"]),
            ("pushed_after", out["pushed_after"]),
            ("most_recent", out["most_recent"]),
            ("include_untagged", not out["include_untagged"]),
        ):
            if narrowed:
                raise OptionError(
                    name(option),
                    "narrows the selection to some images, but strategy backfill copies whole repositories; use "
                    "strategy auto (copies what a backfill cannot) or codebuild",
                )
    destinations = params.get("destinations") or []
    if not isinstance(destinations, list) or not all(isinstance(d, dict) for d in destinations):
        raise OptionError(name("destinations"), "must be a list of dicts with at least a region")
    if not destinations and not params.get("dest_region"):
        raise OptionError(
            name("dest_region"), "is required (playbook: -e dest_region=ap-northeast-2), or set " + name("destinations")
        )
    return out


def resolve_destinations(
    params: dict, source_account: str, source_region: str, strategy: str, prefix: str = "replicate_"
) -> list:
    """The destinations of a run, each with ``key`` (account/region), ``region``, ``account``, ``role_arn`` (the
    role the copy assumes; empty: the copy's own credentials), ``read_role_arn`` (the role the controller assumes to
    read it; empty: its own credentials) and ``external_id`` (a secret: never put into messages)."""
    entries = params.get("destinations") or [{"region": params.get("dest_region")}]
    resolved = []
    for index, entry in enumerate(entries):
        where = f"{prefix}destinations[{index}]" if params.get("destinations") else f"{prefix}dest_region"

        def option(field: str, single: str) -> str:
            return f"{where}.{field}" if params.get("destinations") and entry.get(field) else prefix + single

        fields = {"region", "account", "role_arn", "read_role_arn", "external_id", "external_id_parameter", "name"}
        unknown = sorted(set(entry) - fields)
        if unknown:
            raise OptionError(where, f"unknown field(s) {', '.join(unknown)}")
        region = validate_region(entry.get("region"), where if params.get("destinations") else prefix + "dest_region")
        account = entry.get("account") or params.get("dest_account") or source_account
        account = validate_account_id(str(account), option("account", "dest_account"))
        partition = partition_for_region(region)
        same_account = account == source_account
        if same_account and region == source_region:
            raise OptionError(
                option("region", "dest_region"),
                f"{region} in account {account} is the source registry itself: choose another region or account",
            )
        role_arn = entry.get("role_arn") or params.get("dest_role_arn") or ""
        if not role_arn and not (strategy == "local" and same_account):
            role_arn = _role_arn_for(partition, account, params.get("dest_role_name") or "ecr-replication-target")
        if role_arn:
            validate_role_arn(role_arn, option("role_arn", "dest_role_arn"))
            if account_of_role_arn(role_arn) != account:
                raise OptionError(
                    option("role_arn", "dest_role_arn"),
                    f"{role_arn} is a role of account {account_of_role_arn(role_arn)}, not of the destination "
                    f"account {account}",
                )
        read_role_arn = entry.get("read_role_arn") or params.get("dest_read_role_arn") or ""
        if not read_role_arn and not same_account:
            read_role_arn = _role_arn_for(
                partition, account, params.get("dest_read_role_name") or "ecr-replication-reader"
            )
        if read_role_arn:
            validate_role_arn(read_role_arn, option("read_role_arn", "dest_read_role_arn"))
        external_id = entry.get("external_id") or params.get("external_id") or ""
        parameter = ""
        if external_id:
            validate_external_id(external_id, option("external_id", "external_id"))
            parameter = (
                entry.get("external_id_parameter")
                or params.get("external_id_parameter")
                or external_id_parameter_name(account)
            )
            if not re.match(r"^/[\w.\-/]{1,1010}$", parameter):
                raise OptionError(
                    option("external_id_parameter", "external_id_parameter"),
                    f"must be an SSM parameter name starting with '/', got {parameter!r}",
                )
        resolved.append(
            {
                "key": f"{account}/{region}",
                "region": region,
                "account": account,
                "role_arn": role_arn,
                "read_role_arn": read_role_arn,
                "external_id": external_id,
                "external_id_parameter": parameter,
            }
        )
    keys = [d["key"] for d in resolved]
    twice = sorted({k for k in keys if keys.count(k) > 1})
    if twice:
        raise OptionError(prefix + "destinations", f"each destination must appear once: {', '.join(twice)} is repeated")
    return resolved


def external_id_parameter_name(dest_account: str) -> str:
    """Where provision.yml keeps the ExternalId of a destination account: an SSM SecureString in the source account
    and region, which builds read as a PARAMETER_STORE variable."""
    return f"/cloudops/ecr-replication/{dest_account}/external-id"


def check_repository_names(names: list, option: str, accounts_regions: list) -> None:
    """Exact repository names (globs are skipped) must fit a registry reference in every registry involved."""
    hosts = tuple(registry_host_for(account, region) for account, region in accounts_regions)
    for item in names:
        if not any(c in item for c in "*?["):
            validate_repository_name(item, option, hosts)
