# -*- coding: utf-8 -*-

# Copyright: Contributors to the Ansible project
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Batches of images for ``buildspec.yml``: normalising the input, splitting it into builds, the compact
environment encoding that respects CodeBuild's 4,096-character limit per variable value, and the plan
(builds, estimated CodeBuild minutes and cost).

Batch encoding (version ``z1``), read by ``buildspec.yml``::

    payload = {"v": 1, "r": [repository, ...], "i": [[repository index, digest, [tag, ...]], ...],
               "m": {blob digest: repository index, ...}}   # optional: where to mount a blob from
    text    = "z1:" + base64(zlib.compress(json.dumps(payload, separators=(",", ":"))))
    REPL_BATCH_PARTS = "N"; REPL_BATCH_1 .. REPL_BATCH_N = text cut into pieces of at most 4,000 characters

To read a batch by hand: join the parts in order, drop ``z1:``, then base64-decode and zlib-decompress.
Each image costs about 60-70 encoded characters plus its tags, so the default 50 images fit in one or two
variables; ``build_batches`` also closes a batch before it needs more than ``MAX_PARTS`` variables.
"""

from __future__ import annotations

import math
import re
from typing import Any
from typing import Dict
from typing import Iterable
from typing import List
from typing import Optional

from ansible_collections.cloudops.ecr_replication.plugins.module_utils.image_catalog import needs_copy
from ansible_collections.cloudops.ecr_replication.plugins.module_utils.registry import DIGEST_RE
from ansible_collections.cloudops.ecr_replication.plugins.module_utils.registry import REPOSITORY_RE
from ansible_collections.cloudops.ecr_replication.plugins.module_utils.registry import TAG_RE
from ansible_collections.cloudops.ecr_replication.plugins.module_utils.validation import OptionError

# bundle:start batching
import base64
import binascii
import json
import zlib

CODEBUILD_ENV_VALUE_LIMIT = 4096
CHUNK_CHARS = 4000
MAX_PARTS = 20
BATCH_PARTS_VAR = "REPL_BATCH_PARTS"
BATCH_PART_PREFIX = "REPL_BATCH_"
ENCODING_PREFIX = "z1:"


class BatchEncodingError(ValueError):
    """A batch that cannot be encoded or decoded."""


def encode_batch(images):
    """Encode [{"repository", "digest", "tags"}] as the compact ``z1`` text (see the module docstring). The
    images' ``mounts`` ({blob digest: destination repository}, from ``share_blobs``) are merged into ``m``."""
    repos = []
    index = {}
    rows = []
    mounts = {}

    def number(repo):
        if repo not in index:
            index[repo] = len(repos)
            repos.append(repo)
        return index[repo]

    for image in images:
        rows.append([number(image["repository"]), image["digest"], list(image.get("tags") or [])])
    for image in images:
        for blob, repo in sorted((image.get("mounts") or {}).items()):
            mounts[blob] = number(repo)
    payload = {"v": 1, "r": repos, "i": rows}
    if mounts:
        payload["m"] = mounts
    raw = json.dumps(payload, separators=(",", ":"), sort_keys=True).encode("utf-8")
    return ENCODING_PREFIX + base64.b64encode(zlib.compress(raw, 9)).decode("ascii")


def decode_batch(text, mounts=None):
    """The inverse of ``encode_batch``: a list of {"repository", "digest", "tags"} in the original order; the
    mount hints go into the dict ``mounts`` when one is given."""
    if not isinstance(text, str) or not text.startswith(ENCODING_PREFIX):
        raise BatchEncodingError("batch encoding must start with %r" % ENCODING_PREFIX)
    try:
        raw = zlib.decompress(base64.b64decode(text[len(ENCODING_PREFIX) :], validate=True))
        payload = json.loads(raw.decode("utf-8"))
        repos = payload["r"]
        if payload.get("v") != 1:
            raise BatchEncodingError("unknown batch payload version %r" % payload.get("v"))
        if mounts is not None:
            mounts.update((blob, repos[r]) for blob, r in (payload.get("m") or {}).items())
        return [{"repository": repos[r], "digest": d, "tags": list(t)} for r, d, t in payload["i"]]
    except BatchEncodingError:
        raise
    except (binascii.Error, zlib.error, ValueError, KeyError, IndexError, TypeError) as e:
        raise BatchEncodingError("batch encoding is damaged: %s" % e) from None


