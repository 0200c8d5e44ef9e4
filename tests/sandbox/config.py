"""Fixed layout of the sandbox: accounts, regions, ports, files."""

from __future__ import annotations

import os
from dataclasses import dataclass
from dataclasses import field
from pathlib import Path

SOURCE_ACCOUNT = "111111111111"
TARGET_ACCOUNT = "222222222222"
SOURCE_REGION = "ap-south-1"
DEST_REGION = "ap-northeast-2"
ACCOUNTS = (SOURCE_ACCOUNT, TARGET_ACCOUNT)
REGIONS = (SOURCE_REGION, DEST_REGION)
ADMIN_USER = "sandbox-admin"
TARGET_ADMIN_ROLE = "SandboxTargetAdmin"
# Below the kernel's ephemeral range (32768-60999), so outgoing connections never hold our ports.
DEFAULT_BASE_PORT = 25000
REPO_ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class RegistryEndpoint:
    account: str
    region: str
    proxy_port: int
    backend_port: int

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.proxy_port}"

    @property
    def proxy_endpoint(self) -> str:
        # HTTPS with the sandbox CA (SSL_CERT_FILE in .sandbox/env), like ECR's https://<registry> endpoints.
        return f"https://{self.host}"

    @property
    def key(self) -> str:
        return f"{self.account}-{self.region}"


@dataclass
class SandboxConfig:
    sandbox_dir: Path
    base_port: int = DEFAULT_BASE_PORT
    registries: list[RegistryEndpoint] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.sandbox_dir = Path(self.sandbox_dir).resolve()
        if not self.registries:
            index = 0
            for account in ACCOUNTS:
                for region in REGIONS:
                    index += 1
                    self.registries.append(
                        RegistryEndpoint(account, region, self.base_port + index, self.base_port + 10 + index)
                    )

    @classmethod
    def from_env(cls, sandbox_dir: str | os.PathLike | None = None, base_port: int | None = None) -> "SandboxConfig":
        directory = sandbox_dir or os.environ.get("SANDBOX_DIR") or (REPO_ROOT / ".sandbox")
        port = base_port or int(os.environ.get("SANDBOX_BASE_PORT", DEFAULT_BASE_PORT))
        return cls(Path(directory), port)

    @property
    def endpoint_url(self) -> str:
        return f"http://127.0.0.1:{self.base_port}"

    @property
    def all_ports(self) -> list[int]:
        return [self.base_port] + [r.proxy_port for r in self.registries] + [r.backend_port for r in self.registries]

    def registry(self, account: str, region: str) -> RegistryEndpoint:
        for endpoint in self.registries:
            if endpoint.account == account and endpoint.region == region:
                return endpoint
        raise KeyError(f"the sandbox has no registry for account {account} in {region}")

    def registry_for_port(self, port: int) -> RegistryEndpoint:
        for endpoint in self.registries:
            if endpoint.proxy_port == port:
                return endpoint
        raise KeyError(port)

    # files
    @property
    def pid_file(self) -> Path:
        return self.sandbox_dir / "sandbox.pid"

    @property
    def log_file(self) -> Path:
        return self.sandbox_dir / "sandbox.log"

    @property
    def env_file(self) -> Path:
        return self.sandbox_dir / "env"

    @property
    def aws_config_file(self) -> Path:
        return self.sandbox_dir / "aws_config"

    @property
    def tls_dir(self) -> Path:
        return self.sandbox_dir / "tls"

    @property
    def ca_bundle(self) -> Path:
        return self.tls_dir / "ca-bundle.pem"

    @property
    def credentials_file(self) -> Path:
        # Written by the server (mode 0600) so `start` can hand the dummy admin keys to .sandbox/env.
        return self.sandbox_dir / "admin-credentials.json"

    def catalog_file(self, profile: str) -> Path:
        return self.sandbox_dir / f"catalog-{profile}.json"
