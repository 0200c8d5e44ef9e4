# Copyright: Contributors to the cloudops.ecr_replication project
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The sandbox's ECR replication (tests/sandbox/replication.py) in-process, with a fake clock.

Every answer of the sandbox goes through botocore's ``Stubber`` built from the pinned ECR service model (request
parameters and response checked by botocore's validator) and through a stricter walk of the output shape (enums,
patterns, unknown keys): the Stubber is used here because the *sandbox* is what is checked against AWS's shapes, so
that the sandbox cannot drift from the real API unnoticed. The integration tests then use the sandbox over HTTP."""

from __future__ import annotations

import json
import re
import uuid

import pytest

from tests.sandbox.ecr import EcrApiError
from tests.sandbox.ecr import EcrImageStore
from tests.sandbox.ecr import digest_of
from tests.sandbox.replication import PERMISSION_DENIED
from tests.sandbox.replication import ReplicationService

REGION, DEST_REGION = "ap-south-1", "ap-northeast-2"
OCI = "application/vnd.oci.image.manifest.v1+json"
INDEX = "application/vnd.oci.image.index.v1+json"


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def _strict(shape, value, path="") -> None:
    """What botocore's validator leaves out: enum values, string patterns, unknown members."""
    if shape.type_name == "structure":
        assert isinstance(value, dict), path
        unknown = set(value) - set(shape.members)
        assert not unknown, f"{path}: members not in the model: {unknown}"
        for name in shape.required_members:
            assert name in value, f"{path}.{name} is required"
        for name, member in shape.members.items():
            if name in value:
                _strict(member, value[name], f"{path}.{name}")
    elif shape.type_name == "list":
        for index, item in enumerate(value):
            _strict(shape.member, item, f"{path}[{index}]")
    elif shape.type_name == "string":
        if shape.enum:
            assert value in shape.enum, f"{path}: {value!r} not in {shape.enum}"
        pattern = shape.metadata.get("pattern")
        if pattern:
            assert re.fullmatch(pattern, value), f"{path}: {value!r} does not match {pattern}"


@pytest.fixture
def ecr_stub(monkeypatch):
    import boto3
    from botocore.stub import Stubber

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    client = boto3.client("ecr", region_name=REGION)
    with Stubber(client) as stubber:
        yield client, stubber


@pytest.fixture
def env(ecr_stub):
    """A store and a replication service on fresh accounts of moto's (in-process) ECR backends."""
    from moto.ecr.models import ecr_backends

    client, stubber = ecr_stub
    source = f"{uuid.uuid4().int % 10**12:012d}"
    target = f"{uuid.uuid4().int % 10**12:012d}"
    store = EcrImageStore()
    clock = Clock()
    service = ReplicationService(store, delay=1.0, preparing=1.0, image_seconds=0.5, clock=clock, wall=lambda: 1.7e9)

    def call(operation: str, body: dict, account: str = source, region: str = REGION):
        """The sandbox's answer, after botocore parsed it and the Stubber and the strict walk checked it."""
        from botocore.parsers import create_parser

        answer = service.handle(operation, account, region, json.loads(json.dumps(body)))
        op = client.meta.service_model.operation_model(operation)
        raw = json.dumps(answer).encode()
        _strict(op.output_shape, json.loads(raw), operation)
        parsed = create_parser("json").parse({"body": raw, "headers": {}, "status_code": 200}, op.output_shape)
        parsed.pop("ResponseMetadata", None)
        method = _snake(operation)
        stubber.add_response(method, parsed, body or None)
        return getattr(client, method)(**body)

    def push(repository: str, n: int, tag=None, account=source, region=REGION, media_type=OCI, body=None):
        manifest = (
            body
            or json.dumps(
                {
                    "schemaVersion": 2,
                    "mediaType": OCI,
                    "config": {"mediaType": "x", "digest": f"sha256:{n:064x}", "size": 1},
                    "layers": [],
                }
            ).encode()
        )
        return store.put(account, region, repository, manifest, media_type, tag, via_registry=True)

    def repo(name: str, account=source, region=REGION):
        ecr_backends[account][region].create_repository(name, None, None, None, None, [])

    return dict(
        service=service,
        store=store,
        clock=clock,
        call=call,
        push=push,
        repo=repo,
        source=source,
        target=target,
        backends=ecr_backends,
    )


