"""pytest fixtures for the sandbox (registered by tests/conftest.py)."""

from __future__ import annotations

import base64
import contextlib
import json
import os
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import pytest

from . import lifecycle
from .config import ACCOUNTS
from .config import DEST_REGION
from .config import REPO_ROOT
from .config import SOURCE_ACCOUNT
from .config import SOURCE_REGION
from .config import TARGET_ACCOUNT
from .config import SandboxConfig
from .policy import UNRESTRICTED_TAG

TEST_BASE_PORT = 26000


class Sandbox:
    """What a test needs: the environment, clients per account and region, registry hosts, the catalog."""

    source_account = SOURCE_ACCOUNT
    target_account = TARGET_ACCOUNT
    source_region = SOURCE_REGION
    dest_region = DEST_REGION

    def __init__(self, config: SandboxConfig, env: dict[str, str], profile: str = "small"):
        self.config = config
        self.env = env
        self.profile = profile
        self._catalogs: dict[str, dict[str, Any]] = {}

    # -- environment -------------------------------------------------------
    def subprocess_env(self, **extra: str) -> dict[str, str]:
        """os.environ with the sandbox variables on top (for ansible-playbook, aws, skopeo)."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        env.update(self.env)
        env.update(extra)
        return env

    def session(self, account: str = "source", region: str | None = None):
        import boto3

        region = region or (SOURCE_REGION if account in ("source", SOURCE_ACCOUNT) else DEST_REGION)
        base = boto3.Session(
            aws_access_key_id=self.env["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=self.env["AWS_SECRET_ACCESS_KEY"],
            region_name=region,
        )
        if account in ("source", SOURCE_ACCOUNT):
            return base
        return self.role_session(self.env["SANDBOX_TARGET_ADMIN_ROLE_ARN"], region=region)

    def role_session(self, role_arn: str, external_id: str | None = None, region: str | None = None):
        """A boto3 session of ``role_arn``, assumed with the source administrator's keys."""
        import boto3

        params = {"RoleArn": role_arn, "RoleSessionName": "sandbox-tests"}
        if external_id:
            params["ExternalId"] = external_id
        credentials = self.client("sts").assume_role(**params)["Credentials"]
        return boto3.Session(
            aws_access_key_id=credentials["AccessKeyId"],
            aws_secret_access_key=credentials["SecretAccessKey"],
            aws_session_token=credentials["SessionToken"],
            region_name=region or DEST_REGION,
        )

    def client(self, service: str, account: str = "source", region: str | None = None):
        return self.session(account, region).client(service, endpoint_url=self.env["AWS_ENDPOINT_URL"])

    def registry_host(self, account: str = "source", region: str | None = None) -> str:
        account_id = SOURCE_ACCOUNT if account == "source" else TARGET_ACCOUNT if account == "target" else account
        region = region or (SOURCE_REGION if account_id == SOURCE_ACCOUNT else DEST_REGION)
        return self.config.registry(account_id, region).host

    def registry_password(self, account: str = "source", region: str | None = None) -> str:
        token = self.client("ecr", account, region).get_authorization_token()["authorizationData"][0]
        return base64.b64decode(token["authorizationToken"]).decode().partition(":")[2]

    def skopeo(self, *args: str, account_creds: dict[str, str] | None = None, check: bool = True):
        """Run skopeo with the sandbox environment; credentials go through a private authfile."""
        with tempfile.TemporaryDirectory() as tmp:
            env = self.subprocess_env(REGISTRY_AUTH_FILE=str(Path(tmp) / "auth.json"))
            for host, password in (account_creds or {}).items():
                subprocess.run(
                    ["skopeo", "login", "--username", "AWS", "--password-stdin", host],
                    input=password, text=True, env=env, check=True, capture_output=True,
                )
            return subprocess.run(["skopeo", *args], env=env, check=check, capture_output=True, text=True)

    # -- data --------------------------------------------------------------
    def catalog_for(self, profile: str) -> dict[str, Any]:
        if profile not in self._catalogs:
            path = self.config.catalog_file(profile)
            if not path.exists():
                lifecycle.seed(self.config, profile, self.env)
            self._catalogs[profile] = json.loads(path.read_text())
        return self._catalogs[profile]

    @property
    def catalog(self) -> dict[str, Any]:
        return self.catalog_for(self.profile)

    def set_codebuild(self, **settings) -> dict:
        """Change the sandbox CodeBuild's tunables (provisioning_seconds, account_quota, queue_limit,
        minute_seconds) from now on; returns the old values. A shorter provisioning_seconds also releases builds
        already waiting in provisioning."""
        import requests

        answer = requests.post(self.config.endpoint_url + "/_sandbox/codebuild", json=settings, timeout=10)
        answer.raise_for_status()
        return {name: answer.json()[name] for name in settings}

    @contextlib.contextmanager
    def codebuild_settings(self, **settings):
        """``set_codebuild`` for the duration of a ``with`` block; the old values come back afterwards."""
        old = self.set_codebuild(**settings)
        try:
            yield
        finally:
            self.set_codebuild(**old)

    def set_faults(self, **settings) -> dict:
        """Replace the sandbox's fault configuration (tests/sandbox/faults.py; no argument: every fault off) and
        reset its counts and write journal. Prefer the ``faults`` fixture, which switches them off afterwards."""
        import requests

        answer = requests.post(self.config.endpoint_url + "/_sandbox/faults", json=settings, timeout=10)
        if answer.status_code != 200:
            raise ValueError(answer.text)
        return answer.json()

    def fault_state(self) -> dict:
        """What was injected, the calls of faulted operations, and the registry write journal (faults.py)."""
        import requests

        answer = requests.get(self.config.endpoint_url + "/_sandbox/faults", timeout=30)
        answer.raise_for_status()
        return answer.json()

    def reset_target(self) -> None:
        """Delete every repository of the target account (both regions): a clean destination."""
        for region in (SOURCE_REGION, DEST_REGION):
            ecr = self.client("ecr", "target", region)
            # every name first: deleting while paging would shift the pages under the paginator (130 repositories,
            # 100 a page: 30 were left behind, and the bench's later methods found part of their work done)
            names = [repo["repositoryName"] for page in ecr.get_paginator("describe_repositories").paginate()
                     for repo in page["repositories"]]
            for name in names:
                ecr.delete_repository(repositoryName=name, force=True)


