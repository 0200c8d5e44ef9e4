"""ECR image semantics the sandbox owns instead of moto.

moto keeps repositories (settings, policies, tags); this module keeps the images in them, with the
exact manifest bytes and digests a registry push produced, and serves the image APIs with ECR's
pagination. The registry proxy and the API both go through ``EcrImageStore`` so that a push is
visible to ``DescribeImages`` as soon as it returns, and ``PutImage``/``BatchDeleteImage`` change
what the registry serves.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import threading
import time
from dataclasses import dataclass
from dataclasses import field
from typing import Any
from typing import Callable

from moto.ecr.models import ecr_backends

INDEX_MEDIA_TYPES = {
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
}
MAX_MANIFEST_BYTES = 4 * 1024 * 1024
TOKEN_LIFETIME_SECONDS = 12 * 3600
# TokenAuthority.check's reason for an expired token; the registry answers it as ECR does (403, DENIED).
EXPIRED = "authorization token has expired"


class EcrApiError(Exception):
    def __init__(self, code: str, message: str, status: int = 400):
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status


@dataclass
class StoredImage:
    digest: str
    manifest: bytes
    media_type: str
    tags: list[str] = field(default_factory=list)
    pushed_at: float = field(default_factory=time.time)
    size: int = 0

    @property
    def parsed(self) -> dict[str, Any]:
        return json.loads(self.manifest)

    @property
    def artifact_media_type(self) -> str | None:
        manifest = self.parsed
        if manifest.get("artifactType"):
            return manifest["artifactType"]
        return (manifest.get("config") or {}).get("mediaType")

    @property
    def child_digests(self) -> list[str]:
        return [m["digest"] for m in self.parsed.get("manifests", [])]

    @property
    def subject_digest(self) -> str | None:
        return (self.parsed.get("subject") or {}).get("digest")


def digest_of(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


class TokenAuthority:
    """Issues and checks registry passwords bound to one account and region, like ECR's 12 h tokens."""

    # the fault injector (faults.py, token_ttl_seconds) shortens it for the tokens issued while it is set
    lifetime_seconds: float | None = None

    def __init__(self, key: bytes | None = None):
        self._key = key or secrets.token_bytes(32)

    def issue(self, account: str, region: str, now: float | None = None) -> tuple[str, float]:
        expires = (now or time.time()) + (self.lifetime_seconds or TOKEN_LIFETIME_SECONDS)
        payload = base64.urlsafe_b64encode(json.dumps({"a": account, "r": region, "e": expires}).encode()).decode()
        signature = hmac.new(self._key, payload.encode(), hashlib.sha256).hexdigest()
        return f"{payload}.{signature}", expires

    def check(self, password: str, account: str, region: str, now: float | None = None) -> str | None:
        """Return None when valid, otherwise the reason it is refused."""
        try:
            payload, signature = password.rsplit(".", 1)
        except ValueError:
            return "malformed authorization token"
        expected = hmac.new(self._key, payload.encode(), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, signature):
            return "invalid authorization token"
        claims = json.loads(base64.urlsafe_b64decode(payload.encode()))
        if claims["a"] != account or claims["r"] != region:
            return f"authorization token is for registry {claims['a']} in {claims['r']}, not {account} in {region}"
        if claims["e"] < (now or time.time()):
            return EXPIRED
        return None


def _encode_token(offset: int) -> str:
    return base64.urlsafe_b64encode(json.dumps({"offset": offset}).encode()).decode()


def _decode_token(token: str | None) -> int:
    if not token:
        return 0
    try:
        return int(json.loads(base64.urlsafe_b64decode(token.encode()))["offset"])
    except Exception as exc:
        raise EcrApiError("InvalidParameterException", "Invalid parameter at 'nextToken': invalid token") from exc


def _page(items: list[Any], body: dict[str, Any], default: int = 100) -> tuple[list[Any], str | None]:
    max_results = body.get("maxResults", default)
    if not isinstance(max_results, int) or not 1 <= max_results <= 1000:
        raise EcrApiError(
            "InvalidParameterException",
            "Invalid parameter at 'maxResults' failed to satisfy constraint: 'Member must have value between 1 and 1000'",
        )
    offset = _decode_token(body.get("nextToken"))
    page = items[offset : offset + max_results]
    more = offset + max_results < len(items)
    return page, (_encode_token(offset + max_results) if more else None)


