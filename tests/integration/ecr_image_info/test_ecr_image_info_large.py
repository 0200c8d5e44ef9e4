# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The ``large`` catalog (>100 repositories, >1,000 images): every image through ansible-playbook, the listing
cost, and real nextToken pagination against the sandbox with small pages.

It runs on its own sandbox (ports 47250+ on 127.0.0.1, this test's range) so that seeding ``large`` does not
change what the session sandbox holds for the other tests.
"""

from __future__ import annotations

import math
import time

import pytest

from ansible_collections.cloudops.ecr_replication.plugins.module_utils import ecr

pytestmark = [pytest.mark.sandbox, pytest.mark.slow]

PORT_BLOCKS = (47250, 47275)


@pytest.fixture
def large_sandbox(tmp_path_factory):
    from tests.sandbox import lifecycle
    from tests.sandbox.config import SandboxConfig
    from tests.sandbox.fixtures import Sandbox

    root = tmp_path_factory.mktemp("large")
    for base in PORT_BLOCKS:
        config = SandboxConfig(root / f"sandbox-{base}", base)
        if not any(lifecycle.port_in_use(port) for port in config.all_ports):
            break
    else:
        pytest.skip(f"no free port block among {PORT_BLOCKS}")
    started = time.time()
    env = lifecycle.start(config, "large", timeout=120)
    try:
        box = Sandbox(config, env, profile="large")
        box.seed_seconds = time.time() - started
        yield box
    finally:
        lifecycle.stop(config)


def test_large_catalog(large_sandbox, tmp_path, run_image_info, monkeypatch):
    """One test (one sandbox seeded with ``large``, also under pytest-xdist): the module, then the helpers."""
    check_every_image_and_the_cost(large_sandbox, tmp_path, run_image_info)
    check_helpers_follow_next_token(large_sandbox, monkeypatch)


def check_every_image_and_the_cost(large_sandbox, tmp_path, run_image_info):
    catalog = large_sandbox.catalog
    repositories, images = len(catalog["repositories"]), len(catalog["images"])
    assert repositories > 100 and images > 1000
    (result,) = run_image_info(
        large_sandbox.subprocess_env(), tmp_path, [{"args": {"region": large_sandbox.source_region}}]
    )
    assert not result.get("failed"), result.get("msg")
    got = {(i["repository"], i["digest"]): i["tags"] for i in result["images"]}
    assert got == {(i["repository"], i["digest"]): sorted(i["tags"]) for i in catalog["images"]}
    assert max(len(tags) for tags in got.values()) == 150
    calls = result["summary"]["api_calls"]["source"]
    assert calls["DescribeRepositories"] == math.ceil(repositories / 1000)
    assert calls["DescribeImages"] <= repositories + math.ceil(images / 1000)
    # one BatchGetImage per repository with indexes, one per repository with referrers (each < 100 of them)
    with_index = {i["repository"] for i in catalog["images"] if i["kind"] == "index"}
    with_referrers = {i["repository"] for i in catalog["images"] if i["kind"] == "referrer"}
    assert 0 < calls["BatchGetImage"] <= len(with_index) + len(with_referrers)


def check_helpers_follow_next_token(large_sandbox, monkeypatch):
    """Pages of 50 repositories / 100 images: the helpers must walk every nextToken the sandbox returns."""
    client = large_sandbox.client("ecr")
    calls = ecr.count_api_calls(client, {})
    monkeypatch.setattr(ecr, "DESCRIBE_REPOSITORIES_PAGE_SIZE", 50)
    monkeypatch.setattr(ecr, "DESCRIBE_IMAGES_PAGE_SIZE", 100)
    monkeypatch.setattr(ecr, "LIST_IMAGES_PAGE_SIZE", 100)
    catalog = large_sandbox.catalog
    repos = ecr.describe_repositories(client)
    assert sorted(r["repositoryName"] for r in repos) == sorted(r["name"] for r in catalog["repositories"])
    assert calls["DescribeRepositories"] == math.ceil(len(repos) / 50)
    nightly = [i for i in catalog["images"] if i["repository"] == "bulk/nightly"]
    assert len(nightly) > 200
    details = ecr.describe_images(client, "bulk/nightly")
    assert sorted(d["imageDigest"] for d in details) == sorted(i["digest"] for i in nightly)
    assert calls["DescribeImages"] == math.ceil(len(nightly) / 100)
    ids = ecr.list_images(client, "bulk/many-tags")
    assert len(ids) == 150 and calls["ListImages"] == 2
