# Copyright: Contributors to the cloudops.ecr_replication project
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The sandbox CodeBuild (tests/sandbox/codebuild.py) in-process over moto: real builds with the buildspec runner.

Every response goes through botocore's output shape (see conftest.check_response).
"""

from __future__ import annotations

import json
import textwrap
import time

import boto3
import botocore.exceptions

ACCOUNT = "123456789012"
REGION = "ap-south-1"
ROLE_ARN = f"arn:aws:iam::{ACCOUNT}:role/codebuild-role"


def buildspec(text: str) -> str:
    return textwrap.dedent(text).lstrip("\n")


def create(codebuild, name="proj", spec="version: 0.2\nphases:\n  build:\n    commands: [echo hello]\n", **extra):
    body = {
        "name": name,
        "source": {"type": "NO_SOURCE", "buildspec": spec},
        "artifacts": {"type": "NO_ARTIFACTS"},
        "environment": {
            "type": "LINUX_CONTAINER",
            "image": "aws/codebuild/standard:7.0",
            "computeType": "BUILD_GENERAL1_SMALL",
            "environmentVariables": [
                {"name": "FROM_PROJECT", "value": "project"},
                {"name": "OVERRIDDEN", "value": "project", "type": "PLAINTEXT"},
            ],
        },
        "serviceRole": ROLE_ARN,
    }
    body.update(extra)
    return codebuild.call("CreateProject", **body)["project"]


def gate_spec(gate) -> str:
    return f"version: 0.2\nphases:\n  build:\n    commands:\n      - while [ ! -e {gate} ]; do sleep 0.05; done\n"


def log_messages(group: str, stream: str) -> list[str]:
    logs = boto3.client("logs", region_name=REGION)
    return [e["message"] for e in logs.get_log_events(logGroupName=group, logStreamName=stream)["events"]]


# ---------------------------------------------------------------------------------------------------------------
# projects


def test_project_lifecycle(codebuild):
    project = create(codebuild, concurrentBuildLimit=2, timeoutInMinutes=15, tags=[{"key": "team", "value": "ops"}])
    assert project["arn"] == f"arn:aws:codebuild:{REGION}:{ACCOUNT}:project/proj"
    assert project["source"]["type"] == "NO_SOURCE" and project["concurrentBuildLimit"] == 2
    assert project["logsConfig"]["cloudWatchLogs"]["status"] == "ENABLED"

    error = codebuild.error("CreateProject", **{k: project[k] for k in ("name", "source", "artifacts", "serviceRole")},
                            environment={"type": "LINUX_CONTAINER", "image": "x", "computeType": "BUILD_GENERAL1_SMALL"})  # fmt: skip
    assert error.code == "ResourceAlreadyExistsException" and project["arn"] in error.message

    updated = codebuild.call("UpdateProject", name="proj", timeoutInMinutes=30, concurrentBuildLimit=-1)["project"]
    assert updated["timeoutInMinutes"] == 30 and "concurrentBuildLimit" not in updated
    assert updated["lastModified"] >= project["lastModified"]
    assert updated["environment"] == project["environment"]

    got = codebuild.call("BatchGetProjects", names=["proj", project["arn"], "missing"])
    assert [p["name"] for p in got["projects"]] == ["proj", "proj"] and got["projectsNotFound"] == ["missing"]
    create(codebuild, name="another")
    assert codebuild.call("ListProjects")["projects"] == ["another", "proj"]
    assert codebuild.call("ListProjects", sortBy="CREATED_TIME", sortOrder="DESCENDING")["projects"][0] == "another"

    assert codebuild.error("UpdateProject", name="missing").code == "ResourceNotFoundException"
    assert codebuild.call("DeleteProject", name="proj") == {}
    assert codebuild.call("BatchGetProjects", names=["proj"])["projectsNotFound"] == ["proj"]
    # other account and region see nothing
    assert codebuild.call("ListProjects", region="ap-northeast-2")["projects"] == []


def test_project_input_errors(codebuild):
    cases = [
        ({"source": {"type": "GITHUB", "location": "https://github.com/x/y"}}, "not supported by the sandbox"),
        ({"source": {"type": "NO_SOURCE"}}, "buildspec cannot be empty"),
        ({"artifacts": {"type": "S3", "location": "bucket"}}, "NO_ARTIFACTS"),
        ({"concurrentBuildLimit": 4}, "cannot exceed the account-level concurrent build limit of 3"),
        ({"timeoutInMinutes": 3}, "timeoutInMinutes"),
        ({"serviceRole": f"arn:aws:iam::{ACCOUNT}:role/nope"}, "not authorized to perform: sts:AssumeRole"),
        ({"name": "bad name!"}, "Invalid project name"),
    ]
    for extra, expected in cases:
        error = None
        try:
            create(codebuild, **extra)
        except Exception as exc:  # noqa: BLE001
            error = exc
        assert getattr(error, "code", None) == "InvalidInputException", (extra, error)
        assert expected in error.message, (extra, error.message)
    # missing required members are caught by the service model (botocore's validator)
    error = codebuild.error("CreateProject", name="x")
    assert error.code == "InvalidInputException" and "Missing required parameter" in error.message
    env_error = codebuild.error(
        "StartBuild", projectName="missing", environmentVariablesOverride=[{"name": "A", "value": "b"}]
    )
    assert env_error.code == "ResourceNotFoundException"
    assert codebuild.call("ListProjects")["projects"] == []


# ---------------------------------------------------------------------------------------------------------------
# builds


def test_build_with_overrides_runs_and_logs(codebuild):
    create(codebuild)
    spec = buildspec("""
        version: 0.2
        env:
          variables:
            FROM_SPEC: spec
            FROM_PROJECT: spec-loses
          exported-variables: [RESULT]
        phases:
          build:
            commands:
              - echo "vars $FROM_SPEC $FROM_PROJECT $OVERRIDDEN $FROM_START"
              - echo "aws $AWS_REGION $AWS_DEFAULT_REGION ${AWS_ACCESS_KEY_ID:+key} ${AWS_SESSION_TOKEN:+token}"
              - echo "build $CODEBUILD_BUILD_ID $CODEBUILD_BUILD_NUMBER $CODEBUILD_BUILD_ARN"
              - echo "home $HOME $(pwd)"
              - RESULT=done
        """)
    started = codebuild.call(
        "StartBuild",
        projectName="proj",
        buildspecOverride=spec,
        timeoutInMinutesOverride=10,
        environmentVariablesOverride=[{"name": "OVERRIDDEN", "value": "start"}, {"name": "FROM_START", "value": "s"}],
    )["build"]
    assert started["id"].startswith("proj:") and started["buildNumber"] == 1
    assert started["arn"] == f"arn:aws:codebuild:{REGION}:{ACCOUNT}:build/{started['id']}"
    assert started["buildStatus"] == "IN_PROGRESS" and started["timeoutInMinutes"] == 10
    build = codebuild.wait(started["id"])
    assert build["buildStatus"] == "SUCCEEDED", build
    assert build["currentPhase"] == "COMPLETED" and build["endTime"] >= build["startTime"]
    assert [p["phaseType"] for p in build["phases"]] == [
        "SUBMITTED", "QUEUED", "PROVISIONING", "DOWNLOAD_SOURCE", "INSTALL", "PRE_BUILD", "BUILD", "POST_BUILD",
        "UPLOAD_ARTIFACTS", "FINALIZING", "COMPLETED",
    ]  # fmt: skip
    assert all(p["phaseStatus"] == "SUCCEEDED" for p in build["phases"][:-1])
    assert "phaseStatus" not in build["phases"][-1]
    assert build["exportedEnvironmentVariables"] == [{"name": "RESULT", "value": "done"}]
    assert codebuild.ctx.assumed[-1] == (ROLE_ARN, f"AWSCodeBuild-{started['id'].split(':')[1]}")

    uuid = started["id"].split(":")[1]
    logs = build["logs"]
    assert (logs["groupName"], logs["streamName"]) == ("/aws/codebuild/proj", uuid)
    assert (
        logs["cloudWatchLogsArn"] == f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:/aws/codebuild/proj:log-stream:{uuid}"
    )
    messages = log_messages("/aws/codebuild/proj", uuid)
    assert "vars spec project start s" in messages
    assert f"aws {REGION} {REGION} key token" in messages
    assert f"build {started['id']} 1 {started['arn']}" in messages
    home = next(m for m in messages if m.startswith("home "))
    assert home.endswith("/src") and f"/codebuild/proj/{uuid}/home " in home
    assert any("Entering phase BUILD" in m for m in messages)
    assert not any("fake-secret" in m or "fake-token" in m for m in messages)
    found = boto3.client("logs", region_name=REGION).filter_log_events(
        logGroupName="/aws/codebuild/proj", filterPattern='"vars spec"'
    )["events"]
    assert [e["message"] for e in found] == ["vars spec project start s"]

    second = codebuild.call("StartBuild", projectName="proj")["build"]
    assert second["buildNumber"] == 2
    assert codebuild.wait(second["id"])["buildStatus"] == "SUCCEEDED"
    ids = codebuild.call("ListBuildsForProject", projectName="proj")["ids"]
    assert ids == [second["id"], started["id"]]
    assert codebuild.call("ListBuilds", sortOrder="ASCENDING")["ids"] == [started["id"], second["id"]]
    assert codebuild.error("ListBuildsForProject", projectName="nope").code == "ResourceNotFoundException"
    got = codebuild.call("BatchGetBuilds", ids=[started["arn"], "proj:00000000-0000-0000-0000-000000000000"])
    assert [b["id"] for b in got["builds"]] == [started["id"]] and len(got["buildsNotFound"]) == 1


def test_failed_build_phases_and_contexts(codebuild):
    spec = buildspec("""
        version: 0.2
        phases:
          build:
            commands: ['exit 3']
          post_build:
            commands: ['echo "post succeeding=$CODEBUILD_BUILD_SUCCEEDING"']
        """)
    create(
        codebuild, spec=spec, logsConfig={"cloudWatchLogs": {"status": "ENABLED", "groupName": "cb", "streamName": "p"}}
    )
    started = codebuild.call("StartBuild", projectName="proj")["build"]
    build = codebuild.wait(started["id"])
    assert build["buildStatus"] == "FAILED"
    phases = {p["phaseType"]: p for p in build["phases"]}
    assert phases["BUILD"]["phaseStatus"] == "FAILED"
    assert phases["BUILD"]["contexts"] == [
        {
            "statusCode": "COMMAND_EXECUTION_ERROR",
            "message": "Error while executing command: exit 3. Reason: exit status 3",
        }
    ]
    assert phases["POST_BUILD"]["phaseStatus"] == "SUCCEEDED"
    stream = f"p/{started['id'].split(':')[1]}"
    assert build["logs"]["groupName"] == "cb" and build["logs"]["streamName"] == stream
    assert "post succeeding=0" in log_messages("cb", stream)


def test_invalid_buildspec_fails_download_source_naming_the_line(codebuild):
    create(codebuild)
    started = codebuild.call(
        "StartBuild",
        projectName="proj",
        buildspecOverride="version: 0.2\nphases:\n  build:\n    commands:\n    - echo a: b\n",
    )["build"]
    build = codebuild.wait(started["id"])
    assert build["buildStatus"] == "FAILED"
    assert [p["phaseType"] for p in build["phases"]][-3:] == ["DOWNLOAD_SOURCE", "FINALIZING", "COMPLETED"]
    context = build["phases"][-3]["contexts"][0]
    assert context["statusCode"] == "YAML_FILE_ERROR" and "line 5:" in context["message"]


def test_service_role_gone_fails_provisioning(codebuild):
    create(codebuild)
    iam = boto3.client("iam", region_name=REGION)
    iam.delete_role(RoleName="codebuild-role")
    build = codebuild.wait(codebuild.call("StartBuild", projectName="proj")["build"]["id"])
    assert build["buildStatus"] == "FAILED"
    provisioning = next(p for p in build["phases"] if p["phaseType"] == "PROVISIONING")
    assert provisioning["phaseStatus"] == "FAILED" and provisioning["contexts"][0]["statusCode"] == "CLIENT_ERROR"


def test_parameter_store_variable(codebuild):
    boto3.client("ssm", region_name=REGION).put_parameter(Name="/cb/secret", Value="s3cr3t", Type="SecureString")
    create(codebuild, spec="version: 0.2\nphases:\n  build:\n    commands: ['test \"$FROM_SSM\" = s3cr3t']\n")
    started = codebuild.call(
        "StartBuild",
        projectName="proj",
        environmentVariablesOverride=[{"name": "FROM_SSM", "value": "/cb/secret", "type": "PARAMETER_STORE"}],
    )["build"]
    assert codebuild.wait(started["id"])["buildStatus"] == "SUCCEEDED"


# ---------------------------------------------------------------------------------------------------------------
# concurrency, stop, timeouts


def test_account_quota_queues_builds_and_queue_limit(codebuild, tmp_path):
    codebuild.ctx.account_quota = 2
    codebuild.ctx.queue_limit = 1
    gate = tmp_path / "gate"
    create(codebuild, spec=gate_spec(gate))
    ids = [codebuild.call("StartBuild", projectName="proj")["build"]["id"] for _unused in range(3)]
    running = [codebuild.wait(i, until=lambda b: b["currentPhase"] == "BUILD") for i in ids[:2]]
    assert all(b["buildStatus"] == "IN_PROGRESS" for b in running)
    time.sleep(0.3)
    queued = codebuild.call("BatchGetBuilds", ids=[ids[2]])["builds"][0]
    assert (queued["buildStatus"], queued["currentPhase"]) == ("IN_PROGRESS", "QUEUED")
    error = codebuild.error("StartBuild", projectName="proj")
    assert error.code == "AccountLimitExceededException"
    assert error.message == "Cannot have more than 1 builds in queue for the account"
    gate.touch()
    for build_id in ids:
        assert codebuild.wait(build_id)["buildStatus"] == "SUCCEEDED"


def test_project_concurrent_build_limit_queues(codebuild, tmp_path):
    gate = tmp_path / "gate"
    create(codebuild, spec=gate_spec(gate), concurrentBuildLimit=1)
    create(codebuild, name="other", spec=gate_spec(gate))
    first = codebuild.call("StartBuild", projectName="proj")["build"]["id"]
    second = codebuild.call("StartBuild", projectName="proj")["build"]["id"]
    other = codebuild.call("StartBuild", projectName="other")["build"]["id"]
    codebuild.wait(first, until=lambda b: b["currentPhase"] == "BUILD")
    codebuild.wait(other, until=lambda b: b["currentPhase"] == "BUILD")  # another project is not held back
    time.sleep(0.3)
    assert codebuild.call("BatchGetBuilds", ids=[second])["builds"][0]["currentPhase"] == "QUEUED"
    gate.touch()
    build = codebuild.wait(second)
    assert build["buildStatus"] == "SUCCEEDED"
    queued = next(p for p in build["phases"] if p["phaseType"] == "QUEUED")
    assert queued["phaseStatus"] == "SUCCEEDED" and queued["endTime"] > queued["startTime"]


def test_stop_running_and_queued_builds(codebuild, tmp_path):
    codebuild.ctx.account_quota = 1
    create(codebuild, spec=gate_spec(tmp_path / "never"))
    running = codebuild.call("StartBuild", projectName="proj")["build"]["id"]
    queued = codebuild.call("StartBuild", projectName="proj")["build"]["id"]
    codebuild.wait(running, until=lambda b: b["currentPhase"] == "BUILD")
    stopped_queued = codebuild.call("StopBuild", id=queued)["build"]
    assert stopped_queued["buildStatus"] == "STOPPED" and stopped_queued["buildComplete"]
    began = time.time()
    codebuild.call("StopBuild", id=running)
    build = codebuild.wait(running, seconds=10)
    assert time.time() - began < 5
    assert build["buildStatus"] == "STOPPED"
    assert {p["phaseType"]: p.get("phaseStatus") for p in build["phases"]}["BUILD"] == "STOPPED"
    assert "POST_BUILD" not in [p["phaseType"] for p in build["phases"]]
    assert codebuild.error("StopBuild", id="proj:nope").code == "ResourceNotFoundException"


def test_timeout_in_minutes_with_time_scale(codebuild, tmp_path):
    codebuild.ctx.minute_seconds = 0.2  # timeoutInMinutes 5 = 1 s
    create(codebuild, spec=gate_spec(tmp_path / "never"), timeoutInMinutes=5)
    build = codebuild.wait(codebuild.call("StartBuild", projectName="proj")["build"]["id"], seconds=15)
    assert build["buildStatus"] == "TIMED_OUT"
    phase = next(p for p in build["phases"] if p["phaseType"] == "BUILD")
    assert phase["phaseStatus"] == "TIMED_OUT" and phase["contexts"][0]["statusCode"] == "BUILD_TIMED_OUT"
    assert build["endTime"] - build["startTime"] < 6


def test_queued_timeout(codebuild, tmp_path):
    codebuild.ctx.account_quota = 1
    codebuild.ctx.minute_seconds = 0.1  # queuedTimeoutInMinutes 5 = 0.5 s
    create(codebuild, spec=gate_spec(tmp_path / "gate"), queuedTimeoutInMinutes=5)
    first = codebuild.call("StartBuild", projectName="proj")["build"]["id"]
    second = codebuild.call("StartBuild", projectName="proj")["build"]["id"]
    build = codebuild.wait(second, seconds=10)
    assert build["buildStatus"] == "TIMED_OUT"
    assert build["phases"][1]["phaseType"] == "QUEUED" and build["phases"][1]["phaseStatus"] == "TIMED_OUT"
    (tmp_path / "gate").touch()
    assert codebuild.wait(first)["buildStatus"] == "SUCCEEDED"


def test_provisioning_delay(codebuild):
    codebuild.ctx.provisioning_seconds = 0.5
    create(codebuild)
    build = codebuild.wait(codebuild.call("StartBuild", projectName="proj")["build"]["id"])
    provisioning = next(p for p in build["phases"] if p["phaseType"] == "PROVISIONING")
    assert provisioning["endTime"] - provisioning["startTime"] >= 0.5


def test_shutdown_stops_running_builds(codebuild, tmp_path):
    create(codebuild, spec=gate_spec(tmp_path / "never"))
    build_id = codebuild.call("StartBuild", projectName="proj")["build"]["id"]
    codebuild.wait(build_id, until=lambda b: b["currentPhase"] == "BUILD")
    codebuild.service.shutdown()
    build = codebuild.call("BatchGetBuilds", ids=[build_id])["builds"][0]
    assert build["buildStatus"] == "STOPPED" and build["buildComplete"]
    error = codebuild.error("StartBuild", projectName="proj")
    assert error.code == "InvalidInputException"


def test_logs_stream_while_the_build_runs(codebuild, tmp_path):
    gate = tmp_path / "gate"
    spec = f"version: 0.2\nphases:\n  build:\n    commands:\n      - echo before-gate\n      - while [ ! -e {gate} ]; do sleep 0.05; done\n"
    create(codebuild, spec=spec)
    build_id = codebuild.call("StartBuild", projectName="proj")["build"]["id"]
    stream = build_id.split(":")[1]
    deadline = time.time() + 10
    while True:
        try:
            if "before-gate" in log_messages("/aws/codebuild/proj", stream):
                break
        except botocore.exceptions.ClientError as exc:  # the group or stream is created with the first lines
            assert exc.response["Error"]["Code"] == "ResourceNotFoundException"
        assert time.time() < deadline, "the log never showed the first line"
        time.sleep(0.05)
    assert codebuild.call("BatchGetBuilds", ids=[build_id])["builds"][0]["currentPhase"] == "BUILD"
    gate.touch()
    assert codebuild.wait(build_id)["buildStatus"] == "SUCCEEDED"


def test_trust_conditions_on_source_account_and_project_arn(codebuild):
    """A service role whose trust names the project (aws:SourceArn) and account (aws:SourceAccount), as the
    source_codebuild role may write it: CodeBuild may assume it for that project only."""
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": "codebuild.amazonaws.com"},
                "Action": "sts:AssumeRole",
                "Condition": {
                    "StringEquals": {"aws:SourceAccount": ACCOUNT},
                    "ArnLike": {"aws:SourceArn": f"arn:aws:codebuild:{REGION}:{ACCOUNT}:project/scoped"},
                },
            }
        ],
    }
    role = boto3.client("iam", region_name=REGION).create_role(
        RoleName="scoped-role", AssumeRolePolicyDocument=json.dumps(trust)
    )["Role"]["Arn"]
    create(codebuild, name="scoped", serviceRole=role)
    error = codebuild.error(
        "CreateProject",
        name="other",
        source={"type": "NO_SOURCE", "buildspec": "version: 0.2\nphases: {build: {commands: ['true']}}\n"},
        artifacts={"type": "NO_ARTIFACTS"},
        environment={"type": "LINUX_CONTAINER", "image": "x", "computeType": "BUILD_GENERAL1_SMALL"},
        serviceRole=role,
    )
    assert error.code == "InvalidInputException" and "sts:AssumeRole" in error.message
    build = codebuild.wait(codebuild.call("StartBuild", projectName="scoped")["build"]["id"])
    assert build["buildStatus"] == "SUCCEEDED"
