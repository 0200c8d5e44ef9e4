# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""ecr_replication_configuration and ecr_replication_backfill in-process (``patch_module_args``) against moto
in-process: bad input fails naming the option and changes nothing, check mode, idempotence. moto keeps one rule and
has no backfill API: the sandbox tests (tests/integration/native_replication/) run both modules for real."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

_COLLECTIONS = Path(__file__).resolve().parents[5] / ".ansible" / "collections"
if _COLLECTIONS.is_dir() and str(_COLLECTIONS) not in sys.path:
    sys.path.insert(0, str(_COLLECTIONS))

from ansible.module_utils.testing import patch_module_args  # noqa: E402

from ansible_collections.cloudops.ecr_replication.plugins.modules import ecr_replication_backfill  # noqa: E402
from ansible_collections.cloudops.ecr_replication.plugins.modules import ecr_replication_configuration  # noqa: E402
from tests.unit.plugins.modules.test_ecr_image_info import aws  # noqa: E402,F401  # pylint: disable=unused-import

DEST = dict(destination_region="ap-northeast-2", destination_registry_id="222222222222")


@pytest.fixture
def ecr(aws):
    """moto's ECR in-process, with the environment of the ecr_image_info module tests (``aws``)."""
    return aws.client("ecr", region_name="ap-south-1")


def run(module, capsys, **args):
    with patch_module_args(dict(region="ap-south-1", **args)):
        with pytest.raises(SystemExit):
            module.main()
    return json.loads(capsys.readouterr().out)


def rules(ecr):
    return ecr.describe_registry()["replicationConfiguration"]["rules"]


def test_configuration_present_check_mode_then_real_then_idempotent(ecr, capsys):
    planned = run(
        ecr_replication_configuration, capsys, repository_prefixes=["team-a/"], _ansible_check_mode=True, **DEST
    )
    assert planned["changed"] and rules(ecr) == []
    assert planned["destination_prefixes"] == ["team-a/"]
    assert planned["diff"]["before"] == {"rules": []}
    done = run(ecr_replication_configuration, capsys, repository_prefixes=["team-a/"], **DEST)
    assert done["changed"]
    assert rules(ecr) == [
        {
            "destinations": [{"region": "ap-northeast-2", "registryId": "222222222222"}],
            "repositoryFilters": [{"filter": "team-a/", "filterType": "PREFIX_MATCH"}],
        }
    ]
    again = run(ecr_replication_configuration, capsys, repository_prefixes=["team-a/api"], **DEST)
    assert not again["changed"]
    removed = run(ecr_replication_configuration, capsys, state="absent", **DEST)
    assert removed["changed"] and rules(ecr) == []


@pytest.mark.parametrize(
    "args, option",
    [
        ({"repository_prefixes": ["*"]}, "repository_prefixes"),
        ({"repository_prefixes": ["Team-A/"]}, "repository_prefixes"),
        ({"destination_region": "seoul"}, "destination_region"),
        ({"destination_registry_id": "22"}, "destination_registry_id"),
        ({"destination_region": "ap-south-1", "destination_registry_id": "123456789012"}, "destination_region"),
    ],
)
def test_configuration_bad_input_names_the_option_and_changes_nothing(ecr, capsys, args, option):
    result = run(ecr_replication_configuration, capsys, **dict(DEST, **args))
    assert result["failed"] and result["option"] == option, result
    assert "Traceback" not in json.dumps(result)
    assert rules(ecr) == []


@pytest.mark.parametrize(
    "args, option",
    [
        ({"wait_timeout": 0}, "wait_timeout"),
        ({"poll_interval": -1}, "poll_interval"),
        ({"destination_region": "x"}, "destination_region"),
    ],
)
def test_backfill_bad_input_names_the_option(ecr, capsys, args, option):
    result = run(ecr_replication_backfill, capsys, **dict(DEST, **args))
    assert result["failed"] and result["option"] == option, result


def test_configuration_absent_warns_when_a_shared_rule_still_covers_the_prefix(ecr, capsys):
    shared = {
        "destinations": [
            {"region": "ap-northeast-2", "registryId": "222222222222"},
            {"region": "eu-west-1", "registryId": "333333333333"},
        ],
        "repositoryFilters": [{"filter": "team-a/", "filterType": "PREFIX_MATCH"}],
    }
    ecr.put_replication_configuration(replicationConfiguration={"rules": [shared]})
    result = run(ecr_replication_configuration, capsys, repository_prefixes=["team-a/"], state="absent", **DEST)
    assert not result["changed"] and rules(ecr) == [shared]
    warnings = json.dumps(result["warnings"])  # plain strings or, from ansible-core 2.19, structured events
    assert "still replicated" in warnings and "rule 1 replicates" in warnings
