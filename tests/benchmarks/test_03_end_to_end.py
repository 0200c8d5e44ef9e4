# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Benchmarks 3 and 4: a real copy through the sandbox CodeBuild, ours against the seed's, under the same quota.

3. ``ecr_image_info`` -> ``codebuild_replicate`` (``executor: codebuild``, batches of 50, 5 builds at a time) through
   ``ansible-playbook``, against a re-creation of the 000 seed (seed_approach.py: one build per tagged image, its
   buildspec step by step with skopeo in place of docker). Same sandbox, same provisioning delay per build, same
   account quota of concurrent builds. The destination is emptied before each. A deterministic subset of the
   catalog (``BENCHMARK_E2E_IMAGES``, default 100 images: whole repositories, every 4th in name order) keeps the
   seed's run within minutes on a 2-core machine; ``BENCHMARK_E2E_IMAGES=0`` copies the whole catalog.
4. The same playbook again: nothing is missing, so no build starts; the AWS calls of both modules are counted at the
   wire by a counting proxy in front of the sandbox endpoint.
"""

from __future__ import annotations

import math
import time

import pytest

from ansible_collections.cloudops.ecr_replication.plugins.module_utils import image_catalog
from tests.sandbox.call_counter import CountingProxy
from tests.benchmarks.conftest import BASE_PORT
from tests.benchmarks.conftest import CONCURRENCY
from tests.benchmarks.conftest import E2E_IMAGES
from tests.benchmarks.conftest import OUR_PROJECT
from tests.benchmarks.conftest import PROVISIONING_SECONDS
from tests.benchmarks.conftest import ratio
from tests.benchmarks.conftest import table
from tests.benchmarks.seed_approach import SeedDriver

pytestmark = [pytest.mark.sandbox, pytest.mark.slow]

BATCH_SIZE = 50
PROXY_PORT = BASE_PORT + 90
STATE: dict = {}

PLAY = """
- name: facts
  cloudops.ecr_replication.ecr_image_info:
    repositories: "{{ repositories }}"
    compare_to:
      region: "{{ dest_region }}"
      role_arn: "{{ role_arn }}"
      external_id: "{{ external_id }}"
  register: r_facts
- name: mark
  ansible.builtin.set_fact:
    facts_done: "{{ now(utc=true).timestamp() }}"
  register: r_mark
- name: replicate
  cloudops.ecr_replication.codebuild_replicate:
    project_name: "{{ project }}"
    images: "{{ r_facts.images }}"
    dest_region: "{{ dest_region }}"
    dest_role_arn: "{{ role_arn }}"
    external_id: "{{ external_id }}"
    batch_size: %d
    max_concurrent_builds: %d
    poll_interval: 2
    wait_timeout: 3500
  register: r_replicate
  ignore_errors: true
