# Copyright: Contributors to the cloudops.ecr_replication project
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The secret scan of tests/reliability.py finds what it must, and never repeats the secret it found."""

from __future__ import annotations

from tests.reliability import Tally


def test_a_planted_secret_is_found_and_not_repeated():
    tally = Tally()
    tally.secret("s3cr3t-external-id-0042")
    tally.secret("short")  # too short to scan for: it would match by chance
    assert tally.scan("build log: assumed role with ExternalId s3cr3t-external-id-0042", "log") == 1
    assert tally.scan("nothing here, not even short", "stdout") == 0
    assert tally.secrets_found == 1 and tally.summary()["outputs_scanned"] == 2
    assert "s3cr3t" not in tally.findings[0] and "log" in tally.findings[0]


def test_figures_count_only_what_was_confirmed():
    tally = Tally()
    tally.fault_injected("registry 5xx")
    tally.bad_input_tried("batch_size=0")
    tally.bad_input_refused("batch_size=0")
    summary = tally.summary()
    assert summary["faults_injected"] == 1 and summary["faults_survived"] == 0
    assert summary["bad_inputs_tried"] == summary["bad_inputs_refused"] == 1
    assert "faults injected 1, survived 0" in tally.line()
