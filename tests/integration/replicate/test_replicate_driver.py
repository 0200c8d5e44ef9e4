# Copyright: Contributors to the cloudops.ecr_replication project
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The execute step's driver through `ansible-playbook`, against the sandbox CodeBuild:

- builds held in the queue for more than 400 polls (the old self-including task file died of RecursionError after
  ~250), and the run still ends with its report;
- SIGINT to ansible-playbook (what an AWX cancel sends) mid-copy: the builds it started end STOPPED, the report says
  so, the source is untouched, and the re-run copies only what is missing and verifies.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest

from .conftest import EXTERNAL_ID
from .conftest import PLAYBOOKS
from .conftest import REPO_ROOT
from .conftest import provision
from .conftest import run_playbook
from .conftest import user_args

pytestmark = pytest.mark.sandbox

POLL_LINE = re.compile(r"^(?:done after )?poll (\d+): builds (\d+) done, (\d+) running, (\d+) queued", re.M)


def _start(sandbox, cwd: Path, *args: str) -> subprocess.Popen:
    command = [str(REPO_ROOT / ".venv" / "bin" / "ansible-playbook"), str(PLAYBOOKS / "replicate.yml"), *args]
    env = sandbox.subprocess_env(
        ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0", ANSIBLE_STDOUT_CALLBACK="default", PWD=str(cwd)
    )
    # its own session: the signal goes to ansible-playbook alone, as AWX's cancel does
    return subprocess.Popen(
        command, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True
    )


class Output:
    """Reads a process's output in a thread; ``wait_for`` a pattern with a deadline."""

    def __init__(self, proc: subprocess.Popen):
        self.proc = proc
        self.lines: list[str] = []
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self):
        for line in self.proc.stdout:
            self.lines.append(line)

    @property
    def text(self) -> str:
        return "".join(self.lines)

    def wait_for(self, pattern: re.Pattern, timeout: float):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in list(self.lines):
                match = pattern.search(line)
                if match:
                    return match
            if self.proc.poll() is not None and not self.thread.is_alive():
                break
            time.sleep(0.05)
        return None

    def finish(self, timeout: float) -> int:
        try:
            code = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            raise
        self.thread.join(10)
        return code


def _source_snapshot(sandbox) -> dict:
    ecr = sandbox.client("ecr", "source", sandbox.source_region)
    snapshot = {}
    for page in ecr.get_paginator("describe_repositories").paginate():
        for repo in page["repositories"]:
            for images in ecr.get_paginator("describe_images").paginate(repositoryName=repo["repositoryName"]):
                for d in images["imageDetails"]:
                    snapshot[(repo["repositoryName"], d["imageDigest"])] = sorted(d.get("imageTags") or [])
    return snapshot


def _builds_since(sandbox, started: float) -> list[dict]:
    codebuild = sandbox.client("codebuild", "source", sandbox.source_region)
    ids = codebuild.list_builds_for_project(projectName="ecr-replication")["ids"]
    builds = codebuild.batch_get_builds(ids=ids[:100])["builds"] if ids else []
    return [b for b in builds if b["startTime"].timestamp() >= started - 1]


def _clear_destination(sandbox, *names: str) -> None:
    ecr = sandbox.client("ecr", "target", sandbox.dest_region)
    for name in names:
        try:
            ecr.delete_repository(repositoryName=name, force=True)
        except ecr.exceptions.RepositoryNotFoundException:
            pass


def test_builds_held_in_the_queue_for_400_polls_then_the_run_completes(provisioned, tmp_path):
    sandbox = provisioned
    repository = "team-a/worker"
    _clear_destination(sandbox, repository)
    expected = [i for i in sandbox.catalog["images"] if i["repository"] == repository]
    old = sandbox.set_codebuild(provisioning_seconds=600)
    try:
        proc = _start(
            sandbox,
            tmp_path,
            *user_args(
                sandbox, "-e", f"repositories={repository}", "-e", "poll_interval=0.05", "-e", "wait_timeout=900"
            ),
        )
        output = Output(proc)
        held = output.wait_for(re.compile(r"^poll 4[0-9]{2}: builds 0 done, 0 running, 1 queued"), timeout=300)
        # release the build: the sandbox reads the provisioning delay again on every pass
        sandbox.set_codebuild(provisioning_seconds=0)
        code = output.finish(timeout=300)
    finally:
        sandbox.set_codebuild(**old)
    assert held, output.text[-4000:]
    assert code == 0, output.text[-6000:]
    polls = [int(m.group(1)) for m in POLL_LINE.finditer(output.text)]
    assert max(polls) >= 400 and "RecursionError" not in output.text
    report = json.loads((tmp_path / "reports" / "ecr-replication-report.json").read_text())
    assert report["summary"]["success"] is True
    assert report["summary"]["copied"] == len(expected) and report["summary"]["builds"] == 1


