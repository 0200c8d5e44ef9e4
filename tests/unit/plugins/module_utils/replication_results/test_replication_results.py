"""replication_results.py: RESULT lines written by buildspec.yml, read back from logs."""

from ansible_collections.cloudops.ecr_replication.plugins.module_utils import replication_results as rr

D1 = "sha256:" + "1" * 64
D2 = "sha256:" + "2" * 64


def result(digest=D1, status="copied", **extra):
    return dict(dict(repository="team-a/api", digest=digest, tags=["v1"], status=status, bytes=5, seconds=1.5, error=None), **extra)


def test_format_then_parse_round_trip():
    line = rr.format_result(result(error="boom\nsecond line"))
    assert "\n" not in line and line.startswith("RESULT {")
    assert rr.parse_line(line) == result(error="boom\nsecond line")


def test_parse_ignores_noise_and_program_text():
    lines = [
        "[Container] 2026/11/24 10:00:00.000 Running command python3 - <<'REPLICATOR_PY'",
        'RESULT_PREFIX = "RESULT "',
        "print(RESULT {not json",
        "RESULT {\"repository\": \"a\"}",  # missing fields
        "RESULT " + '{"repository":"a","digest":"%s","status":"weird"}' % D1,
        "xRESULT " + rr.format_result(result())[7:],
        "2026-11-24T10:00:00Z " + rr.format_result(result(D2, "failed", error="x")),
        "  " + rr.format_result(result()),
    ]
    parsed = rr.parse_lines(lines)
    assert [(r["digest"], r["status"]) for r in parsed] == [(D2, "failed"), (D1, "copied")]


def test_multi_line_events_and_defaults():
    chunk = "a\n" + 'RESULT {"repository":"r","digest":"%s","status":"present"}\nb' % D1
    (parsed,) = rr.parse_lines([chunk, None])
    assert parsed["tags"] == [] and parsed["bytes"] == 0 and parsed["error"] is None


def test_latest_wins_and_completion():
    reported = rr.latest_by_image([result(status="failed", error="x"), result(status="copied")])
    planned = [dict(repository="team-a/api", digest=D1, tags=["v1"]), dict(repository="team-a/api", digest=D2, tags=[])]
    done = rr.complete_results(planned, reported, "build FAILED before reporting this image")
    assert done[0]["status"] == "copied"
    assert done[1]["status"] == "failed" and done[1]["error"] == "build FAILED before reporting this image"
    summary = rr.summarize(done + [result(D2, "tag_conflict"), result(D2, "present")])
    assert summary["images"] == 4 and summary["copied"] == summary["failed"] == summary["tag_conflict"] == 1
    assert summary["bytes_copied"] == 5
    assert summary["failures"] == [{"repository": "team-a/api", "digest": D2, "error": "build FAILED before reporting this image"}]
