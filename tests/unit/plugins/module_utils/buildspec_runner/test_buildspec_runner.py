# Copyright: Contributors to the cloudops.ecr_replication project
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""BuildspecRunner with a real bash (no mocks): CodeBuild's phase rules, env, output, stop and timeout."""

from __future__ import annotations

import os
import pathlib
import textwrap
import threading
import time

import pytest

from ansible_collections.cloudops.ecr_replication.plugins.module_utils.buildspec_runner import BuildResult
from ansible_collections.cloudops.ecr_replication.plugins.module_utils.buildspec_runner import BuildspecError
from ansible_collections.cloudops.ecr_replication.plugins.module_utils.buildspec_runner import BuildspecRunner
from ansible_collections.cloudops.ecr_replication.plugins.module_utils.buildspec_runner import load_buildspec
from ansible_collections.cloudops.ecr_replication.plugins.module_utils.buildspec_runner import validate_buildspec

BASE_ENV = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8"}


def spec(text: str) -> str:
    return textwrap.dedent(text).lstrip("\n")


class Build:
    """Runs a buildspec, keeps the output lines (command output only: no [Container] lines in .out)."""

    def __init__(self, text: str, env: dict | None = None, **kwargs):
        self.lines: list[str] = []
        self.events: list[tuple[str, str]] = []
        self.runner = BuildspecRunner(
            spec(text) if isinstance(text, str) else text,
            dict(BASE_ENV, **(env or {})),
            sink=self.lines.append,
            on_phase=lambda p: self.events.append((p.name, p.status)),
            **kwargs,
        )

    def run(self) -> BuildResult:
        self.result = self.runner.run()
        return self.result

    @property
    def out(self) -> list[str]:
        return [line for line in self.lines if not line.startswith("[Container] ")]

    def phases(self) -> dict[str, str]:
        return {p.name: p.status for p in self.result.phases}


# ---------------------------------------------------------------------------------------------------------------
# load_buildspec


def test_load_normalizes():
    data = load_buildspec(spec("""
            version: 0.2
            env:
              variables:
                NUM: 5
                FLAG: true
                EMPTY:
              exported-variables: [RESULT]
            phases:
              build:
                on-failure: CONTINUE
                commands:
                  - echo hi
                finally:
                  - echo bye
            artifacts:
              files: ['**/*']
            """))
    assert data["version"] == "0.2"
    assert data["env"] == {
        "shell": "bash",
        "variables": {"NUM": "5", "FLAG": "true", "EMPTY": ""},
        "exported-variables": ["RESULT"],
    }
    assert data["phases"] == {"build": {"commands": ["echo hi"], "finally": ["echo bye"], "on-failure": "CONTINUE"}}
    assert data["artifacts"] == {"files": ["**/*"]}


@pytest.mark.parametrize(
    "text, expected",
    [
        ("version: 0.2\nphases:\n  build:\n    commands:\n      - echo a\n     - echo b\n", "line 6: invalid YAML"),
        ("version: 0.2\nphases:\n  build:\n    commands: [echo a\n", "line 5: invalid YAML"),
        ("version: 0.2\nphases:\n  build:\n    commands:\n      - echo a\n      - echo key: value\n", "line 6: "),
        ("version: 0.2\nphases:\n  biuld:\n    commands: [ls]\n", "line 3: unknown key 'biuld' in phases"),
        ("version: 0.1\nphases:\n  build:\n    commands: [ls]\n", "line 1: version '0.1' is not supported"),
        ("phases:\n  build:\n    commands: [ls]\n", "line 1: version is required"),
        ("version: 0.2\n", "line 1: phases is required"),
        (
            "version: 0.2\nphases:\n  build:\n    on-failure: RETRY\n    commands: [ls]\n",
            "line 4: phases.build.on-failure",
        ),
        ("version: 0.2\nenv:\n  shell: zsh\nphases:\n  build:\n    commands: [ls]\n", "line 3: env.shell 'zsh'"),
        ("version: 0.2\nenv:\n  exported-variables:\n    - AWS_X\nphases: {build: {commands: [ls]}}\n", "line 4: "),
        ("version: 0.2\nenv:\n  variables:\n    1BAD: x\nphases: {build: {commands: [ls]}}\n", "line 4: env.variables"),
        ("version: 0.2\nenv:\n  parameter-store:\n    X: /p\nphases: {build: {commands: [ls]}}\n", "line 3: "),
        ("version: 0.2\nphases:\n  build:\n    run-as: nobody\n    commands: [ls]\n", "line 4: run-as"),
        (
            "version: 0.2\nphases:\n  build:\n    commands: echo single\n",
            "line 4: phases.build.commands must be a list",
        ),
        ("- a list\n", "line 1: a buildspec must be a YAML mapping"),
        ("", "line 1: the buildspec is empty"),
    ],
)
def test_load_errors_name_the_line(text, expected):
    with pytest.raises(BuildspecError) as excinfo:
        load_buildspec(text)
    assert str(excinfo.value).startswith(expected), str(excinfo.value)
    assert "Traceback" not in str(excinfo.value)


