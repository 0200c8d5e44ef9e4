# Copyright: Contributors to the cloudops.ecr_replication project
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The sandbox CodeBuild through boto3: a build that lists ECR images as its service role and copies an image
to the target account with skopeo, its log read back through the CloudWatch Logs API."""

from __future__ import annotations

import json
import textwrap
import time
import uuid

import botocore.exceptions
import pytest

from tests.sandbox.fixtures import UNRESTRICTED_ROLE_TAGS

pytestmark = pytest.mark.sandbox

COPY_BUILDSPEC = textwrap.dedent(r"""
    version: 0.2
    env:
      shell: bash
      exported-variables: [COPIED_DIGEST]
    phases:
      pre_build:
        commands:
          - echo "caller $(aws sts get-caller-identity --query Arn --output text)"
          - echo "source tags $(aws ecr describe-images --repository-name "$SRC_REPO" --query 'imageDetails[].imageTags[]' --output text | tr '\t' ' ')"
          - SRC_HOST=$(aws ecr get-authorization-token --query 'authorizationData[0].proxyEndpoint' --output text); SRC_HOST=${SRC_HOST#https://}
          - aws ecr get-login-password | skopeo login --username AWS --password-stdin "$SRC_HOST"
          - |
            set +x
            read -r TA TS TT <<< "$(aws sts assume-role --role-arn "$TARGET_ROLE_ARN" --role-session-name ecr-copy \
              --query 'Credentials.[AccessKeyId,SecretAccessKey,SessionToken]' --output text)"
          - target() { AWS_ACCESS_KEY_ID=$TA AWS_SECRET_ACCESS_KEY=$TS AWS_SESSION_TOKEN=$TT aws --region "$DEST_REGION" "$@"; }
          - echo "target caller $(target sts get-caller-identity --query Arn --output text)"
          - DST_HOST=$(target ecr get-authorization-token --query 'authorizationData[0].proxyEndpoint' --output text); DST_HOST=${DST_HOST#https://}
          - target ecr get-login-password | skopeo login --username AWS --password-stdin "$DST_HOST"
          - target ecr create-repository --repository-name "$DST_REPO" --query repository.repositoryUri --output text
      build:
        commands:
          - skopeo copy --all --preserve-digests "docker://$SRC_HOST/$SRC_REPO:$SRC_TAG" "docker://$DST_HOST/$DST_REPO:$SRC_TAG"
          - >-
            COPIED_DIGEST=$(target ecr describe-images --repository-name "$DST_REPO" --image-ids imageTag="$SRC_TAG"
            --query 'imageDetails[0].imageDigest' --output text)
          - echo "copied $COPIED_DIGEST"
    """).lstrip("\n")


def _trust(principal: dict) -> str:
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Principal": principal, "Action": "sts:AssumeRole"}],
        }
    )


@pytest.fixture
def setup(sandbox):
    """A CodeBuild service role in the source account and a role it may assume in the target account."""
    suffix = uuid.uuid4().hex[:8]
    iam_source = sandbox.client("iam", "source")
    iam_target = sandbox.client("iam", "target")
    role = iam_source.create_role(
        RoleName=f"cb-test-{suffix}",
        AssumeRolePolicyDocument=_trust({"Service": "codebuild.amazonaws.com"}),
        Tags=UNRESTRICTED_ROLE_TAGS,
    )["Role"]
    target_role = iam_target.create_role(
        RoleName=f"cb-test-target-{suffix}", AssumeRolePolicyDocument=_trust({"AWS": role["Arn"]}), Tags=UNRESTRICTED_ROLE_TAGS
    )["Role"]
    codebuild = sandbox.client("codebuild", "source")
    state = {"suffix": suffix, "role": role["Arn"], "target_role": target_role["Arn"], "projects": [], "repos": []}
    yield state
    for name in state["projects"]:
        codebuild.delete_project(name=name)
    ecr_target = sandbox.client("ecr", "target", sandbox.dest_region)
    for repo in state["repos"]:
        ecr_target.delete_repository(repositoryName=repo, force=True)
    iam_source.delete_role(RoleName=role["RoleName"])
    iam_target.delete_role(RoleName=target_role["RoleName"])


def _create_project(sandbox, setup, name: str, buildspec: str, **extra) -> dict:
    codebuild = sandbox.client("codebuild", "source")
    project = codebuild.create_project(
        name=name,
        source={"type": "NO_SOURCE", "buildspec": buildspec},
        artifacts={"type": "NO_ARTIFACTS"},
        environment={
            "type": "LINUX_CONTAINER",
            "image": "aws/codebuild/standard:7.0",
            "computeType": "BUILD_GENERAL1_SMALL",
            "environmentVariables": [{"name": "DEST_REGION", "value": sandbox.dest_region}],
        },
        serviceRole=setup["role"],
        **extra,
    )["project"]
    setup["projects"].append(name)
    return project


def _wait(codebuild, build_id: str, seconds: float = 120, until=lambda b: b["buildComplete"]) -> dict:
    deadline = time.time() + seconds
    while True:
        build = codebuild.batch_get_builds(ids=[build_id])["builds"][0]
        if until(build):
            return build
        assert time.time() < deadline, f"{build_id} is still {build['currentPhase']}"
        time.sleep(0.2)


def _pick_image(catalog: dict) -> dict:
    tagged = [i for i in catalog["images"] if i["tags"] and i["kind"] in ("index", "image")]
    return next((i for i in tagged if i["kind"] == "index"), tagged[0])


def test_build_copies_an_image_across_accounts_with_skopeo(sandbox, setup):
    image = _pick_image(sandbox.catalog)
    name = f"cb-copy-{setup['suffix']}"
    dst_repo = f"cb-test-{setup['suffix']}/{image['repository'].split('/')[-1]}"
    setup["repos"].append(dst_repo)
    _create_project(sandbox, setup, name, COPY_BUILDSPEC, concurrentBuildLimit=1)
    codebuild = sandbox.client("codebuild", "source")
    started = codebuild.start_build(
        projectName=name,
        environmentVariablesOverride=[
            {"name": "SRC_REPO", "value": image["repository"], "type": "PLAINTEXT"},
            {"name": "SRC_TAG", "value": image["tags"][0], "type": "PLAINTEXT"},
            {"name": "DST_REPO", "value": dst_repo, "type": "PLAINTEXT"},
            {"name": "TARGET_ROLE_ARN", "value": setup["target_role"], "type": "PLAINTEXT"},
        ],
    )["build"]
    build = _wait(codebuild, started["id"])
    logs = sandbox.client("logs", "source")
    group, stream = build["logs"]["groupName"], build["logs"]["streamName"]
    messages = [e["message"] for e in logs.get_log_events(logGroupName=group, logStreamName=stream)["events"]]
    assert build["buildStatus"] == "SUCCEEDED", "\n".join(messages)

    # BatchGetBuilds as CodeBuild reports it (parsed by botocore: timestamps are datetimes)
    phases = [(p["phaseType"], p.get("phaseStatus")) for p in build["phases"]]
    assert phases[:2] == [("SUBMITTED", "SUCCEEDED"), ("QUEUED", "SUCCEEDED")]
    assert phases[-1] == ("COMPLETED", None)
    assert [t for t, s in phases if s == "SUCCEEDED"][2:] == [
        "PROVISIONING", "DOWNLOAD_SOURCE", "INSTALL", "PRE_BUILD", "BUILD", "POST_BUILD", "UPLOAD_ARTIFACTS", "FINALIZING"
    ]  # fmt: skip
    assert build["endTime"] >= build["startTime"]
    assert (group, stream) == (f"/aws/codebuild/{name}", started["id"].split(":", 1)[1])

    # the service role acted in the source account, the assumed role in the target account
    assert f"caller arn:aws:sts::{sandbox.source_account}:assumed-role/cb-test-{setup['suffix']}/" in "\n".join(
        messages
    )
    assert f"target caller arn:aws:sts::{sandbox.target_account}:assumed-role/cb-test-target-" in "\n".join(messages)
    assert any(m.startswith("source tags ") and image["tags"][0] in m.split() for m in messages)
    assert f"copied {image['digest']}" in messages
    assert build["exportedEnvironmentVariables"] == [{"name": "COPIED_DIGEST", "value": image["digest"]}]

    # the copy is in the target account with the same digest
    ecr_target = sandbox.client("ecr", "target", sandbox.dest_region)
    detail = ecr_target.describe_images(repositoryName=dst_repo, imageIds=[{"imageTag": image["tags"][0]}])
    assert detail["imageDetails"][0]["imageDigest"] == image["digest"]

    # FilterLogEvents finds the line too; no credential ever reaches the log
    found = logs.filter_log_events(logGroupName=group, logStreamNames=[stream], filterPattern='"copied"')["events"]
    assert [e["message"] for e in found if e["message"].startswith("copied ")] == [f"copied {image['digest']}"]
    assert not any(sandbox.env["AWS_SECRET_ACCESS_KEY"] in m for m in messages)


def test_stop_a_build_and_queue_behind_the_project_limit(sandbox, setup):
    name = f"cb-stop-{setup['suffix']}"
    spec = "version: 0.2\nphases:\n  build:\n    commands:\n      - echo started\n      - sleep 300\n"
    _create_project(sandbox, setup, name, spec, concurrentBuildLimit=1)
    codebuild = sandbox.client("codebuild", "source")
    first = codebuild.start_build(projectName=name)["build"]["id"]
    second = codebuild.start_build(projectName=name)["build"]["id"]
    _wait(codebuild, first, seconds=30, until=lambda b: b["currentPhase"] == "BUILD")
    queued = codebuild.batch_get_builds(ids=[second])["builds"][0]
    assert (queued["buildStatus"], queued["currentPhase"]) == ("IN_PROGRESS", "QUEUED")
    assert codebuild.list_builds_for_project(projectName=name)["ids"] == [second, first]

    codebuild.stop_build(id=first)
    stopped = _wait(codebuild, first, seconds=20)
    assert stopped["buildStatus"] == "STOPPED"
    assert (
        _wait(codebuild, second, seconds=30, until=lambda b: b["currentPhase"] == "BUILD")["buildStatus"]
        == "IN_PROGRESS"
    )
    codebuild.stop_build(id=second)
    assert _wait(codebuild, second, seconds=20)["buildStatus"] == "STOPPED"


def _error_code(call, *args, **kwargs) -> str:
    with pytest.raises(botocore.exceptions.ClientError) as excinfo:
        call(*args, **kwargs)
    return excinfo.value.response["Error"]["Code"]


def test_errors_through_boto3(sandbox, setup):
    codebuild = sandbox.client("codebuild", "source")
    assert _error_code(codebuild.start_build, projectName=f"missing-{setup['suffix']}") == "ResourceNotFoundException"
    name = f"cb-err-{setup['suffix']}"
    spec = "version: 0.2\nphases:\n  build:\n    commands: ['true']\n"
    _create_project(sandbox, setup, name, spec)
    code = _error_code(_create_project, sandbox, dict(setup, projects=[]), name, spec)
    assert code == "ResourceAlreadyExistsException"
    assert _error_code(codebuild.update_project, name=name, concurrentBuildLimit=10_000) == "InvalidInputException"
    assert codebuild.update_project(name=name, timeoutInMinutes=20)["project"]["timeoutInMinutes"] == 20
