"""The sandbox process: moto (patched) + registry proxies + docker-registry children + CodeBuild.

Run in the foreground with ``python -m tests.sandbox serve``; ``python -m tests.sandbox start`` runs
it in the background. Everything binds to 127.0.0.1.
"""

from __future__ import annotations

import io
import json
import os
import re
import secrets
import signal
import ssl
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from .config import ACCOUNTS
from .config import ADMIN_USER
from .config import DEST_REGION
from .config import SOURCE_ACCOUNT
from .config import SOURCE_REGION
from .config import TARGET_ACCOUNT
from .config import TARGET_ADMIN_ROLE
from .config import SandboxConfig

# MOTO_ACCOUNT_ID would pin every request to one account (moto checks it before the access key).
os.environ.pop("MOTO_ACCOUNT_ID", None)
os.environ.setdefault("AWS_ACCESS_KEY_ID", "sandbox")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "sandbox")

from moto.core.exceptions import JsonRESTError  # noqa: E402
from moto.ecr.models import Repository  # noqa: E402
from moto.ecr.models import ecr_backends  # noqa: E402
import moto.iam.models  # noqa: E402
from moto.iam.models import get_account_id_from  # noqa: E402
from moto.iam.models import iam_backends  # noqa: E402
from moto.moto_server.werkzeug_app import DomainDispatcherApplication  # noqa: E402
from moto.moto_server.werkzeug_app import MotoRequestHandler  # noqa: E402
from moto.moto_server.werkzeug_app import create_backend_app  # noqa: E402
from moto.sts.models import sts_backends  # noqa: E402
from moto.sts.responses import TokenResponse  # noqa: E402
from werkzeug.serving import make_server  # noqa: E402

from . import kms  # noqa: E402
from . import policy  # noqa: E402
from .ecr import EcrApiError  # noqa: E402
from .ecr import EcrImageStore  # noqa: E402
from .ecr import TokenAuthority  # noqa: E402
from .faults import FaultInjector  # noqa: E402
from .faults import manifest_refs  # noqa: E402
from .registry_proxy import RegistryProxyServer  # noqa: E402
from .replication import BackendBlobCopier  # noqa: E402
from .replication import ReplicationService  # noqa: E402
from .trust import AssumeRoleDenied  # noqa: E402
from .trust import Caller  # noqa: E402
from .trust import check_assume_role  # noqa: E402
from .tls import ensure_certificates  # noqa: E402

# Unknown access keys act in the source account (moto's default would be 123456789012).
moto.iam.models.DEFAULT_ACCOUNT_ID = SOURCE_ACCOUNT

ECR_TARGET = "AmazonEC2ContainerRegistry_V20150921."
CODEBUILD_TARGET = "CodeBuild_20161006."
CREDENTIAL_RE = re.compile(r"Credential=([^/]+)/\d+/([^/]+)/([^/]+)/")


def caller_for_access_key(access_key: str) -> Caller:
    account = get_account_id_from(access_key)
    assumed = sts_backends[account]["aws"].get_assumed_role_from_access_key(access_key)
    if assumed:
        return Caller(arn=assumed.arn)
    user = iam_backends[account]["aws"].get_user_from_access_key_id(access_key)
    if user:
        return Caller(arn=user.arn)
    return Caller(arn=f"arn:aws:iam::{account}:root")


def restricted_role_policies(access_key: str) -> tuple[str, list[Any]] | None:
    """(caller ARN, identity policies) of an assumed role whose ECR calls the sandbox checks; None when it does
    not check the caller (see policy.py: users, roots, the target administrator role, sandbox:unrestricted)."""
    account = get_account_id_from(access_key)
    assumed = sts_backends[account]["aws"].get_assumed_role_from_access_key(access_key)
    if assumed is None:
        return None
    role_account, role_name = assumed.role_arn.split(":")[4], assumed.role_arn.split("/")[-1]
    if role_name == TARGET_ADMIN_ROLE:
        return None
    try:
        role = iam_backends[role_account]["aws"].get_role(role_name)
    except Exception:  # the role was deleted since: its sessions keep no permission
        return assumed.arn, []
    tags = role.tags if isinstance(role.tags, dict) else {t["Key"]: t["Value"] for t in role.tags or []}
    if policy.UNRESTRICTED_TAG in tags:
        return None
    documents: list[Any] = list(role.policies.values())
    for managed in role.managed_policies.values():
        documents.extend(v.document for v in managed.versions if v.is_default)
    return assumed.arn, documents


