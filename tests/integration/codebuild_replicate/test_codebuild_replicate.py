"""codebuild_replicate + buildspec.yml against the sandbox (moto control plane, real registries, real builds through
the sandbox CodeBuild), with executor codebuild and local. Registry faults mid-copy (the copy program's retries):
tests/integration/faults and tests/unit/plugins/module_utils/replicator/test_replicator_faults.py."""

from __future__ import annotations

import json
import math
import re

import pytest

PROJECT = "ecr-repl-test"  # created by conftest.py
pytestmark = pytest.mark.sandbox
EXECUTORS = ["codebuild", "local"]

FACTS = """
- name: facts
  cloudops.ecr_replication.ecr_image_info:
    compare_to:
      region: "{{ dest_region }}"
      role_arn: "{{ role_arn }}"
      external_id: "{{ external_id }}"
  register: r_facts
"""

REPLICATE = """
- name: replicate
  cloudops.ecr_replication.codebuild_replicate:
    project_name: "{{ project | default(omit) }}"
    executor: "{{ executor }}"
    images: "{{ images | default(r_facts.images) }}"
    dest_region: "{{ dest_region }}"
    dest_role_arn: "{{ role_arn }}"
    external_id: "{{ external_id }}"
    external_id_parameter: "{{ external_id_parameter }}"
    batch_size: "{{ batch_size | default(50) }}"
    max_concurrent_builds: 5
    poll_interval: 1
    wait_timeout: 1200
    force_tags: "{{ force_tags | default(false) }}"
    allow_partial: "{{ allow_partial | default(false) }}"
  register: r_%s
  ignore_errors: true
"""


def variables(replication, executor, **extra):
    return dict(
        dict(
            executor=executor,
            project=PROJECT if executor == "codebuild" else None,
            dest_region=replication.sandbox.dest_region,
            role_arn=replication.target_role_arn,
            external_id=replication.external_id,
        ),
        **dict(extra),
    )


def assert_no_secrets(replication, builds):
    """The build log holds no registry token, no session token / secret key, no ExternalId."""
    log = replication.build_logs(builds)
    assert "RESULT {" in log
    # [Container] lines echo the buildspec's commands, i.e. the program's source, which names the credential fields
    output = [line for line in log.splitlines() if not line.startswith("[Container]")]
    text = "\n".join(output)
    assert replication.external_id not in log
    assert "QVdTO" not in text  # base64 of "AWS:" (an ECR authorization token)
    assert not re.search(r"[A-Za-z0-9_=-]{20,}\.[0-9a-f]{64}", text)  # the sandbox registry password format
    assert "FQoGZXIvYXdzEBYaD" not in text  # moto session tokens
    assert not re.search(r"(?<![A-Za-z0-9/+])[A-Za-z0-9/+]{40}(?![A-Za-z0-9/+=])", text)  # secret access keys
    assert "AWS_SECRET_ACCESS_KEY" not in text and "SecretAccessKey" not in text
    # what anyone allowed codebuild:BatchGetBuilds sees: the SecureString's name, never the ExternalId
    ids = [b["id"] for b in builds if not b["id"].startswith("local:")]
    if ids:
        described = replication.sandbox.client("codebuild").batch_get_builds(ids=ids)["builds"]
        assert replication.external_id not in json.dumps(described, default=str)
        for build in described:
            (variable,) = [v for v in build["environment"]["environmentVariables"] if v["name"] == "REPL_EXTERNAL_ID"]
            assert variable == {"name": "REPL_EXTERNAL_ID", "value": replication.external_id_parameter,
                                "type": "PARAMETER_STORE"}


# executor local copies the same catalog with the same program as codebuild: make soak (the replicate tests run
# strategy local in make test)
@pytest.mark.parametrize(
    "executor", [pytest.param(e, marks=pytest.mark.slow) if e == "local" else e for e in EXECUTORS]
)
def test_copies_small_catalog_identically_then_starts_nothing(replication, executor):
    sb = replication.sandbox
    sb.reset_target()
    out = replication.playbook(FACTS + REPLICATE % "first" + FACTS.replace("r_facts", "r_after")
                               + REPLICATE.replace("r_facts", "r_after") % "second",
                               **variables(replication, executor, batch_size=20))
    first, second = out["first"], out["second"]
    assert not first.get("failed"), first.get("msg")
    source = replication.source_images()
    # An index copied in one build brings its platform manifests along: a later build finds them present.
    summary = first["summary"]
    assert summary["images"] == len(source) and summary["failed"] == summary["tag_conflict"] == 0
    assert summary["copied"] + summary["present"] == len(source) and summary["copied"] >= len(source) // 2
    assert first["changed"] is True
    if executor == "codebuild":
        assert len(first["builds"]) == math.ceil(len(source) / 20)
        assert all(b["status"] == "SUCCEEDED" and b["log_group"] for b in first["builds"])
        assert any("concurrentBuildLimit" in w for w in first.get("warnings", []))
        assert_no_secrets(replication, first["builds"])
    # Every digest, tag and index byte for byte, through the ECR API and the registry.
    dest = sb.client("ecr", "target", sb.dest_region)
    for image in source:
        repo, digest = image["repositoryName"], image["imageDigest"]
        (detail,) = dest.describe_images(repositoryName=repo, imageIds=[{"imageDigest": digest}])["imageDetails"]
        assert sorted(detail.get("imageTags", [])) == sorted(image.get("imageTags", [])), (repo, digest)
        assert detail.get("imageManifestMediaType") == image.get("imageManifestMediaType")
        assert replication.raw_manifest("target", repo, digest) == replication.raw_manifest("source", repo, digest)
    src_repo = sb.client("ecr").describe_repositories()["repositories"]
    dst_repo = {r["repositoryName"]: r for r in dest.describe_repositories()["repositories"]}
    for repo in src_repo:
        if not any(i["repositoryName"] == repo["repositoryName"] for i in source):
            assert repo["repositoryName"] not in dst_repo  # copies follow images: an empty repository is not created
            continue
        copy = dst_repo[repo["repositoryName"]]
        assert copy["imageTagMutability"] == repo["imageTagMutability"]
        assert copy["imageScanningConfiguration"] == repo["imageScanningConfiguration"]
    # Second run: nothing missing, no build, not changed.
    assert not second.get("failed"), second.get("msg")
    assert second["changed"] is False and second["builds"] == []
    assert second["summary"]["present"] == len(source)


