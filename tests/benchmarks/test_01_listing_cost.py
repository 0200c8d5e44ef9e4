# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Benchmark 1: the listing cost of the facts step (``ecr_image_info``'s logic, ``image_catalog.collect``) on the
``large`` catalog, counted with botocore ``before-call`` hooks (``ecr.count_api_calls``), against the bound
O(R + N/1000) per side, and what the two seed listings cost and miss."""

from __future__ import annotations

import math

import pytest

from ansible_collections.cloudops.ecr_replication.plugins.module_utils import ecr
from ansible_collections.cloudops.ecr_replication.plugins.module_utils import image_catalog
from tests.benchmarks.conftest import table
from tests.benchmarks.seed_approach import coverage
from tests.benchmarks.seed_approach import list_seed_000
from tests.benchmarks.seed_approach import list_seed_003

pytestmark = [pytest.mark.sandbox, pytest.mark.slow]

LIST_OPERATIONS = ("DescribeRepositories", "DescribeImages", "ListImages")


def collect_large(bench, compare: bool = True):
    """Run the facts step over the whole registry; returns (result, calls per side, seconds)."""
    import time

    sb = bench.sandbox
    calls = {"source": {}, "destination": {}}
    source = sb.client("ecr")
    ecr.count_api_calls(source, calls["source"])
    dest = None
    if compare:
        dest = sb.client("ecr", "target", sb.dest_region)
        ecr.count_api_calls(dest, calls["destination"])
    started = time.time()
    result = image_catalog.collect(source, image_catalog.build_filters(), destination_client=dest, api_calls=calls)
    return result, calls, round(time.time() - started, 1)


def test_listing_cost_vs_bound_and_seed(bench, report):
    catalog = bench.catalog
    repositories = len(catalog["repositories"])
    images = len(catalog["images"])
    bench.sandbox.reset_target()

    result, calls, seconds = collect_large(bench)
    src, dst = calls["source"], calls["destination"]
    src_list = sum(src.get(op, 0) for op in LIST_OPERATIONS)
    dst_list = sum(dst.get(op, 0) for op in LIST_OPERATIONS)
    bound = repositories + math.ceil(images / 1000) + math.ceil(repositories / 1000)
    with_manifests = {i["repository"] for i in catalog["images"] if i["kind"] in ("index", "referrer")}

    seed_000, calls_000 = list_seed_000(bench.sandbox.client("ecr"))
    seed_003, calls_003 = list_seed_003(bench.sandbox.client("ecr"))
    ours_found = [
        {"repository": i["repository"], "digest": i["digest"], "tag": t}
        for i in result["images"]
        for t in (i["tags"] or [None])
    ]
    cov = {
        "ours (ecr_image_info)": coverage(catalog["images"], ours_found),
        "seed 000 (describe_* first page, imageTags[0])": coverage(catalog["images"], seed_000),
        "seed 003 (list_images maxResults=1000, TAGGED)": coverage(catalog["images"], seed_003),
    }
    listing_calls = {
        "ours (ecr_image_info)": src_list,
        "seed 000 (describe_* first page, imageTags[0])": calls_000,
        "seed 003 (list_images maxResults=1000, TAGGED)": calls_003,
    }

    text = [
        f"Catalog: R = {repositories} repositories, N = {images} images, {cov['ours (ecr_image_info)']['tags']} tags. "
        f"Facts step (source listing + comparison with the empty destination) took {seconds} s.",
        "",
        table(
            ["side", "operation", "calls", "bound"],
            [
                [
                    "source",
                    "DescribeRepositories",
                    src.get("DescribeRepositories", 0),
                    f"ceil(R/1000) = {math.ceil(repositories / 1000)}",
                ],
                [
                    "source",
                    "DescribeImages",
                    src.get("DescribeImages", 0),
                    f"R + ceil(N/1000) = {repositories + math.ceil(images / 1000)}",
                ],
                ["source", "ListImages", src.get("ListImages", 0), "0"],
                [
                    "source",
                    "BatchGetImage (indexes, referrers)",
                    src.get("BatchGetImage", 0),
                    f"<= 2 x {len(with_manifests)} repositories with indexes/referrers",
                ],
                ["source", "**list calls**", src_list, f"R + ceil(N/1000) + ceil(R/1000) = {bound}"],
                ["destination (empty)", "DescribeRepositories", dst.get("DescribeRepositories", 0), "ceil(R/1000) = 1"],
                ["destination (empty)", "**list calls**", dst_list, "1 (no repository to look into)"],
            ],
        ),
        "",
        "Coverage of the listing (what a copy driven by it can reach):",
        "",
        table(
            [
                "listing",
                "list calls",
                "images missed",
                "untagged missed",
                "tagged missed",
                "tags missed",
                "images per call",
            ],
            [
                [
                    name,
                    listing_calls[name],
                    f"{c['images_missed']} of {c['images']}",
                    c["untagged_missed"],
                    c["tagged_missed"],
                    f"{c['tags_missed']} of {c['tags']}",
                    f"{(c['images'] - c['images_missed']) / max(1, listing_calls[name]):.1f}",
                ]
                for name, c in cov.items()
            ],
        ),
        "",
        "The seeds make about as many list calls as we do (one per repository) but stop at the first page: the 000 "
        "driver sees only the first 100 repositories and the first 100 images of each, skips untagged images and "
        "copies only `imageTags[0]`; the 003 Lambda reads 1,000 *tags* per repository, tagged only.",
    ]
    report.add("1. Listing cost (facts step) on the large catalog", "\n".join(text))

    # Our listing: every image, every tag, within the bound per side.
    assert len(result["images"]) == images
    assert cov["ours (ecr_image_info)"]["images_missed"] == 0 and cov["ours (ecr_image_info)"]["tags_missed"] == 0
    assert src.get("DescribeRepositories", 0) == math.ceil(repositories / 1000)
    assert src.get("DescribeImages", 0) <= repositories + math.ceil(images / 1000)
    assert src_list <= bound
    assert src.get("BatchGetImage", 0) <= 2 * len(with_manifests)
    assert dst_list == 1
    # The seeds miss images on this catalog (pagination, untagged, first tag only).
    assert cov["seed 000 (describe_* first page, imageTags[0])"]["images_missed"] > 0
    assert cov["seed 000 (describe_* first page, imageTags[0])"]["tags_missed"] > 0
    assert cov["seed 003 (list_images maxResults=1000, TAGGED)"]["untagged_missed"] > 0
    bench.large_facts = result
