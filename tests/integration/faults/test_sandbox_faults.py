# Copyright: Contributors to the cloudops.ecr_replication project
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Each fault switch of the sandbox answers as the real service does (what the product's retry logic keys on), and
is off again once reset. Fast: plain clients, no playbook."""

from __future__ import annotations

import base64
import time

import botocore.config
import botocore.exceptions
import pytest
import requests

from tests.sandbox.faults import EXPIRED_TOKEN_MESSAGE

pytestmark = pytest.mark.sandbox
# total_max_attempts counts the first call ("max_attempts" would count the retries only)
NO_RETRY = botocore.config.Config(retries={"mode": "standard", "total_max_attempts": 1})


def _registry_get(sandbox, path: str, password: str | None = None, account: str = "source"):
    password = password or sandbox.registry_password(account)
    auth = "Basic " + base64.b64encode(f"AWS:{password}".encode()).decode()
    return requests.get(
        f"https://{sandbox.registry_host(account)}{path}",
        headers={"Authorization": auth},
        timeout=30,
        verify=sandbox.env["REQUESTS_CA_BUNDLE"],
    )


def test_ecr_throttling_is_answered_as_ecr_does(sandbox, faults):
    faults.set(api={"DescribeImages": {"first": 1}})
    ecr = sandbox.session().client("ecr", endpoint_url=sandbox.env["AWS_ENDPOINT_URL"], config=NO_RETRY)
    repository = sandbox.catalog["images"][0]["repository"]
    with pytest.raises(botocore.exceptions.ClientError) as caught:
        ecr.describe_images(repositoryName=repository)
    error = caught.value.response
    assert error["Error"]["Code"] == "ThrottlingException" and error["Error"]["Message"] == "Rate exceeded"
    assert error["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert ecr.describe_images(repositoryName=repository)["imageDetails"]  # only the first call
    faults.set()
    assert [hit for _when, hit in sandbox.fault_state()["calls"].get("DescribeImages", [])] == []


def test_an_expired_registry_token_is_answered_403_denied_with_ecrs_message(sandbox, faults):
    image = sandbox.catalog["images"][0]
    faults.set(token_ttl_seconds=1)
    password = sandbox.registry_password()
    path = f"/v2/{image['repository']}/manifests/{image['digest']}"
    assert _registry_get(sandbox, path, password).status_code == 200
    time.sleep(1.2)
    answer = _registry_get(sandbox, path, password)
    assert answer.status_code == 403
    assert answer.json() == {"errors": [{"code": "DENIED", "message": EXPIRED_TOKEN_MESSAGE, "detail": None}]}
    assert _registry_get(sandbox, path).status_code == 200  # a new token works


def test_registry_blob_errors_resets_and_outage(sandbox, faults):
    image = next(i for i in sandbox.catalog["images"] if i["blobs"])
    blob = f"/v2/{image['repository']}/blobs/{image['blobs'][-1]}"
    faults.set(registry={"source": {"blob_errors": 1, "status": 500, "methods": ["GET"], "blob_resets": 1}})
    assert _registry_get(sandbox, blob).status_code == 500
    with pytest.raises(requests.exceptions.RequestException):  # cut mid-blob
        _registry_get(sandbox, blob).content
    assert _registry_get(sandbox, blob).status_code == 200
    faults.set(registry={"source": {"down": True}})
    assert _registry_get(sandbox, "/v2/").status_code == 503
    faults.set()
    assert _registry_get(sandbox, blob).status_code == 200


def test_codebuild_queue_full_is_answered_account_limit_exceeded(sandbox, faults):
    faults.set(codebuild={"queue_full": 1})
    codebuild = sandbox.session().client("codebuild", endpoint_url=sandbox.env["AWS_ENDPOINT_URL"], config=NO_RETRY)
    with pytest.raises(botocore.exceptions.ClientError) as caught:
        codebuild.start_build(projectName="no-such-project-needed")  # refused before the project is looked up
    assert caught.value.response["Error"]["Code"] == "AccountLimitExceededException"
    assert sandbox.fault_state()["injected"] == {"codebuild StartBuild AccountLimitExceededException": 1}
