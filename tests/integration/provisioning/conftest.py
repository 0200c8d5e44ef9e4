# Copyright: Contributors to the cloudops.ecr_replication project
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Run playbooks/provision.yml and teardown.yml against the sandbox, with names unique to the session."""

from __future__ import annotations

import json
import subprocess
import uuid
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[3]
COLLECTIONS_PATH = REPO_ROOT / ".ansible" / "collections"
PLAYBOOK_BIN = Path(__import__("sys").executable).parent / "ansible-playbook"


class Provisioner:
    def __init__(self, sandbox, tmp_path: Path):
        self.sandbox = sandbox
        self.tmp_path = tmp_path
        suffix = uuid.uuid4().hex[:8]
        self.external_id = f"ext-{uuid.uuid4().hex}"
        self.torn_down = False
        self.vars = {
            "src_region": sandbox.source_region,
            "dest_region": sandbox.dest_region,
            "dest_account": sandbox.target_account,
            "dest_profile": "target",
            "project_name": f"prov-{suffix}",
            "codebuild_role_name": f"prov-{suffix}-codebuild",
            "dest_role": f"prov-{suffix}-target",
            "dest_read_role": f"prov-{suffix}-reader",
            "repository_prefixes": ["team-a/"],
        }

    @property
    def names(self):
        return self.vars

    def run(
        self,
        playbook: str,
        *args: str,
        extra: dict | None = None,
        json_output: bool = True,
        external_id=None,
        env: dict[str, str] | None = None,
    ):
        variables = dict(self.vars, **(extra or {}))
        env = self.sandbox.subprocess_env(
            ANSIBLE_COLLECTIONS_PATH=str(COLLECTIONS_PATH),
            ANSIBLE_LOCAL_TEMP=str(self.tmp_path / "ansible-tmp"),
            ANSIBLE_DEPRECATION_WARNINGS="false",
            ANSIBLE_NOCOLOR="1",
            ECR_REPLICATION_EXTERNAL_ID=self.external_id if external_id is None else external_id,
            **(env or {}),
        )
        if json_output:
            env["ANSIBLE_STDOUT_CALLBACK"] = "ansible.builtin.json"
        result = subprocess.run(
            [str(PLAYBOOK_BIN), str(REPO_ROOT / "playbooks" / playbook), "-e", json.dumps(variables), *args],
            env=env,
            cwd=str(self.tmp_path),
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        if playbook == "teardown.yml" and result.returncode == 0:
            self.torn_down = True
        result.json = json.loads(result.stdout) if json_output and result.stdout.strip().startswith("{") else None
        return result


@pytest.fixture
def provisioner(sandbox, tmp_path):
    """A Provisioner with fresh names; whatever it provisioned is torn down at the end."""
    prov = Provisioner(sandbox, tmp_path)
    yield prov
    if not prov.torn_down:
        prov.run("teardown.yml")
