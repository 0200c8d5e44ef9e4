# Copyright: Contributors to the cloudops.ecr_replication project
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""playbooks/replicate.yml against the sandbox: dry run, copy of the small catalog across accounts, no-op re-run.

Everything runs through `ansible-playbook` as a user runs it; the assertions read the JSON and Markdown reports
and the destination registry (ECR API and, for the data plane, `skopeo inspect --raw`).
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import pytest

from tests.sandbox.call_counter import CountingProxy

from .conftest import EXTERNAL_ID
from .conftest import run_playbook
from .conftest import user_args

pytestmark = pytest.mark.sandbox


def _user_args(sandbox, *more: str) -> list[str]:
    return user_args(sandbox, "-e", "poll_interval=1", *more)


def _report(directory: Path) -> tuple[dict, str]:
    data = json.loads((directory / "reports" / "ecr-replication-report.json").read_text())
    markdown = (directory / "reports" / "ecr-replication-report.md").read_text()
    return data, markdown


def _destination_images(sandbox, region=None, account="target") -> dict[tuple[str, str], set[str]]:
    ecr = sandbox.client("ecr", account, region or sandbox.dest_region)
    found: dict[tuple[str, str], set[str]] = {}
    for page in ecr.get_paginator("describe_repositories").paginate():
        for repo in page["repositories"]:
            name = repo["repositoryName"]
            for images in ecr.get_paginator("describe_images").paginate(repositoryName=name):
                for detail in images["imageDetails"]:
                    found[(name, detail["imageDigest"])] = set(detail.get("imageTags") or [])
    return found


def _source_images(sandbox) -> dict[tuple[str, str], set[str]]:
    return {(i["repository"], i["digest"]): set(i["tags"] or []) for i in sandbox.catalog["images"]}


def _delete_destination_repository(sandbox, name: str, region: str) -> None:
    ecr = sandbox.client("ecr", "target", region)
    try:
        ecr.delete_repository(repositoryName=name, force=True)
    except ecr.exceptions.RepositoryNotFoundException:
        pass


def _no_secret(*texts: str) -> None:
    for text in texts:
        assert EXTERNAL_ID not in text


@pytest.fixture(scope="module")
def runs(provisioned, tmp_path_factory):
    """dry run -> copy -> re-run, once for the module's tests (each step in its own directory)."""
    sandbox = provisioned
    out = {}
    for name, extra in (("dry_run", ["-e", "dry_run=true"]), ("check", ["--check"]), ("copy", []), ("rerun", [])):
        cwd = tmp_path_factory.mktemp(name)
        run = run_playbook(sandbox, "replicate.yml", cwd, *_user_args(sandbox, *extra))
        out[name] = (run, cwd)
        if name == "dry_run":
            out["after_dry_run"] = _destination_images(sandbox)
    return out


def test_dry_run_plans_and_copies_nothing(runs, sandbox):
    run, cwd = runs["dry_run"]
    assert run.returncode == 0, run.explain()
    assert run.recap["changed"] == 0
    assert runs["after_dry_run"] == {}, "a dry run must not create anything in the destination"
    assert "PLAN (dry run, nothing is copied)" in run.stdout
    assert f"{len(sandbox.catalog['images'])} missing" in run.stdout
    data, markdown = _report(cwd)
    assert data["dry_run"] is True
    assert data["summary"]["planned"] == len(sandbox.catalog["images"])
    assert data["summary"]["copied"] == data["summary"]["failed"] == data["summary"]["builds"] == 0
    assert markdown.startswith("# ECR replication plan (dry run)")
    _no_secret(run.stdout, run.stderr, json.dumps(data), markdown)


def test_check_mode_plans_and_writes_nothing(runs):
    run, cwd = runs["check"]
    assert run.returncode == 0, run.explain()
    assert "PLAN (dry run, nothing is copied)" in run.stdout
    assert "(not written in check mode)" in run.stdout
    assert not (cwd / "reports").exists()


