"""replication_driver.Driver with a scripted backend and a fake clock: hours of polling in milliseconds.

The backend here is a stand-in for CodeBuild (its real shapes are covered by the sandbox integration tests);
what is tested is the driver's own decisions: refilling slots, back-off, rounds, timeout and stop.
"""

from __future__ import annotations

import random

import pytest

from ansible_collections.cloudops.ecr_replication.plugins.module_utils import replication_results as rr
from ansible_collections.cloudops.ecr_replication.plugins.module_utils.replication_driver import Driver
from ansible_collections.cloudops.ecr_replication.plugins.module_utils.replication_driver import backoff
from ansible_collections.cloudops.ecr_replication.plugins.module_utils.replication_executor import QueueFull
from ansible_collections.cloudops.ecr_replication.plugins.module_utils.replication_executor import TransientError


def digest(n):
    return "sha256:" + ("%064x" % n)


def images(count, status="missing", repo="app/web"):
    return [
        {
            "repository": repo,
            "digest": digest(n),
            "tags": ["v%d" % n],
            "destination_status": status,
            "destination_digest_present": False,
            "missing_tags": ["v%d" % n],
            "size_bytes": 10,
        }
        for n in range(count)
    ]


class Clock:
    def __init__(self):
        self.now = 0.0
        self.sleeps = []

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        self.sleeps.append(seconds)
        self.now += seconds


class Backend:
    """Builds take ``polls_to_finish`` polls; scripted failures for start and poll."""

    def __init__(
        self, clock, polls_to_finish=3, queue_full=0, poll_errors=(), fail_images=(), never_ends=False, fail_all_with=None
    ):
        self.clock = clock
        self.fail_all_with = fail_all_with
        self.polls_to_finish = polls_to_finish
        self.queue_full = queue_full
        self.poll_errors = set(poll_errors)
        self.fail_images = set(fail_images)
        self.never_ends = never_ends
        self.builds = {}
        self.started = []
        self.stopped = []
        self.poll_calls = 0
        self.max_running = 0
        self.copied = set()

    def start(self, batch, env):
        if self.queue_full:
            self.queue_full -= 1
            raise QueueFull("Cannot have more than 1 builds in queue for the account")
        build_id = "b%d" % (len(self.started) + 1)
        self.started.append(build_id)
        self.builds[build_id] = {"batch": batch, "polls": 0, "status": "IN_PROGRESS", "sent": False, "env": env}
        running = sum(1 for b in self.builds.values() if b["status"] == "IN_PROGRESS")
        self.max_running = max(self.max_running, running)
        return build_id

    def poll(self, ids):
        self.poll_calls += 1
        if self.poll_calls in self.poll_errors:
            raise TransientError("Rate exceeded")
        out = {}
        for build_id in ids:
            build = self.builds[build_id]
            if build["status"] == "IN_PROGRESS":
                build["polls"] += 1
                if build.get("stop"):
                    build["status"] = "STOPPED"
                elif build["polls"] >= self.polls_to_finish and self.fail_all_with:
                    build["status"] = "FAILED"
                elif build["polls"] >= self.polls_to_finish and not self.never_ends:
                    build["status"] = "SUCCEEDED"
                    for image in build["batch"]:
                        if image["digest"] not in self.fail_images:
                            self.copied.add((image["repository"], image["digest"]))
            out[build_id] = {"id": build_id, "status": build["status"], "current_phase": "BUILD", "error": None}
        return out

    def stop(self, build_id):
        self.stopped.append(build_id)
        self.builds[build_id]["stop"] = True

    def new_lines(self, build_id):
        build = self.builds[build_id]
        if build["status"] not in ("SUCCEEDED", "FAILED") or build["sent"]:
            return []
        build["sent"] = True
        lines = []
        for image in build["batch"]:
            ok = image["digest"] not in self.fail_images and not self.fail_all_with
            lines.append(
                rr.format_result(
                    {
                        "repository": image["repository"],
                        "digest": image["digest"],
                        "status": "copied" if ok else "failed",
                        "bytes": 10 if ok else 0,
                        "error": None if ok else (self.fail_all_with or "manifest unknown"),
                    }
                )
            )
        return lines


def comparer(backend, work):
    calls = []

    def compare(keys):
        calls.append(list(keys))
        out = {}
        for key in keys:
            out[key] = [
                dict(i, destination_status="present" if (i["repository"], i["digest"]) in backend.copied else "missing")
                for i in work[key]
            ]
        return out

    compare.calls = calls
    return compare


def make(backend, clock, work, lines=None, **kwargs):
    kwargs.setdefault("poll_interval", 15)
    kwargs.setdefault("wait_timeout", 36000)
    return Driver(
        backend,
        work,
        lambda key, n: {"REPL_PUT_TPS": str(10 / n)},
        comparer(backend, work),
        progress=(lines.append if lines is not None else (lambda line: None)),
        clock=clock,
        sleep=clock.sleep,
        **kwargs,
    )


