# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters, linking, selection, comparison and summary of image_catalog: plain data, no AWS."""

from __future__ import annotations

import datetime

import pytest

from ansible_collections.cloudops.ecr_replication.plugins.module_utils import image_catalog as ic

UTC = datetime.timezone.utc
NOW = datetime.datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
INDEX = "application/vnd.oci.image.index.v1+json"
MANIFEST = "application/vnd.oci.image.manifest.v1+json"


def d(n: int) -> str:
    return "sha256:" + f"{n:x}".rjust(64, "0")


def img(n, tags=(), pushed_days_ago=0.0, media_type=MANIFEST, size=10, repo="app", artifact_type=None, **kw):
    return ic.Image(
        repository=repo,
        registry_id="111111111111",
        digest=d(n),
        tags=sorted(tags),
        media_type=media_type,
        artifact_type=artifact_type,
        size_bytes=size,
        pushed=(NOW - datetime.timedelta(days=pushed_days_ago)).timestamp(),
        repository_uri=f"127.0.0.1:1/{repo}",
        **kw,
    )


# --- option validation ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value, expected",
    [
        ("30d", NOW - datetime.timedelta(days=30)),
        ("12h", NOW - datetime.timedelta(hours=12)),
        (" 90m ", NOW - datetime.timedelta(minutes=90)),
        ("2W", NOW - datetime.timedelta(weeks=2)),
        ("2024-05-31", datetime.datetime(2024, 5, 31, tzinfo=UTC)),
        ("2024-05-31T12:00:00Z", datetime.datetime(2024, 5, 31, 12, tzinfo=UTC)),
        ("2024-05-31T12:00:00+02:00", datetime.datetime(2024, 5, 31, 10, tzinfo=UTC)),
    ],
)
def test_pushed_after_accepts_dates_and_durations(value, expected):
    assert ic.parse_pushed_after(value, now=NOW) == expected


@pytest.mark.parametrize("value", ["yesterday", "30", "d30", "2024-13-01", "", "30 days", "-3d"])
def test_pushed_after_rejects_garbage_naming_the_option(value):
    with pytest.raises(ic.OptionError) as err:
        ic.parse_pushed_after(value, now=NOW)
    assert err.value.option == "pushed_after"
    assert str(err.value).startswith("pushed_after: ")


def test_build_filters_validates_each_option():
    with pytest.raises(ic.OptionError, match=r"^tag_regex: '\(' is not a valid regular expression"):
        ic.build_filters(tag_regex="(")
    with pytest.raises(ic.OptionError) as err:
        ic.build_filters(most_recent=0)
    assert err.value.option == "most_recent"
    with pytest.raises(ic.OptionError) as err:
        ic.build_filters(repositories=["ok", ""])
    assert err.value.option == "repositories"
    with pytest.raises(ic.OptionError) as err:
        ic.build_filters(exclude_repositories="app/*")
    assert err.value.option == "exclude_repositories"
    filters = ic.build_filters(tag_regex="^v1", pushed_after="1d", most_recent=3, now=NOW)
    assert filters.tag_regex.search("v1.2") and filters.most_recent == 3
    assert filters.pushed_after == NOW - datetime.timedelta(days=1)


# --- repositories -----------------------------------------------------------------------------


REPOS = [{"repositoryName": n} for n in ["team-a/web", "team-a/api", "team-a/api-sandbox", "team-b/web", "tools"]]


def names(repos):
    return [r["repositoryName"] for r in repos]


def test_select_repositories_globs_excludes_prefix_sorted():
    assert names(ic.select_repositories(REPOS, ic.build_filters())) == sorted(names(REPOS))
    f = ic.build_filters(repositories=["team-a/*", "tools"], exclude_repositories=["*-sandbox"])
    assert names(ic.select_repositories(REPOS, f)) == ["team-a/api", "team-a/web", "tools"]
    f = ic.build_filters(repository_prefix="team-")
    assert names(ic.select_repositories(REPOS, f)) == ["team-a/api", "team-a/api-sandbox", "team-a/web", "team-b/web"]


