# -*- coding: utf-8 -*-

# Copyright: Contributors to the cloudops.ecr_replication project
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Action plugin of ``replicate_images`` (documented in plugins/modules/replicate_images.py): plan, or run the
copies to their end with ``replication_driver``.

Why an action plugin: a copy of thousands of images runs for hours. A module blocks without a word until it
returns, and a task file that includes itself to poll dies of RecursionError after ~250 passes. Here the loop is
plain Python in the controller's worker process (``replication_driver.Driver``): it prints one progress line per
poll through Ansible's display, handles SIGINT/SIGTERM (AWX cancel) by stopping the builds it started, and returns
one result that the role's report step reads as it is.
"""

from __future__ import annotations

import os
import signal
from typing import Any
from typing import Dict
from typing import List

from ansible_collections.cloudops.ecr_replication.plugins.module_utils import batching
from ansible_collections.cloudops.ecr_replication.plugins.module_utils import codebuild
from ansible_collections.cloudops.ecr_replication.plugins.module_utils import ecr
from ansible_collections.cloudops.ecr_replication.plugins.module_utils import ecr_replication
from ansible_collections.cloudops.ecr_replication.plugins.module_utils import image_catalog
from ansible_collections.cloudops.ecr_replication.plugins.module_utils import replication_driver
from ansible_collections.cloudops.ecr_replication.plugins.module_utils import replication_executor
from ansible_collections.cloudops.ecr_replication.plugins.module_utils import report as report_utils
from ansible_collections.cloudops.ecr_replication.plugins.module_utils import validation
from ansible_collections.cloudops.ecr_replication.plugins.module_utils.action_specs import COPY_STRATEGIES
from ansible_collections.cloudops.ecr_replication.plugins.module_utils.action_specs import REPLICATE_IMAGES_SPEC
from ansible_collections.cloudops.ecr_replication.plugins.module_utils.image_catalog import needs_copy
from ansible_collections.cloudops.ecr_replication.plugins.plugin_utils.aws_action import AWSActionBase
from ansible_collections.cloudops.ecr_replication.plugins.plugin_utils.aws_action import progress

SESSION_NAME = "ecr-replication-controller"


class ActionModule(AWSActionBase):
    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        args = self.validate(REPLICATE_IMAGES_SPEC)
        try:
            for option in ("batch_size", "max_concurrent_builds", "parallel_copies", "max_rounds"):
                validation.validate_int(args[option], option, *validation.REPLICATE_LIMITS[option])
            validation.validate_seconds(args["poll_interval"], "poll_interval", *validation.POLL_INTERVAL_RANGE)
            validation.validate_seconds(args["wait_timeout"], "wait_timeout", *validation.WAIT_TIMEOUT_RANGE)
            validation.validate_kms_key(args["kms_key"], "kms_key")
        except validation.OptionError as e:
            result.update(failed=True, msg=str(e), option=e.option)
            return result
        self.args = args
        # what copies the images no backfill serves
        self.executor = args["strategy"] if args["strategy"] in COPY_STRATEGIES else args["copy_strategy"]
        self.destinations = {d["key"]: d for d in args["destinations"]}
        self.images = {entry.get("name"): entry.get("images") or [] for entry in args["facts"]}
        self.repositories = {
            entry.get("name"): [r.get("name") for r in entry.get("repositories") or []] for entry in args["facts"]
        }
        if args["facts_error"]:  # no destination could be compared: each is reported with the reason
            self.images = {key: [] for key in self.destinations}
        missing = sorted(set(self.destinations) - set(self.images))
        if missing:
            result.update(
                failed=True, msg="facts: no images for destination(s) %s" % ", ".join(missing), option="facts"
            )
            return result
        self.work = {
            key: [i for i in self.images[key] if needs_copy(i, args["force_tags"])] for key in self.destinations
        }

        errors: Dict[str, str] = {}
        self.paths: Dict[str, Dict[str, Dict[str, str]]] = {key: {} for key in self.destinations}
        self.native: Dict[str, List[str]] = {}
        if args["facts_error"]:
            errors = {key: "listing or comparing failed: %s" % args["facts_error"] for key in self.destinations}
        elif args["strategy"] in ("backfill", "auto"):
            errors = self._choose_paths()
        project, project_errors = self._project()
        errors = dict(project_errors, **self._check_local_roles(errors), **self._check_parameters(errors), **errors)
        plans = {key: self._plan(key, project) for key in self.destinations if key not in errors}
        if self._task.check_mode:
            result.update(
                changed=any(p["builds"] or p["backfill_images"] for p in plans.values()),
                plans=plans,
                errors=errors,
                report_destinations=self._report_destinations({}, errors),
            )
            return result

        runnable = {key: self.work[key] for key in self.destinations if key not in errors}
        outcome = self._execute(runnable, project)
        for key, error in errors.items():
            outcome["destinations"][key] = {"builds": [], "results": [], "verified": None, "error": error}
        report_destinations = self._report_destinations(outcome["destinations"], {})
        result.update(
            changed=any(d["builds"] for d in outcome["destinations"].values()),
            plans=plans,
            report_destinations=report_destinations,
            builds=sum(len(d["builds"]) for d in outcome["destinations"].values()),
            stopped=outcome["stopped"],
            stop_reason=outcome["stop_reason"],
            polls=outcome["polls"],
            counts=outcome["counts"],
            elapsed_seconds=outcome["elapsed_seconds"],
        )
        if outcome["stop_reason"] and outcome["stop_reason"].startswith("interrupted"):
            # The play is over (ansible-playbook stopped reading its workers), so the report is written here, and
            # this worker ends as ansible's own workers do on a signal: the result could never be delivered.
            paths = self._write_report(report_destinations)
            message = "%s: %d build(s) stopped; report: %s" % (
                outcome["stop_reason"],
                sum(len(d.get("stopped_builds") or []) for d in outcome["destinations"].values()),
                paths or "not written (no report_dir)",
            )
            progress(message)
            os._exit(1)
        return result

    # ------------------------------------------------------------------------------------------------------

    def _copy_work(self, key: str) -> List[Dict[str, Any]]:
        """The images of a destination that a copy (a build or a local run) serves: those no backfill does."""
        native = self.native.get(key, ())
        return [i for i in self.work.get(key, []) if i["repository"] not in native]

    def _project(self):
        """The CodeBuild project (codebuild strategy), or an error for every destination with work."""
        copied = {key: self._copy_work(key) for key in self.work}
        if self.executor != "codebuild" or not any(copied.values()):
            return None, {}
        try:
            project = codebuild.get_project(
                self.client("codebuild", region=self.args["source"]["region"]), self.args["project_name"]
            )
        except Exception as e:  # noqa: BLE001 - reported per destination, then the play fails after the report
            message = "cannot read CodeBuild project %s: %s" % (self.args["project_name"], e)
            return None, {key: message for key, work in copied.items() if work}
        if project is None:
            message = "project_name: CodeBuild project %s does not exist in %s (run playbooks/provision.yml)" % (
                self.args["project_name"],
                self.args["source"]["region"],
            )
            return None, {key: message for key, work in copied.items() if work}
        return project, {}

    def _choose_paths(self) -> Dict[str, str]:
        """Per destination and repository: ECR's own replication (a backfill) or a copy, and why.

        A backfill copies, for one destination, every existing image of every repository a replication rule covers
        for it. So a repository goes native only when a rule covers it, the selection takes it whole (no image
        filter), and the backfill would copy nothing outside the selection; ``strategy: backfill`` fails for a
        destination where that is not so, naming the repositories and the reason, and ``auto`` copies them."""
        filters = self.args["filters"]
        narrowed = [
            name
            for name, value in (
                ("tag_regex", filters.get("tag_regex")),
                ("pushed_after", filters.get("pushed_after")),
                ("most_recent", filters.get("most_recent")),
                ("include_untagged", not filters.get("include_untagged", True)),
            )
            if value
        ]
        source = self.args["source"]
        client = self.client("ecr", region=source["region"])
        try:
            _registry_id, configuration = ecr_replication.describe_registry(client)
            registry = [r["repositoryName"] for r in ecr.describe_repositories(client, registry_id=source["account"])]
        except Exception as e:  # noqa: BLE001 - without the configuration nothing can go native
            return {
                key: "cannot read the source registry's replication configuration: %s" % e for key in self.destinations
            }
        errors = {}
        for key, dest in self.destinations.items():
            # the repositories the filters selected, empty ones included: a backfill copying those copies nothing
            selected = sorted({i["repository"] for i in self.images[key]} | set(self.repositories.get(key, ())))
            coverage = ecr_replication.coverage(configuration, registry, dest["region"], dest["account"])
            paths = self.paths[key]
            other_partition = validation.partition_for_region(dest["region"]) != validation.partition_for_region(
                source["region"]
            )
            outside = sorted(name for name, c in coverage.items() if c["covered"] and name not in selected)
            for name in sorted({i["repository"] for i in self.images[key]}):
                if not coverage[name]["covered"]:
                    paths[name] = {"path": "copy", "reason": coverage[name]["reason"]}
                elif narrowed:
                    paths[name] = {
                        "path": "copy",
                        "reason": "the selection narrows images (%s); a backfill copies "
                        "whole repositories" % ", ".join(narrowed),
                    }
                elif other_partition:
                    paths[name] = {"path": "copy", "reason": "ECR replicates within one partition only"}
                elif outside and self.args["strategy"] == "auto":
                    paths[name] = {
                        "path": "copy",
                        "reason": "a backfill to this destination would also copy %d "
                        "covered repositories outside the selection (%s)" % (len(outside), ", ".join(outside[:5])),
                    }
                else:
                    paths[name] = {"path": "backfill", "reason": coverage[name]["reason"]}
            refused = {n: p["reason"] for n, p in paths.items() if p["path"] != "backfill"}
            if self.args["strategy"] == "backfill" and refused:
                errors[key] = "strategy backfill: %d selected repositories cannot be served by a backfill: %s" % (
                    len(refused),
                    "; ".join("%s: %s" % item for item in sorted(refused.items())[:20]),
                )
                continue
            self.native[key] = sorted(n for n, p in paths.items() if p["path"] == "backfill")
        return errors

    def _check_parameters(self, errors: Dict[str, str]) -> Dict[str, str]:
        """strategy codebuild: the ExternalId reaches builds through an SSM SecureString (provision.yml creates
        it). Its absence is found here, before any build starts and is billed, rather than in every build."""
        if self.executor != "codebuild":
            return {}
        wanted = {}
        for key, dest in self.destinations.items():
            if key not in errors and self._copy_work(key) and dest["external_id"]:
                wanted[key] = dest["external_id_parameter"]
        if not wanted:
            return {}
        found = {}
        ssm = self.client("ssm", region=self.args["source"]["region"])
        for key, name in wanted.items():
            if not name:
                found[key] = "external_id_parameter: required with an external ID and strategy codebuild"
                continue
            try:
                known = ssm.describe_parameters(
                    ParameterFilters=[{"Key": "Name", "Option": "Equals", "Values": [name]}]
                )
            except Exception as e:  # noqa: BLE001 - no permission, endpoint: the builds could not read it either
                found[key] = "external_id_parameter: cannot look up SSM parameter %s: %s" % (name, e)
                continue
            if not known.get("Parameters"):
                found[key] = (
                    "external_id_parameter: SSM parameter %s does not exist in %s; provision.yml creates it (a "
                    "SecureString the CodeBuild role may read), so that the ExternalId never travels as PLAINTEXT"
                    % (name, self.args["source"]["region"])
                )
        return found

    def _check_local_roles(self, errors: Dict[str, str]) -> Dict[str, str]:
        """strategy local: the controller itself assumes each destination role. Try it before anything starts, so
        that a wrong role or external ID is one clear error per destination, not every image failing in the copy."""
        if self.executor != "local":
            return {}
        found = {}
        for key, dest in self.destinations.items():
            if key in errors or not self._copy_work(key) or not dest["role_arn"]:
                continue
            try:
                ecr.assumed_role_connection(
                    self.client("sts"), dest["role_arn"], SESSION_NAME, dest["external_id"] or None
                )
            except Exception as e:  # noqa: BLE001 - AccessDenied, no such role, wrong external ID: all say the same
                found[key] = (
                    "dest_role_arn: %s cannot be assumed by this controller's credentials (strategy local; "
                    "provision.yml -e trust_caller=true makes the destination role trust them): %s"
                    % (dest["role_arn"], e)
                )
        return found

    def _max_concurrent(self, project) -> int:
        limit = (project or {}).get("concurrentBuildLimit")
        wanted = self.args["max_concurrent_builds"]
        if limit and limit < wanted:
            self.warn("max_concurrent_builds %d lowered to the project's concurrentBuildLimit %d" % (wanted, limit))
            return limit
        return wanted

    def _plan(self, key: str, project) -> Dict[str, Any]:
        copy = self._copy_work(key)
        batches = batching.build_batches(batching.normalize_images(copy), self.args["batch_size"]) if copy else []
        compute_type = ((project or {}).get("environment") or {}).get("computeType")
        plan = batching.plan(
            batches,
            self.args["parallel_copies"],
            self._max_concurrent(project),
            compute_type,
            self.args["price_per_minute"],
        )
        plan["skipped"] = len(self.images[key]) - len(self.work[key])
        plan["executor"] = self.executor
        plan["backfill_images"] = len(self.work[key]) - len(copy)
        plan["backfill_repositories"] = sorted(
            {i["repository"] for i in self.work[key]} - {i["repository"] for i in copy}
        )
        plan["paths"] = self.paths.get(key, {})
        plan.pop("batches")  # per-batch detail is for codebuild_replicate's check mode; the role shows totals
        return plan

    def _env_for(self, key: str, concurrent: int) -> Dict[str, str]:
        dest = self.destinations[key]
        return replication_executor.common_env(
            self.args["source"]["region"],
            dest["region"],
            dest["account"],
            dest["role_arn"] or None,
            dest["external_id"] or None,
            self.args["parallel_copies"],
            self.args["force_tags"],
            concurrent,
            self.args["copy_lifecycle_policy"],
            self.args["copy_repository_policy"],
            # a build gets the SecureString's name; only a local run (this process's memory) the ExternalId itself
            external_id_parameter=(dest["external_id_parameter"] or None) if self.executor == "codebuild" else None,
            kms_key=self.args["kms_key"] or None,
        )

    def _compare(self, keys: List[str]) -> Dict[str, List[Dict[str, Any]]]:
        """List the source once and the destinations ``keys`` again (their read roles re-assumed each time: a
        run can outlast their sessions)."""
        source = self.args["source"]
        targets = []
        for key in keys:
            dest = self.destinations[key]
            extra: Dict[str, Any] = {"region": dest["region"]}
            if dest["read_role_arn"]:
                extra.update(
                    ecr.assumed_role_connection(
                        self.client("sts"), dest["read_role_arn"], SESSION_NAME, dest["external_id"] or None
                    )
                )
            targets.append(image_catalog.Destination(self.client("ecr", **extra), dest["account"], key))
        repositories = sorted({i["repository"] for key in keys for i in self.work.get(key, [])})
        filters = self.args["filters"]
        selection = image_catalog.build_filters(
            repositories=repositories,
            tag_regex=filters.get("tag_regex") or None,
            pushed_after=filters.get("pushed_after") or None,
            most_recent=filters.get("most_recent") or None,
            include_untagged=filters.get("include_untagged", True),
        )
        listing = image_catalog.collect(
            self.client("ecr", region=source["region"]), selection, registry_id=source["account"], destinations=targets
        )
        return {entry["name"]: entry["images"] for entry in listing["destinations"]}

    def _backend(self, project):
        source_region = self.args["source"]["region"]
        if self.executor == "local":
            from ansible_collections.cloudops.ecr_replication.plugins.module_utils.replicator import render_buildspec

            credentials = self.session_credentials()
            if credentials is None:
                raise validation.OptionError("strategy", "local needs AWS credentials for the source account")
            endpoint, ca_bundle = self.endpoint_and_ca_bundle()
            env = replication_executor.local_build_env(credentials, source_region, endpoint, ca_bundle)
            return replication_executor.LocalBackend(render_buildspec(), env, timeout=self.args["wait_timeout"])
        return replication_executor.CodeBuildBackend(
            self.client("codebuild", region=source_region),
            self.client("logs", region=source_region),
            self.args["project_name"],
        )

    def _execute(self, work: Dict[str, List[Dict[str, Any]]], project) -> Dict[str, Any]:
        try:
            backend = self._backend(project) if any(self._copy_work(key) for key in work) else None
        except validation.OptionError as e:
            return {
                "destinations": {k: {"builds": [], "results": [], "verified": None, "error": str(e)} for k in work},
                "stopped": False,
                "stop_reason": None,
                "polls": 0,
                "counts": {},
                "elapsed_seconds": 0,
            }
        driver = replication_driver.Driver(
            backend,
            work,
            self._env_for,
            self._compare,
            batch_size=self.args["batch_size"],
            max_concurrent=self._max_concurrent(project),
            poll_interval=self.args["poll_interval"],
            wait_timeout=self.args["wait_timeout"],
            max_rounds=self.args["max_rounds"],
            force_tags=self.args["force_tags"],
            progress=progress,
            log_interval=max(self.args["poll_interval"], 5.0),
            watch=self._parent_gone(),
            native_backend=(
                replication_executor.BackfillBackend(
                    self.client("ecr", region=self.args["source"]["region"]), self.args["source"]["account"]
                )
                if self.native
                else None
            ),
            native=self.native,
            # builds assume the destination role where the controller cannot: the first build of each such
            # destination runs alone, and a role it cannot assume stops that destination after one build
            prove_first=[
                key for key, dest in self.destinations.items() if self.executor == "codebuild" and dest["role_arn"]
            ],
            blobs_of=self._blobs_of if self.args["share_blobs"] else None,
            billed_builds=self.executor == "codebuild",
        )

        def stop(signum, _frame):
            # ansible-playbook forwards SIGINT/SIGTERM to its workers, then stops reading from them
            driver.request_stop("interrupted (%s)" % signal.Signals(signum).name)

        previous = {}
        for signum in (signal.SIGINT, signal.SIGTERM):
            try:
                previous[signum] = signal.signal(signum, stop)
            except ValueError:  # not the main thread (a test harness): no handler, the timeout still applies
                pass
        try:
            return driver.run()
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)
            if isinstance(backend, replication_executor.LocalBackend):
                backend.close()

    def _blobs_of(self, _key: str, images: List[Dict[str, Any]]) -> Dict[tuple, Dict[str, int]]:
        source = self.args["source"]
        return image_catalog.image_blobs(self.client("ecr", region=source["region"]), images, source["account"])

    def _parent_gone(self):
        """A stop reason once the ansible-playbook process that started this worker has died (SIGKILL, a crash):
        its builds must not run on unwatched."""
        parent = os.getppid()

        def check():
            if os.getppid() != parent:
                return "interrupted (ansible-playbook ended)"
            return None

        return check

    def _report_destinations(self, outcome: Dict[str, Any], errors: Dict[str, str]) -> List[Dict[str, Any]]:
        entries = []
        for key, dest in self.destinations.items():
            run = outcome.get(key) or {}
            entries.append(
                {
                    "region": dest["region"],
                    "account": dest["account"],
                    "role_arn": dest["role_arn"] or None,
                    "planned": self.images[key],
                    "results": run.get("results") or [],
                    "verified": run.get("verified"),
                    "builds": run.get("builds") or [],
                    "error": run.get("error") or errors.get(key),
                    "paths": self.paths.get(key) or {},
                }
            )
        return entries

    def _write_report(self, report_destinations: List[Dict[str, Any]]):
        settings = self.args["report"] or {}
        if not settings.get("report_dir"):
            return None
        report = report_utils.build_report(
            source=self.args["source"],
            destinations=report_destinations,
            strategy=self.args["strategy"],
            dry_run=False,
            force_tags=self.args["force_tags"],
            started_at=settings.get("started_at"),
        )
        try:
            json_path, md_path, _changed = report_utils.write_report(
                settings["report_dir"], settings.get("name") or "ecr-replication-report", report
            )
        except OSError as e:
            self.warn("the report could not be written: %s" % e)
            return None
        return "%s and %s" % (md_path, json_path)