def test_refills_slots_as_builds_end_never_above_the_cap():
    clock = Clock()
    backend = Backend(clock, polls_to_finish=2)
    work = {"222222222222/ap-northeast-2": images(40)}
    result = make(backend, clock, work, batch_size=4, max_concurrent=3).run()
    assert len(backend.started) == 10
    assert backend.max_running == 3
    assert result["destinations"]["222222222222/ap-northeast-2"]["error"] is None
    assert len(backend.copied) == 40
    assert result["counts"]["copied"] == 40


class Budget(Backend):
    """Records the PutImage rates of the builds running together (a build's own rate is fixed at its start)."""

    def __init__(self, clock, **kwargs):
        super().__init__(clock, **kwargs)
        self.most = 0.0

    def start(self, batch, env):
        build_id = super().start(batch, env)
        together = [float(b["env"]["REPL_PUT_TPS"]) for b in self.builds.values() if b["status"] == "IN_PROGRESS"]
        self.most = max(self.most, sum(together))
        return build_id


def test_put_image_budget_is_divided_by_the_builds_that_may_run_at_once():
    clock = Clock()
    backend = Budget(clock, polls_to_finish=3)
    work = images(40)
    for image in work[:12]:  # some builds last longer: the others end unevenly
        image["tags"] = image["missing_tags"] = ["a", "b"]
    make(backend, clock, {"d": work}, batch_size=4, max_concurrent=4).run()
    rates = [float(backend.builds[b]["env"]["REPL_PUT_TPS"]) for b in backend.started]
    assert rates[:4] == [2.5] * 4, "a full round: a quarter each"
    assert backend.most <= 10.0, "never more than the budget together"
    assert rates[-1] > 2.5, "the last build, started when the others are ending, gets the share they left"


def test_rates_together_stay_within_the_budget_however_builds_end():
    for seed in range(20):
        clock = Clock()
        rng = random.Random(seed)
        backend = Budget(clock, polls_to_finish=1)
        backend.poll = _uneven(backend, rng)
        make(backend, clock, {"d": images(rng.randint(5, 60))}, batch_size=rng.randint(1, 6),
             max_concurrent=rng.randint(1, 6)).run()
        assert backend.most <= 10.0 + 1e-9, seed


def _uneven(backend, rng):
    poll = backend.poll

    def uneven(ids):
        for build_id in ids:
            build = backend.builds[build_id]
            build.setdefault("length", rng.randint(1, 6))
            if build["polls"] + 1 < build["length"]:
                build["polls"] -= 1  # not yet
        return poll(ids)

    return uneven


def test_hours_of_polling_have_no_depth():
    clock = Clock()
    backend = Backend(clock, polls_to_finish=5000)
    lines = []
    result = make(backend, clock, {"d": images(3)}, lines=lines, poll_interval=1, wait_timeout=10**6).run()
    assert result["polls"] >= 5000
    assert len([line for line in lines if line.startswith(("poll ", "done after poll "))]) >= 5000
    assert result["counts"]["copied"] == 3


def test_queue_full_keeps_the_batch_and_retries_with_backoff():
    clock = Clock()
    backend = Backend(clock, queue_full=3)
    lines = []
    result = make(backend, clock, {"d": images(5)}, lines=lines, batch_size=5).run()
    assert len(backend.started) == 1
    assert len(backend.copied) == 5 and result["destinations"]["d"]["error"] is None
    assert sum("cannot start yet, the queue is full" in line for line in lines) == 3


def test_failed_polls_are_retried_and_drop_nothing():
    clock = Clock()
    backend = Backend(clock, polls_to_finish=2, poll_errors={1, 2, 3})
    lines = []
    result = make(backend, clock, {"d": images(5)}, lines=lines).run()
    assert sum("following the builds failed" in line for line in lines) == 3
    assert len(backend.copied) == 5 and result["destinations"]["d"]["error"] is None


def test_timeout_stops_the_builds_and_says_so():
    clock = Clock()
    backend = Backend(clock, never_ends=True)
    result = make(backend, clock, {"d": images(10)}, batch_size=5, max_concurrent=2, wait_timeout=600).run()
    run = result["destinations"]["d"]
    assert result["stopped"] and "wait_timeout (600 s) reached" in result["stop_reason"]
    assert sorted(backend.stopped) == ["b1", "b2"] == sorted(run["stopped_builds"])
    assert {b["status"] for b in run["builds"]} == {"STOPPED"}
    assert "2 build(s) stopped" in run["error"]
    assert run["verified"] is not None  # compared once more, so the report knows what did get copied


def test_stop_request_stops_running_builds():
    clock = Clock()
    backend = Backend(clock, never_ends=True)
    driver = make(backend, clock, {"d": images(4)})
    original = clock.sleep

    def sleep(seconds):
        original(seconds)
        if clock.now > 100:
            driver.request_stop("interrupted (SIGINT)")

    driver.sleep = sleep
    result = driver.run()
    assert result["stop_reason"] == "interrupted (SIGINT)"
    assert backend.stopped == ["b1"]
    assert result["destinations"]["d"]["builds"][0]["status"] == "STOPPED"


