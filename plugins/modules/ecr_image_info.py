#!/usr/bin/python
# -*- coding: utf-8 -*-

# Copyright: Contributors to the cloudops.ecr_replication project
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

DOCUMENTATION = r"""
---
module: ecr_image_info
version_added: 0.1.0
short_description: List ECR repositories and images, filtered, and compare them with another region or account
description:
  - Lists every repository of an Amazon ECR registry and every image in it (all tags, untagged images, multi-arch
    indexes with their platforms, referrers such as signatures and SBOMs), using paginated calls with retries.
  - Optional filters select repositories (names, glob patterns, prefix) and images (tag regular expression,
    push date, the N most recent per repository, untagged images).
  - With O(compare_to), looks the same repositories up in a destination region and/or account and gives every image
    a RV(images[].destination_status) (V(present), V(missing), V(missing_tags), V(tag_conflict)), and lists the
    destination repositories that do not exist.
  - With O(destinations), compares with several destinations at once and lists the source only once; each
    destination gets its own comparison in RV(destinations).
  - Only images in the C(ACTIVE) state are listed (C(DescribeImages)' default); archived images are left out on both
    sides.
  - This module is read-only. It never changes anything in AWS and never reports C(changed).
  - Also available as C(cloudops.ecr_replication.ecr_image_facts) (a redirect to this module).
  - "Cost: listing N images in R repositories makes about R + N/1000 C(DescribeImages) calls and R/1000
    C(DescribeRepositories) calls per registry; C(BatchGetImage) is only called for the manifests that are needed
    (indexes, possible referrers), in batches of 100. RV(summary.api_calls) reports the calls that were made."
author:
  - cloudops.ecr_replication contributors (@cloudops)
options:
  registry_id:
    description:
      - The AWS account ID of the source registry.
      - Defaults to the registry of the account whose credentials are used.
    type: str
  repositories:
    description:
      - Names or shell-style glob patterns (C(*), C(?), C([...])) of the repositories to include.
      - A name without glob characters that does not exist in the registry is an error.
      - Default is every repository.
    type: list
    elements: str
    default: []
  exclude_repositories:
    description:
      - Names or shell-style glob patterns of repositories to leave out. Applied after O(repositories).
    type: list
    elements: str
    default: []
  repository_prefix:
    description:
      - Only include repositories whose name starts with this prefix (for example V(team-a/)).
    type: str
  tag_regex:
    description:
      - Python regular expression. A tagged image is selected when at least one of its tags matches (C(re.search);
        anchor with C(^) and C($) for a full match). The image keeps all its tags in the result.
      - Untagged images are kept only when they belong to a selected image (a platform manifest of a selected index,
        or a referrer whose subject is a selected image).
    type: str
  pushed_after:
    description:
      - Only select images pushed at or after this time.
      - Either a date or date-time in ISO 8601 (V(2024-05-31), V(2024-05-31T12:00:00Z); without an offset UTC is
        assumed), or a duration back from now, a number followed by V(m) (minutes), V(h) (hours), V(d) (days) or
        V(w) (weeks), for example V(30d) or V(12h).
      - Images attached to a selected image (platform manifests, referrers) follow that image.
    type: str
  most_recent:
    description:
      - Keep only the N most recently pushed images per repository (after the other filters).
      - Images attached to another image (platform manifests of an index, referrers) do not count towards N and follow
        the image they are attached to. A platform manifest that has tags of its own is selected by those tags.
    type: int
  include_untagged:
    description:
      - Include untagged images (by digest). With V(false) every untagged image is left out, including the platform
        manifests of an index (copying an index copies them anyway) and untagged referrers.
    type: bool
    default: true
  repository_details:
    description:
      - Also return the lifecycle policy, the repository policy and the resource tags of each selected repository
        (three more calls per repository), so that a copy can recreate them.
    type: bool
    default: false
  fetch_manifests:
    description:
      - Which image manifests to read with C(BatchGetImage).
      - V(auto) reads the manifests of indexes (for RV(images[].platforms)) and of the OCI manifests that may have
        a C(subject), that is those whose artifact type is not a plain image config (signatures, SBOMs, attestations,
        other artifacts), or, when ECR reports no artifact type, the untagged ones. That is what finding referrers
        needs; a plain image that carries a C(subject) is only found with V(all). When ECR reports
        C(subjectManifestDigest) in C(DescribeImages) (current API versions), referrers need no manifest at all.
      - V(all) reads every manifest. V(none) reads none (no platforms, referrers only from cosign-style tags).
    type: str
    choices: [auto, all, none]
    default: auto
  compare_to:
    description:
      - Compare the selected images with the same repositories in a destination region and/or account.
      - The destination is reached with the module's own credentials and endpoint, after assuming O(compare_to.role_arn)
        when it is given.
    type: dict
    suboptions:
      region:
        description:
          - The destination region.
        type: str
        required: true
      registry_id:
        description:
          - The AWS account ID of the destination registry. Defaults to the account of the destination credentials.
        type: str
      role_arn:
        description:
          - ARN of a role to assume (C(sts:AssumeRole) with the module's credentials) to read the destination.
        type: str
      external_id:
        description:
          - The external ID to pass when assuming O(compare_to.role_arn).
        type: str
      role_session_name:
        description:
          - The session name used when assuming O(compare_to.role_arn).
        type: str
        default: ecr-image-info
  destinations:
    description:
      - Compare the selected images with several destinations, each described as in O(compare_to), listing the
        source registry once for all of them (with O(compare_to) in a loop the source is listed once per
        destination).
      - The result has one entry per destination in RV(destinations), in the order given; the top-level
        RV(images) and RV(repositories) then carry no destination fields.
      - Mutually exclusive with O(compare_to).
    type: list
    elements: dict
    suboptions:
      name:
        description:
          - A name for this destination, returned as RV(destinations[].name); must be unique.
          - Defaults to V(<registry_id>/<region>), or V(<region>) without O(destinations[].registry_id).
        type: str
      region:
        description:
          - The destination region.
        type: str
        required: true
      registry_id:
        description:
          - The AWS account ID of the destination registry. Defaults to the account of the destination credentials.
        type: str
      role_arn:
        description:
          - ARN of a role to assume (C(sts:AssumeRole) with the module's credentials) to read this destination.
        type: str
      external_id:
        description:
          - The external ID to pass when assuming O(destinations[].role_arn).
        type: str
      role_session_name:
        description:
          - The session name used when assuming O(destinations[].role_arn).
        type: str
        default: ecr-image-info
extends_documentation_fragment:
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
  - cloudops.ecr_replication.attributes
  - cloudops.ecr_replication.attributes.info_module
"""

