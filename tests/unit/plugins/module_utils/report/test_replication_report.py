# Copyright: Contributors to the cloudops.ecr_replication project
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import json
import os

import pytest

from ansible_collections.cloudops.ecr_replication.plugins.module_utils import report as r

D1 = "sha256:" + "1" * 64
D2 = "sha256:" + "2" * 64
D3 = "sha256:" + "3" * 64
D4 = "sha256:" + "4" * 64
D5 = "sha256:" + "5" * 64


def img(repo, digest, status, tags=("v1",), size=1000, **extra):
    return {
        "repository": repo,
        "digest": digest,
        "tags": list(tags),
        "size_bytes": size,
        "destination_status": status,
        **extra,
    }


def planned():
    return [
        img("app/web", D1, "missing", tags=("v2", "latest"), size=2048),
        img("app/web", D2, "present", tags=("v1",)),
        img("app/api", D3, "missing_tags", tags=("v1", "v1.0")),
        img(
            "app/api",
            D4,
            "tag_conflict",
            tags=("stable",),
            conflicting_tags=[{"tag": "stable", "destination_digest": D5}],
            destination_digest_present=True,
            missing_tags=[],
        ),
        img("app/db", D5, "missing", tags=(), size=500),
    ]


def dest(**kw):
    base = {
        "region": "ap-northeast-2",
        "account": "222222222222",
        "planned": planned(),
        "results": [],
        "verified": [],
        "builds": [],
    }
    base.update(kw)
    return base


def by_digest(report):
    return {i["digest"]: i for i in report["images"]}


def test_success_path_every_outcome():
    results = [
        {"repository": "app/web", "digest": D1, "status": "copied", "seconds": 3.5, "build_id": "p:1"},
        {"repository": "app/api", "digest": D3, "status": "copied"},
        {"repository": "app/db", "digest": D5, "status": "copied"},
    ]
    verified = [dict(i, destination_status="present") for i in planned()]
    verified[3]["destination_status"] = "tag_conflict"  # the conflict was left alone
    report = r.build_report(
        source={"region": "ap-south-1", "account": "111111111111"},
        destinations=[
            dest(
                results=results,
                verified=verified,
                builds=[{"id": "p:1", "status": "SUCCEEDED", "images": [D1, D3, D5]}],
            )
        ],
        strategy="codebuild",
        dry_run=False,
        started_at="2026-11-24T09:00:00Z",
    )
    out = by_digest(report)
    assert out[D1]["outcome"] == "copied" and out[D1]["seconds"] == 3.5 and out[D1]["build_id"] == "p:1"
    assert out[D1]["tags"] == ["latest", "v2"]
    assert out[D2]["outcome"] == "present"
    assert out[D3]["outcome"] == "copied"
    assert out[D4]["outcome"] == "tag_conflict"
    assert "stable" in out[D4]["reason"] and "force_tags" in out[D4]["reason"]
    assert out[D5]["outcome"] == "copied"
    s = report["summary"]
    assert (s["copied"], s["present"], s["tag_conflict"], s["failed"], s["planned"]) == (3, 1, 1, 0, 0)
    assert s["images"] == 5 and s["repositories"] == 3 and s["builds"] == 1
    assert s["bytes_copied"] == 2048 + 1000 + 500
    assert s["success"] is True
    assert report["destinations"][0]["repositories"]["app/api"]["tag_conflict"] == 1
    # JSON round trip: plain types only
    assert json.loads(r.render_json(report)) == report


def test_copy_reported_but_not_verified_is_failed():
    """A build saying 'copied' is not enough: the verification listing decides."""
    results = [{"repository": "app/web", "digest": D1, "status": "copied"}]
    verified = [dict(i) for i in planned()]  # nothing changed in the destination
    report = r.build_report(
        source={}, destinations=[dest(results=results, verified=verified)], strategy="codebuild", dry_run=False
    )
    out = by_digest(report)
    assert out[D1]["outcome"] == "failed"
    assert out[D1]["reason"] == "the copy reported copied, but the digest is not in the destination"
    assert out[D3]["outcome"] == "failed" and "no result" in out[D3]["reason"]
    assert report["summary"]["success"] is False
    assert [f["digest"] for f in r.failures(report)] == [D3, D5, D1]  # sorted by repository, then digest


def test_missing_tags_listed_in_reason():
    verified = [dict(i) for i in planned()]
    verified[2] = dict(verified[2], destination_status="missing_tags", missing_tags=["v1.0"])
    results = [{"repository": "app/api", "digest": D3, "status": "copied"}]
    report = r.build_report(
        source={}, destinations=[dest(results=results, verified=verified)], strategy="local", dry_run=False
    )
    assert by_digest(report)[D3]["reason"].endswith("but tags are missing in the destination: v1.0")


def test_result_error_is_the_reason():
    results = [{"repository": "app/web", "digest": D1, "status": "failed", "error": "manifest unknown"}]
    report = r.build_report(
        source={}, destinations=[dest(results=results, verified=planned())], strategy="codebuild", dry_run=False
    )
    assert by_digest(report)[D1]["reason"] == "manifest unknown"
    assert f"222222222222/ap-northeast-2 app/web@{D1}: manifest unknown" in r.failure_messages(report)