def test_further_round_copies_what_failed_then_stops_when_nothing_improves():
    clock = Clock()
    stubborn = digest(7)
    backend = Backend(clock, fail_images={stubborn})
    work = {"d": images(10)}
    result = make(backend, clock, work, batch_size=5).run()
    run = result["destinations"]["d"]
    # round 1: 9 copied, 1 failed; round 2: only the failed one; it fails again: no round 3
    assert run["rounds"] == 2
    assert [len(b["batch"]) if "batch" in b else b["images"] for b in run["builds"]] == [5, 5, 1]
    assert [i["digest"] for i in run["verified"] if i["destination_status"] != "present"] == [stubborn]


def test_max_rounds_one_means_no_retry():
    clock = Clock()
    backend = Backend(clock, fail_images={digest(1)})
    result = make(backend, clock, {"d": images(3)}, max_rounds=1).run()
    assert result["destinations"]["d"]["rounds"] == 1
    assert len(backend.started) == 1


def test_nothing_to_copy_starts_nothing():
    clock = Clock()
    backend = Backend(clock)
    result = make(backend, clock, {"d": images(3, status="present")}).run()
    assert backend.started == [] and result["destinations"]["d"]["builds"] == []


def test_two_destinations_share_the_project_cap_round_robin():
    clock = Clock()
    backend = Backend(clock, polls_to_finish=1)
    work = {"a": images(8, repo="a/x"), "b": images(8, repo="b/x")}
    make(backend, clock, work, batch_size=2, max_concurrent=2).run()
    first_two = [backend.builds[b]["batch"][0]["repository"] for b in backend.started[:2]]
    assert sorted(first_two) == ["a/x", "b/x"]
    assert backend.max_running == 2


def test_a_destination_that_cannot_start_is_an_error_the_other_goes_on():
    clock = Clock()

    class Refusing(Backend):
        def start(self, batch, env):
            if batch[0]["repository"] == "a/x":
                raise RuntimeError("AccessDeniedException: not authorized to perform codebuild:StartBuild")
            return super().start(batch, env)

    backend = Refusing(clock)
    result = make(backend, clock, {"a": images(2, repo="a/x"), "b": images(2, repo="b/x")}).run()
    assert "could not start" in result["destinations"]["a"]["error"]
    assert result["destinations"]["b"]["error"] is None and len(backend.copied) == 2


def test_backoff_grows_and_is_capped():
    assert backoff(1, rand=lambda: 1.0) == 2.0
    assert backoff(4, rand=lambda: 1.0) == 16.0
    assert backoff(30, rand=lambda: 1.0) == 300.0
    assert backoff(30, rand=lambda: 0.0) == 1.0


@pytest.mark.parametrize("fail_poll_forever", [True])
def test_polls_failing_forever_end_at_the_timeout_with_builds_stopped(fail_poll_forever):
    clock = Clock()
    backend = Backend(clock, poll_errors=set(range(1, 10**6)))
    result = make(backend, clock, {"d": images(2)}, wait_timeout=3600).run()
    assert result["stopped"] and backend.stopped == ["b1"]


KEY = "222222222222/ap-northeast-2"
ASSUME_FAILED = (
    "RuntimeError: cannot assume the destination role arn:aws:iam::222222222222:role/ecr-replication-target: "
    "AccessDenied: not authorized to perform sts:AssumeRole"
)


def test_a_destination_whose_first_build_cannot_assume_its_role_starts_no_other_build():
    clock = Clock()
    backend = Backend(clock, polls_to_finish=2, fail_all_with=ASSUME_FAILED)
    result = make(backend, clock, {KEY: images(40)}, batch_size=4, max_concurrent=3, prove_first=[KEY]).run()
    assert backend.started == ["b1"], "the other 9 batches must not start (they would all fail, and be billed)"
    error = result["destinations"][KEY]["error"]
    assert "no other build was started" in error and "cannot assume the destination role" in error


def test_without_prove_first_every_batch_starts_and_fails():
    """What prove_first saves: the same role failure costs all ten builds."""
    clock = Clock()
    backend = Backend(clock, polls_to_finish=2, fail_all_with=ASSUME_FAILED)
    make(backend, clock, {KEY: images(40)}, batch_size=4, max_concurrent=3, max_rounds=1).run()
    assert len(backend.started) == 10


def test_a_proven_destination_runs_its_builds_side_by_side():
    clock = Clock()
    backend = Backend(clock, polls_to_finish=2)
    result = make(backend, clock, {KEY: images(40)}, batch_size=4, max_concurrent=3, prove_first=[KEY]).run()
    assert len(backend.started) == 10 and backend.max_running == 3
    assert result["counts"]["copied"] == 40 and result["destinations"][KEY]["error"] is None


def test_single_image_failures_in_the_first_build_do_not_stop_the_destination():
    clock = Clock()
    work = images(8)
    backend = Backend(clock, polls_to_finish=2, fail_images={work[0]["digest"]})
    result = make(backend, clock, {KEY: work}, batch_size=4, max_concurrent=2, max_rounds=1, prove_first=[KEY]).run()
    assert len(backend.started) == 2 and result["destinations"][KEY]["error"] is None
    assert result["counts"]["copied"] == 7
