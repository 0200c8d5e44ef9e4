# -*- coding: utf-8 -*-

# Copyright: Contributors to the Ansible project
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Where one batch of ``buildspec.yml`` runs: a CodeBuild build, or a local run through ``buildspec_runner``.

Both backends have the same four non-blocking operations, so that ``replication_driver`` (the one loop that
starts, follows, stops and re-plans) treats them alike:

- ``start(batch, env) -> build id``; raises :class:`QueueFull` when the service refuses a build for now
  (CodeBuild's ``AccountLimitExceededException``) and :class:`TransientError` for throttling and 5xx;
- ``poll(ids) -> {id: build record}`` (records: ``id``, ``status``, ``current_phase``, ``duration_seconds``,
  ``log_group``, ``log_stream``, ``log_link``, ``error``); ids the service does not know (yet) are absent;
- ``new_lines(id) -> [log lines since the last call]``, the build's output as it comes (``RESULT`` lines);
- ``stop(id)``.

``results_for()`` completes a finished build's results: images a failed build never reported are ``failed``
with the build's reason.
"""

from __future__ import annotations

import os
import re
import shutil
import sys
import tempfile
import threading
import time
from typing import Any
from typing import Dict
from typing import List
from typing import Optional

from ansible_collections.cloudops.ecr_replication.plugins.module_utils import batching
from ansible_collections.cloudops.ecr_replication.plugins.module_utils import codebuild
from ansible_collections.cloudops.ecr_replication.plugins.module_utils import replication_results
from ansible_collections.cloudops.ecr_replication.plugins.module_utils.rate_limit import ECR_PUT_IMAGE_TPS

FINAL = ("SUCCEEDED", "FAILED", "FAULT", "STOPPED", "TIMED_OUT")


class QueueFull(Exception):
    """The service does not take another build now (CodeBuild: AccountLimitExceededException); try again later."""


class TransientError(Exception):
    """A call that may work when repeated (throttling, 5xx, connection errors)."""


TRANSIENT_CODES = (
    "ThrottlingException",
    "Throttling",
    "TooManyRequestsException",
    "RequestLimitExceeded",
    "ServiceUnavailable",
    "ServiceUnavailableException",
    "InternalFailure",
    "InternalServerException",
    "InternalError",
)


def error_code(error: BaseException) -> str:
    """The AWS error code of a botocore ClientError, also when wrapped by an amazon.aws error handler."""
    for candidate in (error, getattr(error, "exception", None), error.__cause__):
        response = getattr(candidate, "response", None)
        if isinstance(response, dict):
            return str((response.get("Error") or {}).get("Code") or "")
    return ""


def is_transient(error: BaseException) -> bool:
    if error_code(error) in TRANSIENT_CODES:
        return True
    names = {type(e).__name__ for e in (error, getattr(error, "exception", None), error.__cause__) if e is not None}
    # botocore's connection errors (EndpointConnectionError, ConnectionClosedError, ReadTimeoutError, ...)
    return any(name.endswith(("ConnectionError", "ConnectionClosedError", "TimeoutError")) for name in names)


def put_image_share(builds_at_once: int) -> str:
    """REPL_PUT_TPS of a build that may run beside ``builds_at_once - 1`` others of its destination: ECR's PutImage
    limit (10 TPS per account and region) divided between them."""
    return str(max(0.5, round(ECR_PUT_IMAGE_TPS / max(1, builds_at_once), 2)))


def common_env(
    source_region: str,
    dest_region: str,
    dest_account: Optional[str] = None,
    dest_role_arn: Optional[str] = None,
    external_id: Optional[str] = None,
    parallel_copies: int = 4,
    force_tags: bool = False,
    concurrent_builds: int = 1,
    copy_lifecycle_policy: bool = False,
    copy_repository_policy: bool = False,
    create_repositories: bool = True,
    external_id_parameter: Optional[str] = None,
    kms_key: Optional[str] = None,
) -> Dict[str, Any]:
    """The REPL_* variables every build of one run gets (see replicator.ENV_DOC).

    ECR's PutImage limit (10 TPS per account and region) is shared by the builds that run at the same time.
    With ``external_id_parameter`` the ExternalId reaches the build as a ``PARAMETER_STORE`` variable (the
    SecureString's name; CodeBuild resolves it inside the build); ``external_id`` itself is for local runs, whose
    environment stays in this process's memory. ``kms_key``: the customer managed key of repositories created for a
    KMS-encrypted source (REPL_KMS_KEY; without it they get the AWS managed key).
    """
    tps = put_image_share(concurrent_builds)
    env = {
        "REPL_SOURCE_REGION": source_region,
        "REPL_DEST_REGION": dest_region,
        "REPL_PARALLEL": str(parallel_copies),
        "REPL_FORCE_TAGS": "true" if force_tags else "false",
        "REPL_PUT_TPS": tps,
        "REPL_COPY_LIFECYCLE_POLICY": "true" if copy_lifecycle_policy else "false",
        "REPL_COPY_REPOSITORY_POLICY": "true" if copy_repository_policy else "false",
        "REPL_CREATE_REPOSITORIES": "true" if create_repositories else "false",
    }
    if dest_account:
        env["REPL_DEST_ACCOUNT"] = dest_account
    if dest_role_arn:
        env["REPL_DEST_ROLE_ARN"] = dest_role_arn
    if kms_key:
        env["REPL_KMS_KEY"] = kms_key
    if external_id_parameter:
        env["REPL_EXTERNAL_ID"] = {"value": external_id_parameter, "type": "PARAMETER_STORE"}
    elif external_id:
        env["REPL_EXTERNAL_ID"] = external_id
    return env


def batch_from_env(variables: List[Dict[str, Any]]) -> Optional[List[Dict[str, Any]]]:
    """The batch a build was started with, from its environment (``BatchGetBuilds``), or None."""
    env = {v.get("name"): v.get("value") for v in variables or [] if v.get("type", "PLAINTEXT") == "PLAINTEXT"}
    try:
        return batching.decode_batch(batching.join_env(env))
    except batching.BatchEncodingError:
        return None


def failure_reason(build: Dict[str, Any]) -> str:
    """Why a build did not succeed, from its status and the first failed phase's context."""
    status = build.get("buildStatus") or build.get("status") or "UNKNOWN"
    for phase in build.get("phases") or []:
        if phase.get("phaseStatus") not in (None, "SUCCEEDED") and phase.get("phaseStatus") != "IN_PROGRESS":
            context = "; ".join(
                c.get("message") or c.get("statusCode") or "" for c in phase.get("contexts") or [] if c
            ).strip("; ")
            return "build %s in phase %s%s" % (status, phase.get("phaseType"), ": " + context if context else "")
    return "build %s" % status


def results_for(build: Dict[str, Any], lines: List[str], planned: Optional[List[Dict[str, Any]]]):
    """Per-image results of one build: what its log reported, and ``failed`` for what it did not."""
    reported = replication_results.latest_by_image(replication_results.parse_lines(lines))
    if planned is None:
        return list(reported.values())
    if build.get("status") == "SUCCEEDED":
        reason = "build SUCCEEDED but did not report this image"
    else:
        reason = (build.get("error") or "build %s" % build.get("status")) + " before this image was reported"
    return replication_results.complete_results(planned, reported, reason)


def build_record(build: Dict[str, Any], batch_index: Optional[int], images: Optional[int]) -> Dict[str, Any]:
    logs = build.get("logs") or {}
    start, end = build.get("startTime"), build.get("endTime")
    duration = None
    if start is not None and end is not None:
        duration = round(_seconds(end) - _seconds(start), 1)
    record = {
        "id": build["id"],
        "batch": batch_index,
        "status": build.get("buildStatus"),
        "current_phase": build.get("currentPhase"),
        "images": images,
        "duration_seconds": duration,
        "log_group": logs.get("groupName"),
        "log_stream": logs.get("streamName"),
        "log_link": logs.get("deepLink"),
        "error": None,
    }
    if record["status"] in FINAL and record["status"] != "SUCCEEDED":
        record["error"] = failure_reason(build)
    return record


def _seconds(value: Any) -> float:
    return value.timestamp() if hasattr(value, "timestamp") else float(value)


def local_build_env(
    credentials, source_region: str, endpoint_url: Optional[str] = None, ca_bundle: Optional[str] = None
) -> Dict[str, str]:
    """Environment of a local run: this process's (PATH, HOME, CA bundles, registries.conf), without its AWS_* and
    ANSIBLE_* variables, and ``credentials`` (botocore credentials) as the build's own identity, in memory only."""
    frozen = credentials.get_frozen_credentials()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "ANSIBLE_"))}
    for name in ("AWS_ENDPOINT_URL", "AWS_CA_BUNDLE", "AWS_STS_REGIONAL_ENDPOINTS", "AWS_USE_FIPS_ENDPOINT"):
        if os.environ.get(name):
            env[name] = os.environ[name]
    if endpoint_url:
        env["AWS_ENDPOINT_URL"] = endpoint_url
    if ca_bundle:
        env["AWS_CA_BUNDLE"] = ca_bundle
    env.update(
        AWS_ACCESS_KEY_ID=frozen.access_key,
        AWS_SECRET_ACCESS_KEY=frozen.secret_key,
        AWS_REGION=source_region,
        AWS_DEFAULT_REGION=source_region,
    )
    if frozen.token:
        env["AWS_SESSION_TOKEN"] = frozen.token
    env.setdefault("PATH", "/usr/local/bin:/usr/bin:/bin")
    # the buildspec runs `python3` from PATH: this interpreter's first, which has boto3 (Ansible's AWS modules need it)
    interpreter_bin = os.path.dirname(sys.executable)
    if interpreter_bin and interpreter_bin not in env["PATH"].split(os.pathsep):
        env["PATH"] = interpreter_bin + os.pathsep + env["PATH"]
    if "HOME" not in env:
        import pwd

        env["HOME"] = pwd.getpwuid(os.getuid()).pw_dir
    return env


