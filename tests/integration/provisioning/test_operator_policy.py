# Copyright: Contributors to the cloudops.ecr_replication project
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Issue 15, item 2: the operator policy of source_codebuild. An operator role that has only it runs the
replication's builds through the driver's CodeBuild backend (start, follow, logs, project read), and cannot start a
build of the project with a buildspecOverride (AccessDeniedException from the explicit Deny). The sandbox evaluates
CodeBuild calls of assumed roles with the Null condition operator (tests/sandbox/policy.py).

Without the Deny statement (a new default version of the policy) the same override is accepted: the refusal comes
from that statement, so deleting it from iam_policies.codebuild_operator_policy fails this test."""

from __future__ import annotations

import json
import time
import urllib.parse
import uuid

import pytest
from botocore.exceptions import ClientError

from ansible_collections.cloudops.ecr_replication.plugins.module_utils import codebuild
from ansible_collections.cloudops.ecr_replication.plugins.module_utils.replication_executor import CodeBuildBackend
from ansible_collections.cloudops.ecr_replication.plugins.module_utils.replication_executor import common_env
from ansible_collections.cloudops.ecr_replication.plugins.module_utils.replication_results import parse_line

pytestmark = pytest.mark.sandbox


def operator_role(sandbox, name):
    """A role of the source account the administrator may assume, with no permission of its own (not a fixture
    role: the sandbox checks its policies)."""
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": "sts:AssumeRole",
                "Principal": {"AWS": f"arn:aws:iam::{sandbox.source_account}:root"},
            }
        ],
    }
    sandbox.client("iam").create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust))
    return f"arn:aws:iam::{sandbox.source_account}:role/{name}"


@pytest.mark.slow  # make soak: over a minute of provisioning and builds; make test keeps the file's other cases
def test_operator_role_runs_builds_and_cannot_override_the_buildspec(provisioner, sandbox, reliability):
    role_name = f"operator-{uuid.uuid4().hex[:8]}"
    role_arn = operator_role(sandbox, role_name)
    iam = sandbox.client("iam")
    try:
        result = provisioner.run("provision.yml", extra={"operator_roles": [role_name]})
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr
        project = provisioner.names["project_name"]
        policy_arn = f"arn:aws:iam::{sandbox.source_account}:policy/{project}-operator"
        attached = iam.list_attached_role_policies(RoleName=role_name)["AttachedPolicies"]
        assert [p["PolicyArn"] for p in attached] == [policy_arn]
        tags = {t["Key"]: t["Value"] for t in iam.get_policy(PolicyArn=policy_arn)["Policy"].get("Tags", [])}
        assert tags.get("managed-by") == "cloudops.ecr_replication"

        # idempotent: nothing changes on a second run
        again = provisioner.run("provision.yml", extra={"operator_roles": [role_name]})
        assert again.returncode == 0, again.stdout[-3000:]
        assert again.json["stats"]["localhost"]["changed"] == 0, again.stdout[-3000:]

        session = sandbox.role_session(role_arn, region=sandbox.source_region)
        client = session.client("codebuild", endpoint_url=sandbox.env["AWS_ENDPOINT_URL"])
        logs = session.client("logs", endpoint_url=sandbox.env["AWS_ENDPOINT_URL"])

        # the driver's calls, as the operator: read the project, start a batch, follow it to its end, read its log
        assert codebuild.get_project(client, project)["name"] == project
        image = next(i for i in sandbox.catalog["images"] if i["repository"].startswith("team-a/") and i["tags"])
        backend = CodeBuildBackend(client, logs, project)
        env = common_env(
            sandbox.source_region,
            sandbox.dest_region,
            dest_account=sandbox.target_account,
            dest_role_arn=f"arn:aws:iam::{sandbox.target_account}:role/{provisioner.names['dest_role']}",
            external_id_parameter=f"/cloudops/ecr-replication/{sandbox.target_account}/external-id",
        )
        build_id = backend.start(
            [{"repository": image["repository"], "digest": image["digest"], "tags": image["tags"]}], env
        )
        deadline = time.time() + 300
        while True:
            record = backend.poll([build_id])[build_id]
            if record["status"] != "IN_PROGRESS":
                break
            assert time.time() < deadline, record
            time.sleep(0.5)
        lines = backend.new_lines(build_id)
        assert record["status"] == "SUCCEEDED", "\n".join(lines[-60:])
        results = [r for r in (parse_line(line) for line in lines) if r]
        assert [(r["digest"], r["status"] in ("copied", "present")) for r in results] == [(image["digest"], True)]
        ecr = sandbox.client("ecr", "target", sandbox.dest_region)
        found = ecr.describe_images(repositoryName=image["repository"], imageIds=[{"imageDigest": image["digest"]}])
        assert set(image["tags"]) <= set(found["imageDetails"][0].get("imageTags", []))
        reliability.images_verified(1)

        # the same role, the same call with a buildspec of its own: refused by the explicit Deny
        variables = [
            {
                "name": k,
                "value": v if isinstance(v, str) else v["value"],
                "type": "PLAINTEXT" if isinstance(v, str) else v["type"],
            }
            for k, v in env.items()
        ]
        reliability.bad_input_tried("codebuild buildspecOverride by an operator")
        with pytest.raises(ClientError) as refused:
            client.start_build(
                projectName=project,
                environmentVariablesOverride=variables,
                buildspecOverride="version: 0.2\nphases:\n  build:\n    commands: [env]\n",
            )
        assert refused.value.response["Error"]["Code"] == "AccessDeniedException"
        assert "codebuild:StartBuild" in str(refused.value) and "explicit deny" in str(refused.value)
        # no build was started by the refused call
        ids = client.batch_get_builds(ids=[build_id])["builds"]
        assert [b["id"] for b in ids] == [build_id]
        reliability.bad_input_refused("codebuild buildspecOverride by an operator")

        # the policy without its buildspec Deny lets the same call through: the Deny is what refused it
        document = iam.get_policy_version(
            PolicyArn=policy_arn, VersionId=iam.get_policy(PolicyArn=policy_arn)["Policy"]["DefaultVersionId"]
        )["PolicyVersion"]["Document"]
        document = json.loads(urllib.parse.unquote(document)) if isinstance(document, str) else document
        document["Statement"] = [s for s in document["Statement"] if s.get("Sid") != "DenySourceBuildspecOverride"]
        iam.create_policy_version(PolicyArn=policy_arn, PolicyDocument=json.dumps(document), SetAsDefault=True)
        started = client.start_build(
            projectName=project,
            environmentVariablesOverride=variables,
            buildspecOverride="version: 0.2\nphases:\n  build:\n    commands: ['true']\n",
        )
        client.stop_build(id=started["build"]["id"])
    finally:
        teardown = provisioner.run("teardown.yml")
        assert teardown.returncode == 0, teardown.stdout[-3000:]
        # teardown detached the policy from the operator role and deleted it
        assert iam.list_attached_role_policies(RoleName=role_name)["AttachedPolicies"] == []
        iam.delete_role(RoleName=role_name)
