# Copyright: Contributors to the cloudops.ecr_replication project
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Run the playbooks the way a user does: ansible-playbook in a subprocess with the sandbox environment."""

from __future__ import annotations

import json
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

REPO_ROOT = Path(__file__).resolve().parents[3]
PLAYBOOKS = REPO_ROOT / "playbooks"
EXTERNAL_ID = "replicate-tests-external-id-7f3a"  # the destination role's sts:ExternalId in these tests
RECAP = re.compile(
    r"^localhost\s*:\s*ok=(?P<ok>\d+)\s+changed=(?P<changed>\d+)\s+unreachable=\d+\s+failed=(?P<failed>\d+)", re.M
)


@dataclass
class Run:
    returncode: int
    stdout: str
    stderr: str

    @property
    def recap(self) -> dict[str, int]:
        match = RECAP.search(self.stdout)
        assert match, f"no PLAY RECAP in the output:\n{self.stdout[-3000:]}\n{self.stderr[-3000:]}"
        return {k: int(v) for k, v in match.groupdict().items()}

    def explain(self) -> str:
        return f"rc={self.returncode}\n--- stdout\n{self.stdout[-6000:]}\n--- stderr\n{self.stderr[-3000:]}"


def run_playbook(
    sandbox,
    playbook: str,
    cwd: Path,
    *args: str,
    extra: dict[str, Any] | None = None,
    timeout=900,
    env: dict[str, str] | None = None,
) -> Run:
    command = [str(REPO_ROOT / ".venv" / "bin" / "ansible-playbook"), str(PLAYBOOKS / playbook), *args]
    if extra:
        command += ["-e", json.dumps(extra)]
    # PWD as a shell would set it: relative report directories are relative to it
    environment = sandbox.subprocess_env(
        ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0", ANSIBLE_STDOUT_CALLBACK="default", PWD=str(cwd), **(env or {})
    )
    proc = subprocess.run(
        command, cwd=cwd, env=environment, capture_output=True, text=True, timeout=timeout, check=False
    )
    from tests.reliability import TALLY

    TALLY.secret(EXTERNAL_ID)
    TALLY.scan(proc.stdout, f"{playbook} stdout")
    TALLY.scan(proc.stderr, f"{playbook} stderr")
    # the reports the run wrote (inputs a test wrote itself into cwd may hold secrets on purpose)
    for report in (cwd / "reports").rglob("*") if (cwd / "reports").is_dir() else ():
        if report.is_file():
            TALLY.scan(report.read_bytes(), f"{playbook}: {report.name}")
    return Run(proc.returncode, proc.stdout, proc.stderr)


def user_args(sandbox, *more: str) -> list[str]:
    """What a user passes to replicate.yml after provision.yml (the external ID is the one provision.yml was given;
    the read role it created is found by its default name)."""
    return [
        "-e",
        f"dest_region={sandbox.dest_region}",
        "-e",
        f"dest_account={sandbox.target_account}",
        "-e",
        f"external_id={EXTERNAL_ID}",
        *more,
    ]


def provision(sandbox, cwd: Path, *more: str) -> Run:
    """playbooks/provision.yml for the target account, both of its regions (the several-destinations test copies
    to the second), every repository; ``more``: further ``-e`` options (native_replication, trust_caller...)."""
    run = run_playbook(
        sandbox,
        "provision.yml",
        cwd,
        "-e",
        f"src_region={sandbox.source_region}",
        "-e",
        f"dest_region={sandbox.dest_region}",
        "-e",
        f"dest_account={sandbox.target_account}",
        "-e",
        "dest_profile=target",
        "-e",
        f"external_id={EXTERNAL_ID}",
        "-e",
        "all_repositories=true",
        *more,
        extra={"dest_extra_regions": [sandbox.source_region]},
    )
    assert run.returncode == 0, run.explain()
    return run


@pytest.fixture(scope="module")
def provisioned(sandbox, tmp_path_factory):
    """A clean destination account, and the CodeBuild project + destination role of playbooks/provision.yml."""
    sandbox.reset_target()
    provision(sandbox, tmp_path_factory.mktemp("provision"))
    return sandbox
