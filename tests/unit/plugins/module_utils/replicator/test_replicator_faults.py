"""The copy program's data plane and its fault handling (issue 13, issue 15 item 4).

The registries are real HTTP servers (``TinyRegistry``: the registry v2 blob API, in a thread) that can answer a
request with a fault once: a status (5xx, 429, ECR's 403 for an expired token), or a connection reset in the middle
of a blob. The ECR API answers come from botocore's Stubber, and only where the sandbox cannot produce them
(``LimitExceededException``, a throttled or failing call at an exact point, the order of calls); the same program
runs against the sandbox in tests/integration/codebuild_replicate. Every test fails when its protection is removed.
"""

from __future__ import annotations

import base64
import concurrent.futures
import hashlib
import io
import json
import random
import re
import ssl
import threading
import uuid
from http.server import BaseHTTPRequestHandler
from http.server import ThreadingHTTPServer
from urllib.parse import parse_qs
from urllib.parse import urlsplit

import boto3
import pytest
from botocore.stub import Stubber

from ansible_collections.cloudops.ecr_replication.plugins.module_utils import replicator
from tests.sandbox import tls

EXPIRED = b'{"errors":[{"code":"DENIED","message":"Your authorization token has expired. Reauthenticate and try again."}]}'


def digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):  # quiet
        pass

    def _reply(self, status, body=b"", headers=None):
        self.send_response(status)
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _body(self) -> bytes:
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _handle(self):
        reg: TinyRegistry = self.server.registry
        url = urlsplit(self.path)
        reg.clients.add(self.client_address)
        reg.log.append((self.command, url.path, self.headers.get("Authorization")))
        if reg.s3:  # the "S3" of a redirect: presigned, and must never see the registry's token
            if self.headers.get("Authorization"):
                return self._reply(400, b"Only one auth mechanism allowed")
            return self._reply(200, reg.blobs[url.path.rsplit("/", 1)[1]])
        fault = reg.fault_for(self.command, url.path)
        if fault == "reset":
            if self.command == "PATCH":  # part of the body, then the connection drops
                self.rfile.read(10)
            self.close_connection = True
            self.connection.shutdown(2)
            return None
        if fault:
            self._body()
            if len(fault) > 2:  # from now on the registry wants another token (the old one expired)
                reg.token = fault[2]
            return self._reply(fault[0], fault[1])
        if self.headers.get("Authorization") != "Basic " + reg.token:
            self._body()
            return self._reply(401, b'{"errors":[{"code":"DENIED","message":"Not Authorized"}]}')
        m = re.match(r"^/v2/(.+)/blobs/(uploads/(\w*)|sha256:\w+)$", url.path)
        name, query = m.group(1), parse_qs(url.query)
        if m.group(3) is None and not m.group(2).startswith("uploads"):
            blob = m.group(2)
            if (name, blob) not in reg.present:
                return self._reply(404)
            if self.command == "GET" and reg.redirect_to:
                return self._reply(307, b"", {"Location": "%s/blob/%s" % (reg.redirect_to, blob)})
            return self._reply(200, reg.blobs[blob], {"Docker-Content-Digest": blob})
        if self.command == "POST":
            self._body()
            if "mount" in query and (query["from"][0], query["mount"][0]) in reg.present:
                reg.present.add((name, query["mount"][0]))
                reg.mounted += 1
                return self._reply(201)
            upload = uuid.uuid4().hex
            reg.uploads[upload] = b""
            return self._reply(202, b"", {"Location": "/v2/%s/blobs/uploads/%s" % (name, upload)})
        upload = m.group(3)
        if self.command == "PATCH":
            reg.uploads[upload] += self._body()
            return self._reply(202, b"", {"Location": "/v2/%s/blobs/uploads/%s?_state=x" % (name, upload)})
        if self.command == "PUT":
            data = reg.uploads.pop(upload) + self._body()
            if digest(data) != query["digest"][0]:
                return self._reply(400, b'{"errors":[{"code":"DIGEST_INVALID"}]}')
            reg.blobs[query["digest"][0]] = data
            reg.present.add((name, query["digest"][0]))
            reg.uploaded.append(query["digest"][0])
            return self._reply(201)
        return self._reply(405)

    do_GET = do_HEAD = do_POST = do_PATCH = do_PUT = _handle