def test_unknown_exact_repository_is_an_error_but_an_unmatched_glob_is_not():
    with pytest.raises(ic.OptionError) as err:
        ic.select_repositories(REPOS, ic.build_filters(repositories=["team-c/web", "tools"]), "111111111111")
    assert err.value.option == "repositories"
    assert "'team-c/web'" in str(err.value) and "111111111111" in str(err.value)
    assert ic.select_repositories(REPOS, ic.build_filters(repositories=["nothing-*"])) == []


# --- manifests, linking -----------------------------------------------------------------------


def test_apply_manifest_index_platforms_skip_attestations():
    index = img(1, ["v1"], media_type=INDEX)
    manifest = {
        "schemaVersion": 2,
        "mediaType": INDEX,
        "manifests": [
            {
                "mediaType": MANIFEST,
                "digest": d(2),
                "size": 5,
                "platform": {"os": "linux", "architecture": "arm64", "variant": "v8"},
            },
            {"mediaType": MANIFEST, "digest": d(3), "size": 5, "platform": {"os": "linux", "architecture": "amd64"}},
            {
                "mediaType": MANIFEST,
                "digest": d(4),
                "size": 5,
                "platform": {"os": "unknown", "architecture": "unknown"},
                "annotations": {"vnd.docker.reference.type": "attestation-manifest"},
            },
        ],
    }
    import json

    assert ic.apply_manifest(index, json.dumps(manifest))
    assert index.platforms == ["linux/amd64", "linux/arm64/v8"]
    assert [m["digest"] for m in index.manifests] == [d(2), d(3), d(4)]
    assert not ic.apply_manifest(img(9), "not json")


def test_link_children_subject_and_cosign_tags():
    index = img(1, ["v1"], media_type=INDEX, manifests=[{"digest": d(2), "platform": "linux/amd64"}, {"digest": d(3)}])
    child_a, child_b = img(2), img(3)
    signature = img(4, subject_digest=d(1), referrer_kind="subject")
    cosign = img(5, ["sha256-" + d(1)[7:] + ".sig"])
    dangling = img(6, ["sha256-" + d(99)[7:] + ".att"])
    images = [index, child_a, child_b, signature, cosign, dangling]
    ic.link_images(images)
    assert child_a.parent_digests == [d(1)] and child_b.parent_digests == [d(1)]
    assert child_a.platform == "linux/amd64" and child_b.platform is None and index.platform is None
    assert cosign.subject_digest == d(1) and cosign.referrer_kind == "tag"
    assert index.referrers == sorted([d(4), d(5)])
    assert dangling.subject_digest == d(99) and dangling.referrer_kind == "tag"
    out = index.to_dict()
    assert out["referrer_count"] == 2 and out["is_index"] and out["tag_uris"] == ["127.0.0.1:1/app:v1"]
    assert out["digest_uri"] == "127.0.0.1:1/app@" + d(1)


# --- image selection --------------------------------------------------------------------------


def family():
    """v1 index (2 platforms, 1 signature), v2 plain image, an untagged orphan, an old v0."""
    images = [
        img(1, ["v1", "latest"], pushed_days_ago=1, media_type=INDEX, manifests=[{"digest": d(2)}, {"digest": d(3)}]),
        img(2, pushed_days_ago=1),
        img(3, pushed_days_ago=1),
        img(4, pushed_days_ago=0.5, subject_digest=d(1), referrer_kind="subject"),
        img(5, ["v2"], pushed_days_ago=2),
        img(6, pushed_days_ago=3),
        img(7, ["v0"], pushed_days_ago=100),
    ]
    ic.link_images(images)
    return images


def digests(images):
    return sorted(int(i.digest[7:], 16) for i in images)


def test_no_filter_keeps_everything():
    assert digests(ic.select_images(family(), ic.build_filters())) == [1, 2, 3, 4, 5, 6, 7]


