# -*- coding: utf-8 -*-

# Copyright: Contributors to the Ansible project
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""The copy program of ``buildspec.yml`` (and of ``strategy: local``), and how ``buildspec.yml`` is made from it.

CodeBuild projects without source (``NO_SOURCE``) only get the buildspec text, so the program must be inside
it. It is written here as ordinary, testable Python (standard library and boto3, nothing else: no ``aws`` CLI,
no ``skopeo``), and ``render_buildspec()`` inlines it in plain text, with the definitions it uses from
``batching.py`` and ``replication_results.py`` (``BUNDLE``), into a ``python3 - <<'REPLICATOR_PY'`` heredoc,
within CodeBuild's inline limit (``MAX_BUILDSPEC_CHARS``). ``buildspec.yml`` at the repository root is that
output, checked in; a unit test fails when it is out of date. Regenerate it with ``make buildspec``.

What the program does for one batch (environment variables in ``ENV_DOC``):

* ECR and STS calls are boto3 calls in this process (the install phase installs the pinned ``BOTO3_PIN`` when
  the build image has no boto3), one attempt each, retried by ``retry()`` with jittered exponential back-off;
* destination: ``sts:AssumeRole`` (with ``ExternalId``) into the destination role, renewed after
  ``REPL_CREDENTIALS_MAX_AGE``; credentials and registry tokens stay in memory (never a file, a command line or
  an environment variable of another process) and are masked in every line the program prints;
* the registries are spoken to directly (HTTP API v2 on keep-alive connections, hosts from ``proxyEndpoint``);
  manifests are read with one ``BatchGetImage`` per 100 digests and checked against their digests;
* a missing destination repository is created with the source repository's tag mutability, scan on push and
  encryption type (and, when asked, its lifecycle and repository policies);
* each missing image: its blobs (HEAD, else mounted from a repository that already has it, else streamed from
  the source), each blob once per build and repository; its child manifests; then one ``PutImage`` under its
  first missing tag, and one ``PutImage`` of the same bytes per further missing tag. A tag that points
  elsewhere is a ``tag_conflict`` unless ``REPL_FORCE_TAGS`` (in an IMMUTABLE repository it stays one);
* ``PutImage`` calls are paced to ``REPL_PUT_TPS`` (shared through ``REPL_PACE_FILE`` by the programs of one
  machine); registry tokens are renewed when older than ``REPL_TOKEN_MAX_AGE`` or refused;
* verification through the ECR API, one ``DescribeImages`` per 100 digests, before an image is reported
  ``copied``; one ``RESULT {json}`` line per image (``replication_results.py``), ``SUMMARY {json}`` at the
  end; the exit status is 1 when any image failed.