class EcrImageStore:
    """Images per repository, kept in moto's ``Repository.images`` list (so moto's RepositoryNotEmpty works)."""

    def __init__(
        self,
        blob_exists: Callable[[str, str, str, str], bool] | None = None,
        manifest_to_registry: Callable[[str, str, str, str, bytes, str], None] | None = None,
        uri_for: Callable[[str, str, str], str] | None = None,
        tokens: TokenAuthority | None = None,
        proxy_endpoint_for: Callable[[str, str], str] | None = None,
    ):
        self.lock = threading.RLock()
        self.blob_exists = blob_exists
        self.manifest_to_registry = manifest_to_registry
        self.uri_for = uri_for
        self.tokens = tokens or TokenAuthority()
        self.proxy_endpoint_for = proxy_endpoint_for
        # Called as listener(account, region, name, image, tag) after every push that stored something (registry
        # or PutImage), inside the store lock: ECR's replication (replication.py) schedules its copies from here.
        self.listeners: list[Callable[[str, str, str, StoredImage, str | None], None]] = []

    # -- repository access -------------------------------------------------
    @staticmethod
    def backend(account: str, region: str):
        return ecr_backends[account][region]

    def repository(self, account: str, region: str, name: str, registry_id: str | None = None):
        if registry_id and registry_id != account:
            raise EcrApiError(
                "RepositoryNotFoundException",
                f"The repository with name '{name}' does not exist in the registry with id '{registry_id}'",
            )
        repo = self.backend(account, region).repositories.get(name)
        if repo is None:
            raise EcrApiError(
                "RepositoryNotFoundException",
                f"The repository with name '{name}' does not exist in the registry with id '{account}'",
            )
        return repo

    def repository_exists(self, account: str, region: str, name: str) -> bool:
        return name in self.backend(account, region).repositories

    def images(self, account: str, region: str, name: str) -> list[StoredImage]:
        repo = self.repository(account, region, name)
        return [image for image in repo.images if isinstance(image, StoredImage)]

    def find(self, account: str, region: str, name: str, reference: str) -> StoredImage | None:
        for image in self.images(account, region, name):
            if reference == image.digest or reference in image.tags:
                return image
        return None

    # -- writes ------------------------------------------------------------
    def _image_size(self, repo_images: list[StoredImage], manifest: dict[str, Any]) -> int:
        if "manifests" in manifest:
            # ECR: for a manifest list, the largest of the manifests it lists.
            sizes = [img.size for img in repo_images if img.digest in {m["digest"] for m in manifest["manifests"]}]
            return max(sizes, default=0)
        total = (manifest.get("config") or {}).get("size", 0)
        for layer in manifest.get("layers") or []:
            total += layer.get("size", 0)
        return total

    def put(
        self,
        account: str,
        region: str,
        name: str,
        manifest_bytes: bytes,
        media_type: str | None,
        tag: str | None,
        expected_digest: str | None = None,
        via_registry: bool = False,
    ) -> StoredImage:
        if len(manifest_bytes) > MAX_MANIFEST_BYTES:
            raise EcrApiError("InvalidParameterException", "Invalid parameter at 'imageManifest': manifest exceeds 4 MiB")
        try:
            manifest = json.loads(manifest_bytes)
        except ValueError as exc:
            raise EcrApiError(
                "InvalidParameterException", "Invalid parameter at 'ImageManifest' failed to satisfy constraint: 'Invalid JSON syntax'"
            ) from exc
        media_type = media_type or manifest.get("mediaType")
        if not media_type:
            raise EcrApiError("InvalidParameterException", "image manifest mediatype not provided in manifest or parameter")
        if manifest.get("mediaType") and manifest["mediaType"] != media_type:
            raise EcrApiError(
                "InvalidParameterException",
                f"Invalid parameter at 'imageManifestMediaType': {media_type} does not match the manifest's {manifest['mediaType']}",
            )
        digest = digest_of(manifest_bytes)
        if expected_digest and expected_digest != digest:
            raise EcrApiError(
                "ImageDigestDoesNotMatchException",
                f"The digest '{expected_digest}' does not match the digest of the manifest '{digest}'",
            )
        with self.lock:
            repo = self.repository(account, region, name)
            images = [image for image in repo.images if isinstance(image, StoredImage)]
            if not via_registry:
                self._check_references(account, region, name, images, manifest)
            existing = next((image for image in images if image.digest == digest), None)
            holder = next((image for image in images if tag and tag in image.tags), None)
            if existing is not None and (tag is None or tag in existing.tags):
                if via_registry:
                    return existing  # a registry push of what is already there is a no-op, as in ECR
                raise EcrApiError(
                    "ImageAlreadyExistsException",
                    f"Image with digest '{digest}' and tag '{tag}' already exists in the repository with name "
                    f"'{name}' in registry with id '{account}'",
                )
            if holder is not None and holder.digest != digest and repo.image_tag_mutability.startswith("IMMUTABLE"):
                raise EcrApiError(
                    "ImageTagAlreadyExistsException",
                    f"The image tag '{tag}' already exists in the '{name}' repository and cannot be overwritten "
                    "because the repository is immutable.",
                )
            if self.manifest_to_registry is not None and not via_registry:
                self.manifest_to_registry(account, region, name, digest, manifest_bytes, media_type)
            if holder is not None and holder.digest != digest:
                holder.tags.remove(tag)
                # A tag moved away from an image leaves it untagged, as in ECR.
            if existing is None:
                existing = StoredImage(digest, manifest_bytes, media_type, size=self._image_size(images, manifest))
                repo.images.append(existing)
            if tag and tag not in existing.tags:
                existing.tags.append(tag)
            for listener in self.listeners:
                listener(account, region, name, existing, tag)
            return existing

    def _check_references(self, account, region, name, images, manifest) -> None:
        children = [m["digest"] for m in manifest.get("manifests", [])]
        present = {image.digest for image in images}
        missing_children = [d for d in children if d not in present]
        if missing_children:
            raise EcrApiError(
                "ReferencedImagesNotFoundException",
                f"The following referenced images were not found: {', '.join(missing_children)}",
            )
        if self.blob_exists is None:
            return
        blobs = [b["digest"] for b in ([manifest.get("config")] if manifest.get("config") else [])]
        blobs += [layer["digest"] for layer in manifest.get("layers") or []]
        missing = [d for d in blobs if not self.blob_exists(account, region, name, d)]
        if missing:
            raise EcrApiError(
                "LayersNotFoundException", f"Layers with digests {missing} required for pushing image into repository "
                f"with name '{name}' in registry with id '{account}' do not exist"
            )

    def delete(self, account: str, region: str, name: str, image_id: dict[str, str]) -> list[dict[str, str]]:
        """Delete by digest (image and its tags) or by tag (the last tag deletes the image). Returns removed ids."""
        with self.lock:
            repo = self.repository(account, region, name)
            images = [image for image in repo.images if isinstance(image, StoredImage)]
            digest, tag = image_id.get("imageDigest"), image_id.get("imageTag")
            target = next(
                (
                    img
                    for img in images
                    if (digest is None or img.digest == digest) and (tag is None or tag in img.tags)
                ),
                None,
            )
            if target is None:
                raise EcrApiError("ImageNotFound", "Requested image not found")
            if tag is not None and len(target.tags) > 1:
                target.tags.remove(tag)
                return [{"imageDigest": target.digest, "imageTag": tag}]
            parents = [img for img in images if target.digest in img.child_digests]
            if parents:
                raise EcrApiError(
                    "ImageReferencedByManifestList",
                    f"Requested image {target.digest} is referenced by one or more image index manifests: "
                    + ", ".join(p.digest for p in parents),
                )
            repo.images.remove(target)
            return [{"imageDigest": target.digest, "imageTag": t} for t in target.tags] or [{"imageDigest": target.digest}]

    # -- API operations ----------------------------------------------------
    def _detail(self, account: str, name: str, image: StoredImage) -> dict[str, Any]:
        detail: dict[str, Any] = {
            "registryId": account,
            "repositoryName": name,
            "imageDigest": image.digest,
            "imageSizeInBytes": image.size,
            "imagePushedAt": image.pushed_at,
            "imageManifestMediaType": image.media_type,
        }
        if image.tags:
            detail["imageTags"] = list(image.tags)
        if image.artifact_media_type:
            detail["artifactMediaType"] = image.artifact_media_type
        if image.subject_digest:
            detail["subjectManifestDigest"] = image.subject_digest
        detail["imageStatus"] = "ACTIVE"
        return detail

    def api_describe_images(self, account: str, region: str, body: dict[str, Any]) -> dict[str, Any]:
        name = body.get("repositoryName")
        self.repository(account, region, name, body.get("registryId"))
        images = self.images(account, region, name)
        if body.get("imageIds"):
            found = []
            for image_id in body["imageIds"]:
                ref = image_id.get("imageDigest") or image_id.get("imageTag")
                image = self.find(account, region, name, ref) if ref else None
                if image is None:
                    raise EcrApiError(
                        "ImageNotFoundException",
                        f"The image with imageId {json.dumps(image_id)} does not exist within the repository with name "
                        f"'{name}' in the registry with id '{account}'",
                    )
                found.append(image)
            return {"imageDetails": [self._detail(account, name, image) for image in found]}
        status = (body.get("filter") or {}).get("tagStatus", "ANY")
        if status == "TAGGED":
            images = [image for image in images if image.tags]
        elif status == "UNTAGGED":
            images = [image for image in images if not image.tags]
        page, token = _page(images, body)
        result: dict[str, Any] = {"imageDetails": [self._detail(account, name, image) for image in page]}
        if token:
            result["nextToken"] = token
        return result

    def api_list_images(self, account: str, region: str, body: dict[str, Any]) -> dict[str, Any]:
        name = body.get("repositoryName")
        self.repository(account, region, name, body.get("registryId"))
        status = (body.get("filter") or {}).get("tagStatus", "ANY")
        ids: list[dict[str, str]] = []
        for image in self.images(account, region, name):
            if image.tags and status in ("ANY", "TAGGED"):
                ids.extend({"imageDigest": image.digest, "imageTag": tag} for tag in image.tags)
            elif not image.tags and status in ("ANY", "UNTAGGED"):
                ids.append({"imageDigest": image.digest})
        page, token = _page(ids, body)
        result: dict[str, Any] = {"imageIds": page}
        if token:
            result["nextToken"] = token
        return result

    def api_batch_get_image(self, account: str, region: str, body: dict[str, Any]) -> dict[str, Any]:
        name = body.get("repositoryName")
        self.repository(account, region, name, body.get("registryId"))
        image_ids = body.get("imageIds") or []
        if not 1 <= len(image_ids) <= 100:
            raise EcrApiError(
                "InvalidParameterException", "Invalid parameter at 'imageIds': must contain between 1 and 100 items"
            )
        accepted = body.get("acceptedMediaTypes")
        result: dict[str, Any] = {"images": [], "failures": []}
        for image_id in image_ids:
            ref = image_id.get("imageDigest") or image_id.get("imageTag")
            image = self.find(account, region, name, ref) if ref else None
            if image is not None and image_id.get("imageTag") and image_id["imageTag"] not in image.tags:
                image = None
            if image is None:
                result["failures"].append(
                    {"imageId": image_id, "failureCode": "ImageNotFound", "failureReason": "Requested image not found"}
                )
                continue
            if accepted and image.media_type not in accepted:
                result["failures"].append(
                    {
                        "imageId": image_id,
                        "failureCode": "UnsupportedImageType",
                        "failureReason": f"Image media type {image.media_type} is not in the accepted media types",
                    }
                )
                continue
            returned_id = {"imageDigest": image.digest}
            if image_id.get("imageTag"):
                returned_id["imageTag"] = image_id["imageTag"]
            result["images"].append(
                {
                    "registryId": account,
                    "repositoryName": name,
                    "imageId": returned_id,
                    "imageManifest": image.manifest.decode("utf-8"),
                    "imageManifestMediaType": image.media_type,
                }
            )
        return result

    def api_put_image(self, account: str, region: str, body: dict[str, Any]) -> dict[str, Any]:
        name = body.get("repositoryName")
        self.repository(account, region, name, body.get("registryId"))
        manifest = body.get("imageManifest")
        if not manifest:
            raise EcrApiError("InvalidParameterException", "Invalid parameter at 'imageManifest': must not be empty")
        image = self.put(
            account,
            region,
            name,
            manifest.encode("utf-8"),
            body.get("imageManifestMediaType"),
            body.get("imageTag"),
            expected_digest=body.get("imageDigest"),
        )
        image_id = {"imageDigest": image.digest}
        if body.get("imageTag"):
            image_id["imageTag"] = body["imageTag"]
        return {
            "image": {
                "registryId": account,
                "repositoryName": name,
                "imageId": image_id,
                "imageManifest": manifest,
                "imageManifestMediaType": image.media_type,
            }
        }

    def api_batch_delete_image(self, account: str, region: str, body: dict[str, Any]) -> dict[str, Any]:
        name = body.get("repositoryName")
        self.repository(account, region, name, body.get("registryId"))
        result: dict[str, Any] = {"imageIds": [], "failures": []}
        for image_id in body.get("imageIds") or []:
            if not image_id.get("imageDigest") and not image_id.get("imageTag"):
                result["failures"].append(
                    {
                        "imageId": image_id,
                        "failureCode": "MissingDigestAndTag",
                        "failureReason": "Invalid request parameters: both tag and digest cannot be null",
                    }
                )
                continue
            try:
                result["imageIds"].extend(self.delete(account, region, name, image_id))
            except EcrApiError as exc:
                result["failures"].append({"imageId": image_id, "failureCode": exc.code, "failureReason": exc.message})
        return result

    def api_describe_repositories(self, account: str, region: str, body: dict[str, Any]) -> dict[str, Any]:
        registry_id = body.get("registryId")
        backend = self.backend(account, region)
        names = body.get("repositoryNames")
        if names:
            if "maxResults" in body or "nextToken" in body:
                raise EcrApiError(
                    "InvalidParameterException", "maxResults and nextToken cannot be used with repositoryNames"
                )
            repos = [self.repository(account, region, repo_name, registry_id) for repo_name in names]
            return {"repositories": [self.repository_dict(r) for r in repos]}
        if registry_id and registry_id != account:
            return {"repositories": []}
        repos = sorted(backend.repositories.values(), key=lambda r: r.name)
        page, token = _page(repos, body)
        result: dict[str, Any] = {"repositories": [self.repository_dict(r) for r in page]}
        if token:
            result["nextToken"] = token
        return result

    def repository_dict(self, repo) -> dict[str, Any]:
        return {
            "repositoryArn": repo.arn,
            "registryId": repo.registry_id,
            "repositoryName": repo.name,
            "repositoryUri": repo.uri,
            "createdAt": repo.created_at.timestamp() if hasattr(repo.created_at, "timestamp") else repo.created_at,
            "imageTagMutability": repo.image_tag_mutability,
            "imageScanningConfiguration": repo.image_scanning_configuration,
            "encryptionConfiguration": repo.encryption_configuration,
        }

    def api_get_authorization_token(self, account: str, region: str, body: dict[str, Any]) -> dict[str, Any]:
        data = []
        # Another account's registry only reaches here when its registry policy allows the caller (the sandbox
        # front's account boundary): the token is then for that registry, as the data plane binds tokens to one.
        for registry_id in body.get("registryIds") or [account]:
            password, expires = self.tokens.issue(registry_id, region)
            data.append(
                {
                    "authorizationToken": base64.b64encode(f"AWS:{password}".encode()).decode(),
                    "expiresAt": expires,
                    "proxyEndpoint": self.proxy_endpoint_for(registry_id, region) if self.proxy_endpoint_for else "",
                }
            )
        return {"authorizationData": data}

    OPERATIONS = {
        "DescribeImages": "api_describe_images",
        "ListImages": "api_list_images",
        "BatchGetImage": "api_batch_get_image",
        "PutImage": "api_put_image",
        "BatchDeleteImage": "api_batch_delete_image",
        "DescribeRepositories": "api_describe_repositories",
        "GetAuthorizationToken": "api_get_authorization_token",
    }

    def handle(self, operation: str, account: str, region: str, body: dict[str, Any]) -> dict[str, Any]:
        return getattr(self, self.OPERATIONS[operation])(account, region, body)
