"""batching.py: input normalisation, batches within CodeBuild's limits, encoding round trip, plan and cost."""

import hashlib
import random

import pytest

from ansible_collections.cloudops.ecr_replication.plugins.module_utils import batching


def digest(n):
    return "sha256:" + hashlib.sha256(str(n).encode()).hexdigest()


def image(n, repo="team-a/api", tags=None, **extra):
    return dict(repository=repo, digest=digest(n), tags=["v%d" % n] if tags is None else tags, **extra)


def test_round_trip_through_env_parts():
    rng = random.Random(7)
    images = [image(n, repo="team-%d/svc-%d" % (n % 3, n % 7), tags=["t%d-%d" % (n, k) for k in range(rng.randint(0, 30))])
              for n in range(200)]
    env = batching.split_env(batching.encode_batch(images))
    assert int(env["REPL_BATCH_PARTS"]) == len(env) - 1 > 1
    assert all(len(value) <= 4000 < batching.CODEBUILD_ENV_VALUE_LIMIT for value in env.values())
    assert batching.decode_batch(batching.join_env(env)) == [dict(i) for i in images]


def test_untagged_and_unicode_free_encoding():
    text = batching.encode_batch([image(1, tags=[])])
    assert text.startswith("z1:") and text.isascii()
    assert batching.decode_batch(text) == [image(1, tags=[])]


@pytest.mark.parametrize("text", ["", "z0:abc", "z1:!!!", "z1:" + "QUJD"])
def test_decode_rejects_damage(text):
    with pytest.raises(batching.BatchEncodingError):
        batching.decode_batch(text)


def test_join_env_reports_missing_parts():
    env = batching.split_env("z1:" + "A" * 9000)
    del env["REPL_BATCH_2"]
    with pytest.raises(batching.BatchEncodingError, match="REPL_BATCH_2"):
        batching.join_env(env)
    with pytest.raises(batching.BatchEncodingError, match="REPL_BATCH_PARTS"):
        batching.join_env({})


def test_batches_respect_size_and_keep_repositories_together():
    images = [image(n, repo="r%d" % (n % 4)) for n in range(130)]
    batches = batching.build_batches(images, batch_size=50)
    assert [len(b) for b in batches] == [50, 50, 30]
    flat = [i for b in batches for i in b]
    assert [i["repository"] for i in flat] == sorted(i["repository"] for i in flat)
    assert sorted(i["digest"] for i in flat) == sorted(i["digest"] for i in images)


def test_batches_close_before_env_limit():
    many_tags = [image(n, tags=["release-%d-build-%d" % (n, k) for k in range(300)]) for n in range(10)]
    batches = batching.build_batches(many_tags, batch_size=50, max_chars=8000)
    assert len(batches) > 1
    for batch in batches:
        assert len(batching.encode_batch(batch)) <= 8000
    with pytest.raises(batching.OptionError, match="too many tags"):
        batching.build_batches(many_tags[:1], max_chars=100)


def test_children_after_their_index():
    child = image(2, tags=[], parent_digests=[digest(1)])
    batches = batching.build_batches([child, image(1)], batch_size=10)
    assert [i["digest"] for i in batches[0]] == [digest(1), digest(2)]


def test_normalize_accepts_image_info_and_merges_duplicates():
    out = batching.normalize_images([
        dict(image(1, tags=["b"]), registry_id="111111111111", size_bytes=10, destination_status="missing"),
        {"repository_name": "team-a/api", "image_digest": digest(1), "image_tags": ["a"]},
        {"repository": "x", "digest": digest(3)},
    ])
    assert out[0]["tags"] == ["a", "b"] and out[0]["size_bytes"] == 10
    assert out[1]["tags"] == [] and out[1]["destination_status"] is None


@pytest.mark.parametrize(
    "images, match",
    [
        ([], "non-empty"),
        (None, "non-empty"),
        (["x"], r"images\[0\] must be a dict"),
        ([{"repository": "Bad", "digest": digest(1)}], r"images\[0\]\.repository"),
        ([{"repository": "a", "digest": "latest"}], r"images\[0\]\.digest"),
        ([{"repository": "a", "digest": digest(1)}, {"repository": "a", "digest": digest(1), "tags": ["-x"]}],
         r"images\[1\]\.tags"),
        ([{"repository": "a", "digest": digest(1), "size_bytes": "big"}], "size_bytes"),
    ],
)
def test_normalize_errors_name_the_field(images, match):
    with pytest.raises(batching.OptionError, match=match):
        batching.normalize_images(images)


def test_select_images():
    imgs = batching.normalize_images([
        image(1, destination_status="present"),
        image(2, destination_status="missing"),
        image(3, destination_status="tag_conflict", missing_tags=[], destination_tags=["old"]),
        image(4, destination_status="tag_conflict", missing_tags=["v4"], destination_tags=[]),
        image(5),
    ])
    copy, skipped = batching.select_images(imgs)
    assert [i["digest"] for i in copy] == [digest(2), digest(4), digest(5)]
    assert [(i["digest"], i["status"]) for i in skipped] == [(digest(1), "present"), (digest(3), "tag_conflict")]
    copy, skipped = batching.select_images(imgs, force_tags=True)
    assert len(copy) == 4
    copy, skipped = batching.select_images(imgs, skip_present=False)
    assert len(copy) == 5 and not skipped


def test_plan_and_cost():
    batches = batching.build_batches([image(n, size_bytes=100 * 1024 * 1024) for n in range(120)], batch_size=50)
    plan = batching.plan(batches, parallel_copies=4, max_concurrent_builds=2)
    assert plan["builds"] == 3 and plan["images"] == 120 and plan["bytes"] == 120 * 100 * 1024 * 1024
    first = plan["batches"][0]
    # 60 s provisioning + 50 * (4 s + 1 s tag + 2.5 s transfer) / 4 = 153.75 s -> 3 billed minutes
    assert first["estimated_seconds"] == 154 and first["estimated_minutes"] == 3
    assert plan["estimated_build_minutes"] == 3 + 3 + 2
    assert plan["estimated_cost_usd"] == pytest.approx(8 * 0.005)
    assert plan["estimated_wall_minutes"] == 5  # two waves: 154 s, then 105 s
    assert first["env_chars"] < 4096 * first["env_vars"]
    medium = batching.plan(batches, compute_type="BUILD_GENERAL1_MEDIUM")
    assert medium["estimated_cost_usd"] == pytest.approx(medium["estimated_build_minutes"] * 0.01)
    assert batching.plan(batches, price_per_minute=1.0)["estimated_cost_usd"] == plan["estimated_build_minutes"]
    assert batching.plan([])["builds"] == 0


def test_an_image_list_from_another_registry_is_refused_naming_the_option():
    from ansible_collections.cloudops.ecr_replication.plugins.module_utils.batching import check_source_registry
    from ansible_collections.cloudops.ecr_replication.plugins.module_utils.validation import OptionError

    ours = {"repository": "app/web", "digest": "sha256:" + "1" * 64, "registry_id": "111111111111"}
    check_source_registry([ours], "111111111111")
    for foreign in (
        dict(ours, registry_id="333333333333"),
        {"repository": "app/web", "digest": ours["digest"], "uri": "333333333333.dkr.ecr.ap-south-1.amazonaws.com/app/web"},
    ):
        with pytest.raises(OptionError) as caught:
            check_source_registry([ours, foreign], "111111111111")
        assert caught.value.option == "images" and "images[1]" in caught.value.message
        assert "333333333333" in caught.value.message