@pytest.mark.parametrize("executor", EXECUTORS)
def test_immutable_tag_conflict_is_reported_not_overwritten(replication, executor):
    sb = replication.sandbox
    sb.reset_target()
    source = [i for i in replication.source_images() if i["repositoryName"] == "platform/base"]
    tagged = next(i for i in source if i.get("imageTags"))
    other = next(i for i in source if i["imageDigest"] != tagged["imageDigest"] and not set(i.get("imageTags", [])) & set(tagged["imageTags"]))
    tag = tagged["imageTags"][0]
    # The destination repository is created IMMUTABLE (as in the source) with `tag` on another digest.
    planted = [{"repository": "platform/base", "digest": other["imageDigest"], "tags": [tag]}]
    wanted = [{"repository": "platform/base", "digest": tagged["imageDigest"], "tags": tagged["imageTags"]}]
    out = replication.playbook(
        REPLICATE.replace("images | default(r_facts.images)", "planted") % "plant"
        + REPLICATE.replace("images | default(r_facts.images)", "wanted") % "copy",
        **variables(replication, executor, planted=planted, wanted=wanted, force_tags=True),
    )
    assert not out["plant"].get("failed"), out["plant"].get("msg")
    result = out["copy"]
    assert not result.get("failed"), result.get("msg")
    (entry,) = result["results"]
    assert entry["status"] == "tag_conflict"
    assert entry["conflicts"] == {tag: other["imageDigest"]}
    dest = sb.client("ecr", "target", sb.dest_region)
    (still,) = dest.describe_images(repositoryName="platform/base", imageIds=[{"imageTag": tag}])["imageDetails"]
    assert still["imageDigest"] == other["imageDigest"]
    # The digest itself was copied, with the tags that did not conflict.
    (copied,) = dest.describe_images(repositoryName="platform/base", imageIds=[{"imageDigest": tagged["imageDigest"]}])["imageDetails"]
    assert set(copied.get("imageTags", [])) == set(tagged["imageTags"]) - {tag}


@pytest.mark.parametrize("executor", EXECUTORS)
def test_failing_image_marks_only_itself_failed(replication, executor):
    sb = replication.sandbox
    sb.reset_target()
    source = [i for i in replication.source_images() if i["repositoryName"] == "legacy-app"]
    images = [{"repository": i["repositoryName"], "digest": i["imageDigest"], "tags": i.get("imageTags", [])} for i in source]
    missing = {"repository": "legacy-app", "digest": "sha256:" + "0" * 64, "tags": ["ghost"]}
    out = replication.playbook(
        REPLICATE.replace("images | default(r_facts.images)", "wanted") % "strict"
        + REPLICATE.replace("images | default(r_facts.images)", "wanted") % "partial",
        **variables(replication, executor, wanted=images + [missing]),
    )
    strict = out["strict"]
    assert strict["failed"] is True
    assert "1 of %d images failed" % (len(images) + 1) in strict["msg"] and missing["digest"] in strict["msg"]
    by_digest = {r["digest"]: r for r in strict["results"]}
    assert by_digest[missing["digest"]]["status"] == "failed"
    assert "manifest unknown" in by_digest[missing["digest"]]["error"].lower()
    assert all(by_digest[i["digest"]]["status"] == "copied" for i in images)
    assert strict["builds"][0]["status"] == "FAILED"
    # allow_partial: the same failure is reported, not fatal; what was copied is present now.
    out2 = replication.playbook(
        REPLICATE.replace("images | default(r_facts.images)", "wanted") % "partial",
        **variables(replication, executor, wanted=images + [missing], allow_partial=True),
    )
    partial = out2["partial"]
    assert not partial.get("failed") and partial["summary"]["failed"] == 1
    assert partial["summary"]["present"] == len(images)
