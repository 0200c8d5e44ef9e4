# -*- coding: utf-8 -*-

# Copyright: Contributors to the cloudops.ecr_replication collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Deterministic seed catalog for the sandbox's source account.

``build_catalog(profile)`` is pure: no I/O, a fixed seed, and the same manifest bytes (so the same
digests) on every run and every machine (see ``tests/sandbox/oci.py`` for how bytes are made stable).
``push_catalog(...)`` creates the repositories through the ECR API and pushes blobs and manifests
through the OCI distribution HTTP API with a thread pool, uploading each distinct blob once and
cross-repository mounting it everywhere else.

Profiles
--------
``small``: 8 repositories (one empty), about 36 images, a few MB; what the tests use.
``large``: ``small`` plus generated repositories: >= 120 repositories, >= 1,100 images, a few tens of
MB of blobs (limit 300 MB), a repository with more than 100 images (DescribeImages' default page) and
an image with 150 tags; for pagination tests and benchmarks.

What the catalog contains (``small`` already has every kind):
shared base layers used by many images plus one small unique layer per image; OCI image manifests and
Docker schema2 manifests; multi-arch OCI indexes and a Docker manifest list (2-3 platforms) whose child
manifests are untagged; images with several tags; untagged images (pushed by digest only); an IMMUTABLE
repository; names with one and two slashes and without; scan-on-push on some repositories, KMS
encryption on one; the same image promoted into a second repository (same digests); an uncompressed
tar layer; a cosign-style signature (OCI image manifest with ``artifactType`` and ``subject``, pushed by
digest and tagged ``sha256-<hex>.sig``, the tag-schema fallback since distribution 2.8 has no referrers
API) on an image and on an index, and an SPDX SBOM referrer pushed by digest only (untagged).

The expected catalog (``Catalog.expected()``, also what ``push_catalog`` returns)::

    {"profile", "seed", "generator_version",
     "totals": {"repositories", "images", "tags", "blobs", "blob_bytes"},
     "repositories": [{"name", "image_tag_mutability", "scan_on_push", "encryption_type",
                       "resource_tags", "image_count"}],
     "images": [{"repository", "digest", "tags" (sorted), "media_type",
                 "kind": "image" | "index" | "index_child" | "referrer",
                 "artifact_type" (manifest artifactType or None),
                 "artifact_media_type" (ECR's artifactMediaType: the OCI "artifact type" of the manifest, i.e.
                                        artifactType when set, else the config media type; None for indexes),
                 "platform" (single-platform manifests: {"os","architecture"[,"variant"]}, else None),
                 "platforms" (indexes: list of child platforms, else None),
                 "children" (indexes: child digests, else None),
                 "index_child_of" (children: the index digest, else None),
                 "subject" (referrers: subject digest, else None),
                 "blobs" (config + layer digests, [] for indexes),
                 "size", "image_size_in_bytes"}]}

Size definitions:
``size`` = bytes of the manifest itself + its config blob + its layer blobs; for an index, the bytes of
the index + the ``size`` of each child. ``image_size_in_bytes`` = what ECR's DescribeImages reports per
its API reference: config + layers of an image; for a manifest list, the max over its manifests.
``push_catalog`` adds ``"seed_stats"`` (timings and request counts), the only key that varies per run.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import random
import sys
import threading
import time
import urllib.parse
from collections import defaultdict
from concurrent.futures import FIRST_EXCEPTION
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import wait
from dataclasses import dataclass
from dataclasses import field
from typing import Any
from typing import Callable
from typing import Iterable
from typing import Sequence

try:  # relative import when run as ``python -m tests.sandbox.seed`` or imported as a package
    from . import oci
except ImportError:  # pragma: no cover - imported as a top-level module
    import oci  # type: ignore[no-redef]

LOG = logging.getLogger(__name__)

SEED = 20240101
GENERATOR_VERSION = 1
PROFILES = ("small", "large")

AMD64 = ("linux", "amd64", None)
ARM64 = ("linux", "arm64", "v8")
ARMV7 = ("linux", "arm", "v7")

COSIGN_SIGNATURE_ARTIFACT = "application/vnd.dev.cosign.artifact.sig.v1+json"
COSIGN_SIMPLESIGNING = "application/vnd.dev.cosign.simplesigning.v1+json"
SPDX_JSON = "application/spdx+json"

KiB = 1024
MiB = 1024 * 1024

# Shared base images: name -> (parent, [(layer name, payload bytes)]). Layers are built per platform
# on first use, so one definition serves every image (and every profile) that uses it.
BASES: dict[str, tuple[str | None, list[tuple[str, int]]]] = {
    "debian-slim": (None, [("rootfs", 384 * KiB), ("ca-certificates", 64 * KiB)]),
    "alpine": (None, [("rootfs", 192 * KiB)]),
    "distroless": (None, [("rootfs", 128 * KiB), ("tzdata", 32 * KiB)]),
    "python": ("debian-slim", [("python3.12", 512 * KiB)]),
    "nodejs": ("debian-slim", [("node20", 384 * KiB)]),
    "jre": ("distroless", [("openjdk21", 768 * KiB)]),
    "ml-runtime": ("python", [("numpy-scipy", 8 * MiB)]),
}


class SeedError(Exception):
    """The catalog could not be built or pushed as specified."""


# --------------------------------------------------------------------------------------------------
# Catalog model


@dataclass(frozen=True)
class RepositorySpec:
    name: str
    image_tag_mutability: str = "MUTABLE"
    scan_on_push: bool = False
    encryption_type: str = "AES256"
    resource_tags: tuple[tuple[str, str], ...] = ()

    def create_kwargs(self) -> dict[str, Any]:
        """Arguments for ``ecr.create_repository``."""
        kwargs: dict[str, Any] = {
            "repositoryName": self.name,
            "imageTagMutability": self.image_tag_mutability,
            "imageScanningConfiguration": {"scanOnPush": self.scan_on_push},
            "encryptionConfiguration": {"encryptionType": self.encryption_type},
        }
        if self.resource_tags:
            kwargs["tags"] = [{"Key": k, "Value": v} for k, v in self.resource_tags]
        return kwargs


@dataclass
class ImageSpec:
    """One manifest in one repository (an ECR "image")."""

    repository: str
    manifest: bytes = field(repr=False)
    media_type: str
    kind: str  # image | index | index_child | referrer
    tags: list[str] = field(default_factory=list)
    blobs: tuple[str, ...] = ()  # config + layers, in manifest order
    children: tuple[str, ...] = ()
    platform: dict[str, str] | None = None
    platforms: list[dict[str, str]] | None = None
    artifact_type: str | None = None
    artifact_media_type: str | None = None
    subject: str | None = None
    index_child_of: str | None = None
    size: int = 0
    image_size_in_bytes: int = 0
    # Push order: 0 = no dependencies; an index or referrer is pushed after what it references.
    depth: int = 0
    by_digest: bool = False  # also PUT by digest before the tags (always when untagged)

    @property
    def digest(self) -> str:
        return oci.sha256_digest(self.manifest)

    def expected(self) -> dict[str, Any]:
        return {
            "repository": self.repository,
            "digest": self.digest,
            "tags": sorted(self.tags),
            "media_type": self.media_type,
            "kind": self.kind,
            "artifact_type": self.artifact_type,
            "artifact_media_type": self.artifact_media_type,
            "platform": self.platform,
            "platforms": self.platforms,
            "children": list(self.children) if self.kind == "index" else None,
            "index_child_of": self.index_child_of,
            "subject": self.subject,
            "blobs": list(self.blobs),
            "size": self.size,
            "image_size_in_bytes": self.image_size_in_bytes,
        }


@dataclass
class Catalog:
    profile: str
    repositories: list[RepositorySpec]
    images: list[ImageSpec]  # in push order within each repository
    blobs: dict[str, oci.Blob]  # digest -> blob (one entry per distinct content)

    def repository(self, name: str) -> RepositorySpec:
        for repo in self.repositories:
            if repo.name == name:
                return repo
        raise KeyError(name)

    def images_in(self, repository: str) -> list[ImageSpec]:
        return [img for img in self.images if img.repository == repository]

    def blob_bytes(self) -> int:
        return sum(blob.size for blob in self.blobs.values())

    def expected(self) -> dict[str, Any]:
        counts: dict[str, int] = defaultdict(int)
        for img in self.images:
            counts[img.repository] += 1
        return {
            "profile": self.profile,
            "seed": SEED,
            "generator_version": GENERATOR_VERSION,
            "totals": {
                "repositories": len(self.repositories),
                "images": len(self.images),
                "tags": sum(len(img.tags) for img in self.images),
                "blobs": len(self.blobs),
                "blob_bytes": self.blob_bytes(),
            },
            "repositories": [
                {
                    "name": repo.name,
                    "image_tag_mutability": repo.image_tag_mutability,
                    "scan_on_push": repo.scan_on_push,
                    "encryption_type": repo.encryption_type,
                    "resource_tags": dict(repo.resource_tags),
                    "image_count": counts[repo.name],
                }
                for repo in sorted(self.repositories, key=lambda r: r.name)
            ],
            "images": [img.expected() for img in sorted(self.images, key=lambda i: (i.repository, i.digest))],
        }

    def summary(self) -> dict[str, Any]:
        kinds: dict[str, int] = defaultdict(int)
        media: dict[str, int] = defaultdict(int)
        for img in self.images:
            kinds[img.kind] += 1
            media[img.media_type] += 1
        per_repo = [len(self.images_in(r.name)) for r in self.repositories]
        return {
            "profile": self.profile,
            "repositories": len(self.repositories),
            "immutable_repositories": sum(r.image_tag_mutability == "IMMUTABLE" for r in self.repositories),
            "images": len(self.images),
            "images_by_kind": dict(sorted(kinds.items())),
            "images_by_media_type": dict(sorted(media.items())),
            "untagged_images": sum(not img.tags for img in self.images),
            "tags": sum(len(img.tags) for img in self.images),
            "max_images_per_repository": max(per_repo, default=0),
            "max_tags_per_image": max((len(img.tags) for img in self.images), default=0),
            "blobs": len(self.blobs),
            "blob_bytes": self.blob_bytes(),
            "blob_references": sum(len(img.blobs) for img in self.images),
            "sum_of_image_sizes": sum(img.size for img in self.images if img.kind != "index_child"),
        }


# --------------------------------------------------------------------------------------------------
# Building


class _Builder:
    def __init__(self, profile: str) -> None:
        self.profile = profile
        self.rng = random.Random(SEED)
        self.repositories: list[RepositorySpec] = []
        self.images: list[ImageSpec] = []
        self.blobs: dict[str, oci.Blob] = {}
        self._base_layers: dict[tuple[str, tuple[str, str, str | None]], list[oci.Blob]] = {}
        self._keys: set[tuple[str, str]] = set()

    # -- primitives -------------------------------------------------------------------------------
    def repo(self, name: str, **kwargs: Any) -> str:
        if any(r.name == name for r in self.repositories):
            raise SeedError(f"duplicate repository {name}")
        self.repositories.append(RepositorySpec(name, **kwargs))
        return name

    def _blob(self, blob: oci.Blob) -> oci.Blob:
        self.blobs.setdefault(blob.digest, blob)
        return blob

    def _add(self, img: ImageSpec) -> ImageSpec:
        key = (img.repository, img.digest)
        if key in self._keys:
            raise SeedError(f"the same manifest twice in {img.repository}: {img.digest}")
        if not any(r.name == img.repository for r in self.repositories):
            raise SeedError(f"image for unknown repository {img.repository}")
        self._keys.add(key)
        img.by_digest = img.by_digest or not img.tags
        self.images.append(img)
        return img

    def base_layers(self, base: str, platform: tuple[str, str, str | None]) -> list[oci.Blob]:
        key = (base, platform)
        if key not in self._base_layers:
            parent, layers = BASES[base]
            blobs = list(self.base_layers(parent, platform)) if parent else []
            arch = "-".join(p for p in platform if p)
            for layer_name, payload in layers:
                label = f"seed{SEED}/base/{base}/{layer_name}/{arch}"
                files = [
                    (f"usr/share/{base}/{layer_name}.txt", f"{base} {layer_name} {arch}\n".encode()),
                    (f"usr/lib/{base}/{layer_name}.bin", oci.deterministic_bytes(label, payload)),
                ]
                if layer_name == "rootfs":
                    files.insert(0, ("etc/os-release", f'ID={base}\nVERSION_ID="1"\nARCH={arch}\n'.encode()))
                blobs.append(self._blob(oci.layer(files)))
            self._base_layers[key] = blobs
        return self._base_layers[key]

    def _single(
        self,
        app: str,
        version: str,
        *,
        base: str,
        platform: tuple[str, str, str | None] = AMD64,
        docker: bool = False,
        unique_size: int = 4 * KiB,
        uncompressed: bool = False,
    ) -> tuple[bytes, str, oci.Blob, list[oci.Blob]]:
        """Manifest bytes, media type, config and layers of one single-platform image."""
        os_name, arch, variant = platform
        plat_label = "-".join(p for p in platform if p)
        label = f"seed{SEED}/app/{app}/{version}/{plat_label}"
        unique_files = [
            (f"app/{app}/VERSION", f"{version}\n".encode()),
            (f"app/{app}/payload.txt", oci.deterministic_text(label, unique_size)),
        ]
        layer_type = oci.OCI_LAYER_TAR if uncompressed else oci.OCI_LAYER_GZIP
        unique = oci.layer(unique_files, media_type=layer_type, directories=("app", f"app/{app}"))
        layers = list(self.base_layers(base, platform)) + [unique]
        if docker:
            layers = [oci.relabel_layer(blob, oci.DOCKER_LAYER_GZIP) for blob in layers]
        for blob in layers:
            self._blob(blob)
        revision = oci.deterministic_bytes(label + "/revision", 20).hex()
        config = self._blob(
            oci.image_config(
                layers,
                os_name=os_name,
                architecture=arch,
                variant=variant,
                cmd=(f"/app/{app}/run",),
                labels={
                    "org.opencontainers.image.title": app,
                    "org.opencontainers.image.version": version,
                    "org.opencontainers.image.revision": revision,
                    "org.opencontainers.image.base.name": base,
                },
                history=(f"FROM {base}", f"COPY app/{app} /app/{app}"),
                docker=docker,
            )
        )
        media_type = oci.DOCKER_MANIFEST if docker else oci.OCI_MANIFEST
        return oci.image_manifest(config, layers, media_type=media_type), media_type, config, layers

    # -- images -----------------------------------------------------------------------------------
    def image(
        self,
        repository: str,
        app: str,
        version: str,
        tags: Sequence[str] = (),
        **kwargs: Any,
    ) -> ImageSpec:
        manifest, media_type, config, layers = self._single(app, version, **kwargs)
        platform = kwargs.get("platform", AMD64)
        content = config.size + sum(b.size for b in layers)
        return self._add(
            ImageSpec(
                repository=repository,
                manifest=manifest,
                media_type=media_type,
                kind="image",
                tags=list(tags),
                blobs=tuple([config.digest] + [b.digest for b in layers]),
                platform=oci.platform_dict(*platform),
                artifact_media_type=config.media_type,
                size=len(manifest) + content,
                image_size_in_bytes=content,
            )
        )

    def index(
        self,
        repository: str,
        app: str,
        version: str,
        tags: Sequence[str] = (),
        *,
        platforms: Sequence[tuple[str, str, str | None]] = (AMD64, ARM64),
        docker: bool = False,
        attest: Sequence[tuple[str, str, str | None]] = (),
        **kwargs: Any,
    ) -> ImageSpec:
        """A multi-platform index; ``attest``: platforms that get a BuildKit-style SBOM attestation
        manifest (an extra child with platform unknown/unknown, OCI indexes only)."""
        built = []
        for plat in platforms:
            manifest, media_type, config, layers = self._single(app, version, platform=plat, docker=docker, **kwargs)
            built.append((manifest, media_type, config, layers, plat, None))
        for plat in attest:
            if docker:
                raise SeedError("attestation manifests need an OCI index")
            subject = next(b for b in built if b[4] == plat)
            statement = {
                "_type": "https://in-toto.io/Statement/v0.1",
                "predicateType": "https://spdx.dev/Document",
                "subject": [
                    {"name": f"pkg:docker/{app}@{version}", "digest": {"sha256": oci.sha256_digest(subject[0])[7:]}}
                ],
                "predicate": {
                    "spdxVersion": "SPDX-2.3",
                    "name": f"{app}-{version}",
                    "creationInfo": {"created": oci.FIXED_CREATED},
                },
            }
            manifest, config, layer_blob = oci.attestation_manifest(statement)
            self._blob(config)
            self._blob(layer_blob)
            annotations = oci.attestation_annotations(oci.sha256_digest(subject[0]))
            built.append((manifest, oci.OCI_MANIFEST, config, [layer_blob], ("unknown", "unknown", None), annotations))
        index_type = oci.DOCKER_MANIFEST_LIST if docker else oci.OCI_INDEX
        index_bytes = oci.image_index(
            [(b[0], b[1], oci.platform_dict(*b[4]), b[5]) for b in built], media_type=index_type
        )
        index_digest = oci.sha256_digest(index_bytes)
        children = []
        for manifest, media_type, config, layers, plat, _annotations in built:
            content = config.size + sum(b.size for b in layers)
            children.append(
                self._add(
                    ImageSpec(
                        repository=repository,
                        manifest=manifest,
                        media_type=media_type,
                        kind="index_child",
                        blobs=tuple([config.digest] + [b.digest for b in layers]),
                        platform=oci.platform_dict(*plat),
                        artifact_media_type=config.media_type,
                        index_child_of=index_digest,
                        size=len(manifest) + content,
                        image_size_in_bytes=content,
                    )
                )
            )
        return self._add(
            ImageSpec(
                repository=repository,
                manifest=index_bytes,
                media_type=index_type,
                kind="index",
                tags=list(tags),
                children=tuple(c.digest for c in children),
                platforms=[oci.platform_dict(*b[4]) for b in built],
                size=len(index_bytes) + sum(c.size for c in children),
                image_size_in_bytes=max(c.image_size_in_bytes for c in children),
                depth=1,
            )
        )

    def _referrer(
        self,
        repository: str,
        subject: ImageSpec,
        artifact_type: str,
        layer: oci.Blob,
        layer_annotations: dict[str, str] | None,
        tags: Sequence[str],
    ) -> ImageSpec:
        config = self._blob(oci.empty_config())
        self._blob(layer)
        manifest = oci.image_manifest(
            config,
            [layer],
            artifact_type=artifact_type,
            subject=oci.manifest_descriptor(subject.manifest, subject.media_type),
            annotations={"org.opencontainers.image.created": oci.FIXED_CREATED},
            layer_annotations=[layer_annotations],
        )
        content = config.size + layer.size
        return self._add(
            ImageSpec(
                repository=repository,
                manifest=manifest,
                media_type=oci.OCI_MANIFEST,
                kind="referrer",
                tags=list(tags),
                blobs=(config.digest, layer.digest),
                artifact_type=artifact_type,
                artifact_media_type=artifact_type,
                subject=subject.digest,
                size=len(manifest) + content,
                image_size_in_bytes=content,
                depth=subject.depth + 1,
                by_digest=True,
            )
        )

    def signature(self, repository: str, subject: ImageSpec, *, tagged: bool = True) -> ImageSpec:
        """A cosign-style signature of ``subject``, tagged ``sha256-<hex>.sig`` (tag-schema fallback)."""
        payload = oci.canonical_json(
            {
                "critical": {
                    "identity": {"docker-reference": subject.repository},
                    "image": {"docker-manifest-digest": subject.digest},
                    "type": "cosign container image signature",
                },
                "optional": {"creator": "cloudops.ecr_replication sandbox seed"},
            }
        )
        sig = oci.deterministic_bytes(f"seed{SEED}/sig/{subject.digest}", 72)
        annotations = {"dev.cosignproject.cosign/signature": _b64(sig)}
        tags = [subject.digest.replace("sha256:", "sha256-") + ".sig"] if tagged else []
        layer = oci.Blob(COSIGN_SIMPLESIGNING, payload)
        return self._referrer(repository, subject, COSIGN_SIGNATURE_ARTIFACT, layer, annotations, tags)

    def sbom(self, repository: str, subject: ImageSpec, *, tagged: bool = False) -> ImageSpec:
        """An SPDX SBOM referrer of ``subject``; untagged unless asked (then ``sha256-<hex>.sbom``)."""
        doc = {
            "spdxVersion": "SPDX-2.3",
            "dataLicense": "CC0-1.0",
            "SPDXID": "SPDXRef-DOCUMENT",
            "name": f"{subject.repository}@{subject.digest}",
            "documentNamespace": f"https://sandbox.invalid/spdx/{subject.digest}",
            "creationInfo": {"created": oci.FIXED_CREATED, "creators": ["Tool: cloudops-sandbox-seed"]},
            "packages": [
                {"SPDXID": "SPDXRef-Package-app", "name": subject.repository, "downloadLocation": "NOASSERTION"}
            ],
        }
        tags = [subject.digest.replace("sha256:", "sha256-") + ".sbom"] if tagged else []
        return self._referrer(repository, subject, SPDX_JSON, oci.Blob(SPDX_JSON, oci.canonical_json(doc)), None, tags)

    def promote(self, source: ImageSpec, repository: str, tags: Sequence[str]) -> ImageSpec:
        """The same manifest (same digest, same blobs) in another repository with other tags."""
        if source.kind not in ("image", "referrer"):
            raise SeedError("only single manifests are promoted")
        clone = ImageSpec(
            repository=repository,
            manifest=source.manifest,
            media_type=source.media_type,
            kind=source.kind,
            tags=list(tags),
            blobs=source.blobs,
            platform=source.platform,
            artifact_type=source.artifact_type,
            artifact_media_type=source.artifact_media_type,
            subject=source.subject,
            size=source.size,
            image_size_in_bytes=source.image_size_in_bytes,
            depth=source.depth,
            by_digest=source.by_digest,
        )
        return self._add(clone)

    def catalog(self) -> Catalog:
        return Catalog(self.profile, list(self.repositories), list(self.images), dict(self.blobs))


def _b64(data: bytes) -> str:
    import base64

    return base64.b64encode(data).decode("ascii")


def _small(b: _Builder) -> None:
    """The hand-written part, present in every profile."""
    # OCI single-arch images with semver tags, untagged dev builds, a signature and an SBOM.
    api = b.repo("team-a/api", scan_on_push=True, resource_tags=(("team", "a"),))
    b.image(api, "api", "1.0.0", ["1.0.0", "1.0"], base="python")
    b.image(api, "api", "1.1.0", ["1.1.0", "1.1"], base="python")
    api_122 = b.image(api, "api", "1.2.2", ["1.2.2"], base="python")
    api_123 = b.image(api, "api", "1.2.3", ["1.2.3", "1.2", "1", "latest"], base="python")
    b.image(api, "api", "1.3.0-dev.1", [], base="python")
    b.image(api, "api", "1.3.0-dev.2", [], base="python")
    api_sig = b.signature(api, api_123)
    b.sbom(api, api_123)

    # Docker schema2 images, one with many tags, one untagged; KMS encryption.
    worker = b.repo("team-a/worker", encryption_type="KMS", resource_tags=(("team", "a"),))
    b.image(worker, "worker", "2.0.0", ["2.0.0", "2.0"], base="debian-slim", docker=True)
    many = ["2.1.0", "2.1", "2", "latest", "stable", "prod", "git-3f9c2a1", "build-142"]
    b.image(worker, "worker", "2.1.0", many, base="debian-slim", docker=True)
    b.image(worker, "worker", "2.1.1-rc.1", [], base="debian-slim", docker=True)

    # Multi-arch OCI indexes (2 and 3 platforms), the newest one signed (signature of the index).
    web = b.repo("team-b/web", scan_on_push=True, resource_tags=(("team", "b"),))
    b.index(web, "web", "3.3.0", ["3.3.0"], base="nodejs", platforms=(AMD64, ARM64, ARMV7))
    web_340 = b.index(web, "web", "3.4.0", ["3.4.0", "3.4", "latest"], base="nodejs")
    b.signature(web, web_340)
    # BuildKit-style: an SBOM attestation manifest (platform unknown/unknown) beside the amd64 image.
    b.index(web, "web", "3.5.0-rc.1", ["3.5.0-rc.1"], base="nodejs", attest=(AMD64,))

    # The IMMUTABLE repository: Docker manifest lists and an OCI image, each tag used once.
    base = b.repo("platform/base", image_tag_mutability="IMMUTABLE", scan_on_push=True)
    b.index(base, "debian-slim", "2024.01", ["2024.01", "bookworm-20240101"], base="debian-slim", docker=True)
    b.index(base, "alpine", "3.19.0", ["3.19.0"], base="alpine", docker=True)
    b.image(base, "distroless", "nonroot-1", ["nonroot-1"], base="distroless")

    # An uncompressed tar layer, an arm64-only image, untagged builds.
    cli = b.repo("tools/cli")
    b.image(cli, "cli", "0.9.0", ["0.9.0"], base="alpine", uncompressed=True)
    b.image(cli, "cli", "0.9.1", ["0.9.1", "latest"], base="alpine", uncompressed=True)
    b.image(cli, "cli", "0.9.1", ["0.9.1-arm64"], base="alpine", platform=ARM64, uncompressed=True)
    b.image(cli, "cli", "0.9.2-nightly.1", [], base="alpine")
    b.image(cli, "cli", "0.9.2-nightly.2", [], base="alpine")

    # No slash in the name; Docker schema2 on the JRE base.
    legacy = b.repo("legacy-app")
    b.image(legacy, "legacy-app", "4.9.9", ["4.9.9"], base="jre", docker=True)
    b.image(legacy, "legacy-app", "5.0.0", ["5.0.0", "latest"], base="jre", docker=True)

    # Two slashes; the same manifests as team-a/api (promotion), including the signature.
    prod = b.repo("prod/team-a/api", scan_on_push=True, resource_tags=(("team", "a"), ("env", "prod")))
    b.promote(api_122, prod, ["1.2.2"])
    b.promote(api_123, prod, ["1.2.3", "prod"])
    b.promote(api_sig, prod, api_sig.tags)

    # A repository without images.
    b.repo("sandbox/empty")


_TEAMS = ("payments", "search", "identity", "data", "mobile", "infra", "ml", "growth")
_SERVICES = ("gateway", "worker", "scheduler", "indexer", "frontend", "exporter", "sync", "auth", "cache", "reports")


def _large(b: _Builder) -> None:
    """Generated repositories on top of ``small``: counts for pagination, sizes for benchmarks."""
    rng = b.rng
    bases = ("alpine", "distroless", "debian-slim", "python", "nodejs", "jre")
    for n in range(120):
        team = _TEAMS[n % len(_TEAMS)]
        name = f"{team}/{_SERVICES[(n // len(_TEAMS)) % len(_SERVICES)]}-{n:03d}"
        repo = b.repo(
            name,
            image_tag_mutability="IMMUTABLE" if n % 10 == 7 else "MUTABLE",
            scan_on_push=n % 3 == 0,
            encryption_type="KMS" if n % 11 == 5 else "AES256",
            resource_tags=(("team", team),),
        )
        app = name.rsplit("/", 1)[1]
        base = "ml-runtime" if team == "ml" and n % 4 == 0 else rng.choice(bases)
        docker = rng.random() < 0.2
        releases = rng.randint(5, 9)
        for r in range(releases):
            version = f"{1 + r // 4}.{r % 4}.0"
            tags = [version]
            if r == releases - 1:
                tags += [f"{1 + r // 4}.{r % 4}", "latest"]
            if rng.random() < 0.15:
                tags = []  # superseded build kept by digest only
            b.image(repo, app, version, tags, base=base, docker=docker, unique_size=_unique_size(rng))
        if n % 6 == 0:
            b.index(repo, app, "multiarch", ["multiarch"], base=base, docker=docker, unique_size=2 * KiB)
        if n % 15 == 0:
            b.signature(repo, b.images[-1])

    # More images than DescribeImages' default page (100) in one repository: nightly builds.
    nightly = b.repo("bulk/nightly", resource_tags=(("team", "infra"),))
    for day in range(260):
        version = f"0.0.0-nightly.{day:03d}"
        tags = [f"nightly-{day:03d}"] if day % 2 == 0 else []
        b.image(nightly, "nightly", version, tags, base="alpine", unique_size=512)

    # One image with 150 tags (ListImages returns one entry per tag).
    tagged = b.repo("bulk/many-tags")
    b.image(tagged, "many-tags", "1.0.0", [f"build-{i:04d}" for i in range(150)], base="alpine")


def _unique_size(rng: random.Random) -> int:
    roll = rng.random()
    if roll < 0.80:
        return rng.randint(1, 8) * KiB
    if roll < 0.98:
        return rng.randint(16, 128) * KiB
    return rng.randint(1, 4) * MiB


def build_catalog(profile: str) -> Catalog:
    """The catalog of ``profile`` ("small" or "large"); pure and deterministic."""
    if profile not in PROFILES:
        raise SeedError(f"unknown profile {profile!r}; expected one of {', '.join(PROFILES)}")
    builder = _Builder(profile)
    _small(builder)
    if profile == "large":
        _large(builder)
    return builder.catalog()


# --------------------------------------------------------------------------------------------------
# Registry client


class RegistryError(Exception):
    """An unexpected answer of the registry (never includes credentials)."""

    def __init__(self, message: str, status: int | None = None, transient: bool = False) -> None:
        super().__init__(message)
        self.status = status
        self.transient = transient


class RegistryClient:
    """A minimal OCI distribution client over ``requests`` (HTTP Basic auth, thread-safe)."""

    def __init__(
        self,
        base_url: str,
        username: str | None = None,
        password: str | None = None,
        *,
        timeout: float = 60.0,
        pool_size: int = 16,
        verify: bool | str | None = None,
    ) -> None:
        """``verify``: TLS verification as in requests (True, False or a CA bundle path); by default
        ``REQUESTS_CA_BUNDLE`` / ``CURL_CA_BUNDLE`` when set, else the system trust store.
        Proxy variables of the environment are ignored: the registry is on loopback."""
        self.base_url = base_url.rstrip("/")
        if verify is None:
            verify = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or True
        self.verify = verify
        self._auth = (username, password) if username is not None else None
        self.timeout = timeout
        self.pool_size = pool_size
        self._local = threading.local()

    def __repr__(self) -> str:  # never show the password
        return f"RegistryClient({self.base_url!r}, username={self._auth[0] if self._auth else None!r})"

    def _session(self) -> Any:
        session = getattr(self._local, "session", None)
        if session is None:
            import requests
            from requests.adapters import HTTPAdapter

            session = requests.Session()
            session.trust_env = False  # never route loopback through a proxy from the environment
            session.verify = self.verify  # the sandbox CA bundle when configured (see __init__)
            adapter = HTTPAdapter(pool_connections=4, pool_maxsize=self.pool_size)
            session.mount("http://", adapter)
            session.mount("https://", adapter)
            if self._auth:
                session.auth = self._auth
            self._local.session = session
        return session

    def _url(self, path_or_location: str) -> str:
        # Locations from the registry may be absolute URLs naming the backend host; keep our base URL
        # (the auth proxy) and take only path and query from them.
        parts = urllib.parse.urlsplit(path_or_location)
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        return self.base_url + path

    def _request(self, method: str, path: str, *, ok: Iterable[int], **kwargs: Any) -> Any:
        import requests

        url = self._url(path)
        try:
            resp = self._session().request(method, url, timeout=self.timeout, **kwargs)
        except requests.RequestException as exc:
            raise RegistryError(
                f"{method} {urllib.parse.urlsplit(url).path}: {exc.__class__.__name__}: {exc}", transient=True
            ) from exc
        if resp.status_code not in set(ok):
            body = resp.text[:500] if resp.content else ""
            raise RegistryError(
                f"{method} {urllib.parse.urlsplit(url).path} -> HTTP {resp.status_code}: {body}",
                status=resp.status_code,
                transient=resp.status_code >= 500 or resp.status_code == 429,
            )
        return resp

    def ping(self) -> bool:
        """True when ``/v2/`` answers 200 (credentials accepted)."""
        try:
            self._request("GET", "/v2/", ok=(200,))
        except RegistryError:
            return False
        return True

    def blob_exists(self, repo: str, digest: str) -> bool:
        resp = self._request("HEAD", f"/v2/{repo}/blobs/{digest}", ok=(200, 404))
        return resp.status_code == 200

    def get_blob(self, repo: str, digest: str) -> bytes:
        return self._request("GET", f"/v2/{repo}/blobs/{digest}", ok=(200,)).content

    def push_blob(self, repo: str, digest: str, data: bytes, mount_from: str | None = None) -> str:
        """Store ``data`` as ``digest`` in ``repo``; returns "mounted" or "uploaded".

        With ``mount_from`` a cross-repository mount is tried first; when the registry declines it
        (202 with an upload session) the data is uploaded into that session instead.
        Uploads are monolithic: POST to open the session, one PUT with the whole body and the digest.
        """
        if mount_from and mount_from != repo:
            query = urllib.parse.urlencode({"mount": digest, "from": mount_from})
            resp = self._request("POST", f"/v2/{repo}/blobs/uploads/?{query}", ok=(201, 202))
            if resp.status_code == 201:
                return "mounted"
        else:
            resp = self._request("POST", f"/v2/{repo}/blobs/uploads/", ok=(202,))
        location = resp.headers.get("Location")
        if not location:
            raise RegistryError(f"POST /v2/{repo}/blobs/uploads/ returned no Location header")
        sep = "&" if "?" in location else "?"
        put = self._request(
            "PUT",
            f"{location}{sep}{urllib.parse.urlencode({'digest': digest})}",
            ok=(201,),
            data=data,
            headers={"Content-Type": "application/octet-stream", "Content-Length": str(len(data))},
        )
        got = put.headers.get("Docker-Content-Digest")
        if got and got != digest:
            raise RegistryError(f"blob pushed as {digest} but the registry stored {got} in {repo}")
        return "uploaded"

    def put_manifest(self, repo: str, reference: str, data: bytes, media_type: str) -> str:
        """PUT a manifest by tag or digest; returns the Docker-Content-Digest the registry answered."""
        resp = self._request(
            "PUT", f"/v2/{repo}/manifests/{reference}", ok=(201,), data=data, headers={"Content-Type": media_type}
        )
        digest = resp.headers.get("Docker-Content-Digest")
        if not digest:
            raise RegistryError(f"PUT /v2/{repo}/manifests/{reference} returned no Docker-Content-Digest")
        return digest

    def get_manifest(
        self, repo: str, reference: str, accept: Sequence[str] = oci.MANIFEST_MEDIA_TYPES
    ) -> tuple[bytes, str]:
        """The exact manifest bytes and their media type (Content-Type)."""
        resp = self._request(
            "GET", f"/v2/{repo}/manifests/{reference}", ok=(200,), headers={"Accept": ", ".join(accept)}
        )
        return resp.content, resp.headers.get("Content-Type", "").split(";")[0].strip()

    def manifest_digest(
        self, repo: str, reference: str, accept: Sequence[str] = oci.MANIFEST_MEDIA_TYPES
    ) -> str | None:
        """Docker-Content-Digest of ``reference`` (HEAD), or None when it does not exist."""
        resp = self._request(
            "HEAD", f"/v2/{repo}/manifests/{reference}", ok=(200, 404), headers={"Accept": ", ".join(accept)}
        )
        return resp.headers.get("Docker-Content-Digest") if resp.status_code == 200 else None

    def list_tags(self, repo: str) -> list[str]:
        """All tags of ``repo`` (following ``Link`` pagination)."""
        tags: list[str] = []
        path: str | None = f"/v2/{repo}/tags/list?n=1000"
        while path:
            resp = self._request("GET", path, ok=(200,))
            tags.extend(resp.json().get("tags") or [])
            path = resp.links.get("next", {}).get("url")
        return tags


# --------------------------------------------------------------------------------------------------
# Pushing


def _retry(fn: Callable[[], Any], attempts: int = 3) -> Any:
    for attempt in range(1, attempts + 1):
        try:
            return fn()
        except RegistryError as exc:
            if not exc.transient or attempt == attempts:
                raise
            time.sleep(0.2 * attempt)
    raise AssertionError("unreachable")


def _run_parallel(pool: ThreadPoolExecutor, tasks: list[tuple[str, Callable[[], Any]]]) -> list[Any]:
    """Run (label, fn) tasks; on the first failure cancel the rest and raise SeedError naming the task."""
    futures = {pool.submit(_retry, fn): label for label, fn in tasks}
    done, pending = wait(futures, return_when=FIRST_EXCEPTION)
    for fut in done:
        exc = fut.exception()
        if exc is not None:
            for other in pending:
                other.cancel()
            raise SeedError(f"{futures[fut]}: {exc}") from exc
    return [fut.result() for fut in futures]


def _create_repository(ecr_client: Any, repo: RepositorySpec) -> str:
    try:
        ecr_client.create_repository(**repo.create_kwargs())
        return "created"
    except Exception as exc:  # botocore is optional for pure builds; match by error code
        code = getattr(exc, "response", {}).get("Error", {}).get("Code")
        if code == "RepositoryAlreadyExistsException":
            return "exists"
        raise SeedError(f"create_repository {repo.name}: {exc}") from exc


def push_catalog(catalog: Catalog, ecr_client: Any, registry: RegistryClient, *, workers: int = 4) -> dict[str, Any]:
    """Create the repositories (ECR API) and push every blob and manifest (registry API).

    Each distinct blob is uploaded once (HEAD first when the repository already existed, so re-seeding
    skips what is there) into the first repository that uses it, then cross-repository mounted into
    every other repository that needs it.
    Manifests are pushed in dependency order (children before their index, subjects before referrers),
    each by digest when untagged or a referrer, then under every tag; the digest the registry answers
    must equal the digest of the bytes we sent. Returns ``catalog.expected()`` plus ``"seed_stats"``.
    Repositories that already exist are reused (re-seeding is idempotent on a MUTABLE repository).
    """
    started = time.monotonic()
    stats: dict[str, Any] = defaultdict(int)
    lock = threading.Lock()

    def count(key: str) -> None:
        with lock:
            stats[key] += 1

    existed: set[str] = set()
    for repo in catalog.repositories:
        outcome = _create_repository(ecr_client, repo)
        count(f"repositories_{outcome}")
        if outcome == "exists":
            existed.add(repo.name)
    stats["seconds_repositories"] = round(time.monotonic() - started, 3)

    home: dict[str, str] = {}
    needs: dict[str, list[str]] = defaultdict(list)
    for img in catalog.images:
        for digest in img.blobs:
            home.setdefault(digest, img.repository)
            if digest not in needs[img.repository]:
                needs[img.repository].append(digest)

    def upload(repo: str, digest: str) -> None:
        # A repository the ECR API did not have yet holds nothing worth a HEAD request.
        if repo in existed and registry.blob_exists(repo, digest):
            count("blobs_present")
            return
        registry.push_blob(repo, digest, catalog.blobs[digest].data)
        count("blobs_uploaded")

    def mount(repo: str, digest: str) -> None:
        result = registry.push_blob(repo, digest, catalog.blobs[digest].data, mount_from=home[digest])
        count(f"blobs_{result}")

    def push_image(img: ImageSpec) -> None:
        refs = ([img.digest] if img.by_digest else []) + list(img.tags)
        for ref in refs:
            got = registry.put_manifest(img.repository, ref, img.manifest, img.media_type)
            count("manifest_puts")
            if got != img.digest:
                raise SeedError(f"{img.repository}:{ref}: registry answered digest {got}, expected {img.digest}")

    with ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="seed") as pool:
        t0 = time.monotonic()
        _run_parallel(pool, [(f"upload {d} to {r}", _bind(upload, r, d)) for d, r in home.items()])
        stats["seconds_uploads"] = round(time.monotonic() - t0, 3)

        t0 = time.monotonic()
        mounts = [(r, d) for r, digests in needs.items() for d in digests if home[d] != r]
        _run_parallel(pool, [(f"mount {d} into {r} from {home[d]}", _bind(mount, r, d)) for r, d in mounts])
        stats["seconds_mounts"] = round(time.monotonic() - t0, 3)

        t0 = time.monotonic()
        for depth in sorted({img.depth for img in catalog.images}):
            wave = [img for img in catalog.images if img.depth == depth]
            _run_parallel(pool, [(f"manifest {i.repository}@{i.digest}", _bind(push_image, i)) for i in wave])
        stats["seconds_manifests"] = round(time.monotonic() - t0, 3)

    stats["seconds_total"] = round(time.monotonic() - started, 3)
    stats["workers"] = workers
    result = catalog.expected()
    result["seed_stats"] = dict(stats)
    LOG.info("seeded profile %s: %s", catalog.profile, json.dumps(result["seed_stats"], sort_keys=True))
    return result


