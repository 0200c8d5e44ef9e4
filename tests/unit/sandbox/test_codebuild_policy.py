# Copyright: Contributors to the cloudops.ecr_replication project
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The sandbox's evaluation of CodeBuild calls of assumed roles (tests/sandbox/policy.py), on the collection's
operator policy (iam_policies.codebuild_operator_policy): what the driver sends is allowed, a buildspecOverride or
another override is refused by the explicit Deny, and without the Deny it would be allowed."""

from __future__ import annotations

import copy

import pytest

from ansible_collections.cloudops.ecr_replication.plugins.module_utils import iam_policies
from tests.sandbox import policy

SRC = "111111111111"
REGION = "ap-south-1"
PROJECT = "ecr-replication"
CALLER = f"arn:aws:sts::{SRC}:assumed-role/replication-operator/tests"
OPERATOR = iam_policies.codebuild_operator_policy(
    region=REGION, account=SRC, project_name=PROJECT, log_group_name=f"/aws/codebuild/{PROJECT}"
)
PROJECT_ARN = f"arn:aws:codebuild:{REGION}:{SRC}:project/{PROJECT}"
DRIVER_START = {
    "projectName": PROJECT,
    "environmentVariablesOverride": [
        {"name": "REPL_DEST_REGION", "value": "ap-northeast-2", "type": "PLAINTEXT"},
        {
            "name": "REPL_EXTERNAL_ID",
            "value": "/cloudops/ecr-replication/222222222222/external-id",
            "type": "PARAMETER_STORE",
        },
        {"name": "REPL_BATCH_PARTS", "value": "1", "type": "PLAINTEXT"},
    ],
}


def refusal(documents, operation, body):
    try:
        policy.check_codebuild(CALLER, documents, operation, body, SRC, REGION)
    except policy.Denied as exc:
        return str(exc)
    return None


def without(document, sid):
    document = copy.deepcopy(document)
    document["Statement"] = [s for s in document["Statement"] if s.get("Sid") != sid]
    return document


def test_what_the_driver_sends_is_allowed_on_this_project_only():
    assert refusal([OPERATOR], "StartBuild", DRIVER_START) is None
    assert refusal([OPERATOR], "BatchGetProjects", {"names": [PROJECT]}) is None
    build_arn = f"arn:aws:codebuild:{REGION}:{SRC}:build/{PROJECT}:1"
    assert refusal([OPERATOR], "BatchGetBuilds", {"ids": [f"{PROJECT}:0b6c", build_arn]}) is None
    assert refusal([OPERATOR], "StopBuild", {"id": f"{PROJECT}:0b6c"}) is None
    message = refusal([OPERATOR], "StartBuild", dict(DRIVER_START, projectName="other"))
    assert message and "because no identity-based policy allows" in message
    assert refusal([OPERATOR], "BatchGetBuilds", {"ids": ["other:1"]})
    assert refusal([], "StartBuild", DRIVER_START)


@pytest.mark.parametrize(
    "override",
    [
        {"buildspecOverride": "version: 0.2\nphases: {build: {commands: [id]}}"},
        {"imageOverride": "attacker/image"},
        {"serviceRoleOverride": "arn:aws:iam::111111111111:role/admin"},
        {"privilegedModeOverride": True},
        {"logsConfigOverride": {"cloudWatchLogs": {"status": "DISABLED"}}},
        {"secondarySourcesOverride": [{"type": "S3", "location": "bucket/x"}]},
        {"sourceTypeOverride": "S3", "sourceLocationOverride": "bucket/x"},
        {"environmentVariablesOverride": [{"name": "BASH_ENV", "value": "$(id)"}]},
    ],
)
def test_an_override_the_driver_never_sends_is_refused_by_an_explicit_deny(override):
    body = dict(DRIVER_START, **override)
    message = refusal([OPERATOR], "StartBuild", body)
    assert message and "with an explicit deny in an identity-based policy" in message


def test_the_buildspec_deny_is_what_refuses_a_buildspec_override():
    body = dict(DRIVER_START, buildspecOverride="version: 0.2")
    assert refusal([without(OPERATOR, "DenySourceBuildspecOverride")], "StartBuild", body) is None
    # a broader Allow elsewhere does not lift the Deny
    broad = {"Statement": [{"Effect": "Allow", "Action": "codebuild:*", "Resource": "*"}]}
    assert refusal([broad, OPERATOR], "StartBuild", body)
    assert refusal([broad], "StartBuild", body) is None


def test_one_statement_per_key_because_the_keys_of_a_null_block_are_anded():
    denies = [s for s in OPERATOR["Statement"] if s["Effect"] == "Deny" and "Null" in s["Condition"]]
    assert len(denies) == len(iam_policies.CODEBUILD_DENIED_OVERRIDE_KEYS)
    assert all(len(s["Condition"]["Null"]) == 1 for s in denies)
    keys = {k for s in denies for k in s["Condition"]["Null"]}
    assert "codebuild:source.buildspec" in keys
    # the variables carry every batch: never denied as such
    assert not keys & {"codebuild:environment", "codebuild:environment.environmentVariables"}
    anded = {
        "Effect": "Deny",
        "Action": "codebuild:StartBuild",
        "Resource": "*",
        "Condition": {"Null": {"codebuild:source.buildspec": "false", "codebuild:environment.image": "false"}},
    }
    allow = {"Effect": "Allow", "Action": "codebuild:StartBuild", "Resource": "*"}
    assert refusal([{"Statement": [allow, anded]}], "StartBuild", dict(DRIVER_START, buildspecOverride="x")) is None


def test_operator_policy_grants_exactly_this():
    assert iam_policies.action_resource_pairs(OPERATOR) == {
        ("codebuild:BatchGetBuilds", PROJECT_ARN),
        ("codebuild:BatchGetProjects", PROJECT_ARN),
        ("codebuild:StartBuild", PROJECT_ARN),
        ("codebuild:StopBuild", PROJECT_ARN),
        ("logs:GetLogEvents", f"arn:aws:logs:{REGION}:{SRC}:log-group:/aws/codebuild/{PROJECT}:log-stream:*"),
    }


@pytest.mark.parametrize(
    "condition, context, expected",
    [
        ({"Null": {"k": "false"}}, {"k": "v"}, True),
        ({"Null": {"k": "false"}}, {}, False),
        ({"Null": {"k": "true"}}, {}, True),
        ({"StringEquals": {"K": "v"}}, {"k": "v"}, True),  # keys are case-insensitive
        ({"StringEquals": {"k": ["a", "v"]}}, {"k": "v"}, True),
        ({"StringEquals": {"k": "v"}}, {}, False),
        ({"StringNotEquals": {"k": "v"}}, {}, True),
        ({"StringEqualsIfExists": {"k": "v"}}, {}, True),
        ({"StringLike": {"k": "ecr.*.amazonaws.com"}}, {"k": "ecr.ap-south-1.amazonaws.com"}, True),
        ({"ForAnyValue:StringNotLike": {"k": "REPL_*"}}, {"k": ["REPL_A", "PATH"]}, True),
        ({"ForAnyValue:StringNotLike": {"k": "REPL_*"}}, {"k": ["REPL_A"]}, False),
        ({"ForAnyValue:StringNotLike": {"k": "REPL_*"}}, {}, False),
        ({"ForAllValues:StringLike": {"k": "REPL_*"}}, {}, True),
        ({"StringEquals": {"a": "1"}, "Null": {"b": "false"}}, {"a": "1"}, False),
        ({"Bool": {"k": "true"}}, {"k": "true"}, None),
    ],
)
def test_condition_operators(condition, context, expected):
    assert policy.condition_matches(condition, context) is expected
