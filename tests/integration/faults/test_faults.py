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
blob uploaded twice. Small image sets keep the file to a few minutes; @pytest.mark.slow cases run in `make soak`:
PutImage throttled for good and a registry that stays down (each waits out the bounded back-off, about a minute),
the build that times out (like the stopped one), and every fault at once over the whole catalog (codebuild, local).
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
    return list(state["calls"].get(operation, []))


def test_ecr_throttling_is_retried_and_the_run_completes(provisioned, faults, reliability, tmp_path):
    """The first 2 calls of each of DescribeImages, BatchGetImage, PutImage, CreateRepository are throttled (the
    controller's listing and the copy program in the build both meet them): every image is copied and verified in
    one round, each throttled call was retried (the next call of that operation came after a back-off)."""
    sandbox = provisioned
    repositories = ["team-a/worker", "platform/base"]  # 8 tags on one digest: PutImage; indexes and children
    clear_destination(sandbox, repositories)
    faults.set(api={op: {"first": 2} for op in ECR_OPERATIONS})
    reliability.fault_injected("ECR throttling")
    run, report, _journal = replicate(sandbox, tmp_path, repositories)
    state = faults.state()
    faults.set()  # off again: the checks below see the sandbox as it is (the journal is in state)
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


@pytest.mark.slow  # ~1 min: the retries' back-off runs its course
def test_put_image_throttled_for_good_fails_the_image_with_the_cause_after_bounded_jittered_retries(
    provisioned, faults, reliability, tmp_path
):
    """Every PutImage is throttled. One image (legacy-app 5.0.0, also tagged latest: at least one PutImage whether
    the program pushes its manifest through the registry or by PutImage), so that the attempts form one sequence:
    the copy program retries a bounded number of times with jittered exponential back-off (the gaps between
    attempts are not a fixed doubling), then reports the image failed with ThrottlingException, and the run ends
    (one round: max_rounds=1) with the failure in the report."""
    sandbox = provisioned
    repository = "legacy-app"
    clear_destination(sandbox, [repository])
    faults.set(api={"PutImage": {"rate": 1.0}})
    reliability.fault_injected("ECR throttling for good")
    run, report, elapsed = replicate(
        sandbox, tmp_path, [repository], "-e", "max_rounds=1", "-e", "tag_regex=^5[.]0[.]0$"
    )
    state = faults.state()
    faults.set()  # off again: the checks below see the sandbox as it is (the journal is in state)
    assert run.returncode != 0, run.explain()
    calls = [when for when, _hit in _calls(state, "PutImage")]
    assert 3 <= len(calls) <= 12, calls  # retried, and bounded
    gaps = [b - a for a, b in zip(calls, calls[1:])]
    assert sum(gaps) >= 1.0, gaps  # backed off, not hammered
    ratios = [b / a for a, b in zip(gaps, gaps[1:]) if a > 0.05]
    assert ratios and not all(1.8 <= r <= 2.2 for r in ratios), gaps  # jittered: not a fixed doubling
    failed = failed_images(report)
    assert len(report["images"]) == 1 and len(failed) == 1, report["images"]
    assert "ThrottlingException" in (failed[0]["reason"] or ""), failed
    check_journal(sandbox, state)
    assert elapsed < 300
    reliability.fault_survived("ECR throttling for good")


def test_limit_exceeded_is_not_retried_as_throttling(provisioned, faults, reliability, tmp_path):
    """CreateRepository answers LimitExceededException (the repositories-per-registry quota): retrying cannot help,
    so the copy program calls it once, and the images of that repository fail with the cause."""
    sandbox = provisioned
    repository = "legacy-app"
    clear_destination(sandbox, [repository])
    faults.set(api={"CreateRepository": {"rate": 1.0, "code": "LimitExceededException", "message": LIMIT_EXCEEDED}})
    reliability.fault_injected("ECR LimitExceededException")
    run, report, _journal = replicate(sandbox, tmp_path, [repository], "-e", "max_rounds=1")
    state = faults.state()
    faults.set()  # off again: the checks below see the sandbox as it is (the journal is in state)
    assert run.returncode != 0, run.explain()
    failed = failed_images(report)
    assert len(failed) == 2 and all("LimitExceededException" in (i["reason"] or "") for i in failed), failed
    assert len(_calls(state, "CreateRepository")) == 1, _calls(state, "CreateRepository")
    reliability.fault_survived("ECR LimitExceededException")


