"""Switchable fault injection for the sandbox: off by default, set per test, reset after each test.

One ``FaultInjector`` per sandbox process, shared by the control plane (ECR and CodeBuild API calls), the registry
proxies (blob traffic, tokens) and the sandbox CodeBuild (builds). Tests drive it over HTTP on the control-plane
port, like the CodeBuild tunables:

- ``POST /_sandbox/faults`` with a JSON document (below) replaces the whole fault configuration and resets the
  counters and the write journal; ``{}`` switches every fault off. Unknown keys are refused (400), so a typo cannot
  silently test nothing.
- ``GET /_sandbox/faults``: the configuration, what was injected so far (``injected``: name -> count), the API calls
  seen for every operation a fault names (``calls``: op -> [[time, injected?], ...]), and ``journal``: the registry
  writes in the order the registries accepted them (below).

Configuration (every key optional)::

    {"api": {"PutImage": {"first": 3}, "DescribeImages": {"rate": 0.3},
             "CreateRepository": {"first": 1, "code": "LimitExceededException", "message": "..."}},
     "registry": {"target": {"blob_errors": 2, "status": 503, "methods": ["PUT", "PATCH"],
                             "blob_resets": 1, "reset_methods": ["GET"], "error_rate": 0.0,
                             "down": false, "delay_seconds": 0.0}},
     "token_ttl_seconds": 3,
     "codebuild": {"queue_full": 2, "fail": 1, "time_out": 1, "time_out_after": 4, "stop": 1, "stop_after": 4}}

- ``api.<Operation>``: any ECR or CodeBuild operation. The first ``first`` calls, then each call with probability
  ``rate``, are answered as the service answers throttling: HTTP 400, ``{"__type": "ThrottlingException",
  "message": "Rate exceeded"}`` (``code``/``message``/``status`` give another error, e.g. ``LimitExceededException``,
  which ECR uses for quotas and which must not be retried like throttling).
- ``registry.<source|target|account-region|*>``: the registry proxy of that account+region.
  ``blob_errors``: the first N blob requests (``methods``, default every method) answered ``status`` (default 503)
  with a registry error body before they reach distribution; ``error_rate``: each further one with that
  probability. ``blob_resets``: the first N blob requests of ``reset_methods`` (default GET) cut mid-blob: a GET
  gets its headers and half of the body, then a TCP reset; an upload (PUT/PATCH/POST) is read half-way, then reset.
  ``down``: every request of that registry answered 503 (a registry that stays down). ``delay_seconds``: each blob
  request waits that long first (a slow registry: long copies, for token expiry).
- ``token_ttl_seconds``: registry passwords issued by ``GetAuthorizationToken`` from now on expire after that many
  seconds instead of 12 h (``expiresAt`` says so). An expired password is answered as ECR does: HTTP 403,
  ``{"errors": [{"code": "DENIED", "message": "Your authorization token has expired. Reauthenticate and try
  again."}]}`` (always, not only with this fault).
- ``codebuild``: ``queue_full``: the next N ``StartBuild`` calls answer ``AccountLimitExceededException`` ("Cannot
  have more than 0 builds in queue for the account"); ``fail``: the next N builds fail in INSTALL
  (``COMMAND_EXECUTION_ERROR``, before any copy); ``time_out``: the next N builds end TIMED_OUT
  ``time_out_after`` seconds after they start running (mid-copy); ``stop``: the next N builds are stopped
  ``stop_after`` seconds after they start running (as a ``StopBuild`` by someone else).

The journal (``GET``): one entry per registry write or "already there" answer, in order: ``{"seq", "registry",
"kind": "blob"|"manifest", "how", "repository", "digest", "tag", "refs"}``. Blobs: ``how`` = ``upload`` (a
completed upload, PUT/POST 201), ``mount`` (cross-repository mount, 201) or ``exists`` (HEAD 200: the client was
told it is in place). Manifests: ``how`` = ``push`` (registry PUT 201), ``put_image`` (the PutImage API) or
``exists`` (HEAD/GET 200); ``refs`` = the blobs (config, layers) and child manifests it names. ``check_write_order``
finds every tag written before all it refers to was in place; ``duplicate_uploads`` every blob uploaded twice.
"""

from __future__ import annotations

import json
import random
import threading
import time
from collections import Counter
from typing import Any

EXPIRED_TOKEN_MESSAGE = "Your authorization token has expired. Reauthenticate and try again."
THROTTLING = ("ThrottlingException", "Rate exceeded")
QUEUE_FULL_MESSAGE = "Cannot have more than 0 builds in queue for the account"
# The journal is always kept (a test reads what happened without having switched a fault on) and cleared by every
# POST; a sandbox left running for days (make sandbox, make bench) stops recording at this many entries.
JOURNAL_LIMIT = 200_000

