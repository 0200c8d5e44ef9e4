# -*- coding: utf-8 -*-

# Copyright: Contributors to the Ansible project
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""A thread-safe token bucket, used to keep ECR ``PutImage``-class calls under 10 TPS per account and region.

Plain standard-library Python: ``replicator.render_buildspec()`` inlines it into ``buildspec.yml``.
"""

from __future__ import annotations

# bundle:start rate_limit
import threading
import time
from typing import Callable

# ECR's documented PutImage limit (per account and region); the product divides it between concurrent builds.
ECR_PUT_IMAGE_TPS = 10.0


class TokenBucket:
    """``rate`` tokens per second, at most ``burst`` saved up; ``acquire(n)`` blocks until ``n`` are available.

    A request larger than ``burst`` is allowed (it waits until the bucket is full, then drives it negative),
    so an index with many child manifests never deadlocks.
    """

    def __init__(
        self,
        rate: float,
        burst: float = 0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if rate <= 0:
            raise ValueError("rate must be > 0")
        self.rate = float(rate)
        self.burst = float(burst) if burst and burst > 0 else max(1.0, self.rate)
        self._clock = clock
        self._sleep = sleep
        self._tokens = self.burst
        self._last = clock()
        self._lock = threading.Lock()

    def _refill(self) -> None:
        now = self._clock()
        self._tokens = min(self.burst, self._tokens + (now - self._last) * self.rate)
        self._last = now

    def acquire(self, n: float = 1) -> float:
        """Take ``n`` tokens; return the seconds waited."""
        waited = 0.0
        while True:
            with self._lock:
                self._refill()
                need = min(float(n), self.burst)
                if self._tokens >= need - 1e-9:  # float dust must not spin forever
                    self._tokens -= float(n)
                    return waited
                delay = (need - self._tokens) / self.rate
            self._sleep(delay)
            waited += delay


# bundle:end rate_limit
