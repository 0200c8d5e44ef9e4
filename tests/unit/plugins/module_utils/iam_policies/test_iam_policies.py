"""Exact permissions of the replication roles: widening any of them must fail a test here."""

from __future__ import annotations

import json

import pytest

from ansible_collections.cloudops.ecr_replication.plugins.module_utils import iam_policies as p

SRC = "111111111111"
DST = "222222222222"
SRC_REGION = "ap-south-1"
DST_REGION = "ap-northeast-2"
LOG_GROUP = "/aws/codebuild/ecr-replication"
TARGET_ROLE = f"arn:aws:iam::{DST}:role/ecr-replication-target"
CODEBUILD_ROLE = f"arn:aws:iam::{SRC}:role/ecr-replication-codebuild"
SECRET = "s3cr3t-external-id"


def service_policy(**overrides):
    args = dict(
        region=SRC_REGION,
        account=SRC,
        log_group_name=LOG_GROUP,
        repository_prefixes=["team-a/", "app"],
        destination_role_arns=[TARGET_ROLE],
    )
    args.update(overrides)
    return p.codebuild_service_policy(**args)


def target_policy(**overrides):
    args = dict(region=DST_REGION, account=DST, repository_prefixes=["team-a/", "app"])
    args.update(overrides)
    return p.target_permissions_policy(**args)


def pairs(actions, resources):
    return {(a, r) for a in actions for r in resources}


SRC_REPOS = [f"arn:aws:ecr:{SRC_REGION}:{SRC}:repository/app*", f"arn:aws:ecr:{SRC_REGION}:{SRC}:repository/team-a/*"]
DST_REPOS = [f"arn:aws:ecr:{DST_REGION}:{DST}:repository/app*", f"arn:aws:ecr:{DST_REGION}:{DST}:repository/team-a/*"]
LOG_ARNS = [
    f"arn:aws:logs:{SRC_REGION}:{SRC}:log-group:{LOG_GROUP}",
    f"arn:aws:logs:{SRC_REGION}:{SRC}:log-group:{LOG_GROUP}:log-stream:*",
]
SOURCE_READ = {
    "ecr:BatchCheckLayerAvailability",
    "ecr:BatchGetImage",
    "ecr:DescribeImages",
    "ecr:DescribeRepositories",
    "ecr:GetDownloadUrlForLayer",
    "ecr:ListImages",
}
TARGET_WRITE = {
    "ecr:BatchCheckLayerAvailability",
    "ecr:BatchGetImage",
    "ecr:CompleteLayerUpload",
    "ecr:CreateRepository",
    "ecr:DescribeImages",
    "ecr:DescribeRepositories",
    "ecr:InitiateLayerUpload",
    "ecr:ListImages",
    "ecr:PutImage",
    "ecr:TagResource",
    "ecr:UploadLayerPart",
}


# ---- exact action/resource sets ---------------------------------------------------------------


def test_codebuild_service_policy_exact_grants():
    expected = (
        pairs({"logs:CreateLogStream", "logs:PutLogEvents"}, LOG_ARNS)
        | {("ecr:GetAuthorizationToken", "*")}
        | pairs(SOURCE_READ, SRC_REPOS)
        | {("sts:AssumeRole", TARGET_ROLE)}
    )
    assert p.action_resource_pairs(service_policy()) == expected


def test_codebuild_service_policy_statements_keep_scopes_apart():
    statements = {s["Sid"]: s for s in service_policy()["Statement"]}
    assert set(statements) == {
        "WriteBuildLogs",
        "GetEcrAuthorizationToken",
        "ReadSourceRepositories",
        "AssumeDestinationRoles",
    }
    # The only "*" resource is GetAuthorizationToken's, which cannot be scoped.
    assert statements["GetEcrAuthorizationToken"] == {
        "Sid": "GetEcrAuthorizationToken",
        "Effect": "Allow",
        "Action": "ecr:GetAuthorizationToken",
        "Resource": "*",
    }
    for sid, statement in statements.items():
        assert statement["Effect"] == "Allow"
        assert "*" not in json.dumps(statement.get("Action")), sid
        if sid != "GetEcrAuthorizationToken":
            assert statement["Resource"] != "*", sid


def test_codebuild_service_policy_all_repositories_only_when_asked():
    policy = service_policy(repository_prefixes=[], all_repositories=True)
    read = {r for a, r in p.action_resource_pairs(policy) if a == "ecr:BatchGetImage"}
    assert read == {f"arn:aws:ecr:{SRC_REGION}:{SRC}:repository/*"}