def test_verification_did_not_run():
    results = [{"repository": "app/web", "digest": D1, "status": "copied"}]
    report = r.build_report(
        source={},
        destinations=[dest(results=results, verified=None, error="build timed out")],
        strategy="codebuild",
        dry_run=False,
    )
    out = by_digest(report)
    assert out[D1]["outcome"] == "failed" and "did not run" in out[D1]["reason"]
    assert out[D2]["outcome"] == "present"  # nothing to do for it, nothing to verify
    assert report["summary"]["errors"] == ["222222222222/ap-northeast-2: build timed out"]
    assert report["summary"]["success"] is False


def test_image_gone_from_verification_listing():
    verified = [i for i in planned() if i["digest"] != D1]
    report = r.build_report(source={}, destinations=[dest(verified=verified)], strategy="codebuild", dry_run=False)
    assert "not found in the verification listing" in by_digest(report)[D1]["reason"]


def test_force_tags_makes_conflicts_work_items():
    verified = [dict(i, destination_status="present") for i in planned()]
    report = r.build_report(
        source={}, destinations=[dest(verified=verified)], strategy="codebuild", dry_run=False, force_tags=True
    )
    assert by_digest(report)[D4]["outcome"] == "copied"
    assert report["force_tags"] is True


def test_force_tags_records_the_digest_each_moved_tag_named_before():
    before = planned()
    (conflict,) = [i for i in before if i["digest"] == D4]
    conflict["conflicting_tags"] = [{"tag": "stable", "destination_digest": D1}]
    verified = [dict(i, destination_status="present") for i in before]
    report = r.build_report(
        source={}, destinations=[dest(planned=before, verified=verified)], strategy="codebuild", dry_run=False,
        force_tags=True,
    )
    assert by_digest(report)[D4]["moved_tags"] == [{"tag": "stable", "previous_digest": D1}]
    assert "moved_tags" not in by_digest(report)[D1]
    markdown = r.render_markdown(report)
    assert "## Tags moved (force_tags)" in markdown and D1 in markdown.split("## Tags moved")[1]
    # without force_tags nothing moves, and nothing is recorded as moved
    kept = r.build_report(
        source={}, destinations=[dest(planned=before, verified=verified)], strategy="codebuild", dry_run=False
    )
    assert "moved_tags" not in by_digest(kept)[D4]


def test_tag_conflict_reported_by_copy():
    results = [{"repository": "app/web", "digest": D1, "status": "tag_conflict", "error": "tag v2 is immutable"}]
    verified = [dict(i, destination_status="present") for i in planned()]
    verified[0]["destination_status"] = "tag_conflict"
    verified[3]["destination_status"] = "tag_conflict"
    report = r.build_report(
        source={}, destinations=[dest(results=results, verified=verified)], strategy="codebuild", dry_run=False
    )
    entry = by_digest(report)[D1]
    assert entry["outcome"] == "tag_conflict" and entry["reason"] == "tag v2 is immutable"
    assert report["summary"]["success"] is True  # a refused overwrite is reported, not a failure


def test_dry_run_plans_only():
    report = r.build_report(
        source={"region": "ap-south-1", "account": "111111111111"},
        destinations=[dest(verified=None)],
        strategy="codebuild",
        dry_run=True,
    )
    out = by_digest(report)
    assert [out[d]["outcome"] for d in (D1, D2, D3, D4, D5)] == [
        "planned",
        "present",
        "planned",
        "tag_conflict",
        "planned",
    ]
    s = report["summary"]
    assert s["planned"] == 3 and s["copied"] == 0 and s["bytes_planned"] == 2048 + 1000 + 500
    assert s["success"] is True and s["dry_run"] is True
    md = r.render_markdown(report)
    assert md.startswith("# ECR replication plan (dry run)")
    assert "3 image(s) to copy, nothing changed" in md


def test_multiple_destinations_totals():
    second = dest(
        region="eu-west-1", account="333333333333", verified=[dict(i, destination_status="present") for i in planned()]
    )
    first = dest(verified=[dict(i, destination_status="present") for i in planned()])
    report = r.build_report(source={}, destinations=[first, second], strategy="codebuild", dry_run=False)
    s = report["summary"]
    assert s["images"] == 10 and s["copied"] == 6 and s["tag_conflict"] == 2
    assert s["destinations"] == ["222222222222/ap-northeast-2", "333333333333/eu-west-1"]
    assert s["repositories"] == 3
    assert {i["destination_region"] for i in report["images"]} == {"ap-northeast-2", "eu-west-1"}


def test_rerun_no_op():
    everything_present = [dict(i, destination_status="present") for i in planned()]
    report = r.build_report(
        source={},
        destinations=[dest(planned=everything_present, verified=everything_present)],
        strategy="codebuild",
        dry_run=False,
    )
    s = report["summary"]
    assert s["present"] == 5 and s["copied"] == 0 and s["builds"] == 0 and s["success"]


