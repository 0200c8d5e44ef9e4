"""The ECR behaviours the product relies on, as the sandbox provides them.

Each test fails if the sandbox stops providing the behaviour (e.g. falls back to moto's own).
"""

from __future__ import annotations

import base64
import json
import socket
import time
import urllib.request
import uuid

import botocore.exceptions
import pytest
import requests

pytestmark = pytest.mark.sandbox


def _registry(sandbox, account="source", region=None, password=None):
    session = requests.Session()
    # trust_env off: requests would otherwise prefer $REQUESTS_CA_BUNDLE over session.verify.
    session.trust_env = False
    session.verify = sandbox.env["REQUESTS_CA_BUNDLE"]
    if password is not None:
        session.auth = ("AWS", password)
    return session, f"https://{sandbox.registry_host(account, region)}"


def _new_repo(sandbox, account="source", region=None, **kwargs) -> str:
    name = f"semantics/{uuid.uuid4().hex[:8]}"
    sandbox.client("ecr", account, region).create_repository(repositoryName=name, **kwargs)
    return name


def _small_image(sandbox, name: str):
    """Copy one seeded single-platform image into a fresh repository through the registry."""
    image = next(i for i in sandbox.catalog["images"] if i["kind"] == "image" and i["tags"])
    creds = {sandbox.registry_host(): sandbox.registry_password()}
    src = f"docker://{sandbox.registry_host()}/{image['repository']}@{image['digest']}"
    sandbox.skopeo("copy", "--preserve-digests", src, f"docker://{sandbox.registry_host()}/{name}:v1", account_creds=creds)
    return image


def test_registry_refuses_requests_without_a_valid_token(sandbox):
    repo = sandbox.catalog["images"][0]["repository"]
    anonymous, base = _registry(sandbox)
    response = anonymous.get(f"{base}/v2/{repo}/tags/list")
    assert response.status_code == 401
    assert "Basic" in response.headers["WWW-Authenticate"]

    forged, _unused = _registry(sandbox, password="not-a-token")
    assert forged.get(f"{base}/v2/{repo}/tags/list").status_code == 401

    # A token of the target account is no good for the source account's registry.
    other, _unused = _registry(sandbox, password=sandbox.registry_password("target"))
    response = other.get(f"{base}/v2/{repo}/tags/list")
    assert response.status_code == 401
    assert "not 111111111111" in response.text

    valid, _unused = _registry(sandbox, password=sandbox.registry_password())
    assert valid.get(f"{base}/v2/{repo}/tags/list").status_code == 200


def test_authorization_token_names_the_sandbox_registry_and_lasts_12_hours(sandbox):
    data = sandbox.client("ecr").get_authorization_token()["authorizationData"][0]
    assert data["proxyEndpoint"] == f"https://{sandbox.registry_host()}"
    assert "amazonaws.com" not in data["proxyEndpoint"]
    hours = (data["expiresAt"].timestamp() - time.time()) / 3600
    assert 11.9 < hours <= 12.0
    assert base64.b64decode(data["authorizationToken"]).decode().startswith("AWS:")
    target = sandbox.client("ecr", "target").get_authorization_token()["authorizationData"][0]
    assert target["proxyEndpoint"] == f"https://{sandbox.registry_host('target')}"


def test_push_to_a_repository_missing_from_the_ecr_api_is_refused(sandbox):
    creds = {sandbox.registry_host(): sandbox.registry_password()}
    image = next(i for i in sandbox.catalog["images"] if i["kind"] == "image" and i["tags"])
    result = sandbox.skopeo(
        "copy",
        f"docker://{sandbox.registry_host()}/{image['repository']}@{image['digest']}",
        f"docker://{sandbox.registry_host()}/does-not-exist/{uuid.uuid4().hex[:6]}:v1",
        account_creds=creds,
        check=False,
    )
    assert result.returncode != 0
    assert "name unknown" in result.stderr.lower()