def _patch_sts() -> None:
    """Refuse AssumeRole unless the role exists and its trust policy allows the caller."""
    original = TokenResponse.assume_role

    def assume_role(self):
        role_arn = self._get_param("RoleArn")
        external_id = self._get_param("ExternalId")
        try:
            check_assume_role(role_arn, caller_for_access_key(self.get_access_key()), external_id)
        except AssumeRoleDenied as exc:
            from moto.sts.exceptions import STSClientError

            raise STSClientError("AccessDenied", str(exc))
        return original(self)

    TokenResponse.assume_role = assume_role


def _patch_repository_uri(config: SandboxConfig) -> None:
    """Repository URIs name the sandbox registry of that account and region, never amazonaws.com."""
    original_init = Repository.__init__

    def init(self, *args, **kwargs):
        original_init(self, *args, **kwargs)
        try:
            host = config.registry(self.registry_id, self.region_name).host
        except KeyError:
            return
        self.uri = f"{host}/{self.name}"

    Repository.__init__ = init


def _resource_policies(owner: str, region: str, repository: str | None) -> tuple[str | None, str | None]:
    """The registry policy of ``owner`` in ``region`` and the repository's policy, as moto stores them."""
    backend = ecr_backends[owner][region]
    repo = backend.repositories.get(repository) if repository else None
    return backend.registry_policy, (repo.policy if repo is not None else None)


class EcrRequest:
    """One signed ECR or CodeBuild API call: who makes it (account from the access key), where, and its JSON body
    (read once, put back for moto)."""

    KEY = "sandbox.ecr_request"

    def __init__(self, access_key: str, region: str, body: dict[str, Any]):
        self.access_key = access_key
        self.region = region
        self.body = body
        self.account = get_account_id_from(access_key)

    @classmethod
    def read(cls, environ) -> EcrRequest | None:
        match = CREDENTIAL_RE.search(environ.get("HTTP_AUTHORIZATION", ""))
        if not match:
            return None
        length = int(environ.get("CONTENT_LENGTH") or 0)
        raw = environ["wsgi.input"].read(length) if length else b""
        environ["wsgi.input"] = io.BytesIO(raw)
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            body = {}
        return cls(match.group(1), match.group(2), body if isinstance(body, dict) else {})

    def authorize(self, operation: str) -> str | None:
        """Raise policy.Denied when IAM would refuse the call: an assumed role's identity policies (policy.check),
        then the account boundary for every caller (policy.check_account_boundary). Returns the other account the
        call acts in when its registry or repository policy allows it, else None (the caller's own)."""
        restricted = restricted_role_policies(self.access_key)
        if restricted is not None:
            caller, documents = restricted
            policy.check(caller, documents, operation, self.body, self.account, self.region)
        return policy.check_account_boundary(
            lambda: caller_for_access_key(self.access_key).arn,
            operation,
            self.body,
            self.account,
            self.region,
            _resource_policies,
        )


