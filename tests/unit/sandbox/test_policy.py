# Copyright: Contributors to the cloudops.ecr_replication project
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The sandbox's identity-policy evaluation for ECR calls (tests/sandbox/policy.py), on the collection's own
policy documents: what they allow, and that a narrower or denying document is refused."""

from __future__ import annotations

import json

import pytest

from ansible_collections.cloudops.ecr_replication.plugins.module_utils import iam_policies
from tests.sandbox import policy

DST = "222222222222"
REGION = "ap-northeast-2"
CALLER = f"arn:aws:sts::{DST}:assumed-role/ecr-replication-reader/tests"
READER = iam_policies.reader_permissions_policy(region=REGION, account=DST, repository_prefixes=["team-a/"])
TARGET = iam_policies.target_permissions_policy(region=REGION, account=DST, repository_prefixes=["team-a/"])


def allowed(documents, operation, **body):
    try:
        policy.check(CALLER, documents, operation, body, DST, REGION)
    except policy.Denied:
        return False
    return True


@pytest.mark.parametrize(
    "operation, body, resources",
    [
        ("GetAuthorizationToken", {}, ["*"]),
        ("DescribeRepositories", {}, [f"arn:aws:ecr:{REGION}:{DST}:repository/*"]),
        (
            "DescribeRepositories",
            {"repositoryNames": ["a", "b"]},
            [f"arn:aws:ecr:{REGION}:{DST}:repository/a", f"arn:aws:ecr:{REGION}:{DST}:repository/b"],
        ),
        ("DescribeImages", {"repositoryName": "x", "registryId": "333333333333"}, [f"arn:aws:ecr:{REGION}:333333333333:repository/x"]),
        ("TagResource", {"resourceArn": "arn:aws:ecr:eu-west-1:1:repository/y"}, ["arn:aws:ecr:eu-west-1:1:repository/y"]),
        ("PutRegistryPolicy", {"policyText": "{}"}, ["*"]),
    ],
)
def test_resources_of_a_call(operation, body, resources):
    assert policy.ecr_resources(operation, body, DST, REGION) == resources


def test_reader_lists_the_registry_and_describes_images_under_its_prefixes():
    assert allowed([READER], "DescribeRepositories")
    assert allowed([READER], "DescribeImages", repositoryName="team-a/api")
    assert not allowed([READER], "DescribeImages", repositoryName="team-b/web")
    assert not allowed([READER], "DescribeImages", repositoryName="team-a/api", registryId="333333333333")


@pytest.mark.parametrize(
    "operation",
    ["PutImage", "CreateRepository", "BatchGetImage", "GetDownloadUrlForLayer", "BatchDeleteImage", "GetAuthorizationToken"],
)
def test_reader_cannot_write_or_read_contents(operation):
    assert not allowed([READER], operation, repositoryName="team-a/api")


def test_target_role_pushes_under_its_prefixes_only_and_never_deletes():
    assert allowed([TARGET], "GetAuthorizationToken")
    assert allowed([TARGET], "PutImage", repositoryName="team-a/api")
    assert allowed([TARGET], "DescribeRepositories", repositoryNames=["team-a/api"])
    assert not allowed([TARGET], "DescribeRepositories")  # listing the registry is not in its policy
    assert not allowed([TARGET], "PutImage", repositoryName="other")
    assert not allowed([TARGET], "BatchDeleteImage", repositoryName="team-a/api")


def test_deny_wins_and_documents_may_be_json_text():
    deny = {"Statement": [{"Effect": "Deny", "Action": "ecr:Describe*", "Resource": "*"}]}
    assert not allowed([json.dumps(READER), deny], "DescribeImages", repositoryName="team-a/api")
    assert allowed([json.dumps(READER)], "DescribeImages", repositoryName="team-a/api")


def test_not_action_not_resource_and_conditions():
    everything_but_delete = {
        "Statement": [{"Effect": "Allow", "NotAction": "ecr:BatchDeleteImage", "NotResource": "arn:aws:ecr:*:*:repository/secret"}]
    }
    assert allowed([everything_but_delete], "PutImage", repositoryName="team-a/api")
    assert not allowed([everything_but_delete], "BatchDeleteImage", repositoryName="team-a/api")
    assert not allowed([everything_but_delete], "PutImage", repositoryName="secret")
    conditional = {"Statement": [{"Effect": "Allow", "Action": "ecr:*", "Resource": "*", "Condition": {"Bool": {"x": "true"}}}]}
    assert not allowed([conditional], "PutImage", repositoryName="team-a/api")


def test_no_policy_allows_nothing_and_the_message_names_action_and_resource():
    with pytest.raises(policy.Denied) as denied:
        policy.check(CALLER, [], "DescribeImages", {"repositoryName": "team-a/api"}, DST, REGION)
    message = str(denied.value)
    assert CALLER in message and "ecr:DescribeImages" in message
    assert f"arn:aws:ecr:{REGION}:{DST}:repository/team-a/api" in message
