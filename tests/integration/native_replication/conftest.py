# Copyright: Contributors to the cloudops.ecr_replication project
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Native ECR replication against the sandbox: repositories of their own (a fresh prefix per test), the registry's
replication configuration and the destination registry policy restored afterwards, so that other tests sharing the
sandbox never see a rule of ours replicate their pushes."""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path

import pytest

from tests.sandbox.seed import RegistryClient

REPO_ROOT = Path(__file__).resolve().parents[3]


class Native:
    def __init__(self, sandbox, prefix: str):
        self.sandbox = sandbox
        self.prefix = prefix
        self.ecr = sandbox.client("ecr", "source")
        self.source_account = sandbox.source_account
        self.same_account_dest = {"region": sandbox.dest_region, "registryId": sandbox.source_account}
        self.cross_account_dest = {"region": sandbox.dest_region, "registryId": sandbox.target_account}

    # -- registries ------------------------------------------------------------------------------------------
    def registry(self, account: str = "source", region: str | None = None) -> RegistryClient:
        host = self.sandbox.registry_host(account, region)
        password = self.sandbox.registry_password(account, region)
        return RegistryClient(f"https://{host}", "AWS", password, verify=str(self.sandbox.config.ca_bundle))

    def ecr_client(self, dest: dict) -> object:
        account = "source" if dest["registryId"] == self.source_account else "target"
        return self.sandbox.client("ecr", account, dest["region"])

    def registry_for(self, dest: dict) -> RegistryClient:
        account = "source" if dest["registryId"] == self.source_account else "target"
        return self.registry(account, dest["region"])

    def clone(self, from_repository: str, name: str) -> dict[str, list[str]]:
        """A copy of a seeded source repository under our prefix, pushed through the registry (blobs mounted,
        manifests by digest then by tag, children first). Returns {digest: [tags]}."""
        repository = self.prefix + name
        self.ecr.create_repository(repositoryName=repository)
        registry = self.registry()
        images = self.ecr.describe_images(repositoryName=from_repository)["imageDetails"]
        manifests = {
            i["imageId"]["imageDigest"]: i
            for i in self.ecr.batch_get_image(
                repositoryName=from_repository,
                imageIds=[{"imageDigest": d["imageDigest"]} for d in images],
                acceptedMediaTypes=[
                    "application/vnd.oci.image.manifest.v1+json",
                    "application/vnd.oci.image.index.v1+json",
                    "application/vnd.docker.distribution.manifest.v2+json",
                    "application/vnd.docker.distribution.manifest.list.v2+json",
                ],
            )["images"]
        }
        ordered = sorted(images, key=lambda d: "manifests" in json.loads(manifests[d["imageDigest"]]["imageManifest"]))
        expected: dict[str, list[str]] = {}
        for detail in ordered:
            digest = detail["imageDigest"]
            body = manifests[digest]["imageManifest"].encode()
            parsed = json.loads(body)
            for blob in ([parsed["config"]] if parsed.get("config") else []) + (parsed.get("layers") or []):
                registry.push_blob(repository, blob["digest"], b"", mount_from=from_repository)
            media_type = manifests[digest]["imageManifestMediaType"]
            for ref in [digest] + list(detail.get("imageTags") or []):
                assert registry.put_manifest(repository, ref, body, media_type) == digest
            expected[digest] = sorted(detail.get("imageTags") or [])
        return expected

    # -- configuration ---------------------------------------------------------------------------------------
    def rule(self, dest: dict, *prefixes: str) -> None:
        """Add a rule of ours (kept apart from whatever rules exist)."""
        configuration = self.ecr.describe_registry()["replicationConfiguration"]
        rule = {
            "destinations": [dest],
            "repositoryFilters": [{"filter": p, "filterType": "PREFIX_MATCH"} for p in prefixes],
        }
        configuration["rules"].append(rule)
        self.ecr.put_replication_configuration(replicationConfiguration=configuration)

    def images(self, dest: dict, repository: str) -> dict[str, list[str]]:
        client = self.ecr_client(dest)
        try:
            details = client.describe_images(repositoryName=repository)["imageDetails"]
        except client.exceptions.RepositoryNotFoundException:
            return {}
        return {d["imageDigest"]: sorted(d.get("imageTags") or []) for d in details}

    def wait_for(self, predicate, timeout: float = 20.0, interval: float = 0.2):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = predicate()
            if value:
                return value
            time.sleep(interval)
        raise AssertionError(f"not true after {timeout}s")


@pytest.fixture
def native(sandbox):
    """A fresh prefix; the replication configuration, our backfills, the registry policy of the destination and our
    repositories are put back as they were afterwards."""
    helper = Native(sandbox, f"native-{uuid.uuid4().hex[:8]}/")
    before = helper.ecr.describe_registry()["replicationConfiguration"]
    target_ecr = sandbox.client("ecr", "target", sandbox.dest_region)
    try:
        policy_before = target_ecr.get_registry_policy()["policyText"]
    except target_ecr.exceptions.RegistryPolicyNotFoundException:
        policy_before = None
    yield helper
    for backfill in helper.ecr.list_replication_backfills()["backfills"]:
        if backfill["status"] in ("PREPARING", "IN_PROGRESS"):
            helper.ecr.stop_replication_backfill(replicationBackfillId=backfill["replicationBackfillId"])
    helper.ecr.put_replication_configuration(replicationConfiguration=before)
    if policy_before is None:
        try:
            target_ecr.delete_registry_policy()
        except target_ecr.exceptions.RegistryPolicyNotFoundException:
            pass
    else:
        target_ecr.put_registry_policy(policyText=policy_before)
    for account, region in (
        ("source", sandbox.source_region),
        ("source", sandbox.dest_region),
        ("target", sandbox.dest_region),
    ):
        client = sandbox.client("ecr", account, region)
        for page in client.get_paginator("describe_repositories").paginate():
            for repo in page["repositories"]:
                if repo["repositoryName"].startswith(helper.prefix):
                    client.delete_repository(repositoryName=repo["repositoryName"], force=True)
