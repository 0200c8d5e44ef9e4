"""Starting and stopping the sandbox: clear messages instead of hangs."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest

from tests.sandbox import lifecycle
from tests.sandbox.config import REPO_ROOT
from tests.sandbox.config import SandboxConfig

pytestmark = pytest.mark.sandbox


def _cli(*args: str, directory, port: int, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "tests.sandbox", *args, "--dir", str(directory), "--base-port", str(port)],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=timeout,
        check=False,
    )


@pytest.fixture
def private_sandbox(tmp_path):
    config = SandboxConfig(tmp_path / "sbx", 26200)
    yield config
    lifecycle.stop(config)


def test_start_twice_reuses_and_stop_cleans_up(private_sandbox):
    config = private_sandbox
    first = _cli("start", "--profile", "none", directory=config.sandbox_dir, port=config.base_port)
    assert first.returncode == 0, first.stderr
    pid = lifecycle.running_pid(config)
    _unused, report = lifecycle.health(config)
    children = [r["backend_pid"] for r in report["registries"].values()]

    second = _cli("start", "--profile", "none", directory=config.sandbox_dir, port=config.base_port, timeout=20)
    assert second.returncode == 0
    assert "already running" in second.stdout
    assert lifecycle.running_pid(config) == pid

    env_text = config.env_file.read_text()
    assert "export AWS_ENDPOINT_URL=" in env_text and "SANDBOX_TARGET_ACCOUNT" in env_text
    assert oct(config.env_file.stat().st_mode & 0o777) == "0o600"

    stopped = _cli("stop", directory=config.sandbox_dir, port=config.base_port)
    assert "stopped" in stopped.stdout
    for child in [pid, *children]:
        with pytest.raises(ProcessLookupError):
            for _unused in range(50):
                os.kill(child, 0)
                time.sleep(0.1)


def test_port_in_use_gives_a_clear_message(private_sandbox):
    config = private_sandbox
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", config.base_port + 3))
        blocker.listen(1)
        result = _cli("start", "--profile", "none", directory=config.sandbox_dir, port=config.base_port, timeout=20)
    assert result.returncode == 1
    assert f"port(s) {config.base_port + 3}" in result.stderr
    assert "SANDBOX_BASE_PORT" in result.stderr
    assert "Traceback" not in result.stderr
    assert lifecycle.running_pid(config) is None


def test_a_crashed_registry_is_reported_not_hung(private_sandbox):
    config = private_sandbox
    lifecycle.start(config, "none")
    _unused, report = lifecycle.health(config)
    victim_key, victim = next(iter(report["registries"].items()))
    os.kill(victim["backend_pid"], signal.SIGKILL)
    deadline = time.time() + 10
    status = 200
    while time.time() < deadline and status == 200:
        status, report = lifecycle.health(config)
        time.sleep(0.1)
    assert status == 503
    assert report["registries"][victim_key]["alive"] is False
    # The registry front answers at once with a clear error instead of hanging.
    port = config.registries[0].proxy_port
    import ssl

    context = ssl.create_default_context(cafile=str(config.ca_bundle))
    started = time.time()
    with pytest.raises(urllib.error.HTTPError) as error:
        urllib.request.urlopen(f"https://127.0.0.1:{port}/v2/", context=context, timeout=5)
    assert error.value.code == 503
    assert "not running" in json.load(error.value)["errors"][0]["message"]
    assert time.time() - started < 5
    # Starting again names the problem.
    again = _cli("start", "--profile", "none", directory=config.sandbox_dir, port=config.base_port, timeout=20)
    assert again.returncode == 1 and "unhealthy" in again.stderr
