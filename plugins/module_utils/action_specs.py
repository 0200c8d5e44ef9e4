# -*- coding: utf-8 -*-

# Copyright: Contributors to the cloudops.ecr_replication project
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Argument specs of the controller-side plugins ``replication_inputs`` and ``replicate_images``: one definition
read by the action plugins (which run) and by their documentation modules (which ``ansible-test`` and
``ansible-doc`` read)."""

from __future__ import annotations

STRATEGIES = ("codebuild", "local", "backfill", "auto")
COPY_STRATEGIES = ("codebuild", "local")

_RAW = (
    "source_region",
    "source_account",
    "dest_region",
    "dest_account",
    "dest_role_arn",
    "dest_role_name",
    "dest_read_role_arn",
    "dest_read_role_name",
    "destinations",
    "repositories",
    "exclude_repositories",
    "repository_prefix",
    "tag_regex",
    "pushed_after",
    "most_recent",
    "include_untagged",
    "strategy",
    "project_name",
    "copy_strategy",
    "batch_size",
    "max_concurrent_builds",
    "parallel_copies",
    "force_tags",
    "poll_interval",
    "wait_timeout",
    "max_rounds",
    "dry_run",
    "allow_partial",
    "kms_key",
)

REPLICATION_INPUTS_SPEC = {name: dict(type="raw") for name in _RAW}
REPLICATION_INPUTS_SPEC["external_id"] = dict(type="raw", no_log=True)
REPLICATION_INPUTS_SPEC["external_id_parameter"] = dict(type="raw")
REPLICATION_INPUTS_SPEC["kms_key"] = dict(type="raw", no_log=False)  # a key's name, not a secret
REPLICATION_INPUTS_SPEC["option_prefix"] = dict(type="str", default="replicate_")

REPLICATE_IMAGES_SPEC = dict(
    source=dict(
        type="dict",
        required=True,
        options=dict(region=dict(type="str", required=True), account=dict(type="str", required=True)),
    ),
    destinations=dict(
        type="list",
        elements="dict",
        required=True,
        options=dict(
            key=dict(type="str", required=True, no_log=False),
            region=dict(type="str", required=True),
            account=dict(type="str", required=True),
            role_arn=dict(type="str", default=""),
            read_role_arn=dict(type="str", default=""),
            external_id=dict(type="str", default="", no_log=True),
            external_id_parameter=dict(type="str", default=""),
        ),
    ),
    facts=dict(type="list", elements="dict", required=True),
    facts_error=dict(type="str", default=""),
    strategy=dict(type="str", choices=list(STRATEGIES), default="codebuild"),
    copy_strategy=dict(type="str", choices=list(COPY_STRATEGIES), default="codebuild"),
    project_name=dict(type="str", default="ecr-replication"),
    filters=dict(type="dict", default={}),
    batch_size=dict(type="int", default=50),
    max_concurrent_builds=dict(type="int", default=5),
    parallel_copies=dict(type="int", default=4),
    force_tags=dict(type="bool", default=False),
    copy_lifecycle_policy=dict(type="bool", default=False),
    copy_repository_policy=dict(type="bool", default=False),
    kms_key=dict(type="str", default="", no_log=False),
    poll_interval=dict(type="float", default=15.0),
    wait_timeout=dict(type="float", default=3600.0),
    max_rounds=dict(type="int", default=3),
    share_blobs=dict(type="bool", default=True),
    price_per_minute=dict(type="float"),
    report=dict(type="dict", default={}),
)
