"""The sandbox CodeBuild: projects and builds that really run, on the product's buildspec runner.

moto's CodeBuild stores projects but runs nothing (NO_SOURCE refused, no UpdateProject, builds SUCCEEDED at once,
environment overrides dropped), so the sandbox server routes every ``X-Amz-Target: CodeBuild_20161006.*`` request
here. A build:

- waits in the queue while the account's concurrent builds (``ctx.account_quota``, per account and region) or the
  project's ``concurrentBuildLimit`` are used up; past ``ctx.queue_limit`` queued builds ``StartBuild`` raises
  ``AccountLimitExceededException`` ("Cannot have more than N builds in queue for the account");
- assumes the project's service role as ``codebuild.amazonaws.com`` (so it acts in the role's account), waits
  ``ctx.provisioning_seconds``, then runs the buildspec (``buildspecOverride`` or the project's inline one) with
  ``plugins/module_utils/buildspec_runner.py`` in ``ctx.sandbox_dir/codebuild/<project>/<uuid>`` with its own
  ``HOME`` and ``XDG_RUNTIME_DIR`` (``skopeo login`` of parallel builds do not share an auth file);
- writes its output to CloudWatch Logs in moto (group ``/aws/codebuild/<project>`` or the project's ``logsConfig``
  group, stream ``<uuid>`` or ``<logsConfig streamName>/<uuid>``, as CodeBuild names them);
- reports phases as ``BatchGetBuilds`` does: SUBMITTED, QUEUED, PROVISIONING, DOWNLOAD_SOURCE, INSTALL, PRE_BUILD,
  BUILD, POST_BUILD, UPLOAD_ARTIFACTS, FINALIZING, COMPLETED, with ``buildStatus`` IN_PROGRESS (also while queued:
  the API has no QUEUED status, ``currentPhase`` says QUEUED) then SUCCEEDED / FAILED / STOPPED / TIMED_OUT.
  An invalid buildspec fails DOWNLOAD_SOURCE with ``YAML_FILE_ERROR`` naming the line;
- is timed out after ``timeoutInMinutes`` x ``ctx.minute_seconds`` seconds (queued builds after
  ``queuedTimeoutInMinutes``).

Environment of a build (lowest to highest precedence): ``ctx.base_env``; ``AWS_REGION``/``AWS_DEFAULT_REGION`` and
the service role's session credentials; the buildspec's ``env.variables`` (below everything given here, as in
CodeBuild); the project's ``environmentVariables``; ``environmentVariablesOverride``; the ``CODEBUILD_*`` variables.
PLAINTEXT, PARAMETER_STORE (moto SSM) and SECRETS_MANAGER (moto Secrets Manager) variables are resolved.

Only ``NO_SOURCE`` projects with an inline buildspec and ``NO_ARTIFACTS`` are supported (others are refused with
InvalidInputException saying so); VPC, cache, S3 logs, batch builds, webhooks and reports are not emulated.
Timestamps are returned as epoch seconds (botocore parses them).

Injected faults (``ctx.faults``, ``tests/sandbox/faults.py``): ``StartBuild`` answering
``AccountLimitExceededException``; builds that fail in INSTALL, time out or are stopped a few seconds after they
start running.
"""

from __future__ import annotations

import copy
import inspect
import json
import re
import shutil
import threading
import time
import uuid
from typing import Any

import botocore.session
from botocore.validate import ParamValidator

try:
    from ansible_collections.cloudops.ecr_replication.plugins.module_utils import buildspec_runner
except ImportError:  # the sandbox process runs from the work tree, without the collection on sys.path
    import importlib.util
    import sys
    from pathlib import Path

    _PATH = Path(__file__).resolve().parents[2] / "plugins" / "module_utils" / "buildspec_runner.py"
    _SPEC = importlib.util.spec_from_file_location("_sandbox_buildspec_runner", _PATH)
    buildspec_runner = importlib.util.module_from_spec(_SPEC)
    sys.modules[_SPEC.name] = buildspec_runner  # dataclasses look their module up
    _SPEC.loader.exec_module(buildspec_runner)

PHASE_TYPES = buildspec_runner.PHASE_TYPES
BuildspecError = buildspec_runner.BuildspecError
BuildspecRunner = buildspec_runner.BuildspecRunner
PhaseResult = buildspec_runner.PhaseResult
load_buildspec = buildspec_runner.load_buildspec

PROJECT_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9\-_]{1,254}$")
PAGE_SIZE = 100
LOG_FLUSH_SECONDS = 0.2
RUNNER_PHASES = set(PHASE_TYPES.values())
_MODEL = None


def service_model():
    global _MODEL
    if _MODEL is None:
        _MODEL = botocore.session.get_session().get_service_model("codebuild")
    return _MODEL


class CodeBuildApiError(Exception):
    """An error as CodeBuild returns it: ``__type`` = code, HTTP 400 unless told."""

    def __init__(self, code: str, message: str, status: int = 400):
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.status = status


