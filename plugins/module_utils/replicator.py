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

import base64
import hashlib
import importlib
import re
import sys
import zlib

# Only for unit tests and type checkers: in buildspec.yml these names are inlined by render_program().
from ansible_collections.cloudops.ecr_replication.plugins.module_utils.batching import decode_batch  # noqa: F401
from ansible_collections.cloudops.ecr_replication.plugins.module_utils.batching import join_env  # noqa: F401
from ansible_collections.cloudops.ecr_replication.plugins.module_utils.rate_limit import TokenBucket  # noqa: F401
from ansible_collections.cloudops.ecr_replication.plugins.module_utils.registry import auth_file_content  # noqa: F401
from ansible_collections.cloudops.ecr_replication.plugins.module_utils.registry import image_reference  # noqa: F401
from ansible_collections.cloudops.ecr_replication.plugins.module_utils.registry import parse_authorization  # noqa: F401
from ansible_collections.cloudops.ecr_replication.plugins.module_utils.replication_results import (  # noqa: F401
    format_result,
)

# bundle:start replicator
import concurrent.futures
import hashlib
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

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
RETRYABLE_AWS = ("Throttling", "TooManyRequests", "RequestLimitExceeded", "ServiceUnavailable", "InternalServer")
PERMANENT_COPY = ("manifest unknown", "name unknown", "denied", "not authorized", "invalid reference")


def _flag(env, name, default):
    value = str(env.get(name, "")).strip().lower()
    return default if value == "" else value in ("1", "true", "yes", "on")


def _number(env, name, default, kind=float):
    value = str(env.get(name, "")).strip()
    try:
        return kind(value) if value else default
    except ValueError:
        raise SystemExit("%s=%r is not a number" % (name, value)) from None


class AwsError(Exception):
    def __init__(self, code, message):
        super().__init__("%s: %s" % (code, message))
        self.code = code


