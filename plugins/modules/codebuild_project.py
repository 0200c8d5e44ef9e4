#!/usr/bin/python
# -*- coding: utf-8 -*-

# Copyright: Contributors to the cloudops.ecr_replication project
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

DOCUMENTATION = r"""
---
module: codebuild_project
version_added: 0.1.0
short_description: Manage a source-less AWS CodeBuild project with an inline buildspec
description:
  - Creates, updates or deletes an AWS CodeBuild project whose source is C(NO_SOURCE) with an
    inline buildspec and whose artifacts are C(NO_ARTIFACTS), as the replication build needs.
  - "This is a focused module, not a general one. C(community.aws.codebuild_project) is not used
    because it has no check mode, cannot set C(concurrentBuildLimit) or C(queuedTimeoutInMinutes),
    does not validate its documented suboptions, reports a change whenever it calls UpdateProject
    and returns a raw C(ORIGINAL) key."
  - Only the fields listed below are managed; a second run with the same options reports no change.
  - The logic lives in C(plugins/module_utils/codebuild.py).
author:
  - cloudops.ecr_replication contributors (@cloudops)
options:
  name:
    description:
      - Name of the project.
    type: str
    required: true
  state:
    description:
      - V(present) creates or updates the project, V(absent) deletes it.
    type: str
    choices: [present, absent]
    default: present
  description:
    description:
      - Description of the project.
    type: str
    default: ""
  buildspec:
    description:
      - The buildspec, inline (the text of a C(buildspec.yml)).
      - Required with O(state=present).
    type: str
  service_role:
    description:
      - ARN of the IAM role CodeBuild assumes to run the builds.
      - Required with O(state=present).
    type: str
  environment:
    description:
      - The build environment.
    type: dict
    default: {}
    suboptions:
      type:
        description: Environment type.
        type: str
        default: LINUX_CONTAINER
        choices:
          - LINUX_CONTAINER
          - LINUX_GPU_CONTAINER
          - ARM_CONTAINER
          - WINDOWS_SERVER_2019_CONTAINER
          - WINDOWS_SERVER_2022_CONTAINER
          - LINUX_LAMBDA_CONTAINER
          - ARM_LAMBDA_CONTAINER
      image:
        description: Build image.
        type: str
        default: aws/codebuild/standard:7.0
      compute_type:
        description: Compute size.
        type: str
        default: BUILD_GENERAL1_SMALL
        choices:
          - BUILD_GENERAL1_SMALL
          - BUILD_GENERAL1_MEDIUM
          - BUILD_GENERAL1_LARGE
          - BUILD_GENERAL1_XLARGE
          - BUILD_GENERAL1_2XLARGE
          - BUILD_LAMBDA_1GB
          - BUILD_LAMBDA_2GB
          - BUILD_LAMBDA_4GB
          - BUILD_LAMBDA_8GB
          - BUILD_LAMBDA_10GB
      privileged_mode:
        description:
          - Run the build container privileged (Docker daemon inside the build). The replication
            buildspec does not need it.
        type: bool
        default: false
      image_pull_credentials_type:
        description: Credentials CodeBuild uses to pull the build image.
        type: str
        default: CODEBUILD
        choices: [CODEBUILD, SERVICE_ROLE]
      variables:
        description:
          - Environment variables of every build. Values are at most 4096 characters.
        type: list
        elements: dict
        default: []
        suboptions:
          name:
            description: Variable name.
            type: str
            required: true
          value:
            description: Value (or parameter/secret name for the other types).
            type: str
            required: true
          type:
            description: How CodeBuild resolves the value.
            type: str
            default: PLAINTEXT
            choices: [PLAINTEXT, PARAMETER_STORE, SECRETS_MANAGER]
  timeout_in_minutes:
    description:
      - Build timeout, 5 to 2160 minutes.
    type: int
    default: 60
  queued_timeout_in_minutes:
    description:
      - How long a build may wait in the queue, 5 to 480 minutes.
    type: int
    default: 480
  concurrent_build_limit:
    description:
      - Maximum number of builds of this project running at once (keep it under the account quota).
      - When not set, the current limit of an existing project is kept.
    type: int
  logs_config:
    description:
      - Where build logs go.
    type: dict
    default: {}
    suboptions:
      cloud_watch_logs:
        description: CloudWatch Logs settings.
        type: dict
        default: {}
        suboptions:
          status:
            description: Whether CloudWatch Logs are written.
            type: str
            default: ENABLED
            choices: [ENABLED, DISABLED]
          group_name:
            description: Log group (it must exist; CodeBuild's default is C(/aws/codebuild/<name>)).
            type: str
          stream_name:
            description: Log stream name prefix.
            type: str
      s3_logs:
        description: S3 log settings.
        type: dict
        default: {}
        suboptions:
          status:
            description: Whether logs are written to S3.
            type: str
            default: DISABLED
            choices: [ENABLED, DISABLED]
          location:
            description: C(bucket/prefix), required with O(logs_config.s3_logs.status=ENABLED).
            type: str
          encryption_disabled:
            description: Whether S3 log encryption is disabled.
            type: bool
            default: false
  tags:
    description:
      - Tags of the project.
    type: dict
    aliases: [resource_tags]
  purge_tags:
    description:
      - Remove tags not listed in O(tags). Ignored when O(tags) is not set.
    type: bool
    default: true
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
notes:
  - The project is compared field by field with the options, so a run that changes nothing reports
    C(changed=false) and makes no UpdateProject call.
extends_documentation_fragment:
  - cloudops.ecr_replication.attributes
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
"""