def _bind(fn: Callable[..., Any], *args: Any) -> Callable[[], Any]:
    return lambda: fn(*args)


# --------------------------------------------------------------------------------------------------
# CLI


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tests.sandbox.seed",
        description="Build (and optionally push) the sandbox's deterministic seed catalog.",
    )
    parser.add_argument("--profile", choices=PROFILES, default="small")
    what = parser.add_mutually_exclusive_group()
    what.add_argument("--print", action="store_true", help="print a summary (counts, bytes); push nothing")
    what.add_argument("--json", action="store_true", help="print the expected catalog as JSON; push nothing")
    what.add_argument(
        "--push",
        metavar="REGISTRY_URL",
        help="push to this registry (e.g. http://127.0.0.1:45001); the ECR API comes from the usual AWS_* "
        "variables; registry credentials from SEED_REGISTRY_USERNAME / SEED_REGISTRY_PASSWORD",
    )
    parser.add_argument("--workers", type=int, default=8)
    args = parser.parse_args(argv)

    t0 = time.monotonic()
    catalog = build_catalog(args.profile)
    build_seconds = round(time.monotonic() - t0, 3)

    if args.json:
        json.dump(catalog.expected(), sys.stdout, indent=2, sort_keys=True)
        sys.stdout.write("\n")
        return 0
    if args.push:
        import boto3

        logging.basicConfig(level=logging.INFO, format="%(message)s")
        registry = RegistryClient(
            args.push, os.environ.get("SEED_REGISTRY_USERNAME"), os.environ.get("SEED_REGISTRY_PASSWORD")
        )
        try:
            result = push_catalog(catalog, boto3.client("ecr"), registry, workers=args.workers)
        except SeedError as exc:
            print(f"seeding failed: {exc}", file=sys.stderr)
            return 1
        print(json.dumps({"totals": result["totals"], "seed_stats": result["seed_stats"]}, indent=2, sort_keys=True))
        return 0
    summary = catalog.summary()
    summary["build_seconds"] = build_seconds
    width = max(len(k) for k in summary)
    for key, value in summary.items():
        if key.endswith("bytes") or key == "sum_of_image_sizes":
            value = f"{value} ({value / MiB:.1f} MiB)"
        print(f"{key.ljust(width)}  {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
