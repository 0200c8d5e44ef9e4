# -*- coding: utf-8 -*-

# Copyright: Contributors to the Ansible project
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Run a CodeBuild buildspec (version 0.2) on this machine, with CodeBuild's phase rules.

Used by ``codebuild_replicate`` with ``executor: local`` (the same ``buildspec.yml`` that CodeBuild runs, run on
the controller) and by the sandbox CodeBuild (``tests/sandbox/codebuild.py``).

What is supported, and how it maps to the CodeBuild documentation ("Build specification reference",
"Build phase transitions", "Environment variables in build environments"):

- ``env.variables`` (lowest precedence: the ``env`` given to the runner wins, as project and ``StartBuild``
  variables win in CodeBuild), ``env.shell`` (``bash``, the default, or ``/bin/sh``), ``env.exported-variables``
  (values read from the shell after the last phase; names starting with ``AWS_`` cannot be exported).
- ``phases.install``, ``pre_build``, ``build``, ``post_build`` with ``commands``, ``finally`` and ``on-failure``.
  A command fails when it exits non-zero; the rest of ``commands`` is skipped, ``finally`` still runs, and the phase
  fails if any of its commands failed. Without ``on-failure`` the documented transitions apply: a failed
  ``install`` or ``pre_build`` skips every later phase; a failed ``build`` still runs ``post_build``.
  ``CODEBUILD_BUILD_SUCCEEDING`` is ``1`` until the first failing command, ``0`` from then on (so ``finally``
  blocks and ``post_build`` can test it). ``on-failure: ABORT`` skips every later phase, ``on-failure: CONTINUE`` goes
  on with the next phase. Any failed phase makes the build ``FAILED``. Phases absent from the buildspec are
  reported as ``SUCCEEDED`` with no commands, as CodeBuild reports them.
- Shell state: like CodeBuild 0.2 ("all commands run in the same instance of the default shell"), all commands of
  all phases run in ONE shell process, one after the other (each command is sourced into it with stdin from
  ``/dev/null``). Variables (exported or not), the working directory, functions and background processes carry
  over from one command and phase to the next. A command that calls ``exit`` ends that shell: the command's status
  is the exit status, and the following commands run in a fresh shell that starts from the initial environment
  (the shell state is lost).
- Output of every command (stdout and stderr together) is passed line by line to ``sink``, between CodeBuild-like
  ``[Container] <time> ...`` lines (``Entering phase BUILD``, ``Running command ...``, ``Phase complete: ...``).
- ``stop()`` (from another thread) and ``timeout`` kill the whole process group of the shell (SIGTERM, then
  SIGKILL after a grace period); the build is ``STOPPED`` / ``TIMED_OUT`` and no ``finally`` runs.
- Not supported (rejected with an error naming the line): ``run-as``, ``env.parameter-store``,
  ``env.secrets-manager``, ``on-failure: RETRY...``, other shells. Ignored: ``runtime-versions``, ``artifacts``,
  ``reports``, ``cache``, ``proxy``, ``batch``, ``env.git-credential-helper``.