EXAMPLES = r"""
# Note: These examples do not set authentication details, see the AWS Guide for details.

- name: Every image of every repository in the registry
  cloudops.ecr_replication.ecr_image_info:
    region: ap-south-1
  register: source_images

- name: Print the summary without a loop
  ansible.builtin.debug:
    var: source_images.summary

- name: Release tags of the team-a repositories pushed in the last 30 days, tagged only
  cloudops.ecr_replication.ecr_image_info:
    region: ap-south-1
    repository_prefix: team-a/
    exclude_repositories:
      - "*-sandbox"
    tag_regex: '^v[0-9]+\.[0-9]+\.[0-9]+$'
    pushed_after: 30d
    include_untagged: false

- name: Compare with another account in Seoul, reading it through an assumed role
  cloudops.ecr_replication.ecr_image_info:
    region: ap-south-1
    repositories:
      - app/*
    repository_details: true
    compare_to:
      region: ap-northeast-2
      role_arn: arn:aws:iam::222222222222:role/EcrReplicationTarget
      external_id: "{{ ecr_replication_external_id }}"
  register: facts

- name: Images that still have to be copied
  ansible.builtin.debug:
    msg: "{{ facts.images | selectattr('destination_status', 'in', ['missing', 'missing_tags']) | list }}"

- name: Compare with a DR region of the same account and with another account, listing the source once
  cloudops.ecr_replication.ecr_image_info:
    region: ap-south-1
    destinations:
      - region: ap-southeast-1
      - name: partner
        region: ap-northeast-2
        registry_id: "222222222222"
        role_arn: arn:aws:iam::222222222222:role/EcrReplicationTarget
        external_id: "{{ ecr_replication_external_id }}"
  register: facts

- name: Images still to copy, per destination
  ansible.builtin.debug:
    msg: "{{ item.name }}: {{ item.summary.by_status.missing }} missing, {{ item.summary.by_status.tag_conflict }} conflicts"
  loop: "{{ facts.destinations }}"
  loop_control:
    label: "{{ item.name }}"

- name: Through the old name (redirect)
  cloudops.ecr_replication.ecr_image_facts:
    region: ap-south-1
    most_recent: 5
"""

