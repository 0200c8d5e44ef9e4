# -*- coding: utf-8 -*-

# Copyright: Contributors to the cloudops.ecr_replication collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Push the seed catalog into a real docker-registry (CNCF distribution 2.8) with moto's ECR API.

The registry is a plain throwaway ``docker-registry`` process (fixture ``registry_server``); the
sandbox's auth proxy is not involved here. Each test uses its own repository names where it writes
outside the catalog, so the module-scoped registry can be shared.
"""

from __future__ import annotations

import base64
import http.server
import json
import threading
import time

import pytest

from tests.sandbox import oci
from tests.sandbox import seed


@pytest.fixture(scope="module")
def small() -> seed.Catalog:
    return seed.build_catalog("small")


@pytest.fixture
def registry(registry_server) -> seed.RegistryClient:
    return seed.RegistryClient(registry_server.url)


@pytest.fixture
def pushed(small, ecr_client, registry):
    """The small catalog pushed; returns push_catalog's result."""
    return seed.push_catalog(small, ecr_client, registry, workers=4)


def test_push_small_then_read_back_every_manifest(small, pushed, registry):
    expected = small.expected()
    assert {k: v for k, v in pushed.items() if k != "seed_stats"} == expected
    stats = pushed["seed_stats"]
    assert stats["repositories_created"] == len(small.repositories)
    assert stats["blobs_mounted"] > 0, "shared base layers are mounted, not uploaded again"
    assert stats["blobs_uploaded"] + stats.get("blobs_present", 0) == len(small.blobs)
    assert stats["seconds_total"] < 60

    for img in small.images:
        data, media_type = registry.get_manifest(img.repository, img.digest)
        assert data == img.manifest, f"{img.repository}@{img.digest}"
        assert media_type == img.media_type
        assert oci.sha256_digest(data) == img.digest
        for tag in img.tags:
            assert registry.manifest_digest(img.repository, tag) == img.digest, f"{img.repository}:{tag}"
        for digest in img.blobs:
            assert registry.blob_exists(img.repository, digest), f"{digest} in {img.repository}"

    for repo in small.repositories:
        want = sorted(t for img in small.images_in(repo.name) for t in img.tags)
        if want:
            assert sorted(registry.list_tags(repo.name)) == want


def test_index_children_are_retrievable(small, pushed, registry):
    indexes = [img for img in small.images if img.kind == "index"]
    assert indexes
    for index in indexes:
        data, media_type = registry.get_manifest(index.repository, index.tags[0])
        assert data == index.manifest and media_type == index.media_type
        for entry in json.loads(data)["manifests"]:
            child, child_type = registry.get_manifest(index.repository, entry["digest"])
            assert oci.sha256_digest(child) == entry["digest"] and len(child) == entry["size"]
            assert child_type == entry["mediaType"]
            config_digest = json.loads(child)["config"]["digest"]
            assert oci.sha256_digest(registry.get_blob(index.repository, config_digest)) == config_digest


def test_referrer_and_fallback_tag(small, pushed, registry):
    sig = next(i for i in small.images if i.kind == "referrer" and i.tags)
    assert registry.manifest_digest(sig.repository, sig.tags[0]) == sig.digest
    data = registry.get_manifest(sig.repository, sig.digest)[0]
    assert json.loads(data)["subject"]["digest"] == sig.subject
    assert registry.manifest_digest(sig.repository, sig.subject) == sig.subject


def test_repositories_created_with_settings(small, pushed, ecr_client):
    got = {r["repositoryName"]: r for r in ecr_client.describe_repositories()["repositories"]}
    assert set(got) == {r.name for r in small.repositories}
    for repo in small.repositories:
        desc = got[repo.name]
        assert desc["imageTagMutability"] == repo.image_tag_mutability
        assert desc["imageScanningConfiguration"]["scanOnPush"] is repo.scan_on_push
        assert desc["encryptionConfiguration"]["encryptionType"] == repo.encryption_type
        tags = ecr_client.list_tags_for_resource(resourceArn=desc["repositoryArn"])["tags"]
        assert {t["Key"]: t["Value"] for t in tags} == dict(repo.resource_tags)


def test_push_again_is_idempotent(small, pushed, ecr_client, registry):
    again = seed.push_catalog(small, ecr_client, registry, workers=2)
    assert {k: v for k, v in again.items() if k != "seed_stats"} == small.expected()
    stats = again["seed_stats"]
    assert stats["repositories_exists"] == len(small.repositories)
    assert stats["blobs_present"] == len(small.blobs) and "blobs_uploaded" not in stats


# ---------------------------------------------------------------------------- RegistryClient


