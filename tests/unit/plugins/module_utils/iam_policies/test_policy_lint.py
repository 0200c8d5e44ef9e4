"""The generated policies pass parliament (IAM policy linter), and the linter does catch a widened policy.

parliament analyzes identity policies; a trust policy has no Resource, so trust policies are linted
with the role they belong to as Resource (what a trust policy implicitly applies to).
"""

from __future__ import annotations

import json

import pytest

from ansible_collections.cloudops.ecr_replication.plugins.module_utils import iam_policies as p

SRC, DST = "111111111111", "222222222222"
TARGET_ROLE = f"arn:aws:iam::{DST}:role/ecr-replication-target"
CODEBUILD_ROLE = f"arn:aws:iam::{SRC}:role/ecr-replication-codebuild"


# parliament's action database predates this CodeBuild condition key (AWS Service Authorization Reference,
# codebuild: "codebuild:environment.environmentVariables.name", list of strings, on StartBuild)
OUTDATED = (
    "UNKNOWN_CONDITION_FOR_ACTION",
    "Unknown condition codebuild:environment.environmentVariables.name for action codebuild:StartBuild",
)


# ECR's own use of a customer managed key needs grants (on exactly the named keys, only through ECR): permissions
# management by the community auditors' reading, by design.
KMS_GRANTS = {"kms:creategrant", "kms:retiregrant"}


def findings(parliament, policy, community=False):
    result = parliament.analyze_policy_string(json.dumps(policy), include_community_auditors=community)
    return [(f.issue, f.detail, f.location) for f in result.findings]


def identity_policies():
    for prefixes, all_repos in (([], True), (["team-a/", "app"], False)):
        for settings in (False, True):
            yield "codebuild_service", p.codebuild_service_policy(
                region="ap-south-1",
                account=SRC,
                log_group_name="/aws/codebuild/ecr-replication",
                repository_prefixes=prefixes,
                all_repositories=all_repos,
                destination_role_arns=[TARGET_ROLE],
                read_repository_settings=settings,
            )
            yield "reader_permissions", p.reader_permissions_policy(
                region="ap-northeast-2", account=DST, repository_prefixes=prefixes, all_repositories=all_repos
            )
            yield "target_permissions", p.target_permissions_policy(
                region="ap-northeast-2",
                account=DST,
                repository_prefixes=prefixes,
                all_repositories=all_repos,
                allow_repository_settings=settings,
            )
    yield "target_permissions_kms", p.target_permissions_policy(
        region="ap-northeast-2",
        account=DST,
        repository_prefixes=["team-a/"],
        kms_key_arns=[f"arn:aws:kms:ap-northeast-2:{DST}:key/0b1c2d3e-0000-4000-8000-000000000000"],
    )
    yield "codebuild_operator", p.codebuild_operator_policy(
        region="ap-south-1",
        account=SRC,
        project_name="ecr-replication",
        log_group_name="/aws/codebuild/ecr-replication",
    )
    yield "registry", {
        "Version": "2012-10-17",
        "Statement": [
            p.registry_replication_statement(
                source_account=SRC, region="ap-northeast-2", account=DST, repository_prefixes=["team-a/"]
            )
        ],
    }


def trust_policies():
    trust = p.codebuild_trust_policy(region="ap-south-1", account=SRC, project_name="ecr-replication")
    trust["Statement"][0]["Resource"] = CODEBUILD_ROLE
    yield trust
    trust = p.target_trust_policy(source_role_arn=CODEBUILD_ROLE, external_id="external-id")
    trust["Statement"][0]["Resource"] = TARGET_ROLE
    yield trust
    trust = p.reader_trust_policy(trusted_principals=[f"arn:aws:iam::{SRC}:root"], external_id="external-id")
    trust["Statement"][0]["Resource"] = f"arn:aws:iam::{DST}:role/ecr-replication-reader"
    yield trust


@pytest.mark.parametrize("policy", [doc for kind, doc in identity_policies()] + list(trust_policies()))
def test_no_findings(parliament, policy):
    assert [f for f in findings(parliament, policy) if f[:2] != OUTDATED] == []


@pytest.mark.parametrize("policy", [doc for kind, doc in identity_policies()] + list(trust_policies()))
def test_community_auditors_only_flag_the_credentials_by_design(parliament, policy):
    # GetAuthorizationToken and sts:AssumeRole return credentials: that is what the roles are for.
    for issue, detail, location in findings(parliament, policy, community=True):
        if (issue, detail) == OUTDATED:
            continue
        if issue == "PERMISSIONS_MANAGEMENT_ACTIONS" and set(location["actions"]) <= KMS_GRANTS:
            continue
        assert issue == "CREDENTIALS_EXPOSURE"
        assert set(location["actions"]) <= {"ecr:getauthorizationtoken", "sts:assumerole"}


def test_repository_policy_permission_is_flagged_as_permissions_management(parliament):
    # Why ecr:SetRepositoryPolicy has its own opt-in (target_role_allow_repository_policy).
    policy = p.target_permissions_policy(
        region="ap-northeast-2", account=DST, repository_prefixes=["team-a/"], allow_repository_policy=True
    )
    assert findings(parliament, policy) == []
    assert "PERMISSIONS_MANAGEMENT_ACTIONS" in {finding[0] for finding in findings(parliament, policy, True)}


def test_linter_catches_a_widened_policy(parliament):
    policy = p.target_permissions_policy(region="ap-northeast-2", account=DST, repository_prefixes=["team-a/"])
    policy["Statement"].append(
        {"Effect": "Allow", "Action": "ecr:PutImage", "Resource": f"arn:aws:logs:ap-northeast-2:{DST}:log-group:x"}
    )
    assert "RESOURCE_MISMATCH" in {finding[0] for finding in findings(parliament, policy)}
    policy["Statement"].append({"Effect": "Allow", "Action": "iam:*", "Resource": "*"})
    assert {"PRIVILEGE_ESCALATION", "PERMISSIONS_MANAGEMENT_ACTIONS"} <= {
        finding[0] for finding in findings(parliament, policy, True)
    }


def test_linter_catches_an_unknown_action(parliament):
    policy = p.target_permissions_policy(region="ap-northeast-2", account=DST, repository_prefixes=["team-a/"])
    policy["Statement"][1]["Action"].append("ecr:PushEverything")
    assert "UNKNOWN_ACTION" in {finding[0] for finding in findings(parliament, policy)}
