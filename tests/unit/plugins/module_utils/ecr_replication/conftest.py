# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Fixtures for the module_utils/ecr_replication.py tests: botocore Stubber clients (no HTTP at all)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

_COLLECTIONS = Path(__file__).resolve().parents[5] / ".ansible" / "collections"
if _COLLECTIONS.is_dir() and str(_COLLECTIONS) not in sys.path:
    sys.path.insert(0, str(_COLLECTIONS))


@pytest.fixture
def aws_env(monkeypatch):
    for name in list(os.environ):
        if name.startswith("AWS_"):
            monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "ap-south-1")


@pytest.fixture
def stubbed(aws_env):
    """(client, stubber): a real botocore ECR client whose answers come from a Stubber, which checks every request
    and every canned response against botocore 1.44.5's ECR service model."""
    import boto3
    from botocore.stub import Stubber

    client = boto3.client("ecr", region_name="ap-south-1")
    with Stubber(client) as stubber:
        yield client, stubber
        stubber.assert_no_pending_responses()


@pytest.fixture
def no_sleep(monkeypatch):
    """AWSRetry sleeps between attempts: record the delays instead of waiting."""
    import time

    delays = []
    monkeypatch.setattr(time, "sleep", delays.append)
    return delays