def split_env(text, chunk=CHUNK_CHARS):
    """{"REPL_BATCH_PARTS": "N", "REPL_BATCH_1": ..., ...} with every value within CodeBuild's limit."""
    if chunk > CODEBUILD_ENV_VALUE_LIMIT:
        raise BatchEncodingError("chunk size %d exceeds %d" % (chunk, CODEBUILD_ENV_VALUE_LIMIT))
    parts = [text[i : i + chunk] for i in range(0, len(text), chunk)] or [""]
    env = {BATCH_PARTS_VAR: str(len(parts))}
    for n, part in enumerate(parts, 1):
        env["%s%d" % (BATCH_PART_PREFIX, n)] = part
    return env


def join_env(env):
    """Reassemble the encoded text from the variables written by ``split_env``."""
    try:
        count = int(env.get(BATCH_PARTS_VAR, ""))
    except ValueError:
        raise BatchEncodingError("%s is missing or not a number" % BATCH_PARTS_VAR) from None
    if count < 1:
        raise BatchEncodingError("%s must be >= 1" % BATCH_PARTS_VAR)
    missing = ["%s%d" % (BATCH_PART_PREFIX, n) for n in range(1, count + 1) if "%s%d" % (BATCH_PART_PREFIX, n) not in env]
    if missing:
        raise BatchEncodingError("batch variables missing: %s" % ", ".join(missing))
    return "".join(env["%s%d" % (BATCH_PART_PREFIX, n)] for n in range(1, count + 1))


# bundle:end batching


def normalize_images(images: Any) -> List[Dict[str, Any]]:
    """Accept the ``images`` list of ``ecr_image_info`` (or plain repository/digest/tags dicts).

    Returns one entry per (repository, digest), tags merged and sorted, input order kept.
    """
    if not isinstance(images, list) or not images:
        raise OptionError("images", "must be a non-empty list (for example ecr_image_info's images)")
    result: List[Dict[str, Any]] = []
    seen: Dict[tuple, Dict[str, Any]] = {}
    for n, image in enumerate(images):
        where = "images[%d]" % n
        if not isinstance(image, dict):
            raise OptionError("images", "%s must be a dict with repository and digest, got %s" % (where, type(image).__name__))
        repo = image.get("repository", image.get("repository_name"))
        digest = image.get("digest", image.get("image_digest"))
        tags = image.get("tags", image.get("image_tags"))
        if tags is None:
            tags = []
        if isinstance(tags, str):
            tags = [tags]
        if not isinstance(repo, str) or not REPOSITORY_RE.match(repo):
            raise OptionError("images", "%s.repository %r is not a valid ECR repository name" % (where, repo))
        if not isinstance(digest, str) or not DIGEST_RE.match(digest):
            raise OptionError("images", "%s.digest %r is not a valid digest (sha256:<64 hex>)" % (where, digest))
        if not isinstance(tags, list) or not all(isinstance(t, str) and TAG_RE.match(t) for t in tags):
            raise OptionError("images", "%s.tags must be a list of valid tags, got %r" % (where, tags))
        size = image.get("size_bytes") or 0
        try:
            size = int(size)
        except (TypeError, ValueError):
            raise OptionError("images", "%s.size_bytes %r is not a number" % (where, size)) from None
        key = (repo, digest)
        if key in seen:
            merged = seen[key]
            merged["tags"] = sorted(set(merged["tags"]) | set(tags))
            continue
        entry = {
            "repository": repo,
            "digest": digest,
            "tags": sorted(set(tags)),
            "size_bytes": max(size, 0),
            "media_type": image.get("media_type"),
            "destination_status": image.get("destination_status"),
            "missing_tags": image.get("missing_tags"),
            "destination_tags": image.get("destination_tags"),
            "destination_digest_present": image.get("destination_digest_present"),
            "parent_digests": list(image.get("parent_digests") or []),
        }
        seen[key] = entry
        result.append(entry)
    return result