class TinyRegistry:
    """The blob half of a registry v2 API on 127.0.0.1 (plain HTTP, or HTTPS with ``certificates``: (certificate,
    key) files), with faults served once each; ``clients``: the (host, port) of every connection it served."""

    def __init__(self, s3=False, certificates=None):
        self.token = base64.b64encode(b"AWS:pw-" + uuid.uuid4().hex.encode()).decode()
        self.s3, self.redirect_to = s3, None
        self.blobs, self.present, self.uploads, self.uploaded, self.log = {}, set(), {}, [], []
        self.clients = set()
        self.mounted = 0
        self.faults = []  # (method, path regex, "reset" | (status, body))
        self.lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.server.registry = self
        if certificates:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(*certificates)
            self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = "%s://127.0.0.1:%d" % ("https" if certificates else "http", self.server.server_address[1])

    def fault_for(self, method, path):
        with self.lock:
            for fault in self.faults:
                if fault[0] == method and re.search(fault[1], path):
                    self.faults.remove(fault)
                    return fault[2]
        return None

    def add(self, name, data):
        self.blobs[digest(data)] = data
        self.present.add((name, digest(data)))
        return {"digest": digest(data), "size": len(data), "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip"}

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def registries():
    made = [TinyRegistry(), TinyRegistry()]
    yield made
    for r in made:
        r.close()


def ecr_client():
    return boto3.client("ecr", region_name="ap-south-1", aws_access_key_id="x", aws_secret_access_key="y")


def token_answer(reg):
    return {"authorizationData": [{"authorizationToken": reg.token, "proxyEndpoint": reg.url,
                                   "expiresAt": "2030-01-01T00:00:00Z"}]}


def program(src, dst, **env):
    """A Replicator between two TinyRegistries, its ECR clients stubbed, logged in; ``(replicator, out)``."""
    env = {"REPL_SOURCE_REGION": "ap-south-1", "REPL_DEST_REGION": "ap-northeast-2", "REPL_BACKOFF": "0.01",
           "REPL_PARALLEL": "1", **env}
    out = io.StringIO()
    rep = replicator.Replicator(env, out)
    rep.source_ecr, rep.dest_ecr = ecr_client(), ecr_client()
    rep.stubs = Stubber(rep.source_ecr), Stubber(rep.dest_ecr)
    for stub, reg in zip(rep.stubs, (src, dst)):
        stub.add_response("get_authorization_token", token_answer(reg), {})
        stub.activate()
    rep.refresh_tokens()
    return rep, out


def test_blob_streamed_once_per_repository_then_mounted_not_uploaded_again(registries):
    src, dst = registries
    layer = src.add("app", b"layer" * 1000)
    src.add("other", b"layer" * 1000)
    rep, _out = program(src, dst)
    for _attempt in range(2):  # the second image that needs it: known present, no request at all
        rep.once(("b", "app", layer["digest"]), lambda: rep.put_blob("app", layer))
    rep.once(("b", "other", layer["digest"]), lambda: rep.put_blob("other", layer))
    assert dst.uploaded == [layer["digest"]]  # bytes moved once
    assert dst.mounted == 1 and ("other", layer["digest"]) in dst.present


def test_repositories_needing_one_blob_at_once_upload_it_once_and_mount_it(registries):
    # Repositories are copied side by side: the second must wait for the first upload and mount, not upload too.
    src, dst = registries
    layer = src.add("r0", b"base" * 250000)
    for n in range(1, 6):
        src.add("r%d" % n, b"base" * 250000)
    rep, _out = program(src, dst, REPL_PARALLEL="6")
    with concurrent.futures.ThreadPoolExecutor(6) as pool:
        list(pool.map(lambda n: rep.once(("b", "r%d" % n, layer["digest"]), lambda: rep.put_blob("r%d" % n, layer)),
                      range(6)))
    assert dst.uploaded == [layer["digest"]] and dst.mounted == 5


def test_every_tls_connection_of_the_program_shares_one_context(tmp_path, monkeypatch):
    # A context of its own per connection reads the whole CA bundle again: tens of ms of CPU each, and the program
    # opens connections per thread and repository (1,195 images by strategy local spent 160 CPU-seconds on it).
    certificate, key, bundle = tls.ensure_certificates(tmp_path)
    monkeypatch.setenv("SSL_CERT_FILE", str(bundle))
    src, dst = TinyRegistry(certificates=(certificate, key)), TinyRegistry(certificates=(certificate, key))
    try:
        layers = [src.add("r%d" % n, b"layer %d " % n * 1000) for n in range(8)]
        rep, _out = program(src, dst, REPL_PARALLEL="4")
        contexts = []
        real = ssl.SSLContext.load_default_certs
        monkeypatch.setattr(ssl.SSLContext, "load_default_certs",
                            lambda self, *args, **kwargs: contexts.append(self) or real(self, *args, **kwargs))

        def in_threads_of_its_own(n):  # a pool per repository, as the program has
            with concurrent.futures.ThreadPoolExecutor(1) as own:
                return own.submit(rep.put_blob, "r%d" % n, layers[n]).result()

        with concurrent.futures.ThreadPoolExecutor(4) as pool:
            list(pool.map(in_threads_of_its_own, range(8)))
        assert sorted(dst.uploaded) == sorted(layer["digest"] for layer in layers)  # verified over TLS, with the CA
        assert len(src.clients) >= 8 and len(dst.clients) >= 8
        assert contexts == []
    finally:
        src.close()
        dst.close()


