# Copyright: Contributors to the cloudops.ecr_replication project
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The sandbox's KMS (tests/sandbox/kms.py): ECR CreateRepository with a customer managed key checks that the key
exists there and that the destination role's policy (iam_policies.target_permissions_policy with kms_key_arns)
allows ECR's KMS calls; ScheduleKeyDeletion by key ARN."""

from __future__ import annotations

import copy
import os

import boto3
import pytest
from moto import mock_aws

from ansible_collections.cloudops.ecr_replication.plugins.module_utils import iam_policies
from tests.sandbox import kms

ACCOUNT = "123456789012"  # moto's default account
REGION = "ap-northeast-2"
CALLER = f"arn:aws:sts::{ACCOUNT}:assumed-role/ecr-replication-target/build"


@pytest.fixture
def key():
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
    kms.patch_kms()
    with mock_aws():
        client = boto3.client("kms", region_name=REGION)
        metadata = client.create_key()["KeyMetadata"]
        client.create_alias(AliasName="alias/ecr-dest", TargetKeyId=metadata["KeyId"])
        yield client, metadata


def body(key_ref):
    return {"repositoryName": "team-a/api", "encryptionConfiguration": {"encryptionType": "KMS", "kmsKey": key_ref}}


def target_policy(*keys):
    return iam_policies.target_permissions_policy(
        region=REGION, account=ACCOUNT, repository_prefixes=["team-a/"], kms_key_arns=list(keys)
    )


def test_the_key_is_named_by_its_arn_whatever_the_reference(key):
    _client, metadata = key
    for ref in (metadata["KeyId"], metadata["Arn"], "alias/ecr-dest", f"arn:aws:kms:{REGION}:{ACCOUNT}:alias/ecr-dest"):
        checked = kms.check_create_repository(body(ref), ACCOUNT, REGION, None)
        assert checked["encryptionConfiguration"]["kmsKey"] == metadata["Arn"]
    assert kms.check_create_repository({"repositoryName": "x"}, ACCOUNT, REGION, None) is None
    aws_managed = {"repositoryName": "x", "encryptionConfiguration": {"encryptionType": "KMS"}}
    assert kms.check_create_repository(aws_managed, ACCOUNT, REGION, None) is None


@pytest.mark.parametrize(
    "ref",
    ["alias/nope", "0b1c2d3e-0000-4000-8000-000000000000", f"arn:aws:kms:ap-south-1:{ACCOUNT}:key/x"],
)
def test_a_key_that_is_not_there_is_a_kms_exception(key, ref):
    with pytest.raises(kms.KmsError) as refused:
        kms.check_create_repository(body(ref), ACCOUNT, REGION, None)
    assert refused.value.code == "KmsException" and "NotFoundException" in refused.value.message


def test_the_role_needs_the_grant_through_ecr(key):
    _client, metadata = key
    granted = target_policy(metadata["Arn"])
    kms.check_create_repository(body("alias/ecr-dest"), ACCOUNT, REGION, (CALLER, [granted]))
    # the grant removed: refused, naming the KMS action
    without = copy.deepcopy(granted)
    without["Statement"] = [s for s in without["Statement"] if s["Sid"] != "UseKmsKeyThroughEcr"]
    with pytest.raises(kms.KmsError) as refused:
        kms.check_create_repository(body("alias/ecr-dest"), ACCOUNT, REGION, (CALLER, [without]))
    assert "kms:DescribeKey" in refused.value.message and "AccessDeniedException" in refused.value.message
    # another key's grant does not do
    other = target_policy(f"arn:aws:kms:{REGION}:{ACCOUNT}:key/0b1c2d3e-0000-4000-8000-000000000000")
    with pytest.raises(kms.KmsError):
        kms.check_create_repository(body("alias/ecr-dest"), ACCOUNT, REGION, (CALLER, [other]))
    # the grant holds only through ECR (kms:ViaService): a condition for another service grants nothing
    via_s3 = copy.deepcopy(granted)
    for statement in via_s3["Statement"]:
        if statement["Sid"] == "UseKmsKeyThroughEcr":
            statement["Condition"] = {"StringEquals": {"kms:ViaService": f"s3.{REGION}.amazonaws.com"}}
    with pytest.raises(kms.KmsError):
        kms.check_create_repository(body("alias/ecr-dest"), ACCOUNT, REGION, (CALLER, [via_s3]))


def test_schedule_key_deletion_by_arn(key):
    client, metadata = key
    client.schedule_key_deletion(KeyId=metadata["Arn"], PendingWindowInDays=7)
    assert client.describe_key(KeyId=metadata["Arn"])["KeyMetadata"]["KeyState"] == "PendingDeletion"
    with pytest.raises(kms.KmsError) as refused:
        kms.check_create_repository(body(metadata["Arn"]), ACCOUNT, REGION, None)
    assert "PendingDeletion" in refused.value.message