RETURN = r"""
repositories:
  description: The selected source repositories, sorted by name.
  returned: always
  type: list
  elements: dict
  contains:
    name:
      description: Repository name.
      type: str
      returned: always
      sample: app/web
    uri:
      description: The repository URI as returned by C(DescribeRepositories) (registry host and name).
      type: str
      returned: always
      sample: 111111111111.dkr.ecr.ap-south-1.amazonaws.com/app/web
    arn:
      description: Repository ARN.
      type: str
      returned: always
      sample: arn:aws:ecr:ap-south-1:111111111111:repository/app/web
    registry_id:
      description: The account ID of the registry holding the repository.
      type: str
      returned: always
      sample: "111111111111"
    created_at:
      description: Creation time, ISO 8601.
      type: str
      returned: always
    image_tag_mutability:
      description: V(MUTABLE) or V(IMMUTABLE) (or the C(*_WITH_EXCLUSION) variants).
      type: str
      returned: always
      sample: IMMUTABLE
    image_tag_mutability_exclusion_filters:
      description: Tag filters exempt from RV(repositories[].image_tag_mutability), as returned by the API.
      type: list
      elements: dict
      returned: always
      sample: []
    scan_on_push:
      description: Whether images are scanned when pushed.
      type: bool
      returned: always
    encryption_type:
      description: V(AES256), V(KMS) or V(KMS_DSSE).
      type: str
      returned: always
      sample: AES256
    kms_key:
      description: The KMS key of a KMS-encrypted repository, else null.
      type: str
      returned: always
    image_count:
      description: Number of selected images in this repository.
      type: int
      returned: always
    lifecycle_policy:
      description: The lifecycle policy document (parsed JSON), null when the repository has none.
      type: dict
      returned: when O(repository_details=true)
    repository_policy:
      description: The repository policy document (parsed JSON), null when the repository has none.
      type: dict
      returned: when O(repository_details=true)
    tags:
      description: The repository's resource tags.
      type: dict
      returned: when O(repository_details=true)
    destination_exists:
      description: Whether a repository of the same name exists in the destination.
      type: bool
      returned: when O(compare_to) is set
    destination_uri:
      description: The URI of the destination repository, null when it does not exist.
      type: str
      returned: when O(compare_to) is set
images:
  description:
    - The selected images, one entry per digest and repository, sorted by repository, then push time, then digest.
  returned: always
  type: list
  elements: dict
  contains:
    repository:
      description: Repository name.
      type: str
      returned: always
      sample: app/web
    registry_id:
      description: The account ID of the source registry.
      type: str
      returned: always
    digest:
      description: Manifest digest.
      type: str
      returned: always
      sample: sha256:3f1c4a5b...
    tags:
      description: All tags of the image, sorted. Empty for an untagged image.
      type: list
      elements: str
      returned: always
      sample: [latest, v1.2.0]
    untagged:
      description: Whether the image has no tag.
      type: bool
      returned: always
    media_type:
      description: The manifest media type (C(imageManifestMediaType)).
      type: str
      returned: always
      sample: application/vnd.oci.image.index.v1+json
    artifact_type:
      description:
        - The artifact media type (C(artifactMediaType) from the API, or the manifest's C(artifactType) when the
          manifest was read), null when unknown.
      type: str
      returned: always
    is_index:
      description: Whether the manifest is an OCI image index or a Docker manifest list.
      type: bool
      returned: always
    size_bytes:
      description: C(imageSizeInBytes) as reported by ECR (0 when not reported, for example for an index).
      type: int
      returned: always
    pushed_at:
      description: Push time, ISO 8601 in UTC.
      type: str
      returned: always
      sample: "2026-11-20T10:15:00+00:00"
    digest_uri:
      description: C(<repository uri>@<digest>).
      type: str
      returned: always
    tag_uris:
      description: C(<repository uri>:<tag>) for each tag, in the order of RV(images[].tags).
      type: list
      elements: str
      returned: always
    platforms:
      description:
        - For an index, the platforms it contains (C(os/architecture[/variant]), sorted, without attestation
          manifests). Empty for other images or when the manifest was not read.
      type: list
      elements: str
      returned: always
      sample: [linux/amd64, linux/arm64/v8]
    manifests:
      description: For an index, its entries (digest, media_type, size, platform). Empty otherwise.
      type: list
      elements: dict
      returned: always
    parent_digests:
      description:
        - Digests of the indexes in the same repository that list this manifest (it is one platform of them).
          Copying the index with C(--all) copies this manifest too.
      type: list
      elements: str
      returned: always
    platform:
      description:
        - For a platform manifest of an index, its platform as the index lists it (C(os/architecture[/variant]),
          V(unknown/unknown) for an attestation manifest). Null otherwise (reading an image's config is not needed
          for replication and is not done).
      type: str
      returned: always
      sample: linux/arm64/v8
    subject_digest:
      description:
        - For a referrer (signature, SBOM, attestation), the digest of the image it refers to, taken from the
          manifest's C(subject) or from a cosign-style tag (C(sha256-<hex>.sig), C(.att), C(.sbom)). Null otherwise.
      type: str
      returned: always
    referrer_kind:
      description: How RV(images[].subject_digest) was found, V(subject) or V(tag); null for non-referrers.
      type: str
      returned: always
    referrers:
      description: Digests of the images in the same repository that refer to this one, sorted.
      type: list
      elements: str
      returned: always
    referrer_count:
      description: Length of RV(images[].referrers).
      type: int
      returned: always
    destination_status:
      description:
        - V(present) the digest exists in the destination repository with every source tag.
        - V(missing) the digest does not exist in the destination (or the destination repository does not exist).
        - V(missing_tags) the digest exists but some source tags do not.
        - V(tag_conflict) at least one source tag points to a different digest in the destination (whether or not
          the digest itself is there); a copy must not move that tag unless told to.
        - Null without O(compare_to).
      type: str
      returned: always
      sample: missing
    destination_digest_present:
      description: Whether the digest exists in the destination repository (whatever its tags).
      type: bool
      returned: when O(compare_to) is set
    destination_tags:
      description: The tags this digest has in the destination, sorted (empty when the digest is missing).
      type: list
      elements: str
      returned: when O(compare_to) is set
    missing_tags:
      description: Source tags that are absent from the destination, sorted.
      type: list
      elements: str
      returned: when O(compare_to) is set
    conflicting_tags:
      description: Source tags that point to another digest in the destination.
      type: list
      elements: dict
      returned: when O(compare_to) is set
      contains:
        tag:
          description: The tag.
          type: str
        destination_digest:
          description: The digest the tag points to in the destination.
          type: str
manifest_failures:
  description:
    - Manifests that C(BatchGetImage) could not return (for example an unsupported media type). Those images are
      listed with what C(DescribeImages) says, without platforms or subject. A warning is shown when not empty.
  returned: always
  type: list
  elements: dict
  contains:
    repository:
      description: Repository name.
      type: str
    digest:
      description: Image digest.
      type: str
    code:
      description: The C(failureCode) from ECR.
      type: str
    reason:
      description: The C(failureReason) from ECR.
      type: str
missing_repositories:
  description: Selected source repositories that do not exist in the destination, sorted. Empty without O(compare_to).
  returned: always
  type: list
  elements: str
destination:
  description: Where the comparison looked.
  returned: when O(compare_to) is set
  type: dict
  contains:
    region:
      description: Destination region.
      type: str
    registry_id:
      description: Destination registry (account ID), or null when it was not given and no repository shows it.
      type: str
    role_arn:
      description: The role that was assumed, or null.
      type: str
destinations:
  description:
    - One comparison per entry of O(destinations), in that order. Each has the keys RV(repositories),
      RV(images), RV(missing_repositories) and RV(summary) exactly as they are returned with O(compare_to)
      (destination fields included), plus the destination's name, region, registry ID and assumed role.
  returned: when O(destinations) is set
  type: list
  elements: dict
  contains:
    name:
      description: O(destinations[].name), or its default.
      type: str
      sample: 222222222222/ap-northeast-2
    region:
      description: Destination region.
      type: str
    registry_id:
      description: Destination registry (account ID), or null when it was not given and no repository shows it.
      type: str
    role_arn:
      description: The role that was assumed, or null.
      type: str
    repositories:
      description: As RV(repositories), with RV(repositories[].destination_exists) and RV(repositories[].destination_uri).
      type: list
      elements: dict
    images:
      description: As RV(images), with RV(images[].destination_status) and the other destination fields.
      type: list
      elements: dict
    missing_repositories:
      description: Selected source repositories that do not exist in this destination, sorted.
      type: list
      elements: str
    summary:
      description:
        - As RV(summary), counted against this destination; RV(summary.api_calls) has the calls made to this
          destination only (key V(destination)).
      type: dict
summary:
  description: Counts a playbook can print without a loop.
  returned: always
  type: dict
  contains:
    repositories:
      description: Number of selected repositories.
      type: int
    images:
      description: Number of selected images.
      type: int
    tagged:
      description: Number of selected images with at least one tag.
      type: int
    untagged:
      description: Number of selected images without a tag.
      type: int
    tags:
      description: Number of tags over all selected images.
      type: int
    indexes:
      description: Number of selected images that are indexes.
      type: int
    referrers:
      description: Number of selected images that are referrers of another image.
      type: int
    total_bytes:
      description: Sum of RV(images[].size_bytes) (layers shared between images are counted once per image).
      type: int
    missing_bytes:
      description: Sum of RV(images[].size_bytes) over the images whose digest is absent from the destination.
      type: int
    by_status:
      description:
        - Number of images per RV(images[].destination_status); all zero without O(compare_to) (with
          O(destinations), see the C(by_status) of RV(destinations[].summary)).
      type: dict
      sample: {present: 10, missing: 3, missing_tags: 1, tag_conflict: 0}
    images_per_repository:
      description: Number of selected images per repository name.
      type: dict
    missing_repositories:
      description: Number of selected repositories missing in the destination.
      type: int
    api_calls:
      description:
        - ECR and STS API calls made, per side (V(source), V(destination)) and operation name.
        - With O(destinations), V(destination) adds up the calls to every destination.
      type: dict
      sample: {source: {DescribeRepositories: 1, DescribeImages: 12, BatchGetImage: 1}}
"""


