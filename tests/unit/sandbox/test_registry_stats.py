# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The traffic counters of the sandbox registry proxies, which make bench reads (bytes moved, PutImage rate)."""

from __future__ import annotations

from tests.sandbox import registry_proxy
from tests.sandbox.registry_proxy import RegistryStats


def test_bytes_requests_and_reset():
    stats = RegistryStats("222222222222", "ap-northeast-2")
    stats.add("GET", read=100)
    stats.add(written=30)
    stats.add(written=12)
    stats.add("PATCH")
    snap = stats.snapshot()
    assert (snap["blob_bytes_read"], snap["blob_bytes_written"]) == (100, 42)
    assert snap["blob_requests"] == {"GET": 1, "PATCH": 1}
    stats.reset()
    assert stats.snapshot()["blob_bytes_written"] == 0 and stats.snapshot()["blob_requests"] == {}


def test_put_peaks_sliding_window_and_calendar_second(monkeypatch):
    stats = RegistryStats("222222222222", "ap-northeast-2")
    clock = iter([10.0, 10.5, 10.9, 11.1, 11.4, 13.0])
    monkeypatch.setattr(registry_proxy.time, "time", lambda: next(clock))
    for _n in range(6):
        stats.put()
    snap = stats.snapshot()
    assert snap["manifest_puts"] == 6
    # 10.5, 10.9, 11.1, 11.4 lie within one second; no calendar second holds more than three
    assert snap["manifest_puts_peak_per_second"] == 4
    assert snap["manifest_puts_peak_per_calendar_second"] == 3


def test_watch_puts_counts_writes_of_its_account_and_region_only():
    class Store:
        def __init__(self):
            self.calls = []

        def put(self, account, region, *args, **kwargs):
            self.calls.append((account, region))
            return "stored"

    store = Store()
    seoul = RegistryStats("222222222222", "ap-northeast-2")
    mumbai = RegistryStats("222222222222", "ap-south-1")
    registry_proxy.watch_puts(store, seoul)
    registry_proxy.watch_puts(store, mumbai)
    assert store.put("222222222222", "ap-northeast-2", b"{}", None, "v1") == "stored"
    store.put("111111111111", "ap-northeast-2", b"{}", None, None)
    assert seoul.snapshot()["manifest_puts"] == 1 and mumbai.snapshot()["manifest_puts"] == 0
    assert len(store.calls) == 2


def test_put_image_tps_limit_throttles_like_ecr(monkeypatch):
    monkeypatch.setenv("SANDBOX_PUT_IMAGE_TPS", "2")
    now = [100.0]
    monkeypatch.setattr(registry_proxy.time, "monotonic", lambda: now[0])
    stats = RegistryStats("222222222222", "ap-northeast-2")
    assert [stats.throttled() for _n in range(3)] == [False, False, True]  # a burst of 2, then over the limit
    now[0] += 0.5  # one token back
    assert [stats.throttled() for _n in range(2)] == [False, True]
    assert stats.snapshot()["manifest_puts_throttled"] == 2


def test_no_limit_by_default(monkeypatch):
    monkeypatch.delenv("SANDBOX_PUT_IMAGE_TPS", raising=False)
    stats = RegistryStats("222222222222", "ap-northeast-2")
    assert not any(stats.throttled() for _n in range(100))