class SandboxApp:
    """WSGI front of moto: ECR image operations and CodeBuild are served here, the rest by moto."""

    def __init__(
        self,
        config: SandboxConfig,
        store: EcrImageStore,
        codebuild: Any | None,
        status: dict[str, Any],
        replication: ReplicationService | None = None,
        faults: FaultInjector | None = None,
    ):
        self.config = config
        self.faults = faults or FaultInjector()
        self.store = store
        self.replication = replication
        self.codebuild = codebuild
        self.status = status
        self.moto = DomainDispatcherApplication(create_backend_app)

    def __call__(self, environ, start_response):
        path = environ.get("PATH_INFO", "")
        if path == "/_sandbox/health":
            return self._json(start_response, 200 if self.status["healthy"]() else 503, self.status["report"]())
        if path == "/_sandbox/codebuild" and self.codebuild is not None:
            return self._codebuild_settings(environ, start_response)
        if path == "/_sandbox/faults":
            return self._faults(environ, start_response)
        target = environ.get("HTTP_X_AMZ_TARGET", "")
        for prefix in (ECR_TARGET, CODEBUILD_TARGET):
            if target.startswith(prefix):
                # injected faults (faults.py) answer before anything else, as a throttled call never reaches the
                # service; the body is read so that the connection stays usable
                fault = self.faults.api_fault(target[len(prefix) :])
                if fault is not None:
                    length = int(environ.get("CONTENT_LENGTH") or 0)
                    environ["wsgi.input"].read(length) if length else None
                    return self._error(start_response, *fault)
        if target.startswith(ECR_TARGET):
            # moto would let this header choose the account; only the access key says whose call it is.
            environ.pop("HTTP_X_MOTO_ACCOUNT_ID", None)
            request = EcrRequest.read(environ)
            if request is not None:
                try:
                    owner = request.authorize(target[len(ECR_TARGET) :])
                except policy.Denied as exc:
                    if isinstance(exc, policy.CrossAccountDenied):
                        # in sandbox.log: which call crossed an account with the wrong credentials
                        print(f"sandbox: account boundary: {exc}", file=sys.stderr, flush=True)
                    return self._error(start_response, 400, "AccessDeniedException", str(exc))
                if owner is not None:
                    # allowed by the other registry's policies: the call acts there, for moto as for the store
                    request.account = owner
                    environ["HTTP_X_MOTO_ACCOUNT_ID"] = owner
                if target[len(ECR_TARGET) :] == "CreateRepository":
                    # a KMS key must exist there, and ECR's KMS calls on the caller's behalf be allowed (kms.py)
                    try:
                        body = kms.check_create_repository(
                            request.body, request.account, request.region, restricted_role_policies(request.access_key)
                        )
                    except kms.KmsError as exc:
                        return self._error(start_response, exc.status, exc.code, exc.message)
                    if body is not None:
                        raw = json.dumps(body).encode()
                        request.body = body
                        environ["wsgi.input"] = io.BytesIO(raw)
                        environ["CONTENT_LENGTH"] = str(len(raw))
                environ[EcrRequest.KEY] = request
        if (
            self.replication is not None
            and target.startswith(ECR_TARGET)
            and target[len(ECR_TARGET) :] in ReplicationService.OPERATIONS
        ):
            return self._call(environ, start_response, target[len(ECR_TARGET) :], self.replication.handle)
        if target.startswith(ECR_TARGET) and target[len(ECR_TARGET) :] in EcrImageStore.OPERATIONS:
            return self._call(environ, start_response, target[len(ECR_TARGET) :], self.store.handle)
        if target.startswith(CODEBUILD_TARGET):
            if self.codebuild is None:
                return self._error(start_response, 501, "NotImplemented", "the sandbox CodeBuild is not available")
            request = EcrRequest.read(environ)
            if request is not None:
                restricted = restricted_role_policies(request.access_key)
                if restricted is not None:
                    try:
                        policy.check_codebuild(
                            restricted[0], restricted[1], target[len(CODEBUILD_TARGET) :], request.body,
                            request.account, request.region,
                        )
                    except policy.Denied as exc:
                        return self._error(start_response, 400, "AccessDeniedException", str(exc))
                environ[EcrRequest.KEY] = request
            return self._call(environ, start_response, target[len(CODEBUILD_TARGET) :], self._codebuild)
        return self.moto(environ, start_response)

    CODEBUILD_SETTINGS = ("provisioning_seconds", "account_quota", "queue_limit", "minute_seconds")

    def _codebuild_settings(self, environ, start_response):
        """GET: the sandbox CodeBuild's tunables; POST {name: value}: change them for the builds started from now
        (a test that needs builds held in the queue, say, without a sandbox of its own). Answers the old values."""
        ctx = self.codebuild.ctx
        current = {name: getattr(ctx, name) for name in self.CODEBUILD_SETTINGS}
        if environ.get("REQUEST_METHOD") == "POST":
            length = int(environ.get("CONTENT_LENGTH") or 0)
            try:
                changes = json.loads(environ["wsgi.input"].read(length) or b"{}")
                unknown = sorted(set(changes) - set(self.CODEBUILD_SETTINGS))
                if unknown:
                    raise ValueError(f"unknown settings {unknown}")
                for name, value in changes.items():
                    setattr(ctx, name, type(current[name])(value))
            except (ValueError, TypeError) as exc:
                return self._error(start_response, 400, "InvalidParameter", str(exc))
            self.codebuild.wake.set()
        return self._json(start_response, 200, current)

    def _faults(self, environ, start_response):
        """GET: the fault configuration, what was injected, the calls of faulted operations and the registry write
        journal; POST {settings}: replace the configuration (``{}``: every fault off) and reset the counts."""
        if environ.get("REQUEST_METHOD") == "POST":
            length = int(environ.get("CONTENT_LENGTH") or 0)
            try:
                self.faults.configure(json.loads(environ["wsgi.input"].read(length) or b"{}"))
            except (ValueError, TypeError) as exc:  # FaultConfigError is a ValueError
                return self._error(start_response, 400, "InvalidParameter", str(exc))
            if self.codebuild is not None:
                self.codebuild.wake.set()
        return self._json(start_response, 200, self.faults.snapshot())

    def _codebuild(self, operation: str, account: str, region: str, body: dict[str, Any]) -> dict[str, Any]:
        return self.codebuild.handle(operation, body, account, region)

    def _call(self, environ, start_response, operation, handler):
        auth = environ.get("HTTP_AUTHORIZATION", "")
        match = CREDENTIAL_RE.search(auth)
        if not match:
            return self._error(start_response, 403, "MissingAuthenticationTokenException", "Missing Authentication Token")
        request = environ.get(EcrRequest.KEY)
        try:
            if request is not None:
                account, region, body = request.account, request.region, request.body
            else:
                access_key, region = match.group(1), match.group(2)
                account = get_account_id_from(access_key)
                length = int(environ.get("CONTENT_LENGTH") or 0)
                body = json.loads((environ["wsgi.input"].read(length) if length else b"{}") or b"{}")
            return self._json(start_response, 200, handler(operation, account, region, body))
        except EcrApiError as exc:
            return self._error(start_response, exc.status, exc.code, exc.message)
        except JsonRESTError as exc:
            return self._error(start_response, exc.code, exc.error_type, exc.message)
        except Exception as exc:  # the CodeBuild service raises its own error type
            code = getattr(exc, "code", None)
            if isinstance(code, str):
                return self._error(start_response, getattr(exc, "status", 400), code, getattr(exc, "message", str(exc)))
            raise

    @staticmethod
    def _json(start_response, status: int, payload: Any):
        body = json.dumps(payload, default=str).encode()
        start_response(
            f"{status} {'OK' if status < 400 else 'Error'}",
            [("Content-Type", "application/x-amz-json-1.1"), ("Content-Length", str(len(body)))],
        )
        return [body]

    def _error(self, start_response, status: int, code: str, message: str):
        body = json.dumps({"__type": code, "message": message}).encode()
        start_response(
            f"{status} Error",
            [
                ("Content-Type", "application/x-amz-json-1.1"),
                ("x-amzn-ErrorType", code),
                ("Content-Length", str(len(body))),
            ],
        )
        return [body]