import re

try:
    import botocore
except ImportError:
    pass  # Handled by AnsibleAWSModule

from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule

from ansible_collections.cloudops.ecr_replication.plugins.module_utils import image_catalog
from ansible_collections.cloudops.ecr_replication.plugins.module_utils.ecr import AnsibleECRError
from ansible_collections.cloudops.ecr_replication.plugins.module_utils.ecr import assumed_role_connection
from ansible_collections.cloudops.ecr_replication.plugins.module_utils.ecr import count_api_calls
from ansible_collections.cloudops.ecr_replication.plugins.module_utils.validation import OptionError
from ansible_collections.cloudops.ecr_replication.plugins.module_utils.validation import validate_account_id
from ansible_collections.cloudops.ecr_replication.plugins.module_utils.validation import validate_external_id
from ansible_collections.cloudops.ecr_replication.plugins.module_utils.validation import validate_region
from ansible_collections.cloudops.ecr_replication.plugins.module_utils.validation import validate_role_arn

ROLE_SESSION_NAME_RE = re.compile(r"^[\w+=,.@-]{2,64}$")


def validate_compare_to(compare_to, option="compare_to"):
    """Raise OptionError (naming the option) for a bad destination; return it cleaned."""
    if not compare_to:
        return None
    validate_region(compare_to.get("region"), f"{option}.region")
    if compare_to.get("registry_id"):
        validate_account_id(compare_to["registry_id"], f"{option}.registry_id")
    if compare_to.get("role_arn"):
        validate_role_arn(compare_to["role_arn"], f"{option}.role_arn")
    if compare_to.get("external_id") is not None:
        if not compare_to.get("role_arn"):
            raise OptionError(f"{option}.external_id", f"is only used together with {option}.role_arn")
        validate_external_id(compare_to["external_id"], f"{option}.external_id")
    if not ROLE_SESSION_NAME_RE.match(compare_to.get("role_session_name") or ""):
        raise OptionError(
            f"{option}.role_session_name",
            f"must be 2 to 64 letters, digits or +=,.@_- (an STS session name), got {compare_to.get('role_session_name')!r}",
        )
    return compare_to


