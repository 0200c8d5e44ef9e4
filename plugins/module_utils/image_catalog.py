# -*- coding: utf-8 -*-

# Copyright: Contributors to the cloudops.ecr_replication project
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The image catalog behind ``ecr_image_info``: listing, filters, comparison and summary.

Plain typed Python. The pure parts (:func:`build_filters`, :func:`select_repositories`, :func:`link_images`,
:func:`select_images`, :func:`compared_images`, :func:`summarize`) take and return plain data; :func:`collect`
drives them with boto3 ECR clients through the helpers of ``module_utils/ecr.py``.

Vocabulary:

- an *attached* image hangs off another image of the same repository: an untagged platform manifest listed by an
  index (``parent_digests``; a tagged one is selected by its own tags) or a referrer (``subject_digest``: an OCI ``subject`` or a cosign-style
  ``sha256-<hex>.sig`` tag). Its *root* is the image it finally hangs off. Filters select roots; attached
  images follow their root, so a signature or a platform manifest is never separated from its image.
"""

from __future__ import annotations

import datetime
import fnmatch
import json
import re
from contextlib import contextmanager
from dataclasses import dataclass
from dataclasses import field
from typing import Any
from typing import Dict
from typing import Iterable
from typing import List
from typing import Optional
from typing import Pattern

from ansible_collections.cloudops.ecr_replication.plugins.module_utils import ecr
from ansible_collections.cloudops.ecr_replication.plugins.module_utils.validation import OptionError
from ansible_collections.cloudops.ecr_replication.plugins.module_utils.validation import compile_tag_regex

STATUSES = ("present", "missing", "missing_tags", "tag_conflict")
IMAGE_CONFIG_MEDIA_TYPES = frozenset(
    (
        "application/vnd.oci.image.config.v1+json",
        "application/vnd.docker.container.image.v1+json",
    )
)
# cosign (and the OCI 1.0 referrers tag schema): sha256-<hex>[.sig|.att|.sbom|...]
REFERRER_TAG_RE = re.compile(r"^(sha256)-([0-9a-f]{64})(?:\.[A-Za-z0-9_-]+)?$")
_RELATIVE_RE = re.compile(r"^\s*(\d+)\s*([mhdw])\s*$", re.IGNORECASE)
_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
_GLOB_CHARS = set("*?[")
FETCH_MANIFESTS = ("auto", "all", "none")


# Filters


@dataclass
class ImageFilters:
    repositories: List[str] = field(default_factory=list)
    exclude_repositories: List[str] = field(default_factory=list)
    repository_prefix: Optional[str] = None
    tag_regex: Optional[Pattern[str]] = None
    pushed_after: Optional[datetime.datetime] = None
    most_recent: Optional[int] = None
    include_untagged: bool = True


def utcnow() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc)


def parse_pushed_after(value: Any, now: Optional[datetime.datetime] = None, option: str = "pushed_after"):
    """ISO 8601 date / date-time (UTC unless an offset is given) or ``<n>m|h|d|w`` back from ``now``."""
    text = "" if value is None else str(value).strip()
    relative = _RELATIVE_RE.match(text)
    if relative:
        amount, unit = int(relative.group(1)), relative.group(2).lower()
        try:
            return (now or utcnow()) - datetime.timedelta(**{_UNITS[unit]: amount})
        except OverflowError:
            raise OptionError(option, f"{text!r} reaches back before the year 1") from None
    candidate = text[:-1] + "+00:00" if text.endswith(("Z", "z")) else text
    try:
        parsed = datetime.datetime.fromisoformat(candidate)
    except (ValueError, OverflowError):
        parsed = None
    if not text or parsed is None:
        raise OptionError(
            option,
            f"{text!r} is neither an ISO 8601 date or date-time (2024-05-31, 2024-05-31T12:00:00Z) "
            "nor a duration such as 30d, 12h, 90m or 2w",
        )
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=datetime.timezone.utc)
    return parsed


def _names(value: Any, option: str) -> List[str]:
    if value is None:
        return []
    if isinstance(value, str) or not isinstance(value, (list, tuple)):
        raise OptionError(option, "must be a list of repository names or glob patterns")
    names = []
    for item in value:
        if not isinstance(item, str) or not item.strip():
            raise OptionError(option, f"{item!r} is not a repository name or glob pattern")
        names.append(item.strip())
    return names


def build_filters(
    repositories: Any = None,
    exclude_repositories: Any = None,
    repository_prefix: Optional[str] = None,
    tag_regex: Optional[str] = None,
    pushed_after: Optional[str] = None,
    most_recent: Optional[int] = None,
    include_untagged: bool = True,
    now: Optional[datetime.datetime] = None,
) -> ImageFilters:
    """Validate the filter options; every error is a :class:`OptionError` naming the option."""
    filters = ImageFilters(
        repositories=_names(repositories, "repositories"),
        exclude_repositories=_names(exclude_repositories, "exclude_repositories"),
        repository_prefix=repository_prefix or None,
        include_untagged=bool(include_untagged),
    )
    if tag_regex is not None and tag_regex != "":
        filters.tag_regex = compile_tag_regex(tag_regex, "tag_regex")
    if pushed_after is not None and str(pushed_after).strip() != "":
        filters.pushed_after = parse_pushed_after(pushed_after, now)
    if most_recent is not None:
        if isinstance(most_recent, bool) or not isinstance(most_recent, int) or most_recent < 1:
            raise OptionError("most_recent", f"must be a positive integer, got {most_recent!r}")
        filters.most_recent = most_recent
    return filters


def _is_glob(pattern: str) -> bool:
    return any(c in _GLOB_CHARS for c in pattern)


# Records


def _iso(value: Any) -> Optional[str]:
    if value is None:
        return None
    if isinstance(value, (int, float)):
        value = datetime.datetime.fromtimestamp(value, datetime.timezone.utc)
    if isinstance(value, datetime.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=datetime.timezone.utc)
        return value.astimezone(datetime.timezone.utc).isoformat()
    return str(value)


def _timestamp(value: Any) -> float:
    if isinstance(value, datetime.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=datetime.timezone.utc)
        return value.timestamp()
    if isinstance(value, (int, float)):
        return float(value)
    return 0.0


def repository_record(repo: Dict[str, Any]) -> Dict[str, Any]:
    """A DescribeRepositories entry in snake_case (the ``repositories`` return format)."""
    encryption = repo.get("encryptionConfiguration") or {}
    return {
        "name": repo["repositoryName"],
        "uri": repo.get("repositoryUri"),
        "arn": repo.get("repositoryArn"),
        "registry_id": repo.get("registryId"),
        "created_at": _iso(repo.get("createdAt")),
        "image_tag_mutability": repo.get("imageTagMutability", "MUTABLE"),
        "image_tag_mutability_exclusion_filters": [
            {"filter_type": f.get("filterType"), "filter": f.get("filter")}
            for f in repo.get("imageTagMutabilityExclusionFilters") or []
        ],
        "scan_on_push": bool((repo.get("imageScanningConfiguration") or {}).get("scanOnPush", False)),
        "encryption_type": encryption.get("encryptionType", "AES256"),
        "kms_key": encryption.get("kmsKey"),
        "image_count": 0,
    }


@dataclass
class Image:
    repository: str
    registry_id: Optional[str]
    digest: str
    tags: List[str]
    media_type: Optional[str]
    artifact_type: Optional[str]
    size_bytes: int
    pushed: float
    repository_uri: Optional[str]
    platforms: List[str] = field(default_factory=list)
    manifests: List[Dict[str, Any]] = field(default_factory=list)
    parent_digests: List[str] = field(default_factory=list)
    platform: Optional[str] = None
    subject_digest: Optional[str] = None
    referrer_kind: Optional[str] = None
    referrers: List[str] = field(default_factory=list)
    manifest_read: bool = False

    @property
    def is_index(self) -> bool:
        return self.media_type in ecr.INDEX_MEDIA_TYPES

    @property
    def untagged(self) -> bool:
        return not self.tags

    def to_dict(self) -> Dict[str, Any]:
        uri = self.repository_uri
        return {
            "repository": self.repository,
            "registry_id": self.registry_id,
            "digest": self.digest,
            "tags": list(self.tags),
            "untagged": self.untagged,
            "media_type": self.media_type,
            "artifact_type": self.artifact_type,
            "is_index": self.is_index,
            "size_bytes": self.size_bytes,
            "pushed_at": _iso(self.pushed),
            "digest_uri": f"{uri}@{self.digest}" if uri else None,
            "tag_uris": [f"{uri}:{tag}" for tag in self.tags] if uri else [],
            "platforms": list(self.platforms),
            "manifests": [dict(m) for m in self.manifests],
            "parent_digests": list(self.parent_digests),
            "platform": self.platform,
            "subject_digest": self.subject_digest,
            "referrer_kind": self.referrer_kind,
            "referrers": list(self.referrers),
            "referrer_count": len(self.referrers),
            "destination_status": None,
        }


def image_record(detail: Dict[str, Any], repository_uri: Optional[str] = None) -> Image:
    """A DescribeImages ``imageDetails`` entry as an :class:`Image` (tags sorted, no duplicates)."""
    return Image(
        repository=detail["repositoryName"],
        registry_id=detail.get("registryId"),
        digest=detail["imageDigest"],
        tags=sorted(set(detail.get("imageTags") or [])),
        media_type=detail.get("imageManifestMediaType"),
        artifact_type=detail.get("artifactMediaType"),
        size_bytes=int(detail.get("imageSizeInBytes") or 0),
        pushed=_timestamp(detail.get("imagePushedAt")),
        repository_uri=repository_uri,
        # ECR reports the subject of a referrer itself (newer API); older answers and the sandbox need the manifest
        subject_digest=detail.get("subjectManifestDigest"),
        referrer_kind="subject" if detail.get("subjectManifestDigest") else None,
    )


def _platform(entry: Dict[str, Any]) -> Optional[str]:
    platform = entry.get("platform") or {}
    os_name, arch = platform.get("os"), platform.get("architecture")
    if not os_name or not arch:
        return None
    parts = [os_name, arch] + ([platform["variant"]] if platform.get("variant") else [])
    return "/".join(parts)


def _is_attestation(entry: Dict[str, Any], platform: Optional[str]) -> bool:
    annotations = entry.get("annotations") or {}
    return annotations.get("vnd.docker.reference.type") == "attestation-manifest" or platform in (
        None,
        "unknown/unknown",
    )


def apply_manifest(image: Image, manifest_text: Any, media_type: Optional[str] = None) -> bool:
    """Fill platforms / manifests / subject / artifact type from a manifest. False when it is not JSON."""
    try:
        manifest = json.loads(manifest_text) if isinstance(manifest_text, (str, bytes)) else dict(manifest_text)
    except (TypeError, ValueError):
        return False
    if not isinstance(manifest, dict):
        return False
    image.manifest_read = True
    image.media_type = image.media_type or manifest.get("mediaType") or media_type
    if image.artifact_type is None:
        image.artifact_type = manifest.get("artifactType") or (manifest.get("config") or {}).get("mediaType")
    subject = (manifest.get("subject") or {}).get("digest")
    if subject:
        image.subject_digest = subject
        image.referrer_kind = "subject"
    if image.is_index or "manifests" in manifest:
        entries = []
        platforms = set()
        for entry in manifest.get("manifests") or []:
            platform = _platform(entry)
            entries.append(
                {
                    "digest": entry.get("digest"),
                    "media_type": entry.get("mediaType"),
                    "size": entry.get("size"),
                    "platform": platform,
                }
            )
            if not _is_attestation(entry, platform):
                platforms.add(platform)
        image.manifests = entries
        image.platforms = sorted(p for p in platforms if p)
    return True


def needs_manifest(image: Image, mode: str, children: Optional[set] = None) -> bool:
    """Whether ``fetch_manifests=mode`` reads this image's manifest (``children``: digests listed by indexes).

    ``auto``: indexes (platforms, children) and, unless ECR already reported the image's ``subjectManifestDigest``,
    the OCI manifests that may carry a ``subject``: those whose artifact type (ECR's ``artifactMediaType``:
    ``artifactType``, else the config media type) is not a plain image config, i.e. signatures, SBOMs, attestations
    and other artifacts. When ECR reports no artifact type, untagged OCI manifests are read instead. Platform
    manifests of an index and Docker schema 2 manifests never are.
    """
    if mode == "all":
        return True
    if mode != "auto":
        return False
    if image.is_index or image.media_type is None:
        return True
    if image.media_type != ecr.MEDIA_TYPE_OCI_MANIFEST or image.subject_digest:
        return False
    if children and image.digest in children:
        return False
    if image.artifact_type is not None:
        return image.artifact_type not in IMAGE_CONFIG_MEDIA_TYPES
    return image.untagged


def link_images(images: List[Image]) -> None:
    """Set ``parent_digests``, tag-based ``subject_digest`` and ``referrers`` within one repository."""
    by_digest = {image.digest: image for image in images}
    for image in images:
        image.parent_digests = []
        image.referrers = []
    for image in images:
        for entry in image.manifests:
            child = by_digest.get(entry.get("digest"))
            if child is not None and child is not image and image.digest not in child.parent_digests:
                child.parent_digests.append(image.digest)
                child.platform = child.platform or entry.get("platform")
        if image.subject_digest is None:
            for tag in image.tags:
                match = REFERRER_TAG_RE.match(tag)
                if match:
                    image.subject_digest = f"{match.group(1)}:{match.group(2)}"
                    image.referrer_kind = "tag"
                    break
    for image in images:
        subject = by_digest.get(image.subject_digest) if image.subject_digest else None
        if subject is not None and subject is not image:
            subject.referrers.append(image.digest)
    for image in images:
        image.parent_digests.sort()
        image.referrers = sorted(set(image.referrers))


def _roots(images: List[Image]) -> Dict[str, str]:
    """digest -> digest of the root image it hangs off (itself for a root)."""
    by_digest = {image.digest: image for image in images}
    roots: Dict[str, str] = {}
    for image in images:
        current, seen = image, set()
        while current.digest not in seen:
            seen.add(current.digest)
            if current.digest in roots:
                current = by_digest[roots[current.digest]]
                break
            parent = None
            if current.untagged:  # a tagged platform manifest is selected by its own tags
                parent = next((by_digest[d] for d in current.parent_digests if d in by_digest), None)
            if parent is None and current.subject_digest in by_digest:
                parent = by_digest[current.subject_digest]
            if parent is None:
                break
            current = parent
        roots[image.digest] = current.digest
    return roots


def select_images(images: List[Image], filters: ImageFilters) -> List[Image]:
    """Apply the image filters to the images of one repository (already linked)."""
    roots = _roots(images)
    candidates = []
    for image in images:
        if roots[image.digest] != image.digest:
            continue
        if filters.tag_regex is not None and not any(filters.tag_regex.search(t) for t in image.tags):
            continue
        if filters.pushed_after is not None and image.pushed < filters.pushed_after.timestamp():
            continue
        if not filters.include_untagged and image.untagged:
            continue
        candidates.append(image)
    if filters.most_recent is not None:
        candidates.sort(key=lambda i: (-i.pushed, i.digest))
        candidates = candidates[: filters.most_recent]
    kept_roots = {image.digest for image in candidates}
    selected = [
        image
        for image in images
        if roots[image.digest] in kept_roots and (filters.include_untagged or not image.untagged)
    ]
    selected.sort(key=lambda i: (i.pushed, i.digest))
    return selected


def select_repositories(
    repositories: List[Dict[str, Any]], filters: ImageFilters, registry_id: Optional[str] = None
) -> List[Dict[str, Any]]:
    """Filter DescribeRepositories entries; an exact name in ``repositories`` that does not exist is an error."""
    names = {repo["repositoryName"] for repo in repositories}
    unknown = sorted(n for n in filters.repositories if not _is_glob(n) and n not in names)
    if unknown:
        where = f"registry {registry_id}" if registry_id else "the registry"
        raise OptionError(
            "repositories", f"repository {', '.join(repr(n) for n in unknown)} not found in {where}"
        )
    selected = []
    for repo in repositories:
        name = repo["repositoryName"]
        if filters.repositories and not any(fnmatch.fnmatchcase(name, p) for p in filters.repositories):
            continue
        if any(fnmatch.fnmatchcase(name, p) for p in filters.exclude_repositories):
            continue
        if filters.repository_prefix and not name.startswith(filters.repository_prefix):
            continue
        selected.append(repo)
    return sorted(selected, key=lambda r: r["repositoryName"])


# Comparison


@dataclass
class DestinationRepository:
    """What a destination repository holds: digest -> tags, tag -> digest."""

    digest_tags: Dict[str, List[str]] = field(default_factory=dict)
    tag_digest: Dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_details(cls, details: Iterable[Dict[str, Any]]) -> "DestinationRepository":
        repo = cls()
        for detail in details:
            tags = sorted(set(detail.get("imageTags") or []))
            repo.digest_tags[detail["imageDigest"]] = tags
            for tag in tags:
                repo.tag_digest[tag] = detail["imageDigest"]
        return repo

    @classmethod
    def from_image_ids(cls, image_ids: Iterable[Dict[str, Any]]) -> "DestinationRepository":
        """From ListImages ``imageIds`` (one entry per tag, untagged entries without ``imageTag``)."""
        tags: Dict[str, List[str]] = {}
        for image_id in image_ids:
            entry = tags.setdefault(image_id["imageDigest"], [])
            if image_id.get("imageTag"):
                entry.append(image_id["imageTag"])
        return cls.from_details([{"imageDigest": digest, "imageTags": t} for digest, t in tags.items()])


def compare_image(image: Image, destination: Optional[DestinationRepository]) -> Dict[str, Any]:
    """The destination fields of one image (``destination`` None: the repository does not exist)."""
    return compare_digest(image.digest, image.tags, destination)


def compare_digest(
    digest: str, source_tags: Iterable[str], destination: Optional[DestinationRepository]
) -> Dict[str, Any]:
    """The destination fields of a digest with these source tags: the one set of rules for every comparison."""
    destination = destination or DestinationRepository()
    tags = sorted(set(source_tags))
    present = digest in destination.digest_tags
    conflicts = [
        {"tag": tag, "destination_digest": destination.tag_digest[tag]}
        for tag in tags
        if tag in destination.tag_digest and destination.tag_digest[tag] != digest
    ]
    missing_tags = [tag for tag in tags if tag not in destination.tag_digest]
    if conflicts:
        status = "tag_conflict"
    elif not present:
        status = "missing"
    elif missing_tags:
        status = "missing_tags"
    else:
        status = "present"
    return {
        "destination_status": status,
        "destination_digest_present": present,
        "destination_tags": list(destination.digest_tags.get(digest, [])),
        "missing_tags": missing_tags,
        "conflicting_tags": conflicts,
    }


def needs_copy(image: Dict[str, Any], force_tags: bool = False) -> bool:
    """Whether an image still needs copying to a destination: the one rule for facts, plan, rounds, verification
    and report. ``image`` carries the destination fields of :func:`compare_digest`.

    A tag conflict alone is not work: the digest is there and every other tag too, and a conflicting tag moves
    only with ``force_tags``. Without this, a digest whose every tag conflicts would be sent to a build on every
    run and reported as a conflict again.
    """
    status = image.get("destination_status") or "missing"
    if status == "present":
        return False
    if status != "tag_conflict" or force_tags:
        return True
    digest_present = image.get("destination_digest_present")
    if digest_present is None:  # records from before destination_digest_present existed
        digest_present = bool(image.get("destination_tags"))
    return not digest_present or bool(image.get("missing_tags"))


def compared_images(
    images: Iterable[Image], contents: Dict[str, Optional[DestinationRepository]]
) -> List[Dict[str, Any]]:
    """The return records of ``images`` with their destination fields; ``contents``: repository name -> what the
    destination repository holds (None: it does not exist)."""
    return [dict(image.to_dict(), **compare_image(image, contents.get(image.repository))) for image in images]


# Summary


def summarize(
    repositories: List[Dict[str, Any]],
    images: List[Dict[str, Any]],
    missing_repositories: Optional[List[str]] = None,
    api_calls: Optional[Dict[str, Dict[str, int]]] = None,
) -> Dict[str, Any]:
    """Counts over the returned ``repositories`` and ``images`` (dicts in the return format)."""
    by_status = {status: 0 for status in STATUSES}
    per_repo = {repo["name"]: 0 for repo in repositories}
    total_bytes = missing_bytes = tags = 0
    for image in images:
        per_repo[image["repository"]] = per_repo.get(image["repository"], 0) + 1
        total_bytes += image["size_bytes"]
        tags += len(image["tags"])
        status = image.get("destination_status")
        if status:
            by_status[status] += 1
            if not image.get("destination_digest_present", False):
                missing_bytes += image["size_bytes"]
    return {
        "repositories": len(repositories),
        "images": len(images),
        "tagged": sum(1 for i in images if i["tags"]),
        "untagged": sum(1 for i in images if not i["tags"]),
        "tags": tags,
        "indexes": sum(1 for i in images if i["is_index"]),
        "referrers": sum(1 for i in images if i["subject_digest"]),
        "total_bytes": total_bytes,
        "missing_bytes": missing_bytes,
        "by_status": by_status,
        "images_per_repository": per_repo,
        "missing_repositories": len(missing_repositories or []),
        "api_calls": {side: dict(sorted(calls.items())) for side, calls in (api_calls or {}).items()},
    }


# Listing


def _json_or_text(text: Optional[str]) -> Any:
    if text is None:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return text


@contextmanager
def _context(where: str):
    """Say where an API error happened (which side, region, repository) in the message ``fail_json`` shows."""
    try:
        yield
    except ecr.AnsibleECRError as e:
        raise ecr.AnsibleECRError(message=f"{e.message} ({where})", exception=e.exception) from e


def _read_manifests(
    client,
    repo: Dict[str, Any],
    images: List[Image],
    registry_id: Optional[str],
    failures: Optional[List[Dict[str, Any]]] = None,
) -> None:
    if not images:
        return
    by_digest = {image.digest: image for image in images}
    answer = ecr.batch_get_image(client, repo["repositoryName"], sorted(by_digest), registry_id=registry_id)
    for item in answer["images"]:
        image = by_digest.get((item.get("imageId") or {}).get("imageDigest"))
        if image is not None and item.get("imageManifest"):
            if not apply_manifest(image, item["imageManifest"], item.get("imageManifestMediaType")):
                item = {"imageId": item.get("imageId"), "failureCode": "InvalidManifest", "failureReason": "not JSON"}
                answer["failures"].append(item)
    if failures is not None:
        for failure in answer["failures"]:
            failures.append(
                {
                    "repository": repo["repositoryName"],
                    "digest": (failure.get("imageId") or {}).get("imageDigest"),
                    "code": failure.get("failureCode"),
                    "reason": failure.get("failureReason"),
                }
            )


def list_repository_images(
    client,
    repo: Dict[str, Any],
    fetch_manifests: str = "auto",
    registry_id: Optional[str] = None,
    failures: Optional[List[Dict[str, Any]]] = None,
) -> List[Image]:
    """Every image of a repository, manifests read as ``fetch_manifests`` says, linked.

    Manifests ECR could not return (``BatchGetImage`` failures) are appended to ``failures``; those images keep
    what ``DescribeImages`` said (no platforms, no subject)."""
    details = ecr.describe_images(client, repo["repositoryName"], registry_id=registry_id)
    images = [image_record(d, repo.get("repositoryUri")) for d in details]
    if fetch_manifests != "none":
        # First the indexes (their entries tell which untagged manifests are platforms), then possible referrers.
        if fetch_manifests == "all":
            first = images
        else:
            first = [i for i in images if i.is_index or i.media_type is None]
        _read_manifests(client, repo, first, registry_id, failures)
        # When DescribeImages reports subjectManifestDigest (current ECR), the referrers are known without manifests.
        api_reports_subjects = any("subjectManifestDigest" in d for d in details)
        if fetch_manifests == "auto" and not api_reports_subjects:
            children = {m.get("digest") for i in images for m in i.manifests}
            tried = {i.digest for i in first}
            second = [i for i in images if i.digest not in tried and needs_manifest(i, "auto", children)]
            _read_manifests(client, repo, second, registry_id, failures)
    link_images(images)
    return images


def repository_details(client, repo: Dict[str, Any], registry_id: Optional[str] = None) -> Dict[str, Any]:
    name = repo["repositoryName"]
    tags = ecr.list_tags_for_resource(client, repo["repositoryArn"]) if repo.get("repositoryArn") else []
    return {
        "lifecycle_policy": _json_or_text(ecr.get_lifecycle_policy(client, name, registry_id=registry_id)),
        "repository_policy": _json_or_text(ecr.get_repository_policy(client, name, registry_id=registry_id)),
        "tags": {t["Key"]: t["Value"] for t in tags},
    }


@dataclass
class Destination:
    """A registry to compare with: an ECR client of its region, its account (None: the client's own) and a name.

    ``api_calls`` is the counter of the calls made to it (``count_api_calls``), reported in its summary."""

    client: Any
    registry_id: Optional[str] = None
    name: Optional[str] = None
    api_calls: Optional[Dict[str, int]] = None

    @property
    def where(self) -> str:
        region = getattr(getattr(self.client, "meta", None), "region_name", None)
        text = "destination" + (f" {region}" if region else "")
        return text + (f" registry {self.registry_id}" if self.registry_id else "")


@dataclass
class Comparison:
    """What one destination holds of the selected repositories."""

    uris: Dict[str, Optional[str]]  # repository name -> destination URI (None: the repository does not exist)
    contents: Dict[str, Optional[DestinationRepository]]
    registry_id: Optional[str]

    @property
    def missing_repositories(self) -> List[str]:
        return sorted(name for name, uri in self.uris.items() if uri is None)

    def repository_fields(self, name: str) -> Dict[str, Any]:
        return {"destination_exists": self.uris[name] is not None, "destination_uri": self.uris[name]}


def compare_destination(destination: Destination, repository_names: Iterable[str]) -> Comparison:
    """List the named repositories in ``destination`` (one DescribeRepositories listing, DescribeImages for each
    repository that exists there)."""
    wanted = set(repository_names)
    with _context(destination.where):
        found = {
            r["repositoryName"]: r
            for r in ecr.describe_repositories(destination.client, registry_id=destination.registry_id)
            if r["repositoryName"] in wanted
        }
    comparison = Comparison(uris={}, contents={}, registry_id=destination.registry_id)
    for name in sorted(wanted):
        repo = found.get(name)
        comparison.uris[name] = repo.get("repositoryUri") if repo else None
        comparison.contents[name] = None
        if repo is None:
            continue
        comparison.registry_id = comparison.registry_id or repo.get("registryId")
        with _context(f"{destination.where}, repository {name}"):
            details = ecr.describe_images(destination.client, name, registry_id=destination.registry_id)
        comparison.contents[name] = DestinationRepository.from_details(details)
    return comparison


def compared_result(
    repositories: List[Dict[str, Any]],
    images: List[Image],
    comparison: Comparison,
    api_calls: Optional[Dict[str, Dict[str, int]]] = None,
) -> Dict[str, Any]:
    """``repositories``, ``images``, ``missing_repositories`` and ``summary`` as compared with one destination.

    The source records are copied, not changed, so that one source listing serves several destinations."""
    records = [dict(record, **comparison.repository_fields(record["name"])) for record in repositories]
    images_out = compared_images(images, comparison.contents)
    missing = comparison.missing_repositories
    return {
        "repositories": records,
        "images": images_out,
        "missing_repositories": missing,
        "summary": summarize(records, images_out, missing, api_calls),
    }


def image_blobs(client, images: Iterable[Dict[str, Any]], registry_id: Optional[str] = None) -> Dict[tuple, Dict[str, int]]:
    """{(repository, digest): {blob digest: size}} of ``images`` (dicts with repository and digest): the config and
    layers an image's copy uploads; an index's are its manifests' (read too when not among ``images``). One
    ``BatchGetImage`` per 100 manifests of a repository; what ECR cannot return has no blobs (the copy program
    reports it). Foreign layers are left out: registries do not hold them."""
    by_repository: Dict[str, List[str]] = {}
    for image in images:
        by_repository.setdefault(image["repository"], []).append(image["digest"])
    result: Dict[tuple, Dict[str, int]] = {}
    for repository, digests in sorted(by_repository.items()):
        manifests: Dict[str, Dict[str, Any]] = {}
        wanted = list(dict.fromkeys(digests))
        requested = set(wanted)
        while wanted:
            with _context("source repository %s" % repository):
                answer = ecr.batch_get_image(client, repository, wanted, registry_id=registry_id)
            wanted = []
            for item in answer["images"]:
                try:
                    manifest = json.loads(item.get("imageManifest") or "")
                except ValueError:
                    continue
                if not isinstance(manifest, dict):
                    continue
                manifests[item["imageId"]["imageDigest"]] = manifest
                for entry in manifest.get("manifests") or []:
                    child = entry.get("digest")
                    if child and child not in requested:
                        requested.add(child)
                        wanted.append(child)

        def blobs_of(digest: str, seen: tuple = ()) -> Dict[str, int]:
            manifest = manifests.get(digest) or {}
            found = {
                blob["digest"]: int(blob.get("size") or 0)
                for blob in [manifest.get("config") or {}] + list(manifest.get("layers") or [])
                if blob.get("digest") and "foreign" not in str(blob.get("mediaType") or "")
            }
            for entry in manifest.get("manifests") or []:
                if entry.get("digest") and entry["digest"] not in seen:
                    found.update(blobs_of(entry["digest"], seen + (digest,)))
            return found

        for digest in digests:
            result[(repository, digest)] = blobs_of(digest)
    return result


def collect(
    client,
    filters: ImageFilters,
    registry_id: Optional[str] = None,
    fetch_manifests: str = "auto",
    with_repository_details: bool = False,
    destination_client=None,
    destination_registry_id: Optional[str] = None,
    api_calls: Optional[Dict[str, Dict[str, int]]] = None,
    destinations: Optional[List[Destination]] = None,
) -> Dict[str, Any]:
    """List, filter and compare. Returns the module's result keys.

    With ``destination_client`` the images and repositories of the result carry the destination fields. With
    ``destinations`` the source is listed once and ``result["destinations"]`` holds one compared result per
    destination (:func:`compared_result`, plus ``name`` and ``registry_id``), in the order given; the top-level
    images then carry no destination fields.

    Raises :class:`OptionError` for an unknown repository name, ``ecr.AnsibleECRError`` for API errors.
    """
    if fetch_manifests not in FETCH_MANIFESTS:
        raise OptionError("fetch_manifests", f"must be one of {', '.join(FETCH_MANIFESTS)}")
    if destination_client is not None and destinations:
        raise ValueError("destination_client and destinations are mutually exclusive")
    source = f"source registry {registry_id}" if registry_id else "source registry"
    with _context(source):
        all_repos = ecr.describe_repositories(client, registry_id=registry_id)
    repos = select_repositories(all_repos, filters, registry_id)

    repositories: List[Dict[str, Any]] = []
    selected: List[Image] = []
    failures: List[Dict[str, Any]] = []
    for repo in repos:
        record = repository_record(repo)
        with _context(f"{source}, repository {repo['repositoryName']}"):
            listed = list_repository_images(client, repo, fetch_manifests, registry_id, failures)
            if with_repository_details:
                record.update(repository_details(client, repo, registry_id))
        images = select_images(listed, filters)
        record["image_count"] = len(images)
        repositories.append(record)
        selected.extend(images)
    names = [record["name"] for record in repositories]

    if destination_client is not None:
        comparison = compare_destination(Destination(destination_client, destination_registry_id), names)
        result = compared_result(repositories, selected, comparison, api_calls)
        result["manifest_failures"] = failures
        result["destination_registry_id"] = comparison.registry_id
        return result

    images_out = [image.to_dict() for image in selected]
    result = {
        "repositories": repositories,
        "images": images_out,
        "missing_repositories": [],
        "manifest_failures": failures,
    }
    if destinations:
        result["destinations"] = []
        for destination in destinations:
            comparison = compare_destination(destination, names)
            compared = compared_result(
                repositories, selected, comparison, {"destination": destination.api_calls or {}}
            )
            result["destinations"].append(
                dict(compared, name=destination.name, registry_id=comparison.registry_id)
            )
        api_calls = dict(api_calls or {}, destination=_add_up(d.api_calls or {} for d in destinations))
    result["summary"] = summarize(repositories, images_out, [], api_calls)
    return result


def _add_up(counters: Iterable[Dict[str, int]]) -> Dict[str, int]:
    total: Dict[str, int] = {}
    for counter in counters:
        for operation, calls in counter.items():
            total[operation] = total.get(operation, 0) + calls
    return total
