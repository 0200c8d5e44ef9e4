"""rate_limit.py: the token bucket keeps calls under the rate, with a fake clock."""

import threading

import pytest

from ansible_collections.cloudops.ecr_replication.plugins.module_utils.rate_limit import TokenBucket


class FakeClock:
    def __init__(self):
        self.now = 0.0
        self.lock = threading.Lock()

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        with self.lock:
            self.now += seconds


def test_burst_then_rate():
    clock = FakeClock()
    bucket = TokenBucket(10, clock=clock, sleep=clock.sleep)
    for _unused in range(10):
        assert bucket.acquire() == 0
    for _unused in range(50):
        bucket.acquire()
    # 60 calls at 10/s with a burst of 10: at least 5 s of (fake) time.
    assert clock.now == pytest.approx(5.0)


def test_large_request_does_not_deadlock():
    clock = FakeClock()
    bucket = TokenBucket(2, clock=clock, sleep=clock.sleep)
    bucket.acquire(7)  # more than the burst: allowed once the bucket is full, then it is in debt
    bucket.acquire(1)
    assert clock.now == pytest.approx(3.0)


def test_real_threads_stay_under_rate():
    import time

    bucket = TokenBucket(50, burst=1)
    stamps = []
    lock = threading.Lock()

    def worker():
        for _unused in range(10):
            bucket.acquire()
            with lock:
                stamps.append(time.monotonic())

    threads = [threading.Thread(target=worker) for _unused in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    stamps.sort()
    assert len(stamps) == 40
    assert stamps[-1] - stamps[0] >= 39 / 50 * 0.9


def test_invalid_rate():
    with pytest.raises(ValueError):
        TokenBucket(0)
