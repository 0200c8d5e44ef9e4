# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Fixtures for the image catalog tests: moto in-process (ECR, STS) and real OCI manifest documents."""

from __future__ import annotations

import hashlib
import json
import os
import sys
from pathlib import Path

import pytest

# tests/conftest.py (the lead's) puts the collection on sys.path; this keeps the folder runnable on its own.
_COLLECTIONS = Path(__file__).resolve().parents[5] / ".ansible" / "collections"
if _COLLECTIONS.is_dir() and str(_COLLECTIONS) not in sys.path:
    sys.path.insert(0, str(_COLLECTIONS))

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
REGION = "ap-south-1"
DEST_REGION = "ap-northeast-2"


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def descriptor(media_type: str, body: bytes, **extra) -> dict:
    return dict(mediaType=media_type, digest=sha(body), size=len(body), **extra)


def image_manifest(seed: str, artifact_type: str | None = None, subject: dict | None = None) -> bytes:
    config = json.dumps({"architecture": "amd64", "os": "linux", "seed": seed}).encode()
    layer = seed.encode() * 10
    doc = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": descriptor(OCI_CONFIG, config),
        "layers": [descriptor("application/vnd.oci.image.layer.v1.tar+gzip", layer)],
    }
    if artifact_type:
        doc["artifactType"] = artifact_type
        doc["config"] = descriptor("application/vnd.oci.empty.v1+json", b"{}")
    if subject:
        doc["subject"] = subject
    return json.dumps(doc, sort_keys=True).encode()


def index_manifest(children: list[tuple[bytes, str, str, str | None]]) -> bytes:
    """children: (manifest bytes, os, architecture, variant)."""
    entries = []
    for body, os_name, arch, variant in children:
        platform = {"os": os_name, "architecture": arch}
        if variant:
            platform["variant"] = variant
        entries.append(descriptor(OCI_MANIFEST, body, platform=platform))
    return json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": entries}, sort_keys=True).encode()


def put(client, repo: str, body: bytes, tags=(), media_type: str | None = None) -> str:
    """PutImage with the exact digest (moto would invent one), once per tag (untagged when no tag)."""
    media_type = media_type or json.loads(body)["mediaType"]
    digest = sha(body)
    for tag in list(tags) or [None]:
        params = dict(repositoryName=repo, imageManifest=body.decode(), imageManifestMediaType=media_type)
        params["imageDigest"] = digest
        if tag:
            params["imageTag"] = tag
        client.put_image(**params)
    return digest


@pytest.fixture
def aws_env(monkeypatch):
    for name in list(os.environ):
        if name.startswith("AWS_"):
            monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)


@pytest.fixture
def moto_ecr(aws_env):  # noqa: D103 - one source client
    import boto3
    from moto import mock_aws

    with mock_aws():
        yield boto3.client("ecr", region_name=REGION)


@pytest.fixture
def oci():
    """The manifest builders above, for the tests of this folder (conftest modules are not importable)."""
    import types

    return types.SimpleNamespace(
        sha=sha,
        descriptor=descriptor,
        image_manifest=image_manifest,
        index_manifest=index_manifest,
        put=put,
        OCI_MANIFEST=OCI_MANIFEST,
        OCI_INDEX=OCI_INDEX,
        DOCKER_MANIFEST=DOCKER_MANIFEST,
        REGION=REGION,
        DEST_REGION=DEST_REGION,
    )


@pytest.fixture
def moto_pair(aws_env):
    """Source and destination ECR clients (moto, in-process): same account, two regions."""
    import boto3
    from moto import mock_aws

    with mock_aws():
        yield boto3.client("ecr", region_name=REGION), boto3.client("ecr", region_name=DEST_REGION)
