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


def run_modules(
    env: dict[str, str], tmp_path: Path, calls: list[dict[str, Any]], module_defaults: dict[str, Any] | None = None
) -> list[dict[str, Any]]:
    """One playbook, one task per call (``{"args": .., "module": .., "check_mode": ..}``), one ansible-playbook
    start-up for all; returns each task's registered result (also when the module failed)."""
    out = tmp_path / f"results-{len(list(tmp_path.glob('results-*.json')))}.json"
    tasks = []
    for n, call in enumerate(calls):
        tasks.append(
            {
                "name": f"image facts {n}",
                f"cloudops.ecr_replication.{call.get('module', 'ecr_image_info')}": call["args"],
                "register": f"facts_{n}",
                "ignore_errors": True,
                "check_mode": bool(call.get("check_mode", False)),
            }
        )
    results = "[" + ", ".join(f"facts_{n}" for n in range(len(calls))) + "]"
    tasks.append(
        {"ansible.builtin.copy": {"content": "{{ %s | to_json }}" % results, "dest": str(out), "mode": "0600"}}
    )
    playbook = [{"hosts": "localhost", "gather_facts": False, "tasks": tasks}]
    if module_defaults:
        playbook[0]["module_defaults"] = module_defaults
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
        timeout=900,
        cwd=str(tmp_path),
        check=False,
    )
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    return json.loads(out.read_text())


@pytest.fixture
def image_info(sandbox, tmp_path):
    """``image_info(args, module=..., check_mode=...)`` against the session sandbox; ``image_info.many(calls)``
    runs several in one playbook."""

    def _many(
        calls: list[dict[str, Any]], module_defaults: dict[str, Any] | None = None, **env: str
    ) -> list[dict[str, Any]]:
        return run_modules(sandbox.subprocess_env(**env), tmp_path, calls, module_defaults)

    def _run(args: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        return _many([dict(args=args, **kwargs)])[0]

    _run.many = _many
    return _run


@pytest.fixture
def run_image_info():
    """``run_image_info(env, tmp_path, calls)``: :func:`run_modules` for tests with their own sandbox."""
    return run_modules
