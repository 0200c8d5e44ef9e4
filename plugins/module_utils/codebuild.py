# -*- coding: utf-8 -*-

# Copyright: Contributors to the cloudops.ecr_replication project
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""AWS CodeBuild helpers, in the shape of amazon.aws ``module_utils/iam.py``.

- :class:`AnsibleCodeBuildError` / :class:`CodeBuildErrorHandler`: every helper raises the former,
  modules end in ``module.fail_json_aws_error(e)``.
- API helpers decorated with retries (``AWSRetry.jittered_backoff``) and the error handler.
- Pure functions that turn module options into a ``CreateProject`` request and compare it with
  what ``BatchGetProjects`` returns, so the ``codebuild_project`` module stays thin.
"""

from __future__ import annotations

import re
import time
from typing import Any
from typing import Iterable
from typing import Iterator

try:
    import botocore
except ImportError:
    pass  # Modules are responsible for handling this.

from ansible_collections.amazon.aws.plugins.module_utils.botocore import is_boto3_error_code
from ansible_collections.amazon.aws.plugins.module_utils.errors import AWSErrorHandler
from ansible_collections.amazon.aws.plugins.module_utils.exceptions import AnsibleAWSError
from ansible_collections.amazon.aws.plugins.module_utils.retries import AWSRetry

from ansible_collections.cloudops.ecr_replication.plugins.module_utils.validation import OptionError

# BatchGetBuilds accepts at most 100 ids per call.
BATCH_GET_BUILDS_MAX_IDS = 100

# Limits of CreateProject (AWS CodeBuild API reference).
TIMEOUT_RANGE = (5, 2160)
QUEUED_TIMEOUT_RANGE = (5, 480)
ENVIRONMENT_VARIABLE_VALUE_MAX = 4096

ENVIRONMENT_TYPES = (
    "LINUX_CONTAINER",
    "LINUX_GPU_CONTAINER",
    "ARM_CONTAINER",
    "WINDOWS_SERVER_2019_CONTAINER",
    "WINDOWS_SERVER_2022_CONTAINER",
    "LINUX_LAMBDA_CONTAINER",
    "ARM_LAMBDA_CONTAINER",
)
COMPUTE_TYPES = (
    "BUILD_GENERAL1_SMALL",
    "BUILD_GENERAL1_MEDIUM",
    "BUILD_GENERAL1_LARGE",
    "BUILD_GENERAL1_XLARGE",
    "BUILD_GENERAL1_2XLARGE",
    "BUILD_LAMBDA_1GB",
    "BUILD_LAMBDA_2GB",
    "BUILD_LAMBDA_4GB",
    "BUILD_LAMBDA_8GB",
    "BUILD_LAMBDA_10GB",
)
IMAGE_PULL_CREDENTIALS_TYPES = ("CODEBUILD", "SERVICE_ROLE")
ENVIRONMENT_VARIABLE_TYPES = ("PLAINTEXT", "PARAMETER_STORE", "SECRETS_MANAGER")
LOG_STATUSES = ("ENABLED", "DISABLED")


# AWSRetry's own list has "Throttling" but not CodeBuild's "ThrottlingException".
_RETRY = AWSRetry.jittered_backoff(catch_extra_error_codes=["ThrottlingException"])


class AnsibleCodeBuildError(AnsibleAWSError):
    pass


class CodeBuildErrorHandler(AWSErrorHandler):
    _CUSTOM_EXCEPTION = AnsibleCodeBuildError

    @classmethod
    def _is_missing(cls):
        return is_boto3_error_code("ResourceNotFoundException")


# ---------------------------------------------------------------------------------------------
# API helpers
# ---------------------------------------------------------------------------------------------


@CodeBuildErrorHandler.list_error_handler("get CodeBuild project {name}")
@_RETRY
def get_project(client, name: str) -> dict | None:
    """The project as ``BatchGetProjects`` returns it, or ``None`` if it does not exist."""
    projects = client.batch_get_projects(names=[name]).get("projects", [])
    for project in projects:
        if project.get("name") == name:
            return project
    return None


def is_role_propagation_error(error: Exception) -> bool:
    """CreateProject/UpdateProject right after the service role was created or changed: IAM is eventually
    consistent and CodeBuild answers InvalidInputException "... not authorized to perform: sts:AssumeRole"."""
    response = getattr(error, "response", None) or {}
    err = response.get("Error", {})
    return err.get("Code") == "InvalidInputException" and "sts:AssumeRole" in str(err.get("Message", ""))


def _with_role_propagation_retries(call, request: dict, attempts: int = 10, delay: float = 3.0) -> dict:
    for attempt in range(attempts):
        try:
            return call(**request)
        except botocore.exceptions.ClientError as e:
            if attempt == attempts - 1 or not is_role_propagation_error(e):
                raise
            time.sleep(delay)
    raise AssertionError("unreachable")


@CodeBuildErrorHandler.common_error_handler("create CodeBuild project")
@_RETRY
def create_project(client, request: dict) -> dict:
    return _with_role_propagation_retries(client.create_project, request)["project"]


@CodeBuildErrorHandler.common_error_handler("update CodeBuild project")
@_RETRY
def update_project(client, request: dict) -> dict:
    return _with_role_propagation_retries(client.update_project, request)["project"]


@CodeBuildErrorHandler.deletion_error_handler("delete CodeBuild project {name}")
@_RETRY
def delete_project(client, name: str) -> bool:
    client.delete_project(name=name)
    return True


@CodeBuildErrorHandler.common_error_handler("start a build of CodeBuild project {project_name}")
@_RETRY
def start_build(
    client,
    project_name: str,
    environment_variables: dict[str, Any] | None = None,
    **kwargs: Any,
) -> dict:
    """Start one build. ``environment_variables`` become overrides: a string is a PLAINTEXT value, a dict
    ``{"value": ..., "type": "PARAMETER_STORE" | "SECRETS_MANAGER"}`` names a secret that CodeBuild resolves inside
    the build (only the name is visible to ``BatchGetBuilds``). Returns the build."""
    request: dict[str, Any] = {"projectName": project_name}
    if environment_variables:
        request["environmentVariablesOverride"] = [
            {"name": name, "value": str(value["value"]), "type": value["type"]}
            if isinstance(value, dict)
            else {"name": name, "value": str(value), "type": "PLAINTEXT"}
            for name, value in environment_variables.items()
        ]
    request.update(kwargs)
    return client.start_build(**request)["build"]


@CodeBuildErrorHandler.common_error_handler("stop CodeBuild build {build_id}")
@_RETRY
def stop_build(client, build_id: str) -> dict:
    return client.stop_build(id=build_id)["build"]


def chunked(items: Iterable[str], size: int) -> Iterator[list[str]]:
    chunk: list[str] = []
    for item in items:
        chunk.append(item)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


@_RETRY
def _batch_get_builds(client, ids: list[str]) -> dict:
    return client.batch_get_builds(ids=ids)


@CodeBuildErrorHandler.common_error_handler("get CodeBuild builds")
def batch_get_builds(client, build_ids: Iterable[str]) -> list[dict]:
    """Builds for the ids, in the order asked, at most 100 ids per ``BatchGetBuilds`` call.

    Duplicate ids are asked once. Ids CodeBuild does not know are left out (they are in
    ``buildsNotFound``): compare the length of the result with the ids when that matters.
    """
    unique = list(dict.fromkeys(build_ids))
    found: dict[str, dict] = {}
    for chunk in chunked(unique, BATCH_GET_BUILDS_MAX_IDS):
        for build in _batch_get_builds(client, chunk).get("builds", []):
            found[build["id"]] = build
    return [found[i] for i in unique if i in found]


@CodeBuildErrorHandler.list_error_handler("list builds of CodeBuild project {project_name}", [])
@_RETRY
def list_build_ids_for_project(client, project_name: str, sort_order: str = "DESCENDING") -> list[str]:
    paginator = client.get_paginator("list_builds_for_project")
    return paginator.paginate(projectName=project_name, sortOrder=sort_order).build_full_result()["ids"]


# ---------------------------------------------------------------------------------------------
# Pure functions for the codebuild_project module
# ---------------------------------------------------------------------------------------------


def _check_range(option: str, value: int | None, bounds: tuple[int, int]) -> None:
    if value is None:
        return
    low, high = bounds
    if not low <= value <= high:
        raise OptionError(option, f"must be between {low} and {high}, got {value}")


def tags_list(tags: dict[str, Any]) -> list[dict[str, str]]:
    return [{"key": str(k), "value": "" if v is None else str(v)} for k, v in sorted(tags.items())]


def tags_dict(tags: list[dict[str, str]] | None) -> dict[str, str]:
    return {t["key"]: t.get("value", "") for t in tags or []}


def build_project_request(params: dict[str, Any]) -> dict[str, Any]:
    """A ``CreateProject``/``UpdateProject`` request from the module options (snake_case).

    Validates what the argument spec cannot express; raises :class:`OptionError`.
    ``tags`` are left out: the module merges them with ``purge_tags``.
    """
    name = params.get("name") or ""
    if not re.match(r"^[A-Za-z0-9][A-Za-z0-9_-]{1,254}$", name):
        raise OptionError(
            "name", f"must be 2-255 letters, digits, '-' or '_', starting alphanumeric, got {name!r}"
        )
    buildspec = params.get("buildspec")
    if not buildspec or not str(buildspec).strip():
        raise OptionError("buildspec", "is required with state=present and must not be empty")
    service_role = params.get("service_role")
    if not service_role or not str(service_role).startswith("arn:"):
        raise OptionError("service_role", f"must be the ARN of an IAM role, got {service_role!r}")
    _check_range("timeout_in_minutes", params.get("timeout_in_minutes"), TIMEOUT_RANGE)
    _check_range("queued_timeout_in_minutes", params.get("queued_timeout_in_minutes"), QUEUED_TIMEOUT_RANGE)
    limit = params.get("concurrent_build_limit")
    if limit is not None and limit < 1:
        raise OptionError("concurrent_build_limit", f"must be at least 1, got {limit}")

    env_params = params.get("environment") or {}
    image = env_params.get("image")
    if not image:
        raise OptionError("environment.image", "is required")
    variables = []
    seen = set()
    for variable in env_params.get("variables") or []:
        name = variable.get("name")
        if not name:
            raise OptionError("environment.variables.name", "is required for every variable")
        if name in seen:
            raise OptionError("environment.variables", f"variable {name!r} is given twice")
        seen.add(name)
        value = "" if variable.get("value") is None else str(variable["value"])
        if len(value) > ENVIRONMENT_VARIABLE_VALUE_MAX:
            raise OptionError(
                "environment.variables.value", f"{name!r} is longer than {ENVIRONMENT_VARIABLE_VALUE_MAX} characters"
            )
        variables.append({"name": name, "value": value, "type": variable.get("type") or "PLAINTEXT"})
    environment = {
        "type": env_params.get("type") or "LINUX_CONTAINER",
        "image": image,
        "computeType": env_params.get("compute_type") or "BUILD_GENERAL1_SMALL",
        "privilegedMode": bool(env_params.get("privileged_mode", False)),
        "imagePullCredentialsType": env_params.get("image_pull_credentials_type") or "CODEBUILD",
        "environmentVariables": variables,
    }

    logs_params = params.get("logs_config") or {}
    cw = logs_params.get("cloud_watch_logs") or {}
    s3 = logs_params.get("s3_logs") or {}
    cloud_watch_logs: dict[str, Any] = {"status": cw.get("status") or "ENABLED"}
    if cw.get("group_name"):
        cloud_watch_logs["groupName"] = cw["group_name"]
    if cw.get("stream_name"):
        cloud_watch_logs["streamName"] = cw["stream_name"]
    if cloud_watch_logs["status"] == "DISABLED" and len(cloud_watch_logs) > 1:
        raise OptionError("logs_config.cloud_watch_logs", "group_name/stream_name need status=ENABLED")
    s3_logs: dict[str, Any] = {"status": s3.get("status") or "DISABLED"}
    if s3_logs["status"] == "ENABLED":
        if not s3.get("location"):
            raise OptionError("logs_config.s3_logs.location", "is required with status=ENABLED")
        s3_logs["location"] = s3["location"]
        s3_logs["encryptionDisabled"] = bool(s3.get("encryption_disabled", False))
    elif s3.get("location"):
        raise OptionError("logs_config.s3_logs.location", "needs status=ENABLED")

    request: dict[str, Any] = {
        "name": params["name"],
        "description": params.get("description") or "",
        "source": {"type": "NO_SOURCE", "buildspec": buildspec},
        "artifacts": {"type": "NO_ARTIFACTS"},
        "environment": environment,
        "serviceRole": service_role,
        "timeoutInMinutes": params.get("timeout_in_minutes") or 60,
        "queuedTimeoutInMinutes": params.get("queued_timeout_in_minutes") or 480,
        "logsConfig": {"cloudWatchLogs": cloud_watch_logs, "s3Logs": s3_logs},
    }
    if limit is not None:
        request["concurrentBuildLimit"] = limit
    return request


def managed_view(project: dict[str, Any] | None) -> dict[str, Any] | None:
    """The part of a project this collection manages, with AWS defaults filled in.

    Applied to both ``BatchGetProjects`` output and a request, so the two compare equal when
    nothing would change (AWS adds fields such as ``encryptionDisabled`` or ``arn``).
    """
    if project is None:
        return None
    env = project.get("environment") or {}
    logs = project.get("logsConfig") or {}
    cw = logs.get("cloudWatchLogs") or {}
    s3 = logs.get("s3Logs") or {}
    source = project.get("source") or {}
    view: dict[str, Any] = {
        "name": project.get("name"),
        "description": project.get("description") or "",
        "source": {"type": source.get("type"), "buildspec": source.get("buildspec") or ""},
        "artifacts": {"type": (project.get("artifacts") or {}).get("type")},
        "environment": {
            "type": env.get("type"),
            "image": env.get("image"),
            "computeType": env.get("computeType"),
            "privilegedMode": bool(env.get("privilegedMode", False)),
            "imagePullCredentialsType": env.get("imagePullCredentialsType") or "CODEBUILD",
            "environmentVariables": [
                {"name": v["name"], "value": v.get("value", ""), "type": v.get("type") or "PLAINTEXT"}
                for v in env.get("environmentVariables") or []
            ],
        },
        "serviceRole": project.get("serviceRole"),
        "timeoutInMinutes": project.get("timeoutInMinutes") or 60,
        "queuedTimeoutInMinutes": project.get("queuedTimeoutInMinutes") or 480,
        "concurrentBuildLimit": project.get("concurrentBuildLimit"),
        "logsConfig": {
            "cloudWatchLogs": {
                k: v
                for k, v in {
                    "status": cw.get("status") or "ENABLED",
                    "groupName": cw.get("groupName"),
                    "streamName": cw.get("streamName"),
                }.items()
                if v
            },
            "s3Logs": {
                k: v
                for k, v in {
                    "status": s3.get("status") or "DISABLED",
                    "location": s3.get("location") if (s3.get("status") == "ENABLED") else None,
                    "encryptionDisabled": (
                        bool(s3.get("encryptionDisabled", False)) if s3.get("status") == "ENABLED" else None
                    ),
                }.items()
                if v is not None
            },
        },
    }
    return view


def desired_view(request: dict[str, Any], current: dict[str, Any] | None) -> dict[str, Any]:
    """The managed view after applying ``request`` to ``current``.

    ``concurrentBuildLimit`` left unset in the request keeps the current value.
    """
    view = managed_view(request)
    if "concurrentBuildLimit" not in request and current is not None:
        view["concurrentBuildLimit"] = current.get("concurrentBuildLimit")
    return view


def merge_tags(current: dict[str, str], desired: dict[str, str] | None, purge: bool) -> dict[str, str]:
    if desired is None:
        return dict(current)
    merged = {} if purge else dict(current)
    merged.update({str(k): "" if v is None else str(v) for k, v in desired.items()})
    return merged


def project_changes(current: dict[str, Any] | None, request: dict[str, Any]) -> list[str]:
    """Names of the top-level fields that differ between ``current`` and the request."""
    before = managed_view(current) or {}
    after = desired_view(request, current)
    return sorted(k for k in after if before.get(k) != after[k])
