"""Account boundaries of the sandbox's ECR API, as on AWS: the source account's credentials do not reach the target
account's registry unless the target's registry or repository policy allows them (issue 15, item 8). A
cross-account call made with the wrong credentials fails here as it would on AWS."""

from __future__ import annotations

import contextlib
import json
import uuid

import botocore.exceptions
import pytest

pytestmark = pytest.mark.sandbox


def _denied(call, **kwargs) -> str:
    with pytest.raises(botocore.exceptions.ClientError) as error:
        call(**kwargs)
    assert error.value.response["Error"]["Code"] == "AccessDeniedException", error.value
    return error.value.response["Error"]["Message"]


@contextlib.contextmanager
def _registry_policy_statement(ecr, statement):
    """Add one statement to the registry policy (other tests' statements kept) and put the old policy back."""
    try:
        old = ecr.get_registry_policy()["policyText"]
    except ecr.exceptions.RegistryPolicyNotFoundException:
        old = None
    document = json.loads(old) if old else {"Version": "2012-10-17", "Statement": []}
    document["Statement"] = list(document["Statement"]) + [statement]
    ecr.put_registry_policy(policyText=json.dumps(document))
    try:
        yield
    finally:
        if old:
            ecr.put_registry_policy(policyText=old)
        else:
            ecr.delete_registry_policy()


def _repository_names(ecr) -> set[str]:
    return {
        r["repositoryName"]
        for page in ecr.get_paginator("describe_repositories").paginate()
        for r in page["repositories"]
    }


def test_source_credentials_reach_the_target_registry_only_where_its_policies_allow(sandbox):
    target_id, region = sandbox.target_account, sandbox.dest_region
    name = f"boundary/{uuid.uuid4().hex[:8]}"
    arn = f"arn:aws:ecr:{region}:{target_id}:repository/{name}"
    source = sandbox.client("ecr", "source", region)  # the source administrator (an IAM user), in Seoul
    target = sandbox.client("ecr", "target")
    caller = sandbox.client("sts").get_caller_identity()["Arn"]

    message = _denied(source.create_repository, registryId=target_id, repositoryName=name)
    assert message == (
        f"User: {caller} is not authorized to perform: ecr:CreateRepository on resource: {arn} "
        "because no resource-based policy allows the ecr:CreateRepository action"
    )
    # nothing was created, neither in the target registry nor (as moto would) in the caller's
    assert name not in _repository_names(target)
    assert name not in _repository_names(source)
    assert "repository/* because no resource-based policy" in _denied(
        source.describe_repositories, registryId=target_id
    )
    _denied(source.get_authorization_token, registryIds=[target_id])

    grant = {
        "Sid": f"boundary-{name}",
        "Effect": "Allow",
        "Principal": {"AWS": f"arn:aws:iam::{sandbox.source_account}:root"},
        "Action": ["ecr:CreateRepository"],
        "Resource": arn,
    }
    try:
        with _registry_policy_statement(target, grant):
            created = source.create_repository(registryId=target_id, repositoryName=name)["repository"]
            _denied(source.create_repository, registryId=target_id, repositoryName=name + "-other")
        assert created["registryId"] == target_id and created["repositoryArn"] == arn
        assert name in _repository_names(target)
        assert name not in _repository_names(source)

        # the registry policy granted creation only: describing needs the repository's own policy
        _denied(source.describe_repositories, registryId=target_id, repositoryNames=[name])
        target.set_repository_policy(
            repositoryName=name,
            policyText=json.dumps(
                {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Effect": "Allow",
                            "Principal": {"AWS": sandbox.source_account},
                            "Action": ["ecr:DescribeRepositories", "ecr:DescribeImages"],
                        }
                    ],
                }
            ),
        )
        described = source.describe_repositories(registryId=target_id, repositoryNames=[name])["repositories"]
        assert [(r["repositoryArn"], r["registryId"]) for r in described] == [(arn, target_id)]
        assert source.describe_images(registryId=target_id, repositoryName=name)["imageDetails"] == []
        _denied(source.list_images, registryId=target_id, repositoryName=name)  # not in the repository policy
        _denied(source.describe_repositories, registryId=target_id)  # listing the registry: no repository grants it
    finally:
        with contextlib.suppress(target.exceptions.RepositoryNotFoundException):
            target.delete_repository(repositoryName=name, force=True)


def test_an_assumed_role_of_the_source_account_is_held_to_the_boundary_too(sandbox):
    """Roles whose identity policies the sandbox does not check (sandbox:unrestricted) still stop at the account."""
    from tests.sandbox.fixtures import ensure_trusted_role

    role_name = "boundary-tests-unrestricted"
    ensure_trusted_role(sandbox.client("iam"), role_name, {"AWS": f"arn:aws:iam::{sandbox.source_account}:root"})
    session = sandbox.role_session(
        f"arn:aws:iam::{sandbox.source_account}:role/{role_name}", region=sandbox.dest_region
    )
    ecr = session.client("ecr", endpoint_url=sandbox.env["AWS_ENDPOINT_URL"])
    # refused before the repository is even looked up, whether or not the target holds one of that name
    message = _denied(ecr.describe_images, registryId=sandbox.target_account, repositoryName="team-a/api")
    assert message.startswith(f"User: arn:aws:sts::{sandbox.source_account}:assumed-role/{role_name}/")
    own = ecr.describe_repositories(registryId=sandbox.source_account)["repositories"]  # its own registry: answered
    assert {r["registryId"] for r in own} <= {sandbox.source_account}


def test_a_caller_cannot_choose_its_account_with_a_moto_header(sandbox):
    """moto honours x-moto-account-id before the access key; the sandbox drops it from ECR calls."""
    name = f"boundary/header-{uuid.uuid4().hex[:8]}"
    source = sandbox.client("ecr", "source", sandbox.dest_region)
    source.meta.events.register(
        "before-sign.ecr.*",
        lambda request, **_: request.headers.__setitem__("x-moto-account-id", sandbox.target_account),
    )
    created = source.create_repository(repositoryName=name)["repository"]
    try:
        assert created["registryId"] == sandbox.source_account
        assert name not in _repository_names(sandbox.client("ecr", "target"))
    finally:
        sandbox.client("ecr", "source", sandbox.dest_region).delete_repository(repositoryName=name, force=True)
