"""Trust policy evaluation of the sandbox's sts:AssumeRole (pure; no server)."""

from __future__ import annotations

from tests.sandbox.trust import Caller
from tests.sandbox.trust import evaluate_trust

CODEBUILD_ROLE = "arn:aws:iam::111111111111:role/ecr-replication-codebuild"


def _policy(principal, condition=None, effect="Allow"):
    statement = {"Effect": effect, "Principal": principal, "Action": "sts:AssumeRole"}
    if condition:
        statement["Condition"] = condition
    return {"Version": "2012-10-17", "Statement": [statement]}


def test_assumed_role_session_matches_its_role_arn():
    caller = Caller(arn="arn:aws:sts::111111111111:assumed-role/ecr-replication-codebuild/AWSCodeBuild-1")
    assert evaluate_trust(_policy({"AWS": CODEBUILD_ROLE}), caller, {})
    assert not evaluate_trust(_policy({"AWS": "arn:aws:iam::111111111111:role/other"}), caller, {})
    assert evaluate_trust(_policy({"AWS": "arn:aws:iam::111111111111:root"}), caller, {})
    assert evaluate_trust(_policy({"AWS": "111111111111"}), caller, {})
    assert not evaluate_trust(_policy({"AWS": "222222222222"}), caller, {})


def test_external_id_condition():
    caller = Caller(arn="arn:aws:iam::111111111111:user/sandbox-admin")
    policy = _policy({"AWS": "arn:aws:iam::111111111111:root"}, {"StringEquals": {"sts:ExternalId": "abc"}})
    assert evaluate_trust(policy, caller, {"sts:ExternalId": "abc"})
    assert not evaluate_trust(policy, caller, {"sts:ExternalId": "abd"})
    assert not evaluate_trust(policy, caller, {})


def test_service_principal_with_source_account_and_arn():
    caller = Caller(service="codebuild.amazonaws.com")
    project = "arn:aws:codebuild:ap-south-1:111111111111:project/ecr-replication"
    policy = _policy(
        {"Service": "codebuild.amazonaws.com"},
        {"StringEquals": {"aws:SourceAccount": "111111111111"}, "ArnLike": {"aws:SourceArn": project}},
    )
    assert evaluate_trust(policy, caller, {"aws:SourceAccount": "111111111111", "aws:SourceArn": project})
    assert not evaluate_trust(policy, caller, {"aws:SourceAccount": "111111111111", "aws:SourceArn": project + "-x"})
    assert not evaluate_trust(policy, Caller(service="lambda.amazonaws.com"), {"aws:SourceAccount": "111111111111"})


def test_explicit_deny_wins_and_unknown_operators_refuse():
    caller = Caller(arn="arn:aws:iam::111111111111:user/sandbox-admin")
    allow = _policy({"AWS": "111111111111"})
    deny = _policy({"AWS": "111111111111"}, effect="Deny")
    assert not evaluate_trust({"Statement": allow["Statement"] + deny["Statement"]}, caller, {})
    odd = _policy({"AWS": "111111111111"}, {"NumericLessThan": {"aws:MultiFactorAuthAge": "3600"}})
    assert not evaluate_trust(odd, caller, {"aws:MultiFactorAuthAge": "10"})
