# Copyright: Contributors to the cloudops.ecr_replication project
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""strategy auto and backfill through `ansible-playbook`, after `provision.yml -e native_replication=true`:

- auto copies the small catalog with 0 builds (one ECR replication backfill), verified independently, while the
  source is polled the whole time and every tag keeps its digest; the re-run is changed=0;
- a selection narrowed with tag_regex starts builds, and the report says per repository why;
- strategy backfill refuses a narrowed selection before anything starts;
- a new push to a covered source repository appears in the destination without running anything.
"""

from __future__ import annotations

import json
import threading
import time

import pytest

from .conftest import provision
from .conftest import run_playbook
from .conftest import user_args

pytestmark = pytest.mark.sandbox


def _args(sandbox, *more: str) -> list[str]:
    return user_args(sandbox, "-e", "poll_interval=0.5", *more)


def _tags(ecr) -> dict:
    found = {}
    for page in ecr.get_paginator("describe_repositories").paginate():
        for repo in page["repositories"]:
            for images in ecr.get_paginator("describe_images").paginate(repositoryName=repo["repositoryName"]):
                for detail in images["imageDetails"]:
                    for tag in detail.get("imageTags") or []:
                        found[(repo["repositoryName"], tag)] = detail["imageDigest"]
    return found


@pytest.fixture(scope="module")
def native(provisioned, tmp_path_factory):
    """provision.yml with native replication on (rule + destination registry policy); the source registry's
    replication configuration comes back as it was afterwards, so that other tests' pushes are not replicated."""
    sandbox = provisioned
    source_ecr = sandbox.client("ecr", "source", sandbox.source_region)
    before = source_ecr.describe_registry().get("replicationConfiguration") or {"rules": []}
    provision(sandbox, tmp_path_factory.mktemp("provision-native"), "-e", "native_replication=true")
    sandbox.reset_target()
    yield sandbox
    source_ecr.put_replication_configuration(replicationConfiguration=before)


def test_auto_copies_with_a_backfill_no_build_and_the_source_never_changes(native, tmp_path):
    sandbox = native
    source_ecr = sandbox.client("ecr", "source", sandbox.source_region)
    original = _tags(source_ecr)
    changed: list = []
    polls = [0]
    done = threading.Event()

    def watch_source():
        while not done.is_set():
            now = _tags(source_ecr)
            changed.extend(k for k, digest in original.items() if now.get(k) != digest)
            polls[0] += 1
            time.sleep(0.2)

    watcher = threading.Thread(target=watch_source, daemon=True)
    watcher.start()
    try:
        run = run_playbook(sandbox, "replicate.yml", tmp_path, *_args(sandbox, "-e", "strategy=auto"))
    finally:
        done.set()
        watcher.join(30)
    assert run.returncode == 0, run.explain()
    assert polls[0] >= 3 and not changed, f"source tags moved during the run: {changed[:5]}"

    report = json.loads((tmp_path / "reports" / "ecr-replication-report.json").read_text())
    summary = report["summary"]
    assert summary["builds"] == 0 and summary["backfills"] == 1, summary
    assert summary["success"] and summary["copied"] == len(sandbox.catalog["images"])
    paths = report["destinations"][0]["paths"]
    assert {p["path"] for p in paths.values()} == {"backfill"}
    assert all("replicates every repository" in p["reason"] for p in paths.values())
    # independently of the report: every source tag, same digest, in the destination
    destination = _tags(sandbox.client("ecr", "target", sandbox.dest_region))
    assert {k: v for k, v in destination.items() if k in original} == original

    rerun_dir = tmp_path / "rerun"
    rerun_dir.mkdir()
    rerun = run_playbook(sandbox, "replicate.yml", rerun_dir, *_args(sandbox, "-e", "strategy=auto"))
    assert rerun.returncode == 0, rerun.explain()
    assert rerun.recap["changed"] == 0, rerun.stdout[-3000:]


def test_a_narrowed_selection_is_copied_by_builds_and_says_why(native, tmp_path):
    sandbox = native
    sandbox.reset_target()
    run = run_playbook(sandbox, "replicate.yml", tmp_path, *_args(sandbox, "-e", "strategy=auto", "-e", "tag_regex=^1"))
    assert run.returncode == 0, run.explain()
    report = json.loads((tmp_path / "reports" / "ecr-replication-report.json").read_text())
    assert report["summary"]["builds"] >= 1 and report["summary"]["backfills"] == 0
    assert report["summary"]["success"] and report["summary"]["copied"] >= 1
    reasons = {p["reason"] for p in report["destinations"][0]["paths"].values()}
    assert reasons == {"the selection narrows images (tag_regex); a backfill copies whole repositories"}
    markdown = (tmp_path / "reports" / "ecr-replication-report.md").read_text()
    assert "| Path | Why |" in markdown


def test_strategy_backfill_refuses_a_narrowed_selection_before_any_change(native, tmp_path):
    sandbox = native
    target = sandbox.client("ecr", "target", sandbox.dest_region)
    before = _tags(target)
    run = run_playbook(
        sandbox, "replicate.yml", tmp_path, *_args(sandbox, "-e", "strategy=backfill", "-e", "most_recent=1")
    )
    assert run.returncode != 0
    assert "replicate_most_recent: narrows the selection" in run.stdout
    assert "Traceback" not in run.stdout + run.stderr
    assert _tags(target) == before
    backfills = sandbox.client("ecr", "source", sandbox.source_region).list_replication_backfills()
    assert not [b for b in backfills.get("replicationBackfills", []) if b["status"] in ("PREPARING", "IN_PROGRESS")]


def test_a_new_push_to_a_covered_repository_reaches_the_destination_by_itself(native):
    sandbox = native
    source = sandbox.client("ecr", "source", sandbox.source_region)
    image = next(i for i in sandbox.catalog["images"] if i["kind"] == "image" and i["tags"])
    manifest = source.batch_get_image(repositoryName=image["repository"], imageIds=[{"imageDigest": image["digest"]}])[
        "images"
    ][0]["imageManifest"]
    tag = "pushed-%d" % int(time.time())
    source.put_image(repositoryName=image["repository"], imageManifest=manifest, imageTag=tag)
    target = sandbox.client("ecr", "target", sandbox.dest_region)
    deadline = time.monotonic() + 60
    found = None
    while time.monotonic() < deadline and found is None:
        try:
            found = target.describe_images(repositoryName=image["repository"], imageIds=[{"imageTag": tag}])
        except (target.exceptions.ImageNotFoundException, target.exceptions.RepositoryNotFoundException):
            time.sleep(0.5)
    assert found and found["imageDetails"][0]["imageDigest"] == image["digest"]
