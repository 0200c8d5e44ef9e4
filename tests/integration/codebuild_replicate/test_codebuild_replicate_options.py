"""codebuild_replicate: bad input, check mode (the plan), wait=false then build_ids - against the sandbox."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.sandbox
PROJECT = "ecr-repl-test"  # created by conftest.py

TASK = """
- name: %(name)s
  cloudops.ecr_replication.codebuild_replicate:
%(args)s
  register: r_%(name)s
  ignore_errors: true
"""


def task(name, **args):
    lines = "\n".join("    %s: %s" % (k, v) for k, v in args.items())
    return TASK % {"name": name, "args": lines}


def common(replication, **extra):
    args = dict(
        project_name=PROJECT,
        dest_region=replication.sandbox.dest_region,
        dest_role_arn=replication.target_role_arn,
        external_id="'{{ external_id }}'",
        external_id_parameter="'{{ external_id_parameter }}'",
        images="'{{ images }}'",
        poll_interval=1,
    )
    args.update(extra)
    return {k: v for k, v in args.items() if v is not None}


def source_images(replication, repository="legacy-app"):
    return [{"repository": i["repositoryName"], "digest": i["imageDigest"], "tags": i.get("imageTags", [])}
            for i in replication.source_images() if i["repositoryName"] == repository]


def test_bad_input_fails_clearly_and_changes_nothing(replication):
    sb = replication.sandbox
    sb.reset_target()
    images = source_images(replication)
    tasks = "".join([
        task("unknown_project", **common(replication, project_name="no-such-project")),
        task("empty", **common(replication, images="[]")),
        task("same_place", **common(replication, dest_region=sb.source_region, dest_role_arn=None, external_id=None)),
        task("bad_role", **common(replication, executor="local", external_id="wrong-external-id")),
        task("bad_digest", **common(replication, images="[{repository: legacy-app, digest: latest}]")),
        task("bad_batch", **common(replication, batch_size=0)),
        task("no_dest", **common(replication, dest_region=None)),
    ])
    out = replication.playbook(tasks, images=images, external_id=replication.external_id)
    for name in ("unknown_project", "empty", "same_place", "bad_role", "bad_digest", "bad_batch", "no_dest"):
        assert out[name]["failed"] is True, name
        # ansible-core adds exception="(traceback unavailable)" to every fail_json; a crash would show a traceback
        assert "Traceback" not in out[name].get("module_stderr", "") + str(out[name].get("exception", "")), name
    assert "no-such-project does not exist" in out["unknown_project"]["msg"]
    assert "images: must be a non-empty list" in out["empty"]["msg"]
    assert "nothing to copy to" in out["same_place"]["msg"] and out["same_place"]["option"] == "dest_region"
    assert "cannot be assumed" in out["bad_role"]["msg"] and replication.target_role_arn in out["bad_role"]["msg"]
    assert "images[0].digest" in out["bad_digest"]["msg"]
    assert "batch_size" in out["bad_batch"]["msg"]
    assert "dest_region" in out["no_dest"]["msg"]
    assert replication.external_id not in str(out["bad_role"]) and "wrong-external-id" not in str(out["bad_role"])
    ecr = sb.client("ecr", "target", sb.dest_region)
    assert ecr.describe_repositories()["repositories"] == []


def test_check_mode_returns_the_plan_and_starts_nothing(replication):
    sb = replication.sandbox
    sb.reset_target()
    images = [{"repository": i["repositoryName"], "digest": i["imageDigest"], "tags": i.get("imageTags", []),
               "size_bytes": i.get("imageSizeInBytes", 0)} for i in replication.source_images()]
    tasks = task("plan", **common(replication, batch_size=7)).replace("  register:", "  check_mode: true\n  register:")
    before = sb.client("codebuild").list_builds_for_project(projectName=PROJECT)["ids"]
    out = replication.playbook(tasks, images=images, external_id=replication.external_id)
    plan = out["plan"]
    assert not plan.get("failed"), plan.get("msg")
    assert plan["changed"] is True and plan["builds"] == []
    assert plan["plan"]["builds"] == -(-len(images) // 7) and plan["plan"]["images"] == len(images)
    assert plan["plan"]["estimated_build_minutes"] >= plan["plan"]["builds"]
    assert plan["plan"]["estimated_cost_usd"] == pytest.approx(plan["plan"]["estimated_build_minutes"] * 0.005)
    assert plan["plan"]["max_concurrent_builds"] == 2  # the project's concurrentBuildLimit
    assert sb.client("codebuild").list_builds_for_project(projectName=PROJECT)["ids"] == before
    assert sb.client("ecr", "target", sb.dest_region).describe_repositories()["repositories"] == []


def test_no_wait_then_poll_build_ids(replication):
    sb = replication.sandbox
    sb.reset_target()
    images = source_images(replication)
    tasks = task("start", **common(replication, wait="false", batch_size=1)) + """
- name: poll
  cloudops.ecr_replication.codebuild_replicate:
    build_ids: "{{ r_start.builds | map(attribute='id') | list }}"
    poll_interval: 1
  register: r_poll
  until: r_poll.summary.running == 0
  retries: 3
  delay: 1
"""
    out = replication.playbook(tasks, images=images, external_id=replication.external_id)
    start, poll = out["start"], out["poll"]
    assert not start.get("failed"), start.get("msg")
    assert start["changed"] is True and len(start["builds"]) == min(2, len(images))  # one round only
    assert start["pending_images"] == len(images) - len(start["builds"])
    assert not poll.get("failed"), poll.get("msg")
    assert {b["id"] for b in poll["builds"]} == {b["id"] for b in start["builds"]}
    assert all(b["status"] == "SUCCEEDED" for b in poll["builds"])
    copied = {r["digest"] for r in poll["results"] if r["status"] == "copied"}
    assert len(copied) == len(start["builds"])
