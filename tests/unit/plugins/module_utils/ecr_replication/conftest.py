# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Fixtures for the module_utils/ecr_replication.py tests: the module_utils/ecr.py tests' own (AWS environment,
botocore Stubber client, no AWSRetry sleeping). The Stubber checks every request and canned response against the
pinned botocore's ECR service model."""

from __future__ import annotations

from tests.unit.plugins.module_utils.ecr.conftest import aws_env  # noqa: F401  # pylint: disable=unused-import
from tests.unit.plugins.module_utils.ecr.conftest import no_sleep  # noqa: F401  # pylint: disable=unused-import
from tests.unit.plugins.module_utils.ecr.conftest import stubbed  # noqa: F401  # pylint: disable=unused-import
