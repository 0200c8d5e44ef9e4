# Copyright: Contributors to the cloudops.ecr_replication project
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Ownership (issue 15, item 3): provision.yml and teardown.yml change or delete only the roles, project and log
group that carry the managed-by tag, and provision.yml refuses a destination that is the source registry; every
refusal comes before any change, names the resource and the variable, and leaves what it found as it was."""

from __future__ import annotations

import json

import pytest

pytestmark = pytest.mark.sandbox

OWNER_TAG = {"Key": "managed-by", "Value": "cloudops.ecr_replication"}
DEFAULT_READER = "ecr-replication-reader"


def foreign_role(iam, name: str, account: str, principal: dict | None = None) -> dict:
    """A role someone else made: trusted by its account, one inline policy, a tag that is not ours."""
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": principal or {"AWS": f"arn:aws:iam::{account}:root"}, "Action": "sts:AssumeRole"}
        ],
    }
    iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust), Tags=[{"Key": "team", "Value": "other"}])
    iam.put_role_policy(
        RoleName=name,
        PolicyName="theirs",
        PolicyDocument=json.dumps(
            {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:ListBucket", "Resource": "*"}]}
        ),
    )
    return role_state(iam, name)


def role_state(iam, name: str) -> dict:
    """What provisioning could change: trust, tags, inline and attached policies."""
    role = iam.get_role(RoleName=name)["Role"]
    trust = role["AssumeRolePolicyDocument"]
    return {
        "trust": json.loads(trust) if isinstance(trust, str) else trust,
        "tags": sorted((t["Key"], t["Value"]) for t in iam.list_role_tags(RoleName=name)["Tags"]),
        "inline": iam.list_role_policies(RoleName=name)["PolicyNames"],
        "attached": iam.list_attached_role_policies(RoleName=name)["AttachedPolicies"],
    }


def delete_role(iam, name: str) -> None:
    try:
        for policy in iam.list_role_policies(RoleName=name)["PolicyNames"]:
            iam.delete_role_policy(RoleName=name, PolicyName=policy)
        iam.delete_role(RoleName=name)
    except iam.exceptions.NoSuchEntityException:
        pass


def role_exists(iam, name: str) -> bool:
    try:
        iam.get_role(RoleName=name)
        return True
    except iam.exceptions.NoSuchEntityException:
        return False


def project_exists(codebuild, name: str) -> bool:
    return bool(codebuild.batch_get_projects(names=[name])["projects"])


def refused(result, *words: str) -> None:
    output = result.stdout + result.stderr
    assert result.returncode != 0, output[-3000:]
    for word in words:
        assert word in output, (word, output[-3000:])
    assert "Traceback" not in output


def test_provision_refuses_an_untagged_destination_role(provisioner, sandbox):
    """A role of dest_role's name made by someone else: provision.yml fails naming it and the variable, its trust
    and policies are unchanged, and nothing was created in the source account either (the check comes first)."""
    names = provisioner.names
    iam_target = sandbox.client("iam", "target")
    before = foreign_role(iam_target, names["dest_role"], sandbox.target_account)
    try:
        result = provisioner.run("provision.yml", json_output=False)
        refused(result, "target_role_name", "dest_role", names["dest_role"], "managed-by=cloudops.ecr_replication",
                "adopt_existing")
        assert role_state(iam_target, names["dest_role"]) == before
        assert not role_exists(iam_target, names["dest_read_role"])
        assert not role_exists(sandbox.client("iam", "source"), names["codebuild_role_name"])
        assert not project_exists(sandbox.client("codebuild", "source"), names["project_name"])
        provisioner.torn_down = True  # nothing was made
    finally:
        delete_role(iam_target, names["dest_role"])


def test_provision_refuses_an_untagged_codebuild_project(provisioner, sandbox):
    """A CodeBuild project of project_name made by someone else: refused naming it, left as it was."""
    names = provisioner.names
    codebuild = sandbox.client("codebuild", "source")
    iam_source = sandbox.client("iam", "source")
    service_role = names["project_name"] + "-theirs"
    foreign_role(iam_source, service_role, sandbox.source_account, {"Service": "codebuild.amazonaws.com"})
    codebuild.create_project(
        name=names["project_name"],
        description="someone else's",
        source={"type": "NO_SOURCE", "buildspec": "version: 0.2\nphases:\n  build:\n    commands: [echo theirs]\n"},
        artifacts={"type": "NO_ARTIFACTS"},
        environment={"type": "LINUX_CONTAINER", "image": "aws/codebuild/standard:7.0", "computeType": "BUILD_GENERAL1_SMALL"},
        serviceRole=f"arn:aws:iam::{sandbox.source_account}:role/{service_role}",
        tags=[{"key": "team", "value": "other"}],
    )
    try:
        before = codebuild.batch_get_projects(names=[names["project_name"]])["projects"][0]
        result = provisioner.run("provision.yml", json_output=False)
        refused(result, "source_codebuild_project_name", "project_name", names["project_name"])
        after = codebuild.batch_get_projects(names=[names["project_name"]])["projects"][0]
        assert (after["description"], after["serviceRole"], after["tags"]) == (
            before["description"], before["serviceRole"], before["tags"])
        assert not role_exists(iam_source, names["codebuild_role_name"])
        assert not role_exists(sandbox.client("iam", "target"), names["dest_role"])
        provisioner.torn_down = True  # nothing was made
    finally:
        codebuild.delete_project(name=names["project_name"])
        delete_role(iam_source, service_role)


@pytest.mark.slow  # make soak: over a minute of provisioning and builds; make test keeps the file's other cases
def test_teardown_refuses_to_delete_an_untagged_role(provisioner, sandbox):
    """teardown.yml -e dest_role=<a role this collection did not make> fails naming it before deleting anything:
    that role and everything provision.yml made are still there; the tagged ones go with the right names."""
    names = provisioner.names
    result = provisioner.run("provision.yml")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr
    iam_target = sandbox.client("iam", "target")
    for name in (names["dest_role"], names["dest_read_role"]):
        assert OWNER_TAG in iam_target.list_role_tags(RoleName=name)["Tags"]
    victim = names["dest_role"] + "-theirs"
    before = foreign_role(iam_target, victim, sandbox.target_account)
    try:
        result = provisioner.run("teardown.yml", extra={"dest_role": victim}, json_output=False)
        refused(result, "target_role_name", "dest_role", victim, "refusing to delete it")
        assert role_state(iam_target, victim) == before
        assert role_exists(iam_target, names["dest_read_role"])
        assert role_exists(sandbox.client("iam", "source"), names["codebuild_role_name"])
        assert project_exists(sandbox.client("codebuild", "source"), names["project_name"])
    finally:
        delete_role(iam_target, victim)
    result = provisioner.run("teardown.yml")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr
    assert not role_exists(iam_target, names["dest_role"])
    assert not project_exists(sandbox.client("codebuild", "source"), names["project_name"])


@pytest.fixture
def untagged_default_reader(sandbox):
    """An ecr-replication-reader without the owner tag in the target account. Another test module may have
    provisioned the default one (tagged): its tag is taken off for the test and put back after."""
    iam = sandbox.client("iam", "target")
    existed = role_exists(iam, DEFAULT_READER)
    if existed:
        tags = iam.list_role_tags(RoleName=DEFAULT_READER)["Tags"]
        iam.untag_role(RoleName=DEFAULT_READER, TagKeys=[OWNER_TAG["Key"]])
    else:
        foreign_role(iam, DEFAULT_READER, sandbox.target_account)
    yield role_state(iam, DEFAULT_READER)
    if existed:
        iam.tag_role(RoleName=DEFAULT_READER, Tags=tags)
    else:
        delete_role(iam, DEFAULT_READER)


@pytest.mark.slow  # make soak: minutes of provisioning; make test keeps the core case of this file
def test_no_read_role_leaves_an_untagged_default_reader_alone(provisioner, sandbox, untagged_default_reader):
    """dest_read_role "" (no read role): provision.yml and teardown.yml used to delete any ecr-replication-reader;
    one without the owner tag now stays, unchanged."""
    iam_target = sandbox.client("iam", "target")
    result = provisioner.run("provision.yml", extra={"dest_read_role": ""})
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr
    assert role_state(iam_target, DEFAULT_READER) == untagged_default_reader
    result = provisioner.run("teardown.yml", extra={"dest_read_role": ""})
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr
    assert role_state(iam_target, DEFAULT_READER) == untagged_default_reader
    assert not role_exists(iam_target, provisioner.names["dest_role"])


@pytest.mark.slow  # make soak: minutes of provisioning; make test keeps the core case of this file
def test_adopt_existing_takes_over_an_untagged_role(provisioner, sandbox):
    """-e adopt_existing=true: the untagged role of dest_role's name becomes ours (owner tag, our trust, our policy;
    other inline policies are kept, as documented), and a second run changes nothing."""
    names = provisioner.names
    iam_target = sandbox.client("iam", "target")
    foreign_role(iam_target, names["dest_role"], sandbox.target_account)
    result = provisioner.run("provision.yml", extra={"adopt_existing": True})
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr
    after = role_state(iam_target, names["dest_role"])
    assert ("managed-by", "cloudops.ecr_replication") in after["tags"]
    assert sorted(after["inline"]) == sorted([names["dest_role"], "theirs"])
    principals = [s["Principal"]["AWS"] for s in after["trust"]["Statement"]]
    assert f"arn:aws:iam::{sandbox.target_account}:root" not in json.dumps(principals)
    again = provisioner.run("provision.yml")
    assert again.returncode == 0 and again.json["stats"]["localhost"]["changed"] == 0, again.stdout[-3000:]


@pytest.mark.parametrize(
    ("case", "option"),
    [("defaults", "dest_region"), ("same account and region", "dest_region"), ("extra region", "dest_extra_regions")],
)
def test_provision_refuses_the_source_registry_as_destination(provisioner, sandbox, case, option):
    """Destination account and region (or one of dest_extra_regions) equal to the source's (by default, with no
    dest_account and dest_region given, they are): refused naming the variable, before any IAM, CodeBuild or ECR
    call (counted at the wire) but the caller lookup of amazon.aws.aws_caller_info (sts:GetCallerIdentity and the
    account alias, iam:ListAccountAliases)."""
    from tests.sandbox.call_counter import CountingProxy

    variables = provisioner.vars
    variables["dest_profile"] = ""
    if case == "defaults":
        del variables["dest_region"], variables["dest_account"]
    else:
        variables["dest_account"] = sandbox.source_account
        variables["dest_region"] = sandbox.source_region if case == "same account and region" else sandbox.dest_region
        if case == "extra region":
            variables["dest_extra_regions"] = [sandbox.dest_region, sandbox.source_region]
    proxy = CountingProxy(int(sandbox.env["SANDBOX_BASE_PORT"]), 0).start()
    try:
        result = provisioner.run("provision.yml", json_output=False, env={"AWS_ENDPOINT_URL": proxy.url})
        calls = proxy.snapshot()
    finally:
        proxy.stop()
    refused(result, f"{option}: the destination is the source registry", sandbox.source_account)
    assert set(calls) <= {"sts:GetCallerIdentity", "iam:ListAccountAliases"}, calls
    provisioner.torn_down = True  # nothing was made
