"""replication_executor.py: the parts that do not need a build (the builds themselves run in the sandbox tests)."""

import os
import time

from ansible_collections.cloudops.ecr_replication.plugins.module_utils import batching
from ansible_collections.cloudops.ecr_replication.plugins.module_utils import replication_executor as rx
from ansible_collections.cloudops.ecr_replication.plugins.module_utils import replication_results as rr

D1 = "sha256:" + "1" * 64
D2 = "sha256:" + "2" * 64


def test_common_env_shares_put_image_rate_between_builds():
    env = rx.common_env("ap-south-1", "ap-northeast-2", "222222222222", "arn:aws:iam::222222222222:role/x", "ext",
                        parallel_copies=6, force_tags=True, concurrent_builds=4)
    assert env["REPL_PUT_TPS"] == "2.5" and env["REPL_PARALLEL"] == "6" and env["REPL_FORCE_TAGS"] == "true"
    assert env["REPL_EXTERNAL_ID"] == "ext" and env["REPL_DEST_ACCOUNT"] == "222222222222"
    assert rx.common_env("a", "b", concurrent_builds=50)["REPL_PUT_TPS"] == "0.5"
    assert "REPL_DEST_ROLE_ARN" not in rx.common_env("a", "b")
    assert all(len(v) <= 4096 for v in env.values())


def test_batch_read_back_from_build_environment():
    batch = [{"repository": "a", "digest": D1, "tags": ["x"]}, {"repository": "b", "digest": D2, "tags": []}]
    variables = [{"name": k, "value": v, "type": "PLAINTEXT"} for k, v in batching.batch_env(batch).items()]
    variables.append({"name": "REPL_DEST_REGION", "value": "r", "type": "PLAINTEXT"})
    assert rx.batch_from_env(variables) == batch
    assert rx.batch_from_env([]) is None
    assert rx.batch_from_env(None) is None


def test_failure_reason_names_phase_and_context():
    build = {
        "buildStatus": "FAILED",
        "phases": [
            {"phaseType": "INSTALL", "phaseStatus": "SUCCEEDED"},
            {"phaseType": "BUILD", "phaseStatus": "FAILED",
             "contexts": [{"statusCode": "COMMAND_EXECUTION_ERROR", "message": "Error while executing command: python3. Reason: exit status 1"}]},
        ],
    }
    assert rx.failure_reason(build) == "build FAILED in phase BUILD: Error while executing command: python3. Reason: exit status 1"
    assert rx.failure_reason({"buildStatus": "TIMED_OUT"}) == "build TIMED_OUT"


def test_results_for_marks_unreported_images_of_a_failed_build():
    lines = [rr.format_result({"repository": "a", "digest": D1, "tags": ["x"], "status": "copied", "bytes": 1,
                               "seconds": 1, "error": None})]
    planned = [{"repository": "a", "digest": D1, "tags": ["x"]}, {"repository": "b", "digest": D2, "tags": []}]
    record = {"status": "STOPPED", "error": "build STOPPED in phase BUILD"}
    results = rx.results_for(record, lines, planned)
    assert [r["status"] for r in results] == ["copied", "failed"]
    assert results[1]["error"] == "build STOPPED in phase BUILD before this image was reported"
    ok = rx.results_for({"status": "SUCCEEDED"}, [], planned[:1])
    assert ok[0]["status"] == "failed" and "did not report" in ok[0]["error"]
    assert rx.results_for({"status": "FAILED"}, lines, None)[0]["digest"] == D1


def test_local_programs_each_get_the_whole_put_image_budget_and_one_pace_file_per_registry(tmp_path):
    """They take turns through the pace file: whatever share the driver computed for a build, a local program may
    use all 10 a second while the others wait for their turn."""
    buildspec = "version: 0.2\nphases:\n  build:\n    commands:\n      - echo tps=$REPL_PUT_TPS pace=$REPL_PACE_FILE\n"
    backend = rx.LocalBackend(buildspec, {}, timeout=60, workdir=str(tmp_path))
    image = {"repository": "app/web", "digest": "sha256:" + "a" * 64, "tags": ["v1"]}
    env = {"REPL_PUT_TPS": "2.0", "REPL_DEST_REGION": "eu-west-1", "REPL_DEST_ACCOUNT": "222222222222"}
    ids = [backend.start([image], env), backend.start([image], dict(env, REPL_DEST_REGION="us-east-1"))]
    deadline = time.time() + 30
    while any(r["status"] == "IN_PROGRESS" for r in backend.poll(ids).values()) and time.time() < deadline:
        time.sleep(0.05)
    said = [next(line for line in backend.new_lines(i) if line.startswith("tps=")) for i in ids]
    assert all(line.startswith("tps=10.0 ") for line in said)
    paces = [line.split("pace=")[1] for line in said]
    assert paces[0] != paces[1] and all(p.startswith(backend.pace_dir) for p in paces)
    backend.close()
    assert not os.path.exists(backend.pace_dir)
