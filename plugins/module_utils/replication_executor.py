# -*- coding: utf-8 -*-

# Copyright: Contributors to the Ansible project
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Running batches of ``buildspec.yml``: as CodeBuild builds (start, cap concurrency, poll, read the logs back) or
on this machine through ``buildspec_runner`` (``executor: local``). Used by ``codebuild_replicate``.

Both executors return one record per build (``id``, ``status``, ``images``, ``duration_seconds``, ``log_group``,
``log_stream``, ``log_link``, ``error``) and the ``RESULT`` lines of its log; ``results_for()`` completes them
(images a failed build never reported are ``failed`` with the build's reason).
"""

from __future__ import annotations

import os
import shutil
import threading
import time
from typing import Any
from typing import Callable
from typing import Dict
from typing import List
from typing import Optional

from ansible_collections.cloudops.ecr_replication.plugins.module_utils import batching
from ansible_collections.cloudops.ecr_replication.plugins.module_utils import replication_results
from ansible_collections.cloudops.ecr_replication.plugins.module_utils.rate_limit import ECR_PUT_IMAGE_TPS

FINAL = ("SUCCEEDED", "FAILED", "FAULT", "STOPPED", "TIMED_OUT")


class ExecutorError(Exception):
    """A build could not be started or followed; ``builds`` holds what was started so far."""

    def __init__(self, message: str, builds: Optional[List[Dict[str, Any]]] = None):
        super().__init__(message)
        self.builds = builds or []


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
) -> Dict[str, str]:
    """The REPL_* variables every build of one run gets (see replicator.ENV_DOC).

    ECR's PutImage limit (10 TPS per account and region) is shared by the builds that run at the same time.
    """
    tps = max(0.5, round(ECR_PUT_IMAGE_TPS / max(1, concurrent_builds), 2))
    env = {
        "REPL_SOURCE_REGION": source_region,
        "REPL_DEST_REGION": dest_region,
        "REPL_PARALLEL": str(parallel_copies),
        "REPL_FORCE_TAGS": "true" if force_tags else "false",
        "REPL_PUT_TPS": str(tps),
        "REPL_COPY_LIFECYCLE_POLICY": "true" if copy_lifecycle_policy else "false",
        "REPL_COPY_REPOSITORY_POLICY": "true" if copy_repository_policy else "false",
        "REPL_CREATE_REPOSITORIES": "true" if create_repositories else "false",
    }
    if dest_account:
        env["REPL_DEST_ACCOUNT"] = dest_account
    if dest_role_arn:
        env["REPL_DEST_ROLE_ARN"] = dest_role_arn
    if external_id:
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


def _build_record(build: Dict[str, Any], batch_index: Optional[int], images: Optional[int]) -> Dict[str, Any]:
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


class CodeBuildExecutor:
    """Starts batches as builds of one project, never more than ``max_concurrent`` at a time."""

    def __init__(
        self,
        codebuild,
        logs,
        project_name: str,
        start_build: Callable[..., Dict[str, Any]],
        batch_get_builds: Callable[..., List[Dict[str, Any]]],
        max_concurrent: int = 5,
        poll_interval: float = 15.0,
        wait_timeout: float = 3600.0,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.codebuild = codebuild
        self.logs = logs
        self.project_name = project_name
        self._start_build = start_build
        self._batch_get_builds = batch_get_builds
        self.max_concurrent = max(1, int(max_concurrent))
        self.poll_interval = poll_interval
        self.wait_timeout = wait_timeout
        self.sleep = sleep
        self.clock = clock

    def start(self, batch: List[Dict[str, Any]], env: Dict[str, str]) -> str:
        variables = dict(env)
        variables.update(batching.batch_env(batch))
        return self._start_build(self.codebuild, self.project_name, variables)["id"]

    def run(self, batches: List[List[Dict[str, Any]]], env: Dict[str, str], wait: bool = True):
        """Start the batches (the first ``max_concurrent`` only when ``wait`` is false); return
        (build records, results, batches not started)."""
        pending = list(enumerate(batches))
        running: Dict[str, tuple] = {}
        records: Dict[str, Dict[str, Any]] = {}
        results: List[Dict[str, Any]] = []
        deadline = self.clock() + self.wait_timeout
        while True:
            while pending and len(running) < self.max_concurrent:
                index, batch = pending.pop(0)
                try:
                    build_id = self.start(batch, env)
                except Exception as e:
                    raise ExecutorError("could not start build %d: %s" % (index, e), list(records.values())) from e
                running[build_id] = (index, batch)
                records[build_id] = {"id": build_id, "batch": index, "status": "IN_PROGRESS", "images": len(batch)}
            if not wait or not running:
                break
            if self.clock() > deadline:
                raise ExecutorError(
                    "wait_timeout: builds still running after %ds: %s (poll them with build_ids)"
                    % (self.wait_timeout, ", ".join(sorted(running))),
                    list(records.values()),
                )
            self.sleep(self.poll_interval)
            for build in self._batch_get_builds(self.codebuild, list(running)):
                if build.get("buildStatus") not in FINAL:
                    records[build["id"]].update(status=build.get("buildStatus"), current_phase=build.get("currentPhase"))
                    continue
                index, batch = running.pop(build["id"])
                record = _build_record(build, index, len(batch))
                records[build["id"]] = record
                results.extend(results_for(record, self.read_log(build), batch))
        return list(records.values()), results, [batch for _index, batch in pending]

    def poll(self, build_ids: List[str], wait: bool = True):
        """Follow builds started earlier; their batches are read back from their environment."""
        deadline = self.clock() + self.wait_timeout
        while True:
            builds = self._batch_get_builds(self.codebuild, build_ids)
            unknown = sorted(set(build_ids) - {b["id"] for b in builds})
            if unknown:
                raise ExecutorError("unknown build ids: %s" % ", ".join(unknown))
            done = all(b.get("buildStatus") in FINAL for b in builds)
            if done or not wait:
                break
            if self.clock() > deadline:
                running = sorted(b["id"] for b in builds if b.get("buildStatus") not in FINAL)
                raise ExecutorError("wait_timeout: builds still running: %s" % ", ".join(running))
            self.sleep(self.poll_interval)
        records, results = [], []
        for build in builds:
            planned = batch_from_env((build.get("environment") or {}).get("environmentVariables"))
            record = _build_record(build, None, len(planned) if planned is not None else None)
            records.append(record)
            if build.get("buildStatus") in FINAL:
                results.extend(results_for(record, self.read_log(build), planned))
        return records, results

    def read_log(self, build: Dict[str, Any]) -> List[str]:
        """Every message of the build's CloudWatch Logs stream (all pages)."""
        logs = build.get("logs") or {}
        group, stream = logs.get("groupName"), logs.get("streamName")
        if not group or not stream or self.logs is None:
            return []
        lines: List[str] = []
        token = None
        for _page in range(10000):
            params = {"logGroupName": group, "logStreamName": stream, "startFromHead": True}
            if token:
                params["nextToken"] = token
            try:
                page = self.logs.get_log_events(**params)
            except Exception as e:  # the stream may not exist when a build failed before it wrote anything
                if "ResourceNotFoundException" in str(e):
                    return lines
                raise
            lines.extend(event.get("message", "") for event in page.get("events", []))
            if not page.get("events") or page.get("nextForwardToken") in (None, token):
                break
            token = page.get("nextForwardToken")
        return lines


class LocalExecutor:
    """Runs the batches with ``buildspec_runner`` on this machine, ``max_concurrent`` at a time."""

    def __init__(self, buildspec_text: str, base_env: Dict[str, str], max_concurrent: int = 1,
                 wait_timeout: Optional[float] = None, workdir: Optional[str] = None):
        self.buildspec_text = buildspec_text
        self.base_env = dict(base_env)
        self.max_concurrent = max(1, int(max_concurrent))
        self.wait_timeout = wait_timeout
        self.workdir = workdir

    def run(self, batches: List[List[Dict[str, Any]]], env: Dict[str, str]):
        from ansible_collections.cloudops.ecr_replication.plugins.module_utils import buildspec_runner

        records: List[Optional[Dict[str, Any]]] = [None] * len(batches)
        results: List[List[Dict[str, Any]]] = [[] for _batch in batches]
        semaphore = threading.Semaphore(self.max_concurrent)
        errors: List[BaseException] = []

        def one(index: int, batch: List[Dict[str, Any]]) -> None:
            with semaphore:
                lines: List[str] = []
                variables = dict(self.base_env)
                variables.update(env)
                variables.update(batching.batch_env(batch))
                started = time.time()
                tmp = None
                try:
                    import tempfile

                    tmp = tempfile.mkdtemp(prefix="ecr-replication-local-", dir=self.workdir)
                    runner = buildspec_runner.BuildspecRunner(
                        self.buildspec_text, variables, workdir=tmp, sink=lines.append, timeout=self.wait_timeout,
                        extra_codebuild_vars={"CODEBUILD_BUILD_ID": "local:batch-%d-%d" % (index, os.getpid())},
                    )
                    outcome = runner.run()
                except BaseException as e:  # a runner error must not leave the other batches unreported
                    errors.append(e)
                    outcome = None
                finally:
                    if tmp:
                        shutil.rmtree(tmp, ignore_errors=True)
                status = outcome.status if outcome else "FAILED"
                record = {
                    "id": runner.build_id if outcome else "local:batch-%d" % index,
                    "batch": index,
                    "status": status,
                    "current_phase": "COMPLETED",
                    "images": len(batch),
                    "duration_seconds": round(time.time() - started, 1),
                    "log_group": None,
                    "log_stream": None,
                    "log_link": None,
                    "error": None,
                }
                if status != "SUCCEEDED":
                    failed = [p for p in (outcome.phases if outcome else []) if p.status not in ("SUCCEEDED", None)]
                    record["error"] = (
                        "build %s in phase %s: %s" % (status, PHASE_NAMES.get(failed[0].name, failed[0].name),
                                                      failed[0].message or failed[0].code)
                        if failed else "build %s%s" % (status, ": %s" % errors[-1] if errors and not outcome else "")
                    )
                records[index] = record
                results[index] = results_for(record, lines, batch)

        threads = [threading.Thread(target=one, args=(n, b), daemon=True) for n, b in enumerate(batches)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        return [r for r in records if r], [r for rs in results for r in rs], []


PHASE_NAMES = {"install": "INSTALL", "pre_build": "PRE_BUILD", "build": "BUILD", "post_build": "POST_BUILD"}