class RegistryProcess:
    """One Debian docker-registry (CNCF distribution) holding the blobs of one account+region."""

    def __init__(self, config: SandboxConfig, endpoint):
        self.endpoint = endpoint
        self.root = config.sandbox_dir / "registries" / endpoint.key
        self.config_file = self.root / "config.yml"
        self.log_file = self.root / "registry.log"
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        (self.root / "data").mkdir(parents=True, exist_ok=True)
        self.config_file.write_text(
            json.dumps(
                {
                    "version": 0.1,
                    "log": {"level": "warn", "accesslog": {"disabled": True}},
                    "storage": {"filesystem": {"rootdirectory": str(self.root / "data")}, "delete": {"enabled": True}},
                    "http": {"addr": f"127.0.0.1:{self.endpoint.backend_port}", "relativeurls": True},
                    "validation": {"disabled": False},
                }
            )
        )
        log = open(self.log_file, "ab")
        # distribution reads REGISTRY_* variables as configuration overrides; REGISTRY_AUTH_FILE (skopeo's)
        # from a sourced .sandbox/env would break it.
        env = {key: value for key, value in os.environ.items() if not key.startswith("REGISTRY_")}
        env["REGISTRY_HTTP_SECRET"] = secrets.token_hex(16)
        self.process = subprocess.Popen(
            ["docker-registry", "serve", str(self.config_file)],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
        )

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)


def _wait_for_port(port: int, alive, timeout: float = 20) -> None:
    import socket

    deadline = time.time() + timeout
    while time.time() < deadline:
        if not alive():
            raise RuntimeError(f"process for 127.0.0.1:{port} exited during start-up")
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port} after {timeout}s")