EXAMPLES = r"""
- name: The replication project
  cloudops.ecr_replication.codebuild_project:
    name: ecr-replication
    buildspec: "{{ lookup('ansible.builtin.file', 'buildspec.yml') }}"
    service_role: arn:aws:iam::111111111111:role/ecr-replication-codebuild
    environment:
      image: aws/codebuild/standard:7.0
      compute_type: BUILD_GENERAL1_SMALL
    timeout_in_minutes: 60
    concurrent_build_limit: 10
    logs_config:
      cloud_watch_logs:
        group_name: /aws/codebuild/ecr-replication
    tags:
      managed-by: cloudops.ecr_replication

- name: Remove it
  cloudops.ecr_replication.codebuild_project:
    name: ecr-replication
    state: absent
"""

RETURN = r"""
project:
  description: The project after the change (before it, in check mode), snake_case; empty when absent.
  returned: always
  type: dict
  contains:
    name:
      description: Project name.
      type: str
      returned: when present
    arn:
      description: Project ARN.
      type: str
      returned: when present
    service_role:
      description: ARN of the service role.
      type: str
      returned: when present
    concurrent_build_limit:
      description: Maximum concurrent builds, if set.
      type: int
      returned: when set
    tags:
      description: Tags as a dict.
      type: dict
      returned: when present
  sample:
    name: ecr-replication
    arn: arn:aws:codebuild:ap-south-1:111111111111:project/ecr-replication
    concurrent_build_limit: 10
    tags:
      managed-by: cloudops.ecr_replication
changed_fields:
  description: Top-level fields that were (or in check mode would be) changed.
  returned: always
  type: list
  elements: str
  sample: [concurrentBuildLimit, tags]
"""

from ansible.module_utils.common.dict_transformations import camel_dict_to_snake_dict

from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule

from ansible_collections.cloudops.ecr_replication.plugins.module_utils.codebuild import COMPUTE_TYPES
from ansible_collections.cloudops.ecr_replication.plugins.module_utils.codebuild import ENVIRONMENT_TYPES
from ansible_collections.cloudops.ecr_replication.plugins.module_utils.codebuild import ENVIRONMENT_VARIABLE_TYPES
from ansible_collections.cloudops.ecr_replication.plugins.module_utils.codebuild import IMAGE_PULL_CREDENTIALS_TYPES
from ansible_collections.cloudops.ecr_replication.plugins.module_utils.codebuild import LOG_STATUSES
from ansible_collections.cloudops.ecr_replication.plugins.module_utils.codebuild import AnsibleCodeBuildError
from ansible_collections.cloudops.ecr_replication.plugins.module_utils.validation import OptionError
from ansible_collections.cloudops.ecr_replication.plugins.module_utils.codebuild import build_project_request
from ansible_collections.cloudops.ecr_replication.plugins.module_utils.codebuild import create_project
from ansible_collections.cloudops.ecr_replication.plugins.module_utils.codebuild import delete_project
from ansible_collections.cloudops.ecr_replication.plugins.module_utils.codebuild import desired_view
from ansible_collections.cloudops.ecr_replication.plugins.module_utils.codebuild import get_project
from ansible_collections.cloudops.ecr_replication.plugins.module_utils.codebuild import managed_view
from ansible_collections.cloudops.ecr_replication.plugins.module_utils.codebuild import merge_tags
from ansible_collections.cloudops.ecr_replication.plugins.module_utils.codebuild import project_changes
from ansible_collections.cloudops.ecr_replication.plugins.module_utils.codebuild import tags_dict
from ansible_collections.cloudops.ecr_replication.plugins.module_utils.codebuild import tags_list
from ansible_collections.cloudops.ecr_replication.plugins.module_utils.codebuild import update_project


