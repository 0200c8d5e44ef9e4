# Copyright: Contributors to the cloudops.ecr_replication project
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""playbooks/provision.yml and teardown.yml against the sandbox (issue 7 "Done when").

Names are unique to each test, so that other tests using the same sandbox are not disturbed.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from ansible_collections.cloudops.ecr_replication.plugins.module_utils import iam_policies

from .conftest import Provisioner

pytestmark = pytest.mark.sandbox
REPO_ROOT = Path(__file__).resolve().parents[3]


def stats(result) -> dict:
    assert result.json is not None, result.stdout[-3000:] + result.stderr
    return result.json["stats"]["localhost"]


def changed_tasks(result) -> list[str]:
    return [
        task["task"]["name"]
        for play in result.json["plays"]
        for task in play["tasks"]
        if task["hosts"].get("localhost", {}).get("changed")
    ]


def recap_changed(text: str) -> int:
    match = re.search(r"localhost\s*:\s*ok=\d+\s+changed=(\d+)", text)
    assert match, text[-3000:]
    return int(match.group(1))


def inline_policy(iam, role, name):
    document = iam.get_role_policy(RoleName=role, PolicyName=name)["PolicyDocument"]
    return json.loads(document) if isinstance(document, str) else document


def role_names(iam) -> set[str]:
    return {r["RoleName"] for page in iam.get_paginator("list_roles").paginate() for r in page["Roles"]}


def check_provisioned(provisioner, sandbox) -> None:
    names = provisioner.names
    src, dst = sandbox.source_account, sandbox.target_account
    iam = sandbox.client("iam", "source")
    role = iam.get_role(RoleName=names["codebuild_role_name"])["Role"]
    assert iam.list_role_policies(RoleName=names["codebuild_role_name"])["PolicyNames"] == [
        names["codebuild_role_name"]
    ]
    assert iam.list_attached_role_policies(RoleName=names["codebuild_role_name"])["AttachedPolicies"] == []
    dest_role_arn = f"arn:aws:iam::{dst}:role/{names['dest_role']}"
    log_group = f"/aws/codebuild/{names['project_name']}"
    expected = iam_policies.codebuild_service_policy(
        region=sandbox.source_region,
        account=src,
        log_group_name=log_group,
        repository_prefixes=names["repository_prefixes"],
        destination_role_arns=[dest_role_arn],
        external_id_parameters=[f"/cloudops/ecr-replication/{dst}/external-id"],
    )
    actual = inline_policy(iam, names["codebuild_role_name"], names["codebuild_role_name"])
    assert iam_policies.action_resource_pairs(actual) == iam_policies.action_resource_pairs(expected)
    # the ExternalId builds read (PARAMETER_STORE): a SecureString, never a plain build variable
    ssm = sandbox.client("ssm", "source")
    parameter = ssm.get_parameter(Name=f"/cloudops/ecr-replication/{dst}/external-id", WithDecryption=True)["Parameter"]
    assert parameter["Type"] == "SecureString" and parameter["Value"] == provisioner.external_id
    trust = role["AssumeRolePolicyDocument"]
    trust = json.loads(trust) if isinstance(trust, str) else trust
    assert trust["Statement"][0]["Principal"] == {"Service": "codebuild.amazonaws.com"}
    assert trust["Statement"][0]["Condition"]["StringEquals"] == {"aws:SourceAccount": src}

    project = sandbox.client("codebuild", "source").batch_get_projects(names=[names["project_name"]])["projects"][0]
    assert project["serviceRole"] == role["Arn"]
    assert project["source"]["type"] == "NO_SOURCE"
    assert project["source"]["buildspec"] == (REPO_ROOT / "buildspec.yml").read_text().rstrip()
    assert project["environment"]["privilegedMode"] is False
    assert project["concurrentBuildLimit"] == 2
    assert project["logsConfig"]["cloudWatchLogs"]["groupName"] == log_group

    groups = sandbox.client("logs", "source").describe_log_groups(logGroupNamePrefix=log_group)["logGroups"]
    assert [(g["logGroupName"], g.get("retentionInDays")) for g in groups] == [(log_group, 30)]

    iam_target = sandbox.client("iam", "target")
    target = iam_target.get_role(RoleName=names["dest_role"])["Role"]
    assert target["Arn"] == dest_role_arn
    trust = target["AssumeRolePolicyDocument"]
    trust = json.loads(trust) if isinstance(trust, str) else trust
    assert trust["Statement"] == [
        {
            "Sid": "SourceCodeBuildAssumeRole",
            "Effect": "Allow",
            "Principal": {"AWS": role["Arn"]},
            "Action": "sts:AssumeRole",
            "Condition": {"StringEquals": {"sts:ExternalId": provisioner.external_id}},
        }
    ]
    expected = iam_policies.target_permissions_policy(
        region=sandbox.dest_region, account=dst, repository_prefixes=names["repository_prefixes"]
    )
    actual = inline_policy(iam_target, names["dest_role"], names["dest_role"])
    assert iam_policies.action_resource_pairs(actual) == iam_policies.action_resource_pairs(expected)

    # the read role of the controller: trusted by the source account with the external id, read-only
    reader = iam_target.get_role(RoleName=names["dest_read_role"])["Role"]
    trust = reader["AssumeRolePolicyDocument"]
    trust = json.loads(trust) if isinstance(trust, str) else trust
    assert trust["Statement"] == [
        {
            "Sid": "ReplicationControllerAssumeRole",
            "Effect": "Allow",
            "Principal": {"AWS": f"arn:aws:iam::{src}:root"},
            "Action": "sts:AssumeRole",
            "Condition": {"StringEquals": {"sts:ExternalId": provisioner.external_id}},
        }
    ]
    assert iam_target.list_attached_role_policies(RoleName=names["dest_read_role"])["AttachedPolicies"] == []
    expected = iam_policies.reader_permissions_policy(
        region=sandbox.dest_region, account=dst, repository_prefixes=names["repository_prefixes"]
    )
    actual = inline_policy(iam_target, names["dest_read_role"], names["dest_read_role"])
    assert iam_policies.action_resource_pairs(actual) == iam_policies.action_resource_pairs(expected)


