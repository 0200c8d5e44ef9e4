# Copyright: Contributors to the cloudops.ecr_replication project
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""ECR's own replication in the sandbox: the registry's replication configuration, replication of pushes, and
replication backfills, with the API shapes of botocore's ECR model (checked by tests/unit/sandbox/).

What it does as ECR does:

- ``PutReplicationConfiguration``/``DescribeRegistry`` per account and region (moto allows one rule only): at most
  10 rules, 25 unique destinations, 100 ``PREFIX_MATCH`` filters a rule, never the registry itself;
- a push into a repository that a rule covers (registry push through the proxy, or ``PutImage``) is replicated to
  each destination after ``SANDBOX_REPLICATION_DELAY_SECONDS`` (default 1); replicated images are not replicated
  further; ``DescribeImageReplicationStatus`` reports IN_PROGRESS, COMPLETE or FAILED per destination;
- ``StartReplicationBackfill`` needs the destination in the configuration; one backfill in progress per destination
  region and 10 per registry; PREPARING (``SANDBOX_BACKFILL_PREPARING_SECONDS``, default the replication delay) ->
  IN_PROGRESS (one replication, i.e. one image and tag, every ``SANDBOX_BACKFILL_IMAGE_SECONDS``, default 0.05) ->
  COMPLETE, or FAILED (every replication failed, or at least half of them once 100 were done), or STOPPING ->
  STOPPED; per-image results only once terminal;
- a replication copies the blobs backend-to-backend between the two real registries, then records the exact
  manifest bytes (same digest) under the same tag; an index's child manifests go first;