def test_codebuild_service_policy_several_destination_roles_sorted_unique():
    other = "arn:aws:iam::333333333333:role/other"
    policy = service_policy(destination_role_arns=[TARGET_ROLE, other, TARGET_ROLE])
    assumable = {r for a, r in p.action_resource_pairs(policy) if a == "sts:AssumeRole"}
    assert assumable == {TARGET_ROLE, other}


def test_target_permissions_policy_exact_grants():
    expected = {("ecr:GetAuthorizationToken", "*")} | pairs(TARGET_WRITE, DST_REPOS)
    assert p.action_resource_pairs(target_policy()) == expected


def test_target_permissions_policy_repository_settings_are_opt_in():
    settings = {"ecr:PutImageScanningConfiguration", "ecr:PutImageTagMutability", "ecr:PutLifecyclePolicy"}
    expected = {("ecr:GetAuthorizationToken", "*")} | pairs(TARGET_WRITE | settings, DST_REPOS)
    assert p.action_resource_pairs(target_policy(allow_repository_settings=True)) == expected


def test_source_repository_settings_are_opt_in():
    expected = (
        pairs({"logs:CreateLogStream", "logs:PutLogEvents"}, LOG_ARNS)
        | {("ecr:GetAuthorizationToken", "*")}
        | pairs(SOURCE_READ | {"ecr:GetLifecyclePolicy", "ecr:GetRepositoryPolicy"}, SRC_REPOS)
        | {("sts:AssumeRole", TARGET_ROLE)}
    )
    assert p.action_resource_pairs(service_policy(read_repository_settings=True)) == expected


def test_target_repository_policy_is_opt_in_on_its_own():
    expected = {("ecr:GetAuthorizationToken", "*")} | pairs(TARGET_WRITE | {"ecr:SetRepositoryPolicy"}, DST_REPOS)
    assert p.action_resource_pairs(target_policy(allow_repository_policy=True)) == expected


def test_target_policy_never_deletes():
    for policy in (target_policy(), target_policy(allow_repository_settings=True), service_policy()):
        actions = {action for action, resource in p.action_resource_pairs(policy)}
        assert not {a for a in actions if "Delete" in a or a.startswith("iam:") or a.endswith(":*")}


def test_codebuild_trust_policy_exact():
    assert p.codebuild_trust_policy(region=SRC_REGION, account=SRC, project_name="ecr-replication") == {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "CodeBuildAssumeRole",
                "Effect": "Allow",
                "Principal": {"Service": "codebuild.amazonaws.com"},
                "Action": "sts:AssumeRole",
                "Condition": {"StringEquals": {"aws:SourceAccount": SRC}},
            }
        ],
    }


def test_codebuild_trust_policy_restricted_to_the_project():
    trust = p.codebuild_trust_policy(
        region=SRC_REGION, account=SRC, project_name="ecr-replication", restrict_to_project=True
    )
    assert trust["Statement"][0]["Condition"] == {
        "StringEquals": {"aws:SourceAccount": SRC},
        "ArnLike": {"aws:SourceArn": f"arn:aws:codebuild:{SRC_REGION}:{SRC}:project/ecr-replication"},
    }


def test_target_trust_policy_local_principals_only_with_the_external_id():
    controller = "arn:aws:iam::111111111111:user/operator"
    policy = p.target_trust_policy(source_role_arn=CODEBUILD_ROLE, external_id=SECRET, local_principals=[controller])
    (statement,) = policy["Statement"]
    assert statement["Principal"] == {"AWS": sorted([CODEBUILD_ROLE, controller])}
    assert statement["Condition"] == {"StringEquals": {"sts:ExternalId": SECRET}}
    with pytest.raises(p.OptionError, match="^local_principals: "):
        p.target_trust_policy(source_role_arn=CODEBUILD_ROLE, external_id=SECRET, local_principals=["*"])


def test_target_trust_policy_exact():
    assert p.target_trust_policy(source_role_arn=CODEBUILD_ROLE, external_id=SECRET) == {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "SourceCodeBuildAssumeRole",
                "Effect": "Allow",
                "Principal": {"AWS": CODEBUILD_ROLE},
                "Action": "sts:AssumeRole",
                "Condition": {"StringEquals": {"sts:ExternalId": SECRET}},
            }
        ],
    }


def test_registry_replication_statement_exact():
    statement = p.registry_replication_statement(
        source_account=SRC, region=DST_REGION, account=DST, repository_prefixes=["team-a/", "app"]
    )
    assert statement == {
        "Sid": f"EcrReplicationFrom{SRC}",
        "Effect": "Allow",
        "Principal": {"AWS": f"arn:aws:iam::{SRC}:root"},
        "Action": ["ecr:CreateRepository", "ecr:ReplicateImage"],
        "Resource": DST_REPOS,
    }