def test_sigint_stops_the_builds_and_the_rerun_copies_only_what_is_missing(provisioned, tmp_path):
    sandbox = provisioned
    sandbox.reset_target()
    before = _source_snapshot(sandbox)
    total = len(sandbox.catalog["images"])
    started = time.time()
    with sandbox.codebuild_settings(provisioning_seconds=3):
        proc = _start(
            sandbox,
            tmp_path,
            *user_args(sandbox, "-e", "batch_size=10", "-e", "max_concurrent_builds=1", "-e", "poll_interval=0.2"),
        )
        output = Output(proc)
        first_done = output.wait_for(re.compile(r"^poll \d+: builds 1 done"), timeout=240)
        time.sleep(1.0)  # the next poll (0.2 s) starts the second build, which provisions for 3 s
        proc.send_signal(signal.SIGINT)
        code = output.finish(timeout=240)
    assert first_done, output.text[-4000:]
    assert code != 0
    assert "User interrupted execution" in output.text, output.text[-4000:]

    # every build it started has ended; the one running at the interruption was stopped
    builds = _builds_since(sandbox, started)
    assert builds and all(b["buildStatus"] != "IN_PROGRESS" for b in builds), [b["buildStatus"] for b in builds]
    assert [b["buildStatus"] for b in builds].count("STOPPED") >= 1
    assert len(builds) < -(-total // 10), "the interruption came after every batch had started"

    report = json.loads((tmp_path / "reports" / "ecr-replication-report.json").read_text())
    # ansible-playbook no longer reads its worker after a SIGINT: the driver wrote the report itself
    assert any("interrupted (SIGINT)" in e and "build(s) stopped" in e for e in report["summary"]["errors"]), report
    copied_first = report["summary"]["copied"]
    assert 10 <= copied_first < total
    assert _source_snapshot(sandbox) == before

    rerun_dir = tmp_path / "rerun"
    rerun_dir.mkdir()
    rerun = run_playbook(
        sandbox, "replicate.yml", rerun_dir, *user_args(sandbox, "-e", "batch_size=10", "-e", "poll_interval=0.5")
    )
    assert rerun.returncode == 0, rerun.explain()
    report = json.loads((rerun_dir / "reports" / "ecr-replication-report.json").read_text())
    summary = report["summary"]
    assert summary["success"] is True and summary["failed"] == 0
    assert summary["present"] == copied_first and summary["copied"] == total - copied_first
    assert summary["builds"] <= -(-(total - copied_first) // 10)
    assert "every planned digest and tag is present" in rerun.stdout
    assert _source_snapshot(sandbox) == before


# Every case of validation.check_replicate_inputs / resolve_destinations has a unit test; these go through the
# playbook, the role's argument spec and the inputs plugin, with the AWS calls counted.
@pytest.mark.parametrize(
    "extra,option,says",
    [
        (["-e", "batch_size=0"], "replicate_batch_size", "from 1 to 500"),
        (["-e", "poll_interval=0"], "replicate_poll_interval", "0.05 to 3600"),
        (["-e", "dest_role=arn:aws:iam::333333333333:role/x"], "replicate_dest_role_arn", "not of the destination"),
        (["-e", "repositories=" + "a" * 230], "replicate_repositories", "does not fit in a registry reference"),
        (["-e", "strategy=sideways"], "replicate_strategy", "must be one of"),
    ],
)
def test_bad_input_is_refused_before_any_aws_call(provisioned, tmp_path, extra, option, says):
    """Every option is checked before the first AWS call: a clear message naming the variable, a non-zero exit,
    no traceback, and no call to ECR, CodeBuild or IAM (counted at the wire; only sts:GetCallerIdentity may run)."""
    from tests.sandbox.call_counter import CountingProxy

    sandbox = provisioned
    proxy = CountingProxy(int(sandbox.env["SANDBOX_BASE_PORT"]), 0).start()
    try:
        run = run_playbook(
            sandbox, "replicate.yml", tmp_path, *user_args(sandbox, *extra), env={"AWS_ENDPOINT_URL": proxy.url}
        )
        calls = proxy.snapshot()
    finally:
        proxy.stop()
    assert run.returncode != 0
    assert option in run.stdout and says in run.stdout, run.stdout[-3000:]
    assert "Traceback" not in run.stdout + run.stderr
    assert set(calls) <= {"AWSSecurityTokenServiceV20110615:GetCallerIdentity", "sts:GetCallerIdentity"}, calls


def test_a_digest_whose_tags_all_conflict_starts_no_build_on_rerun(provisioned, tmp_path):
    """The destination holds the digest, but its only tag there points to another image: nothing to copy without
    force_tags, so no build (it used to start one on every run), changed=0, and the conflict is in the report."""
    sandbox = provisioned
    repository = "tools/cli"
    _clear_destination(sandbox, repository)
    first = tmp_path / "first"
    first.mkdir()
    run = run_playbook(
        sandbox,
        "replicate.yml",
        first,
        *user_args(sandbox, "-e", f"repositories={repository}", "-e", "poll_interval=0.5"),
    )
    assert run.returncode == 0, run.explain()
    images = [i for i in sandbox.catalog["images"] if i["repository"] == repository and len(i["tags"] or []) == 1]
    moved, other = images[0], images[1]
    target = sandbox.client("ecr", "target", sandbox.dest_region)
    manifest = target.batch_get_image(repositoryName=repository, imageIds=[{"imageDigest": other["digest"]}])
    # the tag of `moved` now points to `other` in the destination; `moved` stays there, untagged
    target.put_image(
        repositoryName=repository, imageManifest=manifest["images"][0]["imageManifest"], imageTag=moved["tags"][0]
    )

    for name in ("rerun", "rerun-again"):
        cwd = tmp_path / name
        cwd.mkdir()
        run = run_playbook(sandbox, "replicate.yml", cwd, *user_args(sandbox, "-e", f"repositories={repository}"))
        assert run.returncode == 0, run.explain()
        assert run.recap["changed"] == 0, run.stdout[-3000:]
        report = json.loads((cwd / "reports" / "ecr-replication-report.json").read_text())
        assert report["summary"]["builds"] == 0 and report["summary"]["tag_conflict"] == 1
        (entry,) = [i for i in report["images"] if i["digest"] == moved["digest"]]
        assert entry["outcome"] == "tag_conflict" and moved["tags"][0] in entry["reason"]

    # told to: the tag moves back to the source's digest, and the report says where it pointed before
    before = _source_snapshot(sandbox)
    forced = tmp_path / "forced"
    forced.mkdir()
    run = run_playbook(
        sandbox,
        "replicate.yml",
        forced,
        *user_args(sandbox, "-e", f"repositories={repository}", "-e", "force_tags=true", "-e", "poll_interval=0.5"),
    )
    assert run.returncode == 0, run.explain()
    report = json.loads((forced / "reports" / "ecr-replication-report.json").read_text())
    (entry,) = [i for i in report["images"] if i["digest"] == moved["digest"]]
    assert entry["outcome"] == "copied", entry
    assert entry["moved_tags"] == [{"tag": moved["tags"][0], "previous_digest": other["digest"]}]
    described = target.describe_images(repositoryName=repository, imageIds=[{"imageTag": moved["tags"][0]}])
    assert described["imageDetails"][0]["imageDigest"] == moved["digest"]
    assert other["digest"] in (forced / "reports" / "ecr-replication-report.md").read_text()
    assert _source_snapshot(sandbox) == before, "strategy codebuild changed the source"


def test_local_strategy_in_the_same_account_uses_the_callers_credentials(provisioned, tmp_path):
    """No role to make: the other region of the source account, copied with the credentials of the play."""
    sandbox = provisioned
    repository = "legacy-app"
    other = sandbox.client("ecr", "source", sandbox.dest_region)
    try:
        other.delete_repository(repositoryName=repository, force=True)
    except other.exceptions.RepositoryNotFoundException:
        pass
    before = _source_snapshot(sandbox)
    run = run_playbook(
        sandbox,
        "replicate.yml",
        tmp_path,
        "-e",
        f"dest_region={sandbox.dest_region}",
        "-e",
        "strategy=local",
        "-e",
        f"repositories={repository}",
        "-e",
        "poll_interval=0.5",
    )
    try:
        assert run.returncode == 0, run.explain()
        assert re.search(r"^(done after )?poll \d+: ", run.stdout, re.M), "local copies print progress lines too"
        report = json.loads((tmp_path / "reports" / "ecr-replication-report.json").read_text())
        expected = [i for i in sandbox.catalog["images"] if i["repository"] == repository]
        assert report["summary"]["success"] and report["summary"]["copied"] == len(expected)
        assert report["destinations"][0]["summary"]["account"] == sandbox.source_account
        assert _source_snapshot(sandbox) == before, "strategy local (same account) changed the source"
    finally:
        other.delete_repository(repositoryName=repository, force=True)


def test_local_strategy_across_accounts_after_provisioning_trusts_the_caller(provisioned, tmp_path):
    sandbox = provisioned
    provision(sandbox, tmp_path, "-e", "trust_caller=true")
    repository = "team-b/web"
    _clear_destination(sandbox, repository)
    cwd = tmp_path / "copy"
    cwd.mkdir()
    before = _source_snapshot(sandbox)
    run = run_playbook(
        sandbox,
        "replicate.yml",
        cwd,
        *user_args(sandbox, "-e", "strategy=local", "-e", f"repositories={repository}", "-e", "poll_interval=0.5"),
    )
    assert run.returncode == 0, run.explain()
    assert _source_snapshot(sandbox) == before, "strategy local (across accounts) changed the source"
    report = json.loads((cwd / "reports" / "ecr-replication-report.json").read_text())
    expected = [i for i in sandbox.catalog["images"] if i["repository"] == repository]
    assert report["summary"]["success"] and report["summary"]["copied"] == len(expected)
    assert EXTERNAL_ID not in run.stdout + run.stderr


def _written_bytes(sandbox, account: str, region: str, reset: bool = False) -> int:
    """Blob bytes written into a registry, counted by its sandbox proxy (``/_sandbox/stats``)."""
    import ssl
    import urllib.request

    endpoint = sandbox.config.registry(account, region).proxy_endpoint + "/_sandbox/stats" + ("/reset" if reset else "")
    context = ssl.create_default_context(cafile=str(sandbox.config.ca_bundle))
    request = urllib.request.Request(endpoint, method="POST" if reset else "GET")
    with urllib.request.urlopen(request, context=context, timeout=30) as response:
        return int(json.loads(response.read()).get("blob_bytes_written", 0))


def _empty_registry(sandbox, account: str, region: str, repositories) -> None:
    """Delete the repositories, and the blobs distribution keeps on disk after ECR forgot them (a HEAD would
    find them, and nothing would be uploaded)."""
    import shutil

    ecr = sandbox.client("ecr", "source" if account == sandbox.source_account else "target", region)
    for repository in repositories:
        try:
            ecr.delete_repository(repositoryName=repository, force=True)
        except ecr.exceptions.RepositoryNotFoundException:
            pass
    endpoint = sandbox.config.registry(account, region)
    storage = sandbox.config.sandbox_dir / "registries" / endpoint.key / "data/docker/registry/v2"
    shutil.rmtree(storage / "repositories", ignore_errors=True)
    shutil.rmtree(storage / "blobs", ignore_errors=True)


def test_blobs_shared_by_several_batches_are_uploaded_once(provisioned, tmp_path):
    """Issue 13 (bytes moved / unique bytes missing <= 1.05): the small catalog in batches of 5 (8 copy programs,
    run 2 at a time), strategy local into the source account's other region. Every batch needs base layers others
    need too; without share_blobs each uploads them again, with it the first batch brings them and the others
    mount them. Every digest and tag is verified by the run either way."""
    from ansible_collections.cloudops.ecr_replication.plugins.module_utils import image_catalog

    sandbox = provisioned
    repositories = sorted({i["repository"] for i in sandbox.catalog["images"]})
    account, region = sandbox.source_account, sandbox.dest_region
    source = sandbox.client("ecr", "source", sandbox.source_region)
    needs = image_catalog.image_blobs(source, sandbox.catalog["images"])
    unique = sum({blob: size for need in needs.values() for blob, size in need.items()}.values())
    written = {}
    try:
        for share in ("false", "true"):
            _empty_registry(sandbox, account, region, repositories)
            _written_bytes(sandbox, account, region, reset=True)
            cwd = tmp_path / share
            cwd.mkdir()
            run = run_playbook(
                sandbox, "replicate.yml", cwd, "-e", f"dest_region={region}", "-e", "strategy=local",
                "-e", "batch_size=5", "-e", "max_concurrent_builds=2", "-e", "poll_interval=0.5",
                "-e", f"share_blobs={share}", "-e", "repositories=" + ",".join(repositories),
            )
            assert run.returncode == 0, run.explain()
            report = json.loads((cwd / "reports" / "ecr-replication-report.json").read_text())
            assert report["summary"]["success"], report["summary"]
            written[share] = _written_bytes(sandbox, account, region)
            if share == "true":
                assert "uploads the blobs the other" in run.stdout
    finally:
        _empty_registry(sandbox, account, region, repositories)
    assert written["false"] > 1.2 * unique, (written, unique)  # what there is to save here
    assert written["true"] <= 1.05 * unique, (written, unique)