def test_registry_5xx_and_resets_mid_blob_are_retried_without_duplicate_work(
    provisioned, faults, reliability, tmp_path
):
    """Downloads from the source answer 503 three times, then two are cut by a TCP reset after half of the blob;
    uploads to the destination answer 500 twice, then one is reset while its body is sent. Every copy is retried
    (the run completes in one round), each digest and tag is verified, and the journal shows no blob uploaded and
    no manifest written twice, and nothing tagged before its blobs."""
    sandbox = provisioned
    repositories = ["legacy-app", "platform/base"]  # plain images, and indexes with their children
    clear_destination(sandbox, repositories)
    registry = {
        "source": {"blob_errors": 3, "status": 503, "methods": ["GET"], "blob_resets": 2, "reset_methods": ["GET"]},
        "target": {
            "blob_errors": 2,
            "status": 500,
            "methods": ["PATCH", "PUT"],
            "blob_resets": 1,
            "reset_methods": ["PATCH", "PUT"],
        },
    }
    faults.set(registry=registry)
    names = ("registry 5xx mid-blob", "registry connection reset mid-blob")
    for name in names:
        reliability.fault_injected(name)
    run, report, _journal = replicate(sandbox, tmp_path, repositories)
    state = faults.state()
    faults.set()  # off again: the checks below see the sandbox as it is (the journal is in state)
    assert run.returncode == 0, run.explain()
    injected = state["injected"]
    assert sum(n for k, n in injected.items() if k.endswith((" 503", " 500"))) == 5, injected
    assert sum(n for k, n in injected.items() if k.endswith(" reset")) == 3, injected
    images = expected_images(sandbox, repositories)
    assert report["summary"]["success"] and report["summary"]["copied"] == len(images), failed_images(report)
    assert "round 2 starts" not in run.stdout, run.stdout[-3000:]  # retried inside the build, not by a new round
    verified = verify_destination(sandbox, images)
    check_journal(sandbox, state)
    for name in names:
        reliability.fault_survived(name)
    reliability.images_verified(verified)


