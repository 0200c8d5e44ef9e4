# Copyright: Contributors to the cloudops.ecr_replication project
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""End to end: provision both roles, then a build of the provisioned project copies a one-image batch to the
destination account using only the provisioned roles (the build runs as the CodeBuild service role and assumes
the destination role with the external id; no admin credentials reach the build).

What the sandbox enforces here: the trust policies (CodeBuild may assume the service role only for this account
and project; only the service role, with the right sts:ExternalId, may assume the destination role). It does not
enforce the permission policies' actions and resources: moto's IAM enforcement (INITIAL_NO_AUTH_ACTION_COUNT)
only knows Resource "*", is process-wide, and the sandbox serves ECR and CodeBuild outside moto's request path.
The exact permission sets are asserted in tests/unit/plugins/module_utils/iam_policies instead.
"""

from __future__ import annotations

import time

import pytest

from ansible_collections.cloudops.ecr_replication.plugins.module_utils.batching import batch_env
from ansible_collections.cloudops.ecr_replication.plugins.module_utils.replication_results import parse_line

pytestmark = pytest.mark.sandbox


def wait_for(codebuild, build_id: str, seconds: float = 300) -> dict:
    deadline = time.time() + seconds
    while True:
        build = codebuild.batch_get_builds(ids=[build_id])["builds"][0]
        if build["buildComplete"]:
            return build
        assert time.time() < deadline, f"{build_id} is still {build['currentPhase']}"
        time.sleep(0.5)


def build_log(sandbox, build) -> list[str]:
    logs = sandbox.client("logs", "source")
    events = logs.get_log_events(logGroupName=build["logs"]["groupName"], logStreamName=build["logs"]["streamName"])
    return [e["message"] for e in events["events"]]


def pick_image(catalog, prefix):
    images = [i for i in catalog["images"] if i["repository"].startswith(prefix) and i["tags"]]
    return next((i for i in images if i["kind"] == "index"), images[0])


def start(sandbox, provisioner, image, external_id):
    env = batch_env([{"repository": image["repository"], "digest": image["digest"], "tags": image["tags"]}])
    env.update(
        REPL_DEST_REGION=sandbox.dest_region,
        REPL_DEST_ACCOUNT=sandbox.target_account,
        REPL_DEST_ROLE_ARN=f"arn:aws:iam::{sandbox.target_account}:role/{provisioner.names['dest_role']}",
        REPL_EXTERNAL_ID=external_id,
        REPL_RETRIES="1",
        REPL_BACKOFF="0.2",
    )
    codebuild = sandbox.client("codebuild", "source")
    started = codebuild.start_build(
        projectName=provisioner.names["project_name"],
        environmentVariablesOverride=[{"name": k, "value": v, "type": "PLAINTEXT"} for k, v in env.items()],
    )["build"]
    return wait_for(codebuild, started["id"])


def test_build_copies_an_image_with_only_the_provisioned_roles(provisioner, sandbox):
    result = provisioner.run("provision.yml")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr
    image = pick_image(sandbox.catalog, "team-a/")

    build = start(sandbox, provisioner, image, provisioner.external_id)
    messages = build_log(sandbox, build)
    assert build["buildStatus"] == "SUCCEEDED", "\n".join(messages[-60:])
    results = [r for r in (parse_line(m) for m in messages) if r]
    assert [(r["repository"], r["digest"]) for r in results] == [(image["repository"], image["digest"])]
    assert results[0]["status"] in ("copied", "present"), results
    ecr = sandbox.client("ecr", "target", sandbox.dest_region)
    detail = ecr.describe_images(repositoryName=image["repository"], imageIds=[{"imageDigest": image["digest"]}])
    assert set(image["tags"]) <= set(detail["imageDetails"][0].get("imageTags", []))
    # no credential in the log
    assert provisioner.external_id not in "\n".join(messages)
    assert sandbox.env["AWS_SECRET_ACCESS_KEY"] not in "\n".join(messages)

    # the destination role trusts only callers presenting the external id
    build = start(sandbox, provisioner, image, "not-the-external-id")
    messages = build_log(sandbox, build)
    assert build["buildStatus"] == "FAILED", "\n".join(messages[-60:])
    failed = [r for r in (parse_line(m) for m in messages) if r]
    assert [r["status"] for r in failed] == ["failed"]
    assert "AccessDenied" in failed[0]["error"] and "AssumeRole" in failed[0]["error"], failed
    assert "not-the-external-id" not in "\n".join(messages)