# A test fixture role that is not about permissions: the sandbox does not check its identity policies
# (tests/sandbox/policy.py). Roles that the collection provisions never carry it.
UNRESTRICTED_ROLE_TAGS = [{"Key": UNRESTRICTED_TAG, "Value": "true"}]


def ensure_trusted_role(iam, name: str, principal: dict[str, Any], condition: dict[str, Any] | None = None) -> None:
    """Create the role with this trust policy, or put the policy on the role that exists (an unrestricted
    fixture role either way)."""
    statement: dict[str, Any] = {"Effect": "Allow", "Principal": principal, "Action": "sts:AssumeRole"}
    if condition:
        statement["Condition"] = condition
    document = json.dumps({"Version": "2012-10-17", "Statement": [statement]})
    try:
        iam.create_role(RoleName=name, AssumeRolePolicyDocument=document, Tags=UNRESTRICTED_ROLE_TAGS)
    except iam.exceptions.EntityAlreadyExistsException:
        iam.update_assume_role_policy(RoleName=name, PolicyDocument=document)
        iam.tag_role(RoleName=name, Tags=UNRESTRICTED_ROLE_TAGS)


def replace_codebuild_project(
    codebuild, name: str, buildspec: str, service_role: str, variables: dict[str, str] | None = None, **settings: Any
) -> dict[str, Any]:
    """A fresh NO_SOURCE project running `buildspec` (an existing project of that name is deleted first)."""
    try:
        codebuild.delete_project(name=name)
    except codebuild.exceptions.ResourceNotFoundException:
        pass
    return codebuild.create_project(
        name=name,
        source={"type": "NO_SOURCE", "buildspec": buildspec},
        artifacts={"type": "NO_ARTIFACTS"},
        environment={
            "type": "LINUX_CONTAINER",
            "image": "aws/codebuild/amazonlinux-x86_64-standard:5.0",
            "computeType": "BUILD_GENERAL1_SMALL",
            "environmentVariables": [
                {"name": key, "value": value, "type": "PLAINTEXT"} for key, value in (variables or {}).items()
            ],
        },
        serviceRole=service_role,
        **settings,
    )["project"]


def start_test_sandbox(tmp_root: Path) -> tuple[SandboxConfig, dict[str, str], bool]:
    """Reuse the sandbox named by $SANDBOX_ENV_FILE's directory (make test starts one), else start a private one."""
    shared = os.environ.get("SANDBOX_TEST_DIR")
    if shared:
        config = SandboxConfig(Path(shared), int(os.environ.get("SANDBOX_TEST_BASE_PORT", TEST_BASE_PORT)))
        if lifecycle.running_pid(config):
            return config, lifecycle.sandbox_env(config), False
    if os.environ.get("SANDBOX_TEST_BASE_PORT"):
        config = SandboxConfig(tmp_root / "sandbox", int(os.environ["SANDBOX_TEST_BASE_PORT"]))
    else:
        # Several test runs may share the machine: take the first block of free ports from 26000 on.
        config = SandboxConfig(tmp_root / "sandbox", lifecycle.free_base_port(TEST_BASE_PORT))
    env = lifecycle.start(config, "small")
    return config, env, True


@pytest.fixture(scope="session")
def sandbox(tmp_path_factory) -> Sandbox:
    from tests.reliability import TALLY

    config, env, owned = start_test_sandbox(tmp_path_factory.mktemp("sbx"))
    # What must never appear in an output, a log or a report (tests scan for them: tests/reliability.py).
    for name in ("AWS_SECRET_ACCESS_KEY", "ECR_REPLICATION_EXTERNAL_ID"):
        TALLY.secret(env.get(name))
    try:
        yield Sandbox(config, env)
    finally:
        if owned:
            lifecycle.stop(config)


@pytest.fixture
def faults(sandbox):
    """The sandbox's fault injection, off at the start and switched off again after the test, whatever happened:
    ``faults.set(api={...}, registry={...}, token_ttl_seconds=..., codebuild={...})``, ``faults.state()``."""

    class Faults:
        set = staticmethod(sandbox.set_faults)
        state = staticmethod(sandbox.fault_state)

    sandbox.set_faults()
    try:
        yield Faults()
    finally:
        sandbox.set_faults()


__all__ = ["Sandbox", "sandbox", "faults", "ACCOUNTS", "REPO_ROOT"]
