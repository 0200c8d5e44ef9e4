# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""image_catalog.collect end to end on moto (in-process): listing, manifests, comparison, call counts.

Pagination is checked with botocore's Stubber at the end: moto answers every list call with a single page.
"""

from __future__ import annotations

import json

import pytest

from ansible_collections.cloudops.ecr_replication.plugins.module_utils import image_catalog as ic
from ansible_collections.cloudops.ecr_replication.plugins.module_utils.ecr import count_api_calls


@pytest.fixture
def seeded(moto_pair, oci):
    """app/web: a 2-platform index (v1, latest) with a notation-style signature and a cosign .sig tag;
    app/api: a Docker image (v2) and an untagged one; tools: empty. Destination: app/web only, with v1 on the
    index, 'latest' on another image (conflict), and one platform manifest copied."""
    src, dst = moto_pair
    for name in ("app/web", "app/api", "tools"):
        src.create_repository(repositoryName=name, imageTagMutability="IMMUTABLE" if name == "app/api" else "MUTABLE")
    dst.create_repository(repositoryName="app/web")
    amd, arm = oci.image_manifest("amd"), oci.image_manifest("arm")
    index = oci.index_manifest([(amd, "linux", "amd64", None), (arm, "linux", "arm64", "v8")])
    digests = {"amd": oci.put(src, "app/web", amd), "arm": oci.put(src, "app/web", arm)}
    digests["index"] = oci.put(src, "app/web", index, tags=["v1", "latest"])
    signature = oci.image_manifest(
        "notation", artifact_type="application/vnd.cncf.notary.signature", subject=oci.descriptor(oci.OCI_INDEX, index)
    )
    digests["signature"] = oci.put(src, "app/web", signature)
    cosign = oci.image_manifest("cosign")
    digests["cosign"] = oci.put(src, "app/web", cosign, tags=["sha256-" + digests["index"][7:] + ".sig"])
    docker = json.loads(oci.image_manifest("docker"))
    docker["mediaType"] = oci.DOCKER_MANIFEST
    docker_body = json.dumps(docker).encode()
    digests["docker"] = oci.put(src, "app/api", docker_body, tags=["v2"])
    other = json.loads(oci.image_manifest("docker-old"))
    other["mediaType"] = oci.DOCKER_MANIFEST
    digests["docker_old"] = oci.put(src, "app/api", json.dumps(other).encode())
    # destination
    oci.put(dst, "app/web", index, tags=["v1"])
    oci.put(dst, "app/web", amd)
    digests["dest_other"] = oci.put(dst, "app/web", oci.image_manifest("other"), tags=["latest"])
    return src, dst, digests


def by_digest(result):
    return {image["digest"]: image for image in result["images"]}


def test_listing_every_image_every_tag_platforms_referrers(seeded):
    src, _unused, digests = seeded
    result = ic.collect(src, ic.build_filters())
    assert [r["name"] for r in result["repositories"]] == ["app/api", "app/web", "tools"]
    images = by_digest(result)
    assert len(images) == 7
    index = images[digests["index"]]
    assert index["tags"] == ["latest", "v1"] and index["is_index"]
    assert index["platforms"] == ["linux/amd64", "linux/arm64/v8"]
    assert index["referrers"] == sorted([digests["signature"], digests["cosign"]]) and index["referrer_count"] == 2
    assert images[digests["amd"]]["parent_digests"] == [digests["index"]]
    assert images[digests["signature"]]["subject_digest"] == digests["index"]
    assert images[digests["signature"]]["referrer_kind"] == "subject"
    assert images[digests["signature"]]["artifact_type"] == "application/vnd.cncf.notary.signature"
    assert images[digests["cosign"]]["referrer_kind"] == "tag"
    assert images[digests["docker_old"]]["untagged"] and images[digests["docker_old"]]["tags"] == []
    web = next(r for r in result["repositories"] if r["name"] == "app/web")
    assert index["digest_uri"] == f"{web['uri']}@{digests['index']}"
    assert index["tag_uris"] == [f"{web['uri']}:latest", f"{web['uri']}:v1"]
    api = next(r for r in result["repositories"] if r["name"] == "app/api")
    assert api["image_tag_mutability"] == "IMMUTABLE" and api["image_count"] == 2
    assert result["summary"]["images_per_repository"] == {"app/api": 2, "app/web": 5, "tools": 0}
    assert all(i["destination_status"] is None for i in result["images"])


def test_comparison_statuses_and_missing_repositories(seeded):
    src, dst, digests = seeded
    result = ic.collect(src, ic.build_filters(), destination_client=dst)
    images = by_digest(result)
    status = {name: images[digests[name]]["destination_status"] for name in digests if digests[name] in images}
    assert status == {
        "amd": "present",
        "arm": "missing",
        "index": "tag_conflict",  # 'latest' is another image in the destination
        "signature": "missing",
        "cosign": "missing",
        "docker": "missing",  # the whole repository is missing
        "docker_old": "missing",
    }
    assert images[digests["index"]]["conflicting_tags"] == [
        {"tag": "latest", "destination_digest": digests["dest_other"]}
    ]
    assert images[digests["index"]]["destination_tags"] == ["v1"]
    assert result["missing_repositories"] == ["app/api", "tools"]
    repos = {r["name"]: r for r in result["repositories"]}
    assert repos["app/web"]["destination_exists"] and repos["app/web"]["destination_uri"].endswith("/app/web")
    assert not repos["tools"]["destination_exists"] and repos["tools"]["destination_uri"] is None
    summary = result["summary"]
    assert summary["by_status"] == {"present": 1, "missing": 5, "missing_tags": 0, "tag_conflict": 1}
    assert summary["missing_repositories"] == 2


def test_after_copying_the_rest_everything_is_present(seeded, oci):
    src, dst, digests = seeded
    dst.batch_delete_image(repositoryName="app/web", imageIds=[{"imageTag": "latest"}])
    for repo in ("app/web", "app/api"):
        for detail in src.describe_images(repositoryName=repo)["imageDetails"]:
            if repo == "app/api":
                try:
                    dst.create_repository(repositoryName=repo)
                except dst.exceptions.RepositoryAlreadyExistsException:
                    pass
            got = src.batch_get_image(repositoryName=repo, imageIds=[{"imageDigest": detail["imageDigest"]}])
            body = got["images"][0]["imageManifest"].encode()
            for tag in detail.get("imageTags") or [None]:
                try:
                    oci.put(dst, repo, body, tags=[tag] if tag else [])
                except dst.exceptions.ImageAlreadyExistsException:
                    pass
    result = ic.collect(src, ic.build_filters(repositories=["app/*"]), destination_client=dst)
    assert {i["destination_status"] for i in result["images"]} == {"present"}
    assert result["missing_repositories"] == [] and result["summary"]["missing_bytes"] == 0


def test_filters_through_collect(seeded):
    src, _unused, digests = seeded
    result = ic.collect(src, ic.build_filters(repositories=["app/web"], tag_regex="^v1$"))
    assert set(by_digest(result)) == {digests[n] for n in ("amd", "arm", "index", "signature", "cosign")}
    result = ic.collect(src, ic.build_filters(repository_prefix="app/", include_untagged=False))
    assert set(by_digest(result)) == {digests[n] for n in ("index", "cosign", "docker")}
    with pytest.raises(ic.OptionError) as err:
        ic.collect(src, ic.build_filters(repositories=["app/nope"]))
    assert err.value.option == "repositories"


def test_repository_details(seeded):
    src, _unused, _unused = seeded
    lifecycle = {
        "rules": [
            {
                "rulePriority": 1,
                "description": "expire untagged images after 14 days",
                "selection": {
                    "tagStatus": "untagged",
                    "countType": "sinceImagePushed",
                    "countUnit": "days",
                    "countNumber": 14,
                },
                "action": {"type": "expire"},
            }
        ]
    }
    src.put_lifecycle_policy(repositoryName="tools", lifecyclePolicyText=json.dumps(lifecycle))
    src.tag_resource(
        resourceArn=src.describe_repositories(repositoryNames=["tools"])["repositories"][0]["repositoryArn"],
        tags=[{"Key": "team", "Value": "ops"}],
    )
    result = ic.collect(src, ic.build_filters(repositories=["tools", "app/web"]), with_repository_details=True)
    repos = {r["name"]: r for r in result["repositories"]}
    assert repos["tools"]["lifecycle_policy"] == lifecycle and repos["tools"]["tags"] == {"team": "ops"}
    assert repos["tools"]["repository_policy"] is None and repos["app/web"]["lifecycle_policy"] is None


def test_call_counts_stay_within_the_bound(seeded):
    """R repositories, one page each (moto): DescribeRepositories once per side, DescribeImages once per
    repository, BatchGetImage only for app/web (indexes first, then the possible referrers) and never for the
    Docker-only repository or the destination."""
    src, dst, _unused = seeded
    calls = {"source": count_api_calls(src, {}), "destination": count_api_calls(dst, {})}
    result = ic.collect(src, ic.build_filters(), destination_client=dst, api_calls=calls)
    assert calls["source"] == {"DescribeRepositories": 1, "DescribeImages": 3, "BatchGetImage": 2}
    assert calls["destination"] == {"DescribeRepositories": 1, "DescribeImages": 1}
    assert result["summary"]["api_calls"] == calls
    calls["source"].clear()
    ic.collect(src, ic.build_filters(), fetch_manifests="none")
    assert "BatchGetImage" not in calls["source"]


# --- pagination and cost at scale: Stubber (moto returns one page) ----------------------------------------


def test_large_registry_pages_cost(aws_env):
    """1,001 repositories and 2,500 images in one of them: 2 DescribeRepositories pages, 3 DescribeImages pages
    for the big repository + 1 per other repository, no BatchGetImage (Docker manifests cannot be indexes or
    referrers)."""
    import boto3
    from botocore.stub import Stubber

    client = boto3.client("ecr", region_name="ap-south-1")
    calls = count_api_calls(client, {})
    repos = [
        {"repositoryName": f"r{n:04d}", "repositoryUri": f"127.0.0.1:1/r{n:04d}", "registryId": "111111111111"}
        for n in range(1001)
    ]

    def detail(repo, n):
        return {
            "repositoryName": repo,
            "registryId": "111111111111",
            "imageDigest": f"sha256:{n:064x}",
            "imageTags": [f"t{n}", f"u{n}"],
            "imageManifestMediaType": "application/vnd.docker.distribution.manifest.v2+json",
            "imageSizeInBytes": 10,
        }

    with Stubber(client) as stub:
        stub.add_response(
            "describe_repositories", {"repositories": repos[:1000], "nextToken": "r2"}, {"maxResults": 1000}
        )
        stub.add_response(
            "describe_repositories", {"repositories": repos[1000:]}, {"maxResults": 1000, "nextToken": "r2"}
        )
        for repo in repos:
            name = repo["repositoryName"]
            if name == "r0000":
                pages = [range(0, 1000), range(1000, 2000), range(2000, 2500)]
            else:
                pages = [range(0)]
            for i, page in enumerate(pages):
                response = {"imageDetails": [detail(name, n) for n in page]}
                expected = {"repositoryName": name, "maxResults": 1000}
                if i + 1 < len(pages):
                    response["nextToken"] = f"p{i + 1}"
                if i:
                    expected["nextToken"] = f"p{i}"
                stub.add_response("describe_images", response, expected)
        result = ic.collect(client, ic.build_filters())
        stub.assert_no_pending_responses()
    assert calls == {"DescribeRepositories": 2, "DescribeImages": 1000 + 3}
    assert result["summary"]["images"] == 2500 and result["summary"]["tags"] == 5000
    assert result["summary"]["repositories"] == 1001


# --- errors and failures moto does not produce: Stubber ------------------------------------------------------


def _stubbed(region):
    import boto3

    return boto3.client("ecr", region_name=region)


def test_destination_error_says_where(aws_env):
    from botocore.stub import Stubber

    from ansible_collections.cloudops.ecr_replication.plugins.module_utils import ecr

    src, dst = _stubbed("ap-south-1"), _stubbed("ap-northeast-2")
    repo = {"repositoryName": "app", "repositoryUri": "127.0.0.1:1/app", "registryId": "111111111111"}
    with Stubber(src) as s, Stubber(dst) as d:
        s.add_response("describe_repositories", {"repositories": [repo]})
        s.add_response("describe_images", {"imageDetails": []})
        d.add_response("describe_repositories", {"repositories": [dict(repo, registryId="222222222222")]})
        d.add_client_error("describe_images", "AccessDeniedException", "not allowed", 400)
        with pytest.raises(ecr.AnsibleECRError) as err:
            ic.collect(src, ic.build_filters(), destination_client=dst, destination_registry_id="222222222222")
    assert (
        err.value.message
        == "Failed to describe images (destination ap-northeast-2 registry 222222222222, repository app)"
    )
    assert err.value.exception.response["Error"]["Code"] == "AccessDeniedException"


def test_manifest_failures_are_reported_not_fatal(aws_env):
    from botocore.stub import Stubber

    src = _stubbed("ap-south-1")
    repo = {"repositoryName": "app", "repositoryUri": "127.0.0.1:1/app"}
    index = {
        "repositoryName": "app",
        "imageDigest": "sha256:" + "1" * 64,
        "imageTags": ["v1"],
        "imageManifestMediaType": "application/vnd.oci.image.index.v1+json",
    }
    with Stubber(src) as s:
        s.add_response("describe_repositories", {"repositories": [repo]})
        s.add_response("describe_images", {"imageDetails": [index]})
        s.add_response(
            "batch_get_image",
            {
                "images": [],
                "failures": [
                    {
                        "imageId": {"imageDigest": index["imageDigest"]},
                        "failureCode": "UnsupportedImageType",
                        "failureReason": "nope",
                    }
                ],
            },
        )
        result = ic.collect(src, ic.build_filters())
    assert result["manifest_failures"] == [
        {"repository": "app", "digest": index["imageDigest"], "code": "UnsupportedImageType", "reason": "nope"}
    ]
    assert result["images"][0]["platforms"] == [] and result["images"][0]["tags"] == ["v1"]


def test_subject_from_describe_images_needs_no_manifest(aws_env):
    """Current ECR reports ``subjectManifestDigest`` (moto and the sandbox do not): referrers are linked without a
    single BatchGetImage when there is no index. Stubber: the call list is exact, any extra call fails."""
    from botocore.stub import Stubber

    src = _stubbed("ap-south-1")
    calls = count_api_calls(src, {})
    image = {
        "repositoryName": "app",
        "imageDigest": "sha256:" + "1" * 64,
        "imageTags": ["v1"],
        "imageManifestMediaType": "application/vnd.oci.image.manifest.v1+json",
        "artifactMediaType": "application/vnd.oci.image.config.v1+json",
    }
    sbom = {
        "repositoryName": "app",
        "imageDigest": "sha256:" + "2" * 64,
        "imageManifestMediaType": "application/vnd.oci.image.manifest.v1+json",
        "artifactMediaType": "application/spdx+json",
        "subjectManifestDigest": image["imageDigest"],
    }
    with Stubber(src) as s:
        s.add_response("describe_repositories", {"repositories": [{"repositoryName": "app", "repositoryUri": "h/app"}]})
        s.add_response("describe_images", {"imageDetails": [image, sbom]})
        result = ic.collect(src, ic.build_filters(tag_regex="^v1$"))
    assert calls == {"DescribeRepositories": 1, "DescribeImages": 1}
    images = {i["digest"]: i for i in result["images"]}
    assert images[sbom["imageDigest"]]["subject_digest"] == image["imageDigest"]
    assert images[image["imageDigest"]]["referrers"] == [sbom["imageDigest"]]


def test_several_destinations_list_the_source_once(seeded, oci):
    """Two destinations in one collect: each gets the comparison a single compare_to would give, while the source
    is listed once (the same calls as a listing without destination)."""
    import boto3

    src, dst, digests = seeded
    third = boto3.client("ecr", region_name="eu-west-1")
    third.create_repository(repositoryName="app/api")
    oci.put(third, "app/api", src.batch_get_image(repositoryName="app/api", imageIds=[{"imageTag": "v2"}])["images"][0][
        "imageManifest"
    ].encode(), tags=["v2"], media_type=oci.DOCKER_MANIFEST)
    single = ic.collect(src, ic.build_filters(), destination_client=dst)

    calls = {"source": count_api_calls(src, {})}
    targets = [
        ic.Destination(dst, name="seoul", api_calls=count_api_calls(dst, {})),
        ic.Destination(third, name="ireland", api_calls=count_api_calls(third, {})),
    ]
    result = ic.collect(src, ic.build_filters(), destinations=targets, api_calls=calls)

    assert calls["source"] == {"DescribeRepositories": 1, "DescribeImages": 3, "BatchGetImage": 2}
    assert [d["name"] for d in result["destinations"]] == ["seoul", "ireland"]
    seoul, ireland = result["destinations"]
    for key in ("repositories", "images", "missing_repositories"):
        assert seoul[key] == single[key]
    assert seoul["summary"]["by_status"] == single["summary"]["by_status"]
    assert seoul["summary"]["api_calls"] == {"destination": {"DescribeRepositories": 1, "DescribeImages": 1}}
    assert ireland["missing_repositories"] == ["app/web", "tools"]
    status = {i["digest"]: i["destination_status"] for i in ireland["images"]}
    assert status[digests["docker"]] == "present" and status[digests["docker_old"]] == "missing"
    assert status[digests["index"]] == "missing"
    # the source records are shared, not changed by a comparison
    assert all(i["destination_status"] is None for i in result["images"])
    assert "destination_exists" not in result["repositories"][0]
    assert result["summary"]["api_calls"]["destination"] == {"DescribeRepositories": 2, "DescribeImages": 2}


def test_destination_client_and_destinations_are_exclusive(seeded):
    src, dst, _unused = seeded
    with pytest.raises(ValueError):
        ic.collect(src, ic.build_filters(), destination_client=dst, destinations=[ic.Destination(dst)])


def test_image_blobs_of_images_and_indexes(seeded, oci):
    """What each copy uploads (batching.share_blobs plans with it): config and layers; an index, those of its
    platform manifests, read although not asked for; one BatchGetImage per repository."""
    src, _dst, digests = seeded
    calls = count_api_calls(src, {})
    found = ic.image_blobs(
        src, [{"repository": "app/web", "digest": digests["index"]}, {"repository": "app/api", "digest": digests["docker"]}]
    )
    amd, arm = json.loads(oci.image_manifest("amd")), json.loads(oci.image_manifest("arm"))
    expected = {b["digest"]: b["size"] for m in (amd, arm) for b in [m["config"]] + m["layers"]}
    assert found[("app/web", digests["index"])] == expected
    docker = json.loads(oci.image_manifest("docker"))
    assert set(found[("app/api", digests["docker"])]) == {docker["config"]["digest"], docker["layers"][0]["digest"]}
    assert calls == {"BatchGetImage": 3}  # app/web: the index, then its two platforms; app/api: one
