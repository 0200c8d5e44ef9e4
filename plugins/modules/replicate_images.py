#!/usr/bin/python
# -*- coding: utf-8 -*-

# Copyright: Contributors to the cloudops.ecr_replication project
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

DOCUMENTATION = r"""
---
module: replicate_images
version_added: 0.2.0
short_description: Copy ECR images to their destinations and follow the copy to its end, with progress
description:
  - The execute step of the C(cloudops.ecr_replication.replicate) role, as one task. Runs on the controller (an
    action plugin), because a copy of thousands of images can run for hours; this task prints one progress line per poll
    (builds done/running/queued, images copied/failed/conflicting of the total, bytes copied, elapsed time and an
    estimate of the time left) while it runs.
  - Per destination, the images of O(facts) that still need copying (missing, missing tags, or tag conflicts with
    O(force_tags)) are cut into batches of O(batch_size). With O(strategy=codebuild) each batch is a build of the
    CodeBuild project O(project_name); with O(strategy=local) the same C(buildspec.yml) runs on the controller.
  - At most O(max_concurrent_builds) batches run at a time over all destinations (never more than the project's
    C(concurrentBuildLimit)); a free slot is refilled as soon as a build ends. ECR's C(PutImage) budget of 10 per
    second per destination account and region is divided among the builds that may run at once.
  - A full build queue (C(AccountLimitExceededException)) or a throttled or failed C(StartBuild) leaves the batch
    waiting and is retried with back-off; a failed poll is retried with back-off and never drops a build.
  - When a destination has no batch left and no build running, the source and the destination are listed again
    (the verification). What still needs copying goes into a further round if the previous round reduced it, up to
    O(max_rounds) rounds.
  - At O(wait_timeout), and on SIGINT or SIGTERM (Ctrl-C, an AWX cancel), every build started is stopped
    (C(StopBuild)) and followed to its end; the result says so. After an interruption the play ends, so the
    report is written here (O(report)). A re-run copies only what is missing.
  - In check mode nothing starts; the result holds the plan per destination.
author:
  - cloudops.ecr_replication contributors (@cloudops)
options:
  source:
    description: The source registry.
    type: dict
    required: true
    suboptions:
      region:
        description: Source region.
        type: str
        required: true
      account:
        description: Source account ID.
        type: str
        required: true
  destinations:
    description:
      - The destinations, as RV(cloudops.ecr_replication.replication_inputs#module:destinations) returns them.
    type: list
    elements: dict
    required: true
    suboptions:
      key:
        description: C(<account>/<region>); the name of the destination in O(facts).
        type: str
        required: true
      region:
        description: Destination region.
        type: str
        required: true
      account:
        description: Destination account ID.
        type: str
        required: true
      role_arn:
        description: Role the copy assumes to push. Empty uses the copy's own credentials.
        type: str
        default: ""
      read_role_arn:
        description: Role the controller assumes to compare and verify. Empty uses the task's credentials.
        type: str
        default: ""
      external_id:
        description:
          - The C(sts:ExternalId) of both roles. Never printed, never returned.
        type: str
        default: ""
      external_id_parameter:
        description:
          - Name of the SSM SecureString (source account and region) holding O(destinations[].external_id), from
            which builds read it as a C(PARAMETER_STORE) variable; C(provision.yml) creates it. Required with an
            external ID and O(strategy=codebuild) (or O(copy_strategy=codebuild)), never a C(PLAINTEXT) override.
        type: str
        default: ""
  facts:
    description:
      - RV(cloudops.ecr_replication.ecr_image_info#module:destinations) of M(cloudops.ecr_replication.ecr_image_info)
        called with one entry per destination, named by its O(destinations[].key).
    type: list
    elements: dict
    required: true
  facts_error:
    description:
      - Why O(facts) could not be made. Every destination is then reported with this error and nothing starts.
    type: str
    default: ""
  strategy:
    description:
      - V(codebuild) copies in builds of O(project_name); V(local) runs the same C(buildspec.yml) on the controller.
      - V(backfill) lets ECR copy (a replication backfill per destination); every repository of O(facts) with work
        must be covered by a replication rule for the destination, and O(filters) must not narrow the images,
        otherwise that destination fails before anything starts, with the repositories and why.
      - V(auto) uses a backfill for the repositories a rule covers whole, when it would copy nothing outside the
        selection, and O(copy_strategy) for the rest; RV(plans) and RV(report_destinations) say which and why.
    type: str
    choices: [codebuild, local, backfill, auto]
    default: codebuild
  copy_strategy:
    description: What copies the images no backfill serves with O(strategy=auto).
    type: str
    choices: [codebuild, local]
    default: codebuild
  project_name:
    description: The CodeBuild project whose builds copy the images (O(strategy=codebuild)).
    type: str
    default: ecr-replication
  filters:
    description:
      - The image filters of O(facts) (C(tag_regex), C(pushed_after), C(most_recent), C(include_untagged)), applied
        again when the source is listed for the verification.
    type: dict
    default: {}
  batch_size:
    description: Images per build, 1 to 500.
    type: int
    default: 50
  max_concurrent_builds:
    description: Builds at a time over all destinations, 1 to 100.
    type: int
    default: 5
  parallel_copies:
    description: Copies at a time inside one build, 1 to 32.
    type: int
    default: 4
  force_tags:
    description: Move destination tags that point to another digest (mutable repositories only).
    type: bool
    default: false
  copy_lifecycle_policy:
    description: Give repositories the copy creates the source repository's lifecycle policy.
    type: bool
    default: false
  copy_repository_policy:
    description: Give repositories the copy creates the source repository's policy.
    type: bool
    default: false
  kms_key:
    description:
      - The customer managed KMS key (key id, key ARN, alias name or alias ARN, of the destination region) of the
        repositories the copy creates for a KMS-encrypted source repository (C(REPL_KMS_KEY) of the copy program).
      - Empty, a KMS-encrypted source gets a destination repository encrypted with the AWS managed key
        (C(aws/ecr)); a source encrypted with C(AES256) always gets C(AES256).
      - The destination role needs C(kms:CreateGrant) and C(kms:DescribeKey) on the key (C(target_role_kms_key_arns),
        C(provision.yml -e kms_key=<key ARN>)); without them each image of such a repository fails with ECR's
        C(KmsException).
    type: str
    default: ""
  poll_interval:
    description: Seconds between two polls, 0.05 to 3600.
    type: float
    default: 15.0
  wait_timeout:
    description: Seconds the whole copy may take, 60 to 2592000; builds still running then are stopped.
    type: float
    default: 3600.0
  max_rounds:
    description: Rounds of copies per destination, 1 to 10.
    type: int
    default: 3
  share_blobs:
    description:
      - When a destination's copy takes several batches, read the manifests to copy once more (one
        C(BatchGetImage) per 100 images) and let a first batch upload the blobs (base layers) several batches
        share; it runs alone, and the batches after it mount those blobs from the repositories it put them in
        instead of uploading them again.
      - Mounting across repositories needs ECR's blob mounting in the destination registry
        (C(aws ecr put-account-setting --name BLOB_MOUNTING --value ENABLED)); without it a mount is an ordinary
        upload, and only the first batch's head start is lost.
    type: bool
    default: true
  price_per_minute:
    description: USD per build minute for the plan's cost estimate; default the list price of the project's compute type.
    type: float
  report:
    description:
      - Where to write the report if the run is interrupted (keys C(report_dir), C(name), C(started_at)); as
        M(cloudops.ecr_replication.replication_report) writes it.
    type: dict
    default: {}
extends_documentation_fragment:
  - cloudops.ecr_replication.attributes
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
attributes:
  check_mode:
    support: full
    details:
      - Returns the plan (images, builds, estimated minutes and cost per destination) and starts nothing.
  diff_mode:
    support: none
notes:
  - "Permissions: C(codebuild:BatchGetProjects), C(codebuild:StartBuild), C(codebuild:BatchGetBuilds),
    C(codebuild:StopBuild), C(logs:GetLogEvents) on the project's log group; C(ecr:DescribeRepositories),
    C(ecr:DescribeImages), C(ecr:BatchGetImage) on the source; C(sts:AssumeRole) on the read roles. With
    O(strategy=local) the task's credentials also do what the build's service role does."
"""