class Replicator:
    """One batch: ``run()`` returns the process exit status."""

    def __init__(self, env=None, out=None):
        self.env = dict(os.environ if env is None else env)
        self.out = out or sys.stdout
        e = self.env
        self.source_region = e.get("REPL_SOURCE_REGION") or e.get("AWS_REGION") or e.get("AWS_DEFAULT_REGION")
        self.dest_region = e.get("REPL_DEST_REGION")
        self.dest_account = e.get("REPL_DEST_ACCOUNT") or None
        self.role_arn = e.get("REPL_DEST_ROLE_ARN") or None
        self.external_id = e.get("REPL_EXTERNAL_ID") or None
        self.parallel = max(1, _number(e, "REPL_PARALLEL", 4, int))
        self.force_tags = _flag(e, "REPL_FORCE_TAGS", False)
        self.retries = max(0, _number(e, "REPL_RETRIES", 4, int))
        self.backoff = max(0.0, _number(e, "REPL_BACKOFF", 2.0))
        self.token_max_age = _number(e, "REPL_TOKEN_MAX_AGE", 11 * 3600.0)
        self.creds_max_age = _number(e, "REPL_CREDENTIALS_MAX_AGE", 2700.0)
        self.create_repos = _flag(e, "REPL_CREATE_REPOSITORIES", True)
        self.copy_lifecycle = _flag(e, "REPL_COPY_LIFECYCLE_POLICY", False)
        self.copy_repo_policy = _flag(e, "REPL_COPY_REPOSITORY_POLICY", False)
        self.bucket = TokenBucket(max(0.1, _number(e, "REPL_PUT_TPS", 10.0)))
        self.aws_bin = e.get("REPL_AWS_CLI") or "aws"
        self.skopeo_bin = e.get("REPL_SKOPEO") or "skopeo"
        self.secrets = set()
        self.lock = threading.RLock()
        self.print_lock = threading.Lock()
        self.workdir = None
        self.authfile = None
        self.dest_creds = None
        self.creds_at = 0.0
        self.src = None
        self.dst = None
        self.tokens_at = 0.0

    # -- output -------------------------------------------------------------------------------------------
    def redact(self, text):
        text = str(text)
        for secret in sorted(self.secrets, key=len, reverse=True):
            text = text.replace(secret, "****")
        return text

    def log(self, message):
        with self.print_lock:
            self.out.write(self.redact(message) + "\n")
            self.out.flush()

    def emit(self, result):
        result = dict(result, error=self.redact(result["error"]) if result.get("error") else None)
        self.log(format_result(result))

    def _secret(self, *values):
        for value in values:
            if value and len(value) >= 8:
                self.secrets.add(value)

    # -- aws CLI ------------------------------------------------------------------------------------------
    def aws(self, args, region, dest=False):
        """Run ``aws <args> --output json``; destination calls get the assumed credentials in their env."""
        return self._aws(args, region, self.destination_credentials() if dest and self.role_arn else None)

    def _aws(self, args, region, creds):
        env = {k: v for k, v in self.env.items() if not k.startswith("REPL_")}
        env.setdefault("AWS_RETRY_MODE", "standard")
        env.setdefault("AWS_MAX_ATTEMPTS", "6")
        env["AWS_PAGER"] = ""
        if creds:
            for name in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SECURITY_TOKEN"):
                env.pop(name, None)
            env.update(creds)
        cmd = [self.aws_bin] + list(args) + ["--region", region, "--output", "json"]
        # The program runs in the build, not in an Ansible module: no run_command there.
        proc = subprocess.run(  # pylint: disable=ansible-bad-function
            cmd, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=600, check=False
        )
        if proc.returncode != 0:
            err = proc.stderr.strip()
            match = re.search(r"An error occurred \(([A-Za-z0-9.]+)\)", err)
            raise AwsError(match.group(1) if match else "AwsCliError", self.redact(err.splitlines()[-1] if err else ""))
        return json.loads(proc.stdout) if proc.stdout.strip() else {}

    def destination_credentials(self):
        with self.lock:
            if self.dest_creds is None or time.monotonic() - self.creds_at > self.creds_max_age:
                session = "ecr-replication-%s" % re.sub(r"[^\w+=,.@-]", "-", self.env.get("CODEBUILD_BUILD_ID", "local"))
                args = ["sts", "assume-role", "--role-arn", self.role_arn, "--role-session-name", session[:64]]
                if self.external_id:
                    args += ["--external-id", self.external_id]
                try:  # with the build's own credentials
                    creds = self._aws(args, self.dest_region, None)["Credentials"]
                except AwsError as e:
                    raise AwsError(e.code, "cannot assume the destination role %s: %s" % (self.role_arn, e)) from None
                self._secret(creds["SecretAccessKey"], creds["SessionToken"])
                self.dest_creds = {
                    "AWS_ACCESS_KEY_ID": creds["AccessKeyId"],
                    "AWS_SECRET_ACCESS_KEY": creds["SecretAccessKey"],
                    "AWS_SESSION_TOKEN": creds["SessionToken"],
                }
                self.creds_at = time.monotonic()
            return self.dest_creds

    # -- registries ---------------------------------------------------------------------------------------
    def refresh_tokens(self, force=False):
        with self.lock:
            if not force and self.src and time.monotonic() - self.tokens_at < self.token_max_age:
                return
            src = parse_authorization(self.aws(["ecr", "get-authorization-token"], self.source_region))
            args = ["ecr", "get-authorization-token"]
            if self.dest_account:
                args += ["--registry-ids", self.dest_account]
            dst = parse_authorization(self.aws(args, self.dest_region, dest=True))
            for auth in (src, dst):
                self._secret(auth["token"], auth["password"])
            if src["host"] == dst["host"]:
                raise RuntimeError("source and destination registry are the same (%s)" % src["host"])
            content = json.dumps(auth_file_content({src["host"]: src["token"], dst["host"]: dst["token"]}))
            tmp = self.authfile + ".new"
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as handle:
                handle.write(content)
            os.replace(tmp, self.authfile)
            self.src, self.dst, self.tokens_at = src, dst, time.monotonic()

    def skopeo(self, args):
        self.refresh_tokens()
        cmd = [self.skopeo_bin] + list(args[:1]) + ["--authfile", self.authfile] + list(args[1:])
        proc = subprocess.run(  # pylint: disable=ansible-bad-function
            cmd, env=self.env, stdin=subprocess.DEVNULL, capture_output=True, timeout=3600, check=False
        )
        if proc.returncode != 0:
            err = proc.stderr.decode("utf-8", "replace").strip()
            raise RuntimeError(self.redact(err.splitlines()[-1] if err else "skopeo exited %d" % proc.returncode))
        return proc.stdout

    def retry(self, what, func):
        attempt = 0
        while True:
            attempt += 1
            try:
                func()
                return attempt
            except (RuntimeError, AwsError, subprocess.TimeoutExpired) as e:
                text = str(e).lower()
                permanent = isinstance(e, AwsError) and not any(c.lower() in e.code.lower() for c in RETRYABLE_AWS)
                permanent = permanent or any(p in text for p in PERMANENT_COPY) and "unauthorized" not in text
                if attempt > self.retries or permanent:
                    raise
                if "unauthorized" in text or "401" in text:
                    self.refresh_tokens(force=True)
                delay = min(60.0, self.backoff * 2 ** (attempt - 1)) * (0.5 + random.random())
                self.log("retry %s in %.1fs (attempt %d failed: %s)" % (what, delay, attempt, e))
                time.sleep(delay)

    # -- repositories -------------------------------------------------------------------------------------
    def _registry_args(self):
        return ["--registry-id", self.dest_account] if self.dest_account else []

    def prepare_repository(self, name):
        """Create the destination repository when missing; return its state and current tags."""
        state = {"name": name, "created": False}
        try:
            repo = self.aws(["ecr", "describe-repositories", "--repository-names", name] + self._registry_args(),
                            self.dest_region, dest=True)["repositories"][0]
        except AwsError as e:
            if e.code != "RepositoryNotFoundException":
                raise
            if not self.create_repos:
                raise AwsError(e.code, "destination repository %s does not exist" % name) from None
            repo = self.create_repository(name)
            state["created"] = True
        state["mutability"] = repo.get("imageTagMutability", "MUTABLE")
        ids = self.aws(["ecr", "list-images", "--repository-name", name] + self._registry_args(),
                       self.dest_region, dest=True).get("imageIds", [])
        state["digests"] = {i["imageDigest"] for i in ids}
        state["tags"] = {i["imageTag"]: i["imageDigest"] for i in ids if i.get("imageTag")}
        return state

    def create_repository(self, name):
        src = self.aws(["ecr", "describe-repositories", "--repository-names", name], self.source_region)
        src = src["repositories"][0]
        mutability = src.get("imageTagMutability", "MUTABLE")
        args = ["ecr", "create-repository", "--repository-name", name, "--image-tag-mutability", mutability,
                "--image-scanning-configuration",
                "scanOnPush=%s" % str(src.get("imageScanningConfiguration", {}).get("scanOnPush", False)).lower(),
                "--encryption-configuration",
                # a KMS key belongs to the source account and region: the destination uses its AWS managed key
                "encryptionType=%s" % src.get("encryptionConfiguration", {}).get("encryptionType", "AES256")]
        if src.get("imageTagMutabilityExclusionFilters"):
            args += ["--image-tag-mutability-exclusion-filters", json.dumps(src["imageTagMutabilityExclusionFilters"])]
        try:
            repo = self.aws(args + self._registry_args(), self.dest_region, dest=True)["repository"]
            self.log("created repository %s (%s)" % (name, mutability))
        except AwsError as e:
            if e.code != "RepositoryAlreadyExistsException":  # another build was faster
                raise
            return self.aws(["ecr", "describe-repositories", "--repository-names", name] + self._registry_args(),
                            self.dest_region, dest=True)["repositories"][0]
        policies = []
        if self.copy_lifecycle:
            policies.append(("get-lifecycle-policy", "lifecyclePolicyText", "put-lifecycle-policy",
                             "--lifecycle-policy-text", "LifecyclePolicyNotFoundException"))
        if self.copy_repo_policy:
            policies.append(("get-repository-policy", "policyText", "set-repository-policy",
                             "--policy-text", "RepositoryPolicyNotFoundException"))
        for get, key, put, option, absent in policies:
            try:
                text = self.aws(["ecr", get, "--repository-name", name], self.source_region)[key]
            except AwsError as e:
                if e.code == absent:
                    continue
                raise
            self.aws(["ecr", put, "--repository-name", name, option, text] + self._registry_args(),
                     self.dest_region, dest=True)
        return repo

    # -- images -------------------------------------------------------------------------------------------
    def copy_image(self, image, repo):
        """Copy one image and its missing tags; the result is final only after ``verify_repository``."""
        name, digest, tags = image["repository"], image["digest"], image["tags"]
        started = time.monotonic()
        result = {"repository": name, "digest": digest, "tags": tags, "status": "failed", "bytes": 0,
                  "seconds": 0, "error": None, "tags_applied": [], "conflicts": {}, "attempts": 0}
        try:
            if isinstance(repo, Exception):
                raise repo
            conflicts = {t: repo["tags"][t] for t in tags if repo["tags"].get(t, digest) != digest}
            movable = self.force_tags and not repo["mutability"].startswith("IMMUTABLE")
            to_tag = [t for t in tags if repo["tags"].get(t) != digest and (t not in conflicts or movable)]
            result["copied"] = digest not in repo["digests"]
            if result["copied"] or to_tag:
                raw = self.skopeo(["inspect", "--raw", image_reference(self.src["host"], name, digest=digest)])
                if "sha256:" + hashlib.sha256(raw).hexdigest() != digest:
                    raise RuntimeError("the source manifest of %s@%s does not match its digest" % (name, digest))
                puts = 1 + len(json.loads(raw.decode("utf-8")).get("manifests") or [])  # PutImage calls per copy
            src = image_reference(self.src["host"], name, digest=digest)
            dst = image_reference(self.dst["host"], name, digest=digest)
            if result["copied"]:
                result["attempts"] = self.retry("copy %s@%s" % (name, digest), lambda: self.skopeo_copy(src, dst, puts))
            for tag in to_tag:
                # From the source again: every blob is already there (HEAD only), the destination role needs no
                # read permission, and the tag lands on exactly these manifest bytes (--preserve-digests).
                target = image_reference(self.dst["host"], name, tag=tag)
                self.retry("tag %s:%s" % (name, tag), lambda: self.skopeo_copy(src, target, puts))
                result["tags_applied"].append(tag)
                conflicts.pop(tag, None)
            result["conflicts"] = conflicts
            result["status"] = "pending"
        except Exception as e:  # one image never stops the batch
            result["status"], result["error"] = "failed", "%s: %s" % (type(e).__name__, self.redact(e))
        result["seconds"] = round(time.monotonic() - started, 2)
        return result

    def skopeo_copy(self, src, dst, puts):
        self.bucket.acquire(puts)  # each manifest of an index is one PutImage in the destination
        self.skopeo(["copy", "--all", "--preserve-digests", src, dst])

    def verify_repository(self, name, results):
        """Check every image of one repository in the destination (one DescribeImages call per 100 images), then
        give each its final status. Nothing is reported copied before this."""
        work = [r for r in results if r["status"] == "pending" and (r.get("copied") or r["tags_applied"])]
        details = {}
        try:
            for n in range(0, len(work), 100):
                ids = ["imageDigest=" + r["digest"] for r in work[n : n + 100]]
                try:
                    answer = self.aws(["ecr", "describe-images", "--repository-name", name, "--image-ids"] + ids
                                      + self._registry_args(), self.dest_region, dest=True)
                except AwsError as e:
                    if e.code != "ImageNotFoundException":
                        raise
                    answer = self.aws(["ecr", "describe-images", "--repository-name", name]
                                      + self._registry_args(), self.dest_region, dest=True)
                details.update({d["imageDigest"]: d for d in answer.get("imageDetails", [])})
        except Exception as e:
            for r in work:
                r["status"], r["error"] = "failed", "verification failed: %s" % self.redact(e)
        for r in results:
            if r["status"] == "pending":
                self.finish_result(r, details)
            r.pop("copied", None)
            self.emit(r)

    def finish_result(self, r, details):
        try:
            if r.get("copied") or r["tags_applied"]:
                detail = details.get(r["digest"])
                if detail is None:
                    raise RuntimeError("%s@%s is not in the destination" % (r["repository"], r["digest"]))
                expected = [t for t in r["tags"] if t not in r["conflicts"]]
                missing = sorted(set(expected) - set(detail.get("imageTags") or []))
                if missing:
                    raise RuntimeError("tags %s are not on the digest in the destination" % ", ".join(missing))
                if r.get("copied"):
                    ref = image_reference(self.dst["host"], r["repository"], digest=r["digest"])
                    if "sha256:" + hashlib.sha256(self.skopeo(["inspect", "--raw", ref])).hexdigest() != r["digest"]:
                        raise RuntimeError("the destination serves other manifest bytes for %s" % r["digest"])
                    r["bytes"] = int(detail.get("imageSizeInBytes") or 0)
            if r["conflicts"]:
                r["status"] = "tag_conflict"
                r["error"] = "destination tags point to other digests: %s" % ", ".join(sorted(r["conflicts"]))
            else:
                r["status"] = "copied" if r.get("copied") or r["tags_applied"] else "present"
        except Exception as e:
            r["status"], r["error"] = "failed", "verification failed: %s" % self.redact(e)

    # -- main ---------------------------------------------------------------------------------------------
    def cleanup(self, *_):
        if self.workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)
            self.workdir = None

    def run(self):
        images = decode_batch(join_env(self.env))
        if not self.dest_region or not self.source_region:
            raise SystemExit("REPL_DEST_REGION and a source region (REPL_SOURCE_REGION or AWS_REGION) are required")
        self.log("replicating %d images from %s to %s%s, %d at a time" % (
            len(images), self.source_region, self.dest_region,
            " as %s" % self.role_arn if self.role_arn else "", self.parallel))
        old_umask = os.umask(0o077)
        self.workdir = tempfile.mkdtemp(prefix="ecr-replication-")
        os.umask(old_umask)
        self.authfile = os.path.join(self.workdir, "auth.json")
        results = []
        try:
            try:
                self.refresh_tokens(force=True)
            except Exception as e:  # cannot log in or assume the role: every image fails with the reason
                for image in images:
                    results.append(dict(image, status="failed", bytes=0, seconds=0, error="%s: %s" % (type(e).__name__, e)))
                    self.emit(results[-1])
                return self.finish(results)
            self.log("source registry %s, destination registry %s" % (self.src["host"], self.dst["host"]))
            with concurrent.futures.ThreadPoolExecutor(max_workers=self.parallel) as pool:
                names = sorted({i["repository"] for i in images})
                futures = {n: pool.submit(self.prepare_repository, n) for n in names}
                repos = {}
                for n, future in futures.items():
                    try:
                        repos[n] = future.result()
                    except Exception as e:
                        repos[n] = RuntimeError("destination repository %s: %s" % (n, self.redact(e)))
                results = list(pool.map(lambda i: self.copy_image(i, repos[i["repository"]]), images))
                list(pool.map(lambda n: self.verify_repository(n, [r for r in results if r["repository"] == n]), names))
            return self.finish(results)
        finally:
            self.cleanup()

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

