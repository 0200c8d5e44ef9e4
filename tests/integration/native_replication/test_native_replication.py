# Copyright: Contributors to the cloudops.ecr_replication project
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""ECR's own replication on the sandbox, driven by module_utils/ecr_replication.py as the controller-side driver will:
a rule replicates a push; a backfill copies every covered image with every tag, exact digests, blobs really in the
destination registry, while every source tag keeps resolving to its digest; cross-account needs the registry policy.
"""

from __future__ import annotations

import json

import pytest

from ansible_collections.cloudops.ecr_replication.plugins.module_utils import ecr_replication as er
from ansible_collections.cloudops.ecr_replication.plugins.module_utils import iam_policies

pytestmark = pytest.mark.sandbox


def assert_really_in_registry(native, dest, repository, expected):
    """Every manifest (exact bytes, so digest) and every blob it names is served by the destination registry."""
    registry = native.registry_for(dest)
    for digest, tags in expected.items():
        for ref in [digest] + tags:
            body, _media_type = registry.get_manifest(repository, ref)
            assert er_digest(body) == digest, (repository, ref)
        parsed = json.loads(body)
        for blob in ([parsed["config"]] if parsed.get("config") else []) + (parsed.get("layers") or []):
            assert registry.blob_exists(repository, blob["digest"]), (repository, blob["digest"])


def er_digest(body: bytes) -> str:
    import hashlib

    return "sha256:" + hashlib.sha256(body).hexdigest()


def test_rule_then_push_appears_in_the_destination(native):
    dest = native.same_account_dest
    native.rule(dest, native.prefix)
    repository = native.prefix + "api"
    expected = native.clone("team-a/worker", "api")
    # Pushed after the rule: replicated without anything else running.
    got = native.wait_for(lambda: native.images(dest, repository) == expected and native.images(dest, repository))
    assert got == expected
    assert_really_in_registry(native, dest, repository, expected)
    created = native.ecr_client(dest).describe_repositories(repositoryNames=[repository])["repositories"][0]
    assert created["imageTagMutability"] == "MUTABLE"  # ECR's default settings
    status = er.image_replication_status(native.ecr, repository, {"imageTag": "latest"})
    assert status == [{"region": dest["region"], "registryId": dest["registryId"], "status": "COMPLETE"}]


def test_push_outside_the_rule_is_not_replicated(native):
    dest = native.same_account_dest
    native.rule(dest, native.prefix + "covered")
    native.clone("tools/cli", "other")
    native.clone("legacy-app", "covered")
    native.wait_for(lambda: native.images(dest, native.prefix + "covered"))
    assert native.images(dest, native.prefix + "other") == {}


def test_backfill_copies_every_covered_image_and_the_source_never_changes(native):
    dest = native.same_account_dest
    expected = {name: native.clone(src, name) for src, name in (("team-a/api", "api"), ("team-b/web", "web"))}
    uncovered = native.clone("legacy-app", "x-legacy")
    # The rule comes after the pushes: only a backfill copies these images.
    configuration = er.merge_destination(
        er.describe_registry(native.ecr)[1], dest, [native.prefix + "api", native.prefix + "web"]
    )
    er.put_replication_configuration(native.ecr, configuration)
    source = native.registry()
    tags = {(native.prefix + n, t): d for n, images in expected.items() for d, ts in images.items() for t in ts}
    assert len(tags) >= 10
    polls = []

    def source_unchanged(summary):
        # Every poll: every source tag still resolves to its original digest (no delete-and-re-put, no retag).
        polls.append(summary["status"])
        for (repository, tag), digest in tags.items():
            assert source.manifest_digest(repository, tag) == digest, (repository, tag)

    started = er.start_backfill(native.ecr, dest)
    assert started["attached"] is False
    again = er.start_backfill(native.ecr, dest)  # one in progress per destination region: attach to it
    assert again["attached"] is True and again["replicationBackfillId"] == started["replicationBackfillId"]
    outcome = er.BackfillWatcher(
        native.ecr, started["replicationBackfillId"], poll_interval=0.2, timeout=60, on_progress=source_unchanged
    ).wait()
    assert outcome["status"] == "COMPLETE", outcome
    assert "IN_PROGRESS" in polls and len(polls) >= 3
    total = sum(max(1, len(ts)) for images in expected.values() for ts in images.values())
    assert outcome["progress"]["totalReplicationCount"] == total
    assert outcome["progress"]["completedReplicationCount"] == total
    assert len(outcome["results"]) == total and {r["status"] for r in outcome["results"]} == {"COMPLETE"}
    for name, images in expected.items():
        assert native.images(dest, native.prefix + name) == images
        assert_really_in_registry(native, dest, native.prefix + name, images)
    assert native.images(dest, native.prefix + "x-legacy") == {}
    assert native.images(native.same_account_dest, native.prefix + "x-legacy") == {}
    assert uncovered  # still in the source
    assert (
        er.coverage(configuration, [native.prefix + "x-legacy"], dest["region"], dest["registryId"])[
            native.prefix + "x-legacy"
        ]["covered"]
        is False
    )


def test_cross_account_needs_the_destination_registry_policy(native, sandbox):
    dest = native.cross_account_dest
    expected = native.clone("team-a/worker", "worker")
    native.rule(dest, native.prefix)
    repository = native.prefix + "worker"
    # The push itself was before the rule; the backfill fails without the registry policy, as on AWS.
    started = er.start_backfill(native.ecr, dest)
    outcome = er.BackfillWatcher(native.ecr, started["replicationBackfillId"], poll_interval=0.2, timeout=30).wait()
    assert outcome["status"] == "FAILED"
    assert outcome["failureCode"] == "REPLICATION_PERMISSION_DENIED"
    assert {r["failureCode"] for r in outcome["results"]} == {"REPLICATION_PERMISSION_DENIED"}
    assert native.images(dest, repository) == {}

    statement = iam_policies.registry_replication_statement(
        source_account=sandbox.source_account,
        region=dest["region"],
        account=dest["registryId"],
        repository_prefixes=[native.prefix],
    )
    target_ecr = sandbox.client("ecr", "target", dest["region"])
    target_ecr.put_registry_policy(policyText=json.dumps({"Version": "2012-10-17", "Statement": [statement]}))
    started = er.start_backfill(native.ecr, dest)
    outcome = er.BackfillWatcher(native.ecr, started["replicationBackfillId"], poll_interval=0.2, timeout=30).wait()
    assert outcome["status"] == "COMPLETE", outcome
    assert native.images(dest, repository) == expected
    assert_really_in_registry(native, dest, repository, expected)


def test_stop_on_timeout_leaves_what_was_copied(native):
    dest = native.same_account_dest
    native.clone("team-b/web", "web")
    native.rule(dest, native.prefix)
    started = er.start_backfill(native.ecr, dest)
    ticks = iter(range(1000))
    outcome = er.BackfillWatcher(
        native.ecr,
        started["replicationBackfillId"],
        poll_interval=0.1,
        timeout=0.5,
        clock=lambda: next(ticks) * 0.25,  # each poll is a quarter second of the watcher's clock
        sleep=lambda s: None,
    ).wait()
    assert outcome["timed_out"] and outcome["stopped"]
    native.wait_for(lambda: er.describe_backfill(native.ecr, started["replicationBackfillId"])["status"] == "STOPPED")