API_KEYS = {"first", "rate", "code", "message", "status"}
REGISTRY_KEYS = {
    "blob_errors",
    "status",
    "methods",
    "error_rate",
    "blob_resets",
    "reset_methods",
    "down",
    "delay_seconds",
}
CODEBUILD_KEYS = {"queue_full", "fail", "time_out", "time_out_after", "stop", "stop_after"}
TOP_KEYS = {"api", "registry", "token_ttl_seconds", "codebuild"}


class FaultConfigError(ValueError):
    pass


def _check_keys(where: str, given: dict, allowed: set) -> None:
    if not isinstance(given, dict):
        raise FaultConfigError(f"{where} must be an object")
    unknown = sorted(set(given) - allowed)
    if unknown:
        raise FaultConfigError(f"{where}: unknown fault settings {unknown} (known: {sorted(allowed)})")


class FaultInjector:
    """Thread-safe; every decision is taken under one lock so that "the first N" is exact across threads."""

    def __init__(self, aliases: dict[str, str] | None = None, rand=random.random):
        # "source"/"target" -> "<account>-<region>" of the registry they name
        self.aliases = dict(aliases or {})
        self.rand = rand
        self.lock = threading.Lock()
        self.token_authority = None  # set by the server: its lifetime follows token_ttl_seconds
        self.configure({})

    # -- configuration -----------------------------------------------------
    def configure(self, settings: dict[str, Any]) -> None:
        _check_keys("faults", settings, TOP_KEYS)
        api = settings.get("api") or {}
        _check_keys("api", api, set(api))
        for op, fault in api.items():
            _check_keys(f"api.{op}", fault, API_KEYS)
        registry = settings.get("registry") or {}
        _check_keys("registry", registry, set(registry))
        resolved = {}
        for name, fault in registry.items():
            _check_keys(f"registry.{name}", fault, REGISTRY_KEYS)
            resolved[self.aliases.get(name, name)] = dict(fault)
        codebuild = settings.get("codebuild") or {}
        _check_keys("codebuild", codebuild, CODEBUILD_KEYS)
        ttl = settings.get("token_ttl_seconds")
        if ttl is not None and (not isinstance(ttl, (int, float)) or ttl <= 0):
            raise FaultConfigError("token_ttl_seconds must be a positive number")
        with self.lock:
            self.settings = json.loads(json.dumps(settings))
            self.api = {op: dict(fault, seen=0) for op, fault in api.items()}
            self.registry = {key: dict(fault, seen=0, reset_seen=0) for key, fault in resolved.items()}
            self.codebuild = dict(codebuild)
            self.ttl = float(ttl) if ttl is not None else None
            self.injected: Counter = Counter()
            self.calls: dict[str, list] = {op: [] for op in api}
            self.journal: list[dict[str, Any]] = []
            self.journal_truncated = False
        if self.token_authority is not None:
            self.token_authority.lifetime_seconds = self.ttl

    def snapshot(self) -> dict[str, Any]:
        with self.lock:
            return {
                "settings": self.settings,
                "injected": dict(self.injected),
                "calls": {op: list(times) for op, times in self.calls.items()},
                "journal": list(self.journal),
                "journal_truncated": self.journal_truncated,
            }

    # -- API calls (control plane) -----------------------------------------
    def api_fault(self, operation: str) -> tuple[int, str, str] | None:
        """(HTTP status, error code, message) when this call is to fail, else None."""
        with self.lock:
            fault = self.api.get(operation)
            if fault is None:
                return None
            fault["seen"] += 1
            hit = fault["seen"] <= int(fault.get("first") or 0) or self.rand() < float(fault.get("rate") or 0)
            self.calls[operation].append([time.time(), hit])
            if not hit:
                return None
            code = fault.get("code") or THROTTLING[0]
            self.injected[f"api {operation} {code}"] += 1
            return int(fault.get("status") or 400), code, fault.get("message") or THROTTLING[1]

    # -- registries ----------------------------------------------------------
    def registry_fault(self, key: str, method: str, blob: bool) -> dict[str, Any] | None:
        """What to do to one request of registry ``key``: None, or {"error": status}, {"reset": True},
        {"delay": seconds} (a delay may come with either of the others)."""
        with self.lock:
            fault = self.registry.get(key) or self.registry.get("*")
            if fault is None:
                return None
            action: dict[str, Any] = {}
            if fault.get("down"):
                self.injected[f"registry {key} down"] += 1
                return {"error": 503}
            if not blob:
                return None
            if fault.get("delay_seconds"):
                action["delay"] = float(fault["delay_seconds"])
            methods = fault.get("methods")
            if methods is None or method in methods:
                fault["seen"] += 1
                if fault["seen"] <= int(fault.get("blob_errors") or 0) or self.rand() < float(
                    fault.get("error_rate") or 0
                ):
                    status = int(fault.get("status") or 503)
                    self.injected[f"registry {key} blob {method} {status}"] += 1
                    return dict(action, error=status)
            if method in (fault.get("reset_methods") or ["GET"]):
                fault["reset_seen"] += 1
                if fault["reset_seen"] <= int(fault.get("blob_resets") or 0):
                    self.injected[f"registry {key} blob {method} reset"] += 1
                    return dict(action, reset=True)
            return action or None

    def record(
        self,
        registry: str,
        kind: str,
        how: str,
        repository: str,
        digest: str | None,
        tag: str | None = None,
        refs: list[str] | None = None,
    ) -> None:
        with self.lock:
            if len(self.journal) >= JOURNAL_LIMIT:
                self.journal_truncated = True
                return
            self.journal.append(
                {
                    "seq": len(self.journal),
                    "time": time.time(),
                    "registry": registry,
                    "kind": kind,
                    "how": how,
                    "repository": repository,
                    "digest": digest,
                    "tag": tag,
                    "refs": list(refs or []),
                }
            )

    def count(self, name: str) -> None:
        """Count something a fault caused elsewhere (an expired token answered 403)."""
        with self.lock:
            self.injected[name] += 1

    # -- CodeBuild -------------------------------------------------------------
    def take_queue_full(self) -> bool:
        with self.lock:
            if int(self.codebuild.get("queue_full") or 0) > 0:
                self.codebuild["queue_full"] -= 1
                self.injected["codebuild StartBuild AccountLimitExceededException"] += 1
                return True
            return False

    def take_build_fault(self) -> tuple[str, float] | None:
        """For a build that starts now: ("fail", 0), ("time_out", after s), ("stop", after s) or None."""
        with self.lock:
            for kind, after in (("fail", None), ("time_out", "time_out_after"), ("stop", "stop_after")):
                if int(self.codebuild.get(kind) or 0) > 0:
                    self.codebuild[kind] -= 1
                    self.injected[f"codebuild build {kind}"] += 1
                    return kind, float(self.codebuild.get(after) or 3.0) if after else 0.0
            return None


