# Copyright: Contributors to the cloudops.ecr_replication project
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The replication_report module run by `ansible` itself (argument validation, check mode, files)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[5]
ANSIBLE = Path(sys.executable).parent / "ansible"
DIGEST = "sha256:" + "a" * 64


def run_module(args: dict, *flags: str) -> dict:
    env = dict(
        os.environ,
        ANSIBLE_LOAD_CALLBACK_PLUGINS="1",
        ANSIBLE_STDOUT_CALLBACK="json",
        ANSIBLE_COLLECTIONS_PATH=str(REPO_ROOT / ".ansible" / "collections"),
    )
    proc = subprocess.run(
        [
            str(ANSIBLE),
            "localhost",
            "-c",
            "local",
            "-m",
            "cloudops.ecr_replication.replication_report",
            "-a",
            json.dumps(args),
            *flags,
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    out = json.loads(proc.stdout)
    return out["plays"][0]["tasks"][0]["hosts"]["localhost"]


def destination(**extra):
    base = {
        "region": "ap-northeast-2",
        "account": "222222222222",
        "planned": [
            {"repository": "app", "digest": DIGEST, "tags": ["v1"], "size_bytes": 10, "destination_status": "missing"}
        ],
        "results": [{"repository": "app", "digest": DIGEST, "status": "copied"}],
        "verified": [{"repository": "app", "digest": DIGEST, "tags": ["v1"], "destination_status": "present"}],
    }
    base.update(extra)
    return base


def test_writes_json_and_markdown(tmp_path):
    result = run_module(
        {
            "report_dir": str(tmp_path / "out"),
            "destinations": [destination()],
            "source": {"region": "ap-south-1", "account": "111111111111"},
        }
    )
    assert result["changed"] is True
    assert result["summary"]["copied"] == 1 and result["summary"]["success"] is True
    assert result["json_path"] == str(tmp_path / "out" / "ecr-replication-report.json")
    assert json.loads(Path(result["json_path"]).read_text())["images"][0]["outcome"] == "copied"
    assert Path(result["markdown_path"]).read_text() == result["markdown"]


def test_check_mode_writes_nothing(tmp_path):
    result = run_module({"report_dir": str(tmp_path / "out"), "destinations": [destination()]}, "--check")
    assert result["changed"] is True and "## Summary" in result["markdown"]
    assert not (tmp_path / "out").exists()


def test_failed_images_do_not_fail_the_module(tmp_path):
    result = run_module({"report_dir": str(tmp_path), "destinations": [destination(verified=[], results=[])]})
    assert not result.get("failed")
    assert result["summary"]["failed"] == 1 and result["summary"]["success"] is False
    assert result["failure_messages"] == [
        f"222222222222/ap-northeast-2 app@{DIGEST}: not verified: image not "
        "found in the verification listing of the source"
    ]


def test_bad_input_names_the_option(tmp_path):
    result = run_module({"report_dir": str(tmp_path), "destinations": [{"region": "x"}]})
    assert result["failed"] and "planned" in result["msg"]
    result = run_module({"report_dir": str(tmp_path), "name": "a/b", "destinations": [destination()]})
    assert result["failed"] and result["msg"].startswith("replication_report: name:")
    blocked = tmp_path / "file"
    blocked.write_text("")
    result = run_module({"report_dir": str(blocked / "sub"), "destinations": [destination()]})
    assert result["failed"] and result["msg"].startswith("report_dir: cannot write the report")
    assert "Traceback" not in json.dumps(result)
