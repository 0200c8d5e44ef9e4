#!/usr/bin/python
# -*- coding: utf-8 -*-

# Copyright: Contributors to the cloudops.ecr_replication project
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

DOCUMENTATION = r"""
---
module: ecr_replication_configuration
version_added: 0.1.0
short_description: Manage one destination of the Amazon ECR registry replication configuration
description:
  - Adds or removes one destination (region and registry id) with repository prefix filters in the private
    registry's replication configuration (C(DescribeRegistry), C(PutReplicationConfiguration)) of the account and
    region of the connection. Every other rule is kept untouched, so several owners can share the one configuration.
  - With O(state=present), prefixes that a rule already replicates to the destination add nothing; the others go into
    the destination's own rule (a rule whose only destination is this one), created when there is none.
  - With O(state=absent) and prefixes, those filters leave the destination's own rules (a rule left without filters
    is removed, never widened to every repository); without prefixes, the destination leaves every rule.
  - ECR's limits (10 rules, 25 unique destinations, 100 filters a rule) are checked before any change; the error
    names the option.
  - Rules replicate images pushed after they exist. Existing images are copied by a backfill
    (M(cloudops.ecr_replication.ecr_replication_backfill)).
  - Cross-account replication also needs a statement in the destination registry policy
    (M(cloudops.ecr_replication.ecr_registry_policy), or the C(target_role) role with
    C(target_role_allow_native_replication)).
author:
  - cloudops.ecr_replication contributors (@cloudops)
options:
  destination_region:
    description: The region images are replicated to.
    type: str
    required: true
  destination_registry_id:
    description: The account id of the destination registry (the source account's own id for cross-region only).
    type: str
    required: true
  repository_prefixes:
    description:
      - Repository name prefixes (ECR C(PREFIX_MATCH) filters, not globs).
      - An empty list means every repository of the registry with O(state=present), and the whole destination
        with O(state=absent).
    type: list
    elements: str
    default: []
  state:
    description: V(present) makes the destination replicate the prefixes, V(absent) stops it.
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
- name: Replicate team-a/ and team-b/ from Mumbai to account 222222222222 in Seoul
  cloudops.ecr_replication.ecr_replication_configuration:
    region: ap-south-1
    destination_region: ap-northeast-2
    destination_registry_id: "222222222222"
    repository_prefixes: [team-a/, team-b/]

- name: Stop replicating team-b/ there
  cloudops.ecr_replication.ecr_replication_configuration:
    region: ap-south-1
    destination_region: ap-northeast-2
    destination_registry_id: "222222222222"
    repository_prefixes: [team-b/]
    state: absent

- name: Remove the destination from every rule
  cloudops.ecr_replication.ecr_replication_configuration:
    region: ap-south-1
    destination_region: ap-northeast-2
    destination_registry_id: "222222222222"
    state: absent
"""

RETURN = r"""
replication_configuration:
  description: The registry's replication configuration after the change (in check mode, what it would be).
  returned: always
  type: dict
  sample:
    rules:
      - destinations:
          - region: ap-northeast-2
            registry_id: "222222222222"
        repository_filters:
          - filter: team-a/
            filter_type: PREFIX_MATCH
registry_id:
  description: The source registry (account id).
  returned: always
  type: str
  sample: "111111111111"
destination_prefixes:
  description: The prefixes replicated to the destination afterwards; null when every repository is.
  returned: always
  type: list
  elements: str
  sample: [team-a/, team-b/]
"""

from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule
from ansible.module_utils.common.dict_transformations import camel_dict_to_snake_dict

from ansible_collections.cloudops.ecr_replication.plugins.module_utils.ecr import AnsibleECRError
from ansible_collections.cloudops.ecr_replication.plugins.module_utils import ecr_replication as er
from ansible_collections.cloudops.ecr_replication.plugins.module_utils.validation import OptionError


def main():
    argument_spec = dict(
        destination_region=dict(type="str", required=True),
        destination_registry_id=dict(type="str", required=True),
        repository_prefixes=dict(type="list", elements="str", default=[]),
        state=dict(type="str", default="present", choices=["present", "absent"]),
    )
    module = AnsibleAWSModule(argument_spec=argument_spec, supports_check_mode=True)
    params = module.params
    try:
        dest = er.destination(params["destination_region"], params["destination_registry_id"])
        prefixes = er.validate_prefixes(params["repository_prefixes"])
    except OptionError as e:
        module.fail_json(msg=str(e), option=e.option)

    client = module.client("ecr")
    try:
        registry_id, current = er.describe_registry(client)
        if params["state"] == "present":
            desired = er.merge_destination(current, dest, prefixes)
        else:
            desired = er.remove_destination(current, dest, prefixes)
        er.validate_configuration(desired, module.region, registry_id)
        if params["state"] == "absent" and prefixes:
            # Rules shared with other destinations are never edited: say so rather than report a silent no-op.
            still = er.coverage(desired, prefixes, dest["region"], dest["registryId"])
            for prefix, answer in sorted(still.items()):
                if answer["covered"]:
                    module.warn("%s is still replicated to the destination: %s" % (prefix, answer["reason"]))
        changed = not er.configurations_equal(current, desired)
        if changed and not module.check_mode:
            er.put_replication_configuration(client, desired)
    except OptionError as e:
        module.fail_json(msg=str(e), option=e.option)
    except AnsibleECRError as e:
        module.fail_json_aws_error(e)

    module.exit_json(
        changed=changed,
        registry_id=registry_id,
        replication_configuration=camel_dict_to_snake_dict(desired),
        destination_prefixes=er.destination_prefixes(desired, dest),
        diff=dict(before=er.normalize_configuration(current), after=er.normalize_configuration(desired)),
    )


if __name__ == "__main__":
    main()