@pytest.mark.parametrize("method, path", [("POST", "/uploads/"), ("HEAD", "/blobs/")])  # HEAD: 403 without body
def test_expired_token_answered_403_is_refreshed_and_the_request_retried(registries, method, path):
    src, dst = registries
    layer = src.add("app", b"x" * 5000)
    rep, out = program(src, dst)
    old, new = dst.token, base64.b64encode(b"AWS:renewed-password").decode()
    dst.faults.append((method, path, (403, EXPIRED, new)))  # as ECR answers an expired token
    rep.stubs[0].add_response("get_authorization_token", token_answer(src), {})
    rep.stubs[1].add_response("get_authorization_token", dict(token_answer(dst), authorizationData=[
        dict(token_answer(dst)["authorizationData"][0], authorizationToken=new)]), {})
    rep.retry("blob", lambda: rep.put_blob("app", layer))
    assert dst.uploaded == [layer["digest"]]
    assert "registry tokens renewed" in out.getvalue()
    # no token, old or new, nor its password, in the output
    for token in (old, dst.token):
        assert token not in out.getvalue() and base64.b64decode(token).decode().split(":")[1] not in out.getvalue()


def test_denied_that_is_not_expiry_is_permanent(registries):
    src, dst = registries
    layer = src.add("app", b"x" * 50)
    rep, _out = program(src, dst)
    dst.faults.append(("POST", "/uploads/", (403, b'{"errors":[{"code":"DENIED","message":"User is not authorized"}]}')))
    with pytest.raises(replicator.HTTPError, match="not authorized"):
        rep.retry("blob", lambda: rep.put_blob("app", layer))
    assert dst.uploaded == []


@pytest.mark.parametrize("fault", ["reset", (500, b"boom"), (503, b"slow down"), (429, b"too many")])
def test_a_blob_cut_or_refused_midway_starts_again_cleanly_and_lands_once(registries, fault):
    src, dst = registries
    layer = src.add("app", bytes(range(256)) * 4000)
    rep, out = program(src, dst)
    dst.faults.append(("PATCH", "/uploads/", fault))
    src.faults.append(("GET", "/blobs/", (502, b"bad gateway")))
    rep.retry("blob app", lambda: rep.put_blob("app", layer))
    assert dst.blobs[layer["digest"]] == src.blobs[layer["digest"]]
    assert dst.uploaded == [layer["digest"]]
    assert out.getvalue().count("retry blob app") == 2


def test_a_registry_that_stays_down_fails_after_bounded_retries(registries):
    src, dst = registries
    layer = src.add("app", b"x" * 50)
    rep, out = program(src, dst, REPL_RETRIES="3")
    dst.faults.extend([("HEAD", "/blobs/", (503, b"down"))] * 10)
    with pytest.raises(replicator.HTTPError, match="503"):
        rep.retry("blob app", lambda: rep.put_blob("app", layer))
    assert out.getvalue().count("retry blob app") == 3 and len(dst.faults) == 6


def test_redirected_blob_get_leaves_the_registry_token_behind(registries):
    src, dst = registries
    s3 = TinyRegistry(s3=True)
    try:
        layer = src.add("app", b"y" * 3000)
        s3.blobs = dict(src.blobs)
        src.redirect_to = s3.url
        rep, _out = program(src, dst)
        rep.retry("blob", lambda: rep.put_blob("app", layer))
        assert dst.uploaded == [layer["digest"]]
        assert [a for _m, _p, a in s3.log] == [None]
    finally:
        s3.close()


MANIFEST = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                       "config": {}, "layers": []})


def image_manifest(config, layer):
    return json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                       "config": dict(config, mediaType="application/vnd.oci.image.config.v1+json"),
                       "layers": [layer]}, sort_keys=True)