def test_provision_idempotent_check_diff_and_teardown(provisioner, sandbox):
    names = provisioner.names
    iam = sandbox.client("iam", "source")
    iam_target = sandbox.client("iam", "target")
    codebuild = sandbox.client("codebuild", "source")

    # check mode on nothing: reports changes, creates nothing
    result = provisioner.run("provision.yml", "--check")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr
    assert stats(result)["changed"] >= 4
    assert names["codebuild_role_name"] not in role_names(iam)
    assert codebuild.batch_get_projects(names=[names["project_name"]])["projects"] == []

    # provision: both sides, exactly the least-privilege documents
    result = provisioner.run("provision.yml")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr
    check_provisioned(provisioner, sandbox)

    # second run: nothing changes; even at -vvv the external id never reaches the output
    result = provisioner.run("provision.yml", "-vvv", json_output=False)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr
    assert recap_changed(result.stdout) == 0, result.stdout[-5000:]
    assert provisioner.external_id not in result.stdout + result.stderr

    # check + diff with a wider prefix list: shown as policy changes, nothing changed
    before = inline_policy(iam, names["codebuild_role_name"], names["codebuild_role_name"])
    result = provisioner.run(
        "provision.yml", "--check", "--diff", extra={"repository_prefixes": ["team-a/", "team-b/"]}
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr
    changed = changed_tasks(result)
    assert any(name.endswith("Source CodeBuild | least-privilege policy of the service role") for name in changed)
    assert any(name.endswith("Target role | least-privilege policy of the role") for name in changed)
    assert "repository/team-b/*" in json.dumps(result.json["plays"])
    assert inline_policy(iam, names["codebuild_role_name"], names["codebuild_role_name"]) == before

    # teardown removes both sides, and only them; a second teardown changes nothing
    result = provisioner.run("teardown.yml")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr
    # what it removed before the operator policy existed (6), and the operator policy
    assert stats(result)["changed"] == 7, changed_tasks(result)
    assert any("operator policy" in name for name in changed_tasks(result)), changed_tasks(result)
    parameters = sandbox.client("ssm", "source").describe_parameters()["Parameters"]
    assert f"/cloudops/ecr-replication/{sandbox.target_account}/external-id" not in [p["Name"] for p in parameters]
    assert names["codebuild_role_name"] not in role_names(iam)
    assert names["dest_role"] not in role_names(iam_target)
    assert names["dest_read_role"] not in role_names(iam_target)
    assert codebuild.batch_get_projects(names=[names["project_name"]])["projects"] == []
    log_group = f"/aws/codebuild/{names['project_name']}"
    assert sandbox.client("logs", "source").describe_log_groups(logGroupNamePrefix=log_group)["logGroups"] == []
    again = provisioner.run("teardown.yml")
    assert again.returncode == 0 and stats(again)["changed"] == 0, changed_tasks(again)


@pytest.mark.parametrize(
    "extra, external_id, message",
    [
        ({"repository_prefixes": ["*"]}, None, "repository_prefixes: '*' would match every repository"),
        ({"repository_prefixes": []}, None, "repository_prefixes: must name at least one repository prefix"),
        ({}, "x", "external_id: must be 2 to 1224 characters"),
        ({"dest_region": "seoul"}, None, "region: must be an AWS region name"),
        ({"dest_role": "arn:aws:iam::222222222222:user/bob"}, None, "dest_role: must be a role name or the ARN"),
        ({"dest_account": "333333333333"}, None, "the destination is account 333333333333"),
    ],
)
def test_bad_input_fails_clearly_before_any_change(sandbox, tmp_path, extra, external_id, message):
    provisioner = Provisioner(sandbox, tmp_path)  # nothing is created, so nothing to tear down
    result = provisioner.run("provision.yml", extra=extra, external_id=external_id, json_output=False)
    assert result.returncode != 0
    output = result.stdout + result.stderr
    assert message in output, output[-3000:]
    assert "Traceback" not in output
    assert provisioner.names["codebuild_role_name"] not in role_names(sandbox.client("iam", "source"))