def test_markdown_tables():
    results = [{"repository": "app/web", "digest": D1, "status": "failed", "error": "boom | pipe\nnewline"}]
    verified = [dict(i, destination_status="present") for i in planned()]
    verified[0]["destination_status"] = "missing"
    report = r.build_report(
        source={"region": "ap-south-1", "account": "111111111111"},
        destinations=[
            dest(
                results=results,
                verified=verified,
                builds=[{"id": "ecr-replication:abc", "status": "FAILED", "images": [D1], "log_link": "http://logs"}],
            )
        ],
        strategy="codebuild",
        dry_run=False,
    )
    md = r.render_markdown(report)
    lines = md.splitlines()
    head = lines.index("## Summary")
    assert lines[head + 2].startswith("| Destination | Repositories | Images | Copied | Already present |")
    assert lines[head + 3].count("---") == 11
    total = next(line for line in lines if line.startswith("| **Total**"))
    assert total.split("|")[3].strip() == "5"  # images
    assert (
        "| 222222222222 / ap-northeast-2 | app/web | `sha256:111111111111` | latest, v2 | boom \\| pipe newline |" in md
    )
    assert "## Tag conflicts (not overwritten)" in md
    assert "| 222222222222 / ap-northeast-2 | app/db | 1 | 1 | 0 | 0 | 0 | 0 |" in md
    assert "| 222222222222 / ap-northeast-2 | ecr-replication:abc |  | FAILED | 1 |  |  | http://logs |" in md
    assert "**1 image(s) failed**" in md


def test_markdown_no_images():
    report = r.build_report(
        source={}, destinations=[dest(planned=[], verified=[])], strategy="codebuild", dry_run=False
    )
    md = r.render_markdown(report)
    assert "No images matched the filters." in md and "## Failures\n\nNone." in md


@pytest.mark.parametrize(
    "destinations, message",
    [
        ([], "at least one destination"),
        ([{"account": "1"}], "needs a region"),
        ([{"region": "x"}], "'planned'"),
        ([dest(planned=[{"digest": D1}])], "'repository'"),
        ([dest(results=["nope"])], "results: expected a list of dicts"),
    ],
)
def test_bad_input(destinations, message):
    with pytest.raises(r.ReportError, match=message):
        r.build_report(source={}, destinations=destinations, strategy="codebuild", dry_run=False)


@pytest.mark.parametrize("value, text", [(0, "0 B"), (1023, "1023 B"), (1536, "1.5 KiB"), (5 * 1024**3, "5.0 GiB")])
def test_human_bytes(value, text):
    assert r.human_bytes(value) == text


def test_write_if_changed(tmp_path):
    json_path, md_path = r.report_paths(str(tmp_path), "run")
    assert (json_path, md_path) == (str(tmp_path / "run.json"), str(tmp_path / "run.md"))
    assert r.write_if_changed(json_path, "{}\n") is True
    assert r.write_if_changed(json_path, "{}\n") is False
    assert r.write_if_changed(json_path, "[]\n") is True
    assert (tmp_path / "run.json").read_text() == "[]\n"
    assert oct(os.stat(json_path).st_mode & 0o777) == "0o644"
    assert [p.name for p in tmp_path.iterdir()] == ["run.json"]  # no temp file left behind


@pytest.mark.parametrize("name", ["", "a/b", "..", "."])
def test_report_paths_bad_name(name):
    with pytest.raises(r.ReportError, match="name"):
        r.report_paths("/tmp", name)


def test_unforced_conflict_whose_copy_failed_is_failed():
    results = [{"repository": "app/api", "digest": D4, "status": "failed", "error": "registry 500"}]
    verified = [dict(i, destination_status="present") for i in planned()]
    verified[3]["destination_status"] = "tag_conflict"
    report = r.build_report(
        source={}, destinations=[dest(results=results, verified=verified)], strategy="codebuild", dry_run=False
    )
    entry = by_digest(report)[D4]
    assert entry["outcome"] == "failed" and entry["reason"] == "registry 500"


def test_destination_error_is_the_reason_of_unreported_images():
    report = r.build_report(
        source={},
        destinations=[dest(verified=planned(), error="planning failed: role cannot be assumed")],
        strategy="local",
        dry_run=False,
    )
    entry = by_digest(report)[D1]
    assert entry["outcome"] == "failed"
    assert entry["reason"] == "not copied (planning failed: role cannot be assumed); the destination status is missing"


def test_a_failed_builds_error_and_round_stay_in_the_report():
    builds = [
        {"id": "p:1", "status": "FAILED", "images": 4, "round": 1, "error": "COMMAND_EXECUTION_ERROR in INSTALL"},
        {"id": "p:2", "status": "SUCCEEDED", "images": 4, "round": 2, "error": None},
    ]
    verified = [dict(i, destination_status="present") for i in planned()]
    report = r.build_report(
        source={}, destinations=[dest(verified=verified, builds=builds)], strategy="codebuild", dry_run=False
    )
    (first, second) = report["destinations"][0]["builds"]
    assert first["error"] == "COMMAND_EXECUTION_ERROR in INSTALL" and first["round"] == 1
    assert "error" not in second and second["round"] == 2
    assert "COMMAND_EXECUTION_ERROR in INSTALL" in r.render_markdown(report)
