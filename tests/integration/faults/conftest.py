# Copyright: Contributors to the cloudops.ecr_replication project
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Fault tests: replicate.yml as a user runs it, against the sandbox with faults switched on (tests/sandbox/faults.py),
and what every run must show whatever the fault: each digest and tag at the destination (ECR API and the blobs in
the registry), no manifest or tag written before what it refers to, no blob uploaded twice."""

from __future__ import annotations

import base64
import json
import shutil
import time
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.integration.replicate.conftest import REPO_ROOT
from tests.integration.replicate.conftest import provision
from tests.integration.replicate.conftest import run_playbook
from tests.integration.replicate.conftest import user_args
from tests.sandbox.faults import check_write_order
from tests.sandbox.faults import duplicate_uploads
from tests.sandbox.faults import manifest_writes


def _provisioned_already(sandbox) -> bool:
    """Whether provision.yml's project runs this tree's buildspec.yml and both destination roles exist (in make test
    an earlier module has provisioned the shared sandbox: running provision.yml again costs 40-80 s)."""
    try:
        codebuild = sandbox.client("codebuild", "source", sandbox.source_region)
        projects = codebuild.batch_get_projects(names=["ecr-replication"])["projects"]
        iam = sandbox.client("iam", "target")
        for role in ("ecr-replication-target", "ecr-replication-reader"):
            iam.get_role(RoleName=role)
    except Exception:  # noqa: BLE001 - anything missing: provision
        return False
    current = (REPO_ROOT / "buildspec.yml").read_text().rstrip()
    return bool(projects) and (projects[0]["source"].get("buildspec") or "").rstrip() == current


@pytest.fixture(scope="module")
def provisioned(sandbox, tmp_path_factory):
    """The CodeBuild project and destination roles of provision.yml."""
    if not _provisioned_already(sandbox):
        provision(sandbox, tmp_path_factory.mktemp("provision"))
    return sandbox


def clear_destination(sandbox, repositories) -> None:
    """Delete the destination repositories, and their blob links in the destination registry's storage (ECR forgets
    a deleted repository's blobs, distribution does not): every blob is transferred again and every write of the run
    is in the fault journal."""
    ecr = sandbox.client("ecr", "target", sandbox.dest_region)
    endpoint = sandbox.config.registry(sandbox.target_account, sandbox.dest_region)
    storage = sandbox.config.sandbox_dir / "registries" / endpoint.key / "data" / "docker" / "registry" / "v2"
    for name in repositories:
        try:
            ecr.delete_repository(repositoryName=name, force=True)
        except ecr.exceptions.RepositoryNotFoundException:
            pass
        shutil.rmtree(storage / "repositories" / name, ignore_errors=True)


def expected_images(sandbox, repositories) -> list[dict[str, Any]]:
    return [i for i in sandbox.catalog["images"] if i["repository"] in repositories]


def replicate(sandbox, cwd: Path, repositories, *more: str, timeout: int = 600):
    """replicate.yml for these repositories (codebuild unless ``more`` says otherwise); returns (run, report, secs)."""
    cwd.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    run = run_playbook(
        sandbox,
        "replicate.yml",
        cwd,
        *user_args(sandbox, "-e", "poll_interval=0.5", *more),
        extra={"repositories": list(repositories)},
        timeout=timeout,
    )
    elapsed = time.monotonic() - started
    path = cwd / "reports" / "ecr-replication-report.json"
    report = json.loads(path.read_text()) if path.exists() else None
    return run, report, elapsed


def verify_destination(sandbox, images) -> int:
    """Every digest with every tag in the destination's ECR API, and every blob of it in the destination registry
    (HEAD with a token, as a client pulling it would). Returns the number of images verified."""
    ecr = sandbox.client("ecr", "target", sandbox.dest_region)
    host = sandbox.registry_host("target")
    password = sandbox.registry_password("target")
    auth = "Basic " + base64.b64encode(f"AWS:{password}".encode()).decode()
    session = requests.Session()
    for image in images:
        (detail,) = ecr.describe_images(
            repositoryName=image["repository"], imageIds=[{"imageDigest": image["digest"]}]
        )["imageDetails"]
        assert set(image["tags"] or []) <= set(detail.get("imageTags") or []), (image, detail)
        for blob in image["blobs"] or []:
            answer = session.head(
                f"https://{host}/v2/{image['repository']}/blobs/{blob}",
                headers={"Authorization": auth},
                timeout=30,
                verify=sandbox.env["REQUESTS_CA_BUNDLE"],  # the sandbox CA (explicit: the environment's would win)
            )
            assert answer.status_code == 200, (image["repository"], image["digest"], blob, answer.status_code)
    return len(images)


def check_journal(sandbox, state: dict) -> dict:
    """No manifest or tag written before its blobs and child manifests were in place; no blob uploaded, no manifest
    or tag written, twice into one repository. Returns the destination's manifest writes by kind, for the test's own checks.
    """
    journal = state["journal"]
    assert not state.get("journal_truncated"), "the journal is incomplete: reset the faults before the run"
    assert not check_write_order(journal), check_write_order(journal)[:5]
    assert not duplicate_uploads(journal), duplicate_uploads(journal)
    twice = {key: n for key, n in manifest_writes(journal).items() if n > 1}
    assert not twice, twice  # nor a manifest or tag written again
    target = sandbox.config.registry(sandbox.target_account, sandbox.dest_region).key
    return {
        "uploads": sum(1 for e in journal if e["registry"] == target and e["kind"] == "blob" and e["how"] == "upload"),
        "manifests": sum(
            1 for e in journal if e["registry"] == target and e["kind"] == "manifest" and e["how"] != "exists"
        ),
    }


def failed_images(report: dict) -> list[dict]:
    return [i for i in report["images"] if i["outcome"] not in ("copied", "present")]
