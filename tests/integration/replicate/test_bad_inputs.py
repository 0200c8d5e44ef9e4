# Copyright: Contributors to the cloudops.ecr_replication project
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The bad-input table of README's troubleshooting section, through `ansible-playbook playbooks/replicate.yml` as a
user types it: each case ends with a non-zero exit, a message naming the option, no traceback, and no change in
AWS (every control-plane call counted at the wire: only reads, and for the builds' own role at most the one build
that proves it).

Unit tests cover each validator; these show that the role, its argument spec and the plugins reach them."""

from __future__ import annotations

import json
import re

import pytest

from .conftest import EXTERNAL_ID
from .conftest import run_playbook
from .conftest import user_args

pytestmark = pytest.mark.sandbox

# Anything that changes AWS: none of these may reach the wire for a refused input.
MUTATING = re.compile(
    r"[.:](Create|Put|Delete|BatchDelete|Start|Stop|Tag|Untag|Update|Set|Upload|Complete|Initiate|Attach|Detach)"
)
LONG_NAME = "team/" + "a" * 251  # 256 characters: ECR's own limit, too long for a registry reference

CASES = [
    # (id, extra -e options, option the message names, what it says)
    ("unknown source region", ["-e", "src_region=ap-nowhere-9"], "replicate_source_region", "not an ECR region"),
    ("unknown destination region", ["-e", "dest_region=eu-nowhere-1"], "replicate_dest_region", "not an ECR region"),
    ("source region malformed", ["-e", "src_region=Mumbai"], "replicate_source_region", "must be an AWS region"),
    ("destination identical to source", ["-e", "dest_region=ap-south-1", "-e", "dest_account=111111111111"],
     "replicate_dest", "source"),
    ("malformed role ARN", ["-e", "dest_role=arn:aws:iam::2222:role"], "replicate_dest_role_arn", "IAM role ARN"),
    ("role ARN of another account", ["-e", "dest_role=arn:aws:iam::333333333333:role/x"], "replicate_dest_role_arn",
     "not of the destination"),
    ("invalid regex", ["-e", "tag_regex=[v1"], "replicate_tag_regex", "not a valid regular expression"),
    ("catastrophic regex", ["-e", "tag_regex=(a+)+$"], "replicate_tag_regex", "catastrophic backtracking"),
    ("batch_size 0", ["-e", "batch_size=0"], "replicate_batch_size", "from 1 to 500"),
    ("batch_size negative", ["-e", "batch_size=-5"], "replicate_batch_size", "from 1 to 500"),
    ("batch_size too large", ["-e", "batch_size=100000"], "replicate_batch_size", "from 1 to 500"),
    ("negative concurrency", ["-e", "max_concurrent_builds=-1"], "replicate_max_concurrent_builds", "from 1 to"),
    ("negative parallel copies", ["-e", "parallel_copies=-2"], "replicate_parallel_copies", "from 1 to"),
    ("pushed_after out of range", ["-e", "pushed_after=100000000d"], "replicate_pushed_after", ""),
    ("pushed_after not a date", ["-e", "pushed_after=last-tuesday"], "replicate_pushed_after", ""),
    ("repository name at the 256-character limit", ["-e", f"repositories={LONG_NAME}"], "replicate_repositories",
     "does not fit in a registry reference"),
    ("unknown strategy", ["-e", "strategy=sideways"], "replicate_strategy", "must be one of"),
]


def _run_counted(sandbox, tmp_path, *args):
    from tests.sandbox.call_counter import CountingProxy

    proxy = CountingProxy(int(sandbox.env["SANDBOX_BASE_PORT"]), 0).start()
    try:
        run = run_playbook(sandbox, "replicate.yml", tmp_path, *args, env={"AWS_ENDPOINT_URL": proxy.url})
        calls = proxy.snapshot()
    finally:
        proxy.stop()
    return run, calls


def _assert_refused(run, calls, option, says):
    assert run.returncode != 0, run.explain()
    assert option in run.stdout, run.stdout[-3000:]
    assert says in run.stdout, run.stdout[-3000:]
    assert "Traceback" not in run.stdout + run.stderr, run.explain()
    changes = sorted(c for c in calls if MUTATING.search(c))
    assert not changes, f"a refused input changed AWS: {changes}"


@pytest.mark.parametrize("case,extra,option,says", CASES, ids=[c[0] for c in CASES])
def test_bad_input_is_refused_and_changes_nothing(provisioned, tmp_path, reliability, case, extra, option, says):
    reliability.bad_input_tried(case)
    run, calls = _run_counted(provisioned, tmp_path, *user_args(provisioned, *extra))
    _assert_refused(run, calls, option, says)
    # refused before anything was read: the options are all checked before the first AWS call
    reads = sorted(c for c in calls if "GetCallerIdentity" not in c)
    assert not reads, f"{case}: AWS was called before the input was refused: {reads}"
    reliability.bad_input_refused(case)


READ_CASES = [
    # found by the first reads (the repository listing, the destination's read role), before any build or write
    ("missing repository in the include list", ["-e", "repositories=app/web,no/such-repo"], "replicate_repositories",
     "no/such-repo"),
    ("read role that cannot be assumed",
     ["-e", "dest_read_role=no-such-reader"], "replicate_dest_read_role_name", "no-such-reader"),
    ("wrong ExternalId for the read role", ["-e", "external_id=not-the-right-external-id"],
     "replicate_dest_read_role_name", "with the ExternalId given (replicate_external_id)"),
]


@pytest.mark.parametrize("case,extra,option,says", READ_CASES, ids=[c[0] for c in READ_CASES])
def test_bad_input_found_by_the_first_reads_changes_nothing(
    provisioned, tmp_path, reliability, case, extra, option, says
):
    reliability.bad_input_tried(case)
    args = user_args(provisioned, *extra)
    if "external_id=not-the-right-external-id" in extra:
        args = [a for a in args if a != f"external_id={EXTERNAL_ID}"]
        args = [a for i, a in enumerate(args) if not (a == "-e" and i + 1 < len(args) and args[i + 1] == "-e")]
    run, calls = _run_counted(provisioned, tmp_path, *args)
    _assert_refused(run, calls, option, says)
    reliability.bad_input_refused(case)


def _set_parameter(sandbox, value):
    ssm = sandbox.client("ssm", "source", sandbox.source_region)
    name = f"/cloudops/ecr-replication/{sandbox.target_account}/external-id"
    ssm.put_parameter(Name=name, Value=value, Type="SecureString", Overwrite=True)


def _builds_started(calls):
    return sum(n for c, n in calls.items() if c.endswith("StartBuild"))


@pytest.mark.parametrize(
    "case,extra",
    [
        ("wrong ExternalId for the builds' target role", []),
        ("target role that cannot be assumed", ["-e", "dest_role=arn:aws:iam::222222222222:role/no-such-target"]),
    ],
)
def test_a_target_role_the_builds_cannot_assume_costs_one_build(provisioned, tmp_path, reliability, case, extra):
    """The builds assume the destination role with the ExternalId of the SSM parameter; the controller cannot try
    that role itself (it trusts the CodeBuild service role, not the controller). So the first build of the
    destination runs alone: when it cannot assume the role, no other build starts, nothing is written, and the
    error says which role."""
    sandbox = provisioned
    reliability.bad_input_tried(case)
    wrong_parameter = not extra
    if wrong_parameter:
        _set_parameter(sandbox, "a-wrong-external-id-1234")
    try:
        run, calls = _run_counted(
            sandbox, tmp_path, *user_args(sandbox, "-e", "batch_size=5", "-e", "poll_interval=0.2", *extra)
        )
    finally:
        if wrong_parameter:
            _set_parameter(sandbox, EXTERNAL_ID)
    assert run.returncode != 0, run.explain()
    assert _builds_started(calls) == 1, calls
    report = json.loads((tmp_path / "reports" / "ecr-replication-report.json").read_text())
    (destination,) = report["destinations"]
    error = destination["summary"]["error"] or ""
    assert "no other build was started" in error and "assume" in error, error
    assert report["summary"]["copied"] == 0
    writes = sorted(c for c in calls if MUTATING.search(c) and not c.endswith(("StartBuild", "PutLogEvents")))
    assert not [w for w in writes if "ecr" in w.lower() or "Registry" in w], writes
    reliability.bad_input_refused(case)