def test_tag_regex_keeps_attached_untagged_but_not_orphans():
    assert digests(ic.select_images(family(), ic.build_filters(tag_regex="^v1$"))) == [1, 2, 3, 4]
    assert digests(ic.select_images(family(), ic.build_filters(tag_regex="^v[02]"))) == [5, 7]


def test_pushed_after_applies_to_roots_attached_follow():
    selected = ic.select_images(family(), ic.build_filters(pushed_after="36h", now=NOW))
    assert digests(selected) == [1, 2, 3, 4]


def test_most_recent_counts_roots_only():
    assert digests(ic.select_images(family(), ic.build_filters(most_recent=1))) == [1, 2, 3, 4]
    assert digests(ic.select_images(family(), ic.build_filters(most_recent=2))) == [1, 2, 3, 4, 5]
    # untagged roots do not take a slot when they are excluded
    assert digests(ic.select_images(family(), ic.build_filters(most_recent=3, include_untagged=False))) == [1, 5, 7]


def test_include_untagged_false_drops_every_untagged_image():
    assert digests(ic.select_images(family(), ic.build_filters(include_untagged=False))) == [1, 5, 7]


def test_selection_is_sorted_by_push_time():
    pushed = [i.pushed for i in ic.select_images(family(), ic.build_filters())]
    assert pushed == sorted(pushed)


# --- comparison and summary -------------------------------------------------------------------


def dest(*entries):
    return ic.DestinationRepository.from_details(
        [{"imageDigest": d(n), **({"imageTags": list(tags)} if tags else {})} for n, tags in entries]
    )


@pytest.mark.parametrize(
    "destination, status, missing, conflicts, dest_tags",
    [
        (dest((1, ["v1", "latest"])), "present", [], [], ["latest", "v1"]),
        (dest((1, ["v1", "latest", "extra"])), "present", [], [], ["extra", "latest", "v1"]),
        (dest((1, ["v1"])), "missing_tags", ["latest"], [], ["v1"]),
        (dest((1, []), (8, ["other"])), "missing_tags", ["latest", "v1"], [], []),
        (dest((8, ["other"])), "missing", ["latest", "v1"], [], []),
        (None, "missing", ["latest", "v1"], [], []),
        (
            dest((1, ["v1"]), (8, ["latest"])),
            "tag_conflict",
            [],
            [{"tag": "latest", "destination_digest": d(8)}],
            ["v1"],
        ),
        # the digest is absent AND a tag is taken: a conflict, so nothing moves the destination tag silently
        (dest((8, ["v1"])), "tag_conflict", ["latest"], [{"tag": "v1", "destination_digest": d(8)}], []),
    ],
)
def test_compare_image_statuses(destination, status, missing, conflicts, dest_tags):
    result = ic.compare_image(img(1, ["v1", "latest"]), destination)
    assert result["destination_status"] == status
    assert result["missing_tags"] == missing
    assert result["conflicting_tags"] == conflicts
    assert result["destination_tags"] == dest_tags


def test_untagged_image_is_present_or_missing_by_digest():
    assert ic.compare_image(img(2), dest((2, [])))["destination_status"] == "present"
    assert ic.compare_image(img(2), dest((1, ["v1"])))["destination_status"] == "missing"


def test_summary_counts_and_bytes():
    images = family()
    out = ic.compared_images(images, {"app": dest((1, ["v1"]), (2, []), (5, ["v2"]), (7, ["v0"]))})
    summary = ic.summarize([{"name": "app"}, {"name": "empty"}], out, ["empty"], {"source": {"DescribeImages": 2}})
    assert summary["by_status"] == {"present": 3, "missing": 3, "missing_tags": 1, "tag_conflict": 0}
    assert summary["images"] == 7 and summary["tagged"] == 3 and summary["untagged"] == 4 and summary["tags"] == 4
    assert summary["total_bytes"] == 70 and summary["missing_bytes"] == 30  # digests 3, 4, 6
    assert summary["images_per_repository"] == {"app": 7, "empty": 0}
    assert summary["indexes"] == 1 and summary["referrers"] == 1 and summary["missing_repositories"] == 1
    assert summary["api_calls"] == {"source": {"DescribeImages": 2}}


