"""Fixtures for codebuild_replicate against the sandbox: a build role, a destination role with an ExternalId,
CodeBuild projects whose buildspec is the collection's buildspec.yml, and a playbook runner."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path

import pytest

from tests.sandbox.fixtures import ensure_trusted_role
from tests.sandbox.fixtures import replace_codebuild_project

REPO_ROOT = Path(__file__).resolve().parents[3]
COLLECTIONS = REPO_ROOT / ".ansible" / "collections"
BUILD_ROLE = "EcrReplTestBuild"
TARGET_ROLE = "EcrReplTestTarget"
PROJECT = "ecr-repl-test"
FLAKY_PROJECT = "ecr-repl-test-flaky"
FLAKY_SKOPEO = Path(__file__).with_name("flaky_skopeo.sh")


class Replication:
    def __init__(self, sandbox, tmp: Path):
        self.sandbox = sandbox
        self.tmp = tmp
        self.external_id = "ext-" + uuid.uuid4().hex[:12]
        # builds read the ExternalId from this SecureString (PARAMETER_STORE), never from a PLAINTEXT override
        self.external_id_parameter = f"/ecr-repl-test/{uuid.uuid4().hex[:8]}/external-id"
        src, tgt = sandbox.source_account, sandbox.target_account
        self.build_role_arn = f"arn:aws:iam::{src}:role/{BUILD_ROLE}"
        self.target_role_arn = f"arn:aws:iam::{tgt}:role/{TARGET_ROLE}"
        self.flaky_skopeo = FLAKY_SKOPEO
        self.flaky_state = tmp / "flaky"
        self.flaky_state.mkdir()

    # -- set-up ---------------------------------------------------------------------------------------------
    def provision(self) -> None:
        sb = self.sandbox
        iam = sb.client("iam")
        ensure_trusted_role(iam, BUILD_ROLE, {"Service": "codebuild.amazonaws.com"})
        target_iam = sb.client("iam", "target")
        # The trust policy is put anew, with this run's ExternalId.
        ensure_trusted_role(
            target_iam,
            TARGET_ROLE,
            {"AWS": [self.build_role_arn, f"arn:aws:iam::{sb.source_account}:root"]},
            {"StringEquals": {"sts:ExternalId": self.external_id}},
        )
        sb.client("ssm").put_parameter(
            Name=self.external_id_parameter, Value=self.external_id, Type="SecureString", Overwrite=True
        )
        buildspec = (REPO_ROOT / "buildspec.yml").read_text()
        codebuild = sb.client("codebuild")
        flaky_env = {"REPL_SKOPEO": str(FLAKY_SKOPEO), "FLAKY_STATE": str(self.flaky_state), "REPL_BACKOFF": "0.2"}
        for name, variables in ((PROJECT, {}), (FLAKY_PROJECT, flaky_env)):
            replace_codebuild_project(
                codebuild, name, buildspec, self.build_role_arn, variables, concurrentBuildLimit=2, timeoutInMinutes=30
            )

    # -- running the module -------------------------------------------------------------------------------
    def playbook(self, tasks: str, extra_env: dict | None = None, timeout: int = 1500, **variables) -> dict:
        """Run tasks on localhost; every task that registers ``r_<name>`` is returned under ``<name>``."""
        run = self.tmp / ("run-" + uuid.uuid4().hex[:8])
        run.mkdir()
        out = run / "out.json"
        variables.setdefault("external_id_parameter", self.external_id_parameter)
        variables.setdefault("external_id_parameter", self.external_id_parameter)
        (run / "vars.json").write_text(json.dumps(dict(variables, out_file=str(out))))
        registered = [line.split("register: r_")[1].strip() for line in tasks.splitlines() if "register: r_" in line]
        dump = "{{ dict(%s) | to_json }}" % ", ".join("%s=r_%s | default(None)" % (n, n) for n in registered)
        (run / "play.yml").write_text(textwrap.dedent("""\
            - hosts: localhost
              gather_facts: false
              tasks:
            %s
                - name: dump
                  ansible.builtin.copy:
                    dest: "{{ out_file }}"
                    content: %s
            """) % (textwrap.indent(textwrap.dedent(tasks), "    "), json.dumps(dump)))
        env = self.sandbox.subprocess_env(
            ANSIBLE_COLLECTIONS_PATH=str(COLLECTIONS),
            ANSIBLE_LOCAL_TEMP=str(run / "tmp"),
            ANSIBLE_NOCOLOR="1",
            ANSIBLE_RETRY_FILES_ENABLED="0",
            **(extra_env or {}),
        )
        # Own process group: on timeout the forked task workers (and the module they run) go too.
        proc = subprocess.Popen(
            [str(Path(sys.executable).with_name("ansible-playbook")), "-i", "localhost,", "-c", "local",
             "-e", f"ansible_python_interpreter={sys.executable}", "-e", f"@{run / 'vars.json'}", str(run / "play.yml")],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=run, start_new_session=True,
        )
        try:
            proc.stdout, proc.stderr = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
            raise
        assert out.exists(), proc.stdout[-4000:] + proc.stderr[-4000:]
        result = json.loads(out.read_text())
        result["_stdout"] = proc.stdout
        return result

    # -- checks -------------------------------------------------------------------------------------------
    def source_images(self):
        ecr = self.sandbox.client("ecr")
        images = []
        for page in ecr.get_paginator("describe_repositories").paginate():
            for repo in page["repositories"]:
                for ipage in ecr.get_paginator("describe_images").paginate(repositoryName=repo["repositoryName"]):
                    images.extend(ipage["imageDetails"])
        return images

    def raw_manifest(self, account: str, repository: str, digest: str) -> str:
        sb = self.sandbox
        host = sb.registry_host(account)
        proc = sb.skopeo("inspect", "--raw", f"docker://{host}/{repository}@{digest}",
                         account_creds={host: sb.registry_password(account)})
        return proc.stdout

    def build_logs(self, builds) -> str:
        logs = self.sandbox.client("logs")
        text = []
        for build in builds:
            events = logs.get_log_events(logGroupName=build["log_group"], logStreamName=build["log_stream"],
                                         startFromHead=True)["events"]
            text.extend(e["message"] for e in events)
        return "\n".join(text)


@pytest.fixture(scope="module")
def replication(sandbox, tmp_path_factory):
    repl = Replication(sandbox, tmp_path_factory.mktemp("replicate"))
    repl.provision()
    os.chmod(FLAKY_SKOPEO, 0o755)
    return repl
