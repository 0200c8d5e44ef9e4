"""The collection builds, installs, and every module's documentation renders from the installed copy."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def _run(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess:
    result = subprocess.run(args, capture_output=True, text=True, env=env, cwd=cwd, timeout=300, check=False)
    assert result.returncode == 0, f"{' '.join(args)}\n{result.stdout}\n{result.stderr}"
    return result


def test_build_install_and_render_docs(tmp_path):
    galaxy = yaml.safe_load((REPO_ROOT / "galaxy.yml").read_text())
    assert set(galaxy["dependencies"]) == {"amazon.aws", "community.aws"}
    _run(str(BIN / "ansible-galaxy"), "collection", "build", str(REPO_ROOT), "--output-path", str(tmp_path))
    tarball = tmp_path / f"cloudops-ecr_replication-{galaxy['version']}.tar.gz"
    assert tarball.exists()
    listing = subprocess.run(["tar", "-tzf", str(tarball)], capture_output=True, text=True, check=True).stdout
    assert ".venv/" not in listing and ".sandbox/" not in listing
    # Galaxy is not reachable here: install without dependencies; the ansible package provides them.
    install_root = tmp_path / "collections"
    # --force: the work tree itself is on ANSIBLE_COLLECTIONS_PATH, which galaxy would call "already installed".
    _run(
        str(BIN / "ansible-galaxy"), "collection", "install", "--force", "--no-deps", "-p", str(install_root), str(tarball)
    )
    assert (install_root / "ansible_collections" / "cloudops" / "ecr_replication" / "plugins" / "modules").is_dir()
    env = dict(os.environ)
    env["ANSIBLE_COLLECTIONS_PATH"] = str(install_root)
    modules = sorted(p.stem for p in (REPO_ROOT / "plugins" / "modules").glob("*.py") if p.stem != "__init__")
    assert "ecr_image_info" in modules
    for module in modules + ["ecr_image_facts"]:
        doc = _run(str(BIN / "ansible-doc"), "--json", f"cloudops.ecr_replication.{module}", env=env, cwd=tmp_path)
        parsed = json.loads(doc.stdout)
        assert parsed, module
        assert str(install_root) in json.dumps(parsed) or module == "ecr_image_facts"


def test_runtime_action_group_lists_every_module():
    runtime = yaml.safe_load((REPO_ROOT / "meta" / "runtime.yml").read_text())
    group = runtime["action_groups"]["aws"]
    listed = [entry for entry in group if isinstance(entry, str)]
    assert len(listed) == len(set(listed)), "duplicate entries in action_groups.aws"
    assert {"metadata": {"extend_group": ["amazon.aws.aws"]}} in group
    # Every module that talks to AWS (AnsibleAWSModule) takes the group's credentials and region.
    aws_modules = {
        p.stem for p in (REPO_ROOT / "plugins" / "modules").glob("*.py") if "AnsibleAWSModule(" in p.read_text()
    }
    assert set(listed) == aws_modules
    assert runtime["plugin_routing"]["modules"]["ecr_image_facts"]["redirect"] == "cloudops.ecr_replication.ecr_image_info"
