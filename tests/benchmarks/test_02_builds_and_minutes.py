# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Benchmark 2: builds and CodeBuild minutes for the ``large`` catalog: our plan (``batching.build_batches`` +
``batching.plan``, ``batch_size`` 50, what ``codebuild_replicate`` check mode returns) against the seed's one build per
image, both priced with the same model (``batching.plan``: provisioning ~1 min per build, billed per started minute,
general1.small price)."""

from __future__ import annotations

import math

import pytest

from ansible_collections.cloudops.ecr_replication.plugins.module_utils import batching
from tests.benchmarks.conftest import ratio
from tests.benchmarks.conftest import table
from tests.benchmarks.seed_approach import list_seed_000
from tests.benchmarks.test_01_listing_cost import collect_large

pytestmark = [pytest.mark.sandbox, pytest.mark.slow]

BATCH_SIZE = 50
CONCURRENT = 5  # codebuild_replicate's default max_concurrent_builds


def test_builds_and_minutes_vs_seed(bench, report):
    facts = getattr(bench, "large_facts", None) or collect_large(bench)[0]
    images = batching.normalize_images(facts["images"])
    n = len(images)

    ours = batching.plan(
        batching.build_batches(images, BATCH_SIZE), parallel_copies=4, max_concurrent_builds=CONCURRENT
    )
    by_key = {(i["repository"], i["digest"]): i for i in images}
    # The seed as written: one build per (first page) tagged image, with imageTags[0] only.
    seed_found = list_seed_000(bench.sandbox.client("ecr"))[0]
    seed_images = [dict(by_key[(s["repository"], s["digest"])], tags=[s["tag"]]) for s in seed_found]
    seed = batching.plan([[i] for i in seed_images], parallel_copies=1, max_concurrent_builds=CONCURRENT)
    # The seed's approach made complete: one build per image of the catalog (what copying everything would take).
    seed_all = batching.plan([[i] for i in images], parallel_copies=1, max_concurrent_builds=CONCURRENT)

    rows = []
    for name, p in (
        ("ours: batches of 50", ours),
        ("seed as written (000)", seed),
        ("seed, one build per image", seed_all),
    ):
        rows.append(
            [
                name,
                p["images"],
                p["tags"],
                p["builds"],
                p["estimated_build_minutes"],
                p["estimated_wall_minutes"],
                f"${p['estimated_cost_usd']:.3f}",
            ]
        )
    ratios = [
        ["builds", ratio(seed["builds"], ours["builds"]), ratio(seed_all["builds"], ours["builds"])],
        [
            "billed build minutes",
            ratio(seed["estimated_build_minutes"], ours["estimated_build_minutes"]),
            ratio(seed_all["estimated_build_minutes"], ours["estimated_build_minutes"]),
        ],
        [
            "wall minutes (5 builds at a time)",
            ratio(seed["estimated_wall_minutes"], ours["estimated_wall_minutes"]),
            ratio(seed_all["estimated_wall_minutes"], ours["estimated_wall_minutes"]),
        ],
        [
            "cost",
            ratio(seed["estimated_cost_usd"], ours["estimated_cost_usd"]),
            ratio(seed_all["estimated_cost_usd"], ours["estimated_cost_usd"]),
        ],
    ]
    largest = max(b["env_chars"] for b in ours["batches"])
    text = [
        f"{n} images of the large catalog. Model (`batching.plan`, the one `codebuild_replicate` check mode reports): "
        f"{batching.PROVISIONING_SECONDS:.0f} s provisioning per build, {batching.PER_IMAGE_SECONDS:.0f} s per image + "
        f"{batching.PER_TAG_SECONDS:.0f} s per tag, bytes at {batching.THROUGHPUT_BYTES_PER_SECOND // 2**20} MiB/s, "
        f"billed per started minute at ${ours['price_per_minute']}/min ({ours['compute_type']}); ours copies 4 images "
        "at a time inside a build, the seed one image per build (docker pull/push modelled as fast as skopeo, which "
        "favours the seed).",
        "",
        table(["plan", "images", "tags", "builds", "billed minutes", "wall minutes", "cost"], rows),
        "",
        table(["seed / ours", "seed as written", "seed, one build per image"], ratios),
        "",
        f"Largest batch environment: {largest} characters over REPL_BATCH_* variables (each <= 4,096).",
    ]
    report.add("2. Builds and CodeBuild minutes (plan) on the large catalog", "\n".join(text))

    assert ours["images"] == n
    assert ours["builds"] <= math.ceil(n / BATCH_SIZE)
    assert seed_all["builds"] == n
    assert seed_all["builds"] / ours["builds"] >= 10
    assert seed["builds"] / ours["builds"] >= 10
    assert seed_all["estimated_build_minutes"] / ours["estimated_build_minutes"] >= 5
    assert seed_all["estimated_cost_usd"] / ours["estimated_cost_usd"] >= 5
