# Copyright: Contributors to the cloudops.ecr_replication project
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""make bench's scaling subsets: whole repositories, ordinary ones only."""

from __future__ import annotations

from tests.benchmarks.bench import subsets


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
