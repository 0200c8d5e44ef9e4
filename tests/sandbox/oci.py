# -*- coding: utf-8 -*-

# Copyright: Contributors to the cloudops.ecr_replication collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Build OCI / Docker schema2 images in plain Python, byte for byte reproducible.

No Docker daemon, no compression library whose output could change between versions:

- JSON documents (configs, manifests, indexes) are serialised with sorted keys and no whitespace,
  so the same input always gives the same bytes and therefore the same digest.
- Layers are tar archives with fixed metadata (mtime 0, uid/gid 0, mode 0644/0755, USTAR format).
- gzip layers use *stored* deflate blocks written here by hand (RFC 1951 section 3.2.4) with a fixed
  gzip header (mtime 0, OS 255). The output does not depend on the zlib build; only CRC32 is
  computed by zlib, and CRC32 is fully specified.
- File contents come from SHAKE-256 of a label, so "random" data is reproducible and needs no seed state.
"""

from __future__ import annotations

import hashlib
import io
import json
import struct
import tarfile
import zlib
from dataclasses import dataclass
from dataclasses import field
from functools import cached_property
from typing import Any
from typing import Iterable
from typing import Sequence

# Manifest media types
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
MANIFEST_MEDIA_TYPES = (OCI_MANIFEST, OCI_INDEX, DOCKER_MANIFEST, DOCKER_MANIFEST_LIST)
INDEX_MEDIA_TYPES = (OCI_INDEX, DOCKER_MANIFEST_LIST)

# Config and layer media types
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_EMPTY = "application/vnd.oci.empty.v1+json"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
OCI_LAYER_TAR = "application/vnd.oci.image.layer.v1.tar"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER_GZIP = "application/vnd.docker.image.rootfs.diff.tar.gzip"

# Every timestamp written into configs and annotations.
FIXED_CREATED = "2024-01-01T00:00:00Z"

_STORED_BLOCK_MAX = 0xFFFF
# gzip header: magic, CM=deflate, FLG=0, MTIME=0, XFL=0, OS=255 (unknown)
_GZIP_HEADER = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"


def canonical_json(obj: Any) -> bytes:
    """Serialise ``obj`` deterministically: sorted keys, no insignificant whitespace, UTF-8."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def sha256_digest(data: bytes) -> str:
    """Return the OCI digest string (``sha256:<hex>``) of ``data``."""
    return "sha256:" + hashlib.sha256(data).hexdigest()


def deterministic_bytes(label: str, size: int) -> bytes:
    """``size`` pseudo-random bytes derived only from ``label`` (SHAKE-256 XOF)."""
    if size <= 0:
        return b""
    return hashlib.shake_256(label.encode("utf-8")).digest(size)


