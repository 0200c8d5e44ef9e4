# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The ecr_image_info module in-process (``patch_module_args``) against moto in-process: argument handling,
check mode, errors naming the option, the assumed role for compare_to. The sandbox tests run it for real."""

from __future__ import annotations

import hashlib
import json
import os
import sys
from pathlib import Path

import pytest

_COLLECTIONS = Path(__file__).resolve().parents[4] / ".ansible" / "collections"
if _COLLECTIONS.is_dir() and str(_COLLECTIONS) not in sys.path:
    sys.path.insert(0, str(_COLLECTIONS))

from ansible.module_utils.testing import patch_module_args  # noqa: E402

from ansible_collections.cloudops.ecr_replication.plugins.modules import ecr_image_info  # noqa: E402

OCI = "application/vnd.oci.image.manifest.v1+json"
TARGET_ROLE = "arn:aws:iam::222222222222:role/EcrReader"


@pytest.fixture
def aws(monkeypatch):
    import boto3
    from moto import mock_aws

    for name in list(os.environ):
        if name.startswith("AWS_"):
            monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing-key")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing-secret")
    with mock_aws():
        yield boto3


def push(client, repo, seed, tag=None):
    body = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI,
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json",
                "digest": "sha256:" + "0" * 64,
                "size": 2,
            },
            "layers": [
                {"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": "sha256:" + seed * 64, "size": 1}
            ],
        }
    )
    digest = "sha256:" + hashlib.sha256(body.encode()).hexdigest()
    params = dict(repositoryName=repo, imageManifest=body, imageManifestMediaType=OCI, imageDigest=digest)
    client.put_image(**params, **({"imageTag": tag} if tag else {}))
    return digest


def target_account_ecr(aws, region="ap-northeast-2"):
    """An ECR client of the account of TARGET_ROLE (moto: assuming a role switches to its account)."""
    creds = aws.client("sts", region_name="ap-south-1").assume_role(RoleArn=TARGET_ROLE, RoleSessionName="test-setup")[
        "Credentials"
    ]
    return aws.client(
        "ecr",
        region_name=region,
        aws_access_key_id=creds["AccessKeyId"],
        aws_secret_access_key=creds["SecretAccessKey"],
        aws_session_token=creds["SessionToken"],
    )


def run(capsys, **args):
    with patch_module_args(args):
        with pytest.raises(SystemExit):
            ecr_image_info.main()
    return json.loads(capsys.readouterr().out)


def test_lists_in_check_mode_and_never_changes(aws, capsys):
    src = aws.client("ecr", region_name="ap-south-1")
    src.create_repository(repositoryName="app/web")
    digest = push(src, "app/web", "a", "v1")
    result = run(capsys, region="ap-south-1", _ansible_check_mode=True)
    assert result["changed"] is False and not result.get("failed")
    assert [(i["repository"], i["digest"], i["tags"]) for i in result["images"]] == [("app/web", digest, ["v1"])]
    assert result["summary"]["api_calls"] == {"source": {"DescribeImages": 1, "DescribeRepositories": 1}}
    assert "destination" not in result and result["missing_repositories"] == []


@pytest.mark.parametrize(
    "args, option",
    [
        ({"tag_regex": "["}, "tag_regex"),
        ({"pushed_after": "soon"}, "pushed_after"),
        ({"most_recent": -1}, "most_recent"),
        ({"compare_to": {"region": "ap-northeast-2", "external_id": "secret-value"}}, "compare_to.external_id"),
        ({"compare_to": {"region": "ap-northeast-2", "registry_id": "2222"}}, "compare_to.registry_id"),
        ({"repositories": ["missing/repo"]}, "repositories"),
        (
            {"compare_to": {"region": "ap-northeast-2", "role_session_name": "has space"}},
            "compare_to.role_session_name",
        ),
        (
            {"destinations": [{"region": "ap-northeast-2"}, {"region": "eu-west-1", "external_id": "secret-value"}]},
            "destinations[1].external_id",
        ),
        ({"destinations": [{"region": "ap-northeast-2"}, {"region": "nowhere"}]}, "destinations[1].region"),
        (
            {"destinations": [{"region": "ap-northeast-2"}, {"region": "eu-west-1", "name": "ap-northeast-2"}]},
            "destinations[1].name",
        ),
    ],
)
def test_bad_input_names_the_option(aws, capsys, args, option):
    aws.client("ecr", region_name="ap-south-1").create_repository(repositoryName="app/web")
    result = run(capsys, region="ap-south-1", **args)
    assert result["failed"] is True and result["option"] == option
    assert result["msg"].startswith(option + ": ")
    assert "secret-value" not in json.dumps(result)


def test_compare_to_assumes_the_role_and_reads_the_other_account(aws, capsys):
    src = aws.client("ecr", region_name="ap-south-1")
    src.create_repository(repositoryName="app/web")
    src.create_repository(repositoryName="app/api")
    d1 = push(src, "app/web", "a", "v1")
    d2 = push(src, "app/web", "b", "v2")
    dst = target_account_ecr(aws)
    dst.create_repository(repositoryName="app/web")
    assert dst.describe_repositories()["repositories"][0]["registryId"] == "222222222222"
    push(dst, "app/web", "a", "v1")
    result = run(
        capsys,
        region="ap-south-1",
        compare_to={"region": "ap-northeast-2", "role_arn": TARGET_ROLE, "external_id": "ext-id-1"},
    )
    assert not result.get("failed"), result.get("msg")
    status = {i["digest"]: i["destination_status"] for i in result["images"]}
    assert status == {d1: "present", d2: "missing"}
    assert result["missing_repositories"] == ["app/api"]
    assert result["destination"] == {"region": "ap-northeast-2", "registry_id": "222222222222", "role_arn": TARGET_ROLE}
    assert result["summary"]["api_calls"]["destination"] == {
        "AssumeRole": 1,
        "DescribeRepositories": 1,
        "DescribeImages": 1,
    }
    assert "ext-id-1" not in json.dumps(result)


def test_destinations_list_the_source_once_and_compare_each(aws, capsys):
    src = aws.client("ecr", region_name="ap-south-1")
    src.create_repository(repositoryName="app/web")
    d1 = push(src, "app/web", "a", "v1")
    d2 = push(src, "app/web", "b", "v2")
    other_account = target_account_ecr(aws)
    other_account.create_repository(repositoryName="app/web")
    push(other_account, "app/web", "a", "v1")
    same_account = aws.client("ecr", region_name="eu-west-1")
    same_account.create_repository(repositoryName="app/web")
    push(same_account, "app/web", "b", "v2")
    result = run(
        capsys,
        region="ap-south-1",
        destinations=[
            {"region": "ap-northeast-2", "registry_id": "222222222222", "role_arn": TARGET_ROLE, "external_id": "ext-id-2"},
            {"region": "eu-west-1", "name": "dr"},
        ],
    )
    assert not result.get("failed"), result.get("msg")
    assert result["summary"]["api_calls"]["source"] == {"DescribeImages": 1, "DescribeRepositories": 1}
    partner, dr = result["destinations"]
    assert (partner["name"], partner["region"], partner["registry_id"], partner["role_arn"]) == (
        "222222222222/ap-northeast-2",
        "ap-northeast-2",
        "222222222222",
        TARGET_ROLE,
    )
    assert {i["digest"]: i["destination_status"] for i in partner["images"]} == {d1: "present", d2: "missing"}
    assert (dr["name"], dr["registry_id"], dr["role_arn"]) == ("dr", "123456789012", None)
    assert {i["digest"]: i["destination_status"] for i in dr["images"]} == {d1: "missing", d2: "present"}
    assert partner["summary"]["api_calls"] == {
        "destination": {"AssumeRole": 1, "DescribeImages": 1, "DescribeRepositories": 1}
    }
    assert result["summary"]["api_calls"]["destination"]["DescribeRepositories"] == 2
    assert all(i["destination_status"] is None for i in result["images"])
    assert "ext-id-2" not in json.dumps(result)


def test_compare_to_and_destinations_are_exclusive(aws, capsys):
    aws.client("ecr", region_name="ap-south-1").create_repository(repositoryName="app/web")
    result = run(
        capsys, region="ap-south-1", compare_to={"region": "eu-west-1"}, destinations=[{"region": "ap-northeast-2"}]
    )
    assert result["failed"] is True and "mutually exclusive" in result["msg"]
