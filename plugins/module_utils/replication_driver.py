# -*- coding: utf-8 -*-

# Copyright: Contributors to the cloudops.ecr_replication project
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The execute step: one loop that starts, follows, stops, verifies and re-plans the copies of every destination.

A replication of thousands of images runs for hours, so everything that waits is here, in a flat loop with an
injectable clock (no recursion, no task file that includes itself):

- batches wait in a queue per destination; free build slots (``max_concurrent``, shared by every destination of
  the project) are refilled as builds end, round-robin over the destinations;
- a ``QueueFull`` answer (CodeBuild's ``AccountLimitExceededException``) leaves the batch at the head of its queue
  and retries later with back-off; a failed poll is retried with back-off and never drops a build;
- each poll prints one progress line (builds done/running/queued, images copied/failed/conflicting of the total,
  bytes, elapsed, time left);
- when a destination has no batch left and no build running, it is compared again (``compare``): what still needs
  copying (``image_catalog.needs_copy``) goes into a further round, as long as the previous round reduced it and
  ``max_rounds`` allows; that last comparison is the verification the report relies on;
- at ``wait_timeout``, or when :meth:`Driver.request_stop` is called (SIGINT/SIGTERM), every build still running is
  stopped (``StopBuild``) and followed to its end, and the result says so.

The driver decides nothing about AWS credentials, CodeBuild or files: the backend (``replication_executor``) and
the ``compare`` callable do the I/O, which is what lets unit tests drive hours of polling in milliseconds.
"""

from __future__ import annotations

import random
import re
import threading
import time
from collections import deque
from dataclasses import dataclass
from dataclasses import field
from typing import Any
from typing import Callable
from typing import Deque
from typing import Dict
from typing import Iterable
from typing import List
from typing import Optional

from ansible_collections.cloudops.ecr_replication.plugins.module_utils import batching
from ansible_collections.cloudops.ecr_replication.plugins.module_utils import replication_results
from ansible_collections.cloudops.ecr_replication.plugins.module_utils.image_catalog import needs_copy
from ansible_collections.cloudops.ecr_replication.plugins.module_utils.replication_executor import FINAL
from ansible_collections.cloudops.ecr_replication.plugins.module_utils.replication_executor import QueueFull
from ansible_collections.cloudops.ecr_replication.plugins.module_utils.replication_executor import TransientError
from ansible_collections.cloudops.ecr_replication.plugins.module_utils.replication_executor import results_for

# A build CodeBuild does not know right after StartBuild is normal (eventual consistency); this many polls is not.
UNKNOWN_BUILD_POLLS = 20
START_ATTEMPTS = 8  # transient StartBuild errors in a row before a destination is given up
BACKOFF_FIRST = 2.0
BACKOFF_MAX = 300.0
STOP_GRACE_SECONDS = 300.0  # following stopped builds to their end
QUEUED_PHASES = ("SUBMITTED", "QUEUED", "PROVISIONING")


# what makes a build fail before it copies anything, whatever the image: its credentials for the destination
_CANNOT_START = re.compile(r"assume|ExternalId|AccessDenied|not authorized|credentials", re.I)


def backoff(attempt: int, first: float = BACKOFF_FIRST, cap: float = BACKOFF_MAX, rand=random.random) -> float:
    """Full-jitter exponential back-off: a random wait in [first/2, min(cap, first * 2**(attempt-1))]."""
    ceiling = min(cap, first * (2 ** max(0, attempt - 1)))
    return max(first / 2, ceiling * rand())


def image_key(image: Dict[str, Any]) -> tuple:
    return image["repository"], image["digest"]


@dataclass
class Build:
    id: str
    destination: str
    round: int
    batch: List[Dict[str, Any]]
    status: str = "IN_PROGRESS"
    phase: Optional[str] = "SUBMITTED"
    record: Dict[str, Any] = field(default_factory=dict)
    lines: List[str] = field(default_factory=list)
    unknown_polls: int = 0
    stop_requested: bool = False
    native: bool = False  # an ECR replication backfill, not a build: it takes no build slot

    @property
    def ended(self) -> bool:
        return self.status in FINAL

    def as_record(self) -> Dict[str, Any]:
        record = dict(self.record, id=self.id, status=self.status, current_phase=self.phase, images=len(self.batch))
        record.setdefault("error", None)
        record["round"] = self.round
        record["stopped_by_driver"] = self.stop_requested
        record["path"] = "backfill" if self.native else "copy"
        return record


@dataclass
class DestinationRun:
    """One destination: the images to copy, its queue of batches, its builds and what the comparisons found."""

    key: str
    env: Dict[str, str]
    work: List[Dict[str, Any]]  # the images that need copying at the start (ecr_image_info records)
    queue: Deque[List[Dict[str, Any]]] = field(default_factory=deque)
    native_queue: Deque[List[Dict[str, Any]]] = field(default_factory=deque)
    builds: List[Build] = field(default_factory=list)
    results: Dict[tuple, Dict[str, Any]] = field(default_factory=dict)
    verified: Optional[List[Dict[str, Any]]] = None
    error: Optional[str] = None
    rounds: int = 0
    remaining: Optional[int] = None
    done: bool = False
    start_failures: int = 0
    interrupted_builds: int = 0  # builds of this round that ended before their program reported every image
    stopped: List[str] = field(default_factory=list)
    # False until a build of this destination has copied something: until then a single build runs, so that a
    # destination role the builds cannot assume (wrong ExternalId, wrong trust) costs one build, not all of them
    proven: bool = True
    # batching.share_blobs' first batch: "queued" at the head of the queue, then the id of its build until it ends;
    # it runs alone, so that the builds after it mount the blobs it uploaded instead of uploading them again
    pioneer: Optional[str] = None

    @property
    def running(self) -> List[Build]:
        return [b for b in self.builds if not b.ended]


class Driver:
    """Runs the copies of several destinations to their end (see the module docstring).

    ``backend``: ``replication_executor.CodeBuildBackend`` or ``LocalBackend``. ``compare(keys)`` lists the source
    and the destinations named by ``keys`` again and returns ``{key: [compared image records]}`` (None: no comparison, one round). ``env_for(key,
    concurrent)`` returns the REPL_* variables of a destination's builds when ``concurrent`` of them may run at once
    (the PutImage budget is divided among them). ``progress(line)`` receives one line per poll.
    """

    def __init__(
        self,
        backend: Any,
        destinations: Dict[str, List[Dict[str, Any]]],
        env_for: Callable[[str, int], Dict[str, str]],
        compare: Optional[Callable[[List[str]], Dict[str, List[Dict[str, Any]]]]],
        *,
        batch_size: int = 50,
        max_concurrent: int = 5,
        poll_interval: float = 15.0,
        wait_timeout: float = 3600.0,
        max_rounds: int = 3,
        force_tags: bool = False,
        progress: Callable[[str], None] = lambda line: None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Optional[Callable[[float], None]] = None,
        stop_grace: float = STOP_GRACE_SECONDS,
        log_interval: Optional[float] = None,
        watch: Optional[Callable[[], Optional[str]]] = None,
        native_backend: Any = None,
        native: Optional[Dict[str, Any]] = None,
        prove_first: Iterable[str] = (),
        blobs_of: Optional[Callable[[str, List[Dict[str, Any]]], Dict[tuple, Dict[str, int]]]] = None,
        billed_builds: bool = True,
    ):
        self.backend = backend
        # the repositories of each destination that go through ECR's own replication (a backfill) in round 1
        self.native_backend = native_backend
        self.native = {key: set(names) for key, names in (native or {}).items()}
        self.env_for = env_for
        self.compare = compare
        self.batch_size = batch_size
        self.max_concurrent = max(1, int(max_concurrent))
        self.poll_interval = poll_interval
        self.wait_timeout = wait_timeout
        self.max_rounds = max(1, int(max_rounds))
        self.force_tags = force_tags
        self.progress = progress
        self.clock = clock
        self._wake = threading.Event()
        self.sleep = sleep or self._interruptible_sleep
        self.stop_grace = stop_grace
        # Reading every running build's log on each poll costs one GetLogEvents per build; a few seconds apart is
        # enough for a progress line.
        self.log_interval = poll_interval if log_interval is None else log_interval
        # called once per loop: a reason to stop (say, the process that started the run is gone), or None
        self.watch = watch
        self.runs = {key: DestinationRun(key, {}, list(images)) for key, images in destinations.items()}
        # blobs_of(key, images): {(repository, digest): {blob: size}} (image_catalog.image_blobs): when a round
        # has several batches, batching.share_blobs plans which build uploads the blobs they share
        self.blobs_of = blobs_of
        self.billed_builds = billed_builds  # CodeBuild: sharing blobs must not add a build (local: no such cost)
        for key in prove_first:
            if key in self.runs:
                self.runs[key].proven = False
        self.stop_reason: Optional[str] = None
        self.polls = 0
        self.started_at = 0.0
        self._start_blocked_until = 0.0
        self._queue_full = 0
        self._poll_blocked_until = 0.0
        self._poll_failures = 0
        self._last_log_read = float("-inf")
        self._next_destination = 0
        self.events: List[str] = []

    # ------------------------------------------------------------------------------------------------------
    # control

    def _interruptible_sleep(self, seconds: float) -> None:
        self._wake.wait(max(0.0, seconds))

    def request_stop(self, reason: str) -> None:
        """Stop at the next step (safe from a signal handler: sets two attributes and an Event)."""
        if self.stop_reason is None:
            self.stop_reason = reason
        self._wake.set()

    def _note(self, message: str) -> None:
        self.events.append(message)
        self.progress(message)

    # ------------------------------------------------------------------------------------------------------
    # the loop

    def run(self) -> Dict[str, Any]:
        self.started_at = self.clock()
        deadline = self.started_at + self.wait_timeout
        for run in self.runs.values():
            self._plan_round(run, run.work)
        if all(run.done for run in self.runs.values()):
            return self.result()  # nothing to copy anywhere: no poll, no progress line
        while not all(run.done for run in self.runs.values()):
            if self.stop_reason is None and self.clock() >= deadline:
                self.stop_reason = "wait_timeout (%g s) reached" % self.wait_timeout
            if self.stop_reason is None and self.watch is not None:
                self.stop_reason = self.watch()
            if self.stop_reason is not None:
                self._stop_everything()
                break
            self._fill_slots()
            self._poll()
            self._end_rounds()
            if all(run.done for run in self.runs.values()):
                break
            self._progress_line()
            self.sleep(self._next_wait())
        self._progress_line(final=True)
        return self.result()

    def _next_wait(self) -> float:
        now = self.clock()
        wait = self.poll_interval
        blocked = [t for t in (self._start_blocked_until, self._poll_blocked_until) if t > now]
        if blocked and not any(run.running for run in self.runs.values()):
            wait = max(wait, min(blocked) - now)
        return wait

    def _plan_round(self, run: DestinationRun, images: List[Dict[str, Any]]) -> None:
        work = [i for i in images if needs_copy(i, self.force_tags)]
        run.remaining = len(work)
        if not work:
            run.done = True
            return
        run.rounds += 1
        native_repositories = self.native.get(run.key, set()) if run.rounds == 1 else set()
        native = [i for i in work if i["repository"] in native_repositories]
        copy = [i for i in work if i["repository"] not in native_repositories]
        batches = batching.heaviest_first(
            batching.build_batches(batching.normalize_images(copy), self.batch_size) if copy else []
        )
        run.pioneer = None
        # an image whose tags alone, at one build's share of PutImage, outlast the whole round's writes
        writes = sum(batching.manifest_writes(i) for b in batches for i in b)
        solo_writes = writes // max(1, min(self.max_concurrent, len(batches))) + 1
        heavy = sum(1 for b in batches for i in b if batching.manifest_writes(i) >= solo_writes)
        if len(batches) > 1 and (self.blobs_of is not None or heavy):
            try:
                images = [i for b in batches for i in b]
                batches, pioneer = batching.share_blobs(
                    batches, self.blobs_of(run.key, images) if self.blobs_of else {}, self.batch_size,
                    keep_count=self.billed_builds, solo_writes=solo_writes,
                )
            except Exception as e:  # noqa: BLE001 - an optimisation: without it every build uploads what it needs
                self._note("%s: blobs shared by several builds not planned, each build uploads them: %s" % (run.key, e))
            else:
                if pioneer:
                    run.pioneer = "queued"
                    self._note(
                        "%s: the first build (%d images%s) runs alone with the whole PutImage budget: it uploads the "
                        "blobs the other %d builds share; they start when it ends"
                        % (run.key, len(batches[0]), ", %d of them with %d tags or more" % (heavy, solo_writes)
                           if heavy else "", len(batches) - 1)
                    )
        run.queue = deque(batches)
        run.native_queue = deque([batching.normalize_images(native)] if native else [])
        run.env = self.env_for(run.key, max(1, min(self.max_concurrent, len(batches) - (1 if run.pioneer else 0))))

    def _running_count(self) -> int:
        return sum(1 for run in self.runs.values() for b in run.running if not b.native)

    def _backend_of(self, build: Build):
        return self.native_backend if build.native else self.backend

    def _start_native(self) -> None:
        """Backfills take no build slot; ECR itself refuses a second one per destination region (QueueFull)."""
        for run in self.runs.values():
            if run.native_queue and not run.done and self.clock() >= self._start_blocked_until:
                if self._start(run, run.native_queue[0], native=True) == "blocked":
                    return

    def _fill_slots(self) -> None:
        self._start_native()
        keys = list(self.runs)
        while self._running_count() < self.max_concurrent and self.clock() >= self._start_blocked_until:
            waiting = [k for k in keys if self.runs[k].queue and not self.runs[k].done and self._may_start(self.runs[k])]
            if not waiting:
                return
            # round-robin, so that no destination waits for another's whole queue
            key = min(waiting, key=lambda k: (keys.index(k) - self._next_destination) % len(keys))
            self._next_destination = (keys.index(key) + 1) % len(keys)
            if self._start(self.runs[key], self.runs[key].queue[0], native=False) == "blocked":
                return

    @staticmethod
    def _may_start(run: DestinationRun) -> bool:
        alone = not any(not b.native for b in run.running)
        if run.pioneer:
            return run.pioneer == "queued" and alone
        return run.proven or alone

    def _builds_at_once(self, run: DestinationRun) -> int:
        """How many builds of this destination may run while the one about to start does: it gets that share of the
        destination's PutImage budget. Only those running now and those still queued can (later rounds start after
        this one ended), never more than the slots: each running build got a share no larger than
        budget / (builds now running), so together they never exceed the budget, and a build started when the
        others are ending gets more than the share it would have had at the start of the round."""
        if run.pioneer == "queued":
            return 1  # the others start when it ends
        running = sum(1 for b in run.running if not b.native)
        return max(1, min(self.max_concurrent, running + len(run.queue)))

    def _start(self, run: DestinationRun, batch: List[Dict[str, Any]], native: bool) -> str:
        """Start the batch at the head of a queue: ``started``, ``blocked`` (no start before the back-off ends; the
        batch stays at the head) or ``failed`` (the destination is given up: it cannot start anything)."""
        what = "a replication backfill" if native else "a build"
        env = run.env if native else self.env_for(run.key, self._builds_at_once(run))
        try:
            build_id = (self.native_backend if native else self.backend).start(batch, env)
        except QueueFull as e:
            self._queue_full += 1
            wait = backoff(self._queue_full)
            self._start_blocked_until = self.clock() + wait
            self._note(
                "%s: %s cannot start yet, the queue is full (%s); the batch waits, next try in %.0f s"
                % (run.key, what, e, wait)
            )
            return "blocked"
        except TransientError as e:
            run.start_failures += 1
            if run.start_failures >= START_ATTEMPTS:
                self._give_up(run, "%s could not start after %d attempts: %s" % (what, run.start_failures, e))
                return "failed"
            wait = backoff(run.start_failures)
            self._start_blocked_until = self.clock() + wait
            self._note("%s: starting %s failed (%s); next try in %.0f s" % (run.key, what, e, wait))
            return "blocked"
        except Exception as e:  # noqa: BLE001 - any other answer: this destination cannot start anything
            self._give_up(run, "%s could not start: %s" % (what, e))
            return "failed"
        (run.native_queue if native else run.queue).popleft()
        if not native and run.pioneer == "queued":
            run.pioneer = build_id
        run.start_failures = 0
        self._queue_full = 0
        run.builds.append(Build(build_id, run.key, run.rounds, batch, native=native))
        return "started"

    def _give_up(self, run: DestinationRun, message: str) -> None:
        run.error = message
        run.queue.clear()
        run.native_queue.clear()
        self._note("%s: %s" % (run.key, message))

    def _poll(self, force: bool = False) -> None:
        active = [b for run in self.runs.values() for b in run.running]
        if not active or (not force and self.clock() < self._poll_blocked_until):
            return
        self.polls += 1
        try:
            records: Dict[str, Dict[str, Any]] = {}
            for backend, native in ((self.backend, False), (self.native_backend, True)):
                ids = [b.id for b in active if b.native is native]
                if ids:
                    records.update(backend.poll(ids))
        except TransientError as e:
            self._poll_failures += 1
            wait = backoff(self._poll_failures)
            self._poll_blocked_until = self.clock() + wait
            self._note("following the builds failed (%s); every build is kept, next poll in %.0f s" % (e, wait))
            return
        self._poll_failures = 0
        read_logs = self.clock() - self._last_log_read >= self.log_interval
        if read_logs:
            self._last_log_read = self.clock()
        for build in active:
            record = records.get(build.id)
            if record is None:
                build.unknown_polls += 1
                if build.unknown_polls >= UNKNOWN_BUILD_POLLS:
                    build.status, build.phase = "FAULT", "COMPLETED"
                    build.record = {
                        "error": "build %s unknown to the service after %d polls" % (build.id, build.unknown_polls)
                    }
                    self._finish(build)
                continue
            build.unknown_polls = 0
            build.status, build.phase, build.record = (
                record["status"] or "IN_PROGRESS",
                record.get("current_phase"),
                record,
            )
            if build.ended or read_logs:
                self._read_lines(build)
            if build.ended:
                self._finish(build)

    def _read_lines(self, build: Build) -> None:
        try:
            build.lines.extend(self._backend_of(build).new_lines(build.id))
        except TransientError as e:
            self._note("reading the log of %s failed (%s); read again at the next poll" % (build.id, e))
            return
        run = self.runs[build.destination]
        for result in replication_results.parse_lines(build.lines):
            run.results[image_key(result)] = dict(result, build_id=build.id)
            if result.get("status") != "failed":
                run.proven = True

    def _finish(self, build: Build) -> None:
        run = self.runs[build.destination]
        if run.pioneer == build.id:
            run.pioneer = None
        results = results_for(build.as_record(), build.lines, build.batch)
        for result in results:
            run.results[image_key(result)] = dict(result, build_id=build.id)
        reported = {image_key(r) for r in replication_results.parse_lines(build.lines)}
        by_program = bool(results) and all(image_key(r) in reported for r in results)
        if not by_program and not build.native and not build.stop_requested and build.status != "SUCCEEDED":
            # the build ended before its program reported every image (install failed, timed out, stopped by
            # someone else): a further round may copy them even if this one reduced nothing (max_rounds bounds it)
            run.interrupted_builds += 1
        if run.proven or build.native or build.stop_requested:
            return
        errors = {str(r.get("error") or "") for r in results if r.get("status") == "failed"}
        every_image_failed = results and all(r.get("status") == "failed" for r in results)
        # The copy program itself reported every image failed with one cause (it ran, and cannot work: a role it
        # cannot assume...), or the build could not even start for a reason of that kind. Not a build that ended
        # before the program reported: that may well pass in the next round, which then runs alone again (the
        # destination is not proven).
        cause = next(iter(errors)) if len(errors) == 1 else ""
        cannot_work = (by_program and len(results) > 1) or _CANNOT_START.search(cause)
        if every_image_failed and len(errors) == 1 and cannot_work:
            cause = str(results[0].get("error") or build.status)
            self._give_up(
                run,
                "the first build (%s) failed for every image with the same cause, so no other build was started "
                "for this destination: %s (if the builds cannot assume the destination role: check dest_role_arn, "
                "its trust policy and the ExternalId in external_id_parameter)" % (build.id, cause),
            )
            return
        if every_image_failed and not by_program:
            return
        run.proven = True  # failures of single images: the builds can work, the next ones run side by side

    def _end_rounds(self) -> None:
        ended = [r for r in self.runs.values() if not r.done and not r.queue and not r.native_queue and not r.running]
        if not ended:
            return
        failed_to_start = [r for r in ended if r.error and not r.builds]
        for run in failed_to_start:
            run.done = True
        to_compare = [r for r in ended if r not in failed_to_start]
        if not to_compare:
            return
        if self.compare is None:  # no read access to the destination: one round, the builds' word only
            for run in to_compare:
                run.done = True
            return
        try:
            compared = self.compare([r.key for r in to_compare])
        except Exception as e:  # noqa: BLE001 - reported per destination; the others go on
            for run in to_compare:
                run.error = run.error or "verification failed: %s" % e
                run.done = True
            self._note("comparing again failed: %s" % e)
            return
        for run in to_compare:
            wanted = {image_key(i) for i in run.work}
            run.verified = [i for i in compared.get(run.key, []) if image_key(i) in wanted]
            # an image gone from the source listing cannot be verified: the report keeps it failed
            still = [i for i in run.verified if needs_copy(i, self.force_tags)]
            previous = run.remaining
            if not still:
                run.done = True
                self._note(
                    "%s: verified after round %d: every planned digest and tag is present" % (run.key, run.rounds)
                )
                continue
            if run.error:
                run.done = True
                continue
            interrupted, run.interrupted_builds = run.interrupted_builds, 0
            if run.rounds >= self.max_rounds or (previous is not None and len(still) >= previous and not interrupted):
                run.done = True
                self._note(
                    "%s: %d image(s) still need copying after round %d; no further round (%s)"
                    % (
                        run.key,
                        len(still),
                        run.rounds,
                        "max_rounds reached" if run.rounds >= self.max_rounds else "the round reduced nothing",
                    )
                )
                continue
            self._note(
                "%s: round %d left %d image(s) to copy; round %d starts"
                % (run.key, run.rounds, len(still), run.rounds + 1)
            )
            self._plan_round(run, still)

    def _stop_everything(self) -> None:
        """Stop every running build, follow each to its end (bounded), then compare once for the report."""
        for run in self.runs.values():
            run.queue.clear()
            run.native_queue.clear()
            for build in run.running:
                build.stop_requested = True
                try:
                    self._backend_of(build).stop(build.id)
                    run.stopped.append(build.id)
                except Exception as e:  # noqa: BLE001 - keep stopping the others
                    self._note("stopping %s failed: %s" % (build.id, e))
            run.error = run.error or "%s: %d build(s) stopped" % (self.stop_reason, len(run.stopped))
        self._note("%s: stopping %d build(s)" % (self.stop_reason, sum(len(r.stopped) for r in self.runs.values())))
        grace_end = self.clock() + self.stop_grace
        while any(run.running for run in self.runs.values()) and self.clock() < grace_end:
            self._poll(force=True)
            if any(run.running for run in self.runs.values()):
                self._wake.clear()  # set by the stop request; the builds still need a moment to end
                self.sleep(min(1.0, self.poll_interval))
        keys = [r.key for r in self.runs.values() if r.builds]
        if keys and self.compare is not None:
            try:
                compared = self.compare(keys)
                for key in keys:
                    run = self.runs[key]
                    wanted = {image_key(i) for i in run.work}
                    run.verified = [i for i in compared.get(key, []) if image_key(i) in wanted]
            except Exception as e:  # noqa: BLE001 - the report then says the images were not verified
                self._note("comparing after the stop failed: %s" % e)
        for run in self.runs.values():
            run.done = True

    # ------------------------------------------------------------------------------------------------------
    # progress and result

    def counts(self) -> Dict[str, Any]:
        builds = [b for run in self.runs.values() for b in run.builds]
        waiting = sum(len(run.queue) for run in self.runs.values())
        results = [r for run in self.runs.values() for r in run.results.values()]
        total = sum(len(run.work) for run in self.runs.values())
        by_status: Dict[str, int] = {}
        for result in results:
            by_status[result.get("status")] = by_status.get(result.get("status"), 0) + 1
        return {
            "builds_done": sum(1 for b in builds if b.ended and not b.native),
            "builds_running": sum(1 for b in builds if not b.ended and not b.native and b.phase not in QUEUED_PHASES),
            "builds_queued": sum(1 for b in builds if not b.ended and not b.native and b.phase in QUEUED_PHASES)
            + waiting,
            "backfills": sum(1 for b in builds if b.native),
            "images": total,
            "copied": by_status.get("copied", 0) + by_status.get("present", 0),
            "failed": by_status.get("failed", 0),
            "conflicting": by_status.get("tag_conflict", 0),
            "bytes": sum(int(r.get("bytes") or 0) for r in results),
        }

    def _progress_line(self, final: bool = False) -> None:
        c = self.counts()
        elapsed = self.clock() - self.started_at
        handled = c["copied"] + c["failed"] + c["conflicting"]
        left = "unknown"
        if handled and handled < c["images"]:
            left = _duration(elapsed * (c["images"] - handled) / handled)
        elif handled >= c["images"]:
            left = "0:00:00"
        backfills = [
            b.record.get("backfill")
            for run in self.runs.values()
            for b in run.builds
            if b.native and b.record.get("backfill") and not b.ended
        ]
        self.progress(
            "%s%d: builds %d done, %d running, %d queued; images %d copied, %d failed, %d conflicting of %d; "
            "%s copied; elapsed %s, left %s%s"
            % (
                "done after poll " if final else "poll ",
                self.polls,
                c["builds_done"],
                c["builds_running"],
                c["builds_queued"],
                c["copied"],
                c["failed"],
                c["conflicting"],
                c["images"],
                _bytes(c["bytes"]),
                _duration(elapsed),
                left,
                "".join("; " + line for line in backfills),
            )
        )

    def result(self) -> Dict[str, Any]:
        destinations = {}
        for key, run in self.runs.items():
            destinations[key] = {
                "builds": [b.as_record() for b in run.builds],
                "results": list(run.results.values()),
                "verified": run.verified,
                "error": run.error,
                "rounds": run.rounds,
                "stopped_builds": run.stopped,
            }
        return {
            "destinations": destinations,
            "polls": self.polls,
            "stopped": self.stop_reason is not None,
            "stop_reason": self.stop_reason,
            "events": self.events,
            "counts": self.counts(),
            "elapsed_seconds": round(self.clock() - self.started_at, 1),
        }


def _duration(seconds: float) -> str:
    seconds = int(max(0, seconds))
    return "%d:%02d:%02d" % (seconds // 3600, seconds // 60 % 60, seconds % 60)


def _bytes(value: int) -> str:
    size = float(value)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if size < 1024 or unit == "TiB":
            return ("%d %s" % (size, unit)) if unit == "B" else ("%.1f %s" % (size, unit))
        size /= 1024
    return "%d B" % value