def deterministic_text(label: str, size: int) -> bytes:
    """``size`` bytes of printable (hex) text derived only from ``label``; lines of 64 characters."""
    if size <= 0:
        return b""
    raw = hashlib.shake_256(label.encode("utf-8")).hexdigest((size + 1) // 2)[:size]
    lines = [raw[i : i + 63] for i in range(0, len(raw), 63)]
    return "\n".join(lines).encode("ascii")[:size]


def gzip_stored(data: bytes) -> bytes:
    """Wrap ``data`` in a gzip member made of stored (uncompressed) deflate blocks.

    Deterministic by construction and independent of the zlib version. Any gzip reader accepts it.
    """
    out = bytearray(_GZIP_HEADER)
    view = memoryview(data)
    total = len(data)
    offset = 0
    while True:
        chunk = view[offset : offset + _STORED_BLOCK_MAX]
        offset += len(chunk)
        final = 1 if offset >= total else 0
        length = len(chunk)
        out += struct.pack("<BHH", final, length, length ^ 0xFFFF)
        out += chunk
        if final:
            break
    out += struct.pack("<II", zlib.crc32(data) & 0xFFFFFFFF, total & 0xFFFFFFFF)
    return bytes(out)


def tar_archive(files: Iterable[tuple[str, bytes]], *, directories: Sequence[str] = ()) -> bytes:
    """A reproducible USTAR archive of ``files`` (path, content) plus ``directories``."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for name in directories:
            info = tarfile.TarInfo(name.rstrip("/"))
            info.type = tarfile.DIRTYPE
            info.mode = 0o755
            _fix_tarinfo(info)
            tar.addfile(info)
        for name, content in files:
            info = tarfile.TarInfo(name)
            info.size = len(content)
            info.mode = 0o755 if name.startswith(("bin/", "usr/bin/", "usr/local/bin/")) else 0o644
            _fix_tarinfo(info)
            tar.addfile(info, io.BytesIO(content))
    return buf.getvalue()


def _fix_tarinfo(info: tarfile.TarInfo) -> None:
    info.mtime = 0
    info.uid = info.gid = 0
    info.uname = info.gname = "root"


@dataclass(frozen=True)
class Blob:
    """Content-addressed data with the media type it is referenced by."""

    media_type: str
    data: bytes = field(repr=False)
    # For layers: the digest of the uncompressed tar (config rootfs.diff_ids); None for other blobs.
    diff_id: str | None = None

    @cached_property
    def digest(self) -> str:
        return sha256_digest(self.data)

    @property
    def size(self) -> int:
        return len(self.data)

    def descriptor(self, **extra: Any) -> dict[str, Any]:
        desc: dict[str, Any] = {"mediaType": self.media_type, "digest": self.digest, "size": self.size}
        desc.update({k: v for k, v in extra.items() if v is not None})
        return desc


def layer(
    files: Iterable[tuple[str, bytes]], *, media_type: str = OCI_LAYER_GZIP, directories: Sequence[str] = ()
) -> Blob:
    """A layer blob from files; compressed (stored gzip) unless ``media_type`` is an uncompressed tar."""
    tar = tar_archive(files, directories=directories)
    diff_id = sha256_digest(tar)
    if media_type.endswith("gzip"):
        return Blob(media_type, gzip_stored(tar), diff_id=diff_id)
    return Blob(media_type, tar, diff_id=diff_id)


def relabel_layer(blob: Blob, media_type: str) -> Blob:
    """The same bytes under another media type (e.g. OCI vs Docker gzip layer): the digest is unchanged."""
    return Blob(media_type, blob.data, diff_id=blob.diff_id)


def platform_dict(os_name: str, architecture: str, variant: str | None = None) -> dict[str, str]:
    plat = {"os": os_name, "architecture": architecture}
    if variant:
        plat["variant"] = variant
    return plat


def image_config(
    layers: Sequence[Blob],
    *,
    os_name: str = "linux",
    architecture: str = "amd64",
    variant: str | None = None,
    env: Sequence[str] = ("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",),
    cmd: Sequence[str] = ("/bin/sh",),
    labels: dict[str, str] | None = None,
    history: Sequence[str] = (),
    docker: bool = False,
) -> Blob:
    """An image config blob (OCI or Docker flavour) whose rootfs lists the layers' diff_ids."""
    diff_ids = [blob.diff_id or blob.digest for blob in layers]
    cfg: dict[str, Any] = {
        "architecture": architecture,
        "os": os_name,
        "created": FIXED_CREATED,
        "config": {"Env": list(env), "Cmd": list(cmd), "Labels": dict(labels or {})},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": [{"created": FIXED_CREATED, "created_by": h} for h in history],
    }
    if variant:
        cfg["variant"] = variant
    return Blob(DOCKER_CONFIG if docker else OCI_CONFIG, canonical_json(cfg))


def empty_config() -> Blob:
    """The OCI empty descriptor's blob (``{}``), used as config of artifacts."""
    return Blob(OCI_EMPTY, b"{}")


def image_manifest(
    config: Blob,
    layers: Sequence[Blob],
    *,
    media_type: str = OCI_MANIFEST,
    artifact_type: str | None = None,
    subject: dict[str, Any] | None = None,
    annotations: dict[str, str] | None = None,
    layer_annotations: Sequence[dict[str, str] | None] | None = None,
) -> bytes:
    """Manifest bytes (OCI image manifest or Docker schema2) for ``config`` and ``layers``."""
    if media_type not in (OCI_MANIFEST, DOCKER_MANIFEST):
        raise ValueError(f"not an image manifest media type: {media_type}")
    if media_type == DOCKER_MANIFEST and (artifact_type or subject or annotations):
        raise ValueError("Docker schema2 manifests carry no artifactType, subject or annotations")
    layer_annotations = layer_annotations or [None] * len(layers)
    doc: dict[str, Any] = {
        "schemaVersion": 2,
        "mediaType": media_type,
        "config": config.descriptor(),
        "layers": [blob.descriptor(annotations=ann) for blob, ann in zip(layers, layer_annotations)],
    }
    if artifact_type:
        doc["artifactType"] = artifact_type
    if subject:
        doc["subject"] = subject
    if annotations:
        doc["annotations"] = dict(annotations)
    return canonical_json(doc)


def manifest_descriptor(
    data: bytes, media_type: str, platform: dict[str, str] | None = None, **extra: Any
) -> dict[str, Any]:
    """Descriptor of a manifest document (for an index entry or a ``subject``)."""
    desc: dict[str, Any] = {"mediaType": media_type, "digest": sha256_digest(data), "size": len(data)}
    if platform:
        desc["platform"] = dict(platform)
    desc.update({k: v for k, v in extra.items() if v is not None})
    return desc


def image_index(
    children: Sequence[tuple[Any, ...]],
    *,
    media_type: str = OCI_INDEX,
    annotations: dict[str, str] | None = None,
) -> bytes:
    """An OCI image index or Docker manifest list over ``children``.

    Each child is (manifest bytes, media type, platform) or (..., platform, annotations).
    """
    if media_type not in INDEX_MEDIA_TYPES:
        raise ValueError(f"not an index media type: {media_type}")
    doc: dict[str, Any] = {
        "schemaVersion": 2,
        "mediaType": media_type,
        "manifests": [_index_entry(*child) for child in children],
    }
    if annotations:
        if media_type != OCI_INDEX:
            raise ValueError("Docker manifest lists carry no annotations")
        doc["annotations"] = dict(annotations)
    return canonical_json(doc)


def _index_entry(
    data: bytes, media_type: str, platform: dict[str, str] | None, annotations: dict[str, str] | None = None
) -> dict[str, Any]:
    return manifest_descriptor(data, media_type, platform, annotations=dict(annotations) if annotations else None)


IN_TOTO = "application/vnd.in-toto+json"


def attestation_manifest(statement: dict[str, Any]) -> tuple[bytes, Blob, Blob]:
    """A BuildKit-style attestation manifest (listed as platform unknown/unknown in an index).

    Returns (manifest bytes, config blob, in-toto layer blob). Its index entry carries
    ``attestation_annotations(<digest of the platform manifest it describes>)``.
    """
    layer_blob = Blob(IN_TOTO, canonical_json(statement))
    config = Blob(
        OCI_CONFIG,
        canonical_json(
            {
                "architecture": "unknown",
                "os": "unknown",
                "config": {},
                "rootfs": {"type": "layers", "diff_ids": [layer_blob.digest]},
            }
        ),
    )
    manifest = image_manifest(
        config,
        [layer_blob],
        layer_annotations=[{"in-toto.io/predicate-type": str(statement.get("predicateType", ""))}],
    )
    return manifest, config, layer_blob


def attestation_annotations(subject_digest: str) -> dict[str, str]:
    """Index-entry annotations BuildKit puts on an attestation manifest."""
    return {"vnd.docker.reference.digest": subject_digest, "vnd.docker.reference.type": "attestation-manifest"}