class CodeBuildBackend:
    """Batches as builds of one CodeBuild project."""

    def __init__(self, codebuild, logs, project_name: str):
        self.codebuild = codebuild
        self.logs = logs
        self.project_name = project_name
        self._log_tokens: Dict[str, Optional[str]] = {}
        self._log_where: Dict[str, tuple] = {}

    def start(self, batch: List[Dict[str, Any]], env: Dict[str, Any]) -> str:
        if isinstance(env.get("REPL_EXTERNAL_ID"), str):
            # a PLAINTEXT override is readable by anyone allowed codebuild:BatchGetBuilds, and in the console
            raise ValueError("the ExternalId must reach a build as a PARAMETER_STORE variable, never as PLAINTEXT")
        variables = dict(env)
        variables.update(batching.batch_env(batch))
        try:
            return codebuild.start_build(self.codebuild, self.project_name, variables)["id"]
        except Exception as e:  # classified here, so the driver never needs to know botocore
            if error_code(e) == "AccountLimitExceededException":
                raise QueueFull(str(e)) from e
            if is_transient(e):
                raise TransientError(str(e)) from e
            raise

    def poll(self, build_ids: List[str]) -> Dict[str, Dict[str, Any]]:
        try:
            builds = codebuild.batch_get_builds(self.codebuild, build_ids)
        except Exception as e:
            raise TransientError(str(e)) from e  # following builds never gives up on one failed call
        records = {}
        for build in builds:
            logs = build.get("logs") or {}
            if logs.get("groupName") and logs.get("streamName"):
                self._log_where[build["id"]] = (logs["groupName"], logs["streamName"])
            records[build["id"]] = build_record(build, None, None)
        return records

    def stop(self, build_id: str) -> None:
        codebuild.stop_build(self.codebuild, build_id)

    def new_lines(self, build_id: str) -> List[str]:
        """The log events of the build's stream since the last call (every page)."""
        where = self._log_where.get(build_id)
        if where is None or self.logs is None:
            return []
        lines: List[str] = []
        token = self._log_tokens.get(build_id)
        for _page in range(10000):
            params = {"logGroupName": where[0], "logStreamName": where[1], "startFromHead": True}
            if token:
                params["nextToken"] = token
            try:
                page = self.logs.get_log_events(**params)
            except Exception as e:  # the stream exists only once the build wrote something
                if error_code(e) == "ResourceNotFoundException" or "ResourceNotFoundException" in str(e):
                    return lines
                raise TransientError(str(e)) from e
            lines.extend(event.get("message", "") for event in page.get("events", []))
            next_token = page.get("nextForwardToken")
            if next_token:
                self._log_tokens[build_id] = next_token
            if not page.get("events") or next_token in (None, token):
                break
            token = next_token
        return lines