BUNDLE = ("registry", "rate_limit", "batching", "replication_results", "replicator")
HEREDOC = "REPLICATOR_PY"
PACKAGE = "ansible_collections.cloudops.ecr_replication.plugins.module_utils"

MAX_BUILDSPEC_CHARS = 25600  # CodeBuild: "Max buildspec length is 25600" (inline buildspec of a project)

BUILDSPEC = """\
# buildspec.yml: copies one batch of ECR images to another region/account (cloudops.ecr_replication).
# GENERATED: do not edit. The program below is plugins/module_utils/replicator.py with the bundle:start..end
# parts of registry.py, rate_limit.py, batching.py and replication_results.py, zlib-compressed because an
# inline buildspec may not exceed 25,600 characters. Read it with
#   python -m ansible_collections.cloudops.ecr_replication.plugins.module_utils.replicator --program
# (its sha256 is checked before it runs). Input: REPL_* environment variables (replicator.py ENV_DOC).
# Run by CodeBuild (NO_SOURCE project) or by codebuild_replicate with executor=local.
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
      - skopeo --version && python3 --version && aws --version
  build:
    commands:
      - |
        set +x
        python3 - <<'%(heredoc)s'
        import base64, hashlib, zlib
        program = zlib.decompress(base64.b64decode(
%(blob)s
        ))
        if hashlib.sha256(program).hexdigest() != "%(sha256)s":
            raise SystemExit("buildspec program damaged")
        exec(compile(program, "replicator", "exec"), {"__name__": "__main__"})
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
    return text


def render_program() -> str:
    """The standalone copy program: bundled regions of the module_utils files, then ``main()``."""
    parts = ["# Generated from cloudops.ecr_replication module_utils; see replicator.py.", "from __future__ import annotations", "import json"]
    for name in BUNDLE:
        regions = re.findall(r"^# bundle:start[^\n]*\n(.*?)^# bundle:end", _source(name), flags=re.S | re.M)
        if not regions:
            raise RuntimeError("module_utils/%s.py has no bundle region" % name)
        parts.extend(region.strip("\n") for region in regions)
    parts.append("sys.exit(main())")
    return "\n\n\n".join(parts) + "\n"


def render_buildspec() -> str:
    """buildspec.yml: the install phase (skopeo) and the compressed program, within CodeBuild's size limit."""
    program = render_program().encode("utf-8")
    blob = base64.b64encode(zlib.compress(program, 9)).decode("ascii")
    lines = "\n".join('        "%s"' % blob[i : i + 100] for i in range(0, len(blob), 100))
    text = BUILDSPEC % {"heredoc": HEREDOC, "blob": lines, "sha256": hashlib.sha256(program).hexdigest()}
    if len(text) > MAX_BUILDSPEC_CHARS:
        raise RuntimeError("buildspec.yml would have %d characters, CodeBuild accepts %d" % (len(text), MAX_BUILDSPEC_CHARS))
    return text


if __name__ == "__main__":
    sys.stdout.write(render_program() if sys.argv[1:] == ["--program"] else render_buildspec())