def put_params(text, manifest_digest, tag=None):
    params = {"repositoryName": "app", "imageManifest": text, "imageDigest": manifest_digest,
              "imageManifestMediaType": "application/vnd.oci.image.manifest.v1+json"}
    return dict(params, imageTag=tag) if tag else params


def test_put_image_throttling_is_retried_limit_exceeded_is_not(registries):
    rep, out = program(*registries)
    stub = rep.stubs[1]
    stub.add_client_error("put_image", "ThrottlingException", "Rate exceeded", 400, expected_params=None)
    stub.add_response("put_image", {"image": {}}, expected_params=None)
    rep.put("app", (MANIFEST, None), digest(MANIFEST.encode()), "v1")
    stub.add_client_error("put_image", "LimitExceededException", "tag quota", 400, expected_params=None)
    with pytest.raises(replicator.ClientError, match="LimitExceededException"):
        rep.put("app", (MANIFEST, None), digest(MANIFEST.encode()), "v2")
    stub.assert_no_pending_responses()  # exactly one LimitExceeded call: not retried
    assert out.getvalue().count("retry PutImage") == 1


def test_put_image_retried_after_a_write_that_did_happen_is_no_duplicate(registries):
    rep, _out = program(*registries)
    stub = rep.stubs[1]
    stub.add_client_error("put_image", "ServerException", "internal", 500, expected_params=None)
    stub.add_client_error("put_image", "ImageAlreadyExistsException", "exists", 400, expected_params=None)
    rep.put("app", (MANIFEST, None), digest(MANIFEST.encode()), "v1")  # no error: the first attempt had written it
    stub.assert_no_pending_responses()


@pytest.mark.parametrize("arrival", ["at once", "late"])
@pytest.mark.parametrize("tps, most", [("10", 10), ("3.33", 3), ("2", 2)])  # 10 / 1, 3 and 5 builds
def test_put_image_calls_never_exceed_the_rate_in_any_second(registries, tps, most, arrival):
    # The bound must hold at ECR, whatever the latencies: PutImage answers delayed at random (up to 0.3 s), or the
    # calls themselves held up on their way (a loaded build machine, a slow network), so that one arrives just
    # before the next leaves: pacing the starts alone then lets int(tps) + 1 land in one second.
    rep, _out = program(*registries, REPL_PUT_TPS=tps, REPL_PARALLEL="8")
    seen = []
    delays = iter([0.3] + [random.choice((0, 0, 0.05, 0.3)) for _n in range(99)])

    def arrives(**_kwargs):  # when ECR counts the call: as it leaves and then the answer takes a while, or late
        delay = next(delays)
        if arrival == "late":
            replicator.time.sleep(delay)
        seen.append(replicator.time.monotonic())
        if arrival == "at once":
            replicator.time.sleep(delay)

    rep.dest_ecr.meta.events.register("provide-client-params.ecr.PutImage", arrives)
    calls = 3 * most + 2
    for _call in range(calls):
        rep.stubs[1].add_response("put_image", {"image": {}}, None)
    with concurrent.futures.ThreadPoolExecutor(8) as pool:  # many copies want to write at once
        list(pool.map(lambda n: rep.put("app", (MANIFEST, None), digest(MANIFEST.encode()), "t%d" % n), range(calls)))
    assert len(seen) == calls
    assert max(sum(1 for t in seen if s <= t < s + 1) for s in seen) <= most  # no burst, no catch-up


def test_a_build_that_takes_over_a_slot_waits_an_interval_before_its_first_put_image(registries):
    # The driver starts the next build as one ends: its first PutImage must not join the last ones of the build
    # before it in the same second (each slot is then one writer at REPL_PUT_TPS).
    started = replicator.time.monotonic()
    rep, _out = program(*registries, REPL_PUT_TPS="2")
    rep.stubs[1].add_response("put_image", {"image": {}}, None)
    rep.put("app", (MANIFEST, None), digest(MANIFEST.encode()), "v1")
    assert replicator.time.monotonic() - started >= 0.5


