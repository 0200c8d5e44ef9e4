"""The execution environment and meta/runtime.yml agree on ansible-core, and ansible-builder accepts the EE file."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def _minimum(spec: str) -> tuple:
    match = re.search(r">=\s*([0-9.]+)", spec)
    assert match, f"no lower bound in {spec!r}"
    return tuple(int(p) for p in match.group(1).split("."))[:2]


def test_ee_ansible_core_floor_is_the_collections_floor():
    runtime = yaml.safe_load((REPO_ROOT / "meta" / "runtime.yml").read_text())
    ee = yaml.safe_load((REPO_ROOT / "execution-environment.yml").read_text())
    assert _minimum(ee["dependencies"]["ansible_core"]["package_pip"]) == _minimum(runtime["requires_ansible"])


def test_ansible_builder_create_writes_a_containerfile_with_that_ansible_core(tmp_path):
    context = tmp_path / "context"
    result = subprocess.run(
        [
            str(BIN / "ansible-builder"),
            "create",
            "-f",
            str(REPO_ROOT / "execution-environment.yml"),
            "-c",
            str(context),
            "--output-filename",
            "Containerfile",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    containerfile = (context / "Containerfile").read_text()
    ee = yaml.safe_load((REPO_ROOT / "execution-environment.yml").read_text())
    assert ee["dependencies"]["ansible_core"]["package_pip"] in containerfile
    assert "cloudops.ecr_replication" in containerfile
    # the copy program has its own registry client: nothing installs skopeo any more (issue 13)
    assert "skopeo" not in containerfile
