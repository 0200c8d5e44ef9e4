# -*- coding: utf-8 -*-

# Copyright: Contributors to the cloudops.ecr_replication project
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Amazon ECR client helpers, in the shape of amazon.aws ``module_utils/iam.py``.

Every helper takes a boto3 ECR client, retries throttling with ``AWSRetry.jittered_backoff`` and turns
botocore errors into :class:`AnsibleECRError` (``module.fail_json_aws_error(e)`` renders it). List helpers
walk *every* page with the service maximum page size (the API defaults to 100 results a page).

Missing resources (``RepositoryNotFoundException``, ``LifecyclePolicyNotFoundException``, ...) give the
helper's default (``[]`` or ``None``) instead of an error; see :class:`ECRErrorHandler`.
"""

from __future__ import annotations

from typing import Any
from typing import Dict
from typing import Iterable
from typing import List
from typing import Optional
from typing import Union

from ansible_collections.amazon.aws.plugins.module_utils.botocore import is_boto3_error_code
from ansible_collections.amazon.aws.plugins.module_utils.errors import AWSErrorHandler
from ansible_collections.amazon.aws.plugins.module_utils.exceptions import AnsibleAWSError
from ansible_collections.amazon.aws.plugins.module_utils.retries import AWSRetry

# Service limits (https://docs.aws.amazon.com/AmazonECR/latest/APIReference/)
DESCRIBE_REPOSITORIES_PAGE_SIZE = 1000
DESCRIBE_REPOSITORIES_MAX_NAMES = 100
DESCRIBE_IMAGES_PAGE_SIZE = 1000
LIST_IMAGES_PAGE_SIZE = 1000
BATCH_GET_IMAGE_MAX_IDS = 100
DESCRIBE_IMAGES_MAX_IDS = 100

MEDIA_TYPE_OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MEDIA_TYPE_OCI_INDEX = "application/vnd.oci.image.index.v1+json"
MEDIA_TYPE_DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
MEDIA_TYPE_DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
MEDIA_TYPE_DOCKER_MANIFEST_V1 = "application/vnd.docker.distribution.manifest.v1+json"
INDEX_MEDIA_TYPES = frozenset((MEDIA_TYPE_OCI_INDEX, MEDIA_TYPE_DOCKER_MANIFEST_LIST))
ALL_MANIFEST_MEDIA_TYPES = (
    MEDIA_TYPE_OCI_MANIFEST,
    MEDIA_TYPE_OCI_INDEX,
    MEDIA_TYPE_DOCKER_MANIFEST,
    MEDIA_TYPE_DOCKER_MANIFEST_LIST,
    MEDIA_TYPE_DOCKER_MANIFEST_V1,
)

ImageId = Dict[str, str]

# AWSRetry's defaults know "Throttling" and "RequestLimitExceeded"; ECR answers "ThrottlingException"
# (PutImage is limited to 10 TPS per account and region, the Describe* calls to a few more). Not
# LimitExceededException: ECR uses it for quotas (repositories per registry, backfills...), which waiting does not lift.
ECR_THROTTLING_CODES = ("ThrottlingException", "TooManyRequestsException")


def ecr_retry():
    """``AWSRetry.jittered_backoff`` that also retries ECR's throttling error codes."""
    return AWSRetry.jittered_backoff(catch_extra_error_codes=list(ECR_THROTTLING_CODES))


class AnsibleECRError(AnsibleAWSError):
    pass


class ECRErrorHandler(AWSErrorHandler):
    _CUSTOM_EXCEPTION = AnsibleECRError

    @classmethod
    def _is_missing(cls):
        return is_boto3_error_code(
            [
                "RepositoryNotFoundException",
                "ImageNotFoundException",
                "LifecyclePolicyNotFoundException",
                "RepositoryPolicyNotFoundException",
                "RegistryPolicyNotFoundException",
            ]
        )


def _registry(registry_id: Optional[str]) -> Dict[str, str]:
    return {"registryId": registry_id} if registry_id else {}