def run_one_image(src, dst, layer_fault=None, put_error=None):
    """replicate_repository of one tagged image (config + layer) with its tag and a second tag."""
    config, layer = src.add("app", b'{"c":1}'), src.add("app", b"L" * 20000)
    text = image_manifest(config, layer)
    image = {"repository": "app", "digest": digest(text.encode()), "tags": ["v1", "latest"]}
    rep, out = program(src, dst, REPL_RETRIES="2")
    source, dest = rep.stubs
    dest.add_response("describe_repositories", {"repositories": [{"repositoryName": "app",
                                                                  "imageTagMutability": "MUTABLE"}]}, None)
    dest.add_response("list_images", {}, None)  # an empty repository (the stubber refuses an empty list)
    source.add_response("batch_get_image", {"images": [{"imageId": {"imageDigest": image["digest"]},
                                                        "imageManifest": text,
                                                        "imageManifestMediaType": "application/vnd.oci.image.manifest.v1+json"}],
                                            "failures": []}, None)
    if layer_fault:
        dst.faults.extend([("PATCH", "/uploads/", layer_fault)] * 5)
    else:
        if put_error:
            dest.add_client_error("put_image", put_error, "quota", 400, expected_params=put_params(text, image["digest"], "v1"))
        else:
            dest.add_response("put_image", {"image": {}}, put_params(text, image["digest"], "v1"))
            dest.add_response("put_image", {"image": {}}, put_params(text, image["digest"], "latest"))
            dest.add_response("describe_images", {"imageDetails": [{"imageDigest": image["digest"],
                                                                    "imageTags": ["v1", "latest"],
                                                                    "imageSizeInBytes": 20007}]}, None)
    results = rep.replicate_repository("app", [image])
    for stub in rep.stubs:
        stub.assert_no_pending_responses()
    lines = [json.loads(line.split(" ", 1)[1]) for line in out.getvalue().splitlines() if line.startswith("RESULT ")]
    return results[0], lines, layer


def test_an_image_is_copied_blobs_first_then_one_put_image_per_tag(registries):
    result, lines, layer = run_one_image(*registries)
    assert result["status"] == "copied" and result["tags_applied"] == ["v1", "latest"]
    assert layer["digest"] in registries[1].uploaded and lines[0]["status"] == "copied"


def test_no_tag_is_written_when_a_blob_cannot_be_put(registries):
    # The stubbed PutImage has no answer queued: a tag written anyway would fail the stubber's pending check
    # differently (UnStubbedResponseError in the result) - the error must be the blob's.
    result, lines, _layer = run_one_image(*registries, layer_fault=(500, b"broken"))
    assert result["status"] == "failed" and result["tags_applied"] == []
    assert "HTTP 500" in lines[0]["error"] and "PATCH" in lines[0]["error"]


def test_limit_exceeded_is_the_images_failure_cause_in_its_result_line(registries):
    result, lines, _layer = run_one_image(*registries, put_error="LimitExceededException")
    assert result["status"] == "failed" and "LimitExceededException" in lines[0]["error"]
    assert lines[0]["attempts"] == 1


@pytest.mark.parametrize("shared", [True, False])
def test_programs_sharing_a_pace_file_keep_to_the_rate_together(registries, tmp_path, shared):
    # strategy local: several programs on one machine, each with the whole REPL_PUT_TPS, take turns through
    # REPL_PACE_FILE (fcntl locks work between threads of one process too: one open file each). Without it they
    # would write twice as fast as ECR allows.
    pace = {"REPL_PACE_FILE": str(tmp_path / "pace")} if shared else {}
    programs = [program(*registries, REPL_PUT_TPS="5", **pace)[0] for _n in range(2)]
    seen = []
    for rep in programs:
        rep.dest_ecr.meta.events.register("provide-client-params.ecr.PutImage",
                                          lambda **_kwargs: seen.append(replicator.time.monotonic()))
        for _call in range(8):
            rep.stubs[1].add_response("put_image", {"image": {}}, None)
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        list(pool.map(lambda rep: [rep.put("app", (MANIFEST, None), digest(MANIFEST.encode()), "t%d" % n)
                                   for n in range(8)], programs))
    most = max(sum(1 for t in seen if s <= t < s + 1) for s in seen)
    assert len(seen) == 16
    assert (most <= 5) if shared else (most > 5)


def test_a_blob_an_earlier_build_put_elsewhere_is_mounted_from_there(registries):
    # batching.share_blobs names, in the batch, the repository an earlier build put a shared blob in
    src, dst = registries
    layer = src.add("app", b"base" * 5000)
    dst.add("platform/base", b"base" * 5000)
    rep, _out = program(src, dst)
    rep.hints[layer["digest"]] = "platform/base"
    rep.put_blob("app", layer)
    assert dst.uploaded == [] and dst.mounted == 1 and ("app", layer["digest"]) in dst.present
    # a hint the registry cannot serve (that build failed, mounting disabled) is an ordinary upload
    other = src.add("web", b"other" * 5000)
    rep.hints[other["digest"]] = "platform/base"
    rep.put_blob("web", other)
    assert dst.uploaded == [other["digest"]]
