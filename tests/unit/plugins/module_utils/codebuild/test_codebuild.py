"""module_utils/codebuild.py: error handler, BatchGetBuilds batching, project request and comparison.

The API helpers are exercised with botocore's Stubber on a real CodeBuild client: the sandbox accepts
any number of ids in BatchGetBuilds, so it cannot show that we never send more than the 100 AWS allows,
nor produce AWS's throttling errors. Everything else about CodeBuild is tested against the sandbox
(tests/integration/provisioning).
"""

from __future__ import annotations

import boto3
import botocore.exceptions
import pytest
from botocore.stub import Stubber

from ansible_collections.cloudops.ecr_replication.plugins.module_utils import codebuild as cb


@pytest.fixture
def client():
    return boto3.client(
        "codebuild",
        region_name="ap-south-1",
        aws_access_key_id="x",
        aws_secret_access_key="y",
        endpoint_url="http://127.0.0.1:9",
    )


def client_error(code, operation="BatchGetProjects", message="boom"):
    return botocore.exceptions.ClientError({"Error": {"Code": code, "Message": message}}, operation)


# ---- error handler ----------------------------------------------------------------------------


def test_error_handler_wraps_client_errors_with_the_description():
    @cb.CodeBuildErrorHandler.common_error_handler("start a build of {name}")
    def fails(name):
        raise client_error("AccountLimitExceededException", "StartBuild", "too many")

    with pytest.raises(cb.AnsibleCodeBuildError) as exc:
        fails("ecr-replication")
    assert exc.value.message == "Failed to start a build of ecr-replication"
    assert exc.value.exception.response["Error"]["Code"] == "AccountLimitExceededException"


def test_deletion_handler_treats_missing_as_done():
    @cb.CodeBuildErrorHandler.deletion_error_handler("delete")
    def gone():
        raise client_error("ResourceNotFoundException", "DeleteProject")

    assert gone() is False


def test_get_project_missing_and_present(client):
    with Stubber(client) as stub:
        stub.add_response("batch_get_projects", {"projects": [], "projectsNotFound": ["p1"]}, {"names": ["p1"]})
        stub.add_response("batch_get_projects", {"projects": [{"name": "p1", "arn": "arn"}]}, {"names": ["p1"]})
        assert cb.get_project(client, "p1") is None
        assert cb.get_project(client, "p1") == {"name": "p1", "arn": "arn"}


def test_get_project_access_denied_is_an_error(client):
    with Stubber(client) as stub:
        stub.add_client_error("batch_get_projects", "AccessDeniedException", "no", 400)
        with pytest.raises(cb.AnsibleCodeBuildError, match="Failed to get CodeBuild project p1"):
            cb.get_project(client, "p1")


def test_throttling_is_retried(client, monkeypatch):
    monkeypatch.setattr("time.sleep", lambda s: None)
    with Stubber(client) as stub:
        stub.add_client_error("stop_build", "ThrottlingException", "slow down", 400)
        stub.add_response("stop_build", {"build": {"id": "p:1", "buildStatus": "STOPPED"}}, {"id": "p:1"})
        assert cb.stop_build(client, "p:1")["buildStatus"] == "STOPPED"


# ---- builds -----------------------------------------------------------------------------------


def test_batch_get_builds_sends_at_most_100_ids_and_keeps_order(client):
    ids = [f"ecr-replication:{i:04d}" for i in range(250)]
    asked = list(reversed(ids)) + ids[:5]  # duplicates are asked once
    unique = list(reversed(ids))
    with Stubber(client) as stub:
        for start in (0, 100, 200):
            chunk = unique[start : start + 100]
            found = [{"id": i, "buildStatus": "SUCCEEDED"} for i in chunk if i != "ecr-replication:0007"]
            stub.add_response("batch_get_builds", {"builds": list(reversed(found))}, {"ids": chunk})
        builds = cb.batch_get_builds(client, asked)
        stub.assert_no_pending_responses()
    assert [b["id"] for b in builds] == [i for i in unique if i != "ecr-replication:0007"]


def test_batch_get_builds_no_ids_no_call(client):
    with Stubber(client):
        assert cb.batch_get_builds(client, []) == []