""" % (BATCH_SIZE, CONCURRENCY)

READ_ONLY = {
    "AmazonEC2ContainerRegistry:DescribeRepositories",
    "AmazonEC2ContainerRegistry:DescribeImages",
    "AmazonEC2ContainerRegistry:ListImages",
    "AmazonEC2ContainerRegistry:BatchGetImage",
    "sts:AssumeRole",
    "sts:GetCallerIdentity",
    "CodeBuild:BatchGetProjects",
}


def subset(bench):
    repositories = bench.subset_repositories(E2E_IMAGES)
    images = [i for i in bench.catalog["images"] if i["repository"] in set(repositories)]
    return repositories, images


def play_vars(bench, repositories):
    return dict(
        repositories=repositories,
        project=OUR_PROJECT,
        dest_region=bench.sandbox.dest_region,
        role_arn=bench.target_role_arn,
        external_id=bench.external_id,
    )


def destination_statuses(bench, repositories):
    """Compare the subset with the destination (the verify step): counts per destination_status."""
    sb = bench.sandbox
    result = image_catalog.collect(
        sb.client("ecr"),
        image_catalog.build_filters(repositories=repositories),
        destination_client=sb.client("ecr", "target", sb.dest_region),
    )
    return result["summary"]["by_status"]


def build_stats(codebuild, ids):
    """Builds, how many SUCCEEDED, and their run time from BatchGetBuilds phases: PROVISIONING to the end, i.e. the
    billed part (SUBMITTED and QUEUED are not billed and are left out)."""
    builds = []
    for start in range(0, len(ids), 100):
        builds.extend(codebuild.batch_get_builds(ids=ids[start : start + 100])["builds"])
    seconds = [
        sum(p.get("durationInSeconds", 0) for p in b.get("phases", []) if p["phaseType"] not in ("SUBMITTED", "QUEUED"))
        for b in builds
    ]
    return {
        "builds": len(builds),
        "succeeded": sum(1 for b in builds if b["buildStatus"] == "SUCCEEDED"),
        "build_seconds": round(sum(seconds), 1),
        "mean_build_seconds": round(sum(seconds) / len(seconds), 1) if seconds else 0,
    }


def modelled_wall(measured: float, builds: int, provisioning: float = 60.0) -> float:
    """The measured wall time with each build's provisioning at ``provisioning`` seconds instead of the sandbox's,
    builds running in waves of the account quota."""
    return measured + math.ceil(builds / CONCURRENCY) * (provisioning - PROVISIONING_SECONDS)


def test_ours_copies_the_subset(bench):
    repositories, images = subset(bench)
    bench.sandbox.reset_target()
    out = bench.playbook(PLAY, **play_vars(bench, repositories))
    replicate = out["replicate"]
    assert not replicate.get("failed"), replicate.get("msg")
    statuses = destination_statuses(bench, repositories)
    facts_seconds = float(out["mark"]["ansible_facts"]["facts_done"])
    STATE["ours"] = dict(
        repositories=repositories,
        images=len(images),
        wall=out["_seconds"],
        listed=len(out["facts"]["images"]),
        copied=replicate["summary"]["copied"],
        statuses=statuses,
        per_image=round(
            sum(r.get("seconds") or 0 for r in replicate["results"]) / max(1, len(replicate["results"])), 1
        ),
        **build_stats(bench.sandbox.client("codebuild"), [b["id"] for b in replicate["builds"]]),
    )
    STATE["ours"]["facts_done"] = facts_seconds
    assert len(out["facts"]["images"]) == len(images)
    assert replicate["summary"]["copied"] == len(images)
    assert STATE["ours"]["builds"] <= math.ceil(len(images) / BATCH_SIZE)
    assert statuses["present"] == len(images)


def test_rerun_starts_no_build_and_only_lists(bench, report):
    if "ours" not in STATE:
        pytest.skip("needs the copy of test_ours_copies_the_subset")
    repositories = STATE["ours"]["repositories"]
    codebuild = bench.sandbox.client("codebuild")
    before = len(codebuild.list_builds_for_project(projectName=OUR_PROJECT)["ids"])
    proxy = CountingProxy(int(bench.sandbox.env["SANDBOX_BASE_PORT"]), PROXY_PORT).start()
    try:
        out = bench.playbook(PLAY, endpoint_url=proxy.url, **play_vars(bench, repositories))
        calls = proxy.snapshot()
    finally:
        proxy.stop()
    after = len(codebuild.list_builds_for_project(projectName=OUR_PROJECT)["ids"])
    facts, replicate = out["facts"], out["replicate"]
    ecr_calls = facts["summary"]["api_calls"]
    r = len(repositories)
    n = STATE["ours"]["images"]
    rows = [[op, count] for op, count in calls.items()]
    text = [
        f"Second run of benchmark 3's playbook ({r} repositories, {n} images, all present): "
        f"{out['_seconds']} s, `changed: {replicate.get('changed')}`, builds started: {after - before}.",
        "",
        "Every AWS call of both modules, counted at the wire (counting proxy in front of the sandbox endpoint):",
        "",
        table(["service:operation", "calls"], rows + [["**total**", sum(calls.values())]]),
        "",
        "`ecr_image_info`'s own count (`summary.api_calls`): source "
        + ", ".join(f"{k} {v}" for k, v in ecr_calls["source"].items())
        + "; destination "
        + ", ".join(f"{k} {v}" for k, v in ecr_calls["destination"].items())
        + f". Bound per side: R + ceil(N/1000) + ceil(R/1000) = {r + math.ceil(n / 1000) + 1} list calls.",
    ]
    report.add("4. Re-run with nothing missing", "\n".join(text))
    STATE["rerun_seconds"] = out["_seconds"]

    assert not replicate.get("failed"), replicate.get("msg")
    assert replicate["changed"] is False and replicate["builds"] == []
    assert replicate["summary"]["present"] == n
    assert after == before
    assert not any(op.startswith("CodeBuild:StartBuild") for op in calls)
    assert set(calls) <= READ_ONLY, sorted(set(calls) - READ_ONLY)
    for side in ("source", "destination"):
        listing = sum(ecr_calls[side].get(op, 0) for op in ("DescribeRepositories", "DescribeImages", "ListImages"))
        assert listing <= r + math.ceil(n / 1000) + 1


def test_seed_copies_the_subset_and_compare(bench, report):
    if "ours" not in STATE:
        pytest.skip("needs the copy of test_ours_copies_the_subset")
    ours = STATE["ours"]
    repositories = ours["repositories"]
    sb = bench.sandbox
    sb.reset_target()
    ecr = sb.client("ecr")
    driver = SeedDriver(sb.client("codebuild"))
    started = time.time()
    # The 000 driver's listing, given the subset's repositories (its describe_repositories() page of 100 might not
    # even reach them): describe_images first page, tagged images only, imageTags[0].
    work = []
    for name in repositories:
        for image in ecr.describe_images(repositoryName=name)["imageDetails"]:
            if "imageTags" in image:
                work.append({"repository": name, "digest": image["imageDigest"], "tag": image["imageTags"][0]})
    ids = driver.start(work)
    builds = driver.wait(ids, timeout=3500)
    wall = round(time.time() - started, 1)
    seed = dict(
        images=ours["images"],
        wall=wall,
        work=len(work),
        statuses=destination_statuses(bench, repositories),
        **build_stats(sb.client("codebuild"), [b["id"] for b in builds]),
    )
    ours["modelled"] = round(modelled_wall(ours["wall"], ours["builds"]))
    seed["modelled"] = round(modelled_wall(seed["wall"], seed["builds"]))

    rows = [
        ["images in the subset", ours["images"], ours["images"]],
        ["images the approach tries to copy", ours["listed"], f"{seed['work']} (tagged, first tag)"],
        ["builds started", ours["builds"], seed["builds"]],
        ["builds SUCCEEDED", ours["succeeded"], seed["succeeded"]],
        ["wall time, listing to last build done (s)", ours["wall"], seed["wall"]],
        ["wall time modelled at 60 s provisioning (s)", ours["modelled"], seed["modelled"]],
        ["build run time, provisioning to end, summed (s)", ours["build_seconds"], seed["build_seconds"]],
        ["mean build run time (s)", ours["mean_build_seconds"], seed["mean_build_seconds"]],
        ["mean seconds per image inside a build (RESULT lines)", ours["per_image"], "-"],
    ] + [
        [f"destination afterwards: {status}", ours["statuses"][status], seed["statuses"][status]]
        for status in image_catalog.STATUSES
    ]
    text = [
        f"Subset: {len(repositories)} repositories (every 4th in name order), {ours['images']} images "
        f"(`BENCHMARK_E2E_IMAGES={E2E_IMAGES}`). Sandbox CodeBuild: {PROVISIONING_SECONDS:g} s provisioning per build "
        f"(stands in for CodeBuild's 30-90 s), {CONCURRENCY} concurrent builds for the account; ours with "
        f"`batch_size: {BATCH_SIZE}`, `max_concurrent_builds: {CONCURRENCY}`. Seed: its buildspec with skopeo instead "
        "of docker (no Docker daemon in the sandbox) and without writing credentials to a profile (see seed_approach.py).",
        "",
        table(["", "ours (ecr_image_info + codebuild_replicate)", "seed (one build per image)"], rows),
        "",
        table(
            ["seed / ours", "ratio"],
            [
                ["builds", ratio(seed["builds"], ours["builds"])],
                ["wall time (measured)", ratio(seed["wall"], ours["wall"])],
                ["wall time modelled at 60 s provisioning", ratio(seed["modelled"], ours["modelled"])],
                [
                    "build run time (what CodeBuild bills, before rounding up to minutes)",
                    ratio(seed["build_seconds"], ours["build_seconds"]),
                ],
            ],
        ),
        "",
        "Destination afterwards is the verify step (`ecr_image_info` comparison): the seed leaves untagged images "
        "and index children `missing`, flattens multi-arch indexes to one platform (the tag then points to another "
        "digest: `tag_conflict`/`missing`) and copies only the first tag (`missing_tags`).",
        "",
        f"Modelled wall time: the measured one plus ceil(builds / {CONCURRENCY}) x (60 - {PROVISIONING_SECONDS:g}) s, "
        "i.e. every wave of builds provisioned as slowly as on CodeBuild.",
    ]
    report.add("3. End-to-end copy through the sandbox CodeBuild", "\n".join(text))

    assert seed["builds"] == len(work)
    assert ours["builds"] <= math.ceil(ours["images"] / BATCH_SIZE)
    assert seed["statuses"]["present"] < ours["images"]
    if ours["images"] >= 50:  # ratios need a subset of at least one full batch
        assert seed["builds"] / ours["builds"] >= 10
        # Measured wall time is not asserted: with the sandbox's 2 s provisioning the seed's per-image builds cost
        # little, and our largest batch is the long pole (1.1x at 61 images on a loaded machine). What CodeBuild
        # makes expensive, provisioning per build, is in the modelled wall time and the build run time.
        assert seed["modelled"] / ours["modelled"] >= 2
        assert seed["build_seconds"] / ours["build_seconds"] >= 2
