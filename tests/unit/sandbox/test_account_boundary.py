# Copyright: Contributors to the cloudops.ecr_replication project
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The sandbox's account boundary for ECR calls (tests/sandbox/policy.py check_account_boundary): a call naming
another account's registry is refused unless that account's registry or repository policy allows the caller."""

from __future__ import annotations

import json

import pytest

from tests.sandbox import policy

SRC = "111111111111"
DST = "222222222222"
REGION = "ap-northeast-2"
USER = f"arn:aws:iam::{SRC}:user/sandbox-admin"
SESSION = f"arn:aws:sts::{SRC}:assumed-role/ecr-replication-codebuild/build-1"


def document(*statements) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def grant(action, principal=SRC, resource=None, effect="Allow", **extra):
    statement = {"Effect": effect, "Principal": {"AWS": principal}, "Action": action, **extra}
    if resource is not None:
        statement["Resource"] = resource
    return statement


def boundary(operation, body, caller=USER, registry_policy=None, repository_policies=None, account=SRC):
    """Run the check with these stored policies; returns (owner, the lookups it made)."""
    lookups = []

    def policies(owner, region, repository):
        lookups.append((owner, region, repository))
        return registry_policy, (repository_policies or {}).get(repository)

    return policy.check_account_boundary(lambda: caller, operation, body, account, REGION, policies), lookups


def denied(operation, body, **kwargs) -> str:
    with pytest.raises(policy.CrossAccountDenied) as error:
        boundary(operation, body, **kwargs)
    return str(error.value)


def test_own_registry_looks_nothing_up_another_is_refused():
    def no_caller():
        raise AssertionError("the caller's ARN is looked up only for a cross-account call")

    for body in (
        {},
        {"registryId": SRC, "repositoryName": "a"},
        {"resourceArn": f"arn:aws:ecr:{REGION}:{SRC}:repository/a"},
    ):
        assert policy.check_account_boundary(no_caller, "DescribeImages", body, SRC, REGION, None) is None
        # the same call with the other account in it (every way a call can name a registry) is refused
        other = {key: value.replace(SRC, DST) for key, value in body.items()} or {"registryId": DST}
        denied("DescribeImages", dict(other, repositoryName="a"))
    assert (
        policy.check_account_boundary(no_caller, "GetAuthorizationToken", {"registryIds": [SRC]}, SRC, REGION, None)
        is None
    )
    denied("GetAuthorizationToken", {"registryIds": [DST]})


@pytest.mark.parametrize(
    "operation, body, resource",
    [
        ("CreateRepository", {"registryId": DST, "repositoryName": "xx"}, f"arn:aws:ecr:{REGION}:{DST}:repository/xx"),
        ("DescribeRepositories", {"registryId": DST}, f"arn:aws:ecr:{REGION}:{DST}:repository/*"),
        (
            "DescribeImages",
            {"registryId": DST, "repositoryName": "team-a/api"},
            f"arn:aws:ecr:{REGION}:{DST}:repository/team-a/api",
        ),
        (
            "TagResource",
            {"resourceArn": f"arn:aws:ecr:{REGION}:{DST}:repository/t"},
            f"arn:aws:ecr:{REGION}:{DST}:repository/t",
        ),
        ("GetAuthorizationToken", {"registryIds": [SRC, DST]}, f"arn:aws:ecr:{REGION}:{DST}:repository/*"),
        ("DescribeRegistry", {"registryId": DST}, f"arn:aws:ecr:{REGION}:{DST}:repository/*"),
        (
            "DescribeImages",
            {"registryId": "not-an-account", "repositoryName": "a"},
            f"arn:aws:ecr:{REGION}:not-an-account:repository/*",
        ),
    ],
)
def test_another_registry_without_a_policy_is_refused_in_aws_words(operation, body, resource):
    assert denied(operation, body) == (
        f"User: {USER} is not authorized to perform: ecr:{operation} on resource: {resource} "
        f"because no resource-based policy allows the ecr:{operation} action"
    )


def test_registry_policy_allows_what_it_names_to_whom_it_names():
    registry = document(
        grant(
            ["ecr:CreateRepository", "ecr:ReplicateImage"],
            f"arn:aws:iam::{SRC}:root",
            f"arn:aws:ecr:{REGION}:{DST}:repository/team-a/*",
        )
    )
    owner, lookups = boundary(
        "CreateRepository", {"registryId": DST, "repositoryName": "team-a/new"}, registry_policy=registry
    )
    assert owner == DST
    assert lookups == [(DST, REGION, "team-a/new")]
    # another repository, another action, another account's caller: still refused
    denied("CreateRepository", {"registryId": DST, "repositoryName": "team-b/new"}, registry_policy=registry)
    denied("DeleteRepository", {"registryId": DST, "repositoryName": "team-a/new"}, registry_policy=registry)
    denied(
        "CreateRepository",
        {"registryId": DST, "repositoryName": "team-a/new"},
        registry_policy=registry,
        caller="arn:aws:iam::333333333333:user/u",
        account="333333333333",
    )


def test_repository_policy_allows_its_repository_and_names_roles_by_their_sessions():
    repo = document(
        grant(
            ["ecr:DescribeImages", "ecr:DescribeRepositories"],
            f"arn:aws:iam::{SRC}:role/service/ecr-replication-codebuild",
        )
    )
    policies = {"team-a/api": repo}
    body = {"registryId": DST, "repositoryName": "team-a/api"}
    assert boundary("DescribeImages", body, caller=SESSION, repository_policies=policies)[0] == DST
    # the user of the same account is not that role; another repository has no such policy
    denied("DescribeImages", body, caller=USER, repository_policies=policies)
    denied("DescribeImages", dict(body, repositoryName="team-a/worker"), caller=SESSION, repository_policies=policies)
    # every named repository must be allowed
    names = {"registryId": DST, "repositoryNames": ["team-a/api", "team-a/worker"]}
    message = denied("DescribeRepositories", names, caller=SESSION, repository_policies=policies)
    assert message.endswith("because no resource-based policy allows the ecr:DescribeRepositories action")
    assert "repository/team-a/worker" in message


@pytest.mark.parametrize("principal", ["*", SRC, f"arn:aws:iam::{SRC}:root", USER])
def test_principals_that_name_the_caller(principal):
    repo = document(grant("ecr:ListImages", principal))
    assert (
        boundary("ListImages", {"registryId": DST, "repositoryName": "r1"}, repository_policies={"r1": repo})[0] == DST
    )


def test_explicit_deny_wins_and_a_conditional_allow_grants_nothing():
    allow = grant("ecr:*", "*")
    deny = grant("ecr:PutImage", SRC, effect="Deny")
    body = {"registryId": DST, "repositoryName": "r1"}
    assert boundary("PutImage", body, repository_policies={"r1": document(allow)})[0] == DST
    message = denied(
        "PutImage",
        body,
        registry_policy=document(dict(allow, Resource="*")),
        repository_policies={"r1": document(deny)},
    )
    assert message.endswith("with an explicit deny in a resource-based policy")
    conditional = grant("ecr:*", "*", Condition={"StringEquals": {"aws:PrincipalOrgID": "o-123"}})
    denied("PutImage", body, repository_policies={"r1": document(conditional)})


def test_get_authorization_token_for_two_other_registries_needs_both():
    registry = document(grant("ecr:GetAuthorizationToken", SRC, "*"))
    with pytest.raises(policy.CrossAccountDenied):
        policy.check_account_boundary(
            lambda: USER,
            "GetAuthorizationToken",
            {"registryIds": [DST, "333333333333"]},
            SRC,
            REGION,
            lambda owner, region, name: (registry if owner == DST else None, None),
        )