def rule(dest_account, *prefixes, region=DEST_REGION):
    result = {"destinations": [{"region": region, "registryId": dest_account}]}
    if prefixes:
        result["repositoryFilters"] = [{"filter": p, "filterType": "PREFIX_MATCH"} for p in prefixes]
    return result


def configure(env, *rules):
    return env["call"]("PutReplicationConfiguration", {"replicationConfiguration": {"rules": list(rules)}})


def run_until(env, predicate, steps=200):
    for _step in range(steps):
        if predicate():
            return
        env["clock"].now += 0.25
        env["service"].tick()
    raise AssertionError("the sandbox did not get there")


# --- configuration --------------------------------------------------------------------------------------------


def test_configuration_round_trip_and_several_rules(env):
    same = env["source"]
    configure(env, rule(env["target"], "team-a/"), rule(same, "team-b/"))
    answer = env["call"]("DescribeRegistry", {})
    assert answer["registryId"] == env["source"]
    assert [r["destinations"][0]["registryId"] for r in answer["replicationConfiguration"]["rules"]] == [
        env["target"],
        same,
    ]


@pytest.mark.parametrize(
    "rules, words",
    [
        ([rule("222222222222", f"p{i}/") for i in range(11)], "at most 10 rules"),
        ([rule("222222222222", *[f"p{i:03d}/" for i in range(101)])], "100 filters"),
        (
            [
                {"destinations": [{"region": DEST_REGION, "registryId": f"{i:012d}"} for i in range(1, 14)]},
                {"destinations": [{"region": DEST_REGION, "registryId": f"{i:012d}"} for i in range(14, 27)]},
            ],
            "25 unique",
        ),
    ],
)
def test_configuration_limits(env, rules, words):
    with pytest.raises(EcrApiError) as e:
        env["service"].handle(
            "PutReplicationConfiguration", env["source"], REGION, {"replicationConfiguration": {"rules": rules}}
        )
    assert e.value.code == "InvalidParameterException" and words in e.value.message


def test_configuration_refuses_the_source_registry(env):
    with pytest.raises(EcrApiError) as e:
        configure(env, rule(env["source"], "a/", region=REGION))
    assert "same as the source registry" in e.value.message


# --- pushes -----------------------------------------------------------------------------------------------------


def test_push_into_a_covered_repository_is_replicated_after_the_delay(env):
    source, target = env["source"], env["target"]
    configure(env, rule(source, "team-a/"))  # same account, other region: no registry policy needed
    env["repo"]("team-a/api")
    env["repo"]("team-b/web")
    image = env["push"]("team-a/api", 1, "v1")
    env["push"]("team-b/web", 2, "v1")
    status = env["call"](
        "DescribeImageReplicationStatus", {"repositoryName": "team-a/api", "imageId": {"imageTag": "v1"}}
    )
    assert [s["status"] for s in status["replicationStatuses"]] == ["IN_PROGRESS"]
    env["service"].tick()
    assert "team-a/api" not in env["backends"][source][DEST_REGION].repositories  # not before the delay
    env["clock"].now += 1.0
    env["service"].tick()
    replica = env["store"].find(source, DEST_REGION, "team-a/api", "v1")
    assert replica is not None and replica.digest == image.digest and replica.manifest == image.manifest
    assert "team-b/web" not in env["backends"][source][DEST_REGION].repositories
    created = env["backends"][source][DEST_REGION].repositories["team-a/api"]
    assert created.image_tag_mutability == "MUTABLE"
    status = env["call"](
        "DescribeImageReplicationStatus", {"repositoryName": "team-a/api", "imageId": {"imageDigest": image.digest}}
    )
    assert status["replicationStatuses"] == [{"region": DEST_REGION, "registryId": source, "status": "COMPLETE"}]
    assert target  # (the target account is used by the cross-account tests)


def test_replicas_are_not_replicated_further(env):
    source = env["source"]
    configure(env, rule(source, "team-a/"))
    env["backends"][source][DEST_REGION].replication_config = {"rules": [rule(source, "team-a/", region=REGION)]}
    env["repo"]("team-a/api")
    env["push"]("team-a/api", 1, "v1")
    env["clock"].now += 1.0
    env["service"].tick()
    assert env["service"].pending == []