- the destination repository is created with ECR's default settings when missing;
- cross-account replication needs the destination registry policy to allow ``ecr:ReplicateImage`` (and
  ``ecr:CreateRepository`` when the repository is missing) to the source account, else the replication fails with
  ``REPLICATION_PERMISSION_DENIED`` (the failure codes are the sandbox's: AWS documents them as free strings).
"""

from __future__ import annotations

import json
import os
import threading
import time
import uuid
from dataclasses import dataclass
from dataclasses import field
from typing import Any
from typing import Callable

from moto.ecr.models import ecr_backends

from . import policy
from .ecr import EcrApiError
from .ecr import EcrImageStore
from .ecr import StoredImage
from .ecr import _decode_token
from .ecr import _encode_token

MAX_RULES = 10
MAX_DESTINATIONS = 25
MAX_FILTERS = 100
MAX_BACKFILLS = 10
ACTIVE = ("PREPARING", "IN_PROGRESS", "STOPPING")
PERMISSION_DENIED = "REPLICATION_PERMISSION_DENIED"
TAG_IMMUTABLE = "IMAGE_TAG_ALREADY_EXISTS"
SOURCE_GONE = "SOURCE_IMAGE_NOT_FOUND"

# (account, region, repository, digest, blob digests) -> None: make the blobs present in the destination registry.
BlobCopier = Callable[[str, str, str, str, str, str, list], None]


@dataclass
class Item:
    repository: str
    digest: str
    tag: str | None
    status: str | None = None
    failure_code: str | None = None
    sub_codes: list[str] = field(default_factory=list)

    def result(self) -> dict[str, Any]:
        image_id = {"imageDigest": self.digest}
        if self.tag:
            image_id["imageTag"] = self.tag
        answer: dict[str, Any] = {"repositoryName": self.repository, "imageId": image_id, "status": self.status}
        if self.failure_code:
            answer["failureCode"] = self.failure_code
        if self.sub_codes:
            answer["subImageFailureCodes"] = sorted(set(self.sub_codes))
        return answer


@dataclass
class Backfill:
    backfill_id: str
    account: str
    region: str
    destination: dict[str, str]
    started_at: float
    started_mono: float
    status: str = "PREPARING"
    items: list[Item] = field(default_factory=list)
    next_index: int = 0
    next_due: float = 0.0
    ended_at: float | None = None
    failure_code: str | None = None

    @property
    def progress(self) -> dict[str, Any]:
        done = [i for i in self.items if i.status]
        failed = [i for i in done if i.status == "FAILED"]
        return {
            "totalReplicationCount": len(self.items),
            "completedReplicationCount": len(done) - len(failed),
            "failedReplicationCount": len(failed),
            "failureCodes": sorted({i.failure_code for i in failed if i.failure_code}),
        }

    def summary(self) -> dict[str, Any]:
        answer: dict[str, Any] = {
            "replicationBackfillId": self.backfill_id,
            "destination": dict(self.destination),
            "status": self.status,
            "progress": self.progress,
            "startedAt": self.started_at,
        }
        if self.failure_code:
            answer["failureCode"] = self.failure_code
        if self.ended_at is not None:
            answer["endedAt"] = self.ended_at
        return answer


def _matches(rule: dict[str, Any], repository: str) -> bool:
    filters = rule.get("repositoryFilters") or []
    return not filters or any(repository.startswith(f["filter"]) for f in filters)


class ReplicationService:
    OPERATIONS = {
        "PutReplicationConfiguration": "api_put_replication_configuration",
        "DescribeRegistry": "api_describe_registry",
        "StartReplicationBackfill": "api_start_replication_backfill",
        "DescribeReplicationBackfillResults": "api_describe_replication_backfill_results",
        "ListReplicationBackfills": "api_list_replication_backfills",
        "StopReplicationBackfill": "api_stop_replication_backfill",
        "DescribeImageReplicationStatus": "api_describe_image_replication_status",
    }

    def __init__(
        self,
        store: EcrImageStore,
        copy_blobs: BlobCopier | None = None,
        delay: float | None = None,
        preparing: float | None = None,
        image_seconds: float | None = None,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.copy_blobs = copy_blobs
        env = os.environ
        self.delay = float(env.get("SANDBOX_REPLICATION_DELAY_SECONDS", "1")) if delay is None else delay
        self.preparing = (
            float(env.get("SANDBOX_BACKFILL_PREPARING_SECONDS", self.delay)) if preparing is None else preparing
        )
        self.image_seconds = (
            float(env.get("SANDBOX_BACKFILL_IMAGE_SECONDS", "0.05")) if image_seconds is None else image_seconds
        )
        self.clock = clock
        self.wall = wall
        self.lock = threading.RLock()
        self.backfills: dict[tuple[str, str], list[Backfill]] = {}
        self.pending: list[tuple[float, str, str, str, str, str | None, dict[str, str]]] = []
        # (account, region, repository, digest) -> {(dest region, dest account): (status, failure code)}
        self.statuses: dict[tuple[str, str, str, str], dict[tuple[str, str], tuple[str, str | None]]] = {}
        self._replicating = threading.local()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        store.listeners.append(self.on_push)

    # -- configuration ---------------------------------------------------------------------------------------
    @staticmethod
    def configuration(account: str, region: str) -> dict[str, Any]:
        return ecr_backends[account][region].replication_config or {"rules": []}

    def api_put_replication_configuration(self, account: str, region: str, body: dict[str, Any]) -> dict[str, Any]:
        configuration = body.get("replicationConfiguration") or {}
        rules = configuration.get("rules")
        if rules is None:
            raise EcrApiError("InvalidParameterException", "Invalid parameter at 'replicationConfiguration': rules")
        if len(rules) > MAX_RULES:
            raise EcrApiError(
                "InvalidParameterException",
                f"Invalid parameter at 'replicationConfiguration' failed to satisfy constraint: 'A replication "
                f"configuration can have at most {MAX_RULES} rules'",
            )
        unique = set()
        for rule in rules:
            destinations = rule.get("destinations") or []
            if not destinations:
                raise EcrApiError("InvalidParameterException", "Invalid parameter: a rule needs a destination")
            if len(rule.get("repositoryFilters") or []) > MAX_FILTERS:
                raise EcrApiError(
                    "InvalidParameterException", f"Invalid parameter: a rule can have at most {MAX_FILTERS} filters"
                )
            for dest in destinations:
                if dest["region"] == region and dest["registryId"] == account:
                    raise EcrApiError(
                        "InvalidParameterException",
                        "Invalid parameter at 'replicationConfiguration' failed to satisfy constraint: 'Replication "
                        "destination cannot be the same as the source registry'",
                    )
                unique.add((dest["region"], dest["registryId"]))
        if len(unique) > MAX_DESTINATIONS:
            raise EcrApiError(
                "InvalidParameterException",
                f"Invalid parameter: a replication configuration can have at most {MAX_DESTINATIONS} unique "
                "destinations",
            )
        stored = json.loads(json.dumps({"rules": rules}))
        with self.lock:
            ecr_backends[account][region].replication_config = stored
        return {"replicationConfiguration": stored}

    def api_describe_registry(self, account: str, region: str, body: dict[str, Any]) -> dict[str, Any]:
        return {"registryId": account, "replicationConfiguration": self.configuration(account, region)}

    def destinations_for(self, account: str, region: str, repository: str) -> list[dict[str, str]]:
        found: list[dict[str, str]] = []
        for rule in self.configuration(account, region)["rules"]:
            if _matches(rule, repository):
                for dest in rule["destinations"]:
                    if dest not in found:
                        found.append(dict(dest))
        return found

    # -- pushes ----------------------------------------------------------------------------------------------
    def on_push(self, account: str, region: str, repository: str, image: StoredImage, tag: str | None) -> None:
        """Store listener: schedule the replication of a push that a rule covers (not of a replica)."""
        if getattr(self._replicating, "active", False):
            return
        due = self.clock() + self.delay
        with self.lock:
            for dest in self.destinations_for(account, region, repository):
                self.pending.append((due, account, region, repository, image.digest, tag, dest))
                key = (dest["region"], dest["registryId"])
                self.statuses.setdefault((account, region, repository, image.digest), {})[key] = ("IN_PROGRESS", None)

    # -- one replication -------------------------------------------------------------------------------------
    def replicate(
        self, account: str, region: str, repository: str, digest: str, tag: str | None, dest: dict
    ) -> str | None:
        """Copy one image (and tag) to ``dest``; None when done, else the failure code."""
        dest_account, dest_region = dest["registryId"], dest["region"]
        image = next((i for i in self.store.images(account, region, repository) if i.digest == digest), None)
        if image is None:
            return SOURCE_GONE
        backend = ecr_backends[dest_account][dest_region]
        exists = repository in backend.repositories
        if dest_account != account:
            arn = f"arn:aws:ecr:{dest_region}:{dest_account}:repository/{repository}"
            needed = ["ecr:ReplicateImage"] + ([] if exists else ["ecr:CreateRepository"])
            # ECR replicates as the source registry: the destination registry policy must name that account.
            source = f"arn:aws:iam::{account}:root"
            effects = [policy.resource_policy_effect(backend.registry_policy, source, a, arn) for a in needed]
            if effects != ["Allow"] * len(needed):
                return PERMISSION_DENIED
        if not exists:
            # ECR's defaults: MUTABLE tags, AES256, no scan on push (no repository creation templates here).
            backend.create_repository(repository, None, None, None, None, [])
        for child in image.child_digests:
            code = self.replicate(account, region, repository, child, None, dest)
            if code:
                return code
        blobs = [b["digest"] for b in ([image.parsed.get("config")] if image.parsed.get("config") else [])]
        blobs += [layer["digest"] for layer in image.parsed.get("layers") or []]
        if self.copy_blobs is not None and blobs:
            self.copy_blobs(account, region, dest_account, dest_region, repository, digest, blobs)
        self._replicating.active = True
        try:
            self.store.put(dest_account, dest_region, repository, image.manifest, image.media_type, tag)
        except EcrApiError as exc:
            if exc.code == "ImageAlreadyExistsException":
                return None
            if exc.code == "ImageTagAlreadyExistsException":
                return TAG_IMMUTABLE
            raise
        finally:
            self._replicating.active = False
        return None

    def _record(self, account, region, repository, digest, dest, code) -> None:
        key = (dest["region"], dest["registryId"])
        status = ("FAILED", code) if code else ("COMPLETE", None)
        self.statuses.setdefault((account, region, repository, digest), {})[key] = status

    # -- the clock -------------------------------------------------------------------------------------------
    def tick(self) -> None:
        """Do what is due now: replications of pushes, and the next steps of every backfill."""
        now = self.clock()
        with self.lock:
            due = [p for p in self.pending if p[0] <= now]
            self.pending = [p for p in self.pending if p[0] > now]
        for _due, account, region, repository, digest, tag, dest in due:
            try:
                code = self.replicate(account, region, repository, digest, tag, dest)
            except Exception as exc:  # a registry error: the replication failed, the sandbox goes on
                code = f"SANDBOX_ERROR: {exc}"[:200]
            with self.lock:
                self._record(account, region, repository, digest, dest, code)
        with self.lock:
            backfills = [b for group in self.backfills.values() for b in group if b.status in ACTIVE]
        for backfill in backfills:
            self._step(backfill, now)

    def _step(self, backfill: Backfill, now: float) -> None:
        if backfill.status == "STOPPING":
            backfill.status, backfill.ended_at = "STOPPED", self.wall()
            return
        if backfill.status == "PREPARING":
            if now - backfill.started_mono < self.preparing:
                return
            backfill.items = self._qualifying(backfill)
            backfill.status, backfill.next_due = "IN_PROGRESS", now
        while (
            backfill.status == "IN_PROGRESS" and backfill.next_index < len(backfill.items) and backfill.next_due <= now
        ):
            item = backfill.items[backfill.next_index]
            try:
                code = self.replicate(
                    backfill.account, backfill.region, item.repository, item.digest, item.tag, backfill.destination
                )
            except Exception as exc:  # noqa: BLE001 - a registry error fails this replication only
                code = f"SANDBOX_ERROR: {exc}"[:200]
            item.status, item.failure_code = ("FAILED", code) if code else ("COMPLETE", None)
            with self.lock:
                self._record(
                    backfill.account, backfill.region, item.repository, item.digest, backfill.destination, code
                )
            backfill.next_index += 1
            backfill.next_due += self.image_seconds
            progress = backfill.progress
            done = backfill.next_index
            if done >= 100 and progress["failedReplicationCount"] * 2 >= done:
                self._end(backfill, "FAILED", progress["failureCodes"][0])
                return
        if backfill.status == "IN_PROGRESS" and backfill.next_index >= len(backfill.items):
            progress = backfill.progress
            if backfill.items and progress["failedReplicationCount"] == len(backfill.items):
                self._end(backfill, "FAILED", progress["failureCodes"][0])
            else:
                self._end(backfill, "COMPLETE", None)

    def _end(self, backfill: Backfill, status: str, code: str | None) -> None:
        backfill.status, backfill.failure_code, backfill.ended_at = status, code, self.wall()

    def _qualifying(self, backfill: Backfill) -> list[Item]:
        """Every image and tag of every repository a rule covers for the backfill's destination."""
        rules = [
            r
            for r in self.configuration(backfill.account, backfill.region)["rules"]
            if backfill.destination in r["destinations"]
        ]
        items: list[Item] = []
        backend = ecr_backends[backfill.account][backfill.region]
        for name in sorted(backend.repositories):
            if not any(_matches(rule, name) for rule in rules):
                continue
            for image in self.store.images(backfill.account, backfill.region, name):
                if image.tags:
                    items.extend(Item(name, image.digest, tag) for tag in image.tags)
                else:
                    items.append(Item(name, image.digest, None))
        return items

    def start(self) -> None:
        def run() -> None:
            while not self._stop.wait(0.05):
                try:
                    self.tick()
                except Exception as exc:  # noqa: BLE001 - keep the sandbox serving; say what went wrong
                    print(f"sandbox: replication tick failed: {exc!r}", flush=True)

        self._thread = threading.Thread(target=run, name="ecr-replication", daemon=True)
        self._thread.start()

    def shutdown(self) -> None:
        self._stop.set()

    # -- backfill API ----------------------------------------------------------------------------------------
    def _find(self, account: str, region: str, body: dict[str, Any]) -> Backfill:
        self._registry(account, body)
        backfill_id = body.get("replicationBackfillId")
        for backfill in self.backfills.get((account, region), []):
            if backfill.backfill_id == backfill_id:
                return backfill
        raise EcrApiError(
            "ReplicationBackfillNotFoundException",
            f"The replication backfill with id '{backfill_id}' does not exist in the registry with id '{account}'",
        )

    @staticmethod
    def _registry(account: str, body: dict[str, Any]) -> None:
        if body.get("registryId") and body["registryId"] != account:
            raise EcrApiError("InvalidParameterException", f"Invalid parameter at 'registryId': {body['registryId']}")

    def api_start_replication_backfill(self, account: str, region: str, body: dict[str, Any]) -> dict[str, Any]:
        self._registry(account, body)
        dest = body.get("destination") or {}
        dest = {"region": dest.get("region"), "registryId": dest.get("registryId")}
        with self.lock:
            configured = any(dest in rule["destinations"] for rule in self.configuration(account, region)["rules"])
            if not configured:
                raise EcrApiError(
                    "ValidationException",
                    f"The destination {dest['registryId']} in {dest['region']} is not in the registry's replication "
                    "configuration",
                )
            active = [b for b in self.backfills.get((account, region), []) if b.status in ACTIVE]
            if any(b.destination["region"] == dest["region"] for b in active):
                raise EcrApiError(
                    "ReplicationBackfillInProgressException",
                    f"A replication backfill is already in progress for the destination Region {dest['region']}",
                )
            if len(active) >= MAX_BACKFILLS:
                raise EcrApiError(
                    "LimitExceededException",
                    f"The registry already has {MAX_BACKFILLS} replication backfills in progress",
                )
            backfill = Backfill(str(uuid.uuid4()), account, region, dest, self.wall(), self.clock())
            self.backfills.setdefault((account, region), []).append(backfill)
        return {
            "replicationBackfillId": backfill.backfill_id,
            "registryId": account,
            "destination": dict(dest),
            "status": backfill.status,
            "startedAt": backfill.started_at,
        }

    def api_describe_replication_backfill_results(
        self, account: str, region: str, body: dict[str, Any]
    ) -> dict[str, Any]:
        with self.lock:
            backfill = self._find(account, region, body)
            answer = dict(backfill.summary(), registryId=account)
            max_results = body.get("maxResults", 100)
            if not isinstance(max_results, int) or not 1 <= max_results <= 1000:
                raise EcrApiError("InvalidParameterException", "Invalid parameter at 'maxResults': 1 to 1000")
            if backfill.status in ("COMPLETE", "FAILED", "STOPPED"):
                items = [i for i in backfill.items if i.status]
                if body.get("resultStatusFilter"):
                    items = [i for i in items if i.status == body["resultStatusFilter"]]
                offset = _decode_token(body.get("nextToken"))
                answer["results"] = [i.result() for i in items[offset : offset + max_results]]
                if offset + max_results < len(items):
                    answer["nextToken"] = _encode_token(offset + max_results)
            else:
                answer["results"] = []
        return answer

    def api_list_replication_backfills(self, account: str, region: str, body: dict[str, Any]) -> dict[str, Any]:
        self._registry(account, body)
        max_results = body.get("maxResults", 50)
        if not isinstance(max_results, int) or not 1 <= max_results <= 50:
            raise EcrApiError("InvalidParameterException", "Invalid parameter at 'maxResults': 1 to 50")
        with self.lock:
            summaries = [b.summary() for b in self.backfills.get((account, region), [])]
        offset = _decode_token(body.get("nextToken"))
        answer: dict[str, Any] = {"registryId": account, "backfills": summaries[offset : offset + max_results]}
        if offset + max_results < len(summaries):
            answer["nextToken"] = _encode_token(offset + max_results)
        return answer

    def api_stop_replication_backfill(self, account: str, region: str, body: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            backfill = self._find(account, region, body)
            if backfill.status not in ("PREPARING", "IN_PROGRESS"):
                raise EcrApiError(
                    "ReplicationBackfillInvalidStatusException",
                    f"The replication backfill '{backfill.backfill_id}' is {backfill.status} and cannot be stopped",
                )
            backfill.status = "STOPPING"
            return {
                "registryId": account,
                "replicationBackfillId": backfill.backfill_id,
                "destination": dict(backfill.destination),
                "status": backfill.status,
                "startedAt": backfill.started_at,
            }

    def api_describe_image_replication_status(self, account: str, region: str, body: dict[str, Any]) -> dict[str, Any]:
        name = body.get("repositoryName")
        self.store.repository(account, region, name, body.get("registryId"))
        image_id = body.get("imageId") or {}
        ref = image_id.get("imageDigest") or image_id.get("imageTag")
        image = self.store.find(account, region, name, ref) if ref else None
        if image is None:
            raise EcrApiError(
                "ImageNotFoundException",
                f"The image with imageId {json.dumps(image_id)} does not exist within the repository with name "
                f"'{name}' in the registry with id '{account}'",
            )
        with self.lock:
            recorded = dict(self.statuses.get((account, region, name, image.digest), {}))
        statuses = []
        for (dest_region, dest_account), (status, code) in sorted(recorded.items()):
            entry = {"region": dest_region, "registryId": dest_account, "status": status}
            if code:
                entry["failureCode"] = code
            statuses.append(entry)
        return {
            "repositoryName": name,
            "imageId": {
                "imageDigest": image.digest,
                **({"imageTag": image_id["imageTag"]} if image_id.get("imageTag") else {}),
            },
            "replicationStatuses": statuses,
        }

    def handle(self, operation: str, account: str, region: str, body: dict[str, Any]) -> dict[str, Any]:
        return getattr(self, self.OPERATIONS[operation])(account, region, body)


class BackendBlobCopier:
    """Copies blobs between the sandbox's real registries, backend to backend (no token, no proxy), with the seed's
    registry client: what ECR's replication moves between two registries, bytes unchanged."""

    def __init__(self, config) -> None:
        self.config = config
        self._clients: dict[tuple[str, str], Any] = {}
        self._lock = threading.Lock()

    def _client(self, account: str, region: str):
        from .seed import RegistryClient

        with self._lock:
            key = (account, region)
            if key not in self._clients:
                port = self.config.registry(account, region).backend_port
                self._clients[key] = RegistryClient(f"http://127.0.0.1:{port}", verify=False)
            return self._clients[key]

    def __call__(self, account, region, dest_account, dest_region, repository, digest, blobs) -> None:
        source, target = self._client(account, region), self._client(dest_account, dest_region)
        for blob in blobs:
            if not target.blob_exists(repository, blob):
                target.push_blob(repository, blob, source.get_blob(repository, blob))
