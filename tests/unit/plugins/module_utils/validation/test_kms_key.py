# Copyright: Contributors to the cloudops.ecr_replication project
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""replicate_kms_key (issue 15, item 7): the forms ECR's kmsKey takes are accepted, anything else is refused before
any AWS call with an error naming the variable; the destination role's KMS grant is on exactly the named key ARNs,
only through ECR."""

from __future__ import annotations

import pytest

from ansible_collections.cloudops.ecr_replication.plugins.module_utils import iam_policies
from ansible_collections.cloudops.ecr_replication.plugins.module_utils import validation as v

KEY_ID = "0b1c2d3e-0000-4000-8000-000000000000"
KEY = f"arn:aws:kms:ap-northeast-2:222222222222:key/{KEY_ID}"


@pytest.mark.parametrize(
    "value",
    [KEY_ID, KEY, "alias/ecr-dest", "arn:aws:kms:ap-northeast-2:222222222222:alias/ecr-dest",
     "mrk-" + "a" * 32, f"arn:aws-cn:kms:cn-north-1:222222222222:key/{KEY_ID}"],
)
def test_accepted(value):
    assert v.validate_kms_key(value, "replicate_kms_key") == value


@pytest.mark.parametrize(
    "value, says",
    [
        ("not-a-key", "is not a customer managed KMS key"),
        ("alias/aws/ecr", "is not a customer managed KMS key"),
        (f"arn:aws:kms:ap-northeast-2:2222:key/{KEY_ID}", "is not a customer managed KMS key"),
        (f"arn:aws:kms:ap-south-1:222222222222:key/{KEY_ID}", "is a key of ap-south-1"),
        ("arn:aws:s3:::bucket", "is not a customer managed KMS key"),
    ],
)
def test_refused_with_the_variable_named(value, says):
    with pytest.raises(v.OptionError) as refused:
        v.validate_kms_key(value, "replicate_kms_key", ("ap-northeast-2",))
    assert refused.value.option == "replicate_kms_key" and says in str(refused.value)


def test_replicate_inputs_check_it():
    params = {"source_region": "ap-south-1", "dest_region": "ap-northeast-2"}
    assert v.check_replicate_inputs(params)["kms_key"] == ""
    assert v.check_replicate_inputs(dict(params, kms_key=KEY))["kms_key"] == KEY
    with pytest.raises(v.OptionError) as refused:
        v.check_replicate_inputs(dict(params, kms_key="alias/aws/ecr"))
    assert refused.value.option == "replicate_kms_key"


def test_target_role_grant_is_exactly_the_key_through_ecr():
    base = dict(region="ap-northeast-2", account="222222222222", repository_prefixes=["team-a/"])
    assert "UseKmsKeyThroughEcr" not in str(iam_policies.target_permissions_policy(**base))
    policy = iam_policies.target_permissions_policy(**base, kms_key_arns=[KEY])
    statement = [s for s in policy["Statement"] if s["Sid"] == "UseKmsKeyThroughEcr"][0]
    assert statement["Action"] == ["kms:CreateGrant", "kms:DescribeKey", "kms:RetireGrant"]
    assert statement["Resource"] == KEY
    assert statement["Condition"] == {"StringEquals": {"kms:ViaService": ["ecr.ap-northeast-2.amazonaws.com"]}}
    for bad in ("alias/ecr-dest", KEY_ID, f"arn:aws:kms:ap-south-1:222222222222:key/{KEY_ID}"):
        with pytest.raises(v.OptionError) as refused:
            iam_policies.target_permissions_policy(**base, kms_key_arns=[bad])
        assert refused.value.option == "kms_key_arns"