def test_push_is_visible_at_once_with_exact_digest_and_all_tags(sandbox):
    name = _new_repo(sandbox)
    image = _small_image(sandbox, name)
    creds = {sandbox.registry_host(): sandbox.registry_password()}
    sandbox.skopeo(
        "copy", "--preserve-digests", f"docker://{sandbox.registry_host()}/{name}:v1",
        f"docker://{sandbox.registry_host()}/{name}:stable", account_creds=creds,
    )
    ecr = sandbox.client("ecr")
    details = ecr.describe_images(repositoryName=name)["imageDetails"]
    assert len(details) == 1
    assert details[0]["imageDigest"] == image["digest"]
    assert sorted(details[0]["imageTags"]) == ["stable", "v1"]
    assert details[0]["imageManifestMediaType"] == image["media_type"]
    assert details[0]["imageSizeInBytes"] == image["image_size_in_bytes"]
    got = ecr.batch_get_image(repositoryName=name, imageIds=[{"imageTag": "stable"}])["images"][0]
    assert got["imageId"]["imageDigest"] == image["digest"]
    raw = sandbox.skopeo("inspect", "--raw", f"docker://{sandbox.registry_host()}/{name}:stable", account_creds=creds).stdout
    assert got["imageManifest"] == raw


def test_immutable_repository_refuses_moving_a_tag(sandbox):
    name = _new_repo(sandbox, imageTagMutability="IMMUTABLE")
    _small_image(sandbox, name)
    other = next(i for i in sandbox.catalog["images"] if i["kind"] == "image" and i["tags"] and i["repository"] == "legacy-app" and "4.9.9" in i["tags"])
    creds = {sandbox.registry_host(): sandbox.registry_password()}
    result = sandbox.skopeo(
        "copy", "--preserve-digests",
        f"docker://{sandbox.registry_host()}/{other['repository']}@{other['digest']}",
        f"docker://{sandbox.registry_host()}/{name}:v1", account_creds=creds, check=False,
    )
    assert result.returncode != 0
    assert "immutable" in result.stderr
    ecr = sandbox.client("ecr")
    manifest = ecr.batch_get_image(repositoryName=other["repository"], imageIds=[{"imageDigest": other["digest"]}])
    with pytest.raises(botocore.exceptions.ClientError) as error:
        ecr.put_image(repositoryName=name, imageManifest=manifest["images"][0]["imageManifest"], imageTag="v1")
    assert error.value.response["Error"]["Code"] == "ImageTagAlreadyExistsException"
    # Re-pushing the same digest under the same tag is not a move: the registry accepts it.
    same = sandbox.skopeo(
        "copy", "--preserve-digests", f"docker://{sandbox.registry_host()}/{name}:v1",
        f"docker://{sandbox.registry_host()}/{name}:v1", account_creds=creds, check=False,
    )
    assert same.returncode == 0, same.stderr


def test_put_image_and_batch_delete_image_change_what_the_registry_serves(sandbox):
    name = _new_repo(sandbox)
    image = _small_image(sandbox, name)
    ecr = sandbox.client("ecr")
    manifest = ecr.batch_get_image(repositoryName=name, imageIds=[{"imageTag": "v1"}])["images"][0]["imageManifest"]
    put = ecr.put_image(repositoryName=name, imageManifest=manifest, imageTag="via-api")
    assert put["image"]["imageId"]["imageDigest"] == image["digest"]
    session, base = _registry(sandbox, password=sandbox.registry_password())
    served = session.get(f"{base}/v2/{name}/manifests/via-api", headers={"Accept": image["media_type"]})
    assert served.status_code == 200
    assert served.headers["Docker-Content-Digest"] == image["digest"]

    ecr.batch_delete_image(repositoryName=name, imageIds=[{"imageTag": "via-api"}])
    assert session.get(f"{base}/v2/{name}/manifests/via-api").status_code == 404
    assert session.get(f"{base}/v2/{name}/manifests/v1").status_code == 200
    ecr.batch_delete_image(repositoryName=name, imageIds=[{"imageDigest": image["digest"]}])
    assert session.get(f"{base}/v2/{name}/manifests/{image['digest']}").status_code == 404
    assert ecr.describe_images(repositoryName=name)["imageDetails"] == []


