# Copyright: Contributors to the cloudops.ecr_replication project
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""tag_regex: refused when it can backtrack exponentially on a tag, accepted in the shapes people write."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from ansible_collections.cloudops.ecr_replication.plugins.module_utils.validation import OptionError
from ansible_collections.cloudops.ecr_replication.plugins.module_utils.validation import compile_tag_regex

CATASTROPHIC = [
    r"(a+)+$",
    r"^(\w+\s?)*$",
    r"(.*a){20}",
    r"(a|aa)+$",
    r"^(\d|\d\d)+$",
    r"((ab)*)+$",
    r"(a*)*b",
    r"(x+x+)+y",
    r"(-?\d+)+$",
]
EVERYDAY = [
    r"^v[0-9]+\.[0-9]+\.[0-9]+$",
    r"^(\d+\.)+\d+$",
    r"^([a-z]+-)*[a-z]+$",
    r"^(foo|bar)+$",
    r"latest|stable",
    r"^release-.*",
    r"^(v\d+)+$",
    r".*",
    r"^[a-f0-9]{7,40}$",
    r"(?:\d+\.){2}\d+",
    r"^v\d+(\.\d+)*(-rc\d+)?$",
    r"^(main|develop)-[0-9a-f]{7}$",
]


@pytest.mark.parametrize("pattern", CATASTROPHIC)
def test_catastrophic_patterns_are_refused_naming_the_option(pattern):
    with pytest.raises(OptionError) as caught:
        compile_tag_regex(pattern, "replicate_tag_regex")
    assert caught.value.option == "replicate_tag_regex"
    assert "catastrophic backtracking" in caught.value.message and repr(pattern) in caught.value.message


@pytest.mark.parametrize("pattern", EVERYDAY)
def test_everyday_patterns_are_accepted(pattern):
    assert compile_tag_regex(pattern, "tag_regex").pattern == pattern


def test_an_invalid_pattern_names_the_option():
    with pytest.raises(OptionError, match=r"^tag_regex: '\[' is not a valid regular expression"):
        compile_tag_regex("[", "tag_regex")


def test_what_the_check_prevents_really_hangs():
    """Without the check, one 40-character tag keeps Python's re busy for far longer than a run can wait: the
    pattern is tried in a child process that gets 3 s (a linear pattern answers in microseconds)."""
    tag = "a" * 40 + "-"
    assert len(tag) <= 128 and re.fullmatch(r"[A-Za-z0-9_.-]+", tag)
    probe = "import re,sys; print(bool(re.search(sys.argv[1], sys.argv[2])))"
    with pytest.raises(subprocess.TimeoutExpired):
        subprocess.run([sys.executable, "-c", probe, CATASTROPHIC[0], tag], timeout=3, check=False)
    quick = subprocess.run([sys.executable, "-c", probe, "^a+$", tag], timeout=30, capture_output=True, check=True)
    assert quick.stdout.strip() == b"False"
