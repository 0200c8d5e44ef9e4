# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Run ``ecr_image_info`` through the real ``ansible-playbook`` against the sandbox and read its result."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

REPO_ROOT = Path(__file__).resolve().parents[3]
ANSIBLE_PLAYBOOK = REPO_ROOT / ".venv" / "bin" / "ansible-playbook"
COLLECTIONS_PATH = REPO_ROOT / ".ansible" / "collections"


def run_module(
    env: dict[str, str], tmp_path: Path, args: dict[str, Any], module: str = "ecr_image_info", check_mode=False
) -> dict[str, Any]:
    """One task with ``args``; returns the registered result (also when the module failed)."""
    out = tmp_path / f"result-{len(list(tmp_path.glob('result-*.json')))}.json"
    playbook = [
        {
            "hosts": "localhost",
            "gather_facts": False,
            "tasks": [
                {
                    "name": "image facts",
                    f"cloudops.ecr_replication.{module}": args,
                    "register": "facts",
                    "ignore_errors": True,
                    "check_mode": check_mode,
                },
                {"ansible.builtin.copy": {"content": "{{ facts | to_json }}", "dest": str(out), "mode": "0600"}},
            ],
        }
    ]
    path = tmp_path / "playbook.yml"
    path.write_text(json.dumps(playbook))  # JSON is YAML
    run_env = dict(env)
    run_env.update(
        ANSIBLE_COLLECTIONS_PATH=str(COLLECTIONS_PATH),
        ANSIBLE_LOCAL_TEMP=str(tmp_path / "ansible-tmp"),
        ANSIBLE_NOCOLOR="1",
        ANSIBLE_PYTHON_INTERPRETER=str(REPO_ROOT / ".venv" / "bin" / "python"),
    )
    proc = subprocess.run(
        [str(ANSIBLE_PLAYBOOK), "-i", "localhost,", "-c", "local", str(path)],
        env=run_env,
        capture_output=True,
        text=True,
        timeout=600,
        cwd=str(tmp_path),
    )
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    return json.loads(out.read_text())


@pytest.fixture
def image_info(sandbox, tmp_path):
    """``image_info(args, module=..., check_mode=...)`` against the session sandbox."""

    def _run(args: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        return run_module(sandbox.subprocess_env(), tmp_path, args, **kwargs)

    return _run
