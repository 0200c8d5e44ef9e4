# Copyright: Contributors to the cloudops.ecr_replication project
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The controller's ECR retries: throttling retried a bounded number of times with jittered back-off, a quota
(LimitExceededException) not at all. Stubber: the error sequence and the recorded sleeps are exact here; the wire
behaviour against the sandbox's injected throttling is tests/integration/faults."""

from __future__ import annotations

import pytest

from ansible_collections.cloudops.ecr_replication.plugins.module_utils import ecr


def test_limit_exceeded_is_a_quota_and_is_not_retried(stubbed, no_sleep):
    client, stubber = stubbed
    calls = ecr.count_api_calls(client, {})
    stubber.add_client_error("describe_images", "LimitExceededException", "exceeded a service limit", 400)
    with pytest.raises(ecr.AnsibleECRError) as err:
        ecr.describe_images(client, "app")
    assert err.value.exception.response["Error"]["Code"] == "LimitExceededException"
    assert calls == {"DescribeImages": 1} and no_sleep == []


def test_throttling_for_good_gives_up_after_bounded_jittered_retries(stubbed, no_sleep):
    client, stubber = stubbed
    calls = ecr.count_api_calls(client, {})
    for _attempt in range(20):
        stubber.add_client_error("list_images", "ThrottlingException", "Rate exceeded", 400)
    with pytest.raises(ecr.AnsibleECRError):
        ecr.list_images(client, "app")
    attempts = calls["ListImages"]
    assert 2 <= attempts <= 11, attempts  # bounded
    assert len(no_sleep) == attempts - 1 and all(delay >= 0 for delay in no_sleep)
    # jittered: AWSRetry.jittered_backoff draws each delay at random up to an exponential ceiling
    assert len(set(no_sleep)) > 1
    while stubber._queue:  # the unused answers (the Stubber checks that none is left)
        stubber._queue.popleft()