def _invalid(message: str) -> CodeBuildApiError:
    return CodeBuildApiError("InvalidInputException", message)


class _Build:
    """One build: its API document (``data``) and what runs it."""

    def __init__(self, account: str, region: str, project: dict[str, Any], data: dict[str, Any], env: list[dict]):
        self.account = account
        self.region = region
        self.project_name = project["name"]
        self.project = copy.deepcopy(project)
        self.data = data
        self.env_vars = env
        self.id = data["id"]
        self.uuid = self.id.split(":", 1)[1]
        self.queued_at = time.time()
        self.started_at: float | None = None
        self.stop_event = threading.Event()
        self.stop_reason: str | None = None
        self.runner: BuildspecRunner | None = None
        self.thread: threading.Thread | None = None
        self.log_lines: list[tuple[int, str]] = []
        self.log_lock = threading.Lock()
        self.flush_lock = threading.Lock()
        self.log_target: tuple[str, str] | None = None
        self.fault: tuple[str, float] | None = None  # injected (faults.py): ("fail"|"time_out"|"stop", seconds)

    @property
    def state(self) -> str:
        if self.data["buildComplete"]:
            return "COMPLETED"
        return "QUEUED" if self.data["currentPhase"] == "QUEUED" else "RUNNING"


class CodeBuildService:
    """CodeBuild_20161006 operations on sandbox state. Thread-safe; builds run in threads."""

    OPERATIONS = (
        "CreateProject",
        "UpdateProject",
        "DeleteProject",
        "BatchGetProjects",
        "ListProjects",
        "StartBuild",
        "BatchGetBuilds",
        "StopBuild",
        "ListBuilds",
        "ListBuildsForProject",
    )

    def __init__(self, ctx: Any):
        self.ctx = ctx
        self.lock = threading.RLock()
        self.projects: dict[tuple[str, str], dict[str, dict[str, Any]]] = {}
        self.builds: dict[tuple[str, str], dict[str, _Build]] = {}
        self.build_numbers: dict[tuple[str, str, str], int] = {}
        self.idempotency: dict[tuple[str, str, str], tuple[float, str]] = {}
        self.closing = False
        self.wake = threading.Event()
        self.pump = threading.Thread(target=self._pump, name="codebuild-pump", daemon=True)
        self.pump.start()

    # ------------------------------------------------------------------------------------------------------
    # dispatch

    def handle(self, operation: str, body: dict, account_id: str, region: str) -> dict:
        if operation not in self.OPERATIONS:
            raise CodeBuildApiError(
                "InvalidAction", f"the sandbox CodeBuild does not implement {operation}", status=400
            )
        model = service_model().operation_model(operation)
        report = ParamValidator().validate(body or {}, model.input_shape)
        if report.has_errors():
            raise _invalid(report.generate_report())
        method = getattr(self, "_" + re.sub(r"(?<!^)([A-Z])", r"_\1", operation).lower())
        with self.lock:
            return method(body or {}, account_id, region)

    def shutdown(self) -> None:
        """Stop every queued and running build (marked STOPPED) and wait for them."""
        with self.lock:
            self.closing = True
            builds = [b for per in self.builds.values() for b in per.values() if b.state != "COMPLETED"]
            for build in builds:
                self._stop(build, "sandbox shut down")
        for build in builds:
            if build.thread is not None:
                build.thread.join(timeout=15)
        self.wake.set()
        self.pump.join(timeout=5)
        for build in builds:
            self._flush_logs(build)

    # ------------------------------------------------------------------------------------------------------
    # projects

    def _arn(self, account: str, region: str, kind: str, name: str) -> str:
        return f"arn:aws:codebuild:{region}:{account}:{kind}/{name}"

    def _project_table(self, account: str, region: str) -> dict[str, dict[str, Any]]:
        return self.projects.setdefault((account, region), {})

    def _find_project(self, account: str, region: str, name_or_arn: str) -> dict[str, Any] | None:
        name = name_or_arn
        if name_or_arn.startswith("arn:"):
            parts = name_or_arn.split(":", 5)
            if len(parts) < 6 or parts[3] != region or parts[4] != account or not parts[5].startswith("project/"):
                return None
            name = parts[5][len("project/") :]
        return self._project_table(account, region).get(name)

    def _not_found(self, account: str, region: str, name: str) -> CodeBuildApiError:
        arn = name if name.startswith("arn:") else self._arn(account, region, "project", name)
        return CodeBuildApiError("ResourceNotFoundException", f"Project cannot be found: {arn}")

    def _check_project_fields(self, body: dict, account: str, region: str) -> None:
        source = body.get("source")
        if source is not None:
            if source.get("type") != "NO_SOURCE":
                raise _invalid(
                    f"source type {source.get('type')} is not supported by the sandbox CodeBuild (use NO_SOURCE)"
                )
            if not (source.get("buildspec") or "").strip():
                raise _invalid("Project source buildspec cannot be empty for NO_SOURCE source type")
        artifacts = body.get("artifacts")
        if artifacts is not None and artifacts.get("type") != "NO_ARTIFACTS":
            raise _invalid(
                f"artifacts type {artifacts.get('type')} is not supported by the sandbox CodeBuild (use NO_ARTIFACTS)"
            )
        if "timeoutInMinutes" in body and not 5 <= body["timeoutInMinutes"] <= 2160:
            raise _invalid("timeoutInMinutes must be between 5 and 2160")
        if "queuedTimeoutInMinutes" in body and not 5 <= body["queuedTimeoutInMinutes"] <= 480:
            raise _invalid("queuedTimeoutInMinutes must be between 5 and 480")
        limit = body.get("concurrentBuildLimit")
        if limit is not None and limit != -1:
            if limit < 1:
                raise _invalid("Project-level concurrent build limit must be at least 1")
            if limit > self.ctx.account_quota:
                raise _invalid(
                    "Project-level concurrent build limit cannot exceed the account-level concurrent build limit "
                    f"of {self.ctx.account_quota}."
                )
        for variable in (body.get("environment") or {}).get("environmentVariables", []):
            self._check_variable(variable)
        role = body.get("serviceRole")
        if role is not None:
            role_arn = self._role_arn(account, role)
            project_arn = self._arn(account, region, "project", body["name"])
            try:
                self._assume_role(role_arn, "AWSCodeBuild-validation", project_arn)
            except PermissionError:
                raise _invalid(f"CodeBuild is not authorized to perform: sts:AssumeRole on {role_arn}") from None

    @staticmethod
    def _check_variable(variable: dict) -> None:
        name = variable.get("name", "")
        if name.startswith("CODEBUILD_"):
            raise _invalid(f"Invalid environment variable name {name}: the prefix CODEBUILD_ is reserved")
        if variable.get("type", "PLAINTEXT") not in ("PLAINTEXT", "PARAMETER_STORE", "SECRETS_MANAGER"):
            raise _invalid(f"Invalid environment variable type {variable.get('type')} for {name}")

    def _assume_role(self, role_arn: str, session_name: str, project_arn: str) -> dict:
        """Assume the service role as codebuild.amazonaws.com; with ``aws:SourceArn`` = the project ARN (as CodeBuild
        sends it, for confused-deputy trust conditions) when the sandbox's ``ctx.assume_role`` takes ``source_arn``."""
        if "source_arn" in inspect.signature(self.ctx.assume_role).parameters:
            return self.ctx.assume_role(role_arn, session_name, source_arn=project_arn)
        return self.ctx.assume_role(role_arn, session_name)

    @staticmethod
    def _role_arn(account: str, role: str) -> str:
        return role if role.startswith("arn:") else f"arn:aws:iam::{account}:role/{role}"

    def _create_project(self, body: dict, account: str, region: str) -> dict:
        name = body["name"]
        if not PROJECT_NAME_RE.match(name):
            raise _invalid(f"Invalid project name: {name}")
        table = self._project_table(account, region)
        if name in table:
            raise CodeBuildApiError(
                "ResourceAlreadyExistsException",
                f"Project already exists: {self._arn(account, region, 'project', name)}",
            )
        self._check_project_fields(body, account, region)
        now = time.time()
        project: dict[str, Any] = {
            "name": name,
            "arn": self._arn(account, region, "project", name),
            "source": {"insecureSsl": False},
            "secondarySources": [],
            "secondarySourceVersions": [],
            "artifacts": {},
            "secondaryArtifacts": [],
            "cache": {"type": "NO_CACHE"},
            "environment": {},
            "serviceRole": "",
            "timeoutInMinutes": 60,
            "queuedTimeoutInMinutes": 480,
            "encryptionKey": f"arn:aws:kms:{region}:{account}:alias/aws/s3",
            "tags": [],
            "created": now,
            "lastModified": now,
            "badge": {"badgeEnabled": False},
            "logsConfig": {"cloudWatchLogs": {"status": "ENABLED"}, "s3Logs": {"status": "DISABLED"}},
            "projectVisibility": "PRIVATE",
        }
        self._apply_project_fields(project, body, account)
        table[name] = project
        return {"project": copy.deepcopy(project)}

    def _apply_project_fields(self, project: dict, body: dict, account: str) -> None:
        for key in ("description", "timeoutInMinutes", "queuedTimeoutInMinutes", "tags", "encryptionKey"):
            if key in body:
                project[key] = copy.deepcopy(body[key])
        if "source" in body:
            project["source"] = dict({"insecureSsl": False}, **copy.deepcopy(body["source"]))
        if "artifacts" in body:
            project["artifacts"] = copy.deepcopy(body["artifacts"])
        if "serviceRole" in body:
            project["serviceRole"] = self._role_arn(account, body["serviceRole"])
        if "environment" in body:
            environment = copy.deepcopy(body["environment"])
            environment.setdefault("environmentVariables", [])
            for variable in environment["environmentVariables"]:
                variable.setdefault("type", "PLAINTEXT")
            environment.setdefault("privilegedMode", False)
            environment.setdefault("imagePullCredentialsType", "CODEBUILD")
            project["environment"] = environment
        if "logsConfig" in body:
            logs = copy.deepcopy(body["logsConfig"])
            logs.setdefault("cloudWatchLogs", {"status": "ENABLED"})
            logs.setdefault("s3Logs", {"status": "DISABLED"})
            project["logsConfig"] = logs
        if "badgeEnabled" in body:
            project["badge"] = {"badgeEnabled": bool(body["badgeEnabled"])}
        if "concurrentBuildLimit" in body:
            if body["concurrentBuildLimit"] == -1:
                project.pop("concurrentBuildLimit", None)
            else:
                project["concurrentBuildLimit"] = body["concurrentBuildLimit"]

    def _update_project(self, body: dict, account: str, region: str) -> dict:
        project = self._find_project(account, region, body["name"])
        if project is None:
            raise self._not_found(account, region, body["name"])
        self._check_project_fields(body, account, region)
        self._apply_project_fields(project, {k: v for k, v in body.items() if k != "name"}, account)
        project["lastModified"] = time.time()
        self.wake.set()  # a higher concurrentBuildLimit may let queued builds start
        return {"project": copy.deepcopy(project)}

    def _delete_project(self, body: dict, account: str, region: str) -> dict:
        project = self._find_project(account, region, body["name"])
        if project is not None:
            del self._project_table(account, region)[project["name"]]
        return {}

    def _batch_get_projects(self, body: dict, account: str, region: str) -> dict:
        names = body["names"]
        if not 1 <= len(names) <= 100:
            raise _invalid("names must contain between 1 and 100 items")
        found, missing = [], []
        for name in names:
            project = self._find_project(account, region, name)
            if project is None:
                missing.append(name)
            else:
                found.append(copy.deepcopy(project))
        return {"projects": found, "projectsNotFound": missing}

    def _list_projects(self, body: dict, account: str, region: str) -> dict:
        sort_by = body.get("sortBy", "NAME")
        key = {"NAME": "name", "CREATED_TIME": "created", "LAST_MODIFIED_TIME": "lastModified"}[sort_by]
        projects = sorted(self._project_table(account, region).values(), key=lambda p: (p[key], p["name"]))
        if body.get("sortOrder", "ASCENDING") == "DESCENDING":
            projects.reverse()
        return self._page([p["name"] for p in projects], body.get("nextToken"), "projects")

    @staticmethod
    def _page(items: list[str], token: str | None, key: str) -> dict:
        start = 0
        if token:
            try:
                start = int(token)
            except ValueError:
                raise _invalid("Invalid nextToken") from None
            if not 0 <= start <= len(items):
                raise _invalid("Invalid nextToken")
        result: dict[str, Any] = {key: items[start : start + PAGE_SIZE]}
        if start + PAGE_SIZE < len(items):
            result["nextToken"] = str(start + PAGE_SIZE)
        return result

    # ------------------------------------------------------------------------------------------------------
    # builds: API

    def _build_table(self, account: str, region: str) -> dict[str, _Build]:
        return self.builds.setdefault((account, region), {})

    def _find_build(self, account: str, region: str, id_or_arn: str) -> _Build | None:
        build_id = id_or_arn
        if id_or_arn.startswith("arn:"):
            parts = id_or_arn.split(":", 5)
            if len(parts) < 6 or not parts[5].startswith("build/"):
                return None
            build_id = parts[5][len("build/") :]
        return self._build_table(account, region).get(build_id)

    def _start_build(self, body: dict, account: str, region: str) -> dict:
        if self.closing:
            raise CodeBuildApiError("InvalidInputException", "the sandbox is shutting down")
        faults = getattr(self.ctx, "faults", None)
        if faults is not None and faults.take_queue_full():  # injected (faults.py): the queue is full
            from .faults import QUEUE_FULL_MESSAGE

            raise CodeBuildApiError("AccountLimitExceededException", QUEUE_FULL_MESSAGE)
        project = self._find_project(account, region, body["projectName"])
        if project is None:
            raise self._not_found(account, region, body["projectName"])
        token = body.get("idempotencyToken")
        if token:
            previous = self.idempotency.get((account, region, token))
            if previous and time.time() - previous[0] < 300:
                return {"build": self._view(self._build_table(account, region)[previous[1]])}
        if "sourceTypeOverride" in body and body["sourceTypeOverride"] != "NO_SOURCE":
            raise _invalid("sourceTypeOverride: only NO_SOURCE is supported by the sandbox CodeBuild")
        if "timeoutInMinutesOverride" in body and not 5 <= body["timeoutInMinutesOverride"] <= 2160:
            raise _invalid("timeoutInMinutesOverride must be between 5 and 2160")
        if "queuedTimeoutInMinutesOverride" in body and not 5 <= body["queuedTimeoutInMinutesOverride"] <= 480:
            raise _invalid("queuedTimeoutInMinutesOverride must be between 5 and 480")
        for variable in body.get("environmentVariablesOverride", []):
            self._check_variable(variable)
        queued = sum(1 for b in self._build_table(account, region).values() if b.state == "QUEUED")
        if queued >= self.ctx.queue_limit:
            raise CodeBuildApiError(
                "AccountLimitExceededException",
                f"Cannot have more than {self.ctx.queue_limit} builds in queue for the account",
            )

        number_key = (account, region, project["name"])
        self.build_numbers[number_key] = self.build_numbers.get(number_key, 0) + 1
        build_uuid = str(uuid.uuid4())
        build_id = f"{project['name']}:{build_uuid}"
        now = time.time()
        environment = copy.deepcopy(project["environment"])
        variables = {
            v["name"]: dict(v, type=v.get("type", "PLAINTEXT")) for v in environment.get("environmentVariables", [])
        }
        for variable in body.get("environmentVariablesOverride", []):
            variables[variable["name"]] = dict(variable, type=variable.get("type", "PLAINTEXT"))
        environment["environmentVariables"] = list(variables.values())
        overrides = {
            "imageOverride": "image",
            "computeTypeOverride": "computeType",
            "environmentTypeOverride": "type",
            "privilegedModeOverride": "privilegedMode",
        }
        for override, key in overrides.items():
            if override in body:
                environment[key] = body[override]
        source = copy.deepcopy(project["source"])
        if "buildspecOverride" in body:
            source["buildspec"] = body["buildspecOverride"]
        logs_config = copy.deepcopy(body.get("logsConfigOverride") or project["logsConfig"])
        data: dict[str, Any] = {
            "id": build_id,
            "arn": self._arn(account, region, "build", build_id),
            "buildNumber": self.build_numbers[number_key],
            "startTime": now,
            "currentPhase": "QUEUED",
            "buildStatus": "IN_PROGRESS",
            "projectName": project["name"],
            "phases": [
                {"phaseType": "SUBMITTED", "phaseStatus": "SUCCEEDED", "startTime": now, "endTime": now,
                 "durationInSeconds": 0},
                {"phaseType": "QUEUED", "startTime": now},
            ],
            "source": source,
            "secondarySources": [],
            "secondarySourceVersions": [],
            "artifacts": {"location": ""},
            "secondaryArtifacts": [],
            "cache": copy.deepcopy(project["cache"]),
            "environment": environment,
            "serviceRole": self._role_arn(account, body.get("serviceRoleOverride") or project["serviceRole"]),
            "logs": self._logs_location(account, region, project["name"], build_uuid, logs_config),
            "timeoutInMinutes": body.get("timeoutInMinutesOverride", project["timeoutInMinutes"]),
            "queuedTimeoutInMinutes": body.get("queuedTimeoutInMinutesOverride", project["queuedTimeoutInMinutes"]),
            "buildComplete": False,
            "initiator": "sandbox",
            "encryptionKey": body.get("encryptionKeyOverride", project["encryptionKey"]),
        }  # fmt: skip
        build = _Build(account, region, project, data, environment["environmentVariables"])
        build.fault = faults.take_build_fault() if faults is not None else None
        group = data["logs"].get("groupName")
        if group:
            build.log_target = (group, data["logs"]["streamName"])
        self._build_table(account, region)[build_id] = build
        if token:
            self.idempotency[(account, region, token)] = (now, build_id)
        self._schedule()
        return {"build": self._view(build)}

    def _logs_location(self, account: str, region: str, project: str, build_uuid: str, config: dict) -> dict:
        cloudwatch = dict({"status": "ENABLED"}, **config.get("cloudWatchLogs", {}))
        s3 = dict({"status": "DISABLED"}, **config.get("s3Logs", {}))
        location: dict[str, Any] = {"cloudWatchLogs": cloudwatch, "s3Logs": s3}
        if cloudwatch["status"] != "ENABLED":
            return location
        group = cloudwatch.get("groupName") or f"/aws/codebuild/{project}"
        stream = f"{cloudwatch['streamName']}/{build_uuid}" if cloudwatch.get("streamName") else build_uuid
        location.update(
            {
                "groupName": group,
                "streamName": stream,
                "deepLink": f"https://console.aws.amazon.com/cloudwatch/home?region={region}"
                f"#logEvent:group={group};stream={stream}",
                "cloudWatchLogsArn": f"arn:aws:logs:{region}:{account}:log-group:{group}:log-stream:{stream}",
            }
        )
        return location

    def _batch_get_builds(self, body: dict, account: str, region: str) -> dict:
        ids = body["ids"]
        if not 1 <= len(ids) <= 100:
            raise _invalid("ids must contain between 1 and 100 items")
        found, missing = [], []
        for build_id in ids:
            build = self._find_build(account, region, build_id)
            if build is None:
                missing.append(build_id)
            else:
                found.append(self._view(build))
        return {"builds": found, "buildsNotFound": missing}

    def _stop_build(self, body: dict, account: str, region: str) -> dict:
        build = self._find_build(account, region, body["id"])
        if build is None:
            raise CodeBuildApiError("ResourceNotFoundException", f"Build not found: {body['id']}")
        if build.state != "COMPLETED":
            self._stop(build, "Build stopped")
        return {"build": self._view(build)}

    def _list_builds(self, body: dict, account: str, region: str) -> dict:
        builds = list(self._build_table(account, region).values())
        return self._list_ids(builds, body)

    def _list_builds_for_project(self, body: dict, account: str, region: str) -> dict:
        project = self._find_project(account, region, body["projectName"])
        if project is None:
            raise self._not_found(account, region, body["projectName"])
        builds = [b for b in self._build_table(account, region).values() if b.project_name == project["name"]]
        return self._list_ids(builds, body)

    def _list_ids(self, builds: list[_Build], body: dict) -> dict:
        ids = [b.id for b in builds]  # insertion order = start order
        if body.get("sortOrder", "DESCENDING") == "DESCENDING":
            ids.reverse()
        return self._page(ids, body.get("nextToken"), "ids")

    @staticmethod
    def _view(build: _Build) -> dict:
        data = copy.deepcopy(build.data)
        if not data["buildComplete"]:
            data.pop("endTime", None)
        return data

    # ------------------------------------------------------------------------------------------------------
    # builds: scheduling and running

    def _stop(self, build: _Build, reason: str) -> None:
        """Under self.lock."""
        build.stop_reason = reason
        build.stop_event.set()
        if build.state == "QUEUED":
            self._end_phase(build, "STOPPED", [{"statusCode": "BUILD_STOPPED", "message": reason}])
            self._complete(build, "STOPPED")
        elif build.runner is not None:
            build.runner.stop()

    def _schedule(self) -> None:
        """Start queued builds that fit under the account quota and their project's limit. Under self.lock."""
        if self.closing:
            return
        for (account, region), table in self.builds.items():
            running = [b for b in table.values() if b.state == "RUNNING"]
            for build in [b for b in table.values() if b.state == "QUEUED"]:
                if len(running) >= self.ctx.account_quota:
                    break
                project = self._find_project(account, region, build.project_name) or build.project
                limit = project.get("concurrentBuildLimit")
                if limit is not None and sum(1 for b in running if b.project_name == build.project_name) >= limit:
                    continue
                self._end_phase(build, "SUCCEEDED")
                self._begin_phase(build, "PROVISIONING")
                build.started_at = time.time()
                running.append(build)
                build.thread = threading.Thread(target=self._execute, args=(build,), name=build.id, daemon=True)
                build.thread.start()

    def _pump(self) -> None:
        """Flush build logs to moto, time out queued builds, start queued builds when a slot frees up."""
        while True:
            self.wake.wait(LOG_FLUSH_SECONDS)
            self.wake.clear()
            with self.lock:
                builds = [b for per in self.builds.values() for b in per.values()]
                now = time.time()
                for build in builds:
                    if build.state == "QUEUED":
                        limit = build.data["queuedTimeoutInMinutes"] * self.ctx.minute_seconds
                        if now - build.queued_at >= limit:
                            context = {"statusCode": "BUILD_TIMED_OUT", "message": "Build timed out in the queue"}
                            self._end_phase(build, "TIMED_OUT", [context])
                            self._complete(build, "TIMED_OUT")
                self._schedule()
                closing = self.closing
            for build in builds:
                self._flush_logs(build)
            if closing:
                return

    def _begin_phase(self, build: _Build, phase_type: str, when: float | None = None) -> None:
        build.data["phases"].append({"phaseType": phase_type, "startTime": when or time.time()})
        build.data["currentPhase"] = phase_type

    def _end_phase(
        self, build: _Build, status: str, contexts: list[dict] | None = None, when: float | None = None
    ) -> None:
        phase = build.data["phases"][-1]
        end = when or time.time()
        phase.update({"phaseStatus": status, "endTime": end, "durationInSeconds": int(round(end - phase["startTime"]))})
        if contexts is not None:
            phase["contexts"] = contexts

    def _complete(self, build: _Build, status: str) -> None:
        now = time.time()
        self._begin_phase(build, "COMPLETED", now)
        build.data.update({"buildStatus": status, "buildComplete": True, "endTime": now})
        self.wake.set()

    def _log(self, build: _Build, line: str) -> None:
        with build.log_lock:
            build.log_lines.append((int(time.time() * 1000), line))

    def _container_log(self, build: _Build, message: str) -> None:
        stamp = time.strftime("%Y/%m/%d %H:%M:%S", time.gmtime())
        self._log(build, f"[Container] {stamp} {message}")

    def _flush_logs(self, build: _Build) -> None:
        if build.log_target is None:
            return
        with build.flush_lock:  # one flusher at a time per build keeps the events in order
            with build.log_lock:
                lines, build.log_lines = build.log_lines, []
            if lines:
                self._put_logs(build, lines)

    def _put_logs(self, build: _Build, lines: list[tuple[int, str]]) -> None:
        from moto.logs.models import logs_backends

        group, stream = build.log_target
        backend = logs_backends[build.account][build.region]
        with self.lock:
            if group not in backend.groups:
                backend.create_log_group(group, {})
            backend.ensure_log_stream(group, stream)
            # PutLogEvents takes at most 10,000 events a call; an empty message is refused by CloudWatch.
            events = [{"timestamp": ts, "message": message or " "} for ts, message in lines]
            for start in range(0, len(events), 10000):
                backend.put_log_events(group, stream, events[start : start + 10000])

    def _execute(self, build: _Build) -> None:
        status = "FAILED"
        try:
            status = self._run(build)
        except Exception as exc:  # noqa: BLE001 - a sandbox bug must not leave the build IN_PROGRESS
            self._container_log(build, f"sandbox CodeBuild internal error: {exc!r}")
            with self.lock:
                if build.data["phases"][-1].get("phaseStatus") is None:
                    self._end_phase(build, "FAULT", [{"statusCode": "INTERNAL_ERROR", "message": str(exc)}])
            status = "FAULT"
        finally:
            with self.lock:
                if not build.data["buildComplete"]:
                    last = build.data["phases"][-1]["phaseType"]
                    if status not in ("STOPPED", "TIMED_OUT", "FAULT") and last != "FINALIZING":
                        self._begin_phase(build, "FINALIZING")
                        self._end_phase(build, "SUCCEEDED")
            self._flush_logs(build)  # the whole log is readable once BatchGetBuilds says the build is complete
            with self.lock:
                if not build.data["buildComplete"]:
                    self._complete(build, status)
            shutil.rmtree(self.ctx.sandbox_dir / "codebuild" / build.project_name / build.uuid, ignore_errors=True)

    def _stopped_status(self, build: _Build, deadline: float) -> str | None:
        if build.stop_event.is_set():
            return "STOPPED"
        if time.time() >= deadline:
            return "TIMED_OUT"
        return None

    def _fail_phase(self, build: _Build, status: str, code: str, message: str) -> str:
        self._container_log(build, f"Phase complete: {build.data['currentPhase']} State: {status}")
        self._container_log(build, f"Phase context status code: {code} Message: {message}")
        with self.lock:
            self._end_phase(build, status, [{"statusCode": code, "message": message}])
        return status

    def _run(self, build: _Build) -> str:
        deadline = build.started_at + build.data["timeoutInMinutes"] * self.ctx.minute_seconds
        kind, after = build.fault or (None, 0.0)
        if kind == "time_out":  # injected: the build's time is up this many seconds after it started running
            deadline = min(deadline, build.started_at + after)
        elif kind == "stop":  # injected: someone else's StopBuild, this many seconds after it started running
            def stop_it():
                with self.lock:
                    if build.state != "COMPLETED":
                        self._stop(build, "Build stopped")

            timer = threading.Timer(after, stop_it)
            timer.daemon = True
            timer.start()
        data = build.data
        # PROVISIONING: the service role's session, the (optional) provisioning delay.
        self._container_log(build, "Waiting for agent ping")
        try:
            credentials = self._assume_role(data["serviceRole"], f"AWSCodeBuild-{build.uuid}", build.project["arn"])
        except PermissionError as exc:
            message = f"CodeBuild is not authorized to perform: sts:AssumeRole on {data['serviceRole']}: {exc}"
            return self._fail_phase(build, "FAILED", "CLIENT_ERROR", message)
        try:
            resolved = self._resolve_variables(build)
        except CodeBuildApiError as exc:
            return self._fail_phase(build, "FAILED", "CLIENT_ERROR", exc.message)
        # read on every pass: a test may shorten the delay (POST /_sandbox/codebuild) to release waiting builds
        provisioning_started = time.time()
        while not build.stop_event.is_set():
            wait_until = min(provisioning_started + self.ctx.provisioning_seconds, deadline)
            if time.time() >= wait_until:
                break
            build.stop_event.wait(min(0.1, max(0.0, wait_until - time.time())))
        stopped = self._stopped_status(build, deadline)
        if stopped:
            return self._fail_phase(build, stopped, f"BUILD_{stopped}", build.stop_reason or "Build timed out")
        with self.lock:
            self._end_phase(build, "SUCCEEDED")
            self._begin_phase(build, "DOWNLOAD_SOURCE")
        self._container_log(build, "Phase is DOWNLOAD_SOURCE")

        # DOWNLOAD_SOURCE: NO_SOURCE, so only the buildspec.
        try:
            spec = load_buildspec(data["source"].get("buildspec") or "")
        except BuildspecError as exc:
            return self._fail_phase(build, "FAILED", "YAML_FILE_ERROR", f"YAML file error: {exc}")
        root = self.ctx.sandbox_dir / "codebuild" / build.project_name / build.uuid
        workdir, home, runtime = root / "src", root / "home", root / "run"
        for path in (workdir, home, runtime):
            path.mkdir(parents=True, exist_ok=True)
        runtime.chmod(0o700)
        env = dict(self.ctx.base_env)
        env.update(
            {
                "AWS_REGION": build.region,
                "AWS_DEFAULT_REGION": build.region,
                "AWS_ACCESS_KEY_ID": credentials["AccessKeyId"],
                "AWS_SECRET_ACCESS_KEY": credentials["SecretAccessKey"],
                "AWS_SESSION_TOKEN": credentials["SessionToken"],
                "HOME": str(home),
                "XDG_RUNTIME_DIR": str(runtime),
            }
        )
        env.update(resolved)
        extra = {
            "CODEBUILD_BUILD_ARN": data["arn"],
            "CODEBUILD_BUILD_NUMBER": str(data["buildNumber"]),
            "CODEBUILD_BUILD_IMAGE": data["environment"].get("image", ""),
            "CODEBUILD_INITIATOR": data["initiator"],
            "CODEBUILD_KMS_KEY_ID": data["encryptionKey"],
            "CODEBUILD_LOG_PATH": build.uuid,
            "CODEBUILD_PROJECT_ARN": build.project["arn"],
            "CODEBUILD_START_TIME": str(int(data["startTime"] * 1000)),
        }
        with self.lock:
            self._end_phase(build, "SUCCEEDED")
            stopped = self._stopped_status(build, deadline)
            if stopped:
                self._begin_phase(build, "INSTALL")
                return self._fail_phase(build, stopped, f"BUILD_{stopped}", build.stop_reason or "Build timed out")
            if kind == "fail":  # injected: the install phase fails, before the program copies anything
                self._begin_phase(build, "INSTALL")
                self._container_log(build, "Running command python3 -m pip install -q --user boto3")
                return self._fail_phase(
                    build, "FAILED", "COMMAND_EXECUTION_ERROR",
                    "Error while executing command: python3 -m pip install -q --user boto3. Reason: exit status 1",
                )
            build.runner = BuildspecRunner(
                spec,
                env,
                workdir=str(workdir),
                build_id=build.id,
                sink=lambda line: self._log(build, line),
                timeout=max(0.0, deadline - time.time()),
                extra_codebuild_vars=extra,
                on_phase=lambda phase: self._on_phase(build, phase),
            )
        result = build.runner.run()
        with self.lock:
            if result.exported_variables:
                data["exportedEnvironmentVariables"] = [
                    {"name": k, "value": v} for k, v in result.exported_variables.items()
                ]
            ran = {p.name for p in result.phases}
            if result.status in ("STOPPED", "TIMED_OUT"):
                return result.status
            if "POST_BUILD" in ran:
                self._begin_phase(build, "UPLOAD_ARTIFACTS")
                self._end_phase(build, "SUCCEEDED")
            self._begin_phase(build, "FINALIZING")
            self._end_phase(build, "SUCCEEDED")
        return result.status

    def _on_phase(self, build: _Build, phase: PhaseResult) -> None:
        with self.lock:
            if phase.status == "IN_PROGRESS":
                self._begin_phase(build, phase.name, phase.start)
            else:
                contexts = [{"statusCode": phase.code or "", "message": phase.message or ""}]
                self._end_phase(build, phase.status, contexts, phase.end)

    def _resolve_variables(self, build: _Build) -> dict[str, str]:
        values = {}
        for variable in build.env_vars:
            kind, name, value = variable.get("type", "PLAINTEXT"), variable["name"], variable.get("value", "")
            if kind == "PLAINTEXT":
                values[name] = value
            elif kind == "PARAMETER_STORE":
                values[name] = self._parameter(build, name, value)
            else:
                values[name] = self._secret(build, name, value)
        return values

    @staticmethod
    def _parameter(build: _Build, name: str, parameter: str) -> str:
        from moto.ssm.models import ssm_backends

        try:
            found = ssm_backends[build.account][build.region].get_parameter(parameter)
        except Exception:  # noqa: BLE001
            found = None
        if found is None:
            raise _invalid(f"Parameter Store parameter {parameter} for {name} not found")
        return found.decrypt(found.value) or ""

    @staticmethod
    def _secret(build: _Build, name: str, reference: str) -> str:
        from moto.secretsmanager.models import secretsmanager_backends

        if reference.startswith("arn:"):
            parts = reference.split(":")
            secret_id, rest = ":".join(parts[:7]), parts[7:]
        else:
            secret_id, *rest = reference.split(":")
        json_key = rest[0] if len(rest) > 0 and rest[0] else None
        stage = rest[1] if len(rest) > 1 and rest[1] else None
        version = rest[2] if len(rest) > 2 and rest[2] else None
        try:
            secret = secretsmanager_backends[build.account][build.region].get_secret_value(secret_id, version, stage)
            text = secret.get("SecretString") or ""
            return str(json.loads(text)[json_key]) if json_key else text
        except Exception:  # noqa: BLE001
            raise _invalid(f"Secrets Manager secret {reference} for {name} could not be read") from None


__all__ = ["CodeBuildApiError", "CodeBuildService", "service_model"]
