# Copyright: Contributors to the cloudops.ecr_replication project
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""End to end: provision both roles, then a build of the provisioned project copies a one-image batch to the
destination account using only the provisioned roles (the build runs as the CodeBuild service role and assumes
the destination role with the external id; no admin credentials reach the build).

What the sandbox enforces here: the trust policies (CodeBuild may assume the service role only for this account
and project; only the service role, with the right sts:ExternalId, may assume the destination role), and the
identity policies of the provisioned roles for every ECR API call (tests/sandbox/policy.py): a repository outside
the provisioned prefixes is refused, and the read role can list and describe but neither read contents nor write.
Not enforced: the registry data plane (a push is authorised by the registry token) and CloudWatch Logs.
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


@pytest.mark.slow  # make soak: minutes of provisioning; make test keeps the core case of this file
def test_a_repository_outside_the_prefixes_is_refused(provisioner, sandbox):
    """The roles are provisioned for team-a/ only: a team-b/ image cannot be copied, and the build says why."""
    result = provisioner.run("provision.yml")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr
    image = pick_image(sandbox.catalog, "team-b/")
    ecr = sandbox.client("ecr", "target", sandbox.dest_region)

    def repositories():
        return {r["repositoryName"] for r in ecr.describe_repositories()["repositories"]}

    existed = image["repository"] in repositories()  # other tests may have copied it with wider roles
    build = start(sandbox, provisioner, image, provisioner.external_id)
    messages = build_log(sandbox, build)
    assert build["buildStatus"] == "FAILED", "\n".join(messages[-60:])
    failed = [r for r in (parse_line(m) for m in messages) if r]
    assert [r["status"] for r in failed] == ["failed"]
    assert "AccessDenied" in failed[0]["error"] and image["repository"] in failed[0]["error"], failed
    assert (image["repository"] in repositories()) == existed


@pytest.mark.slow  # make soak: minutes of provisioning; make test keeps the core case of this file
def test_the_read_role_only_lists_and_describes(provisioner, sandbox):
    result = provisioner.run("provision.yml")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr
    reader = sandbox.role_session(
        f"arn:aws:iam::{sandbox.target_account}:role/{provisioner.names['dest_read_role']}",
        external_id=provisioner.external_id,
        region=sandbox.dest_region,
    ).client("ecr", endpoint_url=sandbox.env["AWS_ENDPOINT_URL"])
    reader.describe_repositories()  # listing the registry is allowed

    def code(call, **params):
        try:
            call(**params)
        except reader.exceptions.ClientError as error:
            return error.response["Error"]["Code"]
        return "ok"

    # under the prefix: allowed (the repository may not exist yet)
    assert code(reader.describe_images, repositoryName="team-a/api") in ("ok", "RepositoryNotFoundException")
    assert code(reader.describe_images, repositoryName="team-b/web") == "AccessDeniedException"
    assert code(reader.create_repository, repositoryName="team-a/new") == "AccessDeniedException"
    assert code(reader.get_authorization_token) == "AccessDeniedException"
    assert code(reader.batch_get_image, repositoryName="team-a/api", imageIds=[{"imageTag": "x"}]) == (
        "AccessDeniedException"
    )
