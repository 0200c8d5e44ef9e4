# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""ecr_image_info through ansible-playbook against the sandbox, checked against the seeded catalog."""

from __future__ import annotations

import math

import pytest

pytestmark = pytest.mark.sandbox

UNKNOWN = {"os": "unknown", "architecture": "unknown"}


def platform_string(p: dict) -> str:
    return "/".join([p["os"], p["architecture"]] + ([p["variant"]] if p.get("variant") else []))


def by_key(images):
    return {(i["repository"], i["digest"]): i for i in images}


def test_every_image_every_tag_platforms_referrers(sandbox, image_info):
    catalog = sandbox.catalog
    result = image_info({"region": sandbox.source_region})
    assert result["changed"] is False and not result.get("failed"), result.get("msg")
    got = by_key(result["images"])
    expected = by_key(catalog["images"])
    assert set(got) == set(expected)
    for key, want in expected.items():
        image = got[key]
        assert image["tags"] == sorted(want["tags"]), key
        assert image["untagged"] == (not want["tags"])
        assert image["media_type"] == want["media_type"], key
        assert image["artifact_type"] == want["artifact_media_type"], key
        assert image["size_bytes"] == want["image_size_in_bytes"], key
        if want["kind"] == "index":
            assert image["is_index"]
            assert image["platforms"] == sorted(platform_string(p) for p in want["platforms"] if p != UNKNOWN), key
            assert sorted(m["digest"] for m in image["manifests"]) == sorted(want["children"])
        else:
            assert not image["is_index"] and image["platforms"] == []
        if want["kind"] == "index_child":
            assert image["parent_digests"] == [want["index_child_of"]], key
            assert image["platform"] == platform_string(want["platform"]), key
        if want["kind"] == "referrer":
            assert image["subject_digest"] == want["subject"], key
            assert key[1] in got[(key[0], want["subject"])]["referrers"]
        else:
            assert image["subject_digest"] is None, key
    repos = {r["name"]: r for r in result["repositories"]}
    assert set(repos) == {r["name"] for r in catalog["repositories"]}
    for want in catalog["repositories"]:
        repo = repos[want["name"]]
        for field in ("image_tag_mutability", "scan_on_push", "encryption_type", "image_count"):
            assert repo[field] == want[field], (want["name"], field)
        # URIs come from DescribeRepositories (the sandbox's loopback registry), never built from a domain
        assert repo["uri"] == f"{sandbox.registry_host('source')}/{want['name']}"
    summary = result["summary"]
    assert summary["images"] == len(catalog["images"])
    assert summary["tags"] == catalog["totals"]["tags"]
    assert summary["untagged"] == sum(1 for i in catalog["images"] if not i["tags"])
    # cost: one DescribeRepositories page, one DescribeImages page per repository, BatchGetImage only where needed
    calls = summary["api_calls"]["source"]
    repositories, images = len(catalog["repositories"]), len(catalog["images"])
    assert calls["DescribeRepositories"] == math.ceil(repositories / 1000)
    assert calls["DescribeImages"] <= repositories + math.ceil(images / 1000)
    # one BatchGetImage per repository with indexes, one per repository with referrers (each < 100 of them)
    with_index = {i["repository"] for i in catalog["images"] if i["kind"] == "index"}
    with_referrers = {i["repository"] for i in catalog["images"] if i["kind"] == "referrer"}
    assert 0 < calls["BatchGetImage"] <= len(with_index) + len(with_referrers)
    assert set(calls) <= {"DescribeRepositories", "DescribeImages", "BatchGetImage"}


