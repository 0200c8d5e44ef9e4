# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""module_utils/ecr.py: behaviour against moto (in-process), and against botocore's Stubber for what moto
cannot produce: several pages with nextToken (moto returns one page), ThrottlingException, AccessDenied."""

from __future__ import annotations

import hashlib
import json

import pytest

from ansible_collections.cloudops.ecr_replication.plugins.module_utils import ecr

OCI = "application/vnd.oci.image.manifest.v1+json"


def manifest(n: int) -> str:
    return json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI,
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json",
                "digest": "sha256:" + "0" * 64,
                "size": 2,
            },
            "layers": [
                {"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": f"sha256:{n:064x}", "size": n}
            ],
        }
    )


def push(client, repo: str, n: int, tag: str | None = None) -> str:
    body = manifest(n)
    digest = "sha256:" + hashlib.sha256(body.encode()).hexdigest()
    params = dict(repositoryName=repo, imageManifest=body, imageManifestMediaType=OCI, imageDigest=digest)
    if tag:
        params["imageTag"] = tag
    client.put_image(**params)
    return digest


# --- moto: behaviour --------------------------------------------------------------------------


def test_describe_repositories_and_images_moto(moto_ecr):
    for name in ("bin", "app"):
        moto_ecr.create_repository(repositoryName=name)
    d1 = push(moto_ecr, "app", 1, "v1")
    push(moto_ecr, "app", 1, "latest")
    d2 = push(moto_ecr, "app", 2)
    assert sorted(r["repositoryName"] for r in ecr.describe_repositories(moto_ecr)) == ["app", "bin"]
    assert [r["repositoryName"] for r in ecr.describe_repositories(moto_ecr, repository_names=["bin"])] == ["bin"]
    details = {d["imageDigest"]: sorted(d.get("imageTags", [])) for d in ecr.describe_images(moto_ecr, "app")}
    assert details == {d1: ["latest", "v1"], d2: []}
    ids = ecr.list_images(moto_ecr, "app")
    assert sorted((i["imageDigest"], i.get("imageTag") or "") for i in ids) == sorted(
        [(d1, "v1"), (d1, "latest"), (d2, "")]
    )
    # missing things: the list default, not an error
    assert ecr.describe_images(moto_ecr, "nope") == []
    assert ecr.describe_repositories(moto_ecr, repository_names=["nope"]) == []
    assert ecr.get_lifecycle_policy(moto_ecr, "app") is None
    assert ecr.get_repository_policy(moto_ecr, "app") is None
    assert [d["imageDigest"] for d in ecr.describe_images_by_id(moto_ecr, "app", ["v1"])] == [d1]


def test_policies_and_tags_moto(moto_ecr):
    arn = moto_ecr.create_repository(repositoryName="app", tags=[{"Key": "team", "Value": "x"}])["repository"][
        "repositoryArn"
    ]
    lifecycle = {
        "rules": [
            {
                "rulePriority": 1,
                "selection": {
                    "tagStatus": "untagged",
                    "countType": "sinceImagePushed",
                    "countUnit": "days",
                    "countNumber": 7,
                },
                "action": {"type": "expire"},
            }
        ]
    }
    policy = {
        "Version": "2012-10-17",
        "Statement": [{"Sid": "r", "Effect": "Allow", "Principal": "*", "Action": "ecr:BatchGetImage"}],
    }
    moto_ecr.put_lifecycle_policy(repositoryName="app", lifecyclePolicyText=json.dumps(lifecycle))
    moto_ecr.set_repository_policy(repositoryName="app", policyText=json.dumps(policy))
    assert json.loads(ecr.get_lifecycle_policy(moto_ecr, "app")) == lifecycle
    assert json.loads(ecr.get_repository_policy(moto_ecr, "app")) == policy
    assert ecr.list_tags_for_resource(moto_ecr, arn) == [{"Key": "team", "Value": "x"}]


def test_batch_get_image_batches_of_100_and_counts_calls(moto_ecr):
    moto_ecr.create_repository(repositoryName="app")
    digests = [push(moto_ecr, "app", n) for n in range(1, 251)]
    calls = ecr.count_api_calls(moto_ecr, {})
    result = ecr.batch_get_image(moto_ecr, "app", digests + ["sha256:" + "f" * 64])
    assert calls == {"BatchGetImage": 3}  # 251 ids: 100 + 100 + 51
    assert sorted(i["imageId"]["imageDigest"] for i in result["images"]) == sorted(digests)
    assert len(result["failures"]) == 1


def test_image_id_forms():
    assert ecr.image_id("sha256:abc") == {"imageDigest": "sha256:abc"}
    assert ecr.image_id("v1") == {"imageTag": "v1"}
    assert ecr.image_id({"imageTag": "x"}) == {"imageTag": "x"}


# --- Stubber: pagination, throttling, error codes (moto produces none of these) -------------------


def detail(n: int) -> dict:
    return {"repositoryName": "app", "imageDigest": f"sha256:{n:064x}", "imageTags": [f"t{n}"]}


def test_describe_images_walks_every_page_with_the_maximum_page_size(stubbed):
    client, stubber = stubbed
    calls = ecr.count_api_calls(client, {})
    stubber.add_response(
        "describe_images",
        {"imageDetails": [detail(n) for n in range(1000)], "nextToken": "page-2"},
        {"repositoryName": "app", "maxResults": 1000},
    )
    stubber.add_response(
        "describe_images",
        {"imageDetails": [detail(n) for n in range(1000, 1500)]},
        {"repositoryName": "app", "maxResults": 1000, "nextToken": "page-2"},
    )
    assert len(ecr.describe_images(client, "app")) == 1500
    assert calls == {"DescribeImages": 2}


def test_describe_repositories_pages_and_registry_id(stubbed):
    client, stubber = stubbed

    def repo(n):
        return {"repositoryName": f"r{n}", "repositoryUri": f"127.0.0.1:1/r{n}"}

    stubber.add_response(
        "describe_repositories",
        {"repositories": [repo(n) for n in range(1000)], "nextToken": "t"},
        {"registryId": "111111111111", "maxResults": 1000},
    )
    stubber.add_response(
        "describe_repositories",
        {"repositories": [repo(1000)]},
        {"registryId": "111111111111", "maxResults": 1000, "nextToken": "t"},
    )
    assert len(ecr.describe_repositories(client, registry_id="111111111111")) == 1001


def test_list_images_pages(stubbed):
    client, stubber = stubbed
    stubber.add_response("list_images", {"imageIds": [{"imageDigest": "sha256:1"}], "nextToken": "n"})
    stubber.add_response("list_images", {"imageIds": [{"imageDigest": "sha256:2", "imageTag": "x"}]})
    assert [i["imageDigest"] for i in ecr.list_images(client, "app")] == ["sha256:1", "sha256:2"]


def test_throttling_is_retried_with_backoff(stubbed, no_sleep):
    client, stubber = stubbed
    calls = ecr.count_api_calls(client, {})
    stubber.add_client_error("describe_images", "ThrottlingException", "Rate exceeded", 400)
    stubber.add_response("describe_images", {"imageDetails": [detail(1)]})
    assert ecr.describe_images(client, "app") == [detail(1)]
    assert calls == {"DescribeImages": 2}
    assert len(no_sleep) == 1


def test_throttling_on_batch_get_image_retries_only_that_batch(stubbed, no_sleep):
    client, stubber = stubbed
    ids = [f"sha256:{n:064x}" for n in range(150)]
    stubber.add_response("batch_get_image", {"images": [], "failures": []})
    stubber.add_client_error("batch_get_image", "ThrottlingException", "Rate exceeded", 400)
    stubber.add_response("batch_get_image", {"images": [], "failures": []})
    assert ecr.batch_get_image(client, "app", ids) == {"images": [], "failures": []}
    assert len(no_sleep) == 1


def test_access_denied_is_an_ansible_ecr_error(stubbed):
    client, stubber = stubbed
    stubber.add_client_error("describe_repositories", "AccessDeniedException", "not allowed", 400)
    with pytest.raises(ecr.AnsibleECRError) as err:
        ecr.describe_repositories(client)
    assert err.value.message == "Failed to describe repositories"
    assert err.value.exception.response["Error"]["Code"] == "AccessDeniedException"


@pytest.mark.parametrize(
    "call, code, expected",
    [
        (lambda c: ecr.get_lifecycle_policy(c, "app"), "LifecyclePolicyNotFoundException", None),
        (lambda c: ecr.get_repository_policy(c, "app"), "RepositoryPolicyNotFoundException", None),
        (lambda c: ecr.describe_images(c, "app"), "RepositoryNotFoundException", []),
    ],
)
def test_missing_resources_give_the_default(stubbed, call, code, expected):
    client, stubber = stubbed
    name = {
        "LifecyclePolicyNotFoundException": "get_lifecycle_policy",
        "RepositoryPolicyNotFoundException": "get_repository_policy",
        "RepositoryNotFoundException": "describe_images",
    }[code]
    stubber.add_client_error(name, code, "missing", 400)
    assert call(client) == expected


def test_describe_images_by_id_falls_back_when_one_id_is_unknown(stubbed):
    client, stubber = stubbed
    stubber.add_client_error("describe_images", "ImageNotFoundException", "gone", 400)
    stubber.add_response("describe_images", {"imageDetails": [detail(1)]})
    stubber.add_client_error("describe_images", "ImageNotFoundException", "gone", 400)
    assert ecr.describe_images_by_id(stubbed[0], "app", [detail(1)["imageDigest"], "sha256:" + "e" * 64]) == [detail(1)]


def test_authorization_token_error_is_reported(stubbed):
    client, stubber = stubbed
    stubber.add_client_error("get_authorization_token", "AccessDeniedException", "no", 400)
    with pytest.raises(ecr.AnsibleECRError, match="get authorization token"):
        ecr.get_authorization_token(client)