def test_command_read_as_mapping_says_to_quote():
    with pytest.raises(BuildspecError, match=r"line 5: phases\.build\.commands\[0\] must be a string .*quote"):
        load_buildspec("version: 0.2\nphases:\n  build:\n    commands:\n    - echo a: b\n")


def test_validate_dict_names_the_path():
    with pytest.raises(BuildspecError, match=r"^phases\.build\.commands\[1\] is an empty command"):
        validate_buildspec({"version": 0.2, "phases": {"build": {"commands": ["ls", None]}}})


def test_runner_rejects_invalid_buildspec_before_running(tmp_path):
    with pytest.raises(BuildspecError, match="line 3: unknown key"):
        BuildspecRunner("version: 0.2\nphases:\n  compile:\n    commands: [touch x]\n", BASE_ENV, workdir=str(tmp_path))
    assert list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------------------------------------------------------
# phases


def test_all_phases_succeed_and_share_one_shell():
    build = Build("""
        version: 0.2
        phases:
          install:
            commands:
              - PLAIN=not-exported
              - export EXPORTED=yes
              - greet() { echo "hello $1"; }
              - mkdir -p sub && cd sub
          pre_build:
            commands:
              - echo "plain=$PLAIN exported=$EXPORTED"
          build:
            commands:
              - greet world
              - basename "$(pwd)"
          post_build:
            commands:
              - bash -c 'echo "child sees exported=$EXPORTED plain=${PLAIN:-unset}"'
        """)
    result = build.run()
    assert result.status == "SUCCEEDED"
    assert build.phases() == {n: "SUCCEEDED" for n in ("INSTALL", "PRE_BUILD", "BUILD", "POST_BUILD")}
    assert build.out == ["plain=not-exported exported=yes", "hello world", "sub", "child sees exported=yes plain=unset"]
    assert all(p.end >= p.start for p in result.phases)
    assert build.events == [
        ("INSTALL", "IN_PROGRESS"), ("INSTALL", "SUCCEEDED"),
        ("PRE_BUILD", "IN_PROGRESS"), ("PRE_BUILD", "SUCCEEDED"),
        ("BUILD", "IN_PROGRESS"), ("BUILD", "SUCCEEDED"),
        ("POST_BUILD", "IN_PROGRESS"), ("POST_BUILD", "SUCCEEDED"),
    ]  # fmt: skip


def test_failing_command_skips_rest_runs_finally_and_fails_phase():
    build = Build("""
        version: 0.2
        phases:
          build:
            commands:
              - echo one
              - exit_code() { return 3; }; exit_code
              - echo skipped
            finally:
              - echo "finally succeeding=$CODEBUILD_BUILD_SUCCEEDING"
              - echo finally-two
        """)
    result = build.run()
    assert result.status == "FAILED"
    assert build.out[:3] == ["one", "finally succeeding=0", "finally-two"]
    assert "skipped" not in build.out
    build_phase = result.phases[2]
    assert (build_phase.name, build_phase.status, build_phase.code) == ("BUILD", "FAILED", "COMMAND_EXECUTION_ERROR")
    assert (
        build_phase.message
        == "Error while executing command: exit_code() { return 3; }; exit_code. Reason: exit status 3"
    )
    assert any("Phase complete: BUILD State: FAILED" in line for line in build.lines)