class LocalBackend:
    """Batches run by ``buildspec_runner`` on this machine, each in a thread of its own. Their copy programs take
    turns for PutImage through one file per destination registry (``REPL_PACE_FILE``: ECR's limit is per account
    and region), so that together they keep to ``REPL_PUT_TPS`` however many run; ``close()`` removes them."""

    def __init__(
        self,
        buildspec_text: str,
        base_env: Dict[str, str],
        timeout: Optional[float] = None,
        workdir: Optional[str] = None,
    ):
        self.buildspec_text = buildspec_text
        self.base_env = dict(base_env)
        self.timeout = timeout
        self.workdir = workdir
        self._runs: Dict[str, Dict[str, Any]] = {}
        self._count = 0
        self.pace_dir = tempfile.mkdtemp(prefix="ecr-replication-pace-", dir=workdir)

    def close(self) -> None:
        shutil.rmtree(self.pace_dir, ignore_errors=True)

    def start(self, batch: List[Dict[str, Any]], env: Dict[str, str]) -> str:
        from ansible_collections.cloudops.ecr_replication.plugins.module_utils import buildspec_runner

        self._count += 1
        build_id = "local:%d-batch-%d" % (os.getpid(), self._count)
        variables = dict(self.base_env)
        variables.update(env)
        variables.update(batching.batch_env(batch))
        registry = "%s-%s" % (variables.get("REPL_DEST_ACCOUNT") or "own", variables.get("REPL_DEST_REGION"))
        variables["REPL_PACE_FILE"] = os.path.join(self.pace_dir, re.sub(r"[^\w.-]", "_", registry))
        # the programs take turns through that file: each may use the whole budget while the others wait
        variables["REPL_PUT_TPS"] = put_image_share(1)
        tmp = tempfile.mkdtemp(prefix="ecr-replication-local-", dir=self.workdir)
        run: Dict[str, Any] = {
            "lines": [],
            "read": 0,
            "status": "IN_PROGRESS",
            "phase": "BUILD",
            "error": None,
            "started": time.time(),
            "ended": None,
            "workdir": tmp,
        }
        run["runner"] = buildspec_runner.BuildspecRunner(
            self.buildspec_text,
            variables,
            workdir=tmp,
            sink=run["lines"].append,
            timeout=self.timeout,
            build_id=build_id,
            extra_codebuild_vars={"CODEBUILD_BUILD_ID": build_id},
        )
        run["thread"] = threading.Thread(target=self._run, args=(run,), name=build_id, daemon=True)
        self._runs[build_id] = run
        run["thread"].start()
        return build_id

    @staticmethod
    def _run(run: Dict[str, Any]) -> None:
        try:
            outcome = run["runner"].run()
            status = outcome.status
            failed = [p for p in outcome.phases if p.status not in ("SUCCEEDED", None)]
            if status != "SUCCEEDED":
                run["error"] = (
                    "build %s in phase %s: %s"
                    % (status, PHASE_NAMES.get(failed[0].name, failed[0].name), failed[0].message or failed[0].code)
                    if failed
                    else "build %s" % status
                )
        except Exception as e:  # noqa: BLE001 - a runner error must end this build, not the whole run
            status, run["error"] = "FAULT", "build FAULT: %s" % e
        finally:
            shutil.rmtree(run["workdir"], ignore_errors=True)
        run["ended"] = time.time()
        run["phase"] = "COMPLETED"
        run["status"] = status

    def poll(self, build_ids: List[str]) -> Dict[str, Dict[str, Any]]:
        records = {}
        for build_id in build_ids:
            run = self._runs.get(build_id)
            if run is None:
                continue
            ended = run["ended"]
            records[build_id] = {
                "id": build_id,
                "batch": None,
                "status": run["status"],
                "current_phase": run["phase"],
                "images": None,
                "duration_seconds": round(ended - run["started"], 1) if ended else None,
                "log_group": None,
                "log_stream": None,
                "log_link": None,
                "error": run["error"],
            }
        return records

    def stop(self, build_id: str) -> None:
        run = self._runs.get(build_id)
        if run is not None:
            run["runner"].stop()

    def new_lines(self, build_id: str) -> List[str]:
        run = self._runs.get(build_id)
        if run is None:
            return []
        end = len(run["lines"])  # list.append from the runner thread is atomic; read up to a fixed end
        lines, run["read"] = run["lines"][run["read"] : end], end
        return lines


