# -*- coding: utf-8 -*-

# Copyright: Contributors to the Ansible project
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""The copy program of ``buildspec.yml``, and how ``buildspec.yml`` is made from it.

CodeBuild projects without source (``NO_SOURCE``) only get the buildspec text, so the program must be inside
it. It is written here as ordinary, testable Python (standard library only, plus the ``aws`` CLI and
``skopeo`` it runs), and ``render_buildspec()`` inlines it, together with the ``bundle:start``..``bundle:end``
parts of ``registry.py``, ``rate_limit.py``, ``batching.py`` and ``replication_results.py``, into a
``python3 - <<'REPLICATOR_PY'`` heredoc. ``buildspec.yml`` at the repository root is that output, checked in;
a unit test fails when it is out of date. Regenerate it with::

    PYTHONPATH=.ansible/collections .venv/bin/python -m \\
        ansible_collections.cloudops.ecr_replication.plugins.module_utils.replicator > buildspec.yml

What the program does for one batch (environment variables in ``ENV_DOC``):

* source auth: the build's own credentials (``aws ecr get-authorization-token`` in the source region);
* destination auth: ``aws sts assume-role`` (with ``ExternalId``) into the destination role; the temporary
  credentials stay in memory and reach only the ``aws`` processes that need them, through their environment
  (never a profile file, never a command line, never printed);
* registry tokens reach ``skopeo`` through one auth file in a ``mkdtemp`` directory (mode 0700, file 0600,
  rewritten atomically when refreshed, removed at exit and on SIGTERM/SIGINT). ``--creds`` would put the
  password on a command line, readable from ``/proc`` by any process of the build;
* registry hosts come from ``proxyEndpoint`` (``registry.py``), TLS settings from the containers
  configuration of the environment (no ``--tls-verify`` flag is passed);
* a missing destination repository is created with the source repository's tag mutability, scan on push and
  encryption type (and, when asked, its lifecycle and repository policies);
* each image: ``skopeo copy --all --preserve-digests src@digest dst@digest`` unless the digest is already
  there, then one ``PutImage`` per missing tag (a tag that points elsewhere is a ``tag_conflict`` unless
  ``REPL_FORCE_TAGS``; in an IMMUTABLE repository it stays a conflict), then verification through the ECR API
  (digest present, tags on it) before the image is reported ``copied``;
* copies run ``REPL_PARALLEL`` at a time with retries and exponential backoff; ``PutImage``-class calls (one
  per manifest pushed) go through a token bucket of ``REPL_PUT_TPS``; registry tokens are refreshed when
  older than ``REPL_TOKEN_MAX_AGE`` seconds (11 h) and destination credentials before they expire;
* one ``RESULT {json}`` line per image (``replication_results.py``), ``SUMMARY {json}`` at the end; the exit
  status is 1 when any image failed.
