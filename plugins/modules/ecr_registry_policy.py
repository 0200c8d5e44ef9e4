#!/usr/bin/python
# -*- coding: utf-8 -*-

# Copyright: Contributors to the cloudops.ecr_replication project
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

DOCUMENTATION = r"""
---
module: ecr_registry_policy
version_added: 0.1.0
short_description: Manage statements of an Amazon ECR registry policy, by Sid
description:
  - Puts statements into the private registry policy of the account and region (C(PutRegistryPolicy)),
    or removes them, identified by their C(Sid). Statements with other Sids are kept untouched, so
    several owners can share the one registry policy.
  - When the last statement is removed the registry policy is deleted.
  - Neither amazon.aws nor community.aws has a module for the registry policy. The target_role role uses
    this module to let a source account replicate into the destination registry.
author:
  - cloudops.ecr_replication contributors (@cloudops)
options:
  statements:
    description:
      - The statements to put (O(state=present)) or remove (O(state=absent)).
      - Every statement needs an alphanumeric C(Sid). With O(state=absent) only the C(Sid) is used.
    type: list
    elements: dict
    required: true
  state:
    description:
      - V(present) puts the statements (replacing statements with the same Sid), V(absent) removes them.
    type: str
    choices: [present, absent]
    default: present
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
extends_documentation_fragment:
  - cloudops.ecr_replication.attributes
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
"""

EXAMPLES = r"""
- name: Let account 111111111111 replicate into this registry
  cloudops.ecr_replication.ecr_registry_policy:
    region: ap-northeast-2
    statements:
      - Sid: EcrReplicationFrom111111111111
        Effect: Allow
        Principal:
          AWS: arn:aws:iam::111111111111:root
        Action: [ecr:CreateRepository, ecr:ReplicateImage]
        Resource: arn:aws:ecr:ap-northeast-2:222222222222:repository/team-a/*

- name: Remove that statement again
  cloudops.ecr_replication.ecr_registry_policy:
    region: ap-northeast-2
    state: absent
    statements:
      - Sid: EcrReplicationFrom111111111111
"""

RETURN = r"""
policy:
  description: The registry policy after the change (in check mode, what it would be); null when there is none.
  returned: always
  type: dict
  sample:
    Version: "2012-10-17"
    Statement:
      - Sid: EcrReplicationFrom111111111111
        Effect: Allow
        Principal:
          AWS: arn:aws:iam::111111111111:root
        Action: [ecr:CreateRepository, ecr:ReplicateImage]
        Resource: arn:aws:ecr:ap-northeast-2:222222222222:repository/team-a/*
registry_id:
  description: The registry (account id) the policy belongs to.
  returned: when the registry answered
  type: str
  sample: "222222222222"
"""

import json

from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule
from ansible_collections.amazon.aws.plugins.module_utils.retries import AWSRetry

from ansible_collections.cloudops.ecr_replication.plugins.module_utils.ecr import AnsibleECRError
from ansible_collections.cloudops.ecr_replication.plugins.module_utils.ecr import ECRErrorHandler
from ansible_collections.cloudops.ecr_replication.plugins.module_utils.validation import OptionError
from ansible_collections.cloudops.ecr_replication.plugins.module_utils.iam_policies import merge_policy_statements
from ansible_collections.cloudops.ecr_replication.plugins.module_utils.iam_policies import normalize_policy
from ansible_collections.cloudops.ecr_replication.plugins.module_utils.iam_policies import policies_equal
from ansible_collections.cloudops.ecr_replication.plugins.module_utils.iam_policies import remove_policy_statements


@ECRErrorHandler.list_error_handler("get the registry policy", (None, None))
@AWSRetry.jittered_backoff()
def get_registry_policy(client):
    response = client.get_registry_policy()
    return response.get("registryId"), json.loads(response["policyText"])


@ECRErrorHandler.common_error_handler("put the registry policy")
@AWSRetry.jittered_backoff()
def put_registry_policy(client, policy):
    return client.put_registry_policy(policyText=json.dumps(policy)).get("registryId")


@ECRErrorHandler.deletion_error_handler("delete the registry policy")
@AWSRetry.jittered_backoff()
def delete_registry_policy(client):
    client.delete_registry_policy()
    return True


def main():
    argument_spec = dict(
        statements=dict(type="list", elements="dict", required=True),
        state=dict(type="str", default="present", choices=["present", "absent"]),
    )
    module = AnsibleAWSModule(argument_spec=argument_spec, supports_check_mode=True)
    statements = module.params["statements"]
    if not statements:
        module.fail_json(msg="statements: must name at least one statement")

    client = module.client("ecr")
    try:
        registry_id, current = get_registry_policy(client)
        if module.params["state"] == "present":
            desired = merge_policy_statements(current, statements)
        else:
            sids = [s.get("Sid") for s in statements]
            if not all(sids):
                module.fail_json(msg="statements: every statement needs a Sid")
            desired = remove_policy_statements(current, sids) if current else None

        changed = not policies_equal(current, desired)
        if changed and not module.check_mode:
            if desired is None:
                delete_registry_policy(client)
            else:
                registry_id = put_registry_policy(client, desired)
    except OptionError as e:
        module.fail_json(msg=str(e))
    except AnsibleECRError as e:
        module.fail_json_aws_error(e)

    result = dict(
        changed=changed,
        policy=desired,
        diff=dict(before=normalize_policy(current) or {}, after=normalize_policy(desired) or {}),
    )
    if registry_id:
        result["registry_id"] = registry_id
    module.exit_json(**result)


if __name__ == "__main__":
    main()
