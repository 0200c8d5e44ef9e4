# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Fixtures of the benchmarks (``make benchmark``): one sandbox with the ``large`` catalog, the IAM roles and the
two CodeBuild projects (ours: the collection's buildspec.yml; the seed's: seed_approach.SEED_BUILDSPEC), a playbook
runner, and the report (printed tables; ``BENCHMARK_WRITE=1`` writes tests/benchmarks/results.md).

Tunables (environment of ``make benchmark``), see README.md:
``BENCHMARK_BASE_PORT`` (27000), ``BENCHMARK_SANDBOX_DIR`` (a temp dir; a sandbox already running there is reused
and left running), ``BENCHMARK_PROVISIONING_SECONDS`` (2), ``BENCHMARK_CONCURRENCY`` (5),
``BENCHMARK_E2E_IMAGES`` (100; 0 = the whole catalog), ``BENCHMARK_WRITE``.
"""

from __future__ import annotations

import datetime
import json
import os
import subprocess
import sys
import textwrap
import time
import uuid
from pathlib import Path

import pytest

from tests.sandbox.fixtures import ensure_trusted_role
from tests.sandbox.fixtures import replace_codebuild_project

from tests.benchmarks.seed_approach import SEED_BUILDSPEC
from tests.benchmarks.seed_approach import SEED_PROJECT

HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parents[1]
COLLECTIONS = REPO_ROOT / ".ansible" / "collections"
RESULTS = HERE / "results.md"

BASE_PORT = int(os.environ.get("BENCHMARK_BASE_PORT", "27000"))
PROVISIONING_SECONDS = float(os.environ.get("BENCHMARK_PROVISIONING_SECONDS", "2"))
CONCURRENCY = int(os.environ.get("BENCHMARK_CONCURRENCY", "5"))
E2E_IMAGES = int(os.environ.get("BENCHMARK_E2E_IMAGES", "100"))

OUR_PROJECT = "bench-ecr-replication"
BUILD_ROLE = "EcrBenchBuild"
TARGET_ROLE = "EcrBenchTarget"  # ours: ExternalId required
SEED_TARGET_ROLE = "EcrBenchSeedTarget"  # the seed's: no ExternalId (as in the seed)


OUTCOMES: dict[str, str] = {}


def pytest_runtest_logreport(report):
    """Outcome of every benchmark, for results.md."""
    if report.when == "call" or report.outcome != "passed":
        OUTCOMES.setdefault(report.nodeid.split("::", 1)[-1], report.outcome)


# -- report --------------------------------------------------------------------------------------------------------


def table(headers: list[str], rows: list[list]) -> str:
    """A Markdown table (also readable on a terminal)."""
    cells = [[str(h) for h in headers]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]

    def line(row):
        return "| " + " | ".join(c.ljust(w) for c, w in zip(row, widths)) + " |"

    return "\n".join([line(cells[0]), "| " + " | ".join("-" * w for w in widths) + " |"] + [line(r) for r in cells[1:]])


def ratio(a: float, b: float) -> str:
    return "n/a" if not b else f"{a / b:.1f}x"


class Report:
    def __init__(self):
        self.sections: list[tuple[str, str]] = []
        self.started = time.time()
        self.machine = {
            "cpus": os.cpu_count(),
            "load_average_at_start": " / ".join(f"{x:.1f}" for x in os.getloadavg()),
            "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        }

    def add(self, title: str, text: str) -> None:
        self.sections.append((title, text))
        print(f"\n\n## {title}\n\n{text}\n", flush=True)

    def markdown(self, settings: dict) -> str:
        head = textwrap.dedent("""\
            # Benchmark results

            Written by `BENCHMARK_WRITE=1 make benchmark` (tests/benchmarks, see README.md there). One real run on the
            sandbox (moto + Debian docker-registry + skopeo on 127.0.0.1), not on AWS: counts and ratios carry over,
            absolute seconds do not (the sandbox's provisioning delay stands in for CodeBuild's 30-90 s).

            """)
        setup = table(["setting", "value"], [[k, v] for k, v in {**self.machine, **settings}.items()])
        body = "".join(f"\n## {title}\n\n{text}\n" for title, text in sorted(self.sections))
        outcomes = table(["benchmark", "outcome"], [[name, outcome] for name, outcome in OUTCOMES.items()])
        return (
            head + setup + "\n\nOutcome of the assertions (ratios and counts) in this run:\n\n" + outcomes + "\n" + body
        )


@pytest.fixture(scope="session")
def report():
    rep = Report()
    yield rep
    settings = {
        "sandbox CodeBuild provisioning delay (s)": PROVISIONING_SECONDS,
        "sandbox CodeBuild concurrent builds (account quota)": CONCURRENCY,
        "end-to-end images (BENCHMARK_E2E_IMAGES, 0 = all)": E2E_IMAGES,
        "total benchmark time (s)": round(time.time() - rep.started),
    }
    if os.environ.get("BENCHMARK_WRITE") == "1" and rep.sections:
        RESULTS.write_text(rep.markdown(settings))
        print(f"\nbenchmark: results written to {RESULTS}")


# -- sandbox -------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def large_sandbox(tmp_path_factory):
    """The ``large`` catalog on its own sandbox (ports BENCHMARK_BASE_PORT..+14), CodeBuild tuned for benchmarks."""
    from tests.sandbox import lifecycle
    from tests.sandbox.config import SandboxConfig
    from tests.sandbox.fixtures import Sandbox

    directory = os.environ.get("BENCHMARK_SANDBOX_DIR") or str(tmp_path_factory.mktemp("bench") / "sandbox")
    config = SandboxConfig(Path(directory), BASE_PORT)
    owned = lifecycle.running_pid(config) is None
    tunables = {
        "SANDBOX_CODEBUILD_PROVISIONING_SECONDS": str(PROVISIONING_SECONDS),
        "SANDBOX_CODEBUILD_CONCURRENCY": str(CONCURRENCY),
        # The seed starts one build per image; real CodeBuild would refuse most of them (queue quota) and the seed's
        # script has no retry. Here the queue is long enough for the seed to run at all.
        "SANDBOX_CODEBUILD_QUEUE_LIMIT": "5000",
    }
    saved = {k: os.environ.get(k) for k in tunables}
    os.environ.update(tunables)  # read by the sandbox process at start
    started = time.time()
    try:
        env = lifecycle.start(config, "large", timeout=180)
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    box = Sandbox(config, env, profile="large")
    box.start_seconds = round(time.time() - started, 1)
    try:
        yield box
    finally:
        if owned:
            lifecycle.stop(config)


class Bench:
    """The large sandbox plus what both approaches need to run in it."""

    def __init__(self, sandbox, tmp: Path):
        self.sandbox = sandbox
        self.tmp = tmp
        self.external_id = "bench-" + uuid.uuid4().hex[:12]
        src, tgt = sandbox.source_account, sandbox.target_account
        self.build_role_arn = f"arn:aws:iam::{src}:role/{BUILD_ROLE}"
        self.target_role_arn = f"arn:aws:iam::{tgt}:role/{TARGET_ROLE}"
        self.seed_target_role_arn = f"arn:aws:iam::{tgt}:role/{SEED_TARGET_ROLE}"
        self.catalog = sandbox.catalog

    def provision(self) -> None:
        sb = self.sandbox
        ensure_trusted_role(sb.client("iam"), BUILD_ROLE, {"Service": "codebuild.amazonaws.com"})
        target_iam = sb.client("iam", "target")
        trusted = {"AWS": [self.build_role_arn, f"arn:aws:iam::{sb.source_account}:root"]}
        ensure_trusted_role(target_iam, TARGET_ROLE, trusted, {"StringEquals": {"sts:ExternalId": self.external_id}})
        ensure_trusted_role(target_iam, SEED_TARGET_ROLE, trusted)
        seed_env = {
            "dest_region": sb.dest_region,
            "dest_account": sb.target_account,
            "dest_role": self.seed_target_role_arn,
            "src_account": sb.source_account,
            "src_registry": sb.registry_host("source"),
            "dest_registry": sb.registry_host("target", sb.dest_region),
        }
        codebuild = sb.client("codebuild")
        for name, buildspec, variables in (
            (OUR_PROJECT, (REPO_ROOT / "buildspec.yml").read_text(), {}),
            (SEED_PROJECT, SEED_BUILDSPEC, seed_env),
        ):
            replace_codebuild_project(codebuild, name, buildspec, self.build_role_arn, variables, timeoutInMinutes=60)

    def subset_repositories(self, images: int) -> list[str]:
        """Deterministic: every 4th repository in name order (``bulk/*`` left out, so the subset mixes teams, indexes
        and referrers), then the others, until they hold ``images`` images; ``images <= 0``: every repository."""
        per_repo: dict[str, int] = {}
        for image in self.catalog["images"]:
            per_repo[image["repository"]] = per_repo.get(image["repository"], 0) + 1
        if images <= 0:
            return sorted(per_repo)
        names = sorted(n for n in per_repo if not n.startswith("bulk/"))
        order = names[::4] + [n for n in names if n not in names[::4]]
        chosen, total = [], 0
        for name in order:
            if total >= images:
                break
            chosen.append(name)
            total += per_repo[name]
        return sorted(chosen)

    def playbook(self, tasks: str, endpoint_url: str | None = None, **variables) -> dict:
        """Run tasks on localhost; every ``register: r_<name>`` comes back under ``<name>``; ``_seconds`` is the
        playbook's wall time."""
        run = self.tmp / ("run-" + uuid.uuid4().hex[:8])
        run.mkdir()
        out = run / "out.json"
        (run / "vars.json").write_text(json.dumps(dict(variables, out_file=str(out))))
        registered = [line.split("register: r_")[1].strip() for line in tasks.splitlines() if "register: r_" in line]
        dump = "{{ dict(%s) | to_json }}" % ", ".join("%s=r_%s | default(None)" % (n, n) for n in registered)
        (run / "play.yml").write_text(
            "- hosts: localhost\n  gather_facts: false\n  tasks:\n"
            + textwrap.indent(textwrap.dedent(tasks), "    ")
            + '\n    - name: dump\n      ansible.builtin.copy:\n        dest: "{{ out_file }}"\n'
            + f"        content: {json.dumps(dump)}\n"
        )
        extra = {"AWS_ENDPOINT_URL": endpoint_url} if endpoint_url else {}
        env = self.sandbox.subprocess_env(
            ANSIBLE_COLLECTIONS_PATH=str(COLLECTIONS),
            ANSIBLE_LOCAL_TEMP=str(run / "tmp"),
            ANSIBLE_NOCOLOR="1",
            ANSIBLE_RETRY_FILES_ENABLED="0",
            **extra,
        )
        started = time.time()
        proc = subprocess.run(
            [
                str(Path(sys.executable).with_name("ansible-playbook")),
                "-i",
                "localhost,",
                "-c",
                "local",
                "-e",
                f"ansible_python_interpreter={sys.executable}",
                "-e",
                f"@{run / 'vars.json'}",
                str(run / "play.yml"),
            ],
            env=env,
            capture_output=True,
            text=True,
            timeout=3600,
            cwd=run,
            check=False,
        )
        seconds = time.time() - started
        assert out.exists(), proc.stdout[-4000:] + proc.stderr[-4000:]
        result = json.loads(out.read_text())
        result["_seconds"] = round(seconds, 1)
        result["_stdout"] = proc.stdout
        return result


@pytest.fixture(scope="session")
def bench(large_sandbox, tmp_path_factory):
    b = Bench(large_sandbox, tmp_path_factory.mktemp("bench-runs"))
    b.provision()
    return b