The process environment is exactly: ``env.variables`` of the buildspec, overridden by ``env`` (pass ``PATH``,
``HOME`` etc. in it: nothing else is inherited), overridden by the runner's ``CODEBUILD_*`` variables, overridden by
``extra_codebuild_vars``. The runner never writes the environment to the log.
"""

from __future__ import annotations

import datetime
import getpass
import os
import queue
import re
import secrets
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass
from dataclasses import field
from typing import Any
from typing import Callable

try:
    import yaml

    HAS_YAML = True
except ImportError:  # pragma: no cover - PyYAML comes with ansible-core
    HAS_YAML = False

PHASES = ("install", "pre_build", "build", "post_build")
PHASE_TYPES = {"install": "INSTALL", "pre_build": "PRE_BUILD", "build": "BUILD", "post_build": "POST_BUILD"}
SHELLS = {"bash": ["bash", "--noprofile", "--norc"], "/bin/sh": ["/bin/sh"]}
ON_FAILURE = ("ABORT", "CONTINUE")
FINAL_STATUSES = ("SUCCEEDED", "FAILED", "STOPPED", "TIMED_OUT")

_TOP_KEYS = ("version", "env", "phases", "run-as", "proxy", "batch", "reports", "artifacts", "cache")
_ENV_KEYS = ("shell", "variables", "exported-variables", "parameter-store", "secrets-manager", "git-credential-helper")
_PHASE_KEYS = ("commands", "finally", "on-failure", "run-as", "runtime-versions")
_UNSUPPORTED = {
    ("run-as",): "run-as is not supported by this runner (commands run as the current user)",
    ("env", "parameter-store"): "env.parameter-store is not supported by this runner; pass the values in env",
    ("env", "secrets-manager"): "env.secrets-manager is not supported by this runner; pass the values in env",
}
_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
STOP_GRACE_SECONDS = 2.0


class BuildspecError(ValueError):
    """The buildspec is not valid YAML or not a valid version 0.2 buildspec; the message names the line."""


@dataclass
class PhaseResult:
    """One build phase. ``status`` is ``IN_PROGRESS`` (and ``end`` None) only in the ``on_phase`` call at its start.

    ``message`` and ``code`` are CodeBuild's phase context (``COMMAND_EXECUTION_ERROR``, "Error while executing
    command: ...").
    """

    name: str
    status: str
    start: float
    end: float | None = None
    message: str | None = None
    code: str | None = None

    @property
    def duration(self) -> float:
        return max(0.0, (self.end or time.time()) - self.start)


@dataclass
class BuildResult:
    status: str
    phases: list[PhaseResult] = field(default_factory=list)
    exported_variables: dict[str, str] = field(default_factory=dict)


# --------------------------------------------------------------------------------------------------------------
# Parsing and validation


def _line_map(node: Any, path: tuple = (), lines: dict | None = None) -> dict:
    """Map each path in the YAML document (tuple of keys / indexes) to its 1-based line."""
    if lines is None:
        lines = {(): node.start_mark.line + 1}
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            key = key_node.value if isinstance(key_node, yaml.ScalarNode) else str(key_node.start_mark)
            lines[path + (key,)] = key_node.start_mark.line + 1
            _line_map(value_node, path + (key,), lines)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            lines[path + (index,)] = item.start_mark.line + 1
            _line_map(item, path + (index,), lines)
    return lines


class _Validator:
    def __init__(self, lines: dict | None):
        self.lines = lines or {}

    def error(self, path: tuple, message: str) -> BuildspecError:
        probe = path
        while probe and probe not in self.lines:
            probe = probe[:-1]
        prefix = f"line {self.lines[probe]}: " if probe in self.lines else ""
        return BuildspecError(prefix + message)

    @staticmethod
    def name(path: tuple) -> str:
        text = ""
        for part in path:
            text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
        return text or "buildspec"

    @staticmethod
    def kind(value: Any) -> str:
        if isinstance(value, dict):
            return "a mapping"
        if isinstance(value, list):
            return "a list"
        if value is None:
            return "empty"
        return f"a {type(value).__name__}"

    def mapping(self, value: Any, path: tuple, allowed: tuple) -> dict:
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise self.error(path, f"{self.name(path)} must be a mapping, not {self.kind(value)}")
        for key in value:
            if not isinstance(key, str) or key not in allowed:
                raise self.error(
                    path + (key,), f"unknown key {key!r} in {self.name(path)} (allowed: {', '.join(allowed)})"
                )
            if path + (key,) in _UNSUPPORTED:
                raise self.error(path + (key,), _UNSUPPORTED[path + (key,)])
        return value

    def scalar(self, value: Any, path: tuple, what: str) -> str:
        if isinstance(value, (dict, list)):
            hint = " (quote it: YAML read 'a: b' as a mapping)" if isinstance(value, dict) else ""
            raise self.error(path, f"{self.name(path)} must be {what}, not {self.kind(value)}{hint}")
        if value is None:
            return ""
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, (datetime.date, datetime.datetime)):
            return value.isoformat()
        return str(value)

    def commands(self, value: Any, path: tuple) -> list[str]:
        if value is None:
            return []
        if not isinstance(value, list):
            raise self.error(path, f"{self.name(path)} must be a list of commands, not {self.kind(value)}")
        result = []
        for index, item in enumerate(value):
            if item is None:
                raise self.error(path + (index,), f"{self.name(path + (index,))} is an empty command")
            result.append(self.scalar(item, path + (index,), "a string (one shell command)"))
        return result

    def validate(self, data: Any) -> dict:
        if not isinstance(data, dict):
            raise self.error((), f"a buildspec must be a YAML mapping, not {self.kind(data)}")
        self.mapping(data, (), _TOP_KEYS)
        if "version" not in data:
            raise self.error((), "version is required (version: 0.2)")
        version = self.scalar(data["version"], ("version",), "0.2")
        if version != "0.2":
            raise self.error(("version",), f"version {version!r} is not supported; use version: 0.2")
        result: dict[str, Any] = {key: value for key, value in data.items() if key not in ("env", "phases")}
        result["version"] = "0.2"

        env = self.mapping(data.get("env"), ("env",), _ENV_KEYS)
        shell = self.scalar(env.get("shell", "bash"), ("env", "shell"), "a shell name")
        if shell not in SHELLS:
            raise self.error(
                ("env", "shell"), f"env.shell {shell!r} is not supported (use one of: {', '.join(SHELLS)})"
            )
        variables = {}
        raw_vars = env.get("variables")
        if raw_vars is not None and not isinstance(raw_vars, dict):
            raise self.error(("env", "variables"), f"env.variables must be a mapping, not {self.kind(raw_vars)}")
        for name, value in (raw_vars or {}).items():
            path = ("env", "variables", name)
            if not isinstance(name, str) or not _NAME_RE.match(name):
                raise self.error(path, f"env.variables: {name!r} is not a valid environment variable name")
            variables[name] = self.scalar(value, path, "a string")
        exported = []
        raw_exported = env.get("exported-variables")
        if raw_exported is not None and not isinstance(raw_exported, list):
            raise self.error(
                ("env", "exported-variables"),
                f"env.exported-variables must be a list of names, not {self.kind(raw_exported)}",
            )
        for index, name in enumerate(raw_exported or []):
            path = ("env", "exported-variables", index)
            if not isinstance(name, str) or not _NAME_RE.match(name):
                raise self.error(path, f"env.exported-variables: {name!r} is not a valid environment variable name")
            if name.startswith("AWS_"):
                raise self.error(path, f"env.exported-variables: {name} cannot be exported (names starting with AWS_)")
            exported.append(name)
        result["env"] = {"shell": shell, "variables": variables, "exported-variables": exported}

        if data.get("phases") is None:
            raise self.error(("phases",) if "phases" in data else (), "phases is required")
        phases = self.mapping(data["phases"], ("phases",), PHASES)
        result["phases"] = {}
        for phase_name, phase in phases.items():
            path = ("phases", phase_name)
            phase = self.mapping(phase, path, _PHASE_KEYS)
            if "run-as" in phase:
                raise self.error(path + ("run-as",), "run-as is not supported by this runner")
            on_failure = phase.get("on-failure")
            if on_failure is not None:
                on_failure = self.scalar(on_failure, path + ("on-failure",), "ABORT or CONTINUE")
                if on_failure not in ON_FAILURE:
                    raise self.error(
                        path + ("on-failure",),
                        f"{self.name(path)}.on-failure {on_failure!r} is not supported (use ABORT or CONTINUE)",
                    )
            result["phases"][phase_name] = {
                "commands": self.commands(phase.get("commands"), path + ("commands",)),
                "finally": self.commands(phase.get("finally"), path + ("finally",)),
                "on-failure": on_failure,
            }
        return result


def load_buildspec(text: str) -> dict:
    """Parse and validate a version 0.2 buildspec. Raises BuildspecError naming the line of the problem.

    Returns a normalized dict: ``version`` ("0.2"), ``env`` (``shell``, ``variables`` as strings,
    ``exported-variables``), ``phases`` (only the phases present, each with ``commands``, ``finally`` lists of
    strings and ``on-failure`` None/ABORT/CONTINUE), and any other top-level keys unchanged.
    """
    if not HAS_YAML:  # pragma: no cover
        raise BuildspecError("PyYAML is required to read a buildspec")
    if not isinstance(text, str):
        raise BuildspecError(f"the buildspec must be a string, not {type(text).__name__}")
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        data = loader.construct_document(node) if node is not None else None
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        where = f"line {mark.line + 1}: " if mark is not None else ""
        problem = " ".join(part for part in (e.context, e.problem) if part)
        raise BuildspecError(f"{where}invalid YAML: {problem}") from None
    except yaml.YAMLError as e:
        raise BuildspecError(f"invalid YAML: {e}") from None
    finally:
        loader.dispose()
    if node is None:
        raise BuildspecError("line 1: the buildspec is empty")
    return _Validator(_line_map(node)).validate(data)


def validate_buildspec(data: dict) -> dict:
    """Validate an already parsed buildspec (no line numbers: the messages name the key path)."""
    return _Validator(None).validate(data)


# --------------------------------------------------------------------------------------------------------------
# Running

# The shell reads the path of the next command file on stdin, sources it with stdin from /dev/null, and writes
# "<token>:<seq>:<status>" on fd 9 (its original stdout), so the status always follows the output of the command in
# the same pipe. A command that calls `exit` ends the shell: the EXIT trap still reports its status. POSIX sh, so
# that it also runs under /bin/sh (dash).
_DRIVER = r"""
exec 9>&1
__cb_seq=0
trap '__cb_rc=$?; printf "%s:%s:%s:exit\n" "$__CB_TOKEN" "$__cb_seq" "$__cb_rc" >&9' EXIT
while IFS= read -r __cb_file; do
  __cb_seq=$((__cb_seq + 1))
  . "$__cb_file" </dev/null
  __cb_rc=$?
  case $__cb_file in
    *.internal.sh) ;;
    *) CODEBUILD_LAST_EXIT=$__cb_rc; export CODEBUILD_LAST_EXIT ;;
  esac
  printf '%s:%s:%s\n' "$__CB_TOKEN" "$__cb_seq" "$__cb_rc" >&9
