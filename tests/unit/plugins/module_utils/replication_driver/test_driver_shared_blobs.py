# Copyright: Contributors to the cloudops.ecr_replication project
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The driver with ``blobs_of``: the first batch of batching.share_blobs runs alone with the whole PutImage budget;
the other builds start when it ends, with their mount hints; without shared blobs nothing changes."""

from __future__ import annotations

from tests.unit.plugins.module_utils.replication_driver.test_replication_driver import KEY
from tests.unit.plugins.module_utils.replication_driver.test_replication_driver import Backend
from tests.unit.plugins.module_utils.replication_driver.test_replication_driver import Clock
from tests.unit.plugins.module_utils.replication_driver.test_replication_driver import images
from tests.unit.plugins.module_utils.replication_driver.test_replication_driver import make

BASE = {"sha256:" + "b" * 64: 5000}


def on_base(work):
    def blobs_of(key, listed):
        assert key == KEY
        return {(i["repository"], i["digest"]): dict(BASE, **{"sha256:%064x" % (n + 99): 7})
                for n, i in enumerate(listed)}
    return blobs_of


class Recording(Backend):
    def __init__(self, clock, **kwargs):
        super().__init__(clock, **kwargs)
        self.running_at_start = []

    def start(self, batch, env):
        self.running_at_start.append(sum(1 for b in self.builds.values() if b["status"] == "IN_PROGRESS"))
        return super().start(batch, env)


def test_the_first_build_runs_alone_and_the_others_follow_with_mounts():
    clock = Clock()
    work = [i for repo in ("team/a", "team/b", "team/c", "team/d") for i in images(10, repo=repo)]
    backend = Recording(clock, polls_to_finish=2)
    lines = []
    result = make(backend, clock, {KEY: work}, lines, batch_size=4, max_concurrent=3, blobs_of=on_base(work)).run()
    assert result["counts"]["copied"] == 40 and result["destinations"][KEY]["error"] is None
    assert len(backend.started) <= 10
    first = backend.builds["b1"]
    assert len(first["batch"]) >= 1 and first["env"]["REPL_PUT_TPS"] == "10.0", "alone: the whole budget"
    assert backend.running_at_start[1] == 0, "the second build starts once the first has ended"
    assert backend.max_running == 3, "then side by side"
    pioneer_repositories = {i["repository"] for i in first["batch"]}
    later = [i for b in backend.started[1:] for i in backend.builds[b]["batch"]]
    hinted = [i for i in later if i["repository"] not in pioneer_repositories]
    assert hinted and all(set(i["mounts"]) == set(BASE) and i["mounts"][next(iter(BASE))] in pioneer_repositories
                          for i in hinted)
    assert any("uploads the blobs the other" in line for line in lines)


def test_without_blobs_of_the_builds_start_side_by_side():
    clock = Clock()
    backend = Recording(clock, polls_to_finish=2)
    make(backend, clock, {KEY: images(40)}, batch_size=4, max_concurrent=3).run()
    assert backend.running_at_start[:3] == [0, 1, 2]


def test_a_failing_lookup_is_noted_and_the_copy_goes_on():
    clock = Clock()
    backend = Recording(clock, polls_to_finish=2)
    lines = []

    def broken(_key, _images):
        raise RuntimeError("AccessDenied: ecr:BatchGetImage")

    result = make(backend, clock, {KEY: images(40)}, lines, batch_size=4, max_concurrent=3, blobs_of=broken).run()
    assert result["counts"]["copied"] == 40 and len(backend.started) == 10
    assert any("not planned" in line and "AccessDenied" in line for line in lines)


class Paced(Recording):
    """A build lasts as long as its manifest writes take at the REPL_PUT_TPS it was given (CodeBuild builds cannot
    lend each other their share)."""

    def start(self, batch, env):
        build_id = super().start(batch, env)
        writes = sum(max(1, len(i["tags"])) for i in batch)
        self.builds[build_id]["ends"] = self.clock.now + writes / float(env["REPL_PUT_TPS"])
        return build_id

    def poll(self, ids):
        for build_id in ids:
            build = self.builds[build_id]
            build["polls"] = self.polls_to_finish if self.clock.now >= build["ends"] else 0
        return super().poll(ids)


def test_an_image_with_many_tags_is_copied_with_the_whole_put_image_budget():
    """60 images of one tag and one of 150 tags: 210 writes, 21 s at 10 a second. In a build with a fifth of the
    budget the 150 tags alone take 75 s; the driver gives that image to the first build, which runs alone."""
    clock = Clock()
    heavy = dict(images(1, repo="bulk/many-tags")[0], tags=["build-%04d" % n for n in range(150)])
    work = [heavy] + [i for repo in ("team/a", "team/b", "team/c") for i in images(20, repo=repo)]
    backend = Paced(clock, polls_to_finish=1)
    lines = []
    result = make(backend, clock, {KEY: work}, lines, batch_size=10, max_concurrent=5, poll_interval=1).run()
    assert result["counts"]["copied"] == 61
    first = backend.builds["b1"]
    assert heavy["digest"] in {i["digest"] for i in first["batch"]} and first["env"]["REPL_PUT_TPS"] == "10.0"
    assert len(backend.started) <= 7, "no more builds than ceil(61 / 10)"
    assert clock.now < 40, "about 21 s of writes, not 75 s for the 150 tags at 2 a second (%.0f s)" % clock.now
    assert any("1 of them with" in line for line in lines)


def test_the_builds_with_the_most_writes_start_first():
    clock = Clock()
    work = images(12, repo="team/a") + [dict(i, tags=["t%d-%d" % (n, k) for k in range(4)])
                                        for n, i in enumerate(images(4, repo="team/z"))]
    backend = Paced(clock, polls_to_finish=1)
    make(backend, clock, {KEY: work}, batch_size=4, max_concurrent=2, poll_interval=1).run()
    assert [i["repository"] for i in backend.builds["b1"]["batch"]] == ["team/z"] * 4