def test_start_build_environment_overrides(client):
    expected = {
        "projectName": "ecr-replication",
        "environmentVariablesOverride": [
            {"name": "BATCH", "value": "[]", "type": "PLAINTEXT"},
            {"name": "N", "value": "3", "type": "PLAINTEXT"},
        ],
        "timeoutInMinutesOverride": 30,
    }
    with Stubber(client) as stub:
        stub.add_response("start_build", {"build": {"id": "ecr-replication:1"}}, expected)
        build = cb.start_build(client, "ecr-replication", {"BATCH": "[]", "N": 3}, timeoutInMinutesOverride=30)
    assert build["id"] == "ecr-replication:1"


def test_list_build_ids_for_project_pages(client):
    with Stubber(client) as stub:
        stub.add_response(
            "list_builds_for_project",
            {"ids": ["p:3", "p:2"], "nextToken": "t"},
            {"projectName": "p", "sortOrder": "DESCENDING"},
        )
        stub.add_response(
            "list_builds_for_project",
            {"ids": ["p:1"]},
            {"projectName": "p", "sortOrder": "DESCENDING", "nextToken": "t"},
        )
        assert cb.list_build_ids_for_project(client, "p") == ["p:3", "p:2", "p:1"]


# ---- project request and comparison -----------------------------------------------------------

ROLE = "arn:aws:iam::111111111111:role/ecr-replication-codebuild"


def params(**overrides):
    base = {
        "name": "ecr-replication",
        "description": "copies images",
        "buildspec": "version: 0.2\nphases: {build: {commands: [echo hi]}}\n",
        "service_role": ROLE,
        "environment": {
            "type": "LINUX_CONTAINER",
            "image": "aws/codebuild/standard:7.0",
            "compute_type": "BUILD_GENERAL1_SMALL",
            "privileged_mode": False,
            "image_pull_credentials_type": "CODEBUILD",
            "variables": [{"name": "A", "value": "1", "type": "PLAINTEXT"}],
        },
        "timeout_in_minutes": 60,
        "queued_timeout_in_minutes": 480,
        "concurrent_build_limit": 5,
        "logs_config": {"cloud_watch_logs": {"status": "ENABLED", "group_name": "/aws/codebuild/ecr-replication"}},
    }
    base.update(overrides)
    return base


def test_build_project_request():
    request = cb.build_project_request(params())
    assert request == {
        "name": "ecr-replication",
        "description": "copies images",
        "source": {"type": "NO_SOURCE", "buildspec": params()["buildspec"]},
        "artifacts": {"type": "NO_ARTIFACTS"},
        "environment": {
            "type": "LINUX_CONTAINER",
            "image": "aws/codebuild/standard:7.0",
            "computeType": "BUILD_GENERAL1_SMALL",
            "privilegedMode": False,
            "imagePullCredentialsType": "CODEBUILD",
            "environmentVariables": [{"name": "A", "value": "1", "type": "PLAINTEXT"}],
        },
        "serviceRole": ROLE,
        "timeoutInMinutes": 60,
        "queuedTimeoutInMinutes": 480,
        "concurrentBuildLimit": 5,
        "logsConfig": {
            "cloudWatchLogs": {"status": "ENABLED", "groupName": "/aws/codebuild/ecr-replication"},
            "s3Logs": {"status": "DISABLED"},
        },
    }


@pytest.mark.parametrize(
    "overrides, option",
    [
        ({"name": "a b"}, "name"),
        ({"buildspec": "  "}, "buildspec"),
        ({"service_role": "ecr-replication-codebuild"}, "service_role"),
        ({"timeout_in_minutes": 4}, "timeout_in_minutes"),
        ({"timeout_in_minutes": 2161}, "timeout_in_minutes"),
        ({"queued_timeout_in_minutes": 481}, "queued_timeout_in_minutes"),
        ({"concurrent_build_limit": 0}, "concurrent_build_limit"),
        ({"environment": {"image": ""}}, "environment.image"),
        (
            {"environment": {"image": "i", "variables": [{"name": "A", "value": "x" * 4097}]}},
            "environment.variables.value",
        ),
        (
            {"environment": {"image": "i", "variables": [{"name": "A", "value": "1"}, {"name": "A", "value": "2"}]}},
            "environment.variables",
        ),
        ({"logs_config": {"s3_logs": {"status": "ENABLED"}}}, "logs_config.s3_logs.location"),
        (
            {"logs_config": {"cloud_watch_logs": {"status": "DISABLED", "group_name": "g"}}},
            "logs_config.cloud_watch_logs",
        ),
    ],
)
def test_build_project_request_bad_input(overrides, option):
    with pytest.raises(cb.OptionError) as exc:
        cb.build_project_request(params(**overrides))
    assert exc.value.option == option