def test_cross_account_without_registry_policy_fails_then_succeeds_with_it(env):
    from ansible_collections.cloudops.ecr_replication.plugins.module_utils import iam_policies

    source, target = env["source"], env["target"]
    configure(env, rule(target, "team-a/"))
    env["repo"]("team-a/api")
    env["push"]("team-a/api", 1, "v1")
    env["clock"].now += 1.0
    env["service"].tick()
    assert "team-a/api" not in env["backends"][target][DEST_REGION].repositories
    status = env["call"](
        "DescribeImageReplicationStatus", {"repositoryName": "team-a/api", "imageId": {"imageTag": "v1"}}
    )
    assert status["replicationStatuses"][0]["status"] == "FAILED"
    assert status["replicationStatuses"][0]["failureCode"] == PERMISSION_DENIED

    statement = iam_policies.registry_replication_statement(
        source_account=source, region=DEST_REGION, account=target, repository_prefixes=["team-a/"]
    )
    env["backends"][target][DEST_REGION].registry_policy = json.dumps(
        {"Version": "2012-10-17", "Statement": [statement]}
    )
    env["push"]("team-a/api", 2, "v2")
    env["clock"].now += 1.0
    env["service"].tick()
    assert env["store"].find(target, DEST_REGION, "team-a/api", "v2") is not None


# --- backfills --------------------------------------------------------------------------------------------------


def seed_index(env, repository):
    children = [env["push"](repository, n) for n in (10, 11)]
    body = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": INDEX,
            "manifests": [{"mediaType": OCI, "digest": c.digest, "size": len(c.manifest)} for c in children],
        }
    ).encode()
    return env["push"](repository, 0, "multi", media_type=INDEX, body=body), children


def test_backfill_lifecycle_progress_and_paginated_results(env):
    source = env["source"]
    env["repo"]("team-a/api")
    env["repo"]("other")
    first = env["push"]("team-a/api", 1, "v1")
    env["push"]("team-a/api", 1, "latest")
    index, children = seed_index(env, "team-a/api")
    env["push"]("other", 3, "v1")
    configure(env, rule(source, "team-a/"))
    dest = {"region": DEST_REGION, "registryId": source}
    started = env["call"]("StartReplicationBackfill", {"destination": dest})
    assert started["status"] == "PREPARING"
    backfill_id = started["replicationBackfillId"]
    with pytest.raises(EcrApiError) as e:
        env["service"].handle("StartReplicationBackfill", source, REGION, {"destination": dest})
    assert e.value.code == "ReplicationBackfillInProgressException"

    seen = []

    def status():
        answer = env["call"]("DescribeReplicationBackfillResults", {"replicationBackfillId": backfill_id})
        seen.append((answer["status"], answer["progress"]["completedReplicationCount"]))
        return answer["status"] == "COMPLETE"

    run_until(env, status)
    statuses = [s for s, _when in seen]
    assert statuses[0] == "PREPARING" and "IN_PROGRESS" in statuses and statuses[-1] == "COMPLETE"
    # One replication per image and tag: v1, latest, multi, and the two untagged children.
    assert seen[-1][1] == 5
    assert [c for s, c in seen if s == "IN_PROGRESS"] == sorted(c for s, c in seen if s == "IN_PROGRESS")

    page = env["call"]("DescribeReplicationBackfillResults", {"replicationBackfillId": backfill_id, "maxResults": 2})
    results = list(page["results"])
    while page.get("nextToken"):
        page = env["call"](
            "DescribeReplicationBackfillResults",
            {"replicationBackfillId": backfill_id, "maxResults": 2, "nextToken": page["nextToken"]},
        )
        results.extend(page["results"])
    assert len(results) == 5 and {r["status"] for r in results} == {"COMPLETE"}
    for ref, digest in (("v1", first.digest), ("latest", first.digest), ("multi", index.digest)):
        assert env["store"].find(source, DEST_REGION, "team-a/api", ref).digest == digest
    for child in children:
        assert env["store"].find(source, DEST_REGION, "team-a/api", child.digest) is not None
    assert "other" not in env["backends"][source][DEST_REGION].repositories
    listing = env["call"]("ListReplicationBackfills", {"maxResults": 50})
    assert [b["status"] for b in listing["backfills"]] == ["COMPLETE"]
    with pytest.raises(EcrApiError) as e:
        env["service"].handle("StopReplicationBackfill", source, REGION, {"replicationBackfillId": backfill_id})
    assert e.value.code == "ReplicationBackfillInvalidStatusException"


