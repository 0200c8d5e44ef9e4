# Copyright: Contributors to the cloudops.ecr_replication project
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Fixtures for the sandbox CodeBuild tests: an in-process CodeBuildService over moto, and a shape checker."""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.sandbox.codebuild import CodeBuildApiError
from tests.sandbox.codebuild import CodeBuildService
from tests.sandbox.codebuild import service_model

ACCOUNT = "123456789012"  # moto's default account: boto3 clients under mock_aws act in it
REGION = "ap-south-1"
CODEBUILD_TRUST = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Principal": {"Service": "codebuild.amazonaws.com"}, "Action": "sts:AssumeRole"}],
}


class FakeContext:
    """The attributes tests/sandbox/server.py's CodeBuildContext gives the service, over moto in-process."""

    def __init__(self, sandbox_dir: Path):
        self.sandbox_dir = sandbox_dir
        self.minute_seconds = 60.0
        self.provisioning_seconds = 0.0
        self.account_quota = 3
        self.queue_limit = 100
        # the AWS CLI of the venv on PATH, as a build image has it
        self.base_env = {"PATH": f"{Path(sys.executable).parent}:{os.environ.get('PATH', '/usr/bin:/bin')}"}
        self.assumed: list[tuple[str, str]] = []

    def assume_role(
        self,
        role_arn: str,
        session_name: str,
        principal_service: str = "codebuild.amazonaws.com",
        source_arn: str | None = None,
    ):
        """The sandbox's trust evaluation, with aws:SourceAccount and aws:SourceArn as CodeBuild sends them."""
        from tests.sandbox.trust import AssumeRoleDenied
        from tests.sandbox.trust import Caller
        from tests.sandbox.trust import evaluate_trust
        from tests.sandbox.trust import find_role

        try:
            role = find_role(role_arn)
        except AssumeRoleDenied as exc:
            raise PermissionError(str(exc)) from exc
        context = {"aws:SourceAccount": role_arn.split(":")[4]}
        if source_arn:
            context["aws:SourceArn"] = source_arn
        if not evaluate_trust(role.assume_role_policy_document, Caller(service=principal_service), context):
            raise PermissionError(f"{principal_service} is not authorized to perform: sts:AssumeRole on {role_arn}")
        self.assumed.append((role_arn, session_name))
        return {"AccessKeyId": "ASIAFAKEFAKEFAKE", "SecretAccessKey": "fake-secret", "SessionToken": "fake-token"}


def _check(shape, value: Any, path: str) -> None:
    """Every key a member of the botocore shape, every value of its type and enum (stricter than the parser)."""
    kind = shape.type_name
    if kind == "structure":
        assert isinstance(value, dict), f"{path}: expected structure, got {value!r}"
        for key, item in value.items():
            assert key in shape.members, f"{path}.{key} is not a member of {shape.name}"
            _check(shape.members[key], item, f"{path}.{key}")
    elif kind == "list":
        assert isinstance(value, list), f"{path}: expected list, got {value!r}"
        for index, item in enumerate(value):
            _check(shape.member, item, f"{path}[{index}]")
    elif kind == "map":
        assert isinstance(value, dict), f"{path}: expected map"
        for key, item in value.items():
            _check(shape.value, item, f"{path}[{key}]")
    elif kind == "string":
        assert isinstance(value, str), f"{path}: expected string, got {value!r}"
        if shape.enum:
            assert value in shape.enum, f"{path}: {value!r} not in {shape.enum}"
    elif kind in ("integer", "long"):
        assert isinstance(value, int) and not isinstance(value, bool), f"{path}: expected {kind}, got {value!r}"
    elif kind == "boolean":
        assert isinstance(value, bool), f"{path}: expected boolean, got {value!r}"
    elif kind == "timestamp":
        assert isinstance(value, (int, float)) and not isinstance(value, bool), f"{path}: expected epoch seconds"
    else:
        raise AssertionError(f"{path}: unexpected shape type {kind}")


def check_response(operation: str, response: dict) -> dict:
    """Validate a response against botocore's output shape, then parse it as botocore would (JSON, as the server)."""
    from botocore.parsers import create_parser

    model = service_model()
    output = model.operation_model(operation).output_shape
    if output is None:
        assert response == {}
        return response
    _check(output, response, operation)
    body = json.dumps(response, default=str).encode()
    parsed = create_parser("json").parse({"status_code": 200, "headers": {}, "body": body}, output)
    assert "Error" not in parsed or not parsed["Error"], parsed
    return parsed


class Service:
    """A CodeBuildService with every response checked against the service model."""

    def __init__(self, service: CodeBuildService, ctx: FakeContext):
        self.service = service
        self.ctx = ctx

    def call(self, operation: str, account: str = ACCOUNT, region: str = REGION, **body) -> dict:
        response = self.service.handle(operation, body, account, region)
        check_response(operation, response)
        return response

    def error(self, operation: str, account: str = ACCOUNT, region: str = REGION, **body) -> CodeBuildApiError:
        with pytest.raises(CodeBuildApiError) as excinfo:
            self.service.handle(operation, body, account, region)
        return excinfo.value

    def wait(self, build_id: str, seconds: float = 30, until=lambda b: b["buildComplete"]) -> dict:
        deadline = time.time() + seconds
        while True:
            build = self.call("BatchGetBuilds", ids=[build_id])["builds"][0]
            if until(build):
                return build
            assert time.time() < deadline, f"build {build_id} still {build['currentPhase']}"
            time.sleep(0.05)


@pytest.fixture
def codebuild(tmp_path):
    """A CodeBuildService over moto in-process (mock_aws), with a service role that trusts CodeBuild."""
    from moto import mock_aws

    with mock_aws():
        import boto3

        boto3.client("iam", region_name=REGION).create_role(
            RoleName="codebuild-role", AssumeRolePolicyDocument=json.dumps(CODEBUILD_TRUST)
        )
        ctx = FakeContext(tmp_path)
        service = CodeBuildService(ctx)
        try:
            yield Service(service, ctx)
        finally:
            service.shutdown()
