# Copyright: Contributors to the cloudops.ecr_replication project
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""KMS in the sandbox: moto's KMS, with what the collection and its tests rely on put right.

- ``ScheduleKeyDeletion``, ``CancelKeyDeletion``, ``EnableKey``, ``DisableKey`` accept a key ARN as KMS does (moto
  indexes its keys by id and answered a 500 for an ARN).
- ECR ``CreateRepository`` with ``encryptionConfiguration`` ``KMS`` and a ``kmsKey`` (:func:`check_create_repository`):
  the key (id, ARN, alias name or alias ARN) must exist and be enabled in the account and region the repository is
  created in, else ``KmsException``, as ECR answers; for an assumed role whose policies the sandbox checks
  (policy.py), ECR's calls to KMS on the caller's behalf (``kms:DescribeKey``, ``kms:CreateGrant``, with
  ``kms:ViaService`` = ``ecr.<region>.amazonaws.com`` and ``kms:CallerAccount``) must be allowed by its identity
  policies, else ``KmsException`` naming the KMS action. The key policy is not evaluated (moto's default key policy
  lets the account's IAM policies decide, which is AWS's default too). The request then names the key by its ARN,
  as ECR records it (moto would store the alias as given).
"""

from __future__ import annotations

from typing import Any
from typing import Iterable

from moto.kms.models import KmsBackend
from moto.kms.models import kms_backends

from . import policy

ECR_KMS_ACTIONS = ("kms:DescribeKey", "kms:CreateGrant")


class KmsError(Exception):
    """An ECR answer caused by KMS: ``KmsException`` with KMS's own error in the message."""

    def __init__(self, message: str):
        super().__init__(message)
        self.code = "KmsException"
        self.message = message
        self.status = 400


def patch_kms() -> None:
    """Key ARNs where moto wants key ids (once per process)."""
    if getattr(KmsBackend, "_sandbox_patched", False):
        return
    KmsBackend._sandbox_patched = True
    for name in ("schedule_key_deletion", "cancel_key_deletion", "enable_key", "disable_key"):
        original = getattr(KmsBackend, name)

        def by_id(self, key_id, *args, __original=original, **kwargs):
            return __original(self, self.get_key_id(key_id), *args, **kwargs)

        setattr(KmsBackend, name, by_id)


def resolve_key(account: str, region: str, key_ref: str) -> Any | None:
    """The moto key a key id, key ARN, alias name or alias ARN names in that account and region, or None."""
    if key_ref.startswith("arn:"):
        parts = key_ref.split(":")
        if len(parts) < 6 or parts[3] != region or parts[4] != account:
            return None  # another region or account: not a key this registry can use here
    backend = kms_backends[account][region]
    try:
        key_id = backend.any_id_to_key_id(key_ref)
    except Exception:  # noqa: BLE001 - an unknown alias
        return None
    return backend.keys.get(key_id) if key_id else None


def check_create_repository(
    body: dict[str, Any], account: str, region: str, restricted: tuple[str, Iterable[Any]] | None
) -> dict[str, Any] | None:
    """Raise :class:`KmsError` when ECR would refuse the repository's KMS key; return the body with the key named by
    its ARN (None: nothing to change). ``restricted``: (caller ARN, identity policies) of a checked assumed role."""
    encryption = body.get("encryptionConfiguration") or {}
    key_ref = encryption.get("kmsKey")
    if encryption.get("encryptionType") != "KMS" or not key_ref:
        return None
    key = resolve_key(account, region, str(key_ref))
    if key is None:
        raise KmsError(
            f"KMS key {key_ref} does not exist in account {account}, region {region} "
            "(Service: AWSKMS; Error Code: NotFoundException)"
        )
    if getattr(key, "key_state", "Enabled") != "Enabled":
        raise KmsError(f"KMS key {key.arn} is {key.key_state} (Service: AWSKMS; Error Code: KMSInvalidStateException)")
    if restricted is not None:
        caller, documents = restricted
        documents = list(documents)
        context = {"kms:ViaService": f"ecr.{region}.amazonaws.com", "kms:CallerAccount": account}
        for action in ECR_KMS_ACTIONS:
            effect = policy.evaluate(documents, action, key.arn, context)
            if effect != "Allow":
                denied = policy.Denied(caller, action, key.arn, explicit=effect == "Deny")
                raise KmsError(f"{denied} (Service: AWSKMS; Error Code: AccessDeniedException)")
    return dict(body, encryptionConfiguration=dict(encryption, kmsKey=key.arn))