def test_mount_and_upload(registry):
    blob = oci.Blob("application/octet-stream", oci.deterministic_bytes("mount-test", 70_000))
    assert not registry.blob_exists("client/a", blob.digest)
    assert registry.push_blob("client/a", blob.digest, blob.data) == "uploaded"
    assert registry.get_blob("client/a", blob.digest) == blob.data
    assert registry.push_blob("client/b", blob.digest, blob.data, mount_from="client/a") == "mounted"
    assert registry.blob_exists("client/b", blob.digest)
    # the source repository does not have it: the registry declines the mount, we upload instead
    other = oci.Blob("application/octet-stream", b"not in client/a")
    assert registry.push_blob("client/c", other.digest, other.data, mount_from="client/a") == "uploaded"
    assert registry.get_blob("client/c", other.digest) == other.data


def test_wrong_digest_is_refused(registry):
    with pytest.raises(seed.RegistryError, match="HTTP 400") as err:
        registry.push_blob("client/bad", oci.sha256_digest(b"something else"), b"payload")
    assert err.value.status == 400 and not err.value.transient


def test_missing_manifest(registry):
    assert registry.manifest_digest("client/none", "latest") is None
    with pytest.raises(seed.RegistryError, match="HTTP 404") as err:
        registry.get_manifest("client/none", "latest")
    assert err.value.status == 404


def test_unreachable_registry_fails_fast_with_the_task_named(small, ecr_client, unused_port):
    client = seed.RegistryClient(f"http://127.0.0.1:{unused_port}", timeout=5)
    started = time.monotonic()
    with pytest.raises(seed.SeedError, match=r"upload sha256:[0-9a-f]{64} to team-a/api.*ConnectionError"):
        seed.push_catalog(small, ecr_client, client, workers=2)
    assert time.monotonic() - started < 30


def test_cli_push(registry_server, ecr_client, monkeypatch, capsys):
    monkeypatch.delenv("SEED_REGISTRY_USERNAME", raising=False)
    monkeypatch.delenv("SEED_REGISTRY_PASSWORD", raising=False)
    assert seed.main(["--profile", "small", "--push", registry_server.url, "--workers", "2"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["totals"] == seed.build_catalog("small").expected()["totals"]
    assert out["seed_stats"]["manifest_puts"] > 0
    assert {r["repositoryName"] for r in ecr_client.describe_repositories()["repositories"]} >= {"team-a/api"}


def test_cli_push_failure_is_one_line(ecr_client, unused_port, capsys):
    assert seed.main(["--profile", "small", "--push", f"http://127.0.0.1:{unused_port}"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("seeding failed: upload sha256:") and "Traceback" not in err


def test_ecr_error_names_the_repository(small, registry, monkeypatch):
    import boto3
    from botocore.config import Config

    # No moto here: the ECR endpoint is a closed port, so create_repository fails.
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    client = boto3.client(
        "ecr",
        region_name="ap-south-1",
        endpoint_url="http://127.0.0.1:1",
        config=Config(retries={"max_attempts": 1}, connect_timeout=2),
    )
    with pytest.raises(seed.SeedError, match="create_repository team-a/api: .*Could not connect"):
        seed.push_catalog(small, client, registry)


class _BasicAuthHandler(http.server.BaseHTTPRequestHandler):
    expected = "Basic " + base64.b64encode(b"AWS:s3cret-token").decode()
    seen: list[str | None] = []

    def do_GET(self):  # noqa: N802 - http.server API
        self.seen.append(self.headers.get("Authorization"))
        if self.headers.get("Authorization") != self.expected:
            self.send_response(401)
        else:
            self.send_response(200 if self.path == "/v2/" else 404)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):  # silence
        pass


def test_basic_auth_sent_and_never_shown(unused_port):
    server = http.server.ThreadingHTTPServer(("127.0.0.1", unused_port), _BasicAuthHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}"
        assert seed.RegistryClient(url, "AWS", "s3cret-token").ping()
        assert not seed.RegistryClient(url, "AWS", "wrong").ping()
        assert not seed.RegistryClient(url).ping()
        assert _BasicAuthHandler.seen[-1] is None
        assert "s3cret" not in repr(seed.RegistryClient(url, "AWS", "s3cret-token"))
        with pytest.raises(seed.RegistryError) as err:
            seed.RegistryClient(url, "AWS", "s3cret-token").get_manifest("x/y", "latest")
        assert "s3cret" not in str(err.value)
    finally:
        server.shutdown()
        server.server_close()


# ---------------------------------------------------------------------------- large (slow)


@pytest.mark.slow
def test_push_large(ecr_client, registry):
    catalog = seed.build_catalog("large")
    result = seed.push_catalog(catalog, ecr_client, registry, workers=8)
    stats = result["seed_stats"]
    print(f"\nlarge profile: {result['totals']} pushed in {stats['seconds_total']} s: {stats}")
    assert stats["seconds_total"] < 300
    assert stats["manifest_puts"] == sum(len(i.tags) + (1 if i.by_digest else 0) for i in catalog.images)
    for img in catalog.images[::25]:
        assert registry.get_manifest(img.repository, img.digest)[0] == img.manifest
    paginator = ecr_client.get_paginator("describe_repositories")
    names = [r["repositoryName"] for page in paginator.paginate() for r in page["repositories"]]
    assert sorted(names) == sorted(r.name for r in catalog.repositories)
