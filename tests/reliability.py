# Copyright: Contributors to the cloudops.ecr_replication project
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The reliability figures of a test session: faults injected and survived, bad inputs tried and refused cleanly,
images verified, secrets found in anything the product wrote.

Tests report through the ``reliability`` fixture, AFTER their assertions (a failed assertion records nothing, so
``survived < injected`` or ``refused < tried`` shows it)::

    def test_registry_5xx(sandbox, reliability):
        reliability.fault_injected("registry 5xx mid-blob")
        ...                                    # run, assert every image verified
        reliability.fault_survived("registry 5xx mid-blob")
        reliability.images_verified(len(images))

    reliability.bad_input_tried("batch_size=0")
    ...                                        # assert rc != 0, the option named, no AWS change
    reliability.bad_input_refused("batch_size=0")

    reliability.scan(text, where="replicate.yml stdout")   # counts every known secret found in text

Known secrets are registered with ``reliability.secret(value)`` (the sandbox registers its ExternalIds, secret
access keys and registry passwords). The summary is the last line pytest prints, and is also written as JSON to
``$RELIABILITY_TALLY_FILE`` when set (``tests/run_tests.sh`` repeats it as the last line of ``make test``).
"""

from __future__ import annotations

import json
import os
from collections import Counter
from dataclasses import dataclass
from dataclasses import field

import pytest

_MIN_SECRET_LENGTH = 8  # shorter values ("true", a port) would match by chance


@dataclass
class Tally:
    injected: Counter = field(default_factory=Counter)
    survived: Counter = field(default_factory=Counter)
    tried: Counter = field(default_factory=Counter)
    refused: Counter = field(default_factory=Counter)
    verified: int = 0
    scanned: int = 0
    secrets: set = field(default_factory=set)
    findings: list = field(default_factory=list)
    notes: list = field(default_factory=list)

    def fault_injected(self, name: str, count: int = 1) -> None:
        self.injected[name] += count

    def fault_survived(self, name: str, count: int = 1) -> None:
        self.survived[name] += count

    def bad_input_tried(self, name: str) -> None:
        self.tried[name] += 1

    def bad_input_refused(self, name: str) -> None:
        self.refused[name] += 1

    def images_verified(self, count: int) -> None:
        self.verified += count

    def secret(self, value: str | None) -> None:
        if value and len(value) >= _MIN_SECRET_LENGTH:
            self.secrets.add(value)

    def scan(self, text: str | bytes | None, where: str) -> int:
        """Count the known secrets in ``text``; every finding is kept for the summary (never the secret itself)."""
        if not text:
            return 0
        if isinstance(text, bytes):
            text = text.decode("utf-8", "replace")
        self.scanned += 1
        found = 0
        for index, value in enumerate(sorted(self.secrets)):
            hits = text.count(value)
            if hits:
                found += hits
                self.findings.append(f"secret #{index} x{hits} in {where}")
        return found

    @property
    def secrets_found(self) -> int:
        return len(self.findings)

    def summary(self) -> dict:
        return {
            "faults_injected": sum(self.injected.values()),
            "faults_survived": sum(self.survived.values()),
            "bad_inputs_tried": sum(self.tried.values()),
            "bad_inputs_refused": sum(self.refused.values()),
            "images_verified": self.verified,
            "outputs_scanned": self.scanned,
            "secrets_found": self.secrets_found,
        }

    def line(self) -> str:
        s = self.summary()
        return (
            f"reliability: faults injected {s['faults_injected']}, survived {s['faults_survived']}; "
            f"bad inputs tried {s['bad_inputs_tried']}, refused cleanly {s['bad_inputs_refused']}; "
            f"images verified {s['images_verified']}; "
            f"secrets found {s['secrets_found']} in {s['outputs_scanned']} outputs scanned"
        )


TALLY = Tally()


@pytest.fixture
def reliability() -> Tally:
    return TALLY


def scan_build_logs(env: dict, tally: Tally) -> None:
    """Every build the sandbox CodeBuild ran, in both accounts and regions: its environment variables as
    BatchGetBuilds shows them, and its whole log. A secret in either is a finding."""
    import boto3

    for account_env in ({}, {"profile": "target"}):
        for region in (env["SANDBOX_SOURCE_REGION"], env["SANDBOX_DEST_REGION"]):
            session = boto3.Session(
                aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
                aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
                region_name=region,
            )
            if account_env:  # the target account's administrator role, as the sandbox's `target` profile
                creds = session.client("sts", endpoint_url=env["AWS_ENDPOINT_URL"]).assume_role(
                    RoleArn=env["SANDBOX_TARGET_ADMIN_ROLE_ARN"], RoleSessionName="reliability-scan"
                )["Credentials"]
                session = boto3.Session(
                    aws_access_key_id=creds["AccessKeyId"],
                    aws_secret_access_key=creds["SecretAccessKey"],
                    aws_session_token=creds["SessionToken"],
                    region_name=region,
                )
            codebuild = session.client("codebuild", endpoint_url=env["AWS_ENDPOINT_URL"])
            logs = session.client("logs", endpoint_url=env["AWS_ENDPOINT_URL"])
            ids = [i for page in codebuild.get_paginator("list_builds").paginate() for i in page["ids"]]
            for start in range(0, len(ids), 100):
                for build in codebuild.batch_get_builds(ids=ids[start:start + 100])["builds"]:
                    tally.scan(json.dumps(build, default=str), f"BatchGetBuilds {build['id']}")
                    where = build.get("logs") or {}
                    if not where.get("groupName") or not where.get("streamName"):
                        continue
                    try:
                        events = logs.get_log_events(
                            logGroupName=where["groupName"], logStreamName=where["streamName"], startFromHead=True
                        )["events"]
                    except Exception:  # noqa: BLE001 - a log group a test deleted: nothing left to leak
                        continue
                    tally.scan("\n".join(e["message"] for e in events), f"build log {build['id']}")


def pytest_sessionfinish(session, exitstatus):  # noqa: ARG001 - pytest hook signature
    """Under `make test` the sandbox outlives pytest: read every build it ran before the summary is printed."""
    _scan_sandbox_builds()
    if TALLY.findings:  # a secret in any output fails the run, whatever the tests said
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def _scan_sandbox_builds() -> None:
    directory, port = os.environ.get("SANDBOX_TEST_DIR"), os.environ.get("SANDBOX_TEST_BASE_PORT")
    if not (directory and port and TALLY.secrets):
        return
    try:
        from tests.sandbox import lifecycle
        from tests.sandbox.config import SandboxConfig

        config = SandboxConfig(directory, int(port))
        if lifecycle.running_pid(config):
            scan_build_logs(lifecycle.sandbox_env(config), TALLY)
    except Exception as e:  # noqa: BLE001 - the scan is a check of its own: say it did not run
        TALLY.notes.append(f"the build logs could not be scanned ({type(e).__name__}: {e})")


@pytest.hookimpl(trylast=True)
def pytest_terminal_summary(terminalreporter, exitstatus, config):  # noqa: ARG001 - pytest hook signature
    summary = TALLY.summary()
    if not any(value for key, value in summary.items() if key != "outputs_scanned") and not TALLY.scanned:
        return
    not_survived = sorted(set(TALLY.injected) - set(TALLY.survived))
    not_refused = sorted(set(TALLY.tried) - set(TALLY.refused))
    if not_survived:
        terminalreporter.write_line("faults not survived: " + ", ".join(not_survived))
    if not_refused:
        terminalreporter.write_line("bad inputs not refused cleanly: " + ", ".join(not_refused))
    for note in TALLY.notes:
        terminalreporter.write_line(note)
    for finding in TALLY.findings:
        terminalreporter.write_line("SECRET LEAK: " + finding)
    path = os.environ.get("RELIABILITY_TALLY_FILE")
    if path:
        with open(path, "w", encoding="utf-8") as handle:
            json.dump({**summary, "line": TALLY.line()}, handle)
    terminalreporter.write_line(TALLY.line())