def check_source_registry(images: Any, account: str, option: str = "images") -> None:
    """Builds copy from the registry of their own account: an image listed from another registry (its
    ``registry_id``, or the account in its ``uri``) would fail in every build, or copy a namesake."""
    for n, image in enumerate(images or ()):
        if not isinstance(image, dict):
            continue
        owner = str(image.get("registry_id") or "")
        uri = str(image.get("uri") or image.get("repository_uri") or image.get("image_uri") or "")
        if not owner and re.match(r"^\d{12}\.dkr\.ecr\.", uri):
            owner = uri[:12]
        if owner and owner != account:
            raise OptionError(
                option,
                "images[%d] (%s) is from registry %s, not from the source registry %s that the builds copy from; "
                "list the images with ecr_image_info in the source account" % (n, image.get("repository"), owner, account),
            )


def select_images(images: List[Dict[str, Any]], skip_present: bool = True, force_tags: bool = False):
    """Split normalised images into (to_copy, skipped) with ``image_catalog.needs_copy`` when the input has a
    ``destination_status``.

    ``skipped`` entries carry the ``status`` they get in the results without a build: ``present``, or
    ``tag_conflict`` when the digest is already there, no tag is missing and tags may not be moved.
    """
    to_copy, skipped = [], []
    for image in images:
        status = image.get("destination_status")
        if not skip_present or status is None or needs_copy(image, force_tags):
            to_copy.append(image)
        else:
            skipped.append(dict(image, status="present" if status == "present" else "tag_conflict"))
    return to_copy, skipped


def _order(images: List[Dict[str, Any]]) -> List[Dict[str, Any]]:
    """Group by repository; inside one, indexes and ordinary images before the manifests they contain."""
    position = {id(image): n for n, image in enumerate(images)}
    return sorted(images, key=lambda i: (i["repository"], 1 if i.get("parent_digests") else 0, position[id(i)]))


def build_batches(
    images: List[Dict[str, Any]], batch_size: int = 50, max_chars: int = MAX_PARTS * CHUNK_CHARS
) -> List[List[Dict[str, Any]]]:
    """Cut images into batches of at most ``batch_size`` images whose encoding fits in ``max_chars``."""
    if batch_size < 1:
        raise ValueError("batch_size must be >= 1")
    batches: List[List[Dict[str, Any]]] = []
    current: List[Dict[str, Any]] = []
    for image in _order(images):
        candidate = current + [image]
        if len(encode_batch([image])) > max_chars:
            raise OptionError(
                "images",
                "image %s@%s has too many tags to fit in %d characters of build environment"
                % (image["repository"], image["digest"], max_chars),
            )
        if current and (len(candidate) > batch_size or len(encode_batch(candidate)) > max_chars):
            batches.append(current)
            current = [image]
        else:
            current = candidate
    if current:
        batches.append(current)
    return batches


def manifest_writes(image: Dict[str, Any]) -> int:
    """PutImage calls the copy of ``image`` makes: one per tag, one for an untagged manifest (an index's platforms
    are images of their own). ECR allows 10 a second per account and region, whatever the build."""
    return max(1, len(image.get("tags") or []))


def heaviest_first(batches: List[List[Dict[str, Any]]]) -> List[List[Dict[str, Any]]]:
    """Batches in decreasing order of manifest writes (equal ones keep their order): each build gets an equal share
    of the PutImage budget, so the longest start first and the short ones fill the last slots instead of a long
    one running at a fraction of the budget at the end."""
    return sorted(batches, key=lambda batch: -sum(manifest_writes(image) for image in batch))


