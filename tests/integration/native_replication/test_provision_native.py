# Copyright: Contributors to the cloudops.ecr_replication project
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""provision.yml with native_replication: true turns on the native rule (and, across accounts, the destination
registry policy it needs): a new push then appears in the destination without running anything. teardown.yml with
the same option removes that rule and only it."""

from __future__ import annotations

import json

import pytest

from tests.integration.provisioning.conftest import Provisioner

pytestmark = pytest.mark.sandbox


@pytest.mark.slow  # make soak: minutes of provisioning; make test keeps the core case of this file
def test_provision_with_native_replication_then_teardown(native, sandbox, tmp_path):
    dest = native.cross_account_dest
    provisioner = Provisioner(sandbox, tmp_path)
    provisioner.vars["repository_prefixes"] = [native.prefix]
    other_rule = {
        "destinations": [native.same_account_dest],
        "repositoryFilters": [{"filter": "keep-me/", "filterType": "PREFIX_MATCH"}],
    }
    native.ecr.put_replication_configuration(
        replicationConfiguration={
            "rules": native.ecr.describe_registry()["replicationConfiguration"]["rules"] + [other_rule]
        }
    )
    try:
        result = provisioner.run("provision.yml", extra={"native_replication": True})
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
        rules = native.ecr.describe_registry()["replicationConfiguration"]["rules"]
        ours = [r for r in rules if r["destinations"] == [dest]]
        assert ours and ours[0]["repositoryFilters"] == [{"filter": native.prefix, "filterType": "PREFIX_MATCH"}]
        assert other_rule in rules
        policy = json.loads(sandbox.client("ecr", "target", dest["region"]).get_registry_policy()["policyText"])
        assert any(native.prefix in json.dumps(s.get("Resource")) for s in policy["Statement"])

        expected = native.clone("legacy-app", "app")  # a new push, after provisioning
        repository = native.prefix + "app"
        assert native.wait_for(lambda: native.images(dest, repository) == expected) is True

        result = provisioner.run("teardown.yml", extra={"native_replication": True})
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
        rules = native.ecr.describe_registry()["replicationConfiguration"]["rules"]
        assert not [r for r in rules if r["destinations"] == [dest]]
        assert other_rule in rules
    finally:
        if not provisioner.torn_down:
            provisioner.run("teardown.yml", extra={"native_replication": True})