"""

from __future__ import annotations

import ast
import importlib
import io
import re
import sys
import tokenize

# Only for unit tests and type checkers: in buildspec.yml these names are inlined by render_program().
from ansible_collections.cloudops.ecr_replication.plugins.module_utils.batching import decode_batch  # noqa: F401
from ansible_collections.cloudops.ecr_replication.plugins.module_utils.batching import join_env  # noqa: F401
from ansible_collections.cloudops.ecr_replication.plugins.module_utils.replication_results import (  # noqa: F401
    format_result,
)

ENV_DOC = {
    "REPL_BATCH_PARTS, REPL_BATCH_<n>": "the batch (batching.py), required",
    "REPL_DEST_REGION": "destination region, required",
    "REPL_SOURCE_REGION": "source region (default AWS_REGION / AWS_DEFAULT_REGION)",
    "REPL_DEST_ACCOUNT": "destination registry id (default: the account of the destination credentials)",
    "REPL_DEST_ROLE_ARN": "role to assume for the destination (default: use the build's own credentials)",
    "REPL_EXTERNAL_ID": "sts:ExternalId for that role",
    "REPL_PARALLEL": "copies at a time (4)",
    "REPL_FORCE_TAGS": "move destination tags that point elsewhere (false)",
    "REPL_PUT_TPS": "PutImage-class calls per second for this build (10)",
    "REPL_RETRIES": "retries per registry operation (4)",
    "REPL_BACKOFF": "first backoff in seconds, doubled each retry (2)",
    "REPL_TOKEN_MAX_AGE": "refresh registry tokens older than this many seconds (39600)",
    "REPL_CREDENTIALS_MAX_AGE": "re-assume the destination role after this many seconds (2700)",
    "REPL_CREATE_REPOSITORIES": "create missing destination repositories (true)",
    "REPL_COPY_LIFECYCLE_POLICY": "give created repositories the source lifecycle policy (false)",
    "REPL_COPY_REPOSITORY_POLICY": "give created repositories the source repository policy (false)",
    "REPL_KMS_KEY": "KMS key of repositories created for a KMS-encrypted source (default: the AWS managed key)",
    "REPL_PACE_FILE": "a file the copy programs of one machine lock to share REPL_PUT_TPS (strategy local)",
}


# bundle:start replicator
import base64
import binascii  # noqa: F401  # pylint: disable=unused-import
import concurrent.futures
import contextlib
import fcntl
import hashlib
import http.client
import json
import os
import random
import re
import signal
import ssl
import sys
import threading
import time
import urllib.parse
import zlib  # noqa: F401  # pylint: disable=unused-import

try:
    import boto3
    from botocore.config import Config
    from botocore.exceptions import ClientError
except ImportError:  # Ansible imports this file too; only the program needs boto3
    boto3 = Config = ClientError = None

# Retried. Not LimitExceededException: a quota, not a rate; the image fails.
RETRY_CODES = ("ThrottlingException", "ServerException", "InternalFailure", "ServiceUnavailable", "RequestTimeout")
# Every type ECR stores: BatchGetImage may convert a manifest to a type not asked for (another digest).
MEDIA_TYPES = ["application/vnd.%s" % t for t in (
    "docker.distribution.manifest.v2+json", "docker.distribution.manifest.list.v2+json", "oci.image.manifest.v1+json",
    "oci.image.index.v1+json", "docker.distribution.manifest.v1+json", "docker.distribution.manifest.v1+prettyjws")]


def _code(error):
    return error.response.get("Error", {}).get("Code") if isinstance(error, ClientError) else None


class HTTPError(Exception):
    def __init__(self, status, what, body="", gen=0):
        super().__init__("HTTP %d %s: %s" % (status, what, body[:300]))
        self.status, self.gen = status, gen
        # ECR: 403 "denied: Your authorization token has expired" (no body to a HEAD): refresh, retry
        self.expired = status == 401 or status == 403 and ("expired" in body.lower() or not body)


def transient(e):
    if isinstance(e, HTTPError):
        return e.status >= 500 or e.status == 429 or e.expired
    if isinstance(e, ClientError):
        return _code(e) in RETRY_CODES or e.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) >= 500
    # resets, timeouts, a body cut short; botocore's EndpointConnectionError, ...
    return isinstance(e, (OSError, http.client.HTTPException)) or type(e).__name__.endswith(
        ("ConnectionError", "ConnectionClosedError", "TimeoutError"))


class Manifests(dict):
    """digest -> (manifest text, media type), of the source."""

    def __missing__(self, digest):
        raise RuntimeError("manifest unknown or damaged in the source: %s" % digest)


class Replicator:
    """One batch: ``run()`` returns the process exit status."""

    def __init__(self, env=None, out=None):
        e = self.env = dict(os.environ if env is None else env)
        self.out = out or sys.stdout

        def number(name, default, kind=float):
            try:
                return kind(e.get(name) or default)
            except ValueError:
                raise SystemExit("%s=%r is not a number" % (name, e.get(name))) from None

        def flag(name, default):
            value = (e.get(name) or "").strip().lower()
            return default if not value else value in ("1", "true", "yes", "on")

        self.source_region = e.get("REPL_SOURCE_REGION") or e.get("AWS_REGION") or e.get("AWS_DEFAULT_REGION")
        self.dest_region = e.get("REPL_DEST_REGION")
        self.dest_account = e.get("REPL_DEST_ACCOUNT")
        self.role_arn = e.get("REPL_DEST_ROLE_ARN")
        self.external_id = e.get("REPL_EXTERNAL_ID")
        self.parallel = max(1, number("REPL_PARALLEL", 4, int))
        self.force_tags = flag("REPL_FORCE_TAGS", False)
        self.retries = max(0, number("REPL_RETRIES", 4, int))
        self.backoff = max(0.0, number("REPL_BACKOFF", 2.0))
        self.token_max_age = number("REPL_TOKEN_MAX_AGE", 39600.0)
        self.creds_max_age = number("REPL_CREDENTIALS_MAX_AGE", 2700.0)
        self.create_repos = flag("REPL_CREATE_REPOSITORIES", True)
        self.copy_policies = [p for p, on in (
            (("get_lifecycle_policy", "put_lifecycle_policy", "lifecyclePolicyText"), "REPL_COPY_LIFECYCLE_POLICY"),
            (("get_repository_policy", "set_repository_policy", "policyText"), "REPL_COPY_REPOSITORY_POLICY"),
        ) if flag(on, False)]
        tps = max(0.1, number("REPL_PUT_TPS", 10.0))
        self.interval = 1.05 / (int(tps) if tps >= 1 else tps)  # see put()
        self.burst, self.answers = max(1, int(tps)), []  # PutImage answer times, the last int(tps)
        # not before an interval: the build this one follows in its slot may have just written
        self.next_put = time.time() + self.interval
        self.registry = {"registryId": self.dest_account} if self.dest_account else {}
        self.slots = threading.BoundedSemaphore(self.parallel)  # blob transfers, all repositories
        self.secrets = set()
        self.lock, self.token_lock, self.put_lock = threading.RLock(), threading.Lock(), threading.Lock()
        self.local = threading.local()
        # one for all connections: a new one reads the CA bundle (tens of ms of CPU)
        self.tls = ssl.create_default_context()
        self.done, self.mounts, self.hints = {}, {}, {}  # once(); digest -> first repository; REPL_BATCH's "m"
        self.pace = e.get("REPL_PACE_FILE")
        self.auth = self.source_ecr = self.dest_ecr = None
        self.creds_at = self.tokens_at = self.gen = 0

    def log(self, message):
        message = str(message)
        for secret in sorted(self.secrets, key=len, reverse=True):
            message = message.replace(secret, "****")
        with self.lock:
            self.out.write(message + "\n")
            self.out.flush()

    def client(self, service, region, **credentials):
        # one attempt: retry() decides (botocore retries LimitExceededException)
        config = Config(retries={"total_max_attempts": 1}, max_pool_connections=64)
        return boto3.session.Session(**credentials).client(service, region_name=region, config=config)

    def retry(self, what, func):
        """func() until it succeeds, fails for good, or has been retried REPL_RETRIES times (jittered back-off)."""
        for attempt in range(1, self.retries + 2):
            try:
                return func()
            except Exception as e:  # pylint: disable=broad-except
                if attempt > self.retries or not transient(e):
                    raise
                delay = min(60.0, self.backoff * 2 ** (attempt - 1)) * (0.5 + random.random())
                if getattr(e, "expired", False):
                    self.refresh_tokens(e.gen)
                    delay = 0
                self.local.retries = getattr(self.local, "retries", 0) + 1
                self.log("retry %s in %.1fs (attempt %d failed: %s: %s)" % (what, delay, attempt, type(e).__name__, e))
                time.sleep(delay)

    def api(self, func, **kwargs):
        return self.retry(func.__name__, lambda: func(**kwargs))

    def pages(self, func, key, **kwargs):
        items, token = [], None
        while True:
            page = self.api(func, **kwargs, **({"nextToken": token} if token else {}))
            items += page.get(key) or []
            token = page.get("nextToken")
            if not token:
                return items

    def dest(self):
        """The destination ECR client: the assumed role's (credentials in memory only, renewed) or the build's."""
        with self.lock:
            if self.dest_ecr is None or self.role_arn and time.monotonic() - self.creds_at > self.creds_max_age:
                creds = {}
                if self.role_arn:
                    name = "ecr-replication-" + re.sub(r"[^\w+=,.@-]", "-", self.env.get("CODEBUILD_BUILD_ID", "local"))
                    extra = {"ExternalId": self.external_id} if self.external_id else {}
                    try:
                        c = self.api(self.client("sts", self.dest_region).assume_role,
                                     RoleArn=self.role_arn, RoleSessionName=name[:64], **extra)["Credentials"]
                    except Exception as e:
                        raise RuntimeError("cannot assume the destination role %s: %s" % (self.role_arn, e)) from None
                    self.secrets.update((c["SecretAccessKey"], c["SessionToken"]))
                    creds = {"aws_access_key_id": c["AccessKeyId"], "aws_secret_access_key": c["SecretAccessKey"],
                             "aws_session_token": c["SessionToken"]}
                self.dest_ecr, self.creds_at = self.client("ecr", self.dest_region, **creds), time.monotonic()
            return self.dest_ecr

    def refresh_tokens(self, gen=None):
        """Registry tokens when missing, older than REPL_TOKEN_MAX_AGE, or (``gen``) refused: once for all threads."""
        with self.token_lock:
            if self.auth and (self.gen != gen if gen is not None else
                              time.monotonic() - self.tokens_at < self.token_max_age):
                return
            ids = {"registryIds": [self.dest_account]} if self.dest_account else {}
            auth = {}
            for side, ecr, kwargs in (("src", self.source_ecr, {}), ("dst", self.dest(), ids)):
                a = self.api(ecr.get_authorization_token, **kwargs)["authorizationData"][0]
                url = urllib.parse.urlsplit(a["proxyEndpoint"] if "://" in a["proxyEndpoint"] else "https://" + a["proxyEndpoint"])
                self.secrets.update((a["authorizationToken"], base64.b64decode(a["authorizationToken"]).decode().partition(":")[2]))
                auth[side] = (url.scheme, url.netloc.lower(), "Basic " + a["authorizationToken"])
            if self.auth:
                self.log("registry tokens renewed")
            self.auth, self.tokens_at, self.gen = auth, time.monotonic(), self.gen + 1

    def req(self, side, method, url, body=None, headers=None, ok=(200,), stream=False):
        """One registry request (this thread's keep-alive connections); the response, read unless ``stream``.
        Redirects are followed (ECR sends blob GETs to S3) without the registry's token once they leave its host."""
        self.refresh_tokens()
        scheme, host, token = self.auth[side]
        gen, pool, headers = self.gen, self.local.__dict__.setdefault("conns", {}), dict(headers or {})
        for _hop in range(5):
            if "://" in url:
                u = urllib.parse.urlsplit(url)
                scheme, host, url = u.scheme, u.netloc, u.path + ("?" + u.query if u.query else "")
            if host == self.auth[side][1]:
                headers["Authorization"] = token
            else:
                headers.pop("Authorization", None)
            for reused in (True, False):
                conn = pool.get((scheme, host))
                reused = reused and conn is not None
                if not reused:
                    conn = pool[scheme, host] = (http.client.HTTPSConnection(host, timeout=120, context=self.tls)
                                                 if scheme == "https" else http.client.HTTPConnection(host, timeout=120))
                try:
                    conn.request(method, url, body=body, headers=headers)
                    r = conn.getresponse()
                    break
                except (OSError, http.client.HTTPException):
                    pool.pop((scheme, host)).close()
                    # a keep-alive connection closed by the server: once more on a new one
                    if not reused or body is not None and not isinstance(body, bytes):
                        raise
            if r.status in (301, 302, 303, 307, 308) and method in ("GET", "HEAD"):
                r.read()
                url = urllib.parse.urljoin("%s://%s%s" % (scheme, host, url), r.getheader("Location"))
                continue
            if r.status not in ok:
                raise HTTPError(r.status, method + " " + url.split("?")[0], r.read().decode("utf-8", "replace"), gen)
            if not stream:
                r.read()
            return r
        raise HTTPError(310, url, "too many redirects")

    def put_blob(self, name, blob):
        """One blob into a destination repository: there already, mounted from the repository this build first put
        it in or the batch names (an earlier build put it there), or streamed from the source (POST, PATCH,
        PUT ?digest=). A retry starts again from the HEAD."""
        digest, base = blob["digest"], "/v2/%s/blobs/" % name
        if self.req("dst", "HEAD", base + digest, ok=(200, 404)).status == 200:
            return
        with self.lock:  # the first repository to need it uploads it, the others then mount it
            mine = digest not in self.mounts
            first = self.mounts.setdefault(digest, concurrent.futures.Future())
        mount = (None if mine else first.result()) or self.hints.get(digest)
        try:
            query = "?" + urllib.parse.urlencode({"mount": digest, "from": mount}) if mount else ""
            r = self.req("dst", "POST", base + "uploads/" + query, ok=(201, 202))
            if r.status == 202:  # no mount: upload
                src = self.req("src", "GET", base + digest, stream=True)
                r = self.req("dst", "PATCH", r.getheader("Location"), body=iter(lambda: src.read(1 << 20), b""),
                             headers={"Content-Type": "application/octet-stream",
                                      "Content-Length": str(blob["size"])}, ok=(202,))
                loc = r.getheader("Location")
                self.req("dst", "PUT", loc + ("&" if "?" in loc else "?") + "digest=" + digest, body=b"", ok=(201,))
        except Exception:
            for conn in self.local.__dict__.pop("conns", {}).values():  # half-read answers
                conn.close()
            if mine:
                first.set_result(None)  # the others upload it themselves
            raise
        if mine:
            first.set_result(name)

    def once(self, key, func):
        """func() once per key in this build: the first caller runs it, the others wait for its outcome."""
        with self.lock:
            mine = key not in self.done
            future = self.done.setdefault(key, concurrent.futures.Future())
        if mine:
            try:
                future.set_result(func())
            except Exception as e:  # pylint: disable=broad-except
                future.set_exception(e)
        return future.result()

    def put(self, name, manifest, digest, tag=None):
        """PutImage (by digest without a tag), paced; each attempt counts, as ECR counts them.

        One call at a time, an interval apart, and the n-th call after one not before a second after that one's
        answer: ECR counts a call when it arrives, somewhere between its start and its answer, so it sees at most
        n = int(REPL_PUT_TPS) calls in any second whatever the latencies (a call held up on its way, then answered
        as the next one leaves, would otherwise count in the same second as the next n), and builds whose shares
        add up to 10 stay within ECR's limit together. ``REPL_PACE_FILE``: the programs of one machine (strategy
        local) take turns through that file (the next start and the last answers), and so share the whole budget.
        """
        text, media_type = manifest
        args = dict(self.registry, repositoryName=name, imageManifest=text, imageDigest=digest)
        args.update({"imageTag": tag} if tag else {}, **{"imageManifestMediaType": media_type} if media_type else {})

        def call():
            # ECR sees at most int(REPL_PUT_TPS) in any second, whatever the latencies (see put())
            with self.put_lock, open(self.pace, "a+") if self.pace else contextlib.nullcontext() as f:
                if f:
                    fcntl.flock(f, fcntl.LOCK_EX)
                    f.seek(0)
                    shared = [float(t) for t in f.read().split()]
                    self.next_put, self.answers = max([self.next_put] + shared[:1]), shared[1:][-self.burst :]
                time.sleep(max(0.0, self.next_put - time.time(),
                               self.answers[0] + 1 - time.time() if len(self.answers) == self.burst else 0))
                self.next_put = time.time() + self.interval
                try:
                    self.dest().put_image(**args)
                except ClientError as e:
                    if _code(e) != "ImageAlreadyExistsException":  # an attempt that timed out did it
                        raise
                finally:
                    self.answers = (self.answers + [time.time()])[-self.burst :]
                    if f:
                        f.truncate(0)
                        f.write(" ".join(map(repr, [self.next_put] + self.answers)))
                        f.flush()

        self.retry("PutImage %s@%s" % (name, tag or digest), call)

    def manifest(self, name, digest, manifests, tag=None):
        """Blobs, then child manifests, then the manifest itself: a tag never names an image not all there."""
        doc = json.loads(manifests[digest][0])
        with self.slots:
            for blob in [doc.get("config") or {}] + (doc.get("layers") or []):
                if blob.get("digest") and "foreign" not in blob.get("mediaType", ""):  # not in registries
                    self.once(("b", name, blob["digest"]), lambda b=blob: self.retry(
                        "blob %s@%s" % (name, b["digest"]), lambda: self.put_blob(name, b)))
        for child in doc.get("manifests") or []:
            self.once(("m", name, child["digest"]), lambda c=child["digest"]: self.manifest(name, c, manifests))
        self.put(name, manifests[digest], digest, tag)

    def prepare_repository(self, name):
        """Create the destination repository when missing; return its tag mutability and {tag: digest, digest: ""}."""
        ecr = self.dest()
        try:
            repo = self.api(ecr.describe_repositories, repositoryNames=[name], **self.registry)["repositories"][0]
        except ClientError as e:
            if _code(e) != "RepositoryNotFoundException" or not self.create_repos:
                raise
            repo = self.retry("create " + name, lambda: self.create_repository(name))
        ids = self.pages(self.dest().list_images, "imageIds", repositoryName=name, **self.registry)
        return repo.get("imageTagMutability", "MUTABLE"), dict(
            [(i["imageDigest"], "") for i in ids] + [(i["imageTag"], i["imageDigest"]) for i in ids if "imageTag" in i])

    def create_repository(self, name):
        src = self.source_ecr.describe_repositories(repositoryNames=[name])["repositories"][0]
        args = {"repositoryName": name, "imageTagMutability": src.get("imageTagMutability", "MUTABLE"),
                "imageScanningConfiguration": {"scanOnPush": src["imageScanningConfiguration"]["scanOnPush"]},
                # the source's KMS key is of its account and region: REPL_KMS_KEY, else the AWS managed key
                "encryptionConfiguration": {"encryptionType": src["encryptionConfiguration"]["encryptionType"]}}
        if args["encryptionConfiguration"]["encryptionType"].startswith("KMS") and self.env.get("REPL_KMS_KEY"):
            args["encryptionConfiguration"]["kmsKey"] = self.env["REPL_KMS_KEY"]
        if src.get("imageTagMutabilityExclusionFilters"):
            args["imageTagMutabilityExclusionFilters"] = src["imageTagMutabilityExclusionFilters"]
        try:
            repo = self.dest().create_repository(**args, **self.registry)["repository"]
        except ClientError as e:
            if _code(e) != "RepositoryAlreadyExistsException":  # another build was faster
                raise
            return self.dest().describe_repositories(repositoryNames=[name], **self.registry)["repositories"][0]
        self.log("created repository %s (%s)" % (name, args["imageTagMutability"]))
        for get, put, key in self.copy_policies:
            try:
                text = getattr(self.source_ecr, get)(repositoryName=name)[key]
            except ClientError as e:
                if not _code(e).endswith("PolicyNotFoundException"):
                    raise
            else:
                getattr(self.dest(), put)(repositoryName=name, **{key: text}, **self.registry)
        return repo

    def replicate_repository(self, name, images):
        """Copy, tag and verify the batch's images of one repository; print one RESULT line per image."""
        results = [dict(i, status="pending", bytes=0, seconds=0, error=None, tags_applied=[], attempts=0) for i in images]
        try:
            mutability, have = self.prepare_repository(name)
            for d in have:  # manifests already there are never written again
                self.done.setdefault(("m", name, d), concurrent.futures.Future()).set_result(None)
            movable = self.force_tags and not mutability.startswith("IMMUTABLE")
            for r in results:
                r["conflicts"] = {t: have[t] for t in r["tags"] if have.get(t, r["digest"]) != r["digest"]}
                r["to_tag"] = [t for t in r["tags"] if have.get(t) != r["digest"] and (t not in r["conflicts"] or movable)]
                r["copied"] = r["digest"] not in have
            todo = [r for r in results if r["copied"] or r["to_tag"]]
            manifests, want = Manifests(), list(dict.fromkeys(r["digest"] for r in todo))
            while want:  # and missing children, 100 a call
                answer = self.api(self.source_ecr.batch_get_image, repositoryName=name, acceptedMediaTypes=MEDIA_TYPES,
                                  imageIds=[{"imageDigest": d} for d in want[:100]])
                want = want[100:]
                for i in answer["images"]:
                    text, digest = i["imageManifest"], i["imageId"]["imageDigest"]
                    if "sha256:" + hashlib.sha256(text.encode()).hexdigest() == digest:
                        manifests[digest] = (text, i.get("imageManifestMediaType"))
                        want += [m["digest"] for m in json.loads(text).get("manifests") or []
                                 if m["digest"] not in have and m["digest"] not in manifests and m["digest"] not in want]
            # indexes first: their children are then written once, before anything names them
            todo.sort(key=lambda r: (not r["copied"], -len(manifests.get(r["digest"], ("",))[0])))
            with concurrent.futures.ThreadPoolExecutor(self.parallel) as pool:
                list(pool.map(lambda r: self.copy_image(r, manifests), todo))
            self.verify(name, results)
        except Exception as e:  # each of its images fails with the reason
            for r in results:
                if r["status"] == "pending":
                    r["status"], r["error"] = "failed", "%s: %s" % (type(e).__name__, e)
        for r in results:
            for key in ("copied", "to_tag"):
                r.pop(key, None)
            self.log(format_result(r))
        return results

    def copy_image(self, r, manifests):
        """A missing digest: its blobs and children, then one PutImage under its first missing tag (by digest if it
        has none); then one PutImage of the same manifest bytes per further missing tag."""
        name, digest, started = r["repository"], r["digest"], time.monotonic()
        self.local.retries = 0
        try:
            if r["copied"]:
                ran = []
                first = r["to_tag"][:1]
                self.once(("m", name, digest), lambda: ran.append(1) or self.manifest(name, digest, manifests, *first))
                r["tags_applied"] += first if ran else []
            for tag in r["to_tag"][len(r["tags_applied"]) :]:
                self.put(name, manifests[digest], digest, tag)
                r["tags_applied"].append(tag)
            for tag in r["tags_applied"]:
                r["conflicts"].pop(tag, None)
        except Exception as e:  # one image never stops the batch
            r["status"], r["error"] = "failed", "%s: %s" % (type(e).__name__, e)
        r["attempts"] = 1 + self.local.retries
        r["seconds"] = round(time.monotonic() - started, 2)

    def verify(self, name, results):
        """Read every copied or tagged image back, one DescribeImages per 100; nothing is reported copied before."""
        work = [r["digest"] for r in results if r["status"] == "pending" and (r["copied"] or r["tags_applied"])]
        found = {}
        for n in range(0, len(work), 100):
            try:
                details = self.api(self.dest().describe_images, repositoryName=name, **self.registry,
                                   imageIds=[{"imageDigest": d} for d in work[n : n + 100]])["imageDetails"]
            except ClientError as e:  # one missing digest fails it all: read all
                if _code(e) != "ImageNotFoundException":
                    raise
                details = self.pages(self.dest().describe_images, "imageDetails", repositoryName=name, **self.registry)
            found.update({d["imageDigest"]: d for d in details})
        for r in (r for r in results if r["status"] == "pending"):
            detail = found.get(r["digest"])
            missing = set(r["tags"]) - set(r["conflicts"]) - set((detail or {}).get("imageTags") or [])
            if r["digest"] in work and (not detail or missing):
                r["status"] = "failed"
                r["error"] = "verification failed: %s" % (
                    "tags %s not on the digest" % ", ".join(sorted(missing))
                    if detail else "the digest is not in the destination")
            elif r["conflicts"]:
                r["status"] = "tag_conflict"
                r["error"] = "destination tags point to other digests: %s" % ", ".join(sorted(r["conflicts"]))
            else:
                r["status"] = "copied" if r["digest"] in work else "present"
                r["bytes"] = detail.get("imageSizeInBytes", 0) if r["copied"] else 0

    def run(self):
        images = decode_batch(join_env(self.env), self.hints)
        if not self.dest_region or not self.source_region:
            raise SystemExit("REPL_DEST_REGION and REPL_SOURCE_REGION (or AWS_REGION) are required")
        self.log("replicating %d images from %s to %s%s, %d copies at a time, boto3 %s" % (
            len(images), self.source_region, self.dest_region, " as " + self.role_arn if self.role_arn else "",
            self.parallel, boto3.__version__))
        by_repo = {}
        for image in images:
            by_repo.setdefault(image["repository"], []).append(image)
        try:
            self.source_ecr = self.client("ecr", self.source_region)
            self.refresh_tokens()
        except Exception as e:  # every image fails with the reason
            results = [dict(i, status="failed", bytes=0, seconds=0, error="%s: %s" % (type(e).__name__, e)) for i in images]
            for r in results:
                self.log(format_result(r))
            return self.finish(results)
        # REPL_PARALLEL repositories side by side, as many images each; self.slots caps blob transfers
        with concurrent.futures.ThreadPoolExecutor(self.parallel) as pool:
            done = pool.map(lambda item: self.replicate_repository(*item), sorted(by_repo.items()))
            return self.finish([r for results in done for r in results])

    def finish(self, results):
        counts = {}
        for r in results:
            counts[r["status"]] = counts.get(r["status"], 0) + 1
        self.log("SUMMARY " + json.dumps(counts, sort_keys=True))
        return 1 if counts.get("failed") else 0


def main(env=None):
    for sig in (signal.SIGTERM, signal.SIGINT):  # no files to remove: secrets live in memory
        signal.signal(sig, lambda signum, _frame: os._exit(128 + signum))
    return Replicator(env).run()


# bundle:end replicator

# What the program takes from the other module_utils files, by name: only these definitions are inlined, so the
# plain-text program fits in an inline buildspec.
BUNDLE = {
    "batching": ("BATCH_PARTS_VAR", "BATCH_PART_PREFIX", "ENCODING_PREFIX", "BatchEncodingError", "join_env",
                 "decode_batch"),
    "replication_results": ("RESULT_PREFIX", "format_result"),
}
HEREDOC = "REPLICATOR_PY"
PACKAGE = "ansible_collections.cloudops.ecr_replication.plugins.module_utils"
# Installed by the build when its image has no boto3; the same pin as requirements.txt (a unit test checks).
BOTO3_PIN = "boto3==1.44.5"

MAX_BUILDSPEC_CHARS = 25600  # CodeBuild: "Max buildspec length is 25600" (inline buildspec of a project)

# The YAML is indented by one space a level so that the program, a block scalar, costs three characters of
# indentation a line: the inline limit is on characters, indentation included.
BUILDSPEC = """\
# cloudops.ecr_replication: copies a batch of ECR images (REPL_* variables) to another region/account, one
# RESULT line per image. Generated from plugins/module_utils/replicator.py (make buildspec), commented there.
version: 0.2
env:
 shell: bash
phases:
 install:
  commands:
  - |
   python3 -c 'import importlib.util as u;exit(not u.find_spec("boto3"))' || python3 -m pip install -q --user '%(boto3)s'
 build:
  commands:
  - |
   set +x
   python3 - <<'%(heredoc)s'
%(program)s
   %(heredoc)s
"""


def _source(name: str) -> str:
    """Source text of a sibling module_utils file; works from files, zips (AnsiballZ) and Ansible's loader."""
    module = importlib.import_module("%s.%s" % (PACKAGE, name))
    loader = getattr(module, "__loader__", None)
    text = None
    try:
        text = loader.get_source(module.__name__) if loader is not None else None
    except (ImportError, OSError):
        text = None
    if text is None:
        with open(module.__file__, encoding="utf-8") as handle:
            text = handle.read()
    # Ansible's collection loader on the controller (action plugins) answers bytes
    return text.decode("utf-8") if isinstance(text, bytes) else text


def _without_docstrings(text: str) -> str:
    """``text`` (whole statements) without docstrings and end-of-line comments: they are read in the source files;
    the program keeps its comment lines and must fit in an inline buildspec."""
    lines = text.splitlines()
    for token in tokenize.generate_tokens(io.StringIO(text).readline):
        if token.type == tokenize.COMMENT and lines[token.start[0] - 1][: token.start[1]].strip():
            row = token.start[0] - 1
            lines[row] = lines[row][: token.start[1]].rstrip()
    text = "\n".join(lines)
    replaced = {}  # line number -> new text, None to drop it
    for node in ast.walk(ast.parse(text)):
        body = getattr(node, "body", None)
        if isinstance(body, list) and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
            replaced.update(dict.fromkeys(range(body[0].lineno, body[0].end_lineno + 1)))
            if len(body) == 1:  # a class that is only its docstring
                replaced[body[0].lineno] = " " * body[0].col_offset + "pass"
    kept = (replaced.get(n, line) for n, line in enumerate(lines, 1))
    return "\n".join(line for line in kept if line is not None)


def _definitions(name: str, wanted: tuple) -> str:
    """The top-level definitions ``wanted`` of module_utils/<name>.py, in the order of the file."""
    text = _source(name)
    found = {}
    for node in ast.parse(text).body:
        targets = [node.name] if hasattr(node, "name") else [t.id for t in getattr(node, "targets", []) if hasattr(t, "id")]
        if set(targets) & set(wanted):
            found[targets[0]] = (node.lineno, ast.get_source_segment(text, node), hasattr(node, "body"))
    missing = sorted(set(wanted) - set(found))
    if missing:
        raise RuntimeError("module_utils/%s.py has no %s" % (name, ", ".join(missing)))
    # PEP 8 spacing: two blank lines around functions and classes, none between constants
    out, spaced = "", False
    for _line, segment, block in sorted(found.values()):
        out += ("\n\n\n" if out and (block or spaced) else "\n" if out else "") + segment
        spaced = block
    return out


def render_program() -> str:
    """The standalone copy program: replicator's imports, the definitions it uses from the other files, then the
    rest of replicator's bundle region; without docstrings."""
    region = re.search(r"^# bundle:start replicator\n(.*?)^# bundle:end", _source("replicator"), flags=re.S | re.M)
    imports, _sep, rest = region.group(1).strip("\n").partition("\n\n\n")
    parts = ["# cloudops.ecr_replication copy program, generated from plugins/module_utils (see replicator.py).\n"
             "from __future__ import annotations\n" + imports]
    parts.extend(_definitions(name, wanted) for name, wanted in BUNDLE.items())
    parts.extend([rest, "sys.exit(main())"])
    # linter directives are for this file; the bundled definitions of batching use binascii and zlib
    program = re.sub(r"  # (noqa|pylint): [^\n]*", "", "\n\n\n".join(parts))
    # two spaces a level, not four: the inline limit counts indentation too (the program has no multi-line
    # strings, and inside brackets Python ignores it)
    return re.sub(r"(?m)^((?:  )+)\1", r"\1", _without_docstrings(program)) + "\n"


def render_buildspec() -> str:
    """buildspec.yml: the install phase (skopeo, boto3) and the program in plain text, within CodeBuild's limit."""
    program = "\n".join(("   " + line).rstrip() for line in render_program().splitlines())
    text = BUILDSPEC % {"heredoc": HEREDOC, "program": program, "boto3": BOTO3_PIN}
    if len(text) > MAX_BUILDSPEC_CHARS:
        raise RuntimeError("buildspec.yml would have %d characters, CodeBuild accepts %d" % (len(text), MAX_BUILDSPEC_CHARS))
    return text


if __name__ == "__main__":
    sys.stdout.write(render_program() if sys.argv[1:] == ["--program"] else render_buildspec())
