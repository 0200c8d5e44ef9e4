#!/usr/bin/python
# -*- coding: utf-8 -*-

# Copyright: Contributors to the cloudops.ecr_replication project
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

DOCUMENTATION = r"""
---
module: replication_inputs
version_added: 0.2.0
short_description: Check every option of a replication run and resolve its destinations
description:
  - The inputs step of the C(cloudops.ecr_replication.replicate) role. Runs on the controller (an action plugin).
  - Checks every option before the first AWS call and fails with a message that names the variable (with
    O(option_prefix)) and says what was wrong; the only AWS call, C(sts:GetCallerIdentity), is made when
    O(source_account) is empty, after every other check.
  - Resolves the destinations (O(destinations), or the single O(dest_region)) to an account, the role the copy
    assumes, the role the controller assumes to read it and the C(sts:ExternalId). Refuses a destination that is the source
    registry itself, a role ARN of another account than the destination, a repository name that cannot fit in a
    registry reference of any registry involved.
  - The result holds the external IDs (for the next tasks), so it is hidden from the output when one is set.
author:
  - cloudops.ecr_replication contributors (@cloudops)
options:
  source_region:
    description: Source region; empty uses O(region).
    type: raw
  source_account:
    description: Source account ID; empty asks C(sts:GetCallerIdentity).
    type: raw
  dest_region:
    description: Destination region, unless O(destinations) is given.
    type: raw
  dest_account:
    description: Destination account ID; empty is the source account.
    type: raw
  dest_role_arn:
    description: Role the copy assumes in the destination.
    type: raw
  dest_role_name:
    description:
      - Name of that role when O(dest_role_arn) is empty (C(ecr-replication-target)). With O(strategy=local) and a
        destination in the source account no role is assumed.
    type: raw
  dest_read_role_arn:
    description: Role the controller assumes to read the destination.
    type: raw
  dest_read_role_name:
    description: Name of that role when O(dest_read_role_arn) is empty and the destination is another account.
    type: raw
  external_id:
    description: The C(sts:ExternalId) of the destination roles (a secret, never printed).
    type: raw
  external_id_parameter:
    description:
      - The SSM SecureString from which builds read the external ID; default
        C(/cloudops/ecr-replication/<destination account>/external-id), as C(provision.yml) creates it.
    type: raw
  destinations:
    description: Several destinations, each C(region) and optional C(account), C(role_arn), C(read_role_arn), C(external_id).
    type: raw
  repositories:
    description: Repository names or globs (a list, or a comma-separated string).
    type: raw
  exclude_repositories:
    description: Repository names or globs to leave out.
    type: raw
  repository_prefix:
    description: Only repositories whose name starts with this.
    type: raw
  tag_regex:
    description: Only images with a tag matching this regular expression.
    type: raw
  pushed_after:
    description: Only images pushed after this ISO 8601 date or duration back from now (C(30d)).
    type: raw
  most_recent:
    description: Only the N most recent images per repository; 0 for all.
    type: raw
  include_untagged:
    description: Include untagged images.
    type: raw
  strategy:
    description: C(codebuild), C(local), C(backfill) or C(auto).
    type: raw
  copy_strategy:
    description: What copies what no backfill serves with O(strategy=auto), C(codebuild) or C(local).
    type: raw
  project_name:
    description: The CodeBuild project.
    type: raw
  batch_size:
    description: Images per build, 1 to 500.
    type: raw
  max_concurrent_builds:
    description: Builds at a time, 1 to 100.
    type: raw
  parallel_copies:
    description: Copies at a time in a build, 1 to 32.
    type: raw
  force_tags:
    description: Move destination tags that point elsewhere.
    type: raw
  poll_interval:
    description: Seconds between polls, 0.05 to 3600.
    type: raw
  wait_timeout:
    description: Seconds for the whole copy, 60 to 2592000, at least O(poll_interval).
    type: raw
  max_rounds:
    description: Rounds of copies, 1 to 10.
    type: raw
  dry_run:
    description: Plan only.
    type: raw
  allow_partial:
    description: Do not fail the play for failed images.
    type: raw
  kms_key:
    description:
      - Customer managed KMS key of repositories created for a KMS-encrypted source (key id, key ARN, alias name or
        alias ARN); empty for the AWS managed key. A malformed key, C(alias/aws/...), or an ARN of another region
        than O(dest_region) is refused.
    type: raw
  option_prefix:
    description: Put before every option name in error messages (the role's variables are C(replicate_*)).
    type: str
    default: replicate_
extends_documentation_fragment:
  - cloudops.ecr_replication.attributes
  - cloudops.ecr_replication.attributes.info_module
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
"""

EXAMPLES = r"""
- name: Check the options of a run
  cloudops.ecr_replication.replication_inputs:
    dest_region: ap-northeast-2
    dest_account: "222222222222"
    external_id: "{{ replication_external_id }}"
    batch_size: 50
    option_prefix: ""
  register: inputs
"""

RETURN = r"""
source_region:
  description: The source region.
  returned: success
  type: str
source_account:
  description: The source account ID.
  returned: success
  type: str
destinations:
  description: C(key), C(region), C(account), C(role_arn), C(read_role_arn) and C(external_id) of each destination.
  returned: success
  type: list
  elements: dict
destination_keys:
  description: C(<account>/<region>) of each destination.
  returned: success
  type: list
  elements: str
read_specs:
  description: The O(cloudops.ecr_replication.ecr_image_info#module:destinations) entries that read each destination.
  returned: success
  type: list
  elements: dict
repositories:
  description: The repository names, as a list.
  returned: success
  type: list
  elements: str
option:
  description: The option an error is about.
  returned: failure
  type: str
"""

from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule

from ansible_collections.cloudops.ecr_replication.plugins.module_utils.action_specs import REPLICATION_INPUTS_SPEC


def main():
    module = AnsibleAWSModule(argument_spec=REPLICATION_INPUTS_SPEC, supports_check_mode=True)
    module.fail_json(msg="replication_inputs runs on the controller as an action plugin; it cannot run as a module")


if __name__ == "__main__":
    main()