def test_redirect_check_mode_and_filters(sandbox, image_info):
    """Through the redirect, in check mode, with the region from ``module_defaults: group/...aws``."""
    catalog = sandbox.catalog
    filtered, untagged_off, most_recent = image_info.many(
        [
            {
                "args": {"repositories": ["team-a/*"], "tag_regex": r"^1\.2\.3$"},
                "module": "ecr_image_facts",
                "check_mode": True,
            },
            {"args": {"repositories": ["tools/cli"], "include_untagged": False}},
            {"args": {"repositories": ["tools/cli"], "most_recent": 1}},
        ],
        module_defaults={"group/cloudops.ecr_replication.aws": {"region": sandbox.source_region}},
        AWS_DEFAULT_REGION=sandbox.dest_region,  # nothing there: only the group default finds the images
    )
    assert filtered["changed"] is False and not filtered.get("failed"), filtered.get("msg")
    assert {r["name"] for r in filtered["repositories"]} == {"team-a/api", "team-a/worker"}
    tagged = [i for i in filtered["images"] if i["tags"] and not i["subject_digest"]]
    assert [i["tags"] for i in tagged] == [["1", "1.2", "1.2.3", "latest"]]
    api_123 = tagged[0]["digest"]
    # its signature and SBOM follow it; other untagged images do not
    referrers = {i["digest"] for i in catalog["images"] if i["repository"] == "team-a/api" and i["subject"] == api_123}
    assert referrers and {i["digest"] for i in filtered["images"]} == {api_123} | referrers

    assert untagged_off["images"] and all(i["tags"] for i in untagged_off["images"])
    cli = [i for i in catalog["images"] if i["repository"] == "tools/cli"]
    assert len(untagged_off["images"]) == sum(1 for i in cli if i["tags"])
    # the seed pushes in parallel (no fixed order): the newest by pushed_at, whichever it is
    assert len(most_recent["images"]) == 1
    newest = max(untagged_off["images"] + most_recent["images"], key=lambda i: i["pushed_at"])
    assert most_recent["images"][0]["pushed_at"] == newest["pushed_at"]


BAD_INPUT = [
    ({"tag_regex": "(unclosed"}, "tag_regex"),
    ({"repositories": ["team-a/api", "no/such-repository"]}, "repositories"),
    ({"pushed_after": "last tuesday"}, "pushed_after"),
    ({"most_recent": 0}, "most_recent"),
    ({"registry_id": "12345"}, "registry_id"),
    ({"compare_to": {"region": "ap-northeast-2", "role_arn": "not-an-arn"}}, "compare_to.role_arn"),
    ({"compare_to": {"region": "ap-northeast-2", "external_id": "abc-123"}}, "compare_to.external_id"),
    ({"compare_to": {"region": "Seoul"}}, "compare_to.region"),
]


def test_bad_input_fails_cleanly_naming_the_option(sandbox, image_info):
    no_role = "arn:aws:iam::222222222222:role/NoSuchRole"
    calls = [{"args": {"region": sandbox.source_region, **args}} for args, _unused in BAD_INPUT]
    calls.append(
        {"args": {"region": sandbox.source_region, "compare_to": {"region": "ap-northeast-2", "role_arn": no_role}}}
    )
    *results, denied = image_info.many(calls)
    assert denied["failed"] is True and "Traceback" not in str(denied)
    assert denied["msg"].startswith(f"Failed to assume {no_role} (compare_to.role_arn)"), denied["msg"]
    for (args, option), result in zip(BAD_INPUT, results):
        assert result["failed"] is True, args
        assert result["msg"].startswith(option + ":"), result["msg"]
        assert result.get("option") == option
        assert "Traceback" not in str(result) and "module_stderr" not in result
        assert "abc-123" not in str(result)  # the external id is a secret


# --- comparison after copying a subset by hand -------------------------------------------------------


def skopeo_copy(sandbox, repository: str, source_tag: str, dest_tag: str) -> None:
    """skopeo copy --all --preserve-digests, registry to registry (index, children, blobs, same digests)."""
    src_host, dst_host = sandbox.registry_host("source"), sandbox.registry_host("target")
    sandbox.skopeo(
        "copy",
        "--all",
        "--preserve-digests",
        f"docker://{src_host}/{repository}:{source_tag}",
        f"docker://{dst_host}/{repository}:{dest_tag}",
        account_creds={
            src_host: sandbox.registry_password("source"),
            dst_host: sandbox.registry_password("target", sandbox.dest_region),
        },
    )