def share_blobs(
    batches: List[List[Dict[str, Any]]],
    blobs: Dict[tuple, Dict[str, int]],
    batch_size: int = 50,
    keep_count: bool = True,
    solo_writes: Optional[int] = None,
) -> tuple:
    """Plan the upload of blobs that several batches need once, for the others to mount it (same registry).

    ``blobs``: {(repository, digest): {blob digest: size}} of the images (an index: its platforms' blobs), from
    ``image_catalog.image_blobs``. Returns ``(batches, pioneer)``. When blobs are needed by more than one batch,
    the first batch (the pioneer, ``pioneer`` True) holds the images that bring the most of those bytes, as many as
    ``batch_size`` allows, and the other images are cut again after it: the driver runs the pioneer alone, so that
    every later build finds the shared blobs in the destination. Each image gets ``mounts``, {blob digest:
    destination repository}, for its blobs that an earlier batch puts in another repository: ``encode_batch``
    passes them on, and the copy program mounts from there instead of uploading (a mount the registry refuses is
    an ordinary upload). With ``keep_count`` (CodeBuild bills builds) there are no more batches than
    ceil(images / batch_size): the pioneer is then filled up to ``batch_size`` when needed; without it (local
    copies) it holds only the images that bring shared blobs, and ends sooner. Within a repository the input order
    is kept; the batches after the pioneer come :func:`heaviest_first`.

    ``solo_writes``: images with at least that many manifest writes (an image with hundreds of tags) go in the
    pioneer first, which has the whole PutImage budget: in a build sharing it with the others they would take
    longer than all the rest of the copy (the driver passes the round's writes / builds at a time).
    """
    if len(batches) < 2:
        return batches, False
    images = [image for batch in batches for image in batch]
    needs = {id(image): blobs.get((image["repository"], image["digest"])) or {} for image in images}
    sizes: Dict[str, int] = {}
    batches_of: Dict[str, int] = {}
    for batch in batches:
        for blob in set().union(*(needs[id(image)] for image in batch)):
            batches_of[blob] = batches_of.get(blob, 0) + 1
    for need in needs.values():
        sizes.update(need)
    uncovered = {blob for blob, count in batches_of.items() if count > 1}
    candidates = [image for image in images if not image.get("parent_digests")]
    heavy = [image for image in candidates if solo_writes and manifest_writes(image) >= solo_writes]
    pioneer: List[Dict[str, Any]] = sorted(heavy, key=lambda image: -manifest_writes(image))[:batch_size]
    for image in pioneer:
        candidates.remove(image)
        uncovered -= set(needs[id(image)])
    # greedy cover of the shared bytes: an index brings the bases of every platform at once
    while uncovered and len(pioneer) < batch_size:
        best, gain = None, 0
        for image in candidates:
            value = sum(sizes[blob] for blob in needs[id(image)] if blob in uncovered)
            if value > gain:
                best, gain = image, value
        if best is None:
            break
        pioneer.append(best)
        candidates.remove(best)
        uncovered -= set(needs[id(best)])
    if not pioneer:
        return batches, False
    chosen = {id(image) for image in pioneer}
    rest = [image for image in images if id(image) not in chosen]
    if keep_count and 1 + len(build_batches(rest, batch_size)) > int(math.ceil(len(images) / float(batch_size))):
        fill = batch_size - len(pioneer)
        pioneer, rest = pioneer + rest[:fill], rest[fill:]
    first = build_batches(pioneer, len(pioneer))
    if len(first) != 1:  # too many characters for one build's variables
        return batches, False
    planned = first + heaviest_first(build_batches(rest, batch_size) if rest else [])
    homes: Dict[str, str] = {}
    for batch in planned:
        for image in batch:
            mounts = {b: homes[b] for b in needs[id(image)] if b in homes and homes[b] != image["repository"]}
            if mounts:
                image["mounts"] = mounts
        for image in batch:
            for blob in needs[id(image)]:
                homes.setdefault(blob, image["repository"])
        if len(encode_batch(batch)) > MAX_PARTS * CHUNK_CHARS:
            for image in batch:
                image.pop("mounts", None)
    return planned, True


