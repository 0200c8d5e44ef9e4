# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""module_utils/ecr_replication.py: the registry and backfill API helpers and BackfillWatcher, against botocore's
Stubber. Every request and canned answer here is checked by the Stubber against the ECR service model of the pinned
botocore, so these tests pin the real API shapes (moto has no backfill API; the sandbox's is checked against the same
shapes in tests/unit/sandbox/test_replication_shapes.py). Errors are real botocore ClientErrors."""

from __future__ import annotations

import datetime

import pytest

from ansible_collections.cloudops.ecr_replication.plugins.module_utils import ecr_replication as er
from ansible_collections.cloudops.ecr_replication.plugins.module_utils.ecr import AnsibleECRError
from tests.unit.plugins.module_utils.replication_driver.test_replication_driver import Clock  # the driver's fake clock

SEOUL = {"region": "ap-northeast-2", "registryId": "222222222222"}
ID = "0f6c6c1e-8f1b-4b55-9a39-2b7c0c0f5a01"
OTHER_ID = "7d1b0a2e-1111-4c22-8d33-444455556666"
T0 = datetime.datetime(2026, 12, 2, 9, 0, tzinfo=datetime.timezone.utc)


def progress(total=4, done=0, failed=0, codes=()):
    return {
        "totalReplicationCount": total,
        "completedReplicationCount": done,
        "failedReplicationCount": failed,
        "failureCodes": list(codes),
    }


def described(status, prog=None, results=None, token=None, **extra):
    answer = {
        "registryId": "111111111111",
        "replicationBackfillId": ID,
        "destination": SEOUL,
        "status": status,
        "progress": prog or progress(),
        "startedAt": T0,
        **extra,
    }
    if results is not None:
        answer["results"] = results
    if token:
        answer["nextToken"] = token
    return answer


def result(repo, tag, status="COMPLETE", **extra):
    return {
        "repositoryName": repo,
        "imageId": {"imageDigest": "sha256:" + "a" * 64, "imageTag": tag},
        "status": status,
        **extra,
    }


# --- registry -----------------------------------------------------------------------------------------------


def test_describe_registry_and_put(stubbed):
    client, stub = stubbed
    configuration = {
        "rules": [{"destinations": [SEOUL], "repositoryFilters": [{"filter": "team-a/", "filterType": "PREFIX_MATCH"}]}]
    }
    stub.add_response("describe_registry", {"registryId": "111111111111", "replicationConfiguration": {"rules": []}})
    stub.add_response(
        "put_replication_configuration",
        {"replicationConfiguration": configuration},
        {"replicationConfiguration": configuration},
    )
    assert er.describe_registry(client) == ("111111111111", {"rules": []})
    assert er.put_replication_configuration(client, configuration) == configuration


def test_describe_registry_without_configuration(stubbed):
    client, stub = stubbed
    stub.add_response("describe_registry", {"registryId": "111111111111"})
    assert er.describe_registry(client) == ("111111111111", {"rules": []})


def test_put_refused_is_an_ecr_error(stubbed):
    client, stub = stubbed
    stub.add_client_error("put_replication_configuration", "InvalidParameterException", "same registry")
    with pytest.raises(AnsibleECRError) as e:
        er.put_replication_configuration(client, {"rules": []})
    assert "put the replication configuration" in str(e.value)


def test_image_replication_status(stubbed):
    client, stub = stubbed
    image = {"imageTag": "v1"}
    statuses = [{"region": "ap-northeast-2", "registryId": "222222222222", "status": "COMPLETE"}]
    stub.add_response(
        "describe_image_replication_status",
        {"repositoryName": "team-a/api", "imageId": image, "replicationStatuses": statuses},
        {"repositoryName": "team-a/api", "imageId": image},
    )
    stub.add_client_error("describe_image_replication_status", "ImageNotFoundException", "no")
    assert er.image_replication_status(client, "team-a/api", image) == statuses
    assert er.image_replication_status(client, "team-a/api", {"imageTag": "gone"}) == []


# --- start / attach / limits --------------------------------------------------------------------------------


def test_start_backfill(stubbed):
    client, stub = stubbed
    stub.add_response(
        "start_replication_backfill",
        {
            "replicationBackfillId": ID,
            "registryId": "111111111111",
            "destination": SEOUL,
            "status": "PREPARING",
            "startedAt": T0,
        },
        {"destination": SEOUL},
    )
    started = er.start_backfill(client, SEOUL)
    assert started["replicationBackfillId"] == ID and started["attached"] is False
    assert "ResponseMetadata" not in started


def test_start_attaches_to_the_backfill_in_progress(stubbed):
    client, stub = stubbed
    stub.add_client_error("start_replication_backfill", "ReplicationBackfillInProgressException", "in progress")
    stub.add_response(
        "list_replication_backfills",
        {
            "backfills": [
                {"replicationBackfillId": OTHER_ID, "destination": SEOUL, "status": "COMPLETE", "startedAt": T0},
                {
                    "replicationBackfillId": ID,
                    "destination": SEOUL,
                    "status": "IN_PROGRESS",
                    "progress": progress(10, 3),
                    "startedAt": T0,
                },
            ]
        },
        {"maxResults": 50},
    )
    attached = er.start_backfill(client, SEOUL)
    assert attached["replicationBackfillId"] == ID and attached["attached"] is True


def test_start_in_progress_for_another_registry_of_that_region_says_so(stubbed):
    client, stub = stubbed
    other = {"region": "ap-northeast-2", "registryId": "333333333333"}
    listing = {
        "backfills": [{"replicationBackfillId": OTHER_ID, "destination": other, "status": "PREPARING", "startedAt": T0}]
    }
    stub.add_client_error("start_replication_backfill", "ReplicationBackfillInProgressException", "in progress")
    stub.add_response("list_replication_backfills", listing)
    stub.add_response("list_replication_backfills", listing)
    with pytest.raises(AnsibleECRError) as e:
        er.start_backfill(client, SEOUL)
    assert OTHER_ID in e.value.message and "one" in e.value.message


def test_start_limit_exceeded_is_not_retried_and_is_clear(stubbed, no_sleep):
    client, stub = stubbed
    stub.add_client_error("start_replication_backfill", "LimitExceededException", "10 in progress")
    with pytest.raises(AnsibleECRError) as e:
        er.start_backfill(client, SEOUL)
    assert "10 backfills in progress" in e.value.message
    assert no_sleep == []  # the quota is not throttling: no retry


def test_start_retries_throttling(stubbed, no_sleep):
    client, stub = stubbed
    stub.add_client_error("start_replication_backfill", "ThrottlingException", "slow down")
    stub.add_response(
        "start_replication_backfill", {"replicationBackfillId": ID, "destination": SEOUL, "status": "PREPARING"}
    )
    assert er.start_backfill(client, SEOUL)["replicationBackfillId"] == ID
    assert len(no_sleep) == 1


def test_start_without_a_rule_says_what_to_check(stubbed):
    client, stub = stubbed
    stub.add_client_error("start_replication_backfill", "ValidationException", "destination not configured")
    with pytest.raises(AnsibleECRError) as e:
        er.start_backfill(client, SEOUL)
    assert "replication configuration" in e.value.message


def test_list_backfills_walks_every_page(stubbed):
    client, stub = stubbed
    first = {"replicationBackfillId": ID, "destination": SEOUL, "status": "COMPLETE", "startedAt": T0}
    second = dict(first, replicationBackfillId=OTHER_ID)
    stub.add_response("list_replication_backfills", {"backfills": [first], "nextToken": "t1"}, {"maxResults": 50})
    stub.add_response("list_replication_backfills", {"backfills": [second]}, {"maxResults": 50, "nextToken": "t1"})
    assert [b["replicationBackfillId"] for b in er.list_backfills(client)] == [ID, OTHER_ID]


# --- describe / stop -------------------------------------------------------------------------------------------


def test_describe_results_all_pages(stubbed):
    client, stub = stubbed
    params = {"replicationBackfillId": ID, "maxResults": 1000}
    stub.add_response(
        "describe_replication_backfill_results",
        described("COMPLETE", results=[result("a/b", "v1")], token="n1"),
        params,
    )
    stub.add_response(
        "describe_replication_backfill_results",
        described("COMPLETE", results=[result("a/b", "v2", "FAILED", failureCode="SOME_CODE")]),
        dict(params, nextToken="n1"),
    )
    summary = er.describe_backfill(client, ID, results=True)
    assert [r["imageId"]["imageTag"] for r in summary["results"]] == ["v1", "v2"]
    assert "nextToken" not in summary


def test_describe_without_results_asks_for_one(stubbed):
    client, stub = stubbed
    stub.add_response(
        "describe_replication_backfill_results",
        described("IN_PROGRESS", results=[result("a/b", "v1")]),
        {"replicationBackfillId": ID, "maxResults": 1},
    )
    assert er.describe_backfill(client, ID)["results"] == []


def test_stop_and_stop_of_an_ended_backfill(stubbed):
    client, stub = stubbed
    stub.add_response(
        "stop_replication_backfill",
        {"replicationBackfillId": ID, "destination": SEOUL, "status": "STOPPING"},
        {"replicationBackfillId": ID},
    )
    assert er.stop_backfill(client, ID)["status"] == "STOPPING"
    stub.add_client_error("stop_replication_backfill", "ReplicationBackfillInvalidStatusException", "ended")
    stub.add_response("describe_replication_backfill_results", described("COMPLETE", progress(4, 4)))
    assert er.stop_backfill(client, ID)["status"] == "COMPLETE"


def test_stop_unknown_backfill_is_an_error(stubbed):
    client, stub = stubbed
    stub.add_client_error("stop_replication_backfill", "ReplicationBackfillNotFoundException", "no such backfill")
    with pytest.raises(AnsibleECRError) as e:
        er.stop_backfill(client, ID)
    assert ID in str(e.value)


def test_progress_line():
    line = er.progress_line(described("IN_PROGRESS", progress(40, 12, 1, ["X"])))
    assert line == f"backfill {ID} to 222222222222/ap-northeast-2: IN_PROGRESS 12/40 replicated, 1 failed (X)"


# --- the watcher ---------------------------------------------------------------------------------------------


def test_watcher_follows_to_complete_and_reports_every_poll(stubbed):
    client, stub = stubbed
    clock = Clock()
    for status, done in (("PREPARING", 0), ("IN_PROGRESS", 2), ("COMPLETE", 4)):
        stub.add_response("describe_replication_backfill_results", described(status, progress(4, done)))
    stub.add_response(
        "describe_replication_backfill_results", described("COMPLETE", progress(4, 4), results=[result("a/b", "v1")])
    )
    seen = []
    watcher = er.BackfillWatcher(
        client, ID, poll_interval=5, timeout=60, clock=clock, sleep=clock.sleep, on_progress=seen.append
    )
    outcome = watcher.wait()
    assert outcome["status"] == "COMPLETE" and not outcome["timed_out"] and not outcome["stopped"]
    assert len(outcome["results"]) == 1
    assert [s["status"] for s in seen] == ["PREPARING", "IN_PROGRESS", "COMPLETE", "COMPLETE"]
    assert clock.sleeps == [5, 5]


def test_watcher_reports_failed_with_codes(stubbed):
    client, stub = stubbed
    clock = Clock()
    stub.add_response(
        "describe_replication_backfill_results",
        described("FAILED", progress(4, 0, 4, ["DENIED"]), failureCode="DENIED"),
    )
    stub.add_response(
        "describe_replication_backfill_results",
        described(
            "FAILED",
            progress(4, 0, 4, ["DENIED"]),
            results=[result("a/b", "v1", "FAILED", failureCode="DENIED")],
            failureCode="DENIED",
        ),
    )
    outcome = er.BackfillWatcher(client, ID, clock=clock, sleep=clock.sleep).wait()
    assert outcome["status"] == "FAILED" and outcome["failureCode"] == "DENIED"
    assert outcome["results"][0]["failureCode"] == "DENIED"


def test_watcher_stops_the_backfill_on_timeout(stubbed):
    client, stub = stubbed
    clock = Clock()
    for _poll in range(3):
        stub.add_response("describe_replication_backfill_results", described("IN_PROGRESS", progress(4, 1)))
    stub.add_response(
        "stop_replication_backfill", {"replicationBackfillId": ID, "status": "STOPPING"}, {"replicationBackfillId": ID}
    )
    stub.add_response("describe_replication_backfill_results", described("STOPPING", progress(4, 1)))
    outcome = er.BackfillWatcher(client, ID, poll_interval=10, timeout=20, clock=clock, sleep=clock.sleep).wait()
    assert outcome["timed_out"] and outcome["stopped"] and outcome["status"] == "STOPPING"
    assert clock.sleeps == [10, 10]


@pytest.mark.parametrize("interruption", [KeyboardInterrupt, SystemExit])
def test_watcher_stops_the_backfill_when_interrupted(stubbed, interruption):
    client, stub = stubbed
    clock = Clock()
    stub.add_response("describe_replication_backfill_results", described("IN_PROGRESS", progress(4, 1)))
    stub.add_response(
        "stop_replication_backfill", {"replicationBackfillId": ID, "status": "STOPPING"}, {"replicationBackfillId": ID}
    )

    def interrupted_sleep(seconds):
        raise interruption()

    with pytest.raises(interruption):
        er.BackfillWatcher(client, ID, clock=clock, sleep=interrupted_sleep).wait()
    # The Stubber's assert_no_pending_responses (fixture) proves StopReplicationBackfill was called.
