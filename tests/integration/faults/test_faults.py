# Copyright: Contributors to the cloudops.ecr_replication project
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Faults a long replication meets, injected in the sandbox (tests/sandbox/faults.py), through replicate.yml with
the sandbox CodeBuild running the real copy program:

- ECR throttling on DescribeImages, BatchGetImage, PutImage, CreateRepository: retried, the run completes; a call
  throttled for good is retried a bounded number of times with jittered back-off and the image fails with the
  cause; LimitExceededException (a quota) is not retried as if it were throttling;
- registry 5xx and connection resets mid-blob: retried, the run completes, no blob uploaded twice;
- a destination registry that stays down: bounded retries, every image reported failed with the cause;
- registry tokens that expire mid-copy (403 as ECR answers): refreshed and retried within the build;
- CodeBuild: queue full (AccountLimitExceededException) and throttled polls retried by the driver without a
  duplicate build; builds that fail, time out or are stopped: the next round copies what is missing, without
  uploading again what arrived.

Every run that completes is checked the same way (conftest.py): each digest and tag at the destination (ECR API and
the blobs in the registry), no manifest or tag written before what it refers to (the registry write journal), no
blob uploaded twice. Small image sets keep the file to a few minutes; @pytest.mark.slow cases run in `make soak`.
"""

from __future__ import annotations

import re

import pytest

from .conftest import check_journal
from .conftest import clear_destination
from .conftest import expected_images
from .conftest import failed_images
from .conftest import replicate
from .conftest import verify_destination

pytestmark = pytest.mark.sandbox

ECR_OPERATIONS = ("DescribeImages", "BatchGetImage", "PutImage", "CreateRepository")
# ECR's message for LimitExceededException (a service quota, e.g. repositories per registry)
LIMIT_EXCEEDED = (
    "The operation did not succeed because it would have exceeded a service limit for your account. "
    "For more information, see Amazon ECR service quotas in the Amazon Elastic Container Registry User Guide."
)


def _calls(state: dict, operation: str) -> list[tuple[float, bool]]:
    return [(when, hit) for when, hit in state["calls"].get(operation, [])]


def test_ecr_throttling_is_retried_and_the_run_completes(provisioned, faults, reliability, tmp_path):
    """The first 2 calls of each of DescribeImages, BatchGetImage, PutImage, CreateRepository are throttled (the
    controller's listing and the copy program in the build both meet them): every image is copied and verified in
    one round, each throttled call was retried (the next call of that operation came after a back-off)."""
    sandbox = provisioned
    repositories = ["team-a/worker", "platform/base"]  # 8 tags on one digest: PutImage; indexes and children
    clear_destination(sandbox, repositories)
    faults.set(api={op: {"first": 2} for op in ECR_OPERATIONS})
    reliability.fault_injected("ECR throttling")
    run, report, _ = replicate(sandbox, tmp_path, repositories)
    state = faults.state()
    assert run.returncode == 0, run.explain()
    for op in ECR_OPERATIONS:
        assert state["injected"].get(f"api {op} ThrottlingException") == 2, (op, state["injected"])
        calls = _calls(state, op)
        # retried: a call after the throttled ones; bounded: not more than the throttled ones plus what the run
        # needs without faults (a few per repository)
        assert len(calls) > 2 and not calls[-1][1], (op, calls)
    images = expected_images(sandbox, repositories)
    assert report["summary"]["success"] and not failed_images(report), failed_images(report)
    assert report["summary"]["copied"] == len(images)
    assert report["summary"]["builds"] == 1 and "round 2 starts" not in run.stdout, run.stdout[-3000:]
    verified = verify_destination(sandbox, images)
    check_journal(sandbox, state)
    reliability.fault_survived("ECR throttling")
    reliability.images_verified(verified)


def test_put_image_throttled_for_good_fails_the_image_with_the_cause_after_bounded_jittered_retries(
    provisioned, faults, reliability, tmp_path
):
    """Every PutImage is throttled: the extra tag of an image cannot be written. The copy program retries a bounded
    number of times with jittered exponential back-off (the gaps between attempts grow, and not by exactly 2 each
    time), then reports that image failed with ThrottlingException; the run ends (no endless retry), the other
    image is copied and verified, and the failed one's digest is there with its first tag only."""
    sandbox = provisioned
    repository = "legacy-app"  # 5.0.0+latest (one PutImage for the second tag) and 4.9.9 (no PutImage)
    clear_destination(sandbox, [repository])
    faults.set(api={"PutImage": {"rate": 1.0}})
    reliability.fault_injected("ECR throttling for good")
    run, report, elapsed = replicate(sandbox, tmp_path, [repository], "-e", "max_rounds=1")
    state = faults.state()
    assert run.returncode != 0, run.explain()
    calls = [when for when, _hit in _calls(state, "PutImage")]
    assert 2 <= len(calls) <= 10, calls  # bounded (botocore standard mode: 6 attempts)
    gaps = [b - a for a, b in zip(calls, calls[1:])]
    assert sum(gaps) >= 1.0, gaps  # backed off, not hammered
    ratios = [b / a for a, b in zip(gaps, gaps[1:]) if a > 0.05]
    assert ratios and not all(1.8 <= r <= 2.2 for r in ratios), gaps  # jittered: not a fixed doubling
    failed = failed_images(report)
    assert len(failed) == 1 and "ThrottlingException" in (failed[0]["reason"] or ""), failed
    ok = [i for i in expected_images(sandbox, [repository]) if i["digest"] != failed[0]["digest"]]
    verified = verify_destination(sandbox, ok)
    check_journal(sandbox, state)
    assert elapsed < 300
    reliability.fault_survived("ECR throttling for good")
    reliability.images_verified(verified)


@pytest.mark.xfail(
    strict=True,
    reason="copy program (replicator.py): botocore standard retry mode retries LimitExceededException as throttling; "
    "the other helper's change makes it permanent",
)
def test_limit_exceeded_is_not_retried_as_throttling(provisioned, faults, reliability, tmp_path):
    """CreateRepository answers LimitExceededException (the repositories-per-registry quota): retrying cannot help,
    so the copy program calls it once, and the images of that repository fail with the cause."""
    sandbox = provisioned
    repository = "legacy-app"
    clear_destination(sandbox, [repository])
    faults.set(api={"CreateRepository": {"rate": 1.0, "code": "LimitExceededException", "message": LIMIT_EXCEEDED}})
    reliability.fault_injected("ECR LimitExceededException")
    run, report, _ = replicate(sandbox, tmp_path, [repository], "-e", "max_rounds=1")
    state = faults.state()
    assert run.returncode != 0, run.explain()
    failed = failed_images(report)
    assert len(failed) == 2 and all("LimitExceededException" in (i["reason"] or "") for i in failed), failed
    assert len(_calls(state, "CreateRepository")) == 1, _calls(state, "CreateRepository")
    reliability.fault_survived("ECR LimitExceededException")


@pytest.mark.parametrize(
    "name,registry",
    [
        (
            "registry 5xx mid-blob",
            # downloads from the source answer 503, uploads to the destination 500
            {"source": {"blob_errors": 3, "status": 503, "methods": ["GET"]},
             "target": {"blob_errors": 2, "status": 500, "methods": ["PATCH", "PUT"]}},
        ),
        (
            "registry connection reset mid-blob",
            # a download cut after half of the blob, an upload cut while its body is sent
            {"source": {"blob_resets": 2, "reset_methods": ["GET"]},
             "target": {"blob_resets": 1, "reset_methods": ["PATCH", "PUT"]}},
        ),
    ],
)  # fmt: skip
def test_registry_errors_mid_blob_are_retried_without_duplicate_uploads(
    provisioned, faults, reliability, tmp_path, name, registry
):
    sandbox = provisioned
    repositories = ["legacy-app", "platform/base"]
    clear_destination(sandbox, repositories)
    faults.set(registry=registry)
    reliability.fault_injected(name)
    run, report, _ = replicate(sandbox, tmp_path, repositories)
    state = faults.state()
    assert run.returncode == 0, run.explain()
    wanted = sum(n.get("blob_errors", 0) + n.get("blob_resets", 0) for n in registry.values())
    assert sum(state["injected"].values()) == wanted, state["injected"]
    images = expected_images(sandbox, repositories)
    assert report["summary"]["success"] and report["summary"]["copied"] == len(images), failed_images(report)
    verified = verify_destination(sandbox, images)
    check_journal(sandbox, state)
    reliability.fault_survived(name)
    reliability.images_verified(verified)


def test_registry_that_stays_down_fails_each_image_with_the_cause_after_bounded_retries(
    provisioned, faults, reliability, tmp_path
):
    """The destination registry answers 503 to everything: the copy program retries each copy a bounded number of
    times, then every image is reported failed with the registry's answer; the run ends, nothing is written there."""
    sandbox = provisioned
    repository = "legacy-app"
    clear_destination(sandbox, [repository])
    faults.set(registry={"target": {"down": True}})
    reliability.fault_injected("registry down")
    run, report, elapsed = replicate(sandbox, tmp_path, [repository])
    state = faults.state()
    assert run.returncode != 0, run.explain()
    failed = failed_images(report)
    assert len(failed) == 2, report["images"]
    for image in failed:
        assert re.search(r"503|Service Unavailable|UNAVAILABLE", image["reason"] or ""), image
    hits = sum(n for k, n in state["injected"].items() if k.endswith(" down"))
    assert 2 <= hits <= 200, state["injected"]  # tried, and given up
    assert elapsed < 300
    assert check_journal(sandbox, state)["manifests"] == 0
    reliability.fault_survived("registry down")


@pytest.mark.xfail(
    strict=True,
    reason="copy program (replicator.py): a 403 'denied: Your authorization token has expired' is treated as "
    "permanent (PERMANENT_COPY has 'denied') and the token is not refreshed; the other helper's change refreshes "
    "and retries",
)
def test_registry_tokens_that_expire_mid_copy_are_refreshed(provisioned, faults, reliability, tmp_path):
    """Registry passwords expire 2 s after they are issued and blob requests are slow (0.2 s), so tokens expire
    in the middle of the copies and the registry answers 403 DENIED "Your authorization token has expired": the copy
    program gets a new token and goes on, in the same build (one round), every image copied and verified."""
    sandbox = provisioned
    repositories = ["legacy-app", "team-a/worker"]
    clear_destination(sandbox, repositories)
    faults.set(
        token_ttl_seconds=2,
        registry={"source": {"delay_seconds": 0.2}, "target": {"delay_seconds": 0.2}},
    )
    reliability.fault_injected("registry token expired")
    run, report, _ = replicate(sandbox, tmp_path, repositories, "-e", "max_rounds=1")
    state = faults.state()
    assert any(k.endswith("token expired") for k in state["injected"]), state["injected"]
    assert run.returncode == 0, run.explain()
    images = expected_images(sandbox, repositories)
    assert report["summary"]["copied"] == len(images), failed_images(report)
    verified = verify_destination(sandbox, images)
    check_journal(sandbox, state)
    reliability.fault_survived("registry token expired")
    reliability.images_verified(verified)


def test_codebuild_queue_full_and_throttled_polls_are_retried_without_a_duplicate_build(
    provisioned, faults, reliability, tmp_path
):
    """StartBuild answers AccountLimitExceededException twice and BatchGetBuilds is throttled 3 times: the driver
    keeps the batch at the head of its queue and retries after a jittered back-off, keeps every build while polls
    fail, and starts exactly one build per batch."""
    sandbox = provisioned
    repositories = ["legacy-app", "team-a/worker"]
    clear_destination(sandbox, repositories)
    # "first": 0 records the StartBuild calls without failing them
    faults.set(codebuild={"queue_full": 2}, api={"BatchGetBuilds": {"first": 3}, "StartBuild": {"first": 0}})
    reliability.fault_injected("CodeBuild queue full")
    reliability.fault_injected("CodeBuild poll throttled")
    run, report, _ = replicate(sandbox, tmp_path, repositories, "-e", "batch_size=3")
    state = faults.state()
    assert run.returncode == 0, run.explain()
    assert state["injected"].get("codebuild StartBuild AccountLimitExceededException") == 2, state["injected"]
    assert state["injected"].get("api BatchGetBuilds ThrottlingException") == 3, state["injected"]
    waits = [float(w) for w in re.findall(r"the queue is full .*?next try in (\d+) s", run.stdout)]
    assert len(waits) == 2, run.stdout[-3000:]
    assert len(re.findall(r"following the builds failed .*?next poll in \d+ s", run.stdout)) >= 1, run.stdout[-3000:]
    images = expected_images(sandbox, repositories)
    batches = -(-len(images) // 3)
    builds = report["summary"]["builds"]
    assert builds == batches, report["summary"]
    assert len(_calls(state, "StartBuild")) == batches + 2  # each refused start retried once the queue had room
    assert report["summary"]["copied"] == len(images), failed_images(report)
    verified = verify_destination(sandbox, images)
    check_journal(sandbox, state)
    reliability.fault_survived("CodeBuild queue full")
    reliability.fault_survived("CodeBuild poll throttled")
    reliability.images_verified(verified)


@pytest.mark.parametrize(
    "kind,status,says",
    [
        ("fail", "FAILED", "COMMAND_EXECUTION_ERROR|Error while executing command"),
        ("time_out", "TIMED_OUT", "TIMED_OUT"),
        ("stop", "STOPPED", "STOPPED"),
    ],
)
def test_a_build_that_fails_times_out_or_is_stopped_is_followed_by_a_round_that_copies_the_rest(
    provisioned, faults, reliability, tmp_path, kind, status, says
):
    """The first build fails in INSTALL, or times out / is stopped 3 s into its copies (destination blob requests
    slowed to 0.1 s so that it is mid-copy then): the report names the build and why, the next round copies what is
    missing, every image is verified, and nothing that arrived in the first round is uploaded again."""
    sandbox = provisioned
    repositories = ["legacy-app", "platform/base"]
    clear_destination(sandbox, repositories)
    codebuild = {kind: 1}
    if kind != "fail":
        codebuild[f"{kind}_after"] = 3
    faults.set(codebuild=codebuild, registry={"target": {"delay_seconds": 0.1}})
    name = f"CodeBuild build {status}"
    reliability.fault_injected(name)
    run, report, _ = replicate(sandbox, tmp_path, repositories)
    state = faults.state()
    assert run.returncode == 0, run.explain()
    assert state["injected"].get(f"codebuild build {kind}") == 1, state["injected"]
    builds = [b for d in report["destinations"] for b in d.get("builds", [])]
    # one build a round (one batch): the first ended as injected, the second round's copied the rest
    assert [b["status"] for b in builds] == [status, "SUCCEEDED"], builds
    assert "round 1 left" in run.stdout and "round 2 starts" in run.stdout, run.stdout[-3000:]
    # why the first build ended, as CodeBuild says it (the report's build entries carry no error yet)
    codebuild = sandbox.client("codebuild", "source", sandbox.source_region)
    (ended,) = codebuild.batch_get_builds(ids=[builds[0]["id"]])["builds"]
    contexts = " ".join(c.get("message", "") + " " + c.get("statusCode", "") for p in ended["phases"]
                        for c in p.get("contexts") or [])
    assert re.search(says, contexts), ended["phases"]
    images = expected_images(sandbox, repositories)
    assert report["summary"]["success"] and report["summary"]["copied"] == len(images), failed_images(report)
    verified = verify_destination(sandbox, images)
    check_journal(sandbox, state)
    reliability.fault_survived(name)
    reliability.images_verified(verified)
