"""The ECR face of a CNCF distribution registry.

Each account+region has a Debian ``docker-registry`` holding the blobs, behind this proxy, which adds
what ECR does and distribution does not:

- HTTP Basic ``AWS:<token>`` from ``GetAuthorizationToken`` of that account and region, or 401;
- a repository must exist in the ECR API (``NAME_UNKNOWN`` otherwise), for pulls and pushes;
- manifests are recorded in the ECR API before the push returns, and served from it, so
  ``DescribeImages`` is consistent at once and ``PutImage``/``BatchDeleteImage`` change what is served;
- moving a tag in an IMMUTABLE repository is refused;
- the OCI referrers API (``/v2/<name>/referrers/<digest>``), which distribution 2.8 lacks.
Blob traffic is streamed through unchanged.

For the benchmarks (``make bench``), ``GET /_sandbox/stats`` (no auth, 127.0.0.1 only, no secrets) returns what went
through this registry since the start or the last ``POST /_sandbox/stats/reset``: blob bytes read (GET bodies) and
written (PUT/PATCH/POST bodies), blob requests by method, and the manifest writes of this account+region, whether
pushed through the registry or by the ``PutImage`` API (ECR's 10 TPS limit covers both): count, the most in any
window of one second, and the most in one calendar second.

``SANDBOX_PUT_IMAGE_TPS`` (read at start; default 0: off), or ``POST /_sandbox/stats/limit?tps=N`` at run time,
throttles manifest writes per account+region as ECR does (``PutImage`` 10 TPS): a token bucket of that rate and
burst; a registry push over it gets ``429 TOOMANYREQUESTS``, a ``PutImage`` call ``ThrottlingException``. Off by
default so that tests and seeding are not slowed; ``make bench`` sets 10 on the destination once seeding is done.

Faults (``tests/sandbox/faults.py``, switched by ``POST /_sandbox/faults`` on the control plane): blob requests
answered 5xx, cut mid-blob by a TCP reset, or delayed; a registry that answers 503 to everything. Every blob and
manifest write (and "already there" answer) goes into the fault journal, in the order this proxy saw it.
"""

from __future__ import annotations

import base64
import http.client
import json
import re
import socket
import ssl
import os
import struct
import threading
import time
from http.server import BaseHTTPRequestHandler
from http.server import ThreadingHTTPServer
from typing import Callable
from urllib.parse import parse_qs
from urllib.parse import urlsplit

from .config import RegistryEndpoint
from .ecr import EcrApiError
from .ecr import EXPIRED
from .ecr import EcrImageStore
from .faults import EXPIRED_TOKEN_MESSAGE
from .faults import FaultInjector
from .faults import manifest_refs

MANIFEST_RE = re.compile(r"^/v2/(?P<name>.+)/manifests/(?P<ref>[^/]+)$")
BLOB_RE = re.compile(r"^/v2/(?P<name>.+)/blobs/(?P<rest>.+)$")
TAGS_RE = re.compile(r"^/v2/(?P<name>.+)/tags/list$")
REFERRERS_RE = re.compile(r"^/v2/(?P<name>.+)/referrers/(?P<digest>[^/]+)$")
HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade", "proxy-authorization"}
CHUNK = 1024 * 1024
STATS_PATH = "/_sandbox/stats"


