# Copyright: Contributors to the cloudops.ecr_replication project
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""ecr_replication_configuration and ecr_replication_backfill through ansible-playbook against the sandbox:
check mode changes nothing, idempotence, errors naming the option, a backfill that copies what the rule covers."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.sandbox
REPO_ROOT = Path(__file__).resolve().parents[3]
PLAYBOOK_BIN = Path(sys.executable).parent / "ansible-playbook"


def run_playbook(sandbox, tmp_path, playbook: Path, variables: dict) -> dict:
    env = sandbox.subprocess_env(
        ANSIBLE_COLLECTIONS_PATH=str(REPO_ROOT / ".ansible" / "collections"),
        ANSIBLE_LOCAL_TEMP=str(tmp_path / "ansible-tmp"),
        ANSIBLE_STDOUT_CALLBACK="ansible.builtin.json",
        ANSIBLE_DEPRECATION_WARNINGS="false",
        ANSIBLE_NOCOLOR="1",
    )
    result = subprocess.run(
        [str(PLAYBOOK_BIN), str(playbook), "-e", json.dumps(variables)],
        env=env,
        cwd=str(tmp_path),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.stdout.strip().startswith("{"), result.stdout[-3000:] + result.stderr[-3000:]
    output = json.loads(result.stdout)
    output["returncode"] = result.returncode
    output["by_task"] = {
        task["task"]["name"]: task["hosts"]["localhost"] for play in output["plays"] for task in play["tasks"]
    }
    return output


def test_modules_through_a_playbook(native, sandbox, tmp_path):
    dest = native.same_account_dest
    expected = native.clone("team-a/worker", "worker")
    rules_before = native.ecr.describe_registry()["replicationConfiguration"]["rules"]
    out = run_playbook(
        sandbox,
        tmp_path,
        Path(__file__).parent / "playbooks" / "modules.yml",
        {
            "src_region": sandbox.source_region,
            "dest_region": dest["region"],
            "dest_account": dest["registryId"],
            "prefix": native.prefix,
        },
    )
    tasks = out["by_task"]
    assert out["returncode"] == 0, json.dumps(tasks, indent=1)[-4000:]

    check = tasks["Rule (check mode)"]
    assert check["changed"] and check["destination_prefixes"] == [native.prefix]
    assert check["diff"]["before"]["rules"] == rules_before

    no_rule = tasks["Backfill without a rule (check mode)"]
    assert no_rule["failed"] and no_rule["option"] == "destination_region"
    assert "no replication rule" in no_rule["msg"]

    assert tasks["Rule"]["changed"]
    assert not tasks["Rule again"]["changed"]
    bad = tasks["A glob is not a prefix"]
    assert bad["failed"] and bad["option"] == "repository_prefixes" and "Traceback" not in json.dumps(bad)

    planned = tasks["Backfill (check mode)"]
    assert planned["changed"] and planned["covered_repositories"] == [native.prefix + "worker"]
    assert "backfill" not in planned or planned["backfill"] is None

    backfill = tasks["Backfill"]
    assert backfill["changed"] and not backfill["attached"] and not backfill["timed_out"]
    assert backfill["backfill"]["status"] == "COMPLETE"
    total = sum(max(1, len(tags)) for tags in expected.values())
    assert backfill["backfill"]["progress"]["completed_replication_count"] == total
    assert len(backfill["results"]) == total
    assert {r["status"] for r in backfill["results"]} == {"COMPLETE"}
    assert native.images(dest, native.prefix + "worker") == expected

    assert not tasks["Stop (nothing in progress)"]["changed"]
    assert tasks["Rule removed"]["changed"]
    assert native.ecr.describe_registry()["replicationConfiguration"]["rules"] == rules_before