EXAMPLES = r"""
- name: Compare the source with the destination
  cloudops.ecr_replication.ecr_image_info:
    region: ap-south-1
    destinations:
      - name: 222222222222/ap-northeast-2
        region: ap-northeast-2
        registry_id: "222222222222"
        role_arn: arn:aws:iam::222222222222:role/ecr-replication-reader
        external_id: "{{ replication_external_id }}"
  register: facts

- name: Copy what is missing, five builds at a time, with a progress line every 30 seconds
  cloudops.ecr_replication.replicate_images:
    region: ap-south-1
    source: {region: ap-south-1, account: "111111111111"}
    destinations:
      - key: 222222222222/ap-northeast-2
        region: ap-northeast-2
        account: "222222222222"
        role_arn: arn:aws:iam::222222222222:role/ecr-replication-target
        read_role_arn: arn:aws:iam::222222222222:role/ecr-replication-reader
        external_id: "{{ replication_external_id }}"
    facts: "{{ facts.destinations }}"
    poll_interval: 30
    wait_timeout: 21600
  register: copy
"""

RETURN = r"""
plans:
  description: Per destination key, the plan (images, tags, bytes, builds, estimated minutes and cost).
  returned: always
  type: dict
errors:
  description: Per destination key, why it cannot be copied (check mode).
  returned: in check mode
  type: dict
report_destinations:
  description:
    - One entry per destination, as O(cloudops.ecr_replication.replication_report#module:destinations) takes it
      (C(region), C(account), C(role_arn), C(planned), C(results), C(verified), C(builds), C(error)).
  returned: always
  type: list
  elements: dict
builds:
  description: Number of builds (or local runs) started.
  returned: unless check mode
  type: int
stopped:
  description: Whether builds were stopped (timeout or interruption).
  returned: unless check mode
  type: bool
stop_reason:
  description: Why, for example C(wait_timeout (3600 s) reached) or C(interrupted (SIGINT)).
  returned: unless check mode
  type: str
polls:
  description: Number of polls.
  returned: unless check mode
  type: int
counts:
  description: The figures of the last progress line.
  returned: unless check mode
  type: dict
  sample: {builds_done: 3, builds_running: 0, builds_queued: 0, images: 120, copied: 120, failed: 0,
           conflicting: 0, bytes: 52428800}
elapsed_seconds:
  description: Duration of the copy.
  returned: unless check mode
  type: float
"""

from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule

from ansible_collections.cloudops.ecr_replication.plugins.module_utils.action_specs import REPLICATE_IMAGES_SPEC


def main():
    module = AnsibleAWSModule(argument_spec=REPLICATE_IMAGES_SPEC, supports_check_mode=True)
    module.fail_json(msg="replicate_images runs on the controller as an action plugin; it cannot run as a module")


if __name__ == "__main__":
    main()