class RegistryStats:
    """Traffic counters of one registry proxy; manifest writes come from the shared store (``watch_puts``)."""

    def __init__(self, account: str, region: str) -> None:
        self.account, self.region = account, region
        self.lock = threading.Lock()
        self.limit = float(os.environ.get("SANDBOX_PUT_IMAGE_TPS") or 0)
        self.tokens, self.refilled = self.limit, time.monotonic()
        self.reset()

    def set_limit(self, tps: float) -> None:
        with self.lock:
            self.limit, self.tokens, self.refilled = tps, tps, time.monotonic()

    def throttled(self) -> bool:
        """Whether one more manifest write now is over SANDBOX_PUT_IMAGE_TPS (it is then counted, not done)."""
        if self.limit <= 0:
            return False
        with self.lock:
            now = time.monotonic()
            self.tokens = min(self.limit, self.tokens + (now - self.refilled) * self.limit)
            self.refilled = now
            if self.tokens >= 1:
                self.tokens -= 1
                return False
            self.throttled_puts += 1
            return True

    def reset(self) -> None:
        with self.lock:
            self.bytes_read = self.bytes_written = 0
            self.requests: dict[str, int] = {}
            self.puts: list[float] = []
            self.throttled_puts = 0
            self.started = time.time()

    def add(self, method: str | None = None, read: int = 0, written: int = 0) -> None:
        with self.lock:
            if method:
                self.requests[method] = self.requests.get(method, 0) + 1
            self.bytes_read += read
            self.bytes_written += written

    def put(self) -> None:
        with self.lock:
            self.puts.append(time.time())

    def snapshot(self) -> dict:
        with self.lock:
            peak, first = 0, 0
            for last, when in enumerate(self.puts):  # the most writes in any window of one second
                while when - self.puts[first] >= 1.0:
                    first += 1
                peak = max(peak, last - first + 1)
            seconds: dict[int, int] = {}
            for when in self.puts:
                seconds[int(when)] = seconds.get(int(when), 0) + 1
            return {"account": self.account, "region": self.region, "since": self.started,
                    "blob_bytes_read": self.bytes_read, "blob_bytes_written": self.bytes_written,
                    "blob_requests": dict(self.requests), "manifest_puts": len(self.puts),
                    "manifest_puts_peak_per_second": peak,
                    "manifest_puts_peak_per_calendar_second": max(seconds.values(), default=0),
                    "manifest_puts_throttled": self.throttled_puts, "put_image_tps_limit": self.limit}


def watch_puts(store: EcrImageStore, stats: "RegistryStats") -> None:
    """Count every manifest write of ``stats``' account+region (registry push or PutImage API) in ``stats``."""
    watchers = getattr(store, "_sandbox_put_watchers", None)
    if watchers is None:
        watchers = store._sandbox_put_watchers = {}
        put = store.put

        def counted(account, region, *args, **kwargs):
            watcher = watchers.get((account, region))
            if watcher is not None:
                # a registry push was checked by the proxy before it reached distribution
                if not kwargs.get("via_registry") and watcher.throttled():
                    raise EcrApiError("ThrottlingException", "Rate exceeded")
                watcher.put()
            return put(account, region, *args, **kwargs)

        store.put = counted
    watchers[(stats.account, stats.region)] = stats


class RegistryProxyHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body are separate writes: with Nagle's algorithm on, the body waits 40 ms for the client's delayed
    # ACK of the headers (call_counter.py has the same).
    disable_nagle_algorithm = True
    server: "RegistryProxyServer"

    def handle(self) -> None:
        if isinstance(self.connection, ssl.SSLSocket):
            try:
                self.connection.do_handshake()
            except (ssl.SSLError, OSError):  # a client that left or spoke plain HTTP: nothing to answer, as before
                return
        super().handle()

    def log_message(self, format: str, *args) -> None:  # noqa: A002 - signature fixed by the base class
        if self.server.verbose:
            super().log_message(format, *args)

    # -- responses ---------------------------------------------------------
    def _send(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None, head: bool = False) -> None:
        self.send_response(status)
        headers = dict(headers or {})
        headers.setdefault("Docker-Distribution-API-Version", "registry/2.0")
        headers["Content-Length"] = str(len(body))
        for key, value in headers.items():
            self.send_header(key, value)
        self.end_headers()
        if body and not head:
            self.wfile.write(body)

    def _error(self, status: int, code: str, message: str, extra: dict[str, str] | None = None) -> None:
        body = json.dumps({"errors": [{"code": code, "message": message, "detail": None}]}).encode()
        headers = {"Content-Type": "application/json; charset=utf-8", **(extra or {})}
        self._drain()
        self._send(status, body, headers, head=self.command == "HEAD")

    def _drain(self) -> None:
        """Read a request body we will not use, so the connection stays usable."""
        if getattr(self, "_body_read", False):
            return
        self._body_read = True
        for _unused in self._iter_body():
            pass

    def _iter_body(self):
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return
                remaining = size
                while remaining:
                    data = self.rfile.read(min(remaining, CHUNK))
                    if not data:
                        return
                    remaining -= len(data)
                    yield data
                self.rfile.readline()
        else:
            remaining = int(self.headers.get("Content-Length") or 0)
            while remaining > 0:
                data = self.rfile.read(min(remaining, CHUNK))
                if not data:
                    return
                remaining -= len(data)
                yield data

    def _read_body(self) -> bytes:
        self._body_read = True
        return b"".join(self._iter_body())

    # -- auth --------------------------------------------------------------
    def _authorized(self) -> bool:
        endpoint = self.server.endpoint
        header = self.headers.get("Authorization", "")
        challenge = {"WWW-Authenticate": f'Basic realm="{endpoint.proxy_endpoint}",service="ecr.amazonaws.com"'}
        if not header.startswith("Basic "):
            self._error(401, "DENIED", "Not Authorized", challenge)
            return False
        try:
            user, _unused, password = base64.b64decode(header[6:]).decode().partition(":")
        except Exception:
            self._error(401, "DENIED", "Not Authorized", challenge)
            return False
        reason = "user must be AWS" if user != "AWS" else self.server.store.tokens.check(password, endpoint.account, endpoint.region)
        if reason == EXPIRED:
            self.server.faults.count(f"registry {endpoint.key} token expired")
            # what ECR answers (docker prints "denied: Your authorization token has expired. Reauthenticate and try
            # again."): 403, not the 401 of a missing or wrong password, and no challenge
            self._error(403, "DENIED", EXPIRED_TOKEN_MESSAGE)
            return False
        if reason:
            self._error(401, "DENIED", f"Your authorization token is not valid: {reason}", challenge)
            return False
        return True

    # -- dispatch ----------------------------------------------------------
    def do_GET(self) -> None:
        self._dispatch()

    def do_HEAD(self) -> None:
        self._dispatch()

    def do_PUT(self) -> None:
        self._dispatch()

    def do_POST(self) -> None:
        self._dispatch()

    def do_PATCH(self) -> None:
        self._dispatch()

    def do_DELETE(self) -> None:
        self._dispatch()

    def _dispatch(self) -> None:
        self._body_read = False
        try:
            self._route()
        except EcrApiError as exc:
            self._error(exc.status if exc.status != 400 else 400, "TAG_INVALID" if "Tag" in exc.code else "MANIFEST_INVALID", exc.message)
        except (ConnectionError, OSError) as exc:
            if self.server.backend_alive():
                raise
            self._error(503, "UNAVAILABLE", f"registry backend for {self.server.endpoint.key} is down: {exc}")

    def _route(self) -> None:
        path = urlsplit(self.path).path
        if path.startswith(STATS_PATH):
            self._drain()
            if path == STATS_PATH + "/reset" and self.command == "POST":
                self.server.stats.reset()
            if path == STATS_PATH + "/limit" and self.command == "POST":
                query = dict(part.partition("=")[::2] for part in urlsplit(self.path).query.split("&"))
                self.server.stats.set_limit(float(query.get("tps") or 0))
            body = json.dumps(self.server.stats.snapshot()).encode()
            self._send(200, body, {"Content-Type": "application/json"}, head=self.command == "HEAD")
            return
        if not self.server.backend_alive():
            self._error(503, "UNAVAILABLE", f"registry backend for {self.server.endpoint.key} is not running")
            return
        fault = self.server.faults.registry_fault(self.server.endpoint.key, self.command, blob=False)
        if fault and fault.get("error"):  # injected: a registry that stays down
            self._error(fault["error"], "UNAVAILABLE", "Service Unavailable")
            return
        if not self._authorized():
            return
        if path in ("/v2", "/v2/"):
            self._send(200, b"{}", {"Content-Type": "application/json"}, head=self.command == "HEAD")
            return
        for regex, handler in (
            (REFERRERS_RE, self._referrers),
            (MANIFEST_RE, self._manifest),
            (TAGS_RE, self._tags),
            (BLOB_RE, self._blob),
        ):
            match = regex.match(path)
            if match:
                name = match.group("name")
                if not self.server.store.repository_exists(self.server.endpoint.account, self.server.endpoint.region, name):
                    self._error(
                        404,
                        "NAME_UNKNOWN",
                        f"The repository with name '{name}' does not exist in the registry with id "
                        f"'{self.server.endpoint.account}'",
                    )
                    return
                handler(match)
                return
        self._error(404, "UNSUPPORTED", f"{self.command} {path} is not supported by this registry")

    # -- handlers ----------------------------------------------------------
    def _manifest(self, match: re.Match) -> None:
        endpoint, store = self.server.endpoint, self.server.store
        name, ref = match.group("name"), match.group("ref")
        if self.command in ("GET", "HEAD"):
            image = store.find(endpoint.account, endpoint.region, name, ref)
            if image is None:
                self._error(404, "MANIFEST_UNKNOWN", f"Requested image not found: {name}:{ref}")
                return
            headers = {"Content-Type": image.media_type, "Docker-Content-Digest": image.digest}
            self._send(200, image.manifest, headers, head=self.command == "HEAD")
            self._journal("manifest", "exists", name, image.digest)
            return
        if self.command == "PUT":
            body = self._read_body()
            if self.server.stats.throttled():
                self._error(429, "TOOMANYREQUESTS", "Rate exceeded")
                return
            media_type = (self.headers.get("Content-Type") or "").split(";")[0].strip() or None
            tag = None if ref.startswith("sha256:") else ref
            with store.lock:
                self._check_tag_move(name, tag, body)
                # distribution validates the manifest and that its blobs exist in this repository.
                status, headers, backend_body = self.server.backend_request(
                    "PUT",
                    f"/v2/{name}/manifests/{self._digest(body)}",
                    body,
                    {"Content-Type": media_type or "application/vnd.oci.image.manifest.v1+json"},
                )
                if status not in (200, 201):
                    self._send(status, backend_body, {"Content-Type": headers.get("Content-Type", "application/json")})
                    return
                expected = None if tag else ref
                image = store.put(endpoint.account, endpoint.region, name, body, media_type, tag, expected, via_registry=True)
                self._journal("manifest", "push", name, image.digest, tag, manifest_refs(json.loads(body)))
            self._send(
                201,
                b"",
                {"Location": f"/v2/{name}/manifests/{image.digest}", "Docker-Content-Digest": image.digest},
            )
            return
        self._error(405, "UNSUPPORTED", "manifest deletion through the registry API is not supported by ECR")

    def _journal(self, kind: str, how: str, name: str, digest: str | None, tag: str | None = None, refs=None) -> None:
        self.server.faults.record(self.server.endpoint.key, kind, how, name, digest, tag, refs)

    def _reset_connection(self) -> None:
        """A TCP reset (SO_LINGER 0, then close), as a dropped connection looks to the client; nothing more is
        written or read on this connection."""
        self.close_connection = True
        try:
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.connection.close()
        except OSError:
            pass
        backend = getattr(self, "_backend", None)
        if backend is not None:
            backend.close()
            self._backend = None

    def _blob_fault(self) -> dict | None:
        """Apply an injected blob fault: a delay, then a 5xx answer or a reset of an upload half-way (True: the
        request has been answered or cut). A reset of a download is done in _blob, once half of the body is sent."""
        fault = self.server.faults.registry_fault(self.server.endpoint.key, self.command, blob=True)
        if not fault:
            return None
        if fault.get("delay"):
            time.sleep(fault["delay"])
        if fault.get("error"):
            status = fault["error"]
            code, message = ("UNAVAILABLE", "Service Unavailable") if status == 503 else ("UNKNOWN", "Internal Server Error")
            self._error(status, code, message)
            return {"answered": True}
        if fault.get("reset") and self.command in ("PUT", "PATCH", "POST"):
            # an upload cut mid-blob: read half of what the client sends (its first chunk when the length is not
            # announced), then drop the connection
            length = int(self.headers.get("Content-Length") or 0)
            if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                next(self._iter_body(), None)
            remaining = length // 2
            while remaining > 0:
                data = self.rfile.read(min(remaining, CHUNK))
                if not data:
                    break
                remaining -= len(data)
            self._reset_connection()
            return {"answered": True}
        return fault

    @staticmethod
    def _digest(body: bytes) -> str:
        from .ecr import digest_of

        return digest_of(body)

    def _check_tag_move(self, name: str, tag: str | None, body: bytes) -> None:
        if not tag:
            return
        endpoint, store = self.server.endpoint, self.server.store
        repo = store.repository(endpoint.account, endpoint.region, name)
        holder = store.find(endpoint.account, endpoint.region, name, tag)
        if holder is not None and holder.digest != self._digest(body) and repo.image_tag_mutability.startswith("IMMUTABLE"):
            raise EcrApiError(
                "ImageTagAlreadyExistsException",
                f"The image tag '{tag}' already exists in the '{name}' repository and cannot be overwritten because "
                "the repository is immutable.",
            )

    def _tags(self, match: re.Match) -> None:
        endpoint, store = self.server.endpoint, self.server.store
        name = match.group("name")
        tags = sorted(t for image in store.images(endpoint.account, endpoint.region, name) for t in image.tags)
        body = json.dumps({"name": name, "tags": tags}).encode()
        self._send(200, body, {"Content-Type": "application/json"}, head=self.command == "HEAD")

    def _referrers(self, match: re.Match) -> None:
        endpoint, store = self.server.endpoint, self.server.store
        name, digest = match.group("name"), match.group("digest")
        wanted_type = None
        query = urlsplit(self.path).query
        for part in query.split("&"):
            if part.startswith("artifactType="):
                from urllib.parse import unquote

                wanted_type = unquote(part.split("=", 1)[1])
        descriptors = []
        for image in store.images(endpoint.account, endpoint.region, name):
            if image.subject_digest != digest:
                continue
            if wanted_type and image.artifact_media_type != wanted_type:
                continue
            descriptor = {"mediaType": image.media_type, "digest": image.digest, "size": len(image.manifest)}
            if image.artifact_media_type:
                descriptor["artifactType"] = image.artifact_media_type
            annotations = image.parsed.get("annotations")
            if annotations:
                descriptor["annotations"] = annotations
            descriptors.append(descriptor)
        index = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": descriptors}
        headers = {"Content-Type": "application/vnd.oci.image.index.v1+json"}
        if wanted_type:
            headers["OCI-Filters-Applied"] = "artifactType"
        self._send(200, json.dumps(index).encode(), headers, head=self.command == "HEAD")

    def _blob(self, match: re.Match) -> None:
        fault = self._blob_fault()
        if fault and fault.get("answered"):
            return
        reset_download = bool(fault and fault.get("reset")) and self.command == "GET"
        headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP and k.lower() != "host"}
        headers.pop("Authorization", None)
        has_body = self.command in ("PUT", "POST", "PATCH") and (
            self.headers.get("Content-Length") not in (None, "0") or self.headers.get("Transfer-Encoding")
        )
        # One backend connection per client connection (this handler lives as long as it): a new TCP
        # connection to distribution for every blob request made the proxy the seeding bottleneck.
        conn = getattr(self, "_backend", None)
        if conn is None:
            conn = self._backend = self.server.backend_connection()
        reusable = False
        try:
            if has_body:
                headers.pop("Content-Length", None) if self.headers.get("Transfer-Encoding") else None
                chunked = bool(self.headers.get("Transfer-Encoding"))
                conn.request(self.command, self.path, body=self._counted_body(), headers=headers, encode_chunked=chunked)
            else:
                self._drain()
                conn.request(self.command, self.path, headers=headers)
            response = conn.getresponse()
            self.send_response(response.status)
            length = response.getheader("Content-Length")
            for key, value in response.getheaders():
                if key.lower() in HOP_BY_HOP or key.lower() == "content-length":
                    continue
                self.send_header(key, value)
            self.server.stats.add(self.command)
            self._journal_blob(match, response.status)
            if self.command == "HEAD":
                self.send_header("Content-Length", length or "0")
                self.end_headers()
                response.read()
                reusable = not response.will_close
                return
            if length is not None:
                self.send_header("Content-Length", length)
                self.end_headers()
                # an injected reset mid-blob: half of the body, then the connection drops
                cut = int(length) // 2 if reset_download and response.status == 200 else None
                sent = 0
                while True:
                    data = response.read(CHUNK if cut is None else max(1, min(CHUNK, cut - sent)))
                    if not data:
                        break
                    self.wfile.write(data)
                    sent += len(data)
                    self._count_read(response.status, len(data))
                    if cut is not None and sent >= cut:
                        self.wfile.flush()
                        self._reset_connection()
                        return
            else:
                data = response.read()
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
                self._count_read(response.status, len(data))
            reusable = not response.will_close
        finally:
            if not reusable:
                conn.close()
                self._backend = None

    def _journal_blob(self, match: re.Match, status: int) -> None:
        """Blob writes and "already there" answers, for the order and duplicate checks (faults.py)."""
        rest, query = match.group("rest"), parse_qs(urlsplit(self.path).query)
        if self.command == "HEAD" and status == 200 and not rest.startswith("uploads"):
            self._journal("blob", "exists", match.group("name"), rest)
        elif self.command in ("PUT", "POST") and status == 201:
            if query.get("mount"):
                self._journal("blob", "mount", match.group("name"), query["mount"][0])
            elif query.get("digest"):
                self._journal("blob", "upload", match.group("name"), query["digest"][0])

    def _counted_body(self):
        for data in self._iter_body():
            self.server.stats.add(written=len(data))
            yield data

    def _count_read(self, status: int, size: int) -> None:
        if self.command == "GET" and status == 200:
            self.server.stats.add(read=size)


class RegistryProxyServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(
        self,
        endpoint: RegistryEndpoint,
        store: EcrImageStore,
        backend_alive: Callable[[], bool],
        ssl_context: ssl.SSLContext | None = None,
        verbose: bool = False,
        faults: FaultInjector | None = None,
    ):
        self.endpoint = endpoint
        self.faults = faults or FaultInjector()
        self.store = store
        self.backend_alive = backend_alive
        self.verbose = verbose
        self.ssl_context = ssl_context
        self.stats = RegistryStats(endpoint.account, endpoint.region)
        watch_puts(store, self.stats)
        super().__init__(("127.0.0.1", endpoint.proxy_port), RegistryProxyHandler)

    def get_request(self):
        sock, address = super().get_request()
        if self.ssl_context is not None:
            # The handshake is done in the handler thread (RegistryProxyHandler.handle): in the accept loop, each new
            # connection waited for the handshakes of all before it (a third of the proxy's samples in a skopeo sync).
            sock = self.ssl_context.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
        return sock, address

    def backend_connection(self) -> http.client.HTTPConnection:
        return http.client.HTTPConnection("127.0.0.1", self.endpoint.backend_port, timeout=120)

    def backend_request(self, method: str, path: str, body: bytes | None = None, headers: dict | None = None):
        conn = self.backend_connection()
        try:
            conn.request(method, path, body=body, headers=headers or {})
            response = conn.getresponse()
            return response.status, dict(response.getheaders()), response.read()
        finally:
            conn.close()

    def serve_in_thread(self) -> threading.Thread:
        thread = threading.Thread(target=self.serve_forever, name=f"registry-proxy-{self.endpoint.key}", daemon=True)
        thread.start()
        return thread
