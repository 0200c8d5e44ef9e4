"""buildspec.yml is generated from replicator.py and the definitions it uses: in sync, plain text, within limits."""

import re
from pathlib import Path

import yaml

from ansible_collections.cloudops.ecr_replication.plugins.module_utils import buildspec_runner
from ansible_collections.cloudops.ecr_replication.plugins.module_utils import replicator

ROOT = Path(__file__).resolve().parents[5]


def _program(text):
    """The Python program of the build phase: what is between the heredoc markers."""
    command = yaml.safe_load(text)["phases"]["build"]["commands"][0]
    match = re.search(r"<<'(\w+)'\n(.*)^\1$", command, flags=re.S | re.M)
    assert match, "the build phase does not run a heredoc program"
    return match.group(2)


def test_checked_in_buildspec_is_current():
    message = "buildspec.yml is out of date: make buildspec"
    assert (ROOT / "buildspec.yml").read_text() == replicator.render_buildspec(), message


def test_buildspec_within_codebuild_limit_and_valid():
    text = replicator.render_buildspec()
    assert len(text) <= replicator.MAX_BUILDSPEC_CHARS
    spec = buildspec_runner.load_buildspec(text)
    assert spec["env"]["shell"] == "bash"
    assert "privileged" not in text and "docker " not in text and "amazonaws.com" not in text


def test_buildspec_is_plain_text_not_an_encoded_blob():
    # Nothing is decoded and executed: the build runs exactly the program a reviewer reads in the file.
    text = replicator.render_buildspec()
    assert not re.search(r"(?<![.\w])(exec|eval|compile)\(", text)
    assert not re.search(r"[A-Za-z0-9+/=]{200,}", text)
    program = _program(text)
    assert program == replicator.render_program()
    assert "class Replicator" in program and "def copy_image" in program
    compile(program, "replicator", "exec")


def test_program_uses_the_standard_library_and_boto3_only():
    program = replicator.render_program()
    imported = set(re.findall(r"^\s*(?:import|from) ([\w.]+)", program, flags=re.M))
    allowed = {"__future__", "base64", "binascii", "concurrent.futures", "contextlib", "fcntl", "hashlib",
               "http.client", "json", "os", "random", "re", "signal", "ssl", "sys", "threading", "time", "urllib.parse", "zlib", "boto3",
               "botocore.config", "botocore.exceptions"}
    assert imported <= allowed, imported - allowed


def test_boto3_pin_of_the_install_phase_is_the_project_pin():
    pins = (ROOT / "requirements.txt").read_text().splitlines()
    assert replicator.BOTO3_PIN in pins
    assert replicator.BOTO3_PIN in replicator.render_buildspec()


def test_program_carries_the_bundled_definitions_it_uses():
    program = replicator.render_program()
    for names in replicator.BUNDLE.values():
        for name in names:
            assert re.search(r"^(?:def|class) %s\b|^%s = " % (name, name), program, flags=re.M), name
    # only what the program uses: the batch encoder and the result parser stay on the controller
    assert "def encode_batch" not in program and "def parse_line" not in program