done
"""


def _timestamp(when: float | None = None) -> str:
    moment = datetime.datetime.fromtimestamp(time.time() if when is None else when, tz=datetime.timezone.utc)
    return moment.strftime("%Y/%m/%d %H:%M:%S.%f")


class _Stopped(Exception):
    def __init__(self, status: str):
        super().__init__(status)
        self.status = status


class _Shell:
    """One instance of the build's shell: a process group reading command files from its stdin."""

    def __init__(self, argv: list[str], env: dict[str, str], cwd: str, output_fd: int, driver_path: str):
        self.token = secrets.token_hex(16)
        self.seq = 0
        # run_command cannot stream output, feed commands or kill a process group
        self.process = subprocess.Popen(  # pylint: disable=consider-using-with,ansible-bad-function
            argv + [driver_path],
            stdin=subprocess.PIPE,
            stdout=output_fd,
            stderr=output_fd,
            env=dict(env, __CB_TOKEN=self.token),
            cwd=cwd,
            start_new_session=True,
            close_fds=True,
        )

    def send(self, path: str) -> int:
        self.seq += 1
        try:
            self.process.stdin.write(path.encode() + b"\n")
            self.process.stdin.flush()
        except (BrokenPipeError, OSError):
            pass  # the shell is gone; the caller sees it exit
        return self.seq

    def alive(self) -> bool:
        return self.process.poll() is None

    def kill(self) -> None:
        """SIGTERM the process group, SIGKILL whatever is left after a grace period."""
        try:
            os.killpg(self.process.pid, signal.SIGTERM)
        except (ProcessLookupError, PermissionError):
            return
        deadline = time.monotonic() + STOP_GRACE_SECONDS
        while time.monotonic() < deadline and self.process.poll() is None:
            time.sleep(0.05)
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        self.process.wait()

    def close(self) -> None:
        """End of build: close stdin so the shell exits, then end any background processes it left."""
        try:
            self.process.stdin.close()
        except OSError:
            pass
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass
        self.kill()