def test_put_image_keeps_the_digest_of_the_exact_bytes(sandbox):
    name = _new_repo(sandbox)
    _small_image(sandbox, name)
    ecr = sandbox.client("ecr")
    manifest = ecr.batch_get_image(repositoryName=name, imageIds=[{"imageTag": "v1"}])["images"][0]["imageManifest"]
    reformatted = json.dumps(json.loads(manifest), indent=3)
    import hashlib

    expected = "sha256:" + hashlib.sha256(reformatted.encode()).hexdigest()
    put = ecr.put_image(repositoryName=name, imageManifest=reformatted, imageTag="pretty")
    assert put["image"]["imageId"]["imageDigest"] == expected
    with pytest.raises(botocore.exceptions.ClientError) as error:
        ecr.put_image(repositoryName=name, imageManifest=manifest, imageTag="x", imageDigest="sha256:" + "0" * 64)
    assert error.value.response["Error"]["Code"] == "ImageDigestDoesNotMatchException"


def test_listing_paginates_like_ecr(sandbox):
    ecr = sandbox.client("ecr")
    all_repos = [r["repositoryName"] for p in ecr.get_paginator("describe_repositories").paginate() for r in p["repositories"]]
    first = ecr.describe_repositories(maxResults=2)
    assert len(first["repositories"]) == 2 and "nextToken" in first
    paged = [r["repositoryName"] for p in ecr.get_paginator("describe_repositories").paginate(PaginationConfig={"PageSize": 2}) for r in p["repositories"]]
    assert paged == all_repos and len(paged) >= len(sandbox.catalog["repositories"])

    busiest = max({i["repository"] for i in sandbox.catalog["images"]}, key=lambda r: sum(1 for i in sandbox.catalog["images"] if i["repository"] == r))
    expected = {i["digest"] for i in sandbox.catalog["images"] if i["repository"] == busiest}
    assert len(expected) >= 3
    pages = list(ecr.get_paginator("describe_images").paginate(repositoryName=busiest, PaginationConfig={"PageSize": 2}))
    assert len(pages) >= 2 and all(len(p["imageDetails"]) <= 2 for p in pages)
    assert {d["imageDigest"] for p in pages for d in p["imageDetails"]} == expected
    ids = [i for p in ecr.get_paginator("list_images").paginate(repositoryName=busiest, PaginationConfig={"PageSize": 3}) for i in p["imageIds"]]
    expected_ids = sum(max(1, len(i["tags"])) for i in sandbox.catalog["images"] if i["repository"] == busiest)
    assert len(ids) == expected_ids
    with pytest.raises(botocore.exceptions.ClientError):
        ecr.describe_images(repositoryName=busiest, maxResults=1001)