PHASE_NAMES = {"install": "INSTALL", "pre_build": "PRE_BUILD", "build": "BUILD", "post_build": "POST_BUILD"}


BACKFILL_PREFIX = "backfill:"
BACKFILL_STATUS = {
    "PREPARING": "IN_PROGRESS",
    "IN_PROGRESS": "IN_PROGRESS",
    "STOPPING": "IN_PROGRESS",
    "COMPLETE": "SUCCEEDED",
    "FAILED": "FAILED",
    "STOPPED": "STOPPED",
}
BACKFILL_PHASE = {"PREPARING": "QUEUED", "IN_PROGRESS": "BUILD", "STOPPING": "BUILD"}


class BackfillBackend:
    """ECR's own copy: one replication backfill of the source registry per destination, followed like a build.

    A backfill copies every existing image the replication configuration covers for its destination; the driver
    only gives it the batch of images it expects from it, and the comparison after it decides what was copied. ECR
    answers with per-image results once the backfill has ended; they become the batch's ``RESULT`` lines.
    """

    def __init__(self, ecr_client, registry_id: Optional[str] = None):
        self.client = ecr_client
        self.registry_id = registry_id
        self._batches: Dict[str, List[Dict[str, Any]]] = {}
        self._reported: set = set()

    def start(self, batch: List[Dict[str, Any]], env: Dict[str, str]) -> str:
        from ansible_collections.cloudops.ecr_replication.plugins.module_utils import ecr_replication

        dest = {"region": env["REPL_DEST_REGION"], "registryId": env["REPL_DEST_ACCOUNT"]}
        try:
            answer = ecr_replication.start_backfill(self.client, dest, self.registry_id)
        except Exception as e:
            code = error_code(e)
            if code in ("LimitExceededException", "ReplicationBackfillInProgressException"):
                raise QueueFull(str(e)) from e  # another backfill holds the slot: this one waits its turn
            if is_transient(e):
                raise TransientError(str(e)) from e
            raise
        backfill_id = BACKFILL_PREFIX + answer["replicationBackfillId"]
        self._batches[backfill_id] = batch
        return backfill_id

    def _describe(self, build_id: str, results: bool = False) -> Dict[str, Any]:
        from ansible_collections.cloudops.ecr_replication.plugins.module_utils import ecr_replication

        try:
            return ecr_replication.describe_backfill(
                self.client, build_id[len(BACKFILL_PREFIX) :], self.registry_id, results=results
            )
        except Exception as e:
            raise TransientError(str(e)) from e

    def poll(self, build_ids: List[str]) -> Dict[str, Dict[str, Any]]:
        from ansible_collections.cloudops.ecr_replication.plugins.module_utils import ecr_replication

        records = {}
        for build_id in build_ids:
            summary = self._describe(build_id)
            status = summary.get("status")
            progress = summary.get("progress") or {}
            record = {
                "id": build_id,
                "batch": None,
                "status": BACKFILL_STATUS.get(status, "IN_PROGRESS"),
                "current_phase": BACKFILL_PHASE.get(status, "COMPLETED"),
                "images": None,
                "duration_seconds": None,
                "log_group": None,
                "log_stream": None,
                "log_link": None,
                "error": None,
                "backfill": ecr_replication.progress_line(summary),
            }
            if status in ("FAILED", "STOPPED"):
                codes = ", ".join(progress.get("failureCodes") or []) or summary.get("failureCode") or status
                record["error"] = "backfill %s (%s)" % (status, codes)
            records[build_id] = record
        return records

    def stop(self, build_id: str) -> None:
        from ansible_collections.cloudops.ecr_replication.plugins.module_utils import ecr_replication

        ecr_replication.stop_backfill(self.client, build_id[len(BACKFILL_PREFIX) :], self.registry_id)

    def new_lines(self, build_id: str) -> List[str]:
        """The per-image results, once: ECR gives them only when the backfill has ended."""
        if build_id in self._reported:
            return []
        summary = self._describe(build_id, results=True)
        if summary.get("status") not in ("COMPLETE", "FAILED", "STOPPED"):
            return []
        self._reported.add(build_id)
        wanted = {(i["repository"], i["digest"]) for i in self._batches.get(build_id, [])}
        lines = []
        for result in summary.get("results") or []:
            key = (result.get("repositoryName"), (result.get("imageId") or {}).get("imageDigest"))
            if key not in wanted:
                continue
            ok = result.get("status") == "COMPLETE"
            lines.append(
                replication_results.format_result(
                    {
                        "repository": key[0],
                        "digest": key[1],
                        "status": "copied" if ok else "failed",
                        "bytes": 0,
                        "error": None if ok else "backfill: %s" % (result.get("failureCode") or "FAILED"),
                    }
                )
            )
        return lines