def _chunks(items: List[Any], size: int) -> Iterable[List[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def image_id(value: Union[str, ImageId]) -> ImageId:
    """``"sha256:..."`` -> ``{"imageDigest": ...}``, ``"tag"`` -> ``{"imageTag": ...}``, dicts unchanged."""
    if isinstance(value, dict):
        return value
    if value.startswith("sha256:") or value.startswith("sha512:"):
        return {"imageDigest": value}
    return {"imageTag": value}


# Repositories


@ecr_retry()
def _describe_repositories_pages(client, **params) -> List[Dict[str, Any]]:
    paginator = client.get_paginator("describe_repositories")
    return paginator.paginate(**params).build_full_result()["repositories"]


@ECRErrorHandler.list_error_handler("describe repositories", [])
def describe_repositories(
    client, registry_id: Optional[str] = None, repository_names: Optional[List[str]] = None
) -> List[Dict[str, Any]]:
    """Every repository of the registry (all pages), or the named ones (100 names a call).

    A missing named repository makes the whole call return ``[]`` (the API fails the request); look names up
    one by one or list everything and filter when you need to know which one is missing.
    """
    if not repository_names:
        return _describe_repositories_pages(
            client, PaginationConfig={"PageSize": DESCRIBE_REPOSITORIES_PAGE_SIZE}, **_registry(registry_id)
        )
    result: List[Dict[str, Any]] = []
    for names in _chunks(list(repository_names), DESCRIBE_REPOSITORIES_MAX_NAMES):
        result.extend(_describe_repositories_pages(client, repositoryNames=names, **_registry(registry_id)))
    return result


@ECRErrorHandler.list_error_handler("get repository policy", None)
@ecr_retry()
def get_repository_policy(client, repository_name: str, registry_id: Optional[str] = None) -> Optional[str]:
    """The repository policy text (JSON string), or None when the repository has none."""
    result = client.get_repository_policy(repositoryName=repository_name, **_registry(registry_id))
    return result.get("policyText")


@ECRErrorHandler.list_error_handler("get lifecycle policy", None)
@ecr_retry()
def get_lifecycle_policy(client, repository_name: str, registry_id: Optional[str] = None) -> Optional[str]:
    """The lifecycle policy text (JSON string), or None when the repository has none."""
    result = client.get_lifecycle_policy(repositoryName=repository_name, **_registry(registry_id))
    return result.get("lifecyclePolicyText")


@ECRErrorHandler.list_error_handler("list tags for repository", [])
@ecr_retry()
def list_tags_for_resource(client, resource_arn: str) -> List[Dict[str, str]]:
    """The resource tags of a repository, boto3 list format (``[{"Key": .., "Value": ..}]``)."""
    return client.list_tags_for_resource(resourceArn=resource_arn).get("tags", [])


# Images


@ECRErrorHandler.list_error_handler("describe images", [])
@ecr_retry()
def describe_images(
    client,
    repository_name: str,
    registry_id: Optional[str] = None,
    tag_status: Optional[str] = None,
) -> List[Dict[str, Any]]:
    """Every image of a repository (all pages of up to 1,000). ``tag_status``: TAGGED, UNTAGGED or ANY."""
    params: Dict[str, Any] = dict(repositoryName=repository_name, **_registry(registry_id))
    if tag_status:
        params["filter"] = {"tagStatus": tag_status}
    paginator = client.get_paginator("describe_images")
    pages = paginator.paginate(PaginationConfig={"PageSize": DESCRIBE_IMAGES_PAGE_SIZE}, **params)
    return pages.build_full_result()["imageDetails"]


@ECRErrorHandler.list_error_handler("describe images by id", [])
def describe_images_by_id(
    client, repository_name: str, image_ids: List[Union[str, ImageId]], registry_id: Optional[str] = None
) -> List[Dict[str, Any]]:
    """Details of the given images (digests, tags or imageId dicts), 100 a call. Unknown ones are left out."""
    result: List[Dict[str, Any]] = []
    for chunk in _chunks([image_id(i) for i in image_ids], DESCRIBE_IMAGES_MAX_IDS):
        result.extend(_describe_images_chunk(client, repository_name, chunk, registry_id))
    return result


@ecr_retry()
def _describe_images_chunk(client, repository_name, chunk, registry_id):
    try:
        return client.describe_images(repositoryName=repository_name, imageIds=chunk, **_registry(registry_id))[
            "imageDetails"
        ]
    except is_boto3_error_code("ImageNotFoundException"):
        # The whole request fails when one id is unknown: fall back to one id a call for this chunk.
        if len(chunk) == 1:
            return []
        found: List[Dict[str, Any]] = []
        for one in chunk:
            found.extend(_describe_images_chunk(client, repository_name, [one], registry_id))
        return found


@ECRErrorHandler.list_error_handler("list images", [])
@ecr_retry()
def list_images(
    client, repository_name: str, registry_id: Optional[str] = None, tag_status: Optional[str] = None
) -> List[ImageId]:
    """Every ``{imageDigest, imageTag}`` pair of a repository (one entry per tag; untagged: no imageTag)."""
    params: Dict[str, Any] = dict(repositoryName=repository_name, **_registry(registry_id))
    if tag_status:
        params["filter"] = {"tagStatus": tag_status}
    paginator = client.get_paginator("list_images")
    pages = paginator.paginate(PaginationConfig={"PageSize": LIST_IMAGES_PAGE_SIZE}, **params)
    return pages.build_full_result()["imageIds"]


@ecr_retry()
def _batch_get_image_chunk(client, **params) -> Dict[str, Any]:
    return client.batch_get_image(**params)


@ECRErrorHandler.common_error_handler("get images")
def batch_get_image(
    client,
    repository_name: str,
    image_ids: List[Union[str, ImageId]],
    registry_id: Optional[str] = None,
    accepted_media_types: Optional[List[str]] = None,
) -> Dict[str, List[Dict[str, Any]]]:
    """Manifests of the given images, in calls of at most 100 image ids.

    Returns ``{"images": [...], "failures": [...]}`` as the API does, over all calls. Every manifest media type
    (OCI and Docker, indexes included) is accepted unless ``accepted_media_types`` says otherwise, so ECR
    returns each manifest as stored (no conversion, digests unchanged).
    """
    ids = [image_id(i) for i in image_ids]
    result: Dict[str, List[Dict[str, Any]]] = {"images": [], "failures": []}
    media_types = list(accepted_media_types or ALL_MANIFEST_MEDIA_TYPES)
    for chunk in _chunks(ids, BATCH_GET_IMAGE_MAX_IDS):
        answer = _batch_get_image_chunk(
            client,
            repositoryName=repository_name,
            imageIds=chunk,
            acceptedMediaTypes=media_types,
            **_registry(registry_id),
        )
        result["images"].extend(answer.get("images", []))
        result["failures"].extend(answer.get("failures", []))
    return result


# Registry


@ECRErrorHandler.common_error_handler("get authorization token")
@ecr_retry()
def get_authorization_token(client, registry_ids: Optional[List[str]] = None) -> List[Dict[str, Any]]:
    """``authorizationData`` (token, proxyEndpoint, expiresAt). The token is a secret: never log or return it."""
    params: Dict[str, Any] = {"registryIds": list(registry_ids)} if registry_ids else {}
    return client.get_authorization_token(**params)["authorizationData"]


# Call accounting


def count_api_calls(client, counter: Dict[str, int]) -> Dict[str, int]:
    """Count every API call the (botocore) client makes into ``counter`` (operation name -> calls).

    Hooks the client's own ``before-call`` event (each client has its own event emitter), so it sees each request
    the client sends: AWSRetry retries count, botocore's internal retries of one request do not. Works on a
    ``RetryingBotoClientWrapper`` too.
    """
    real = getattr(client, "client", client)

    def _count(model=None, **kwargs: Any) -> None:
        if model is not None:
            counter[model.name] = counter.get(model.name, 0) + 1

    # ``register_first`` on the same key the Stubber (or placebo) uses, which answer calls themselves and would
    # otherwise stop the event before it reaches the counter.
    real.meta.events.register_first("before-call.*.*", _count, unique_id=f"cloudops-count-{id(counter)}")
    return counter


@AWSRetry.jittered_backoff()
def _assume_role(sts, **params):
    return sts.assume_role(**params)["Credentials"]


def assumed_role_connection(sts, role_arn: str, session_name: str, external_id: Optional[str] = None) -> Dict[str, str]:
    """``sts:AssumeRole`` (with retries), as the keyword arguments of ``module.client()`` for that role's session.

    Raises the botocore error when the role cannot be assumed; the credentials are only ever kept in memory."""
    params = dict(RoleArn=role_arn, RoleSessionName=session_name)
    if external_id:
        params["ExternalId"] = external_id
    credentials = _assume_role(sts, **params)
    return {
        "aws_access_key_id": credentials["AccessKeyId"],
        "aws_secret_access_key": credentials["SecretAccessKey"],
        "aws_session_token": credentials["SessionToken"],
    }