def test_failing_finally_fails_the_phase():
    build = Build("""
        version: 0.2
        phases:
          install:
            commands: [echo ok]
            finally: ["false", echo not-reached]
        """)
    result = build.run()
    assert result.status == "FAILED"
    assert build.phases() == {"INSTALL": "FAILED"}
    assert build.out == ["ok"]


@pytest.mark.parametrize("failing", ["install", "pre_build"])
def test_install_or_pre_build_failure_skips_later_phases(failing):
    text = """
        version: 0.2
        phases:
          install:
            commands: [echo install]
          pre_build:
            commands: [echo pre_build]
          build:
            commands: [echo build]
          post_build:
            commands: [echo post_build]
        """.replace(f"commands: [echo {failing}]", f"commands: [echo {failing}, 'false']")
    build = Build(text)
    result = build.run()
    assert result.status == "FAILED"
    assert build.out[-1] == failing
    assert "build" not in build.out and "post_build" not in build.out
    assert list(build.phases().values())[-1] == "FAILED"
    assert "BUILD" not in build.phases() and "POST_BUILD" not in build.phases()


def test_build_failure_still_runs_post_build_with_succeeding_0():
    build = Build("""
        version: 0.2
        phases:
          pre_build:
            commands: ['echo "pre $CODEBUILD_BUILD_SUCCEEDING"']
          build:
            commands: ['false']
          post_build:
            commands: ['echo "post $CODEBUILD_BUILD_SUCCEEDING"']
        """)
    result = build.run()
    assert result.status == "FAILED"
    assert build.out == ["pre 1", "post 0"]
    assert build.phases() == {
        "INSTALL": "SUCCEEDED",
        "PRE_BUILD": "SUCCEEDED",
        "BUILD": "FAILED",
        "POST_BUILD": "SUCCEEDED",
    }


def test_post_build_failure_fails_build():
    build = Build("version: 0.2\nphases:\n  post_build:\n    commands: ['exit 4']\n")
    result = build.run()
    assert result.status == "FAILED"
    assert result.phases[-1].message.endswith("Reason: exit status 4")


def test_on_failure_continue_goes_to_next_phase_but_build_fails():
    build = Build("""
        version: 0.2
        phases:
          install:
            on-failure: CONTINUE
            commands: ['false']
          pre_build:
            commands: ['echo "pre $CODEBUILD_BUILD_SUCCEEDING"']
          build:
            commands: [echo build]
        """)
    result = build.run()
    assert result.status == "FAILED"
    assert build.out == ["pre 0", "build"]
    assert build.phases()["INSTALL"] == "FAILED" and build.phases()["BUILD"] == "SUCCEEDED"


def test_on_failure_abort_in_build_skips_post_build():
    build = Build("""
        version: 0.2
        phases:
          build:
            on-failure: ABORT
            commands: ['false']
          post_build:
            commands: [echo post]
        """)
    result = build.run()
    assert result.status == "FAILED"
    assert "post" not in build.out
    assert "POST_BUILD" not in build.phases()


def test_exit_in_a_command_ends_that_shell_and_later_commands_get_a_fresh_one():
    build = Build("""
        version: 0.2
        env:
          variables:
            FROM_SPEC: spec
        phases:
          build:
            commands:
              - STATE=kept
              - exit 0
              - echo "state=${STATE:-lost} spec=$FROM_SPEC"
          post_build:
            commands: ['exit 7']
        """)
    result = build.run()
    assert build.out == ["state=lost spec=spec"]
    assert build.phases()["BUILD"] == "SUCCEEDED"
    assert result.status == "FAILED" and result.phases[-1].message.endswith("exit status 7")