# -- checks over a journal (used by the tests; plain functions so a unit test can feed them a bad journal) ------


def manifest_refs(manifest: dict[str, Any]) -> list[str]:
    """What a manifest needs in place before it may be written: config and layer blobs, child manifests."""
    refs = [manifest["config"]["digest"]] if isinstance(manifest.get("config"), dict) else []
    refs += [layer["digest"] for layer in manifest.get("layers") or []]
    refs += [child["digest"] for child in manifest.get("manifests") or []]
    return refs


def check_write_order(journal: list[dict[str, Any]]) -> list[str]:
    """Every manifest write (tagged or by digest) whose blobs or child manifests were not all in place before it (a written or
    confirmed blob / manifest of the same registry and repository earlier in the journal). Returns the
    violations as sentences (empty: the order was right)."""
    in_place: set[tuple[str, str, str]] = set()
    violations = []
    for entry in sorted(journal, key=lambda e: e["seq"]):
        where = (entry["registry"], entry["repository"])
        if entry["kind"] == "manifest" and entry["how"] != "exists":
            missing = [ref for ref in entry["refs"] if (*where, ref) not in in_place]
            if missing:
                violations.append(
                    f"{entry['registry']} {entry['repository']}:{entry.get('tag') or '-'} ({entry['digest']}) written before "
                    f"{len(missing)} of its blobs/manifests were in place: {missing[:3]}"
                )
        if entry.get("digest"):
            in_place.add((*where, entry["digest"]))
    return violations


def duplicate_uploads(journal: list[dict[str, Any]]) -> dict[str, int]:
    """Blobs uploaded (or mounted) more than once into the same registry and repository: "registry repo@digest" ->
    times. A retry that uploads again what already arrived is duplicate work."""
    counts = Counter(
        f"{e['registry']} {e['repository']}@{e['digest']}"
        for e in journal
        if e["kind"] == "blob" and e["how"] in ("upload", "mount")
    )
    return {key: n for key, n in counts.items() if n > 1}


def manifest_writes(journal: list[dict[str, Any]]) -> Counter:
    """Manifest writes (registry pushes and PutImage) per "registry repo@digest:tag"."""
    return Counter(
        f"{e['registry']} {e['repository']}@{e['digest']}:{e.get('tag') or ''}"
        for e in journal
        if e["kind"] == "manifest" and e["how"] in ("push", "put_image")
    )