def batch_env(images: Iterable[Dict[str, Any]]) -> Dict[str, str]:
    """The REPL_BATCH_* variables for one batch."""
    return split_env(encode_batch(list(images)))


# us-east-1 on-demand Linux list prices in USD per build minute; pass price_per_minute for others.
PRICE_PER_MINUTE = {
    "BUILD_GENERAL1_SMALL": 0.005,
    "BUILD_GENERAL1_MEDIUM": 0.01,
    "BUILD_GENERAL1_LARGE": 0.02,
    "BUILD_GENERAL1_XLARGE": 0.04,
    "BUILD_GENERAL1_2XLARGE": 0.08,
}
DEFAULT_COMPUTE_TYPE = "BUILD_GENERAL1_SMALL"
PROVISIONING_SECONDS = 60.0  # queue + provisioning + install phase of a build (30-90 s on CodeBuild)
PER_IMAGE_SECONDS = 4.0  # token, listing, verification and CLI start-up per image
PER_TAG_SECONDS = 1.0  # one PutImage per tag
THROUGHPUT_BYTES_PER_SECOND = 40 * 1024 * 1024  # registry-to-registry inside AWS, per copy


def estimate_build_seconds(batch: List[Dict[str, Any]], parallel_copies: int = 4) -> float:
    parallel = max(1, int(parallel_copies))
    work = sum(
        PER_IMAGE_SECONDS + PER_TAG_SECONDS * len(i.get("tags") or []) + (i.get("size_bytes") or 0) / THROUGHPUT_BYTES_PER_SECOND
        for i in batch
    )
    return PROVISIONING_SECONDS + work / parallel


def plan(
    batches: List[List[Dict[str, Any]]],
    parallel_copies: int = 4,
    max_concurrent_builds: int = 5,
    compute_type: Optional[str] = None,
    price_per_minute: Optional[float] = None,
) -> Dict[str, Any]:
    """Counts, bytes, builds and an estimate of CodeBuild minutes (billed per started minute per build) and cost."""
    compute_type = compute_type or DEFAULT_COMPUTE_TYPE
    if price_per_minute is None:
        price_per_minute = PRICE_PER_MINUTE.get(compute_type, PRICE_PER_MINUTE[DEFAULT_COMPUTE_TYPE])
    concurrent = max(1, int(max_concurrent_builds))
    builds = []
    for n, batch in enumerate(batches):
        seconds = estimate_build_seconds(batch, parallel_copies)
        env = batch_env(batch)
        builds.append(
            {
                "batch": n,
                "images": len(batch),
                "tags": sum(len(i.get("tags") or []) for i in batch),
                "bytes": sum(i.get("size_bytes") or 0 for i in batch),
                "repositories": sorted({i["repository"] for i in batch}),
                "env_vars": len(env),
                "env_chars": sum(len(v) for v in env.values()),
                "estimated_seconds": int(math.ceil(seconds)),
                "estimated_minutes": int(math.ceil(seconds / 60.0)),
            }
        )
    minutes = sum(b["estimated_minutes"] for b in builds)
    # Builds run in waves of max_concurrent_builds; a wave lasts as long as its longest build.
    durations = sorted((b["estimated_seconds"] for b in builds), reverse=True)
    wall = sum(max(durations[i : i + concurrent]) for i in range(0, len(durations), concurrent))
    return {
        "images": sum(b["images"] for b in builds),
        "tags": sum(b["tags"] for b in builds),
        "bytes": sum(b["bytes"] for b in builds),
        "builds": len(builds),
        "batches": builds,
        "max_concurrent_builds": concurrent,
        "compute_type": compute_type,
        "price_per_minute": price_per_minute,
        "estimated_build_minutes": minutes,
        "estimated_wall_minutes": int(math.ceil(wall / 60.0)),
        "estimated_cost_usd": round(minutes * price_per_minute, 4),
    }