def format_project(project):
    if not project:
        return {}
    result = camel_dict_to_snake_dict(project, ignore_list=["tags"])
    result["tags"] = tags_dict(project.get("tags"))
    return result


def diff_view(project):
    view = managed_view(project)
    if view is None:
        return {}
    view["tags"] = tags_dict(project.get("tags"))
    return view


def ensure_present(module, client):
    params = module.params
    current = get_project(client, params["name"])
    request = build_project_request(params)

    current_tags = tags_dict(current.get("tags")) if current else {}
    desired_tags = merge_tags(current_tags, params["tags"], params["purge_tags"])

    if current is None:
        changed_fields = sorted(request)
        if desired_tags:
            changed_fields.append("tags")
    else:
        changed_fields = project_changes(current, request)
        if desired_tags != current_tags:
            changed_fields.append("tags")

    after = desired_view(request, current)
    after["tags"] = desired_tags
    diff = {"before": diff_view(current), "after": after}

    if not changed_fields:
        return False, current, changed_fields, diff
    if module.check_mode:
        return True, current, changed_fields, diff

    request["tags"] = tags_list(desired_tags)
    if current is None:
        project = create_project(client, request)
    else:
        project = update_project(client, request)
    return True, project, changed_fields, diff


def ensure_absent(module, client):
    current = get_project(client, module.params["name"])
    if current is None:
        return False, {}, [], {"before": {}, "after": {}}
    diff = {"before": diff_view(current), "after": {}}
    if module.check_mode:
        # As for state=present, the project before the change: what roles/source_codebuild reads its tags from.
        return True, current, ["name"], diff
    delete_project(client, module.params["name"])
    return True, {}, ["name"], diff


def main():
    variable_spec = dict(
        name=dict(type="str", required=True),
        value=dict(type="str", required=True, no_log=False),
        type=dict(type="str", default="PLAINTEXT", choices=list(ENVIRONMENT_VARIABLE_TYPES)),
    )
    environment_spec = dict(
        type=dict(type="str", default="LINUX_CONTAINER", choices=list(ENVIRONMENT_TYPES)),
        image=dict(type="str", default="aws/codebuild/standard:7.0"),
        compute_type=dict(type="str", default="BUILD_GENERAL1_SMALL", choices=list(COMPUTE_TYPES)),
        privileged_mode=dict(type="bool", default=False),
        image_pull_credentials_type=dict(type="str", default="CODEBUILD", choices=list(IMAGE_PULL_CREDENTIALS_TYPES)),
        variables=dict(type="list", elements="dict", default=[], options=variable_spec),
    )
    logs_spec = dict(
        cloud_watch_logs=dict(
            type="dict",
            default={},
            options=dict(
                status=dict(type="str", default="ENABLED", choices=list(LOG_STATUSES)),
                group_name=dict(type="str"),
                stream_name=dict(type="str"),
            ),
        ),
        s3_logs=dict(
            type="dict",
            default={},
            options=dict(
                status=dict(type="str", default="DISABLED", choices=list(LOG_STATUSES)),
                location=dict(type="str"),
                encryption_disabled=dict(type="bool", default=False),
            ),
        ),
    )
    argument_spec = dict(
        name=dict(type="str", required=True),
        state=dict(type="str", default="present", choices=["present", "absent"]),
        description=dict(type="str", default=""),
        buildspec=dict(type="str"),
        service_role=dict(type="str"),
        environment=dict(type="dict", default={}, options=environment_spec),
        timeout_in_minutes=dict(type="int", default=60),
        queued_timeout_in_minutes=dict(type="int", default=480),
        concurrent_build_limit=dict(type="int"),
        logs_config=dict(type="dict", default={}, options=logs_spec),
        tags=dict(type="dict", aliases=["resource_tags"]),
        purge_tags=dict(type="bool", default=True),
    )
    module = AnsibleAWSModule(
        argument_spec=argument_spec,
        required_if=[("state", "present", ["buildspec", "service_role"])],
        supports_check_mode=True,
    )

    # The helpers in module_utils/codebuild.py carry their own retry decorators.
    client = module.client("codebuild")
    try:
        if module.params["state"] == "present":
            changed, project, changed_fields, diff = ensure_present(module, client)
        else:
            changed, project, changed_fields, diff = ensure_absent(module, client)
    except OptionError as e:
        module.fail_json(msg=str(e))
    except AnsibleCodeBuildError as e:
        module.fail_json_aws_error(e)

    module.exit_json(changed=changed, project=format_project(project), changed_fields=changed_fields, diff=diff)


if __name__ == "__main__":
    main()