def validate_destinations(destinations):
    """Validate every entry of ``destinations`` (as compare_to) and give each a unique name."""
    named = []
    for index, destination in enumerate(destinations or []):
        option = f"destinations[{index}]"
        destination = dict(validate_compare_to(destination, option))
        if not destination.get("name"):
            region = destination["region"]
            destination["name"] = f"{destination['registry_id']}/{region}" if destination.get("registry_id") else region
        if any(other["name"] == destination["name"] for other in named):
            raise OptionError(
                f"{option}.name",
                f"{destination['name']!r} names two destinations; give each destination its own name (or region/registry_id)",
            )
        named.append(destination)
    return named


def destination_client(module, compare_to, counter, option="compare_to"):
    """An ECR client for the destination region, with assumed-role credentials when role_arn is given."""
    extra = {"region": compare_to["region"]}
    if compare_to.get("role_arn"):
        sts = module.client("sts")
        count_api_calls(sts, counter)
        try:
            extra.update(
                assumed_role_connection(
                    sts, compare_to["role_arn"], compare_to["role_session_name"], compare_to.get("external_id")
                )
            )
        except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as e:
            module.fail_json_aws(e, msg=f"Failed to assume {compare_to['role_arn']} ({option}.role_arn)")
    try:
        client = module.client("ecr", **extra)
    except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as e:
        module.fail_json_aws(e, msg=f"Failed to connect to ECR in {compare_to['region']} ({option})")
    count_api_calls(client, counter)
    return client