def _bootstrap_accounts(config: SandboxConfig) -> dict[str, str]:
    """The admin user of the source account and the role that reaches the target account."""
    iam = iam_backends[SOURCE_ACCOUNT]["aws"]
    iam.create_user("us-east-1", ADMIN_USER, path="/", tags=[])
    key = iam.create_access_key(ADMIN_USER)
    for account in ACCOUNTS:
        if account == SOURCE_ACCOUNT:
            continue
        trust = {
            "Version": "2012-10-17",
            "Statement": [
                {"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{SOURCE_ACCOUNT}:root"}, "Action": "sts:AssumeRole"}
            ],
        }
        iam_backends[account]["aws"].create_role(
            role_name=TARGET_ADMIN_ROLE,
            assume_role_policy_document=json.dumps(trust),
            path="/",
            permissions_boundary=None,
            description="Sandbox administrator of the target account",
            tags=[],
            max_session_duration="3600",
            linked_service=None,
        )
    return {"AccessKeyId": key.access_key_id, "SecretAccessKey": key.secret_access_key}


class CodeBuildContext:
    """What the sandbox CodeBuild needs from the sandbox (see tests/sandbox/codebuild.py)."""

    def __init__(self, config: SandboxConfig, faults: FaultInjector | None = None):
        self.config = config
        self.faults = faults
        self.sandbox_dir = config.sandbox_dir
        self.minute_seconds = float(os.environ.get("SANDBOX_CODEBUILD_MINUTE_SECONDS", "60"))
        self.provisioning_seconds = float(os.environ.get("SANDBOX_CODEBUILD_PROVISIONING_SECONDS", "0"))
        self.account_quota = int(os.environ.get("SANDBOX_CODEBUILD_CONCURRENCY", "3"))
        self.queue_limit = int(os.environ.get("SANDBOX_CODEBUILD_QUEUE_LIMIT", "100"))
        self.base_env = {
            "AWS_ENDPOINT_URL": config.endpoint_url,
            "SSL_CERT_FILE": str(config.ca_bundle),
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(config.sandbox_dir / "codebuild-home"),
            "LANG": "C.UTF-8",
        }
        # A build image has the AWS CLI on its PATH: the venv's bin dir provides it here.
        venv_bin = str(Path(sys.executable).parent)
        if venv_bin not in self.base_env["PATH"].split(":"):
            self.base_env["PATH"] = venv_bin + ":" + self.base_env["PATH"]

    def assume_role(
        self,
        role_arn: str,
        session_name: str,
        principal_service: str = "codebuild.amazonaws.com",
        source_arn: str | None = None,
    ):
        role_account = role_arn.split(":")[4] if role_arn.count(":") >= 5 else ""
        # As the real service does, CodeBuild says on whose behalf it assumes the role (confused deputy).
        source_account = source_arn.split(":")[4] if source_arn else role_account
        try:
            check_assume_role(
                role_arn, Caller(service=principal_service), None, source_account=source_account, source_arn=source_arn
            )
        except AssumeRoleDenied as exc:
            raise PermissionError(str(exc)) from exc
        role = sts_backends[role_account]["aws"].assume_role(
            region_name="us-east-1",
            role_session_name=session_name[:64],
            role_arn=role_arn,
            policy=None,
            duration=3600,
            external_id=None,
        )
        return {"AccessKeyId": role.access_key_id, "SecretAccessKey": role.secret_access_key, "SessionToken": role.session_token}


def write_client_files(config: SandboxConfig) -> None:
    """The AWS config with the `target` profile."""
    target_role = f"arn:aws:iam::{ACCOUNTS[1]}:role/{TARGET_ADMIN_ROLE}"
    config.aws_config_file.write_text(
        "[default]\nregion = ap-south-1\n\n"
        f"[profile target]\nrole_arn = {target_role}\ncredential_source = Environment\nregion = ap-northeast-2\n\n"
        "[profile source]\ncredential_source = Environment\nregion = ap-south-1\n"
    )


