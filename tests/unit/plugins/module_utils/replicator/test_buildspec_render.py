"""buildspec.yml is generated from replicator.py and the bundled module_utils: in sync, valid, within limits."""

import base64
import hashlib
import re
import zlib
from pathlib import Path

import yaml

from ansible_collections.cloudops.ecr_replication.plugins.module_utils import buildspec_runner
from ansible_collections.cloudops.ecr_replication.plugins.module_utils import replicator

ROOT = Path(__file__).resolve().parents[5]


def _program(text):
    command = yaml.safe_load(text)["phases"]["build"]["commands"][0]
    blob = "".join(re.findall(r'^"([A-Za-z0-9+/=]+)"$', command, flags=re.M))
    return command, zlib.decompress(base64.b64decode(blob))


def _without_blob(text):
    return re.sub(r'^ +"[A-Za-z0-9+/=]+"\n', "", text, flags=re.M)


def test_checked_in_buildspec_is_current():
    # Compared after decompression: zlib builds may compress the same program to different bytes.
    checked_in = (ROOT / "buildspec.yml").read_text()
    rendered = replicator.render_buildspec()
    message = (
        "buildspec.yml is out of date: PYTHONPATH=.ansible/collections .venv/bin/python -m "
        "ansible_collections.cloudops.ecr_replication.plugins.module_utils.replicator > buildspec.yml"
    )
    assert _program(checked_in)[1] == _program(rendered)[1], message
    assert _without_blob(checked_in) == _without_blob(rendered), message


def test_buildspec_within_codebuild_limit_and_valid():
    text = replicator.render_buildspec()
    assert len(text) <= replicator.MAX_BUILDSPEC_CHARS
    spec = buildspec_runner.load_buildspec(text)
    assert spec["env"]["shell"] == "bash"
    assert "privileged" not in text and "docker " not in text and "amazonaws.com" not in text


def test_embedded_program_is_the_rendered_program():
    command, program = _program(replicator.render_buildspec())
    assert program.decode() == replicator.render_program()
    assert hashlib.sha256(program).hexdigest() in command
    compile(program, "replicator", "exec")


def test_program_is_standard_library_only():
    program = replicator.render_program()
    imported = set(re.findall(r"^(?:import|from) ([\w.]+)", program, flags=re.M))
    allowed = {"__future__", "base64", "binascii", "concurrent.futures", "datetime", "hashlib", "json", "os",
               "random", "re", "shutil", "signal", "subprocess", "sys", "tempfile", "threading", "time", "typing",
               "zlib"}
    assert imported <= allowed, imported - allowed