"""

from __future__ import annotations

import ast
import importlib
import re
import sys

# Only for unit tests and type checkers: in buildspec.yml these names are inlined by render_program().
from ansible_collections.cloudops.ecr_replication.plugins.module_utils.batching import decode_batch  # noqa: F401
from ansible_collections.cloudops.ecr_replication.plugins.module_utils.batching import join_env  # noqa: F401
from ansible_collections.cloudops.ecr_replication.plugins.module_utils.rate_limit import TokenBucket  # noqa: F401
from ansible_collections.cloudops.ecr_replication.plugins.module_utils.registry import auth_file_content  # noqa: F401
from ansible_collections.cloudops.ecr_replication.plugins.module_utils.registry import image_reference  # noqa: F401
from ansible_collections.cloudops.ecr_replication.plugins.module_utils.registry import registry_host  # noqa: F401
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
}


# bundle:start replicator
import base64
import binascii  # noqa: F401  # pylint: disable=unused-import
import concurrent.futures
import hashlib
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import zlib  # noqa: F401  # pylint: disable=unused-import

try:
    import boto3
    from botocore.config import Config
    from botocore.exceptions import ClientError
except ImportError:  # Ansible imports this file too; only the program needs boto3
    boto3 = Config = ClientError = None

PERMANENT_COPY = ("manifest unknown", "name unknown", "denied", "not authorized", "invalid reference")
# Every type ECR stores: BatchGetImage may convert a manifest to a type it was not asked for (another digest).
MEDIA_TYPES = ["application/vnd.%s" % t for t in (
    "docker.distribution.manifest.v2+json", "docker.distribution.manifest.list.v2+json", "oci.image.manifest.v1+json",
    "oci.image.index.v1+json", "docker.distribution.manifest.v1+json", "docker.distribution.manifest.v1+prettyjws")]


def _code(error):
    return error.response.get("Error", {}).get("Code") if isinstance(error, ClientError) else None


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
        # no burst: a full bucket would let twice the rate through in one second
        self.bucket = TokenBucket(max(0.1, number("REPL_PUT_TPS", 10.0)), 1)
        self.skopeo_bin = e.get("REPL_SKOPEO") or "skopeo"
        self.registry = {"registryId": self.dest_account} if self.dest_account else {}
        self.slots = threading.BoundedSemaphore(self.parallel)  # skopeo processes, all repositories
        self.secrets = set()
        self.lock = threading.RLock()
        self.workdir = self.authfile = self.src = self.dst = self.source_ecr = self.dest_ecr = None
        self.creds_at = self.tokens_at = 0.0

    def log(self, message):
        message = str(message)
        for secret in sorted(self.secrets, key=len, reverse=True):
            message = message.replace(secret, "****")
        with self.lock:
            self.out.write(message + "\n")
            self.out.flush()

    def client(self, service, region, **credentials):
        config = Config(retries={"mode": "standard", "max_attempts": 6}, max_pool_connections=32)
        return boto3.session.Session(**credentials).client(service, region_name=region, config=config)

    def dest(self):
        """The destination ECR client: the assumed role's (credentials in memory only, renewed) or the build's."""
        with self.lock:
            if self.dest_ecr is None or self.role_arn and time.monotonic() - self.creds_at > self.creds_max_age:
                creds = {}
                if self.role_arn:
                    name = "ecr-replication-" + re.sub(r"[^\w+=,.@-]", "-", self.env.get("CODEBUILD_BUILD_ID", "local"))
                    extra = {"ExternalId": self.external_id} if self.external_id else {}
                    try:
                        c = self.client("sts", self.dest_region).assume_role(
                            RoleArn=self.role_arn, RoleSessionName=name[:64], **extra)["Credentials"]
                    except Exception as e:
                        raise RuntimeError("cannot assume the destination role %s: %s" % (self.role_arn, e)) from None
                    self.secrets.update((c["SecretAccessKey"], c["SessionToken"]))
                    creds = {"aws_access_key_id": c["AccessKeyId"], "aws_secret_access_key": c["SecretAccessKey"],
                             "aws_session_token": c["SessionToken"]}
                self.dest_ecr, self.creds_at = self.client("ecr", self.dest_region, **creds), time.monotonic()
            return self.dest_ecr

    def refresh_tokens(self, force=False):
        with self.lock:
            if not force and self.src and time.monotonic() - self.tokens_at < self.token_max_age:
                return
            src = self.source_ecr.get_authorization_token()["authorizationData"][0]
            ids = {"registryIds": [self.dest_account]} if self.dest_account else {}
            dst = self.dest().get_authorization_token(**ids)["authorizationData"][0]
            auths = {registry_host(a["proxyEndpoint"]): a["authorizationToken"] for a in (src, dst)}
            if len(auths) < 2:
                raise RuntimeError("source and destination registry are the same (%s)" % list(auths)[0])
            for token in auths.values():
                self.secrets.update((token, base64.b64decode(token).decode().partition(":")[2]))
            # 0600 file, 0700 directory: --creds would show the password to every process in /proc
            fd = os.open(self.authfile + ".new", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as handle:
                handle.write(json.dumps(auth_file_content(auths)))
            os.replace(self.authfile + ".new", self.authfile)
            self.src, self.dst = [registry_host(a["proxyEndpoint"]) for a in (src, dst)]
            self.tokens_at = time.monotonic()

    def skopeo(self, args):
        self.refresh_tokens()
        cmd = [self.skopeo_bin, args[0], "--authfile", self.authfile] + args[1:]
        # not an Ansible module: no run_command
        proc = subprocess.run(  # pylint: disable=ansible-bad-function
            cmd, env=self.env, stdin=subprocess.DEVNULL, capture_output=True, timeout=3600, check=False)
        if proc.returncode != 0:
            err = proc.stderr.decode("utf-8", "replace").strip()
            raise RuntimeError(err.splitlines()[-1] if err else "skopeo exited %d" % proc.returncode)

    def retry(self, what, func):
        for attempt in range(1, self.retries + 2):
            try:
                func()
                return attempt
            except (RuntimeError, subprocess.TimeoutExpired) as e:
                text = str(e).lower()
                if attempt > self.retries or any(p in text for p in PERMANENT_COPY) and "unauthorized" not in text:
                    raise
                if "unauthorized" in text or "401" in text:
                    self.refresh_tokens(force=True)
                delay = min(60.0, self.backoff * 2 ** (attempt - 1)) * (0.5 + random.random())
                self.log("retry %s in %.1fs (attempt %d failed: %s)" % (what, delay, attempt, e))
                time.sleep(delay)

    def prepare_repository(self, name):
        """Create the destination repository when missing; return its tag mutability and {tag: digest, digest: ""}."""
        ecr = self.dest()
        try:
            repo = ecr.describe_repositories(repositoryNames=[name], **self.registry)["repositories"][0]
        except ClientError as e:
            if _code(e) != "RepositoryNotFoundException" or not self.create_repos:
                raise
            repo = self.create_repository(name)
        pages = ecr.get_paginator("list_images").paginate(repositoryName=name, **self.registry)
        ids = [i for page in pages for i in page["imageIds"]]
        return repo.get("imageTagMutability", "MUTABLE"), dict(
            [(i["imageDigest"], "") for i in ids] + [(i["imageTag"], i["imageDigest"]) for i in ids if "imageTag" in i])

    def create_repository(self, name):
        src = self.source_ecr.describe_repositories(repositoryNames=[name])["repositories"][0]
        args = {"repositoryName": name, "imageTagMutability": src.get("imageTagMutability", "MUTABLE"),
                "imageScanningConfiguration": {"scanOnPush": src["imageScanningConfiguration"]["scanOnPush"]},
                # a KMS key belongs to the source account and region: the destination uses its AWS managed key
                "encryptionConfiguration": {"encryptionType": src["encryptionConfiguration"]["encryptionType"]}}
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
            movable = self.force_tags and not mutability.startswith("IMMUTABLE")
            for r in results:
                r["conflicts"] = {t: have[t] for t in r["tags"] if have.get(t, r["digest"]) != r["digest"]}
                r["to_tag"] = [t for t in r["tags"] if have.get(t) != r["digest"] and (t not in r["conflicts"] or movable)]
                r["copied"] = r["digest"] not in have
            todo = [r for r in results if r["copied"] or r["to_tag"]]
            manifests = {}
            for n in range(0, len(todo), 100):  # the source manifests, one BatchGetImage per 100 images
                ids = [{"imageDigest": r["digest"]} for r in todo[n : n + 100]]
                for i in self.source_ecr.batch_get_image(repositoryName=name, imageIds=ids,
                                                         acceptedMediaTypes=MEDIA_TYPES)["images"]:
                    manifests[i["imageId"]["imageDigest"]] = (i["imageManifest"], i.get("imageManifestMediaType"))
            for r in todo:
                text = manifests.get(r["digest"], ("",))[0]
                if "sha256:" + hashlib.sha256(text.encode()).hexdigest() != r["digest"]:
                    r["status"], r["error"] = "failed", "manifest unknown or damaged in the source: %s" % r["digest"]
            todo = [r for r in todo if r["status"] == "pending"]
            # Several images of a repository usually share base layers: the first copy alone uploads them (the
            # biggest manifest: an index carries the layers of every platform), the others then find them there.
            todo.sort(key=lambda r: (not r["copied"], -len(manifests[r["digest"]][0])))
            self.copy_image(todo[0], manifests) if todo else None
            with concurrent.futures.ThreadPoolExecutor(self.parallel) as pool:
                list(pool.map(lambda r: self.copy_image(r, manifests), todo[1:]))
            self.verify(name, results)
        except Exception as e:  # the repository cannot be used: each of its images fails with the reason
            for r in results:
                if r["status"] == "pending":
                    r["status"], r["error"] = "failed", "%s: %s" % (type(e).__name__, e)
        for r in results:
            for key in ("copied", "to_tag"):
                r.pop(key, None)
            self.log(format_result(r))
        return results

    def copy_image(self, r, manifests):
        """``skopeo copy`` of a missing digest, then one PutImage of the same manifest bytes per missing tag."""
        name, digest, started = r["repository"], r["digest"], time.monotonic()
        text, media_type = manifests[digest]
        try:
            if r["copied"]:
                # pushed under its first missing tag if it has one: one manifest write less (ECR: 10 a second)
                ref = {"tag": r["to_tag"][0]} if r["to_tag"] else {"digest": digest}
                src, dst = image_reference(self.src, name, digest=digest), image_reference(self.dst, name, **ref)

                def copy():
                    with self.slots:  # tokens taken once a slot is free: the manifests are pushed soon after
                        self.bucket.acquire(1 + len(json.loads(text).get("manifests") or []))  # a PutImage each
                        self.skopeo(["copy", "--all", "--preserve-digests", src, dst])

                r["attempts"] = self.retry("copy %s@%s" % (name, digest), copy)
                r["tags_applied"] += r["to_tag"][:1]
            for tag in r["to_tag"][len(r["tags_applied"]) :]:
                self.bucket.acquire(1)
                try:
                    self.dest().put_image(repositoryName=name, imageManifest=text, imageManifestMediaType=media_type,
                                          imageTag=tag, imageDigest=digest, **self.registry)
                except ClientError as e:
                    if _code(e) != "ImageAlreadyExistsException":  # another build was faster
                        raise
                r["tags_applied"].append(tag)
            for tag in r["tags_applied"]:
                r["conflicts"].pop(tag, None)
        except Exception as e:  # one image never stops the batch
            r["status"], r["error"] = "failed", "%s: %s" % (type(e).__name__, e)
        r["seconds"] = round(time.monotonic() - started, 2)

    def verify(self, name, results):
        """Read every copied or tagged image back, one DescribeImages per 100; nothing is reported copied before."""
        work = [r["digest"] for r in results if r["status"] == "pending" and (r["copied"] or r["tags_applied"])]
        found = {}
        for n in range(0, len(work), 100):
            try:
                answer = self.dest().describe_images(
                    repositoryName=name, imageIds=[{"imageDigest": d} for d in work[n : n + 100]], **self.registry)
                details = answer["imageDetails"]
            except ClientError as e:  # one missing digest fails the call: read the whole repository instead
                if _code(e) != "ImageNotFoundException":
                    raise
                pages = self.dest().get_paginator("describe_images").paginate(repositoryName=name, **self.registry)
                details = [d for page in pages for d in page["imageDetails"]]
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

    def cleanup(self, *_):
        if self.workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)
            self.workdir = None

    def run(self):
        images = decode_batch(join_env(self.env))
        if not self.dest_region or not self.source_region:
            raise SystemExit("REPL_DEST_REGION and REPL_SOURCE_REGION (or AWS_REGION) are required")
        self.log("replicating %d images from %s to %s%s, %d copies at a time" % (
            len(images), self.source_region, self.dest_region, " as " + self.role_arn if self.role_arn else "",
            self.parallel))
        self.workdir = tempfile.mkdtemp(prefix="ecr-replication-")  # mode 0700
        self.authfile = os.path.join(self.workdir, "auth.json")
        by_repo = {}
        for image in images:
            by_repo.setdefault(image["repository"], []).append(image)
        try:
            self.source_ecr = self.client("ecr", self.source_region)
            self.refresh_tokens(force=True)
        except Exception as e:  # cannot log in or assume the role: every image fails with the reason
            results = [dict(i, status="failed", bytes=0, seconds=0, error="%s: %s" % (type(e).__name__, e)) for i in images]
            for r in results:
                self.log(format_result(r))
            return self.finish(results)
        self.log("source registry %s, destination registry %s" % (self.src, self.dst))
        # repositories side by side; self.slots caps the copies over all of them
        with concurrent.futures.ThreadPoolExecutor(min(32, len(by_repo) or 1)) as pool:
            done = pool.map(lambda item: self.replicate_repository(*item), sorted(by_repo.items()))
            return self.finish([r for results in done for r in results])

    def finish(self, results):
        counts = {}
        for r in results:
            counts[r["status"]] = counts.get(r["status"], 0) + 1
        self.log("SUMMARY " + json.dumps(counts, sort_keys=True))
        return 1 if counts.get("failed") else 0


def main(env=None):
    replicator = Replicator(env)

    def stop(signum, _frame):
        replicator.cleanup()
        os._exit(128 + signum)

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, stop)
    try:
        return replicator.run()
    finally:
        replicator.cleanup()


# bundle:end replicator

# What the program takes from the other module_utils files, by name: only these definitions are inlined, so the
# plain-text program fits in an inline buildspec.
BUNDLE = {
    "registry": ("DIGEST_RE", "REPOSITORY_RE", "TAG_RE", "RegistryError", "registry_host", "image_reference",
                 "auth_file_content"),
    "rate_limit": ("TokenBucket",),
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
# buildspec.yml: copies one batch of ECR images to another region/account (cloudops.ecr_replication).
# GENERATED by `make buildspec` from plugins/module_utils/replicator.py; a unit test keeps them in step.
# Input: REPL_* variables (replicator.py ENV_DOC); output: one RESULT {json} line per image.
# Run by CodeBuild (NO_SOURCE project) or on the controller (strategy local).
version: 0.2
env:
 shell: bash
phases:
 install:
  commands:
  - |
   if ! command -v skopeo >/dev/null 2>&1; then
     echo "installing skopeo"
     if command -v dnf >/dev/null 2>&1; then dnf install -y -q skopeo
     elif command -v yum >/dev/null 2>&1; then yum install -y -q skopeo
     else apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq skopeo
     fi >/dev/null
   fi
   python3 -c 'import boto3' 2>/dev/null || python3 -m pip install -q --user '%(boto3)s'
   skopeo --version && python3 -c 'import boto3; print("boto3", boto3.__version__)'
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
    """``text`` (whole statements) without docstrings: they are read in the source files; the program keeps its
    comments and must fit in an inline buildspec."""
    lines = text.splitlines()
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
    program = re.sub(r"  # noqa: [^\n]*", "", "\n\n\n".join(parts))
    return _without_docstrings(program) + "\n"


def render_buildspec() -> str:
    """buildspec.yml: the install phase (skopeo, boto3) and the program in plain text, within CodeBuild's limit."""
    program = "\n".join(("   " + line).rstrip() for line in render_program().splitlines())
    text = BUILDSPEC % {"heredoc": HEREDOC, "program": program, "boto3": BOTO3_PIN}
    if len(text) > MAX_BUILDSPEC_CHARS:
        raise RuntimeError("buildspec.yml would have %d characters, CodeBuild accepts %d" % (len(text), MAX_BUILDSPEC_CHARS))
    return text


if __name__ == "__main__":
    sys.stdout.write(render_program() if sys.argv[1:] == ["--program"] else render_buildspec())