def test_multiline_command_status_is_its_last_line_and_stdin_is_dev_null():
    build = Build("""
        version: 0.2
        phases:
          build:
            commands:
              - |
                false
                echo "multi"
              - cat
              - if read -r line; then echo "read $line"; else echo "stdin is empty"; fi
        """)
    assert build.run().status == "SUCCEEDED"
    assert build.out == ["multi", "stdin is empty"]


def test_output_line_by_line_stderr_and_partial_lines():
    build = Build("""
        version: 0.2
        phases:
          build:
            commands:
              - printf 'no-newline'
              - echo to-stderr >&2
              - printf 'a\\nb\\n\\nc'
              - printf '\\xff\\n'
        """)
    assert build.run().status == "SUCCEEDED"
    assert build.out == ["no-newline", "to-stderr", "a", "b", "", "c", "\ufffd"]
    container = [line for line in build.lines if line.startswith("[Container] ")]
    assert any(line.endswith("Entering phase BUILD") for line in container)
    assert any(line.endswith("Running command printf 'no-newline'") for line in container)


def test_exec_redirect_in_a_command_does_not_hide_the_status(tmp_path):
    log = tmp_path / "all.log"
    build = Build(f"version: 0.2\nphases:\n  build:\n    commands:\n      - exec >{log} 2>&1\n      - echo hidden\n")
    assert build.run().status == "SUCCEEDED"
    assert log.read_text() == "hidden\n"


def test_bin_sh_shell():
    build = Build("""
        version: 0.2
        env:
          shell: /bin/sh
        phases:
          build:
            commands:
              - X=1
              - 'echo "x=$X bash=${BASH_VERSION:-none}"'
        """)
    assert build.run().status == "SUCCEEDED"
    assert build.out == ["x=1 bash=none"]


# ---------------------------------------------------------------------------------------------------------------
# environment


def test_environment_precedence_and_codebuild_variables(tmp_path):
    build = Build(
        """
        version: 0.2
        env:
          variables:
            LOW: spec
            OVERRIDDEN: spec
            CODEBUILD_BUILD_ID: spec-must-lose
        phases:
          build:
            commands:
              - echo "$LOW $OVERRIDDEN $CODEBUILD_BUILD_ID $CODEBUILD_BUILD_NUMBER"
              - echo "$CODEBUILD_BUILD_ARN"
              - echo "$CODEBUILD_SRC_DIR $(pwd)"
              - echo "$CODEBUILD_INITIATOR|$CODEBUILD_START_TIME|$CODEBUILD_BUILD_SUCCEEDING|$CODEBUILD_PROJECT_ARN"
              - echo "${HOME:-no-home}"
        """,
        env={"OVERRIDDEN": "env", "AWS_REGION": "ap-south-1"},
        workdir=str(tmp_path / "src"),
        build_id="proj:1234",
        extra_codebuild_vars={"CODEBUILD_BUILD_NUMBER": "42", "CODEBUILD_PROJECT_ARN": "arn:project"},
    )
    before = time.time()
    assert build.run().status == "SUCCEEDED"
    assert build.out[0] == "spec env proj:1234 42"
    assert build.out[1] == "arn:aws:codebuild:ap-south-1:000000000000:build/proj:1234"
    assert build.out[2] == f"{tmp_path / 'src'} {tmp_path / 'src'}"
    initiator, start_ms, succeeding, project_arn = build.out[3].split("|")
    assert initiator and succeeding == "1" and project_arn == "arn:project"
    assert abs(int(start_ms) / 1000 - before) < 5
    assert build.out[4] == "no-home"  # nothing is inherited from the runner's own environment
    assert (tmp_path / "src").is_dir()  # a given workdir is kept


def test_own_workdir_is_fresh_and_removed():
    build = Build("version: 0.2\nphases:\n  build:\n    commands: [pwd, ls -A | wc -l, touch made]\n")
    assert build.run().status == "SUCCEEDED"
    workdir = pathlib.Path(build.out[0])
    assert build.out[1] == "0"
    assert not workdir.exists()


