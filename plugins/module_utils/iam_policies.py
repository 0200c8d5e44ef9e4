# -*- coding: utf-8 -*-

# Copyright: Contributors to the cloudops.ecr_replication project
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""IAM policy documents for the replication roles, built by pure functions.

Everything the roles ``source_codebuild`` and ``target_role`` put into IAM (trust policies,
permission policies, the ECR registry policy statement) is built here from plain inputs, so
that unit tests assert the exact action and resource sets and widening a permission fails a
test. No AWS call, no Ansible import: the filter plugin ``cloudops.ecr_replication.iam_policies``
and the unit tests call these functions directly.

Every validation error is a :class:`validation.OptionError` naming the option it is about.
"""

from __future__ import annotations

import json
import re
from typing import Any
from typing import Iterable

from ansible_collections.cloudops.ecr_replication.plugins.module_utils.validation import OptionError
from ansible_collections.cloudops.ecr_replication.plugins.module_utils.validation import flag
from ansible_collections.cloudops.ecr_replication.plugins.module_utils.validation import partition_for_region
from ansible_collections.cloudops.ecr_replication.plugins.module_utils.validation import validate_account_id
from ansible_collections.cloudops.ecr_replication.plugins.module_utils.validation import validate_external_id
from ansible_collections.cloudops.ecr_replication.plugins.module_utils.validation import validate_log_group_name
from ansible_collections.cloudops.ecr_replication.plugins.module_utils.validation import validate_name
from ansible_collections.cloudops.ecr_replication.plugins.module_utils.validation import validate_principal_arns
from ansible_collections.cloudops.ecr_replication.plugins.module_utils.validation import validate_region
from ansible_collections.cloudops.ecr_replication.plugins.module_utils.validation import validate_role_arn
from ansible_collections.cloudops.ecr_replication.plugins.module_utils.validation import validate_role_arns

POLICY_VERSION = "2012-10-17"

# Read-only actions the build needs on a source repository (the copy program reads manifests,
# indexes, referrers and blobs; the comparison lists and describes images).
ECR_SOURCE_READ_ACTIONS = (
    "ecr:BatchCheckLayerAvailability",
    "ecr:BatchGetImage",
    "ecr:DescribeImages",
    "ecr:DescribeRepositories",
    "ecr:GetDownloadUrlForLayer",
    "ecr:ListImages",
)

# Only with ``read_repository_settings``: read what the build copies to a repository it creates when asked
# (replicator REPL_COPY_LIFECYCLE_POLICY / REPL_COPY_REPOSITORY_POLICY).
ECR_SOURCE_SETTINGS_ACTIONS = (
    "ecr:GetLifecyclePolicy",
    "ecr:GetRepositoryPolicy",
)

# Actions the build needs on a destination repository: create it when missing, describe and
# compare what is there, push layers and manifests (which also sets the tags), tag the repository.
ECR_TARGET_WRITE_ACTIONS = (
    "ecr:BatchCheckLayerAvailability",
    "ecr:BatchGetImage",
    "ecr:CompleteLayerUpload",
    "ecr:CreateRepository",
    "ecr:DescribeImages",
    "ecr:DescribeRepositories",
    "ecr:InitiateLayerUpload",
    "ecr:ListImages",
    "ecr:PutImage",
    "ecr:TagResource",
    "ecr:UploadLayerPart",
)

# Only with ``allow_repository_settings``: copy the source repository's settings to the destination.
ECR_TARGET_SETTINGS_ACTIONS = (
    "ecr:PutImageScanningConfiguration",
    "ecr:PutImageTagMutability",
    "ecr:PutLifecyclePolicy",
)

# Only with ``allow_repository_policy``: copy the source repository policy (a permissions-management action).
ECR_TARGET_POLICY_ACTIONS = ("ecr:SetRepositoryPolicy",)

# What ECR cross-account replication needs in the destination registry policy.
ECR_REPLICATION_ACTIONS = (
    "ecr:CreateRepository",
    "ecr:ReplicateImage",
)

# What the controller needs to compare a destination with the source and to verify a copy (the destination read
# role): list the registry's repositories (DescribeRepositories without names acts on repository/*) and describe
# the images of the repositories it copies to. Nothing that reads image contents, nothing that writes.
ECR_READER_LIST_ACTIONS = ("ecr:DescribeRepositories",)
ECR_READER_IMAGE_ACTIONS = ("ecr:DescribeImages",)

LOGS_WRITE_ACTIONS = (
    "logs:CreateLogStream",
    "logs:PutLogEvents",
)

# What the replication driver (replicate_images, strategy codebuild) calls on the project: start a batch's build,
# follow it, stop it on timeout or cancel, read the project (its concurrentBuildLimit), and read the build logs.
CODEBUILD_OPERATOR_ACTIONS = (
    "codebuild:BatchGetBuilds",
    "codebuild:BatchGetProjects",
    "codebuild:StartBuild",
    "codebuild:StopBuild",
)
LOGS_READ_ACTIONS = ("logs:GetLogEvents",)

# StartBuild fields the driver never sends, by the condition key CodeBuild sets when a request carries one. Each
# key is denied in a statement of its own (the keys of one Null block are ANDed: one statement naming them all
# would refuse only a request that carried every one). buildspecOverride (codebuild:source.buildspec, which
# supports only Null) would run any commands as the service role; the others swap the source, image, role,
# privileges, logs or outputs of the build. Never denied: environmentVariablesOverride (codebuild:environment,
# codebuild:environment.environmentVariables), which carries every batch.
CODEBUILD_DENIED_OVERRIDE_KEYS = (
    "codebuild:source.buildspec",
    "codebuild:source",
    "codebuild:source.location",
    "codebuild:secondarySources",
    "codebuild:artifacts",
    "codebuild:secondaryArtifacts",
    "codebuild:cache",
    "codebuild:environment.image",
    "codebuild:environment.type",
    "codebuild:environment.computeType",
    "codebuild:environment.certificate",
    "codebuild:environment.privilegedMode",
    "codebuild:environment.registryCredential",
    "codebuild:serviceRole",
    "codebuild:logsConfig",
    "codebuild:encryptionKey",
)
# Every variable the driver passes is REPL_* (replicator.ENV_DOC, batching.batch_env); any other name (BASH_ENV,
# LD_PRELOAD, PYTHONPATH, PATH, ...) can make the build's shell or python3 run something else.
CODEBUILD_ALLOWED_VARIABLE_NAMES = ("REPL_*",)

# Creating a repository encrypted with a customer managed key: ECR calls KMS with the caller's credentials
# (Amazon ECR User Guide, "Encryption at rest", required IAM permissions): DescribeKey and CreateGrant when the
# repository is created, RetireGrant when it is deleted. Granted on exactly the named keys, only through ECR.
KMS_ECR_KEY_ACTIONS = (
    "kms:CreateGrant",
    "kms:DescribeKey",
    "kms:RetireGrant",
)

ECR_AUTH_ACTION = "ecr:GetAuthorizationToken"
STS_ASSUME_ROLE_ACTION = "sts:AssumeRole"
CODEBUILD_SERVICE_PRINCIPAL = "codebuild.amazonaws.com"

_PREFIX_RE = re.compile(r"^[a-z0-9][a-z0-9._/-]*$")
_SID_RE = re.compile(r"^[A-Za-z0-9]+$")


def validate_repository_prefixes(prefixes: Any, all_repositories: bool, option: str) -> list[str]:
    """Return the sorted, de-duplicated prefixes, or ``["*"]`` semantics via ``all_repositories``.

    ``*`` (or an empty prefix, which matches everything) is refused: granting every repository
    must be asked for explicitly with the ``all_repositories`` flag.
    """
    if flag(all_repositories, "all_repositories"):
        if prefixes:
            raise OptionError(option, "must be empty when all repositories are allowed (all_repositories: true)")
        return []
    if prefixes is None or isinstance(prefixes, str) or not isinstance(prefixes, (list, tuple)):
        raise OptionError(option, "must be a list of repository name prefixes")
    if not prefixes:
        raise OptionError(
            option, "must name at least one repository prefix (or set all_repositories: true to allow every repository)"
        )
    result = set()
    for prefix in prefixes:
        prefix = "" if prefix is None else str(prefix)
        if "*" in prefix or prefix == "":
            raise OptionError(
                option, f"{prefix!r} would match every repository; set all_repositories: true to ask for that"
            )
        if not _PREFIX_RE.match(prefix) or len(prefix) > 256:
            raise OptionError(
                option, f"{prefix!r} is not a repository name prefix (lowercase letters, digits, '.', '_', '-', '/')"
            )
        result.add(prefix)
    # A prefix covered by a shorter one adds nothing.
    ordered = sorted(result)
    return [p for p in ordered if not any(p != q and p.startswith(q) for q in ordered)]


def ecr_repository_arns(
    region: str, account: str, prefixes: Iterable[str], all_repositories: bool = False
) -> list[str]:
    """Repository ARNs for the prefixes (``repository/<prefix>*``), or ``repository/*`` for all."""
    partition = partition_for_region(region)
    base = f"arn:{partition}:ecr:{region}:{account}:repository/"
    if flag(all_repositories, "all_repositories"):
        return [base + "*"]
    return [f"{base}{prefix}*" for prefix in prefixes]


def log_group_arns(region: str, account: str, log_group_name: str) -> list[str]:
    """The log group ARN and its log streams' ARN (``PutLogEvents`` acts on streams)."""
    partition = partition_for_region(region)
    arn = f"arn:{partition}:logs:{region}:{account}:log-group:{log_group_name}"
    return [arn, f"{arn}:log-stream:*"]


def codebuild_project_arn(region: str, account: str, project_name: str) -> str:
    return f"arn:{partition_for_region(region)}:codebuild:{region}:{account}:project/{project_name}"


def _statement(sid: str, actions: Iterable[str], resources: Iterable[str], **extra: Any) -> dict:
    actions = sorted(set(actions))
    resources = sorted(set(resources))
    statement = {
        "Sid": sid,
        "Effect": "Allow",
        "Action": actions[0] if len(actions) == 1 else actions,
        "Resource": resources[0] if len(resources) == 1 else resources,
    }
    statement.update(extra)
    return statement


def codebuild_trust_policy(*, region: str, account: str, project_name: str, restrict_to_project: bool = False) -> dict:
    """Trust policy of the CodeBuild service role: only CodeBuild, only on behalf of this account.

    ``restrict_to_project`` adds ``aws:SourceArn`` = the project ARN (CodeBuild's confused-deputy
    guidance; the role source_codebuild turns it on by default).
    """
    region = validate_region(region, "region")
    account = validate_account_id(account, "account")
    project_name = validate_name(project_name, "project_name")
    condition: dict[str, Any] = {"StringEquals": {"aws:SourceAccount": account}}
    if flag(restrict_to_project, "restrict_to_project"):
        condition["ArnLike"] = {"aws:SourceArn": codebuild_project_arn(region, account, project_name)}
    return {
        "Version": POLICY_VERSION,
        "Statement": [
            {
                "Sid": "CodeBuildAssumeRole",
                "Effect": "Allow",
                "Principal": {"Service": CODEBUILD_SERVICE_PRINCIPAL},
                "Action": STS_ASSUME_ROLE_ACTION,
                "Condition": condition,
            }
        ],
    }


def codebuild_service_policy(
    *,
    region: str,
    account: str,
    log_group_name: str,
    repository_prefixes: Any,
    destination_role_arns: Any,
    all_repositories: bool = False,
    read_repository_settings: bool = False,
    external_id_parameters: Any = None,
) -> dict:
    """Permissions of the CodeBuild service role (source account). ``external_id_parameters``: the SSM
    SecureStrings builds read the ExternalId from (``PARAMETER_STORE`` variables; the AWS managed ``aws/ssm`` key
    decrypts for any principal of the account that may read the parameter)."""
    region = validate_region(region, "region")
    account = validate_account_id(account, "account")
    log_group_name = validate_log_group_name(log_group_name, "log_group_name")
    prefixes = validate_repository_prefixes(repository_prefixes, all_repositories, "repository_prefixes")
    role_arns = validate_role_arns(destination_role_arns, "destination_role_arns")
    return {
        "Version": POLICY_VERSION,
        "Statement": [
            _statement("WriteBuildLogs", LOGS_WRITE_ACTIONS, log_group_arns(region, account, log_group_name)),
            _statement("GetEcrAuthorizationToken", [ECR_AUTH_ACTION], ["*"]),
            _statement(
                "ReadSourceRepositories",
                ECR_SOURCE_READ_ACTIONS
                + (ECR_SOURCE_SETTINGS_ACTIONS if flag(read_repository_settings, "read_repository_settings") else ()),
                ecr_repository_arns(region, account, prefixes, all_repositories),
            ),
            _statement("AssumeDestinationRoles", [STS_ASSUME_ROLE_ACTION], role_arns),
        ]
        + (
            [_statement("ReadExternalIds", ["ssm:GetParameters"],
                        ssm_parameter_arns(region, account, external_id_parameters))]
            if external_id_parameters
            else []
        ),
    }


def _deny_sid(key: str) -> str:
    """``codebuild:environment.privilegedMode`` -> ``DenyEnvironmentPrivilegedModeOverride``."""
    words = re.split(r"[^A-Za-z0-9]+", key.split(":", 1)[1])
    return "Deny" + "".join(w[:1].upper() + w[1:] for w in words if w) + "Override"


def codebuild_operator_policy(*, region: str, account: str, project_name: str, log_group_name: str) -> dict:
    """The customer managed policy of the people and roles that run the replication with ``strategy: codebuild``:
    start, follow, stop and read exactly this project's builds, read their logs; and never with a buildspec (or
    another override the driver does not send) nor a variable outside ``REPL_*``. An explicit Deny wins over any
    Allow the principal has elsewhere, so attaching this policy also fences a broader ``codebuild:StartBuild``."""
    region = validate_region(region, "region")
    account = validate_account_id(account, "account")
    project_name = validate_name(project_name, "project_name")
    log_group_name = validate_log_group_name(log_group_name, "log_group_name")
    project = codebuild_project_arn(region, account, project_name)
    denies = [
        {
            "Sid": _deny_sid(key),
            "Effect": "Deny",
            "Action": "codebuild:StartBuild",
            "Resource": project,
            "Condition": {"Null": {key: "false"}},
        }
        for key in CODEBUILD_DENIED_OVERRIDE_KEYS
    ]
    denies.append(
        {
            "Sid": "DenyVariablesOutsideReplication",
            "Effect": "Deny",
            "Action": "codebuild:StartBuild",
            "Resource": project,
            "Condition": {
                "ForAnyValue:StringNotLike": {
                    "codebuild:environment.environmentVariables.name": list(CODEBUILD_ALLOWED_VARIABLE_NAMES)
                }
            },
        }
    )
    return {
        "Version": POLICY_VERSION,
        "Statement": [
            _statement("RunReplicationBuilds", CODEBUILD_OPERATOR_ACTIONS, [project]),
            _statement(
                "ReadReplicationBuildLogs", LOGS_READ_ACTIONS, [log_group_arns(region, account, log_group_name)[1]]
            ),
        ]
        + denies,
    }


def ssm_parameter_arns(region: str, account: str, names: Any) -> list[str]:
    """ARNs of SSM parameters given by name (``/a/b`` -> ``...:parameter/a/b``)."""
    if isinstance(names, str) or not isinstance(names, (list, tuple)):
        raise OptionError("external_id_parameters", "must be a list of SSM parameter names")
    arns = []
    for name in names:
        if not isinstance(name, str) or not name.startswith("/") or len(name) > 1011:
            raise OptionError("external_id_parameters", f"{name!r} is not an SSM parameter name starting with '/'")
        arns.append(f"arn:{partition_for_region(region)}:ssm:{region}:{account}:parameter{name}")
    return sorted(set(arns))


def target_trust_policy(*, source_role_arn: str, external_id: str, local_principals: Any = None) -> dict:
    """Trust policy of the destination role: the source CodeBuild role, and the principals that run
    ``strategy: local`` copies from a controller (``local_principals``), only with the external id."""
    source_role_arn = validate_role_arn(source_role_arn, "source_role_arn")
    if not local_principals:
        return _external_id_trust("SourceCodeBuildAssumeRole", source_role_arn, external_id)
    principals = sorted(set([source_role_arn] + validate_principal_arns(local_principals, "local_principals")))
    return _external_id_trust("SourceCodeBuildAssumeRole", principals, external_id)


def _external_id_trust(sid: str, principal: Any, external_id: str) -> dict:
    """A trust policy: ``principal`` (an ARN or a list of them) may assume the role, only with the external id."""
    external_id = validate_external_id(external_id, "external_id")
    return {
        "Version": POLICY_VERSION,
        "Statement": [
            {
                "Sid": sid,
                "Effect": "Allow",
                "Principal": {"AWS": principal},
                "Action": STS_ASSUME_ROLE_ACTION,
                "Condition": {"StringEquals": {"sts:ExternalId": external_id}},
            }
        ],
    }


def validate_regions(region: Any, extra_regions: Any) -> list[str]:
    """``region`` and the ``extra_regions`` (IAM roles are global: one role may serve several regions), unique."""
    if extra_regions is None:
        extra_regions = []
    if isinstance(extra_regions, str) or not isinstance(extra_regions, (list, tuple)):
        raise OptionError("extra_regions", "must be a list of AWS region names")
    regions = [validate_region(region, "region")] + [validate_region(r, "extra_regions") for r in extra_regions]
    return list(dict.fromkeys(regions))


def _repository_arns_in(regions: Iterable[str], account: str, prefixes: Iterable[str], all_repositories: Any):
    return [arn for region in regions for arn in ecr_repository_arns(region, account, prefixes, all_repositories)]


def target_permissions_policy(
    *,
    region: str,
    account: str,
    repository_prefixes: Any,
    all_repositories: bool = False,
    allow_repository_settings: bool = False,
    allow_repository_policy: bool = False,
    extra_regions: Any = None,
    kms_key_arns: Any = None,
) -> dict:
    """Permissions of the destination role: push into repositories under the prefixes (in ``region`` and each of
    ``extra_regions``); with ``kms_key_arns``, create repositories encrypted with those customer managed keys
    (``KMS_ECR_KEY_ACTIONS`` on exactly these key ARNs, only through ECR in the key's region)."""
    regions = validate_regions(region, extra_regions)
    account = validate_account_id(account, "account")
    prefixes = validate_repository_prefixes(repository_prefixes, all_repositories, "repository_prefixes")
    keys = validate_kms_key_arns(kms_key_arns, regions, "kms_key_arns")
    actions = list(ECR_TARGET_WRITE_ACTIONS)
    if flag(allow_repository_settings, "allow_repository_settings"):
        actions.extend(ECR_TARGET_SETTINGS_ACTIONS)
    if flag(allow_repository_policy, "allow_repository_policy"):
        actions.extend(ECR_TARGET_POLICY_ACTIONS)
    return {
        "Version": POLICY_VERSION,
        "Statement": [
            _statement("GetEcrAuthorizationToken", [ECR_AUTH_ACTION], ["*"]),
            _statement(
                "WriteDestinationRepositories",
                actions,
                _repository_arns_in(regions, account, prefixes, all_repositories),
            ),
        ]
        + [
            _statement(
                "UseKmsKeyThroughEcr",
                KMS_ECR_KEY_ACTIONS,
                keys,
                Condition={
                    "StringEquals": {
                        "kms:ViaService": sorted({f"ecr.{arn.split(':')[3]}.amazonaws.com" for arn in keys})
                    }
                },
            )
        ]
        * bool(keys),
    }


_KMS_KEY_ARN_RE = re.compile(
    r"^arn:aws(-cn|-us-gov)?:kms:(?P<region>[a-z0-9-]+):[0-9]{12}:key/"
    r"([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|mrk-[0-9a-f]{32})$"
)


def validate_kms_key_arns(values: Any, regions: Iterable[str], option: str) -> list[str]:
    """Key ARNs (an IAM policy names keys by ARN: an alias is no resource), each in one of ``regions`` (ECR uses a
    key of the repository's region)."""
    if values is None or values == "" or values == []:
        return []
    if isinstance(values, str):
        values = [values]
    if not isinstance(values, (list, tuple)):
        raise OptionError(option, "must be a list of KMS key ARNs")
    regions = list(regions)
    keys = []
    for value in values:
        match = _KMS_KEY_ARN_RE.match(str(value or ""))
        if not match:
            raise OptionError(
                option,
                f"{value!r} is not a KMS key ARN (arn:aws:kms:<region>:<account>:key/<key id>; an IAM policy cannot "
                "name a key by alias)",
            )
        if match.group("region") not in regions:
            raise OptionError(
                option, f"{value} is a key of {match.group('region')}, not of the destination regions {regions}"
            )
        keys.append(str(value))
    return sorted(set(keys))


def reader_trust_policy(*, trusted_principals: Any, external_id: str) -> dict:
    """Trust policy of the destination read role: the principals that run the comparison (by default the source
    account), only with the external id."""
    principals = validate_principal_arns(trusted_principals, "trusted_principals")
    return _external_id_trust(
        "ReplicationControllerAssumeRole", principals[0] if len(principals) == 1 else principals, external_id
    )


def reader_permissions_policy(
    *, region: str, account: str, repository_prefixes: Any, all_repositories: bool = False, extra_regions: Any = None
) -> dict:
    """Permissions of the destination read role: list the repositories, describe the images of those under the
    prefixes (what ecr_image_info's comparison reads), in ``region`` and each of ``extra_regions``."""
    regions = validate_regions(region, extra_regions)
    account = validate_account_id(account, "account")
    prefixes = validate_repository_prefixes(repository_prefixes, all_repositories, "repository_prefixes")
    return {
        "Version": POLICY_VERSION,
        "Statement": [
            _statement(
                "ListDestinationRepositories",
                ECR_READER_LIST_ACTIONS,
                _repository_arns_in(regions, account, [], True),
            ),
            _statement(
                "DescribeDestinationImages",
                ECR_READER_IMAGE_ACTIONS,
                _repository_arns_in(regions, account, prefixes, all_repositories),
            ),
        ],
    }


def replication_statement_sid(source_account: str) -> str:
    return f"EcrReplicationFrom{source_account}"


def registry_replication_statement(
    *,
    source_account: str,
    region: str,
    account: str,
    repository_prefixes: Any,
    all_repositories: bool = False,
) -> dict:
    """The destination registry policy statement that lets the source account replicate into it."""
    source_account = validate_account_id(source_account, "source_account")
    region = validate_region(region, "region")
    account = validate_account_id(account, "account")
    prefixes = validate_repository_prefixes(repository_prefixes, all_repositories, "repository_prefixes")
    partition = partition_for_region(region)
    return _statement(
        replication_statement_sid(source_account),
        ECR_REPLICATION_ACTIONS,
        ecr_repository_arns(region, account, prefixes, all_repositories),
        Principal={"AWS": f"arn:{partition}:iam::{source_account}:root"},
    )


def _statements(policy: Any) -> list[dict]:
    if not policy:
        return []
    if isinstance(policy, str):
        policy = json.loads(policy)
    statements = policy.get("Statement", [])
    if isinstance(statements, dict):
        statements = [statements]
    return list(statements)


def merge_policy_statements(policy: Any, statements: Iterable[dict]) -> dict:
    """Put ``statements`` into ``policy`` by ``Sid``: same Sid replaced, others kept untouched."""
    new = list(statements)
    for statement in new:
        sid = statement.get("Sid", "")
        if not _SID_RE.match(sid):
            raise OptionError("statements", f"every managed statement needs an alphanumeric Sid, got {sid!r}")
    sids = {s["Sid"] for s in new}
    kept = [s for s in _statements(policy) if s.get("Sid") not in sids]
    return {"Version": POLICY_VERSION, "Statement": kept + new}


def remove_policy_statements(policy: Any, sids: Iterable[str]) -> dict | None:
    """Remove the statements with these Sids; ``None`` when nothing is left."""
    sids = set(sids)
    kept = [s for s in _statements(policy) if s.get("Sid") not in sids]
    if not kept:
        return None
    return {"Version": POLICY_VERSION, "Statement": kept}


def _as_list(value: Any) -> list:
    if value is None:
        return []
    if isinstance(value, (list, tuple)):
        return list(value)
    return [value]


def normalize_policy(policy: Any) -> dict | None:
    """A comparable form: statements sorted by Sid, actions/resources sorted lists."""
    if policy is None or policy == "":
        return None
    if isinstance(policy, str):
        policy = json.loads(policy)
    statements = []
    for statement in _statements(policy):
        statement = dict(statement)
        for key in ("Action", "NotAction", "Resource", "NotResource"):
            if key in statement:
                statement[key] = sorted(_as_list(statement[key]))
        statements.append(statement)
    statements.sort(key=lambda s: (s.get("Sid", ""), json.dumps(s, sort_keys=True)))
    return {"Version": policy.get("Version", POLICY_VERSION), "Statement": statements}


def policies_equal(a: Any, b: Any) -> bool:
    return normalize_policy(a) == normalize_policy(b)


def action_resource_pairs(policy: Any) -> set[tuple[str, str]]:
    """Every (action, resource) an Allow policy grants, for exact assertions in tests."""
    pairs = set()
    for statement in _statements(policy):
        if statement.get("Effect") != "Allow":
            continue
        for action in _as_list(statement.get("Action")):
            for resource in _as_list(statement.get("Resource")):
                pairs.add((action, resource))
    return pairs