def test_assume_role_enforces_existence_trust_and_external_id(sandbox):
    iam = sandbox.client("iam", "target")
    role_name = f"semantics-{uuid.uuid4().hex[:6]}"
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"AWS": f"arn:aws:iam::{sandbox.source_account}:user/sandbox-admin"},
                "Action": "sts:AssumeRole",
                "Condition": {"StringEquals": {"sts:ExternalId": "s3cret-id"}},
            }
        ],
    }
    role_arn = iam.create_role(RoleName=role_name, AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
    sts = sandbox.client("sts")

    def denied(**kwargs):
        with pytest.raises(botocore.exceptions.ClientError) as error:
            sts.assume_role(RoleSessionName="tests", **kwargs)
        return error.value.response["Error"]["Code"]

    assert denied(RoleArn=f"arn:aws:iam::{sandbox.target_account}:role/no-such-role") == "AccessDenied"
    assert denied(RoleArn=role_arn) == "AccessDenied"  # no ExternalId
    assert denied(RoleArn=role_arn, ExternalId="wrong") == "AccessDenied"
    # A caller the trust policy does not name: a session of the target admin role.
    as_target = sandbox.client("sts", "target")
    with pytest.raises(botocore.exceptions.ClientError):
        as_target.assume_role(RoleArn=role_arn, RoleSessionName="tests", ExternalId="s3cret-id")

    session = sandbox.role_session(role_arn, external_id="s3cret-id", region=sandbox.dest_region)
    assert session.client("sts", endpoint_url=sandbox.env["AWS_ENDPOINT_URL"]).get_caller_identity()["Account"] == sandbox.target_account
    ecr = session.client("ecr", endpoint_url=sandbox.env["AWS_ENDPOINT_URL"])
    name = f"semantics/assumed-{uuid.uuid4().hex[:6]}"
    # the role's identity policies decide what its sessions may do: none yet, so nothing
    with pytest.raises(botocore.exceptions.ClientError) as error:
        ecr.create_repository(repositoryName=name)
    assert error.value.response["Error"]["Code"] == "AccessDeniedException"
    assert f"ecr:CreateRepository on resource: arn:aws:ecr:{sandbox.dest_region}:{sandbox.target_account}:repository/{name}" in str(
        error.value
    )
    grant = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "ecr:CreateRepository", "Resource": f"arn:aws:ecr:*:*:repository/{name}"}],
    }
    iam.put_role_policy(RoleName=role_name, PolicyName="create-one", PolicyDocument=json.dumps(grant))
    repo = ecr.create_repository(repositoryName=name)["repository"]
    assert repo["registryId"] == sandbox.target_account
    with pytest.raises(botocore.exceptions.ClientError) as error:
        ecr.create_repository(repositoryName=name + "-other")
    assert error.value.response["Error"]["Code"] == "AccessDeniedException"
    assert repo["repositoryUri"] == f"{sandbox.registry_host('target')}/{name}"


def test_cross_account_copy_with_skopeo_and_an_assumed_role(sandbox):
    name = f"semantics/xacct-{uuid.uuid4().hex[:6]}"
    sandbox.client("ecr", "target").create_repository(repositoryName=name)
    index = next(i for i in sandbox.catalog["images"] if i["kind"] == "index" and i["tags"])
    creds = {sandbox.registry_host(): sandbox.registry_password(), sandbox.registry_host("target"): sandbox.registry_password("target")}
    sandbox.skopeo(
        "copy", "--all", "--preserve-digests",
        f"docker://{sandbox.registry_host()}/{index['repository']}@{index['digest']}",
        f"docker://{sandbox.registry_host('target')}/{name}:{index['tags'][0]}", account_creds=creds,
    )
    details = sandbox.client("ecr", "target").describe_images(repositoryName=name)["imageDetails"]
    digests = {d["imageDigest"] for d in details}
    assert index["digest"] in digests
    assert set(index["children"]) <= digests


def test_referrers_api_lists_signatures(sandbox):
    referrer = next(i for i in sandbox.catalog["images"] if i["subject"])
    session, base = _registry(sandbox, password=sandbox.registry_password())
    response = session.get(f"{base}/v2/{referrer['repository']}/referrers/{referrer['subject']}")
    assert response.status_code == 200
    digests = [m["digest"] for m in response.json()["manifests"]]
    assert referrer["digest"] in digests
    detail = sandbox.client("ecr").describe_images(
        repositoryName=referrer["repository"], imageIds=[{"imageDigest": referrer["digest"]}]
    )["imageDetails"][0]
    assert detail["subjectManifestDigest"] == referrer["subject"]


def test_health_endpoint_reports_every_registry(sandbox):
    with urllib.request.urlopen(f"{sandbox.env['AWS_ENDPOINT_URL']}/_sandbox/health") as response:
        report = json.load(response)
    assert len(report["registries"]) == 4
    assert all(r["alive"] for r in report["registries"].values())


def test_a_client_that_never_completes_its_tls_handshake_holds_up_nobody(sandbox):
    # skopeo opens several connections per image; when the proxy did the TLS handshake in its accept loop, every new
    # connection waited for the handshakes before it, and a silent one stopped the registry for everyone.
    host, port = sandbox.registry_host().rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=5):
        session, base = _registry(sandbox)
        started = time.monotonic()
        assert session.get(f"{base}/v2/", timeout=10).status_code == 401
        assert time.monotonic() - started < 5
