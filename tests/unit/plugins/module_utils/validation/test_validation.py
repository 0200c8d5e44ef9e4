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