def test_partition_follows_region():
    policy = target_policy(region="cn-north-1")
    assert all(r == "*" or r.startswith("arn:aws-cn:ecr:cn-north-1:") for action, r in p.action_resource_pairs(policy))


# ---- bad input: clear errors naming the option ------------------------------------------------


@pytest.mark.parametrize(
    "prefixes, message",
    [
        (["*"], "all_repositories"),
        (["team-*"], "all_repositories"),
        ([""], "all_repositories"),
        ([], "at least one repository prefix"),
        ("team-a/", "must be a list"),
        (["Team-A"], "not a repository name prefix"),
    ],
)
def test_repository_prefixes_refused(prefixes, message):
    with pytest.raises(p.OptionError) as exc:
        service_policy(repository_prefixes=prefixes)
    assert exc.value.option == "repository_prefixes"
    assert message in str(exc.value)


def test_prefixes_with_all_repositories_is_ambiguous():
    with pytest.raises(p.OptionError, match="repository_prefixes: must be empty"):
        target_policy(all_repositories=True)


def test_covered_prefixes_are_dropped():
    assert p.validate_repository_prefixes(["team-a/x", "team-a/", "b", "team-a/"], False, "o") == ["b", "team-a/"]


@pytest.mark.parametrize(
    "overrides, option",
    [
        ({"account": "1234"}, "account"),
        ({"region": "mumbai"}, "region"),
        ({"destination_role_arns": []}, "destination_role_arns"),
        ({"destination_role_arns": ["arn:aws:iam::222222222222:user/bob"]}, "destination_role_arns"),
        ({"destination_role_arns": "arn:aws:iam::222222222222:role/x"}, "destination_role_arns"),
        ({"log_group_name": "bad group name"}, "log_group_name"),
    ],
)
def test_service_policy_bad_input(overrides, option):
    with pytest.raises(p.OptionError) as exc:
        service_policy(**overrides)
    assert exc.value.option == option
    assert str(exc.value).startswith(f"{option}: ")


@pytest.mark.parametrize("external_id", ["", "Z", "has space", "a" * 1225, None])
def test_external_id_refused_without_showing_it(external_id):
    with pytest.raises(p.OptionError) as exc:
        p.target_trust_policy(source_role_arn=CODEBUILD_ROLE, external_id=external_id)
    assert exc.value.option == "external_id"
    if external_id:
        assert external_id not in str(exc.value)


def test_bad_source_role_arn():
    with pytest.raises(p.OptionError, match="^source_role_arn: "):
        p.target_trust_policy(source_role_arn="ecr-replication-codebuild", external_id=SECRET)


# ---- registry policy statements by Sid ---------------------------------------------------------

OTHER = {
    "Sid": "SomeoneElse",
    "Effect": "Allow",
    "Principal": {"AWS": "arn:aws:iam::333333333333:root"},
    "Action": "ecr:ReplicateImage",
    "Resource": "*",
}


def test_merge_keeps_other_statements_and_replaces_same_sid():
    ours = p.registry_replication_statement(
        source_account=SRC, region=DST_REGION, account=DST, repository_prefixes=["a"]
    )
    first = p.merge_policy_statements({"Version": "2012-10-17", "Statement": [OTHER]}, [ours])
    assert first["Statement"] == [OTHER, ours]
    newer = dict(ours, Resource="arn:aws:ecr:ap-northeast-2:222222222222:repository/b*")
    second = p.merge_policy_statements(json.dumps(first), [newer])
    assert second["Statement"] == [OTHER, newer]


def test_remove_only_our_statement_and_none_when_empty():
    ours = {"Sid": f"EcrReplicationFrom{SRC}", "Effect": "Allow", "Action": "ecr:ReplicateImage", "Resource": "*"}
    policy = {"Version": "2012-10-17", "Statement": [OTHER, ours]}
    assert p.remove_policy_statements(policy, [ours["Sid"]])["Statement"] == [OTHER]
    assert p.remove_policy_statements({"Statement": [ours]}, [ours["Sid"]]) is None


def test_merge_needs_a_sid():
    with pytest.raises(p.OptionError, match="Sid"):
        p.merge_policy_statements(None, [{"Effect": "Allow", "Action": "ecr:ReplicateImage", "Resource": "*"}])


def test_policies_equal_ignores_order_and_scalar_lists():
    a = {
        "Version": "2012-10-17",
        "Statement": [{"Sid": "B", "Action": "x:y", "Resource": ["r"]}, {"Sid": "A", "Action": ["b", "a"]}],
    }
    b = {
        "Version": "2012-10-17",
        "Statement": [{"Sid": "A", "Action": ["a", "b"]}, {"Sid": "B", "Action": ["x:y"], "Resource": "r"}],
    }
    assert p.policies_equal(a, json.dumps(b))
    assert not p.policies_equal(a, None)


