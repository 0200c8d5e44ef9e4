# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""module_utils/ecr_replication.py: the pure functions on a replication configuration (merge, remove, limits,
coverage). No AWS at all."""

from __future__ import annotations

import pytest

from ansible_collections.cloudops.ecr_replication.plugins.module_utils import ecr_replication as er
from ansible_collections.cloudops.ecr_replication.plugins.module_utils.validation import OptionError

SEOUL = {"region": "ap-northeast-2", "registryId": "222222222222"}
TOKYO = {"region": "ap-northeast-1", "registryId": "222222222222"}
OTHER = {"region": "eu-west-1", "registryId": "333333333333"}


def rule(destinations, prefixes=None, **extra):
    result = {"destinations": [dict(d) for d in destinations], **extra}
    if prefixes:
        result["repositoryFilters"] = [{"filter": p, "filterType": "PREFIX_MATCH"} for p in prefixes]
    return result


def config(*rules):
    return {"rules": list(rules)}


def test_destination_validates_and_names_the_option():
    assert er.destination("ap-northeast-2", "222222222222") == SEOUL
    with pytest.raises(OptionError) as e:
        er.destination("Seoul", "222222222222")
    assert e.value.option == "destination_region"
    with pytest.raises(OptionError) as e:
        er.destination("ap-northeast-2", "2222")
    assert e.value.option == "destination_registry_id"


@pytest.mark.parametrize("bad", ["*", "Team-A/", "a", "team a/", ""])
def test_prefixes_refused(bad):
    with pytest.raises(OptionError) as e:
        er.validate_prefixes([bad])
    assert e.value.option == "repository_prefixes"


def test_prefixes_sorted_and_covered_ones_dropped():
    assert er.validate_prefixes(["team-b/", "team-a/api", "team-a/"]) == ["team-a/", "team-b/"]
    assert er.validate_prefixes([]) == []


def test_merge_into_empty_configuration_creates_one_rule():
    merged = er.merge_destination(None, SEOUL, ["team-a/"])
    assert merged == config(rule([SEOUL], ["team-a/"]))


def test_merge_keeps_every_other_rule_untouched_and_extends_the_destination_rule():
    shared = rule([SEOUL, OTHER], ["shared/"], deleteReplication={"enabled": False})
    other = rule([OTHER], ["x/"])
    own = rule([SEOUL], ["team-a/"])
    merged = er.merge_destination(config(shared, other, own), SEOUL, ["team-b/", "shared/sub", "team-a/x"])
    assert merged["rules"][0] == er.normalize_configuration(config(shared))["rules"][0]
    assert merged["rules"][1] == other
    # shared/sub and team-a/x are covered already: only team-b/ is new, added to the destination's own rule.
    assert merged["rules"][2] == rule([SEOUL], ["team-a/", "team-b/"])
    assert len(merged["rules"]) == 3


def test_merge_is_idempotent():
    once = er.merge_destination(None, SEOUL, ["team-a/", "team-b/"])
    assert er.configurations_equal(er.merge_destination(once, SEOUL, ["team-a/", "team-b/"]), once)
    assert er.configurations_equal(er.merge_destination(once, SEOUL, ["team-a/api"]), once)


def test_merge_every_repository():
    merged = er.merge_destination(config(rule([SEOUL], ["team-a/"])), SEOUL, [])
    assert merged == config(rule([SEOUL]))
    # A rule with the destination and no filter already covers everything: nothing changes.
    everything = config(rule([SEOUL, OTHER]))
    assert er.merge_destination(everything, SEOUL, []) == everything
    assert er.merge_destination(everything, SEOUL, ["team-a/"]) == everything


def test_merge_refuses_an_eleventh_rule_before_any_change():
    full = config(*[rule([OTHER], [f"p{i}/"]) for i in range(10)])
    with pytest.raises(OptionError) as e:
        er.merge_destination(full, SEOUL, ["team-a/"])
    assert e.value.option == "repository_prefixes"
    assert "10" in e.value.message


def test_merge_refuses_a_twenty_sixth_destination():
    many = [{"region": "eu-west-1", "registryId": f"{i:012d}"} for i in range(1, 26)]
    full = config(rule(many[:13], ["a/"]), rule(many[13:], ["b/"]))
    with pytest.raises(OptionError) as e:
        er.merge_destination(full, SEOUL, ["team-a/"])
    assert e.value.option == "destination_region"
    assert "25" in e.value.message


def test_merge_refuses_a_hundred_and_first_filter():
    own = rule([SEOUL], [f"p{i:03d}/" for i in range(100)])
    with pytest.raises(OptionError) as e:
        er.merge_destination(config(own), SEOUL, ["new/"])
    assert "100" in e.value.message


def test_remove_prefixes_only_from_the_destination_rule():
    shared = rule([SEOUL, OTHER], ["team-a/"])
    own = rule([SEOUL], ["team-a/", "team-b/"])
    result = er.remove_destination(config(shared, own), SEOUL, ["team-a/"])
    assert result == config(shared, rule([SEOUL], ["team-b/"]))
    # The last filter removed removes the rule, never leaves a rule for every repository.
    result = er.remove_destination(result, SEOUL, ["team-b/"])
    assert result == config(shared)


def test_remove_the_destination_from_every_rule():
    shared = rule([SEOUL, OTHER], ["team-a/"])
    own = rule([SEOUL], ["team-b/"])
    other = rule([OTHER], ["x/"])
    assert er.remove_destination(config(shared, own, other), SEOUL) == config(rule([OTHER], ["team-a/"]), other)
    assert er.remove_destination(config(other), SEOUL) == config(other)


def test_validate_refuses_the_source_registry_as_destination():
    with pytest.raises(OptionError) as e:
        er.validate_configuration(config(rule([SEOUL], ["a/"])), "ap-northeast-2", "222222222222")
    assert e.value.option == "destination_region"


def test_destination_prefixes():
    conf = config(rule([SEOUL], ["b/"]), rule([SEOUL, OTHER], ["a/"]), rule([OTHER]))
    assert er.destination_prefixes(conf, SEOUL) == ["a/", "b/"]
    assert er.destination_prefixes(conf, OTHER) is None
    assert er.destination_prefixes(conf, TOKYO) == []


def test_coverage_says_why():
    conf = config(rule([OTHER], ["team-b/"]), rule([SEOUL], ["team-a/"]))
    result = er.coverage(conf, ["team-a/api", "team-b/web", "base"], "ap-northeast-2", "222222222222")
    assert result["team-a/api"]["covered"] and result["team-a/api"]["rule"] == 1
    assert result["team-a/api"]["filter"] == "team-a/"
    assert not result["team-b/web"]["covered"]
    assert "no prefix filter" in result["team-b/web"]["reason"] and "team-a/" in result["team-b/web"]["reason"]
    assert not result["base"]["covered"]
    nothing = er.coverage(conf, ["team-a/api"], "ap-northeast-1", "222222222222")
    assert nothing["team-a/api"] == {
        "covered": False,
        "rule": None,
        "filter": None,
        "reason": "no replication rule for 222222222222 in ap-northeast-1",
    }


def test_coverage_of_a_rule_without_filters():
    result = er.coverage(config(rule([SEOUL])), ["anything"], "ap-northeast-2", "222222222222")
    assert result["anything"]["covered"] and result["anything"]["filter"] == ""
    assert "every repository" in result["anything"]["reason"]


def test_coverage_is_a_prefix_not_a_substring():
    result = er.coverage(config(rule([SEOUL], ["api"])), ["team-a/api", "api-gw"], "ap-northeast-2", "222222222222")
    assert not result["team-a/api"]["covered"]
    assert result["api-gw"]["covered"]
