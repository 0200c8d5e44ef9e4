"""Start, seed and stop the sandbox in the background; write `.sandbox/env`."""

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
from pathlib import Path
from typing import Any

from .config import DEST_REGION
from .config import REPO_ROOT
from .config import SOURCE_ACCOUNT
from .config import SOURCE_REGION
from .config import TARGET_ACCOUNT
from .config import TARGET_ADMIN_ROLE
from .config import SandboxConfig

REQUIRED_COMMANDS = {"docker-registry": "docker-registry", "skopeo": "skopeo"}


class SandboxError(RuntimeError):
    pass


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def running_pid(config: SandboxConfig) -> int | None:
    try:
        pid = int(config.pid_file.read_text().strip())
    except (FileNotFoundError, ValueError):
        return None
    return pid if _pid_alive(pid) else None


def health(config: SandboxConfig, timeout: float = 2) -> tuple[int, dict[str, Any]]:
    try:
        with urllib.request.urlopen(f"{config.endpoint_url}/_sandbox/health", timeout=timeout) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as exc:
        return exc.code, json.load(exc)


def port_in_use(port: int) -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return True
    return False


def free_base_port(start: int, step: int = 50, attempts: int = 40) -> int:
    """The first base port from `start` on whose whole block of sandbox ports is free."""
    for base in range(start, start + step * attempts, step):
        if not any(port_in_use(port) for port in SandboxConfig(Path("/nonexistent"), base).all_ports):
            return base
    raise SandboxError(f"no free block of sandbox ports between {start} and {start + step * attempts}")


def check_prerequisites() -> None:
    from shutil import which

    missing = [pkg for cmd, pkg in REQUIRED_COMMANDS.items() if which(cmd) is None]
    if missing:
        raise SandboxError(
            f"missing Debian packages: {' '.join(missing)} (run `make deps` as root, or sudo apt-get install {' '.join(missing)})"
        )


def start(config: SandboxConfig, profile: str = "small", timeout: float = 60) -> dict[str, str]:
    check_prerequisites()
    pid = running_pid(config)
    if pid:
        status, report = health(config)
        if status != 200:
            raise SandboxError(
                f"a sandbox is running (pid {pid}) but is unhealthy: {json.dumps(report)}; run `make sandbox-down` first"
            )
        print(f"sandbox: already running (pid {pid}) at {config.endpoint_url}; reusing it")
        env = write_env(config)
        if profile != "none" and not config.catalog_file(profile).exists():
            seed(config, profile, env)
        return env
    busy = [port for port in config.all_ports if port_in_use(port)]
    if busy:
        raise SandboxError(
            f"port(s) {', '.join(map(str, busy))} on 127.0.0.1 are already in use by another process; "
            "stop it or choose other ports with SANDBOX_BASE_PORT=<port>"
        )
    config.sandbox_dir.mkdir(parents=True, exist_ok=True)
    for stale in config.sandbox_dir.glob("catalog-*.json"):
        stale.unlink()
    log = open(config.log_file, "ab")
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.sandbox", "serve", "--dir", str(config.sandbox_dir), "--base-port", str(config.base_port)],
        cwd=str(REPO_ROOT),
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )
    config.pid_file.write_text(str(process.pid))
    deadline = time.time() + timeout
    while True:
        if process.poll() is not None:
            config.pid_file.unlink(missing_ok=True)
            raise SandboxError(f"the sandbox exited during start-up; see {config.log_file}:\n{_tail(config.log_file)}")
        try:
            status, report = health(config, timeout=1)
            if status == 200:
                break
        except (urllib.error.URLError, ConnectionError, OSError):
            pass
        if time.time() > deadline:
            stop(config)
            raise SandboxError(f"the sandbox did not become healthy in {timeout}s; see {config.log_file}")
        time.sleep(0.1)
    env = write_env(config)
    if profile != "none":
        seed(config, profile, env)
    return env


def _tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return ""


def stop(config: SandboxConfig, timeout: float = 15) -> bool:
    pid = running_pid(config)
    if not pid:
        config.pid_file.unlink(missing_ok=True)
        return False
    os.kill(pid, signal.SIGTERM)
    deadline = time.time() + timeout
    while _pid_alive(pid) and time.time() < deadline:
        try:
            os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            pass
        time.sleep(0.1)
    if _pid_alive(pid):
        os.killpg(pid, signal.SIGKILL)
    config.pid_file.unlink(missing_ok=True)
    return True