def test_flags_given_as_strings_mean_what_they_say():
    # ansible-playbook -e all_repositories=false passes the string "false": it must not grant repository/*.
    assert p.action_resource_pairs(target_policy(all_repositories="false")) == p.action_resource_pairs(target_policy())
    everything = target_policy(repository_prefixes=[], all_repositories="true")
    assert {r for a, r in p.action_resource_pairs(everything) if a == "ecr:PutImage"} == {
        f"arn:aws:ecr:{DST_REGION}:{DST}:repository/*"
    }
    with pytest.raises(p.OptionError, match="^allow_repository_policy: must be true or false"):
        target_policy(allow_repository_policy="maybe")


def test_reader_permissions_policy_exact_grants():
    policy = p.reader_permissions_policy(region=DST_REGION, account=DST, repository_prefixes=["team-a/", "app"])
    registry = f"arn:aws:ecr:{DST_REGION}:{DST}:repository/*"
    assert p.action_resource_pairs(policy) == {("ecr:DescribeRepositories", registry)} | pairs(
        {"ecr:DescribeImages"}, DST_REPOS
    )


def test_reader_can_neither_write_nor_read_image_contents():
    policy = p.reader_permissions_policy(region=DST_REGION, account=DST, repository_prefixes=[], all_repositories=True)
    actions = {action for action, _resource in p.action_resource_pairs(policy)}
    assert actions == {"ecr:DescribeRepositories", "ecr:DescribeImages"}


def test_reader_trust_policy_exact():
    root = f"arn:aws:iam::{SRC}:root"
    assert p.reader_trust_policy(trusted_principals=[root, root], external_id=SECRET) == {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "ReplicationControllerAssumeRole",
                "Effect": "Allow",
                "Principal": {"AWS": root},
                "Action": "sts:AssumeRole",
                "Condition": {"StringEquals": {"sts:ExternalId": SECRET}},
            }
        ],
    }


@pytest.mark.parametrize("principals", [[], "arn:aws:iam::111111111111:root", ["*"], ["arn:aws:iam::1111:root"]])
def test_reader_trust_policy_refuses_bad_principals(principals):
    with pytest.raises(p.OptionError) as error:
        p.reader_trust_policy(trusted_principals=principals, external_id=SECRET)
    assert error.value.option == "trusted_principals"


def test_one_role_for_several_regions_of_the_account():
    regions = {DST_REGION, SRC_REGION}
    for builder in (p.target_permissions_policy, p.reader_permissions_policy):
        policy = builder(
            region=DST_REGION, account=DST, repository_prefixes=["team-a/"], extra_regions=[SRC_REGION, DST_REGION]
        )
        repositories = {r for a, r in p.action_resource_pairs(policy) if "repository/team-a/" in r}
        assert repositories == {f"arn:aws:ecr:{r}:{DST}:repository/team-a/*" for r in regions}
    single = p.target_permissions_policy(region=DST_REGION, account=DST, repository_prefixes=["team-a/"])
    assert single == p.target_permissions_policy(
        region=DST_REGION, account=DST, repository_prefixes=["team-a/"], extra_regions=[]
    )


@pytest.mark.parametrize("extra_regions", ["ap-south-1", ["mumbai"]])
def test_extra_regions_refused(extra_regions):
    with pytest.raises(p.OptionError) as error:
        p.reader_permissions_policy(
            region=DST_REGION, account=DST, repository_prefixes=["a/"], extra_regions=extra_regions
        )
    assert error.value.option == "extra_regions"


def test_service_role_reads_exactly_the_external_id_parameters():
    args = dict(
        region="ap-south-1",
        account="111111111111",
        log_group_name="/aws/codebuild/ecr-replication",
        repository_prefixes=["team-a/"],
        destination_role_arns=["arn:aws:iam::222222222222:role/t"],
    )
    without = p.codebuild_service_policy(**args)
    assert not any(s["Sid"] == "ReadExternalIds" for s in without["Statement"])
    policy = p.codebuild_service_policy(
        **args, external_id_parameters=["/cloudops/ecr-replication/222222222222/external-id"]
    )
    (statement,) = [s for s in policy["Statement"] if s["Sid"] == "ReadExternalIds"]
    assert statement["Action"] == "ssm:GetParameters"
    assert (
        statement["Resource"]
        == "arn:aws:ssm:ap-south-1:111111111111:parameter/cloudops/ecr-replication/222222222222/external-id"
    )
    with pytest.raises(p.OptionError, match="^external_id_parameters: "):
        p.codebuild_service_policy(**args, external_id_parameters=["no-slash"])