def serve(config: SandboxConfig, verbose: bool = False) -> None:
    config.sandbox_dir.mkdir(parents=True, exist_ok=True)
    write_client_files(config)
    _patch_sts()
    _patch_repository_uri(config)
    kms.patch_kms()

    registries = {endpoint.key: RegistryProcess(config, endpoint) for endpoint in config.registries}
    stopping = threading.Event()

    def shutdown(*_args) -> None:
        stopping.set()

    signal.signal(signal.SIGTERM, shutdown)
    signal.signal(signal.SIGINT, shutdown)

    def blob_exists(account: str, region: str, name: str, digest: str) -> bool:
        proxy = proxies[f"{account}-{region}"]
        status, _unused, _unused = proxy.backend_request("HEAD", f"/v2/{name}/blobs/{digest}")
        return status == 200

    def manifest_to_registry(account, region, name, digest, manifest, media_type) -> None:
        proxy = proxies[f"{account}-{region}"]
        status, _unused, body = proxy.backend_request(
            "PUT", f"/v2/{name}/manifests/{digest}", manifest, {"Content-Type": media_type}
        )
        if status not in (200, 201):
            raise EcrApiError("LayersNotFoundException", f"the registry refused the manifest: {body[:300]!r}")

    tokens = TokenAuthority()
    # "source"/"target" in a fault configuration name the registries of the source and destination regions
    faults = FaultInjector(
        aliases={
            "source": config.registry(SOURCE_ACCOUNT, SOURCE_REGION).key,
            "target": config.registry(TARGET_ACCOUNT, DEST_REGION).key,
        }
    )
    faults.token_authority = tokens
    store = EcrImageStore(
        blob_exists=blob_exists,
        manifest_to_registry=manifest_to_registry,
        tokens=tokens,
        proxy_endpoint_for=lambda account, region: config.registry(account, region).proxy_endpoint,
    )
    # PutImage calls go into the fault journal beside the registry pushes (the order of tag writes is checked there)
    put_image = store.api_put_image

    def journaled_put_image(account: str, region: str, body: dict[str, Any]) -> dict[str, Any]:
        answer = put_image(account, region, body)
        image_id = answer["image"]["imageId"]
        faults.record(
            f"{account}-{region}", "manifest", "put_image", body.get("repositoryName"), image_id["imageDigest"],
            image_id.get("imageTag"), manifest_refs(json.loads(body["imageManifest"])),
        )
        return answer

    store.api_put_image = journaled_put_image
    # ECR's own replication (rules, pushes replicated after a delay, backfills), copying between the real registries.
    replication = ReplicationService(store, copy_blobs=BackendBlobCopier(config))
    cert_file, key_file, _bundle = ensure_certificates(config.tls_dir)
    ssl_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ssl_context.load_cert_chain(cert_file, key_file)
    proxies: dict[str, RegistryProxyServer] = {}
    codebuild = None
    try:
        for process in registries.values():
            process.start()
        for key, process in registries.items():
            _wait_for_port(process.endpoint.backend_port, process.alive)
            proxies[key] = RegistryProxyServer(
                process.endpoint, store, process.alive, ssl_context, verbose=verbose, faults=faults
            )
            proxies[key].serve_in_thread()

        credentials = _bootstrap_accounts(config)
        config.credentials_file.touch(mode=0o600)
        config.credentials_file.write_text(json.dumps(credentials))

        try:
            from .codebuild import CodeBuildService

            codebuild = CodeBuildService(CodeBuildContext(config, faults))
        except ImportError as exc:
            print(f"sandbox: CodeBuild emulator not available ({exc})", file=sys.stderr)

        def report() -> dict[str, Any]:
            return {
                "pid": os.getpid(),
                "endpoint": config.endpoint_url,
                "codebuild": codebuild is not None,
                "registries": {
                    key: {
                        "endpoint": p.endpoint.proxy_endpoint,
                        "backend_pid": p.process.pid if p.process else None,
                        "alive": p.alive(),
                    }
                    for key, p in registries.items()
                },
            }

        status = {"healthy": lambda: all(p.alive() for p in registries.values()), "report": report}
        app = SandboxApp(config, store, codebuild, status, replication, faults)
        replication.start()
        http_server = make_server("127.0.0.1", config.base_port, app, threaded=True, request_handler=MotoRequestHandler)
        threading.Thread(target=http_server.serve_forever, name="aws-endpoint", daemon=True).start()
        print(f"sandbox: AWS endpoint {config.endpoint_url}; registries " + ", ".join(
            f"{e.key}={e.proxy_endpoint}" for e in config.registries), flush=True)
        while not stopping.wait(0.5):
            for key, process in registries.items():
                if not process.alive() and not getattr(process, "reported", False):
                    process.reported = True
                    print(f"sandbox: registry {key} (pid {process.process.pid}) exited", file=sys.stderr, flush=True)
        http_server.shutdown()
    finally:
        replication.shutdown()
        if codebuild is not None:
            codebuild.shutdown()
        for proxy in proxies.values():
            proxy.shutdown()
        for process in registries.values():
            process.stop()
        config.credentials_file.unlink(missing_ok=True)