@pytest.mark.slow  # ~1 min: the copy program's bounded back-off runs its course
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
    faults.set()  # off again: the checks below see the sandbox as it is (the journal is in state)
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
    run, report, _journal = replicate(sandbox, tmp_path, repositories, "-e", "max_rounds=1")
    state = faults.state()
    faults.set()  # off again: the checks below see the sandbox as it is (the journal is in state)
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
    run, report, _journal = replicate(sandbox, tmp_path, repositories, "-e", "batch_size=3")
    state = faults.state()
    faults.set()  # off again: the checks below see the sandbox as it is (the journal is in state)
    assert run.returncode == 0, run.explain()
    assert state["injected"].get("codebuild StartBuild AccountLimitExceededException") == 2, state["injected"]
    assert state["injected"].get("api BatchGetBuilds ThrottlingException") == 3, state["injected"]
    waits = [float(w) for w in re.findall(r"the queue is full .*?next try in (\d+) s", run.stdout)]
    assert len(waits) == 2, run.stdout[-3000:]
    # the throttled polls were retried (by the CodeBuild helpers' jittered back-off, or the driver's): more calls
    assert len(_calls(state, "BatchGetBuilds")) > 3, _calls(state, "BatchGetBuilds")
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
        pytest.param("time_out", "TIMED_OUT", "TIMED_OUT", marks=pytest.mark.slow),  # like stop, mid-copy
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
    run, report, _journal = replicate(sandbox, tmp_path, repositories)
    state = faults.state()
    faults.set()  # off again: the checks below see the sandbox as it is (the journal is in state)
    assert run.returncode == 0, run.explain()
    assert state["injected"].get(f"codebuild build {kind}") == 1, state["injected"]
    builds = [b for d in report["destinations"] for b in d.get("builds", [])]
    # one build a round (one batch): the first ended as injected, the second round's copied the rest
    assert [b["status"] for b in builds] == [status, "SUCCEEDED"], builds
    assert "round 1 left" in run.stdout and "round 2 starts" in run.stdout, run.stdout[-3000:]
    # why the first build ended, as CodeBuild says it (the report's build entries carry no error yet)
    codebuild = sandbox.client("codebuild", "source", sandbox.source_region)
    (ended,) = codebuild.batch_get_builds(ids=[builds[0]["id"]])["builds"]
    contexts = " ".join(
        c.get("message", "") + " " + c.get("statusCode", "") for p in ended["phases"] for c in p.get("contexts") or []
    )
    assert re.search(says, contexts), ended["phases"]
    images = expected_images(sandbox, repositories)
    assert report["summary"]["success"] and report["summary"]["copied"] == len(images), failed_images(report)
    verified = verify_destination(sandbox, images)
    check_journal(sandbox, state)
    reliability.fault_survived(name)
    reliability.images_verified(verified)


@pytest.mark.slow
@pytest.mark.parametrize("strategy", ["codebuild", "local"])
def test_soak_every_fault_at_once_over_the_whole_catalog(provisioned, faults, reliability, tmp_path, strategy):
    """`make soak`: the whole small catalog in several batches, with every transient fault at a
    rate (throttling on the four ECR operations and on the builds' polls, registry 5xx and resets both ways, a
    full queue, a build stopped by someone else): the run completes, every digest and tag is verified, the write
    order holds and no blob is uploaded twice."""
    sandbox = provisioned
    # one build at a time: batches are cut in catalog order, so one repository can span two batches, and two builds
    # running at once both upload the blobs they share (that duplicate is not a retry's, which is what is checked)
    more = ["-e", "batch_size=10", "-e", "max_concurrent_builds=1", "-e", f"strategy={strategy}"]
    if strategy == "local":
        from tests.integration.replicate.conftest import provision

        (tmp_path / "provision").mkdir()
        provision(sandbox, tmp_path / "provision", "-e", "trust_caller=true")  # the controller copies itself
    images = sandbox.catalog["images"]
    repositories = sorted({i["repository"] for i in images})
    clear_destination(sandbox, repositories)
    settings = {
        "api": {op: {"rate": 0.15} for op in (*ECR_OPERATIONS, "BatchGetBuilds")},
        "registry": {
            "source": {"error_rate": 0.03, "methods": ["GET"], "blob_resets": 3},
            "target": {"error_rate": 0.03, "status": 500, "methods": ["PATCH", "PUT"], "blob_resets": 2,
                       "reset_methods": ["PATCH", "PUT"]},
        },
    }  # fmt: skip
    if strategy == "codebuild":
        settings["codebuild"] = {"queue_full": 2, "stop": 1, "stop_after": 3}
    faults.set(**settings)
    name = f"every fault at once ({strategy})"
    reliability.fault_injected(name)
    run, report, _journal = replicate(sandbox, tmp_path / "run", repositories, *more, timeout=1500)
    state = faults.state()
    faults.set()  # off again: the checks below see the sandbox as it is (the journal is in state)
    assert run.returncode == 0, run.explain()
    assert sum(state["injected"].values()) >= 10, state["injected"]
    assert report["summary"]["success"] and report["summary"]["copied"] == len(images), failed_images(report)
    verified = verify_destination(sandbox, images)
    check_journal(sandbox, state)
    reliability.fault_survived(name)
    reliability.images_verified(verified)
