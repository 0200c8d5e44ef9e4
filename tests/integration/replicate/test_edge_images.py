# Copyright: Contributors to the cloudops.ecr_replication project
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Images at ECR's limits, copied through `playbooks/replicate.yml` and verified at the destination registry:

- a manifest close to ECR's 4 MiB manifest limit (annotations padding it out);
- one image with 1,000 tags (one PutImage per extra tag: the copy must finish well within the build timeout).

The images are pushed into the source registry for this module only and removed afterwards."""

from __future__ import annotations

import base64
import json

import pytest

from tests.sandbox import oci
from tests.sandbox.seed import RegistryClient

from .conftest import run_playbook
from .conftest import user_args

pytestmark = pytest.mark.sandbox

BIG = "edge/big-manifest"
TAGGED = "edge/many-tags"
MANIFEST_BYTES = 4_000_000  # ECR refuses a manifest above 4 MiB (4,194,304 bytes)
TAG_COUNT = 1000


def _registry(sandbox, account: str) -> RegistryClient:
    ecr = sandbox.client("ecr", account)
    auth = ecr.get_authorization_token()["authorizationData"][0]
    user, _colon, password = base64.b64decode(auth["authorizationToken"]).decode().partition(":")
    return RegistryClient(auth["proxyEndpoint"], user, password, verify=sandbox.env["REQUESTS_CA_BUNDLE"])


def _push_image(registry: RegistryClient, repository: str, label: str, padding: int = 0):
    layer = oci.layer([(f"{label}.txt", oci.deterministic_text(label, 2048))])
    config = oci.image_config([layer], labels={"edge": label})
    for blob in (layer, config):
        registry.push_blob(repository, blob.digest, blob.data)
    annotations = {"org.example.padding": "p" * padding} if padding else None
    manifest = oci.image_manifest(config, [layer], annotations=annotations)
    return manifest


def _remove(sandbox, name: str) -> None:
    for account in ("source", "target"):
        client = sandbox.client("ecr", account)
        try:
            client.delete_repository(repositoryName=name, force=True)
        except client.exceptions.RepositoryNotFoundException:
            pass


@pytest.fixture
def big_manifest(provisioned):
    sandbox = provisioned
    sandbox.client("ecr", "source").create_repository(repositoryName=BIG)
    try:
        registry = _registry(sandbox, "source")
        big = _push_image(registry, BIG, "big", padding=1)
        big = _push_image(registry, BIG, "big", padding=MANIFEST_BYTES - len(big))
        assert MANIFEST_BYTES - 200 < len(big) <= MANIFEST_BYTES
        yield registry.put_manifest(BIG, "big", big, oci.OCI_MANIFEST), len(big)
    finally:
        _remove(sandbox, BIG)


@pytest.fixture
def many_tags(provisioned):
    sandbox = provisioned
    sandbox.client("ecr", "source").create_repository(repositoryName=TAGGED)
    try:
        registry = _registry(sandbox, "source")
        tagged = _push_image(registry, TAGGED, "tagged")
        tags = [f"build-{n:04d}" for n in range(TAG_COUNT)]
        for tag in tags:
            digest = registry.put_manifest(TAGGED, tag, tagged, oci.OCI_MANIFEST)
        yield digest, tags
    finally:
        _remove(sandbox, TAGGED)


def _destination_tags(sandbox, repository: str) -> dict[str, str]:
    ecr = sandbox.client("ecr", "target")
    tags = {}
    for page in ecr.get_paginator("describe_images").paginate(repositoryName=repository):
        for detail in page["imageDetails"]:
            for tag in detail.get("imageTags") or ():
                tags[tag] = detail["imageDigest"]
    return tags


@pytest.mark.slow  # make soak: over a minute of provisioning and builds; make test keeps the file's other cases
def test_a_manifest_near_the_4_mib_limit_is_copied_byte_for_byte(big_manifest, provisioned, tmp_path, reliability):
    sandbox = provisioned
    digest, size = big_manifest
    run = run_playbook(sandbox, "replicate.yml", tmp_path, *user_args(sandbox, "-e", f"repositories={BIG}"))
    assert run.returncode == 0, run.explain()
    assert _destination_tags(sandbox, BIG) == {"big": digest}
    copied = _registry(sandbox, "target").get_manifest(BIG, digest)
    body = copied[0] if isinstance(copied, tuple) else copied
    assert len(body) == size and oci.sha256_digest(body) == digest
    reliability.images_verified(1)


@pytest.mark.slow
def test_an_image_with_1000_tags_is_copied_with_every_tag(many_tags, provisioned, tmp_path, reliability):
    """Marked slow (make soak): 1,000 PutImage calls at ECR's 10 per second take 100 s."""
    sandbox = provisioned
    digest, tags = many_tags
    run = run_playbook(
        sandbox, "replicate.yml", tmp_path, *user_args(sandbox, "-e", f"repositories={TAGGED}"), timeout=1200
    )
    assert run.returncode == 0, run.explain()
    assert _destination_tags(sandbox, TAGGED) == {tag: digest for tag in tags}
    report = json.loads((tmp_path / "reports" / "ecr-replication-report.json").read_text())
    assert report["summary"]["builds"] == 1 and report["summary"]["success"] is True
    reliability.images_verified(1)
