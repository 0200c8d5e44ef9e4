"""validation.py: the one option-error class and its validators."""

from __future__ import annotations

import pytest

from ansible_collections.cloudops.ecr_replication.plugins.module_utils import validation as v


def test_option_error_names_the_option():
    error = v.OptionError("replicate_batch_size", "must be 1 or more")
    assert error.option == "replicate_batch_size"
    assert str(error) == "replicate_batch_size: must be 1 or more"


@pytest.mark.parametrize("value", [0, -1, "0", "x", 1.5, True, None, 1001])
def test_int_out_of_range_or_not_a_number(value):
    with pytest.raises(v.OptionError, match=r"^batch_size: must be an integer from 1 to 1000"):
        v.validate_int(value, "batch_size", 1, 1000)


@pytest.mark.parametrize("value,expected", [(1, 1), ("50", 50), (1000, 1000), (7.0, 7)])
def test_int_accepts(value, expected):
    assert v.validate_int(value, "batch_size", 1, 1000) == expected


@pytest.mark.parametrize("value", [0, -3, "nan", "soon", float("nan"), 10**9])
def test_seconds_refused(value):
    with pytest.raises(v.OptionError, match=r"^poll_interval: must be a number of seconds"):
        v.validate_seconds(value, "poll_interval", 0.05, 3600)


def test_repository_name_limits():
    assert v.validate_repository_name("team/app", "repositories") == "team/app"
    with pytest.raises(v.OptionError, match="not an ECR repository name"):
        v.validate_repository_name("Team/App", "repositories")
    with pytest.raises(v.OptionError, match="at most 256"):
        v.validate_repository_name("a" * 257, "repositories")
    host = v.registry_host_for("222222222222", "ap-northeast-2")
    assert host == "222222222222.dkr.ecr.ap-northeast-2.amazonaws.com"
    fits = "a" * (v.REFERENCE_NAME_MAX - len(host) - 1)
    assert v.validate_repository_name(fits, "repositories", (host,)) == fits
    with pytest.raises(v.OptionError, match="does not fit in a registry reference"):
        v.validate_repository_name(fits + "a", "repositories", (host,))


def test_name_list_from_string_and_list():
    assert v.name_list("a, b\nc,", "repositories") == ["a", "b", "c"]
    assert v.name_list(["a", " b "], "repositories") == ["a", "b"]
    assert v.name_list("", "repositories") == []
    with pytest.raises(v.OptionError, match="^repositories: "):
        v.name_list({"a": 1}, "repositories")


BASE = {"source_region": "ap-south-1", "dest_region": "ap-northeast-2"}


@pytest.mark.parametrize(
    "change,option,says",
    [
        ({"batch_size": 0}, "replicate_batch_size", "from 1 to 500"),
        ({"batch_size": "50000"}, "replicate_batch_size", "from 1 to 500"),
        ({"max_concurrent_builds": -2}, "replicate_max_concurrent_builds", "from 1 to 100"),
        ({"parallel_copies": 99}, "replicate_parallel_copies", "from 1 to 32"),
        ({"poll_interval": 0}, "replicate_poll_interval", "0.05 to 3600"),
        ({"wait_timeout": 1}, "replicate_wait_timeout", "60 to"),
        ({"most_recent": -1}, "replicate_most_recent", "from 0 to 100000"),
        ({"pushed_after": "100000000d"}, "replicate_pushed_after", "before the year 1"),
        ({"tag_regex": "(unclosed"}, "replicate_tag_regex", "not a valid regular expression"),
        ({"strategy": "sideways"}, "replicate_strategy", "must be one of"),
        ({"strategy": "backfill", "tag_regex": "^v"}, "replicate_tag_regex", "strategy backfill copies whole"),
        ({"strategy": "backfill", "include_untagged": False}, "replicate_include_untagged", "whole repositories"),
        ({"dest_region": ""}, "replicate_dest_region", "is required"),
        ({"source_region": "mars-1"}, "replicate_source_region", "AWS region name"),
        ({"repository_prefix": "Team/"}, "replicate_repository_prefix", "cannot start"),
    ],
)
def test_replicate_inputs_refused_with_the_variable_named(change, option, says):
    with pytest.raises(v.OptionError) as error:
        v.check_replicate_inputs(dict(BASE, **change))
    assert error.value.option == option and says in str(error.value)


def test_replicate_inputs_normalised():
    out = v.check_replicate_inputs(
        dict(BASE, batch_size="20", repositories="a, b", strategy="auto", copy_strategy="local", poll_interval="0.5")
    )
    assert out["batch_size"] == 20 and out["repositories"] == ["a", "b"] and out["poll_interval"] == 0.5
    assert out["executor"] == "local" and out["max_rounds"] == 3


def _resolve(params, strategy="codebuild"):
    return v.resolve_destinations(dict(BASE, **params), "111111111111", "ap-south-1", strategy)


def test_destinations_resolved_with_roles_and_the_external_id_parameter():
    (dest,) = _resolve({"dest_account": "222222222222", "external_id": "ext-id-1"})
    assert dest["key"] == "222222222222/ap-northeast-2"
    assert dest["role_arn"] == "arn:aws:iam::222222222222:role/ecr-replication-target"
    assert dest["read_role_arn"] == "arn:aws:iam::222222222222:role/ecr-replication-reader"
    assert dest["external_id_parameter"] == "/cloudops/ecr-replication/222222222222/external-id"
    # strategy local in the source account: the play's own credentials, no role, nothing to read through
    (same,) = _resolve({}, strategy="local")
    assert same["role_arn"] == "" and same["read_role_arn"] == "" and same["account"] == "111111111111"


@pytest.mark.parametrize(
    "params,option,says",
    [
        ({"dest_region": "ap-south-1"}, "replicate_dest_region", "is the source registry itself"),
        (
            {"dest_account": "222222222222", "dest_role_arn": "arn:aws:iam::333333333333:role/x"},
            "replicate_dest_role_arn",
            "not of the destination account",
        ),
        ({"dest_account": "12345"}, "replicate_dest_account", "12-digit"),
        (
            {"destinations": [{"region": "ap-northeast-2"}, {"region": "ap-northeast-2"}]},
            "replicate_destinations",
            "is repeated",
        ),
        ({"destinations": [{"region": "ap-northeast-2", "acount": "2"}]}, "replicate_destinations[0]", "unknown field"),
        ({"external_id": "x"}, "replicate_external_id", "value not shown"),
    ],
)
def test_bad_destinations_refused(params, option, says):
    with pytest.raises(v.OptionError) as error:
        _resolve(params)
    assert error.value.option == option and says in str(error.value)
    assert "value not shown" not in says or "'x'" not in str(error.value)