def test_exported_variables():
    build = Build("""
        version: 0.2
        env:
          variables:
            FROM_SPEC: spec-value
          exported-variables: [RESULT, FROM_SPEC, NEVER_SET]
        phases:
          build:
            commands: ['RESULT="a b=c"']
        """)
    result = build.run()
    assert result.exported_variables == {"RESULT": "a b=c", "FROM_SPEC": "spec-value"}


def test_sink_errors_do_not_break_the_build():
    def bad_sink(line):
        raise RuntimeError("sink is broken")

    runner = BuildspecRunner("version: 0.2\nphases:\n  build:\n    commands: [echo x]\n", BASE_ENV, sink=bad_sink)
    assert runner.run().status == "SUCCEEDED"


# ---------------------------------------------------------------------------------------------------------------
# background processes, stop and timeout


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie is dead for our purpose
    try:
        with open(f"/proc/{pid}/stat", encoding="utf-8") as f:
            return f.read().split(") ", 1)[1][0] != "Z"
    except FileNotFoundError:
        return False


def test_background_process_survives_phases_and_is_killed_at_the_end(tmp_path):
    pidfile = tmp_path / "pid"
    build = Build(f"""
        version: 0.2
        phases:
          install:
            commands: ['sleep 300 >/dev/null 2>&1 & echo $! > {pidfile}']
          build:
            commands: ['kill -0 "$(cat {pidfile})" && echo still-running']
        """)
    assert build.run().status == "SUCCEEDED"
    assert build.out == ["still-running"]
    pid = int(pidfile.read_text())
    deadline = time.time() + 5
    while _alive(pid) and time.time() < deadline:
        time.sleep(0.05)
    assert not _alive(pid)


def _run_in_thread(build: Build) -> threading.Thread:
    thread = threading.Thread(target=build.run, daemon=True)
    thread.start()
    return thread


def _wait_for_line(build: Build, text: str, seconds: float = 10) -> None:
    deadline = time.time() + seconds
    while text not in build.out:
        assert time.time() < deadline, f"{text!r} never appeared; output: {build.lines}"
        time.sleep(0.02)


def test_stop_kills_the_process_group(tmp_path):
    pidfile = tmp_path / "pid"
    build = Build(f"""
        version: 0.2
        phases:
          build:
            commands:
              - sleep 300 & echo $! > {pidfile}; echo started; wait
            finally: [echo finally-must-not-run]
          post_build:
            commands: [echo post-must-not-run]
        """)
    thread = _run_in_thread(build)
    _wait_for_line(build, "started")
    began = time.time()
    build.runner.stop()
    thread.join(timeout=15)
    assert not thread.is_alive()
    assert time.time() - began < 5
    result = build.result
    assert result.status == "STOPPED"
    assert build.phases() == {"INSTALL": "SUCCEEDED", "PRE_BUILD": "SUCCEEDED", "BUILD": "STOPPED"}
    assert "finally-must-not-run" not in build.out and "post-must-not-run" not in build.out
    assert ("BUILD", "STOPPED") in build.events
    assert not _alive(int(pidfile.read_text()))


def test_stop_before_run():
    build = Build("version: 0.2\nphases:\n  build:\n    commands: [echo never]\n")
    build.runner.stop()
    assert build.run().status == "STOPPED"
    assert build.out == [] and build.result.phases == []


def test_timeout_kills_and_reports_timed_out(tmp_path):
    pidfile = tmp_path / "pid"
    build = Build(
        f"""
        version: 0.2
        phases:
          pre_build:
            commands: [echo before]
          build:
            commands:
              - "trap '' TERM; sleep 300 & echo $! > {pidfile}; wait"
        """,
        timeout=0.5,
    )
    began = time.time()
    result = build.run()
    assert time.time() - began < 0.5 + 5  # 0.5 s timeout, 2 s grace for SIGTERM, then SIGKILL
    assert result.status == "TIMED_OUT"
    assert build.phases() == {"INSTALL": "SUCCEEDED", "PRE_BUILD": "SUCCEEDED", "BUILD": "TIMED_OUT"}
    assert result.phases[-1].message.startswith("Build timed out")
    assert not _alive(int(pidfile.read_text()))
