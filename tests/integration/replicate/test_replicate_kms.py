# Copyright: Contributors to the cloudops.ecr_replication project
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Issue 15, item 7: a source repository encrypted with a customer managed KMS key. The copy creates its destination
repository with the key the user names (replicate.yml -e kms_key=...), which the destination role may use only when
provision.yml granted it (-e kms_key=<key ARN>): without the grant every image fails with ECR's KmsException naming
kms:CreateGrant, and nothing is created. A malformed key is refused before any AWS call.

The sandbox checks CreateRepository's key: it must exist in the destination account and region, and the assumed
role's policies must allow ECR's KMS calls (kms:DescribeKey, kms:CreateGrant with kms:ViaService = ECR), as
tests/sandbox/kms.py describes."""

from __future__ import annotations

import json
import urllib.parse
import uuid

import pytest

from .conftest import provision
from .conftest import run_playbook
from .conftest import user_args

pytestmark = pytest.mark.sandbox


@pytest.fixture(scope="module")
def kms_source(sandbox):
    """A source repository encrypted with a customer managed key of the source account, holding one image of the
    catalog (copied registry to registry, digest kept), and a customer managed key in the destination region."""
    name = f"kms-src/app-{uuid.uuid4().hex[:6]}"
    source_kms = sandbox.client("kms", "source", sandbox.source_region)
    source_key = source_kms.create_key(Description="source repository key")["KeyMetadata"]["Arn"]
    sandbox.client("ecr", "source", sandbox.source_region).create_repository(
        repositoryName=name, encryptionConfiguration={"encryptionType": "KMS", "kmsKey": source_key}
    )
    image = [i for i in sandbox.catalog["images"] if i["kind"] == "image" and i["tags"]][0]
    host = sandbox.registry_host("source")
    sandbox.skopeo(
        "copy", "--all", "--preserve-digests",
        f"docker://{host}/{image['repository']}@{image['digest']}", f"docker://{host}/{name}:{image['tags'][0]}",
        account_creds={host: sandbox.registry_password("source")},
    )  # fmt: skip
    dest_kms = sandbox.client("kms", "target", sandbox.dest_region)
    dest_key = dest_kms.create_key(Description="destination repositories key")["KeyMetadata"]["Arn"]
    dest_kms.create_alias(AliasName=f"alias/ecr-{uuid.uuid4().hex[:6]}", TargetKeyId=dest_key)
    yield {"name": name, "digest": image["digest"], "tag": image["tags"][0], "dest_key": dest_key}
    # the other replicate tests copy the whole source registry: leave it as the catalog was
    for account, region in (("source", sandbox.source_region), ("target", sandbox.dest_region)):
        ecr = sandbox.client("ecr", account, region)
        try:
            ecr.delete_repository(repositoryName=name, force=True)
        except ecr.exceptions.RepositoryNotFoundException:
            pass
    # the sandbox KMS schedules the deletion of a key named by its ARN (it answered 500 before)
    for client, key in ((source_kms, source_key), (dest_kms, dest_key)):
        assert client.schedule_key_deletion(KeyId=key, PendingWindowInDays=7)["KeyId"] in key
        assert client.describe_key(KeyId=key)["KeyMetadata"]["KeyState"] == "PendingDeletion"


def _destination_repository(sandbox, name):
    ecr = sandbox.client("ecr", "target", sandbox.dest_region)
    try:
        return ecr.describe_repositories(repositoryNames=[name])["repositories"][0]
    except ecr.exceptions.RepositoryNotFoundException:
        return None


def _provision(sandbox, cwd, *more):
    cwd.mkdir()
    return provision(sandbox, cwd, *more)


def _target_policy(sandbox):
    document = sandbox.client("iam", "target").get_role_policy(
        RoleName="ecr-replication-target", PolicyName="ecr-replication-target"
    )["PolicyDocument"]
    return json.loads(urllib.parse.unquote(document)) if isinstance(document, str) else document


def _replicate(sandbox, cwd, name, *more):
    args = user_args(sandbox, "-e", "poll_interval=1", "-e", f"repositories={name}", *more)
    return run_playbook(sandbox, "replicate.yml", cwd, *args)


def test_invalid_key_is_refused_before_any_aws_call(sandbox, kms_source, tmp_path, reliability):
    for n, bad in enumerate(
        (
            "not-a-key",
            "alias/aws/ecr",
            f"arn:aws:kms:{sandbox.source_region}:222222222222:key/" "0b1c2d3e-0000-4000-8000-000000000000",
        )
    ):
        reliability.bad_input_tried(f"kms_key {bad}")
        cwd = tmp_path / str(n)
        cwd.mkdir()
        run = _replicate(sandbox, cwd, kms_source["name"], "-e", f"kms_key={bad}")
        assert run.returncode != 0, run.explain()
        assert "replicate_kms_key: " in run.stdout, run.explain()
        assert "Traceback" not in run.stdout + run.stderr
        # refused by the inputs task, the first of the play: no facts read, nothing planned or copied
        assert run.recap["failed"] == 1 and "TASK [cloudops.ecr_replication.replicate : Facts" not in run.stdout
        assert _destination_repository(sandbox, kms_source["name"]) is None
        reliability.bad_input_refused(f"kms_key {bad}")


def test_without_the_grant_each_image_fails_with_the_kms_cause(sandbox, kms_source, tmp_path):
    _provision(sandbox, tmp_path / "provision")  # the destination role without any KMS permission
    # one round: a further one would only fail the same way
    run = _replicate(
        sandbox, tmp_path, kms_source["name"], "-e", f"kms_key={kms_source['dest_key']}", "-e", "max_rounds=1"
    )
    assert run.returncode != 0, run.explain()
    report = json.loads((tmp_path / "reports" / "ecr-replication-report.json").read_text())
    failed = [i for i in report["images"] if i["outcome"] == "failed"]
    assert [i["digest"] for i in failed] == [kms_source["digest"]], report["images"]
    assert "KmsException" in failed[0]["reason"] and "kms:" in failed[0]["reason"], failed[0]["reason"]
    assert kms_source["dest_key"] in failed[0]["reason"]
    assert _destination_repository(sandbox, kms_source["name"]) is None


@pytest.mark.slow  # make soak: over a minute of provisioning and builds; make test keeps the file's other cases
def test_destination_repository_gets_the_named_key(sandbox, kms_source, tmp_path, reliability):
    _provision(sandbox, tmp_path / "provision", "-e", f"kms_key={kms_source['dest_key']}")
    policy = _target_policy(sandbox)
    kms_statement = [s for s in policy["Statement"] if s.get("Sid") == "UseKmsKeyThroughEcr"]
    assert kms_statement and kms_statement[0]["Resource"] == kms_source["dest_key"]
    # idempotent with the key
    again = _provision(sandbox, tmp_path / "provision-same", "-e", f"kms_key={kms_source['dest_key']}")
    assert again.recap["changed"] == 0, again.explain()
    run = _replicate(sandbox, tmp_path, kms_source["name"], "-e", f"kms_key={kms_source['dest_key']}")
    assert run.returncode == 0, run.explain()
    repository = _destination_repository(sandbox, kms_source["name"])
    assert repository["encryptionConfiguration"] == {"encryptionType": "KMS", "kmsKey": kms_source["dest_key"]}
    detail = sandbox.client("ecr", "target", sandbox.dest_region).describe_images(
        repositoryName=kms_source["name"], imageIds=[{"imageDigest": kms_source["digest"]}]
    )["imageDetails"][0]
    assert kms_source["tag"] in detail["imageTags"]
    reliability.images_verified(1)
    # back to the provisioning without a key: the grant goes away with it
    _provision(sandbox, tmp_path / "provision-again")
    assert "UseKmsKeyThroughEcr" not in json.dumps(_target_policy(sandbox))
