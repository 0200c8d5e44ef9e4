# -*- coding: utf-8 -*-

# Copyright: Contributors to the cloudops.ecr_replication collection
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Fixtures for the seed generator tests: a throwaway docker-registry and moto's ECR in-process.

Ports 47100-47199 on 127.0.0.1 are reserved for these tests.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[3]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

PORT_RANGE = range(47100, 47200)
DOCKER_REGISTRY = shutil.which("docker-registry") or "/usr/bin/docker-registry"


def free_port(exclude: set[int] | None = None) -> int:
    """A port of our range that nothing listens on right now."""
    for port in PORT_RANGE:
        if exclude and port in exclude:
            continue
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port in 47100-47199")


class Registry:
    """A docker-registry (CNCF distribution 2.8) process with filesystem storage in a temp dir."""

    def __init__(self) -> None:
        # Registry storage is many tiny files; tmpfs makes creating and removing them cheap.
        shm = "/dev/shm" if os.access("/dev/shm", os.W_OK) else None
        self.dir = Path(tempfile.mkdtemp(prefix="seed-registry-", dir=shm))
        self.proc: subprocess.Popen[bytes] | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        if not os.access(DOCKER_REGISTRY, os.X_OK):
            pytest.fail("docker-registry is not installed (Debian package docker-registry; `make deps` installs it)")
        tried: set[int] = set()
        for _attempt in range(5):
            self.port = free_port(tried)
            tried.add(self.port)
            config = self.dir / "config.yml"
            config.write_text(
                "version: 0.1\n"
                "log:\n  level: error\n  accesslog:\n    disabled: true\n"
                f"storage:\n  filesystem:\n    rootdirectory: {self.dir / 'data'}\n  delete:\n    enabled: true\n"
                f"http:\n  addr: 127.0.0.1:{self.port}\n",
                encoding="utf-8",
            )
            log = open(self.dir / "registry.log", "ab")  # noqa: SIM115 - closed in stop()
            self.proc = subprocess.Popen(  # noqa: S603 - fixed argv
                [DOCKER_REGISTRY, "serve", str(config)], stdout=log, stderr=log, start_new_session=True
            )
            log.close()
            if self._wait_ready(timeout=15):
                return
            self.stop(keep_dir=True)
        pytest.fail(
            f"docker-registry did not start; log: {(self.dir / 'registry.log').read_text(errors='replace')[-2000:]}"
        )

    def _wait_ready(self, timeout: float) -> bool:
        import requests

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc is None or self.proc.poll() is not None:
                return False
            try:
                if requests.get(f"{self.url}/v2/", timeout=1).status_code == 200:
                    return True
            except requests.RequestException:
                pass
            time.sleep(0.05)
        return False

    def stop(self, keep_dir: bool = False) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)
        self.proc = None
        if not keep_dir:
            shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture
def unused_port() -> int:
    """A port of 47100-47199 nothing listens on."""
    return free_port()


@pytest.fixture(scope="module")
def registry_server():
    """A fresh, empty registry per test module."""
    server = Registry()
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def ecr_client():
    """moto's ECR in-process (source account, source region of the sandbox)."""
    import boto3
    from moto import mock_aws

    env = {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": "ap-south-1",
    }
    saved = {k: os.environ.get(k) for k in (*env, "AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_ECR")}
    os.environ.update(env)
    for key in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_ECR"):
        os.environ.pop(key, None)
    try:
        with mock_aws():
            yield boto3.client("ecr", region_name="ap-south-1")
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