def _destination_options():
    return dict(
        region=dict(type="str", required=True),
        registry_id=dict(type="str"),
        role_arn=dict(type="str"),
        external_id=dict(type="str", no_log=True),
        role_session_name=dict(type="str", default="ecr-image-info"),
    )


def main():
    argument_spec = dict(
        registry_id=dict(type="str"),
        repositories=dict(type="list", elements="str", default=[]),
        exclude_repositories=dict(type="list", elements="str", default=[]),
        repository_prefix=dict(type="str"),
        tag_regex=dict(type="str"),
        pushed_after=dict(type="str"),
        most_recent=dict(type="int"),
        include_untagged=dict(type="bool", default=True),
        repository_details=dict(type="bool", default=False),
        fetch_manifests=dict(type="str", choices=list(image_catalog.FETCH_MANIFESTS), default="auto"),
        compare_to=dict(type="dict", options=_destination_options()),
        destinations=dict(type="list", elements="dict", options=dict(name=dict(type="str"), **_destination_options())),
    )
    module = AnsibleAWSModule(
        argument_spec=argument_spec,
        supports_check_mode=True,
        mutually_exclusive=[("compare_to", "destinations")],
    )
    params = module.params

    try:
        if params["registry_id"]:
            validate_account_id(params["registry_id"], "registry_id")
        compare_to = validate_compare_to(params["compare_to"])
        destinations = validate_destinations(params["destinations"])
        filters = image_catalog.build_filters(
            repositories=params["repositories"],
            exclude_repositories=params["exclude_repositories"],
            repository_prefix=params["repository_prefix"],
            tag_regex=params["tag_regex"],
            pushed_after=params["pushed_after"],
            most_recent=params["most_recent"],
            include_untagged=params["include_untagged"],
        )
    except OptionError as e:
        module.fail_json(msg=str(e), option=e.option)

    api_calls = {"source": {}}
    try:
        client = module.client("ecr")
    except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as e:
        module.fail_json_aws(e, msg="Failed to connect to AWS")
    count_api_calls(client, api_calls["source"])

    dest_client = None
    if compare_to:
        api_calls["destination"] = {}
        dest_client = destination_client(module, compare_to, api_calls["destination"])
    targets = []
    for index, destination in enumerate(destinations):
        calls = {}
        dest = destination_client(module, destination, calls, f"destinations[{index}]")
        targets.append(image_catalog.Destination(dest, destination.get("registry_id"), destination["name"], calls))

    try:
        result = image_catalog.collect(
            client,
            filters,
            registry_id=params["registry_id"],
            fetch_manifests=params["fetch_manifests"],
            with_repository_details=params["repository_details"],
            destination_client=dest_client,
            destination_registry_id=(compare_to or {}).get("registry_id"),
            api_calls=api_calls,
            destinations=targets,
        )
    except OptionError as e:
        module.fail_json(msg=str(e), option=e.option)
    except AnsibleECRError as e:
        module.fail_json_aws_error(e)

    if result["manifest_failures"]:
        first = ", ".join(f"{f['repository']}@{f['digest']} ({f['code']})" for f in result["manifest_failures"][:5])
        module.warn(f"ECR did not return {len(result['manifest_failures'])} manifest(s), e.g. {first}")
    if compare_to:
        result["destination"] = {
            "region": compare_to["region"],
            "registry_id": result.pop("destination_registry_id", None),
            "role_arn": compare_to.get("role_arn"),
        }
    for destination, compared in zip(destinations, result.get("destinations", [])):
        compared.update(region=destination["region"], role_arn=destination.get("role_arn"))
    module.exit_json(changed=False, **result)


if __name__ == "__main__":
    main()
