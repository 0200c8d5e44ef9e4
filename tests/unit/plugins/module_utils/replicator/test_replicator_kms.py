# Copyright: Contributors to the cloudops.ecr_replication project
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The copy program's create_repository (issue 15, item 7): a destination repository for a KMS-encrypted source gets
REPL_KMS_KEY, else the AWS managed key (no kmsKey); an AES256 source stays AES256 whatever REPL_KMS_KEY says."""

from __future__ import annotations

import io

import pytest

from ansible_collections.cloudops.ecr_replication.plugins.module_utils import replicator
from ansible_collections.cloudops.ecr_replication.plugins.module_utils.replication_executor import common_env

KEY = "arn:aws:kms:ap-northeast-2:222222222222:key/0b1c2d3e-0000-4000-8000-000000000000"


class Source:
    def __init__(self, encryption):
        self.encryption = encryption

    def describe_repositories(self, repositoryNames):
        return {"repositories": [{"repositoryName": repositoryNames[0], "imageTagMutability": "MUTABLE",
                                  "imageScanningConfiguration": {"scanOnPush": False},
                                  "encryptionConfiguration": self.encryption}]}


class Dest:
    def __init__(self):
        self.created = []

    def create_repository(self, **args):
        self.created.append(args)
        return {"repository": {"repositoryName": args["repositoryName"]}}


def created(source_encryption, env):
    r = replicator.Replicator(env=dict({"REPL_DEST_REGION": "ap-northeast-2"}, **env), out=io.StringIO())
    dest = Dest()
    r.source_ecr = Source(source_encryption)
    r.dest = lambda: dest
    r.create_repository("team-a/api")
    return dest.created[0]["encryptionConfiguration"]


@pytest.mark.parametrize(
    "source, env, expected",
    [
        ({"encryptionType": "KMS", "kmsKey": "arn:aws:kms:ap-south-1:111111111111:key/x"}, {"REPL_KMS_KEY": KEY},
         {"encryptionType": "KMS", "kmsKey": KEY}),
        ({"encryptionType": "KMS", "kmsKey": "arn:aws:kms:ap-south-1:111111111111:key/x"}, {},
         {"encryptionType": "KMS"}),
        ({"encryptionType": "AES256"}, {"REPL_KMS_KEY": KEY}, {"encryptionType": "AES256"}),
    ],
)
def test_destination_key(source, env, expected):
    assert created(source, env) == expected


def test_the_driver_passes_the_key_to_every_build():
    assert common_env("ap-south-1", "ap-northeast-2", kms_key=KEY)["REPL_KMS_KEY"] == KEY
    assert "REPL_KMS_KEY" not in common_env("ap-south-1", "ap-northeast-2")
    assert "REPL_KMS_KEY" in replicator.ENV_DOC