class BuildspecRunner:
    """Runs one build of a buildspec. ``run()`` blocks; ``stop()`` may be called from another thread.

    ``on_phase`` is called twice per phase: when it starts (``status="IN_PROGRESS"``, ``end=None``) and when it
    ends (final status).
    """

    def __init__(
        self,
        buildspec: dict | str,
        env: dict[str, str],
        *,
        workdir: str | None = None,
        build_id: str | None = None,
        sink: Callable[[str], None] = print,
        timeout: float | None = None,
        extra_codebuild_vars: dict | None = None,
        on_phase: Callable[[PhaseResult], None] | None = None,
    ):
        self.spec = load_buildspec(buildspec) if isinstance(buildspec, str) else validate_buildspec(buildspec)
        self.env = {str(k): str(v) for k, v in (env or {}).items()}
        self.workdir = workdir
        self.build_id = build_id or f"local:{uuid.uuid4()}"
        self.sink = sink
        self.timeout = timeout
        self.extra_codebuild_vars = {str(k): str(v) for k, v in (extra_codebuild_vars or {}).items()}
        self.on_phase = on_phase
        self._stop_requested = threading.Event()
        self._lock = threading.Lock()
        self._sink_lock = threading.Lock()
        self._shell: _Shell | None = None
        self._shells: list[_Shell] = []
        self._tokens: set[str] = set()
        self._deadline: float | None = None
        self._statuses: queue.Queue = queue.Queue()
        self._started = False

    # -- public -------------------------------------------------------------------------------------------

    def stop(self) -> None:
        """Stop the build: kill the process group of the running shell; ``run()`` returns ``STOPPED``."""
        self._stop_requested.set()
        with self._lock:
            shell = self._shell
        if shell is not None:
            threading.Thread(target=shell.kill, daemon=True).start()

    def run(self) -> BuildResult:
        if self._started:
            raise RuntimeError("a BuildspecRunner runs once")
        self._started = True
        result = BuildResult(status="SUCCEEDED")
        if self._stop_requested.is_set():
            result.status = "STOPPED"
            return result
        start = time.time()
        self._deadline = time.monotonic() + self.timeout if self.timeout is not None else None
        own_workdir = self.workdir is None
        workdir = tempfile.mkdtemp(prefix="codebuild-src-") if own_workdir else self.workdir
        os.makedirs(workdir, exist_ok=True)
        control = tempfile.mkdtemp(prefix="codebuild-ctl-")
        read_fd, write_fd = os.pipe()
        reader = threading.Thread(target=self._read_output, args=(read_fd,), daemon=True)
        reader.start()
        try:
            self._prepare(workdir, control, start, write_fd)
            self._run_phases(result)
        finally:
            with self._lock:
                shells, self._shell = list(self._shells), None
            for shell in shells:
                shell.close()
            os.close(write_fd)
            reader.join(timeout=10)
            shutil.rmtree(control, ignore_errors=True)
            if own_workdir:
                shutil.rmtree(workdir, ignore_errors=True)
        return result

    # -- internals ----------------------------------------------------------------------------------------

    def _emit(self, line: str) -> None:
        with self._sink_lock:
            try:
                self.sink(line)  # pylint: disable=ansible-bad-function
            except Exception:  # pylint: disable=broad-except
                pass  # a broken sink must not break the build

    def _log(self, message: str) -> None:
        stamp = _timestamp()
        for line in message.splitlines() or [""]:
            self._emit(f"[Container] {stamp} {line}")

    def _read_output(self, fd: int) -> None:
        marker = re.compile(rb"([0-9a-f]{32}):(\d+):(\d+)(:exit)?$")
        buffer = b""
        with os.fdopen(fd, "rb", buffering=0) as stream:
            while True:
                chunk = stream.read(65536)
                if not chunk:
                    break
                buffer += chunk
                *lines, buffer = buffer.split(b"\n")
                for raw in lines:
                    found = marker.search(raw)
                    if found and found.group(1).decode() in self._tokens:
                        if raw[: found.start()]:
                            self._emit(raw[: found.start()].decode("utf-8", "replace"))
                        token, seq, status = found.group(1).decode(), int(found.group(2)), int(found.group(3))
                        self._statuses.put((token, seq, status, bool(found.group(4))))
                    else:
                        self._emit(raw.decode("utf-8", "replace"))
        if buffer:
            self._emit(buffer.decode("utf-8", "replace"))

    def _prepare(self, workdir: str, control: str, start: float, output_fd: int) -> None:
        self._workdir = workdir
        self._control = control
        self._output_fd = output_fd
        self._counter = 0
        region = self.env.get("AWS_REGION") or self.env.get("AWS_DEFAULT_REGION") or "local"
        build_uuid = self.build_id.split(":", 1)[-1]
        codebuild = {
            "CODEBUILD_BUILD_ID": self.build_id,
            "CODEBUILD_BUILD_ARN": f"arn:aws:codebuild:{region}:000000000000:build/{self.build_id}",
            "CODEBUILD_BUILD_NUMBER": "1",
            "CODEBUILD_BUILD_SUCCEEDING": "1",
            "CODEBUILD_BUILD_IMAGE": "local",
            "CODEBUILD_INITIATOR": _user(),
            "CODEBUILD_LOG_PATH": build_uuid,
            "CODEBUILD_SRC_DIR": workdir,
            "CODEBUILD_START_TIME": str(int(start * 1000)),
        }
        self._env = dict(self.spec["env"]["variables"])
        self._env.update(self.env)
        self._env.update(codebuild)
        self._env.update(self.extra_codebuild_vars)
        self._env["PWD"] = workdir
        driver = os.path.join(control, "driver.sh")
        with open(driver, "w", encoding="utf-8") as f:
            f.write(_DRIVER)
        self._driver = driver
        self._argv = SHELLS[self.spec["env"]["shell"]]
        self._log(f"Running on {_user()}@{os.uname().nodename}, build {self.build_id}")
        self._log(f"CODEBUILD_SRC_DIR={workdir}")
        counts = [f"{PHASE_TYPES[p]}: {len(s['commands'])} commands" for p, s in self.spec["phases"].items()]
        self._log(f"Phases found in YAML: {len(self.spec['phases'])}")
        for line in counts:
            self._log(f" {line}")

    def _new_shell(self) -> _Shell:
        with self._lock:
            if self._stop_requested.is_set():
                raise _Stopped("STOPPED")
            shell = _Shell(self._argv, self._env, self._workdir, self._output_fd, self._driver)
            self._tokens.add(shell.token)
            self._shells.append(shell)
            self._shell = shell
            return shell

    def _check_stop(self) -> None:
        if self._stop_requested.is_set():
            raise _Stopped("STOPPED")
        if self._deadline is not None and time.monotonic() >= self._deadline:
            raise _Stopped("TIMED_OUT")

    def _source(self, script: str, internal: bool = False) -> int:
        """Run one command (or internal snippet) in the build's shell and return its exit status."""
        self._check_stop()
        shell = self._shell
        if shell is None or not shell.alive():
            shell = self._new_shell()
        self._counter += 1
        path = os.path.join(self._control, f"cmd-{self._counter}{'.internal' if internal else ''}.sh")
        with open(path, "w", encoding="utf-8") as f:
            f.write(script if script.endswith("\n") else script + "\n")
        seq = shell.send(path)
        exited_at: float | None = None
        while True:
            try:
                token, got_seq, status, exiting = self._statuses.get(timeout=0.1)
                if token == shell.token and got_seq == seq:
                    if self._stop_requested.is_set():  # the status of a command killed by stop()
                        shell.kill()
                        self._check_stop()
                    if exiting:  # the command ended the shell: the next command gets a fresh one
                        try:
                            shell.process.wait(timeout=STOP_GRACE_SECONDS)
                        except subprocess.TimeoutExpired:
                            shell.kill()
                        with self._lock:
                            self._shell = None
                    return status
                continue
            except queue.Empty:
                pass
            if self._stop_requested.is_set() or (self._deadline is not None and time.monotonic() >= self._deadline):
                shell.kill()
                self._check_stop()
            if not shell.alive():
                # The command ended the shell (exit, or a fatal error): give the reader a moment for a status line
                # written just before, then take the shell's exit status.
                exited_at = exited_at or time.monotonic()
                if time.monotonic() - exited_at > 0.5:
                    self._check_stop()
                    code = shell.process.returncode
                    return 128 - code if code < 0 else code

    def _set_succeeding(self, succeeding: bool) -> None:
        value = "1" if succeeding else "0"
        self._env["CODEBUILD_BUILD_SUCCEEDING"] = value
        self._source(f"CODEBUILD_BUILD_SUCCEEDING={value}; export CODEBUILD_BUILD_SUCCEEDING", internal=True)

    def _run_phases(self, result: BuildResult) -> None:
        succeeding = True
        phase_result: PhaseResult | None = None
        try:
            for phase_name in PHASES:
                spec = self.spec["phases"].get(phase_name, {"commands": [], "finally": [], "on-failure": None})
                phase_result = PhaseResult(name=PHASE_TYPES[phase_name], status="IN_PROGRESS", start=time.time())
                self._log(f"Entering phase {phase_result.name}")
                self._notify(phase_result)
                failed = self._run_commands(spec, phase_result)
                phase_result.status = "FAILED" if failed else "SUCCEEDED"
                phase_result.end = time.time()
                result.phases.append(phase_result)
                self._log(f"Phase complete: {phase_result.name} State: {phase_result.status}")
                self._log(f"Phase context status code: {phase_result.code or ''} Message: {phase_result.message or ''}")
                self._notify(phase_result)
                done = phase_result
                phase_result = None
                if not failed:
                    continue
                succeeding = False
                on_failure = spec["on-failure"]
                if on_failure == "CONTINUE":
                    continue
                if on_failure == "ABORT" or done.name in ("INSTALL", "PRE_BUILD"):
                    break
                # no on-failure and BUILD failed: POST_BUILD still runs (documented phase transitions)
            result.status = "SUCCEEDED" if succeeding else "FAILED"
            result.exported_variables = self._exported()
        except _Stopped as stopped:
            result.status = stopped.status
            if phase_result is not None:
                phase_result.status = stopped.status
                phase_result.end = time.time()
                phase_result.code = f"BUILD_{stopped.status}"
                phase_result.message = (
                    "Build stopped" if stopped.status == "STOPPED" else f"Build timed out after {self.timeout:g} s"
                )
                result.phases.append(phase_result)
                self._log(f"Phase complete: {phase_result.name} State: {phase_result.status}")
                self._notify(phase_result)
            else:
                self._log(f"Build {stopped.status.lower().replace('_', ' ')}")

    def _run_commands(self, spec: dict, phase_result: PhaseResult) -> bool:
        failed = False
        for command in spec["commands"]:
            if not self._run_command(command, phase_result):
                failed = True
                break
        for command in spec["finally"]:
            if not self._run_command(command, phase_result):
                failed = True
                break
        return failed

    def _run_command(self, command: str, phase_result: PhaseResult) -> bool:
        self._log(f"Running command {command}")
        status = self._source(command)
        if status == 0:
            return True
        self._log(f"Command did not exit successfully {command} exit status {status}")
        if self._env["CODEBUILD_BUILD_SUCCEEDING"] != "0":
            self._set_succeeding(False)
        if phase_result.message is None:
            phase_result.code = "COMMAND_EXECUTION_ERROR"
            phase_result.message = f"Error while executing command: {command}. Reason: exit status {status}"
        return False

    def _exported(self) -> dict[str, str]:
        names = self.spec["env"]["exported-variables"]
        if not names:
            return {}
        out = os.path.join(self._control, "exported")
        lines = [f': > "{out}"']
        for name in names:
            lines.append(f'if [ -n "${{{name}+x}}" ]; then printf "%s=%s\\0" {name} "${name}" >> "{out}"; fi')
        if self._source("\n".join(lines), internal=True) != 0:
            return {}
        with open(out, "rb") as f:
            data = f.read().decode("utf-8", "replace")
        values = {}
        for item in data.split("\0"):
            if "=" in item:
                key, value = item.split("=", 1)
                values[key] = value
        return values

    def _notify(self, phase_result: PhaseResult) -> None:
        if self.on_phase is None:
            return
        try:
            self.on_phase(PhaseResult(**phase_result.__dict__))
        except Exception:  # pylint: disable=broad-except
            pass


def _user() -> str:
    try:
        return getpass.getuser()
    except Exception:  # pylint: disable=broad-except
        return "local"