def add_tags(dst, repository: str, digest: str, tags: list[str]) -> None:
    """PutImage of the manifest already in the target under more tags."""
    got = dst.batch_get_image(repositoryName=repository, imageIds=[{"imageDigest": digest}])["images"][0]
    for tag in tags:
        dst.put_image(
            repositoryName=repository,
            imageManifest=got["imageManifest"],
            imageManifestMediaType=got["imageManifestMediaType"],
            imageDigest=digest,
            imageTag=tag,
        )


@pytest.fixture
def target(sandbox):
    sandbox.reset_target()
    yield sandbox.client("ecr", account="target", region=sandbox.dest_region)
    sandbox.reset_target()


def test_destination_status_after_copying_a_subset(sandbox, image_info, target):
    catalog = sandbox.catalog
    images = {(i["repository"], tuple(sorted(i["tags"]))): i for i in catalog["images"]}
    web_340 = images[("team-b/web", ("3.4", "3.4.0", "latest"))]
    api_123 = images[("team-a/api", ("1", "1.2", "1.2.3", "latest"))]
    api_110 = images[("team-a/api", ("1.1", "1.1.0"))]
    api_100 = images[("team-a/api", ("1.0", "1.0.0"))]
    for name in ("team-b/web", "team-a/api"):
        target.create_repository(repositoryName=name)
    skopeo_copy(sandbox, "team-b/web", "3.4.0", "3.4.0")  # index + children, one tag of three
    skopeo_copy(sandbox, "team-a/api", "1.2.3", "1.2.3")
    add_tags(target, "team-a/api", api_123["digest"], ["1.2", "1", "latest"])  # every tag
    skopeo_copy(sandbox, "team-a/api", "1.1.0", "1.0.0")  # 1.1.0's digest, under 1.0.0: a conflict for 1.0.0

    result = image_info(
        {
            "region": sandbox.source_region,
            "compare_to": {"region": sandbox.dest_region, "role_arn": sandbox.env["SANDBOX_TARGET_ADMIN_ROLE_ARN"]},
        }
    )
    assert not result.get("failed"), result.get("msg")
    got = by_key(result["images"])
    status = {key: image["destination_status"] for key, image in got.items()}
    assert status[("team-b/web", web_340["digest"])] == "missing_tags"
    assert got[("team-b/web", web_340["digest"])]["missing_tags"] == ["3.4", "latest"]
    for child in web_340["children"]:
        assert status[("team-b/web", child)] == "present"
    assert status[("team-a/api", api_123["digest"])] == "present"
    assert status[("team-a/api", api_110["digest"])] == "missing_tags"
    assert status[("team-a/api", api_100["digest"])] == "tag_conflict"
    assert got[("team-a/api", api_100["digest"])]["conflicting_tags"] == [
        {"tag": "1.0.0", "destination_digest": api_110["digest"]}
    ]
    copied = {
        ("team-b/web", web_340["digest"]),
        ("team-a/api", api_123["digest"]),
        ("team-a/api", api_110["digest"]),
        ("team-a/api", api_100["digest"]),
    } | {("team-b/web", c) for c in web_340["children"]}
    for key, value in status.items():
        if key not in copied:
            assert value == "missing", key
    assert result["missing_repositories"] == sorted(
        r["name"] for r in catalog["repositories"] if r["name"] not in ("team-b/web", "team-a/api")
    )
    assert result["destination"]["region"] == sandbox.dest_region
    assert result["destination"]["registry_id"] == sandbox.target_account
    summary = result["summary"]
    assert sum(summary["by_status"].values()) == len(catalog["images"])
    assert summary["by_status"]["present"] == 1 + len(web_340["children"])
    calls = summary["api_calls"]["destination"]
    assert calls == {"AssumeRole": 1, "DescribeRepositories": 1, "DescribeImages": 2}
    repos = {r["name"]: r for r in result["repositories"]}
    assert repos["team-b/web"]["destination_uri"] == f"{sandbox.registry_host('target')}/team-b/web"
