# -*- coding: utf-8 -*-

# Copyright: Contributors to the cloudops.ecr_replication project
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Action plugin of ``replication_inputs`` (documented in plugins/modules/replication_inputs.py).

An action plugin rather than a module because its result carries the destinations' external IDs to the next
tasks of the role: a module's return values are masked wherever they equal a no_log option, and a Jinja loop
over the destinations would print them. Here the result is marked no_log (hidden from the output, kept in the
registered variable) only when it holds a secret and nothing failed; errors stay readable and never hold one.
"""

from __future__ import annotations

from ansible_collections.cloudops.ecr_replication.plugins.module_utils import ecr
from ansible_collections.cloudops.ecr_replication.plugins.module_utils import validation
from ansible_collections.cloudops.ecr_replication.plugins.module_utils.action_specs import REPLICATION_INPUTS_SPEC
from ansible_collections.cloudops.ecr_replication.plugins.plugin_utils.aws_action import AWSActionBase


def _known_regions(region: str) -> frozenset:
    """The ECR regions of the region's partition that this botocore knows (its endpoint data, no AWS call)."""
    import botocore.session

    partition = validation.partition_for_region(region)
    return frozenset(botocore.session.get_session().get_available_regions("ecr", partition_name=partition))


class ActionModule(AWSActionBase):
    def _try_read_roles(self, destinations, option: str) -> None:
        """The controller reads each destination through its read role: try it now (read-only), so that a role that
        does not exist, does not trust the controller, or wants another ExternalId is one error naming the option,
        before anything is listed. The message never holds the external ID."""
        for dest in destinations:
            if not dest["read_role_arn"]:
                continue
            try:
                ecr.assumed_role_connection(
                    self.client("sts"), dest["read_role_arn"], "ecr-replication-inputs", dest["external_id"] or None
                )
            except Exception as e:  # noqa: BLE001 - AccessDenied, no such role, wrong ExternalId: all read the same
                code = getattr(e, "response", {}).get("Error", {}).get("Code") or type(e).__name__
                prefix = option.partition("dest_read_role")[0]
                raise validation.OptionError(
                    option,
                    "%s (destination %s) cannot be assumed by this controller's credentials%s: %s: %s; provision.yml "
                    "creates it to trust the account that runs replicate.yml, with the ExternalId given to it"
                    % (
                        dest["read_role_arn"],
                        dest["key"],
                        " with the ExternalId given (%sexternal_id)" % prefix if dest["external_id"] else "",
                        code,
                        getattr(e, "response", {}).get("Error", {}).get("Message") or e,
                    ),
                ) from None

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        args = self.validate(REPLICATION_INPUTS_SPEC)
        prefix = args.pop("option_prefix")
        params = {k: v for k, v in args.items() if k in REPLICATION_INPUTS_SPEC}
        if not params.get("source_region"):
            params["source_region"] = self.region or ""
        try:
            checked = validation.check_replicate_inputs(params, prefix)
            known = _known_regions(checked["source_region"])
            validation.check_known_region(checked["source_region"], prefix + "source_region", known)
            source_account = checked["source_account"]
            if not source_account:
                # the first AWS call of a run, and a read-only one: every option above is already checked
                source_account = self.client("sts").get_caller_identity()["Account"]
            destinations = validation.resolve_destinations(
                params, source_account, checked["source_region"], checked["executor"], prefix
            )
            for n, d in enumerate(destinations):
                where = prefix + ("destinations[%d].region" % n if params.get("destinations") else "dest_region")
                validation.check_known_region(d["region"], where, _known_regions(d["region"]))
            registries = [(source_account, checked["source_region"])] + [
                (d["account"], d["region"]) for d in destinations
            ]
            validation.check_repository_names(checked["repositories"], prefix + "repositories", registries)
            # the first call that can fail on a destination: after every local check
            self._try_read_roles(
                destinations, prefix + ("dest_read_role_arn" if params.get("dest_read_role_arn") else "dest_read_role_name")
            )
        except validation.OptionError as e:
            result.update(failed=True, msg=str(e), option=e.option)
            return result
        except Exception as e:  # noqa: BLE001 - STS: no credentials, endpoint unreachable, access denied
            result.update(
                failed=True,
                msg="cannot find out the source account (sts:GetCallerIdentity): %s" % e,
                option=prefix + "source_account",
            )
            return result
        checked["source_account"] = source_account
        checked["destinations"] = destinations
        checked["destination_keys"] = [d["key"] for d in destinations]
        # ecr_image_info's `destinations`: how the controller reads each destination
        checked["read_specs"] = [
            {
                "name": d["key"],
                "region": d["region"],
                "registry_id": d["account"],
                "role_arn": d["read_role_arn"] or None,
                "external_id": (d["external_id"] or None) if d["read_role_arn"] else None,
            }
            for d in destinations
        ]
        result.update(changed=False, **checked)
        if any(d["external_id"] for d in destinations):
            result["_ansible_no_log"] = True
        return result