def as_returned_by_aws(request):
    """What BatchGetProjects returns for a project created with ``request``: extra fields and defaults."""
    project = dict(request)
    project.update(
        arn="arn:aws:codebuild:ap-south-1:111111111111:project/ecr-replication",
        created="2026-01-01T00:00:00Z",
        lastModified="2026-01-01T00:00:00Z",
        encryptionKey="arn:aws:kms:ap-south-1:111111111111:alias/aws/s3",
        badge={"badgeEnabled": False},
        projectVisibility="PRIVATE",
    )
    project["source"] = dict(request["source"], insecureSsl=False)
    project["environment"] = dict(request["environment"])
    project["logsConfig"] = {
        "cloudWatchLogs": request["logsConfig"]["cloudWatchLogs"],
        "s3Logs": {"status": "DISABLED", "encryptionDisabled": False},
    }
    return project


def test_no_changes_against_what_aws_returns():
    request = cb.build_project_request(params())
    assert cb.project_changes(as_returned_by_aws(request), request) == []


def test_changes_are_named():
    current = as_returned_by_aws(cb.build_project_request(params()))
    request = cb.build_project_request(params(concurrent_build_limit=2, timeout_in_minutes=30))
    assert cb.project_changes(current, request) == ["concurrentBuildLimit", "timeoutInMinutes"]
    request = cb.build_project_request(params(buildspec="version: 0.2\n"))
    assert cb.project_changes(current, request) == ["source"]


def test_unset_concurrency_limit_keeps_the_current_one():
    current = as_returned_by_aws(cb.build_project_request(params()))
    request = cb.build_project_request(params(concurrent_build_limit=None))
    assert "concurrentBuildLimit" not in request
    assert cb.project_changes(current, request) == []


def test_merge_tags():
    assert cb.merge_tags({"a": "1", "b": "2"}, {"b": "3"}, purge=True) == {"b": "3"}
    assert cb.merge_tags({"a": "1", "b": "2"}, {"b": "3"}, purge=False) == {"a": "1", "b": "3"}
    assert cb.merge_tags({"a": "1"}, None, purge=True) == {"a": "1"}
    assert cb.tags_list({"b": 2, "a": None}) == [{"key": "a", "value": ""}, {"key": "b", "value": "2"}]
    assert cb.tags_dict([{"key": "a", "value": "1"}]) == {"a": "1"}


def test_create_project_waits_for_the_new_service_role(client, monkeypatch):
    monkeypatch.setattr(cb.time, "sleep", lambda s: None)
    request = cb.build_project_request(params())
    with Stubber(client) as stub:
        stub.add_client_error(
            "create_project",
            "InvalidInputException",
            "CodeBuild is not authorized to perform: sts:AssumeRole on arn:aws:iam::111111111111:role/x",
            400,
        )
        stub.add_response("create_project", {"project": {"name": "ecr-replication"}}, request)
        assert cb.create_project(client, request) == {"name": "ecr-replication"}


def test_create_project_invalid_input_fails_at_once(client, monkeypatch):
    monkeypatch.setattr(cb.time, "sleep", lambda s: pytest.fail("must not wait"))
    request = cb.build_project_request(params())
    with Stubber(client) as stub:
        stub.add_client_error("create_project", "InvalidInputException", "Invalid image", 400)
        with pytest.raises(cb.AnsibleCodeBuildError, match="Failed to create CodeBuild project"):
            cb.create_project(client, request)
