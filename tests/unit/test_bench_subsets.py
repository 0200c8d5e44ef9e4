# Copyright: Contributors to the cloudops.ecr_replication project
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""make bench's scaling subsets (whole repositories, ordinary ones only) and its skopeo sync script's re-runs."""

from __future__ import annotations

from tests.benchmarks.bench import resynced
from tests.benchmarks.bench import subsets
from tests.benchmarks.bench import until_done


def _catalog() -> dict:
    """40 ordinary repositories of 5 images with one tag each, and the two stress cases of the large profile."""
    images = {"team/app-%02d" % n: {"sha256:%02d%d" % (n, i): ["v%d" % i] for i in range(5)} for n in range(40)}
    images["bulk/many-tags"] = {"sha256:many": ["t%d" % n for n in range(150)]}
    images["bulk/nightly"] = {"sha256:night%03d" % n: [] for n in range(260)}
    return images


def test_subsets_leave_the_stress_repositories_to_the_whole_catalog():
    images = _catalog()
    chosen = subsets(images, [20, 100])
    for size, repositories in chosen.items():
        assert not [r for r in repositories if r.startswith("bulk/")]
        assert size <= sum(len(images[r]) for r in repositories) < size + 5  # whole repositories, just enough
        assert sum(len(t) for r in repositories for t in images[r].values()) == sum(len(images[r]) for r in repositories)


def test_subsets_take_every_repository_when_none_stands_out():
    images = {"r%d" % n: {"sha256:%d%d" % (n, i): [] for i in range(3)} for n in range(4)}
    assert subsets(images, [100]) == {100: sorted(images)}


def test_failed_items_are_attempted_again_until_done_or_out_of_passes():
    attempts = []
    failures_left = {"team/web": 2, "team/api": 1}

    def attempt(name):
        attempts.append(name)
        if failures_left.get(name):
            failures_left[name] -= 1
            return False
        return True

    failed = until_done(["team/api", "team/db", "team/web"], attempt, passes=3)
    assert failed == [["team/api", "team/web"], ["team/web"], []]
    assert attempts == ["team/api", "team/db", "team/web", "team/api", "team/web", "team/web"]


def test_items_still_failing_after_the_last_pass_are_reported():
    failed = until_done(["a", "b"], lambda name: name == "a", passes=2)
    assert failed == [["b"], ["b"]]


def test_resynced_says_what_skopeo_sync_had_to_do_again():
    assert resynced({"method": "local"}) == ""
    assert resynced({"failed_repositories_per_pass": [0]}) == ""
    assert resynced({"failed_repositories_per_pass": [2, 0]}) == "; 2 failed repositories synced again (2 passes)"
    assert resynced({"failed_repositories_per_pass": [2, 1, 1]}).endswith("(3 passes, 1 still failed)")
    assert resynced({"failed_repositories_per_pass": [1, 0]}) == "; 1 failed repository synced again (2 passes)"