def test_destination_from_list_images_ids_matches_describe_images():
    ids = [
        {"imageDigest": d(1), "imageTag": "v1"},
        {"imageDigest": d(1), "imageTag": "latest"},
        {"imageDigest": d(2)},
    ]
    repo = ic.DestinationRepository.from_image_ids(ids)
    assert repo.digest_tags == {d(1): ["latest", "v1"], d(2): []}
    assert repo.tag_digest == {"v1": d(1), "latest": d(1)}


CONFIG = "application/vnd.oci.image.config.v1+json"
DOCKER = "application/vnd.docker.distribution.manifest.v2+json"


@pytest.mark.parametrize(
    "image, children, mode, expected",
    [
        (img(1, ["v1"], media_type=INDEX), None, "auto", True),  # platforms
        (img(1, ["v1"], media_type=None), None, "auto", True),  # unknown: could be an index
        (img(1, media_type=DOCKER), None, "auto", False),  # schema 2 has no subject
        (img(1, ["v1"], artifact_type=CONFIG), None, "auto", False),  # a plain image
        (img(1, [], artifact_type=CONFIG), None, "auto", False),  # untagged plain image, type known
        (img(1, [], artifact_type="application/spdx+json"), None, "auto", True),  # an SBOM
        (img(1, ["sha256-x.sig"], artifact_type="application/vnd.dev.cosign.artifact.sig.v1+json"), None, "auto", True),
        (img(1, []), None, "auto", True),  # no artifact type reported (moto): untagged ones are read
        (img(1, ["v1"]), None, "auto", False),
        (img(1, []), {d(1)}, "auto", False),  # a platform of an index already read
        (img(1, ["v1"], artifact_type=CONFIG), None, "all", True),
        (img(1, ["v1"], media_type=INDEX), None, "none", False),
    ],
)
def test_needs_manifest(image, children, mode, expected):
    assert ic.needs_manifest(image, mode, children) is expected


def test_a_tagged_platform_manifest_is_selected_by_its_own_tags():
    images = [
        img(1, ["v1"], media_type=INDEX, manifests=[{"digest": d(2)}, {"digest": d(3)}]),
        img(2, ["v1-amd64"]),
        img(3),
        img(4, ["sha256-" + d(2)[7:] + ".sig"]),  # a tagged cosign signature follows its subject
    ]
    ic.link_images(images)
    assert digests(ic.select_images(images, ic.build_filters(tag_regex="amd64$"))) == [2, 4]
    assert digests(ic.select_images(images, ic.build_filters(tag_regex="^v1$"))) == [1, 3]


def test_pushed_after_beyond_the_calendar_is_an_option_error():
    with pytest.raises(ic.OptionError, match="^pushed_after: '100000000d' reaches back before the year 1"):
        ic.parse_pushed_after("100000000d")


@pytest.mark.parametrize(
    "fields,force_tags,expected",
    [
        ({"destination_status": "present"}, False, False),
        ({"destination_status": "missing"}, False, True),
        ({"destination_status": "missing_tags", "missing_tags": ["v2"]}, False, True),
        # the digest is there, every tag conflicts: nothing to do without force_tags (was a build on every re-run)
        ({"destination_status": "tag_conflict", "destination_digest_present": True, "missing_tags": [],
          "destination_tags": []}, False, False),
        ({"destination_status": "tag_conflict", "destination_digest_present": True, "missing_tags": []}, True, True),
        # a conflict, and another tag still missing: the missing tag is work
        ({"destination_status": "tag_conflict", "destination_digest_present": True, "missing_tags": ["v3"]}, False, True),
        # a conflict on a digest that is not there: the digest itself is work
        ({"destination_status": "tag_conflict", "destination_digest_present": False, "missing_tags": []}, False, True),
    ],
)
def test_needs_copy_is_the_one_rule(fields, force_tags, expected):
    assert ic.needs_copy(fields, force_tags) is expected
