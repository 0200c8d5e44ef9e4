# Copyright: Contributors to the cloudops.ecr_replication project
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The driver under build faults (the sandbox versions are tests/integration/faults): a first build that ends
before the copy program reported anything (install failed, timed out, stopped by someone else) is followed by a
round that copies the images; only the program's own "cannot work" answer stops a destination after one build."""

from __future__ import annotations

import pytest

from tests.unit.plugins.module_utils.replication_driver.test_replication_driver import KEY
from tests.unit.plugins.module_utils.replication_driver.test_replication_driver import Backend
from tests.unit.plugins.module_utils.replication_driver.test_replication_driver import Clock
from tests.unit.plugins.module_utils.replication_driver.test_replication_driver import images
from tests.unit.plugins.module_utils.replication_driver.test_replication_driver import make


class EndsEarly(Backend):
    """The first build ends with ``status`` before its program printed a RESULT line (no log lines at all)."""

    def __init__(self, clock, status, **kwargs):
        super().__init__(clock, **kwargs)
        self.first_status = status

    def poll(self, ids):
        out = super().poll(ids)
        if "b1" in out and out["b1"]["status"] == "SUCCEEDED":
            self.builds["b1"]["status"] = out["b1"]["status"] = self.first_status
            self.builds["b1"]["sent"] = True
            self.copied.clear()
        return out


@pytest.mark.parametrize("status", ["FAILED", "TIMED_OUT", "STOPPED"])
def test_a_first_build_that_ends_before_reporting_is_followed_by_a_round(status):
    clock = Clock()
    work = images(4)
    backend = EndsEarly(clock, status, polls_to_finish=2)
    result = make(backend, clock, {KEY: work}, batch_size=4, max_concurrent=2, prove_first=[KEY]).run()
    assert backend.started == ["b1", "b2"], "a second round copies what the first build did not"
    assert result["destinations"][KEY]["error"] is None
    assert len(backend.copied) == 4