def test_backfill_needs_the_destination_in_the_configuration(env):
    with pytest.raises(EcrApiError) as e:
        env["service"].handle(
            "StartReplicationBackfill",
            env["source"],
            REGION,
            {"destination": {"region": DEST_REGION, "registryId": env["target"]}},
        )
    assert e.value.code == "ValidationException"


def test_backfill_stop(env):
    source = env["source"]
    env["repo"]("team-a/api")
    for n in range(6):
        env["push"]("team-a/api", n, f"v{n}")
    configure(env, rule(source, "team-a/"))
    backfill_id = env["call"](
        "StartReplicationBackfill", {"destination": {"region": DEST_REGION, "registryId": source}}
    )["replicationBackfillId"]
    env["clock"].now += 1.0
    env["service"].tick()
    assert env["call"]("StopReplicationBackfill", {"replicationBackfillId": backfill_id})["status"] == "STOPPING"
    env["service"].tick()
    answer = env["call"]("DescribeReplicationBackfillResults", {"replicationBackfillId": backfill_id})
    assert answer["status"] == "STOPPED" and "endedAt" in answer
    assert answer["progress"]["completedReplicationCount"] < 6


def test_backfill_cross_account_without_policy_fails_with_the_code(env):
    target = env["target"]
    env["repo"]("team-a/api")
    env["push"]("team-a/api", 1, "v1")
    configure(env, rule(target, "team-a/"))
    backfill_id = env["call"](
        "StartReplicationBackfill", {"destination": {"region": DEST_REGION, "registryId": target}}
    )["replicationBackfillId"]
    run_until(env, lambda: env["service"].backfills[(env["source"], REGION)][0].status == "FAILED")
    answer = env["call"](
        "DescribeReplicationBackfillResults", {"replicationBackfillId": backfill_id, "resultStatusFilter": "FAILED"}
    )
    assert answer["failureCode"] == PERMISSION_DENIED and answer["progress"]["failureCodes"] == [PERMISSION_DENIED]
    assert answer["results"][0]["failureCode"] == PERMISSION_DENIED


def test_ten_backfills_per_registry(env):
    source = env["source"]
    regions = [
        "us-east-1",
        "us-east-2",
        "us-west-1",
        "us-west-2",
        "eu-west-1",
        "eu-west-2",
        "eu-west-3",
        "eu-central-1",
        "ap-northeast-1",
        "ap-northeast-2",
        "ca-central-1",
    ]
    configure(
        env,
        {
            "destinations": [{"region": r, "registryId": source} for r in regions],
            "repositoryFilters": [{"filter": "team-a/", "filterType": "PREFIX_MATCH"}],
        },
    )
    for region in regions[:10]:
        env["call"]("StartReplicationBackfill", {"destination": {"region": region, "registryId": source}})
    with pytest.raises(EcrApiError) as e:
        env["service"].handle(
            "StartReplicationBackfill", source, REGION, {"destination": {"region": regions[10], "registryId": source}}
        )
    assert e.value.code == "LimitExceededException"


def test_unknown_backfill(env):
    with pytest.raises(EcrApiError) as e:
        env["service"].handle(
            "DescribeReplicationBackfillResults", env["source"], REGION, {"replicationBackfillId": str(uuid.uuid4())}
        )
    assert e.value.code == "ReplicationBackfillNotFoundException"


def test_digest_of_replica_is_the_source_digest(env):
    # The manifest bytes are copied, never re-serialised: a manifest with unusual spacing keeps its digest.
    source = env["source"]
    env["repo"]("team-a/api")
    body = (
        b'{"schemaVersion": 2,   "mediaType": "application/vnd.oci.image.manifest.v1+json", "config": {"mediaType": "x", "digest": "sha256:'
        + b"1" * 64
        + b'", "size": 1}, "layers": []}'
    )
    env["push"]("team-a/api", 0, "spaced", body=body)
    configure(env, rule(source, "team-a/"))
    env["call"]("StartReplicationBackfill", {"destination": {"region": DEST_REGION, "registryId": source}})
    run_until(env, lambda: env["service"].backfills[(source, REGION)][0].status == "COMPLETE")
    assert env["store"].find(source, DEST_REGION, "team-a/api", "spaced").digest == digest_of(body)