def sandbox_env(config: SandboxConfig) -> dict[str, str]:
    credentials = json.loads(config.credentials_file.read_text())
    return {
        "AWS_ENDPOINT_URL": config.endpoint_url,
        "AWS_ACCESS_KEY_ID": credentials["AccessKeyId"],
        "AWS_SECRET_ACCESS_KEY": credentials["SecretAccessKey"],
        "AWS_DEFAULT_REGION": SOURCE_REGION,
        "AWS_REGION": SOURCE_REGION,
        "AWS_CONFIG_FILE": str(config.aws_config_file),
        "AWS_SHARED_CREDENTIALS_FILE": str(config.sandbox_dir / "no-credentials-file"),
        "SSL_CERT_FILE": str(config.ca_bundle),
        "REQUESTS_CA_BUNDLE": str(config.ca_bundle),
        "REGISTRY_AUTH_FILE": str(config.sandbox_dir / "containers-auth.json"),
        "SANDBOX_DIR": str(config.sandbox_dir),
        "SANDBOX_BASE_PORT": str(config.base_port),
        "SANDBOX_SOURCE_ACCOUNT": SOURCE_ACCOUNT,
        "SANDBOX_TARGET_ACCOUNT": TARGET_ACCOUNT,
        "SANDBOX_SOURCE_REGION": SOURCE_REGION,
        "SANDBOX_DEST_REGION": DEST_REGION,
        "SANDBOX_TARGET_ADMIN_ROLE_ARN": f"arn:aws:iam::{TARGET_ACCOUNT}:role/{TARGET_ADMIN_ROLE}",
        # The ExternalId shared by provision.yml and replicate.yml (what they read by default). Reading the
        # destination goes through the read role provision.yml creates, as it would against AWS.
        "ECR_REPLICATION_EXTERNAL_ID": "sandbox-external-id-0001",
    }


def write_env(config: SandboxConfig) -> dict[str, str]:
    env = sandbox_env(config)
    header = (
        "# Generated by `make sandbox`. Source it: the AWS CLI, boto3, Ansible and skopeo then use the sandbox.\n"
        "# Source account (111111111111) by default; `AWS_PROFILE=target` acts in the target account.\n"
    )
    body = "".join(f"export {key}={json.dumps(value)}\n" for key, value in env.items())
    # The project's tools and the collection, so that `ansible-playbook playbooks/replicate.yml ...` works as typed.
    body += (
        f'export PATH="{REPO_ROOT / ".venv" / "bin"}:$PATH"\n'
        f'export ANSIBLE_COLLECTIONS_PATH="{REPO_ROOT / ".ansible" / "collections"}"\n'
        f'export ANSIBLE_LOCAL_TEMP="{REPO_ROOT / ".ansible" / "tmp"}"\n'
    )
    config.env_file.touch(mode=0o600)
    config.env_file.write_text(header + body)
    return env


def seed(config: SandboxConfig, profile: str, env: dict[str, str]) -> dict[str, Any]:
    import boto3

    from .seed import RegistryClient
    from .seed import build_catalog
    from .seed import push_catalog

    session = boto3.Session(
        aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
        region_name=SOURCE_REGION,
    )
    ecr = session.client("ecr", endpoint_url=env["AWS_ENDPOINT_URL"])
    auth = ecr.get_authorization_token()["authorizationData"][0]
    import base64

    user, _unused, password = base64.b64decode(auth["authorizationToken"]).decode().partition(":")
    started = time.time()
    # Verify the registry against this sandbox's CA; never through os.environ, which other sandboxes
    # started in the same process (tests) would then share.
    registry = RegistryClient(auth["proxyEndpoint"], user, password, verify=env["REQUESTS_CA_BUNDLE"])
    try:
        catalog = push_catalog(build_catalog(profile), ecr, registry)
    except Exception as exc:
        raise SandboxError(f"seeding the {profile} catalog failed: {exc}") from exc
    catalog.setdefault("seconds", round(time.time() - started, 2))
    config.catalog_file(profile).write_text(json.dumps(catalog, indent=1, sort_keys=True))
    print(
        f"sandbox: seeded profile {profile}: {len(catalog.get('repositories', []))} repositories, "
        f"{len(catalog.get('images', []))} images in {time.time() - started:.1f}s"
    )
    return catalog