def test_copy_small_catalog_across_accounts(runs, sandbox, reliability):
    run, cwd = runs["copy"]
    assert run.returncode == 0, run.explain()
    assert run.recap["changed"] >= 1
    assert "poll 1:" in run.stdout and "every planned digest and tag is present" in run.stdout

    data, markdown = _report(cwd)
    source = _source_images(sandbox)
    summary = data["summary"]
    assert summary["success"] is True and summary["failed"] == 0, json.dumps(data["images"], indent=1)[:4000]
    assert summary["copied"] == len(source) and summary["images"] == len(source)
    assert 1 <= summary["builds"] <= -(-len(source) // 50)
    assert {(i["repository"], i["digest"]) for i in data["images"] if i["outcome"] == "copied"} == set(source)
    assert data["source"] == {"region": sandbox.source_region, "account": sandbox.source_account}

    # destination registry: every digest, with every tag (ECR API) ...
    destination = _destination_images(sandbox)
    for key, tags in source.items():
        assert key in destination, f"{key} missing in the destination"
        assert tags <= destination[key], f"{key}: tags {tags - destination[key]} missing"
    # ... and the manifests served by the destination registry are byte-identical (digest preserved)
    host = sandbox.registry_host("target")
    creds = {host: sandbox.registry_password("target")}
    indexes = [i for i in sandbox.catalog["images"] if i["kind"] == "index"][:2]
    assert indexes, "the small catalog has multi-arch indexes"
    for image in indexes + [i for i in sandbox.catalog["images"] if i["kind"] == "image"][:1]:
        raw = sandbox.skopeo(
            "inspect", "--raw", f"docker://{host}/{image['repository']}@{image['digest']}", account_creds=creds
        ).stdout
        assert "sha256:" + hashlib.sha256(raw.encode()).hexdigest() == image["digest"]

    # the Markdown report a person reads
    assert markdown.startswith("# ECR replication report")
    assert "## Summary" in markdown and "| Destination | Repositories | Images | Copied |" in markdown
    assert f"| **Total** | {summary['repositories']} | {len(source)} | {len(source)} |" in markdown
    assert "## Failures\n\nNone." in markdown and "## Per repository" in markdown
    _no_secret(run.stdout, run.stderr, json.dumps(data), markdown)
    reliability.images_verified(len(source))


def test_rerun_is_a_no_op(runs, sandbox):
    run, cwd = runs["rerun"]
    assert run.returncode == 0, run.explain()
    assert run.recap["changed"] == 0, run.stdout[-4000:]
    data = _report(cwd)[0]
    summary = data["summary"]
    assert summary["builds"] == 0 and summary["copied"] == 0
    assert summary["present"] == len(sandbox.catalog["images"])
    assert "0 missing" in run.stdout


def test_missing_dest_region_is_a_clear_error(provisioned, tmp_path):
    run = run_playbook(provisioned, "replicate.yml", tmp_path)
    assert run.returncode != 0
    assert "dest_region is required" in run.stdout
    assert "Traceback" not in run.stdout + run.stderr


def test_read_role_needs_the_external_id(provisioned, tmp_path):
    """The read role provision.yml created trusts the source account only with the external ID: with another one
    the comparison cannot start, the error names the option, and nothing is created in the destination."""
    sandbox = provisioned
    _delete_destination_repository(sandbox, "legacy-app", sandbox.dest_region)
    args = [a if not a.startswith("external_id=") else "external_id=not-the-external-id" for a in _user_args(sandbox)]
    run = run_playbook(sandbox, "replicate.yml", tmp_path, *args, "-e", "repositories=legacy-app")
    assert run.returncode != 0
    assert f"arn:aws:iam::{sandbox.target_account}:role/ecr-replication-reader" in run.stdout
    # tried by the inputs step, before anything is listed: the option is named, never the external ID
    assert "replicate_dest_read_role_name" in run.stdout and "replicate_external_id" in run.stdout
    assert "Traceback" not in run.stdout + run.stderr
    assert "not-the-external-id" not in run.stdout + run.stderr
    assert not [key for key in _destination_images(sandbox) if key[0] == "legacy-app"]


def test_failed_copy_is_reported_then_fails_the_play(provisioned, tmp_path):
    """The copy cannot start (local strategy, a destination role that does not exist): found before anything starts,
    every planned image is failed with that reason in the report, the report is written, and only then the play
    fails. allow_partial does not hide it: it tolerates failed images, not a destination that could not be served."""
    sandbox = provisioned
    _delete_destination_repository(sandbox, "legacy-app", sandbox.dest_region)
    args = _user_args(sandbox, "-e", "repositories=legacy-app", "-e", "strategy=local", "-e", "dest_role=no-such-role")
    run = run_playbook(sandbox, "replicate.yml", tmp_path, *args)
    assert run.returncode != 0
    assert run.recap["failed"] == 1
    assert "Traceback" not in run.stdout + run.stderr
    data, markdown = _report(tmp_path)
    summary = data["summary"]
    assert summary["failed"] == 2 and summary["success"] is False and summary["strategy"] == "local"
    assert summary["errors"] and "no-such-role" in summary["errors"][0] and "cannot be assumed" in summary["errors"][0]
    assert summary["builds"] == 0
    assert all("no-such-role" in i["reason"] for i in data["images"] if i["outcome"] == "failed")
    assert "## Errors" in markdown and "| legacy-app |" in markdown.split("## Failures", 1)[1]
    assert "2 image(s) failed" in run.stdout and "destination errors:" in run.stdout
    _no_secret(run.stdout, run.stderr, json.dumps(data), markdown)

    partial = tmp_path / "partial"
    partial.mkdir()
    run = run_playbook(sandbox, "replicate.yml", partial, *args, "-e", "allow_partial=true")
    assert run.returncode != 0, run.explain()
    assert _report(partial)[0]["summary"]["failed"] == 2
    assert "Set replicate_allow_partial" not in run.stdout


def test_several_destinations_in_one_run(provisioned, tmp_path):
    """Two destinations, one report, one build slot shared by both (batch_size 3: two builds per destination for the
    five images of tools/cli); the source is listed once for both for the facts, and once per verification."""
    sandbox = provisioned
    # both regions of the target account, served by the roles provision.yml created (dest_extra_regions)
    destinations = [
        {"region": sandbox.dest_region, "account": sandbox.target_account},
        {"region": sandbox.source_region, "account": sandbox.target_account},
    ]
    for region in (sandbox.dest_region, sandbox.source_region):
        _delete_destination_repository(sandbox, "tools/cli", region)
    proxy = CountingProxy(int(sandbox.env["SANDBOX_BASE_PORT"]), 0).start()
    try:
        run = run_playbook(
            sandbox,
            "replicate.yml",
            tmp_path,
            "-e",
            "repositories=tools/cli",
            "-e",
            f"external_id={EXTERNAL_ID}",
            "-e",
            "poll_interval=1",
            "-e",
            "batch_size=3",
            "-e",
            "max_concurrent_builds=1",
            extra={"destinations": destinations},
            env={"AWS_ENDPOINT_URL": proxy.url},
        )
        source_listings = proxy.calls_by(
            "AmazonEC2ContainerRegistry:DescribeRepositories", sandbox.env["AWS_ACCESS_KEY_ID"], sandbox.source_region
        )
        destination_listings = proxy.snapshot()["AmazonEC2ContainerRegistry:DescribeRepositories"] - source_listings
    finally:
        proxy.stop()
    assert run.returncode == 0, run.explain()
    for dest in destinations:  # a plan line per destination, with that destination's own comparison
        assert re.search(r"-> %s/%s: 1 repositories, 5 images;\s+5 missing" % (dest["account"], dest["region"]),
                         run.stdout), run.stdout
    data, markdown = _report(tmp_path)
    expected = {k for k in _source_images(sandbox) if k[0] == "tools/cli"}
    builds = {dest["summary"]["builds"] for dest in data["destinations"]}
    assert builds == {2}, f"two batches of 3 for five images, per destination: {builds}"
    # the facts, then one verification per destination when its builds have ended (the slot of the first one to
    # end is refilled by the other's batch, so they rarely end together); a listing per build would be far more
    assert source_listings <= 3, f"the source was listed {source_listings} times"
    assert destination_listings == 2 * 2
    assert [d["summary"]["region"] for d in data["destinations"]] == [sandbox.dest_region, sandbox.source_region]
    for dest in data["destinations"]:
        assert dest["summary"]["copied"] == len(expected)
    for region in (sandbox.dest_region, sandbox.source_region):
        assert expected <= set(_destination_images(sandbox, region))
    assert markdown.count(f"| {sandbox.target_account} / ") >= 2
