# -*- coding: utf-8 -*-

# Copyright: Contributors to the cloudops.ecr_replication collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

"""The seed catalog without any server: determinism, profile sizes, and structural validity."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import re
import subprocess
import sys
import tarfile

import pytest

from tests.sandbox import oci
from tests.sandbox import seed

# ECR's repository name pattern (API reference, CreateRepository) and the OCI tag grammar.
ECR_REPO_NAME = re.compile(r"(?:[a-z0-9]+(?:[._-][a-z0-9]+)*/)*[a-z0-9]+(?:[._-][a-z0-9]+)*")
OCI_TAG = re.compile(r"[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}")
ECR_MANIFEST_LIMIT = 4 * 1024 * 1024

# Fingerprints of the catalogs (sha256 of its expected() as canonical JSON). It pins the digests
# across machines and Python/zlib builds. When you change the catalog on purpose, bump
# seed.GENERATOR_VERSION and update these values (the failure message prints the new one).
SMALL_FINGERPRINT = "00c12e7c951150fd16679f1d2386839c9c6975d928818c44de22fbe51e668020"
LARGE_FINGERPRINT = "9ec989c263a5a7a509013f79478e650f130ea6c1aca00f7f0399d69363e94ec4"


@pytest.fixture(scope="module")
def small() -> seed.Catalog:
    return seed.build_catalog("small")


@pytest.fixture(scope="module")
def large() -> seed.Catalog:
    return seed.build_catalog("large")


def fingerprint(catalog: seed.Catalog) -> str:
    return hashlib.sha256(oci.canonical_json(catalog.expected())).hexdigest()


# ---------------------------------------------------------------------------- determinism


def test_two_builds_are_identical(small):
    again = seed.build_catalog("small")
    assert [(i.repository, i.digest, i.tags) for i in again.images] == [
        (i.repository, i.digest, i.tags) for i in small.images
    ]
    assert {d: b.data for d, b in again.blobs.items()} == {d: b.data for d, b in small.blobs.items()}
    assert again.expected() == small.expected()


@pytest.mark.parametrize("profile", ["small", "large"])
def test_fingerprint_is_pinned(profile, small, large):
    catalog = {"small": small, "large": large}[profile]
    pinned = {"small": SMALL_FINGERPRINT, "large": LARGE_FINGERPRINT}[profile]
    assert fingerprint(catalog) == pinned, (
        f"the {profile} catalog changed: new fingerprint {fingerprint(catalog)}; if intended, bump "
        f"seed.GENERATOR_VERSION and update {profile.upper()}_FINGERPRINT"
    )


@pytest.mark.parametrize("hashseed", ["1", "4242"])
def test_same_digests_in_another_interpreter(small, hashseed):
    """No dependence on hash randomisation, dict/set order or process state."""
    code = (
        "import hashlib,sys; from tests.sandbox import oci, seed; "
        "sys.stdout.write(hashlib.sha256(oci.canonical_json(seed.build_catalog('small').expected())).hexdigest())"
    )
    env = dict(os.environ, PYTHONHASHSEED=hashseed)
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
    out = subprocess.run([sys.executable, "-c", code], cwd=root, env=env, capture_output=True, text=True, check=True)
    assert out.stdout == fingerprint(small)


def test_unknown_profile_is_a_clear_error():
    with pytest.raises(seed.SeedError, match="unknown profile 'medium'.*small, large"):
        seed.build_catalog("medium")


# ---------------------------------------------------------------------------- profile contents


def test_small_profile_size(small):
    summary = small.summary()
    assert 6 <= summary["repositories"] <= 8
    assert 25 <= summary["images"] <= 40
    assert 1 * 1024 * 1024 <= summary["blob_bytes"] <= 8 * 1024 * 1024


def test_small_has_every_kind_of_image(small):
    repos = {r.name: r for r in small.repositories}
    assert sum(r.image_tag_mutability == "IMMUTABLE" for r in repos.values()) >= 1
    assert {r.scan_on_push for r in repos.values()} == {True, False}
    assert {r.encryption_type for r in repos.values()} == {"AES256", "KMS"}
    assert any(name.count("/") == 1 for name in repos) and any(name.count("/") >= 2 for name in repos)
    assert any("/" not in name for name in repos)
    assert any(not small.images_in(name) for name in repos), "an empty repository"

    media = {img.media_type for img in small.images}
    assert media == set(oci.MANIFEST_MEDIA_TYPES)
    assert any(len(img.tags) >= 3 for img in small.images)
    assert any(img.kind == "image" and not img.tags for img in small.images), "untagged images"
    layer_types = {json.loads(img.manifest)["layers"][-1]["mediaType"] for img in small.images if img.kind == "image"}
    assert {oci.OCI_LAYER_GZIP, oci.OCI_LAYER_TAR, oci.DOCKER_LAYER_GZIP} <= layer_types

    # The same digest in two repositories (promotion).
    by_digest: dict[str, set[str]] = {}
    for img in small.images:
        by_digest.setdefault(img.digest, set()).add(img.repository)
    assert any(len(r) > 1 for r in by_digest.values())


def test_shared_base_layers(small):
    uses: dict[str, int] = {}
    for img in small.images:
        for digest in img.blobs[1:]:
            uses[digest] = uses.get(digest, 0) + 1
    shared = [d for d, n in uses.items() if n >= 3]
    assert len(shared) >= 5
    # every single-platform image also has a layer nobody else has (its own)
    for img in small.images:
        if img.kind in ("image", "index_child"):
            own = img.blobs[-1]
            assert sum(own in other.blobs for other in small.images if other.digest != img.digest) == 0


def test_indexes_and_children(small):
    images = {(i.repository, i.digest): i for i in small.images}
    indexes = [i for i in small.images if i.kind == "index"]
    assert len(indexes) >= 2
    assert {oci.OCI_INDEX, oci.DOCKER_MANIFEST_LIST} == {i.media_type for i in indexes}
    for index in indexes:
        doc = json.loads(index.manifest)
        assert doc["mediaType"] == index.media_type
        assert len(doc["manifests"]) >= 2
        assert [m["digest"] for m in doc["manifests"]] == list(index.children)
        assert [m["platform"] for m in doc["manifests"]] == index.platforms
        assert len({(p["os"], p["architecture"], p.get("variant")) for p in index.platforms}) == len(index.platforms)
        for entry in doc["manifests"]:
            child = images[(index.repository, entry["digest"])]
            assert child.kind == "index_child" and child.index_child_of == index.digest
            assert child.tags == [] and child.by_digest
            assert entry["size"] == len(child.manifest) and entry["mediaType"] == child.media_type
            assert child.platform == entry["platform"]
            assert json.loads(child.manifest)["mediaType"] == child.media_type
            # pushed before the index
            assert small.images.index(child) < small.images.index(index)
        assert index.size == len(index.manifest) + sum(images[(index.repository, c)].size for c in index.children)
        assert index.image_size_in_bytes == max(
            images[(index.repository, c)].image_size_in_bytes for c in index.children
        )
    children = [i for i in small.images if i.kind == "index_child"]
    assert {c.index_child_of for c in children} == {i.digest for i in indexes}


def test_attestation_manifest_in_an_index(small):
    images = {(i.repository, i.digest): i for i in small.images}
    found = 0
    for index in (i for i in small.images if i.kind == "index"):
        for entry in json.loads(index.manifest)["manifests"]:
            if entry["platform"] != {"os": "unknown", "architecture": "unknown"}:
                continue
            found += 1
            ref = entry["annotations"]["vnd.docker.reference.digest"]
            assert entry["annotations"]["vnd.docker.reference.type"] == "attestation-manifest"
            assert ref in index.children and images[(index.repository, ref)].platform["os"] == "linux"
            att = images[(index.repository, entry["digest"])]
            assert att.kind == "index_child" and att.tags == []
            statement = json.loads(small.blobs[att.blobs[1]].data)
            assert statement["subject"][0]["digest"]["sha256"] == ref.split(":", 1)[1]
    assert found >= 1


def test_referrers(small):
    images = {(i.repository, i.digest): i for i in small.images}
    referrers = [i for i in small.images if i.kind == "referrer"]
    sigs = [r for r in referrers if r.artifact_type == seed.COSIGN_SIGNATURE_ARTIFACT]
    assert sigs and any(r.artifact_type == seed.SPDX_JSON and not r.tags for r in referrers)
    for ref in referrers:
        doc = json.loads(ref.manifest)
        assert doc["mediaType"] == oci.OCI_MANIFEST and doc["artifactType"] == ref.artifact_type
        subject = images[(ref.repository, ref.subject)]  # the subject is in the same repository
        assert doc["subject"] == {
            "mediaType": subject.media_type,
            "digest": subject.digest,
            "size": len(subject.manifest),
        }
        assert ref.by_digest and ref.depth > subject.depth
        assert small.images.index(subject) < small.images.index(ref)
        assert doc["config"]["mediaType"] == oci.OCI_EMPTY and doc["config"]["size"] == 2
    for sig in sigs:
        assert sig.tags == [sig.subject.replace("sha256:", "sha256-") + ".sig"]
    assert any(images[(s.repository, s.subject)].kind == "index" for s in sigs), "a signed index"
    assert any(images[(s.repository, s.subject)].kind == "image" for s in sigs), "a signed image"


def test_immutable_repository_has_each_tag_once(small, large):
    for catalog in (small, large):
        for repo in catalog.repositories:
            tags = [t for img in catalog.images_in(repo.name) for t in img.tags]
            assert len(tags) == len(set(tags)), repo.name  # a tag names one image (true for every repo)


def test_names_and_tags_are_valid_for_ecr(large):
    for repo in large.repositories:
        assert ECR_REPO_NAME.fullmatch(repo.name) and 2 <= len(repo.name) <= 256, repo.name
    for img in large.images:
        for tag in img.tags:
            assert OCI_TAG.fullmatch(tag), tag
        assert len(img.tags) <= 1000
        assert len(img.manifest) <= ECR_MANIFEST_LIMIT


def test_large_profile_size(large):
    summary = large.summary()
    assert summary["repositories"] >= 120
    assert summary["images"] >= 1100
    assert summary["blob_bytes"] <= 300 * 1024 * 1024
    assert summary["max_images_per_repository"] > 100  # beyond DescribeImages' default page
    assert summary["repositories"] > 100  # beyond DescribeRepositories' default page
    assert summary["max_tags_per_image"] >= 100
    assert summary["images_by_kind"]["index"] >= 10 and summary["images_by_kind"]["referrer"] >= 5
    # dedup matters: many more references than distinct blobs
    assert summary["blob_references"] > 1.5 * summary["blobs"]


def test_large_contains_small_unchanged(small, large):
    large_images = {(i.repository, i.digest): i.expected() for i in large.images}
    for img in small.images:
        assert large_images[(img.repository, img.digest)] == img.expected()
    large_repos = {r.name: r for r in large.repositories}
    for repo in small.repositories:
        assert large_repos[repo.name] == repo


# ---------------------------------------------------------------------------- structural validity


def _check_manifest_blobs(catalog: seed.Catalog, img: seed.ImageSpec) -> None:
    doc = json.loads(img.manifest)
    assert img.manifest == oci.canonical_json(doc)
    assert doc["schemaVersion"] == 2 and doc["mediaType"] == img.media_type
    descriptors = [doc["config"]] + doc["layers"]
    assert tuple(d["digest"] for d in descriptors) == img.blobs
    for desc in descriptors:
        blob = catalog.blobs[desc["digest"]]
        assert desc["size"] == blob.size and oci.sha256_digest(blob.data) == desc["digest"]
    assert img.size == len(img.manifest) + sum(d["size"] for d in descriptors)
    assert img.image_size_in_bytes == sum(d["size"] for d in descriptors)
    assert img.artifact_media_type == doc.get("artifactType", doc["config"]["mediaType"])
    if img.kind == "referrer":
        return
    if img.platform == {"os": "unknown", "architecture": "unknown"}:  # BuildKit attestation manifest
        assert [d["mediaType"] for d in doc["layers"]] == [oci.IN_TOTO]
        return
    config = json.loads(catalog.blobs[doc["config"]["digest"]].data)
    assert config["created"] == oci.FIXED_CREATED
    assert {k: config[k] for k in ("os", "architecture")} == {k: img.platform[k] for k in ("os", "architecture")}
    assert config.get("variant") == img.platform.get("variant")
    diff_ids = []
    for desc in doc["layers"]:
        data = catalog.blobs[desc["digest"]].data
        if desc["mediaType"].endswith("gzip"):
            data = gzip.decompress(data)
        with tarfile.open(fileobj=io.BytesIO(data)) as tar:
            members = tar.getmembers()
            assert members and all(m.mtime == 0 and m.uid == 0 for m in members)
        diff_ids.append(oci.sha256_digest(data))
    assert config["rootfs"] == {"type": "layers", "diff_ids": diff_ids}


def test_every_manifest_is_consistent_with_its_blobs(small):
    for img in small.images:
        if img.kind != "index":
            _check_manifest_blobs(small, img)
    referenced = {d for img in small.images for d in img.blobs}
    assert referenced == set(small.blobs), "no orphan and no missing blobs"


def test_expected_catalog_shape(small):
    expected = small.expected()
    assert json.loads(json.dumps(expected)) == expected
    assert expected["totals"]["images"] == len(expected["images"]) == len(small.images)
    keys = [(i["repository"], i["digest"]) for i in expected["images"]]
    assert keys == sorted(keys) and len(set(keys)) == len(keys)
    for item in expected["images"]:
        assert item["tags"] == sorted(item["tags"])
        assert item["digest"].startswith("sha256:") and len(item["digest"]) == 71
        assert (item["platforms"] is not None) == (item["kind"] == "index")
        assert (item["subject"] is not None) == (item["kind"] == "referrer")
        assert (item["index_child_of"] is not None) == (item["kind"] == "index_child")
    repos = {r["name"]: r for r in expected["repositories"]}
    assert repos["platform/base"]["image_tag_mutability"] == "IMMUTABLE"
    assert sum(r["image_count"] for r in repos.values()) == len(expected["images"])
    assert repos["sandbox/empty"]["image_count"] == 0


def test_create_repository_arguments(small):
    kwargs = small.repository("team-a/worker").create_kwargs()
    assert kwargs == {
        "repositoryName": "team-a/worker",
        "imageTagMutability": "MUTABLE",
        "imageScanningConfiguration": {"scanOnPush": False},
        "encryptionConfiguration": {"encryptionType": "KMS"},
        "tags": [{"Key": "team", "Value": "a"}],
    }


# ---------------------------------------------------------------------------- oci helpers


@pytest.mark.parametrize("size", [0, 1, 65534, 65535, 65536, 200_001])
def test_gzip_stored_roundtrip(size):
    data = oci.deterministic_bytes(f"gz{size}", size)
    packed = oci.gzip_stored(data)
    assert gzip.decompress(packed) == data
    assert packed == oci.gzip_stored(data)
    assert packed[:10] == b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"  # mtime 0, no file name


def test_tar_is_reproducible():
    files = [("a/b.txt", b"hello"), ("bin/tool", b"#!/bin/sh\n")]
    assert oci.tar_archive(files, directories=("a",)) == oci.tar_archive(files, directories=("a",))
    with tarfile.open(fileobj=io.BytesIO(oci.tar_archive(files))) as tar:
        assert [(m.name, m.mode) for m in tar.getmembers()] == [("a/b.txt", 0o644), ("bin/tool", 0o755)]


def test_docker_manifest_refuses_oci_only_fields():
    config = oci.empty_config()
    with pytest.raises(ValueError, match="Docker schema2"):
        oci.image_manifest(config, [], media_type=oci.DOCKER_MANIFEST, artifact_type="x/y")
    with pytest.raises(ValueError, match="not an index media type"):
        oci.image_index([], media_type=oci.OCI_MANIFEST)


# ---------------------------------------------------------------------------- CLI


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
    return subprocess.run(
        [sys.executable, "-m", "tests.sandbox.seed", *args], cwd=root, capture_output=True, text=True, check=False
    )


def test_cli_print(small):
    out = _cli("--profile", "small", "--print")
    assert out.returncode == 0, out.stderr
    lines = dict(line.split(None, 1) for line in out.stdout.splitlines())
    assert lines["repositories"].strip() == str(len(small.repositories))
    assert lines["images"].strip() == str(len(small.images))
    assert lines["blob_bytes"].startswith(str(small.blob_bytes()))


def test_cli_json(small):
    out = _cli("--profile", "small", "--json")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == small.expected()


def test_cli_bad_profile():
    out = _cli("--profile", "medium", "--print")
    assert out.returncode == 2 and "--profile" in out.stderr and "Traceback" not in out.stderr
