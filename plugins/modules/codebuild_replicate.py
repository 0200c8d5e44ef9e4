#!/usr/bin/python
# -*- coding: utf-8 -*-

# Copyright: Contributors to the cloudops.ecr_replication project
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

DOCUMENTATION = r"""
---
module: codebuild_replicate
version_added: 0.1.0
short_description: Copy ECR images to another region or account in batched CodeBuild builds (or locally)
description:
  - Copies images that already exist in Amazon ECR to a destination region and/or account registry to registry
    (blobs streamed through the registry API, each moved once per destination repository; manifests written with
    C(PutImage), children before their index, tags last; indexes, every platform and referrers kept, digests
    identical). The copy program is the collection's C(buildspec.yml).
  - With O(executor=codebuild) the images are cut into batches of O(batch_size) and each batch is one build of an
    existing CodeBuild project (see the C(cloudops.ecr_replication.source_codebuild) role), at most
    O(max_concurrent_builds) at a time. With O(executor=local) the very same C(buildspec.yml) runs on the host
    that runs the module, through the collection's buildspec runner (needs C(python3) with boto3).
  - Idempotent. Images whose C(destination_status) (from M(cloudops.ecr_replication.ecr_image_info) with
    C(compare_to)) is V(present) are skipped before any build starts; images without a status are looked up in the
    destination first when the module's credentials can. When nothing is missing no build starts and
    C(changed) is false. Inside a build, images already in the destination are reported V(present).
  - A destination tag that points to another digest is never moved unless O(force_tags=true), and never in an
    IMMUTABLE repository; such images are reported V(tag_conflict), which does not fail the module.
  - Results are read back from the builds' logs (one C(RESULT {json}) line per image). An image a build never
    reported (build V(FAILED), V(TIMED_OUT), V(STOPPED)) is V(failed) with the build's reason.
  - The batch reaches a build through environment variable overrides C(REPL_BATCH_PARTS) and C(REPL_BATCH_<n>), a
    zlib-compressed, base64-encoded JSON list split into values of at most 4,000 characters (CodeBuild allows
    4,096). The other settings are C(REPL_*) variables. The ExternalId reaches a build only as a C(PARAMETER_STORE)
    variable naming an SSM SecureString (O(external_id_parameter); C(provision.yml) creates it), never as a
    C(PLAINTEXT) override that anyone allowed C(codebuild:BatchGetBuilds) could read; it is never printed.
  - Destination credentials (from C(sts:AssumeRole) in the build) and registry tokens are never printed, never
    written to a profile file or a command line; they stay in the memory of the copy program.
  - "Cost: check mode returns the plan: batches, builds and an estimate of the CodeBuild minutes (each build is
    billed per started minute; about 1 minute of provisioning each) and their price."
author:
  - cloudops.ecr_replication contributors (@cloudops)
options:
  project_name:
    description:
      - Name of the CodeBuild project whose builds copy the images (its buildspec must be this collection's
        C(buildspec.yml)). Required with O(executor=codebuild) unless O(build_ids) is given.
    type: str
  images:
    description:
      - The images to copy, as returned in RV(cloudops.ecr_replication.ecr_image_info#module:images), or
        dicts with C(repository), C(digest) and optional C(tags).
      - Required unless O(build_ids) is given. Must not be empty.
    type: list
    elements: dict
  dest_region:
    description: The destination region. Required unless O(build_ids) is given.
    type: str
  dest_account:
    description:
      - The destination registry (AWS account ID). Defaults to the account of O(dest_role_arn), else the source
        account.
    type: str
  dest_role_arn:
    description:
      - Role in the destination account that the build (or, with O(executor=local), the module's credentials)
        assumes to create repositories and push images. Without it the build's own credentials are used.
    type: str
  external_id:
    description:
      - The C(sts:ExternalId) the trust policy of O(dest_role_arn) requires, for the module's own look-up of the
        destination and for O(executor=local). A secret, never printed.
      - With O(executor=codebuild) builds read it from O(external_id_parameter).
    type: str
  external_id_parameter:
    description:
      - Name of the SSM SecureString (source account and region) that holds the ExternalId for the builds; required
        with O(external_id) and O(executor=codebuild). The CodeBuild service role needs C(ssm:GetParameters) on it.
    type: str
  batch_size:
    description: Images per build.
    type: int
    default: 50
  max_concurrent_builds:
    description:
      - Builds running at the same time. Never more than the project's C(concurrentBuildLimit).
      - ECR's C(PutImage) limit (10 per second per account and region) is shared between them.
    type: int
    default: 5
  parallel_copies:
    description: Copies running at the same time inside one build.
    type: int
    default: 4
  skip_present:
    description: Skip images that are already in the destination with the same digest and every tag.
    type: bool
    default: true
  force_tags:
    description: Move destination tags that point to another digest (mutable repositories only).
    type: bool
    default: false
  copy_lifecycle_policy:
    description: Give destination repositories created by the copy the source repository's lifecycle policy.
    type: bool
    default: false
  copy_repository_policy:
    description:
      - Give destination repositories created by the copy the source repository's policy. Its principals must make
        sense in the destination account.
    type: bool
    default: false
  wait:
    description:
      - Wait for every build to finish and return the per-image results.
      - With V(false) the first O(max_concurrent_builds) builds start and their ids are returned at once; call the
        module again with O(build_ids) to follow them, and again with the (re-compared) images for what is left.
      - O(executor=local) always waits.
    type: bool
    default: true
  wait_timeout:
    description: Seconds to wait for the builds (or the local runs) to finish.
    type: int
    default: 3600
  poll_interval:
    description: Seconds between two C(BatchGetBuilds) calls while waiting.
    type: int
    default: 15
  executor:
    description:
      - V(codebuild) starts builds of O(project_name).
      - V(local) runs the same C(buildspec.yml) on the host running the module, with the module's credentials as
        the source identity.
    type: str
    choices: [codebuild, local]
    default: codebuild
  build_ids:
    description:
      - Follow builds started earlier (by a call with O(wait=false)) instead of starting new ones. Their batches
        are read back from the builds' environment.
    type: list
    elements: str
  allow_partial:
    description: Do not fail when some images failed; they are still reported in RV(results).
    type: bool
    default: false
  price_per_minute:
    description:
      - USD per build minute for the cost estimate. Defaults to the on-demand Linux price of the project's compute
        type (us-east-1 list prices).
    type: float
extends_documentation_fragment:
  - cloudops.ecr_replication.attributes
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
attributes:
  check_mode:
    support: full
    details:
      - Returns the plan (images, batches, builds, estimated minutes and cost) and starts nothing.
  diff_mode:
    support: none
notes:
  - The region of the module (O(region)) is the source region; the project must exist there.
  - "Permissions of the module's credentials: C(codebuild:BatchGetProjects), C(codebuild:StartBuild),
    C(codebuild:BatchGetBuilds), C(logs:GetLogEvents) on the project's log group, C(sts:GetCallerIdentity);
    C(sts:AssumeRole) on O(dest_role_arn) to look up images without C(destination_status) (optional) and
    with O(executor=local)."
"""

EXAMPLES = r"""
- name: List what is missing in Seoul
  cloudops.ecr_replication.ecr_image_info:
    region: ap-south-1
    compare_to:
      region: ap-northeast-2
      registry_id: "222222222222"
      role_arn: arn:aws:iam::222222222222:role/EcrReplicationTarget
      external_id: "{{ replication_external_id }}"
  register: facts

- name: Show the plan (builds, minutes, cost)
  cloudops.ecr_replication.codebuild_replicate:
    region: ap-south-1
    project_name: ecr-replication
    images: "{{ facts.images }}"
    dest_region: ap-northeast-2
    dest_role_arn: arn:aws:iam::222222222222:role/EcrReplicationTarget
    external_id: "{{ replication_external_id }}"
    external_id_parameter: /cloudops/ecr-replication/222222222222/external-id
  check_mode: true
  register: plan

- name: Copy in batches of 50, five builds at a time
  cloudops.ecr_replication.codebuild_replicate:
    region: ap-south-1
    project_name: ecr-replication
    images: "{{ facts.images }}"
    dest_region: ap-northeast-2
    dest_role_arn: arn:aws:iam::222222222222:role/EcrReplicationTarget
    external_id: "{{ replication_external_id }}"
    external_id_parameter: /cloudops/ecr-replication/222222222222/external-id
  register: copy

- name: Start without waiting, then follow the builds
  cloudops.ecr_replication.codebuild_replicate:
    region: ap-south-1
    project_name: ecr-replication
    images: "{{ facts.images }}"
    dest_region: ap-northeast-2
    wait: false
  register: started

- name: Poll until done
  cloudops.ecr_replication.codebuild_replicate:
    region: ap-south-1
    build_ids: "{{ started.builds | map(attribute='id') | list }}"
    wait: false
  register: progress
  until: progress.summary.running == 0
  retries: 60
  delay: 30

- name: Without CodeBuild, on the controller
  cloudops.ecr_replication.codebuild_replicate:
    region: ap-south-1
    executor: local
    images: "{{ facts.images }}"
    dest_region: ap-northeast-2
    dest_role_arn: arn:aws:iam::222222222222:role/EcrReplicationTarget
    external_id: "{{ replication_external_id }}"
  delegate_to: localhost
"""

RETURN = r"""
builds:
  description: One entry per build started (or followed).
  returned: always
  type: list
  elements: dict
  contains:
    id:
      description: The build id (C(local:...) with O(executor=local)).
      type: str
    batch:
      description: Index of the batch in RV(plan.batches); null when following O(build_ids).
      type: int
    status:
      description: V(IN_PROGRESS), V(SUCCEEDED), V(FAILED), V(FAULT), V(STOPPED) or V(TIMED_OUT).
      type: str
    current_phase:
      description: CodeBuild's current phase.
      type: str
    images:
      description: Number of images in the build's batch.
      type: int
    duration_seconds:
      description: Build duration, null while running.
      type: float
    log_group:
      description: CloudWatch Logs group of the build.
      type: str
    log_stream:
      description: CloudWatch Logs stream of the build.
      type: str
    log_link:
      description: Console link to the build log.
      type: str
    error:
      description: Why the build did not succeed (status, phase and its context), else null.
      type: str
results:
  description: One entry per image (skipped images included), from the build logs.
  returned: always
  type: list
  elements: dict
  contains:
    repository:
      description: Repository name (the same in source and destination).
      type: str
    digest:
      description: Manifest digest (identical in source and destination).
      type: str
    tags:
      description: The image's source tags.
      type: list
      elements: str
    status:
      description:
        - V(copied) the manifest and/or tags were copied and verified in the destination.
        - V(present) nothing was needed.
        - V(tag_conflict) some destination tags point to another digest and were not moved (RV(results[].conflicts)).
        - V(failed) see RV(results[].error).
      type: str
    bytes:
      description: C(imageSizeInBytes) of a copied image in the destination, 0 otherwise.
      type: int
    seconds:
      description: Time spent on the image.
      type: float
    error:
      description: The error of a failed image, the conflicting tags of a tag_conflict, else null.
      type: str
    tags_applied:
      description: Tags put on the digest by this run.
      type: list
      elements: str
    conflicts:
      description: Tag -> the digest it points to in the destination.
      type: dict
summary:
  description: Counts per status, bytes copied, builds, and the failed images.
  returned: always
  type: dict
  sample: {images: 12, copied: 10, present: 1, tag_conflict: 1, failed: 0, bytes_copied: 123456, builds: 1,
           running: 0, failures: []}
plan:
  description: What would be (or was) done; the whole answer in check mode.
  returned: when images are given
  type: dict
  contains:
    images:
      description: Images to copy.
      type: int
    skipped:
      description: Images skipped before any build (present, or tag conflicts with nothing else to do).
      type: int
    builds:
      description: Number of builds (batches).
      type: int
    batches:
      description: Per batch, images, tags, bytes, repositories, environment variables and estimated minutes.
      type: list
      elements: dict
    estimated_build_minutes:
      description: Sum of the billed minutes of every build.
      type: int
    estimated_wall_minutes:
      description: Elapsed time with O(max_concurrent_builds) builds at a time.
      type: int
    estimated_cost_usd:
      description: RV(plan.estimated_build_minutes) times the price per minute.
      type: float
pending_images:
  description: Images not started because O(wait=false) only starts one round of builds.
  returned: when O(wait=false)
  type: int
"""

import time

try:
    import botocore
except ImportError:
    pass  # Handled by AnsibleAWSModule

from ansible_collections.amazon.aws.plugins.module_utils.botocore import get_aws_connection_info
from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule

from ansible_collections.cloudops.ecr_replication.plugins.module_utils import batching
from ansible_collections.cloudops.ecr_replication.plugins.module_utils import replication_driver
from ansible_collections.cloudops.ecr_replication.plugins.module_utils import replication_executor
from ansible_collections.cloudops.ecr_replication.plugins.module_utils import replication_results
from ansible_collections.cloudops.ecr_replication.plugins.module_utils.codebuild import AnsibleCodeBuildError
from ansible_collections.cloudops.ecr_replication.plugins.module_utils.codebuild import batch_get_builds
from ansible_collections.cloudops.ecr_replication.plugins.module_utils.codebuild import get_project
from ansible_collections.cloudops.ecr_replication.plugins.module_utils.ecr import AnsibleECRError
from ansible_collections.cloudops.ecr_replication.plugins.module_utils.ecr import assumed_role_connection
from ansible_collections.cloudops.ecr_replication.plugins.module_utils.ecr import list_images
from ansible_collections.cloudops.ecr_replication.plugins.module_utils.image_catalog import DestinationRepository
from ansible_collections.cloudops.ecr_replication.plugins.module_utils.image_catalog import compare_digest
from ansible_collections.cloudops.ecr_replication.plugins.module_utils.validation import OptionError
from ansible_collections.cloudops.ecr_replication.plugins.module_utils.validation import validate_account_id
from ansible_collections.cloudops.ecr_replication.plugins.module_utils.validation import validate_external_id
from ansible_collections.cloudops.ecr_replication.plugins.module_utils.validation import validate_region
from ansible_collections.cloudops.ecr_replication.plugins.module_utils.validation import validate_role_arn

SESSION_NAME = "codebuild-replicate"


def validate(module):
    p = module.params
    try:
        for name in ("batch_size", "max_concurrent_builds", "parallel_copies", "wait_timeout", "poll_interval"):
            if p[name] is not None and p[name] < 1:
                raise OptionError(name, "must be 1 or more")
        if p["build_ids"] is not None:
            if not p["build_ids"]:
                raise OptionError("build_ids", "must not be empty")
            return
        if p["images"] is None:
            raise OptionError("images", "is required unless build_ids is given")
        if not p["dest_region"]:
            raise OptionError("dest_region", "is required unless build_ids is given")
        validate_region(p["dest_region"], "dest_region")
        if p["dest_account"]:
            validate_account_id(p["dest_account"], "dest_account")
        if p["dest_role_arn"]:
            validate_role_arn(p["dest_role_arn"], "dest_role_arn")
        if p["external_id"] is not None:
            if not p["dest_role_arn"]:
                raise OptionError("external_id", "is only used together with dest_role_arn")
            validate_external_id(p["external_id"], "external_id")
            if p["executor"] == "codebuild" and not p["external_id_parameter"]:
                raise OptionError(
                    "external_id_parameter",
                    "is required with external_id and executor=codebuild: the ExternalId reaches builds as a "
                    "PARAMETER_STORE variable, never as PLAINTEXT",
                )
        if p["executor"] == "codebuild" and not p["project_name"]:
            raise OptionError("project_name", "is required with executor=codebuild")
        if p["price_per_minute"] is not None and p["price_per_minute"] < 0:
            raise OptionError("price_per_minute", "must not be negative")
    except OptionError as e:
        module.fail_json(msg=str(e), option=e.option)


def destination_ecr(module, dest_region, role_arn, external_id):
    """ECR client in the destination with the assumed role; raises the AWS error when the role cannot be assumed."""
    extra = {"region": dest_region}
    if role_arn:
        extra.update(assumed_role_connection(module.client("sts"), role_arn, SESSION_NAME, external_id))
    return module.client("ecr", **extra)


def look_up_destination(ecr, images, registry_id):
    """Compare the images without destination_status with the destination (image_catalog's rules)."""
    by_repo = {}
    for image in images:
        if image.get("destination_status") is None:
            by_repo.setdefault(image["repository"], []).append(image)
    for repo, repo_images in by_repo.items():
        # [] when the repository does not exist: every image is missing
        contents = DestinationRepository.from_image_ids(list_images(ecr, repo, registry_id))
        for image in repo_images:
            image.update(compare_digest(image["digest"], image["tags"], contents))


def skipped_result(image):
    result = {
        "repository": image["repository"],
        "digest": image["digest"],
        "tags": image["tags"],
        "status": image["status"],
        "bytes": 0,
        "seconds": 0,
        "error": None,
        "tags_applied": [],
        "conflicts": {},
    }
    if image["status"] == "tag_conflict":
        result["error"] = "destination tags point to other digests (found before any build; force_tags moves them)"
    return result


def local_base_env(module, source_region):
    """Environment of a local run, with the module's credentials as the build's own identity (in memory only)."""
    import boto3

    _region, endpoint_url, params = get_aws_connection_info(module)
    session = boto3.session.Session(
        profile_name=params.get("profile_name"),
        aws_access_key_id=params.get("aws_access_key_id"),
        aws_secret_access_key=params.get("aws_secret_access_key"),
        aws_session_token=params.get("aws_session_token"),
    )
    credentials = session.get_credentials()
    if credentials is None:
        module.fail_json(msg="executor=local needs AWS credentials for the source account, none were found")
    ca_bundle = params.get("verify") if isinstance(params.get("verify"), str) else None
    return replication_executor.local_build_env(credentials, source_region, endpoint_url, ca_bundle)


def finish(module, builds, results, plan=None, extra=None):
    summary = replication_results.summarize(results)
    summary["builds"] = len(builds)
    summary["running"] = sum(1 for b in builds if b.get("status") not in replication_executor.FINAL)
    changed = summary["copied"] > 0 or any(b.get("status") == "IN_PROGRESS" and b.get("batch") is not None for b in builds)
    answer = dict(changed=changed, builds=builds, results=results, summary=summary)
    if plan is not None:
        answer["plan"] = plan
    answer.update(extra or {})
    if summary["failed"] and not module.params["allow_partial"]:
        shown = "; ".join("%s@%s: %s" % (f["repository"], f["digest"], f["error"]) for f in summary["failures"][:5])
        more = " (and %d more)" % (summary["failed"] - 5) if summary["failed"] > 5 else ""
        module.fail_json(msg="%d of %d images failed: %s%s" % (summary["failed"], summary["images"], shown, more), **answer)
    module.exit_json(**answer)


def poll(module):
    """Follow builds started earlier (build_ids): their batches are read back from their environment."""
    p = module.params
    client = module.client("codebuild")
    backend = replication_executor.CodeBuildBackend(client, module.client("logs"), p["project_name"])
    deadline = time.monotonic() + p["wait_timeout"]
    while True:
        builds = batch_get_builds(client, p["build_ids"])
        unknown = sorted(set(p["build_ids"]) - {b["id"] for b in builds})
        if unknown:
            module.fail_json(msg="unknown build ids: %s" % ", ".join(unknown), option="build_ids")
        ended = all(b.get("buildStatus") in replication_executor.FINAL for b in builds)
        if ended or not p["wait"]:
            break
        if time.monotonic() > deadline:
            running = sorted(b["id"] for b in builds if b.get("buildStatus") not in replication_executor.FINAL)
            module.fail_json(msg="wait_timeout: builds still running: %s" % ", ".join(running))
        time.sleep(p["poll_interval"])
    records, results = [], []
    backend.poll([b["id"] for b in builds])  # learns where each build's log is
    for build in builds:
        planned = replication_executor.batch_from_env((build.get("environment") or {}).get("environmentVariables"))
        record = replication_executor.build_record(build, None, len(planned) if planned is not None else None)
        records.append(record)
        if build.get("buildStatus") in replication_executor.FINAL:
            results.extend(replication_executor.results_for(record, backend.new_lines(build["id"]), planned))
    finish(module, records, results)


def main():
    argument_spec = dict(
        project_name=dict(type="str"),
        images=dict(type="list", elements="dict"),
        dest_region=dict(type="str"),
        dest_account=dict(type="str"),
        dest_role_arn=dict(type="str"),
        external_id=dict(type="str", no_log=True),
        external_id_parameter=dict(type="str"),
        batch_size=dict(type="int", default=50),
        max_concurrent_builds=dict(type="int", default=5),
        parallel_copies=dict(type="int", default=4),
        skip_present=dict(type="bool", default=True),
        force_tags=dict(type="bool", default=False),
        copy_lifecycle_policy=dict(type="bool", default=False),
        copy_repository_policy=dict(type="bool", default=False),
        wait=dict(type="bool", default=True),
        wait_timeout=dict(type="int", default=3600),
        poll_interval=dict(type="int", default=15),
        executor=dict(type="str", choices=["codebuild", "local"], default="codebuild"),
        build_ids=dict(type="list", elements="str"),
        allow_partial=dict(type="bool", default=False),
        price_per_minute=dict(type="float"),
    )
    module = AnsibleAWSModule(
        argument_spec=argument_spec,
        supports_check_mode=True,
        mutually_exclusive=[("images", "build_ids")],
    )
    p = module.params
    validate(module)
    try:
        if p["build_ids"] is not None:
            poll(module)
        run(module)
    except (AnsibleCodeBuildError, AnsibleECRError) as e:
        module.fail_json_aws_error(e)
    except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as e:
        module.fail_json_aws(e, msg="AWS call failed")


def run(module):
    p = module.params
    source_region = module.region
    try:
        images = batching.normalize_images(p["images"])
    except OptionError as e:
        module.fail_json(msg=str(e), option="images")

    source_account = module.client("sts").get_caller_identity()["Account"]
    try:
        batching.check_source_registry(p["images"], source_account)
    except OptionError as e:
        module.fail_json(msg=str(e), option="images")
    dest_account = p["dest_account"] or (p["dest_role_arn"].split(":")[4] if p["dest_role_arn"] else source_account)
    if p["dest_region"] == source_region and dest_account == source_account:
        module.fail_json(
            msg="dest_region %s is the source region and the destination account is the source account %s: "
            "nothing to copy to (set dest_region or dest_account)" % (source_region, source_account),
            option="dest_region",
        )

    # The destination as the module's credentials see it: needed for local runs, optional for CodeBuild.
    dest_ecr = None
    if p["executor"] == "local" or (p["skip_present"] and any(i["destination_status"] is None for i in images)):
        try:
            dest_ecr = destination_ecr(module, p["dest_region"], p["dest_role_arn"], p["external_id"])
        except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as e:
            if p["executor"] == "local":
                module.fail_json_aws(e, msg="dest_role_arn %s cannot be assumed" % p["dest_role_arn"], option="dest_role_arn")
            module.warn("cannot look the destination up with the module's credentials (%s); the builds will skip "
                        "what is present" % e)
    if dest_ecr is not None and p["skip_present"]:
        look_up_destination(dest_ecr, images, p["dest_account"] or (dest_account if p["dest_role_arn"] else None))

    to_copy, skipped = batching.select_images(images, p["skip_present"], p["force_tags"])
    skipped_results = [skipped_result(i) for i in skipped]

    max_concurrent = p["max_concurrent_builds"]
    compute_type = None
    project = None
    if p["executor"] == "codebuild":
        project = get_project(module.client("codebuild"), p["project_name"])
        if project is None:
            module.fail_json(msg="CodeBuild project %s does not exist in %s" % (p["project_name"], source_region),
                             option="project_name")
        limit = project.get("concurrentBuildLimit")
        if limit and limit < max_concurrent:
            module.warn("max_concurrent_builds %d lowered to the project's concurrentBuildLimit %d" % (max_concurrent, limit))
            max_concurrent = limit
        compute_type = (project.get("environment") or {}).get("computeType")

    try:
        batches = batching.build_batches(to_copy, p["batch_size"])
    except OptionError as e:
        module.fail_json(msg=str(e), option="images")
    plan = batching.plan(batches, p["parallel_copies"], max_concurrent, compute_type, p["price_per_minute"])
    plan["skipped"] = len(skipped)
    plan["executor"] = p["executor"]

    if not batches:
        module.exit_json(changed=False, builds=[], results=skipped_results, plan=plan,
                         summary=dict(replication_results.summarize(skipped_results), builds=0, running=0))
    if module.check_mode:
        module.exit_json(changed=True, builds=[], results=skipped_results, plan=plan,
                         summary=dict(replication_results.summarize(skipped_results), builds=0, running=0))

    env = replication_executor.common_env(
        source_region, p["dest_region"], p["dest_account"], p["dest_role_arn"], p["external_id"],
        p["parallel_copies"], p["force_tags"], min(max_concurrent, len(batches)),
        p["copy_lifecycle_policy"], p["copy_repository_policy"],
        external_id_parameter=p["external_id_parameter"] if p["executor"] == "codebuild" else None,
    )
    extra = {}
    if p["executor"] == "local":
        from ansible_collections.cloudops.ecr_replication.plugins.module_utils.replicator import render_buildspec

        backend = replication_executor.LocalBackend(
            render_buildspec(), local_base_env(module, source_region), p["wait_timeout"]
        )
    else:
        backend = replication_executor.CodeBuildBackend(module.client("codebuild"), module.client("logs"),
                                                        p["project_name"])
    if not p["wait"] and p["executor"] == "codebuild":
        builds = []
        for index, batch in enumerate(batches[:max_concurrent]):
            try:
                build_id = backend.start(batch, env)
            except (replication_executor.QueueFull, replication_executor.TransientError) as e:
                module.fail_json(msg="could not start build %d: %s" % (index, e), builds=builds, plan=plan)
            builds.append({"id": build_id, "batch": index, "status": "IN_PROGRESS", "images": len(batch)})
        extra["pending_images"] = sum(len(b) for b in batches[max_concurrent:])
        finish(module, builds, skipped_results, plan, extra)

    # One round, no comparison between rounds: the module's own caller (or the role's driver) verifies.
    driver = replication_driver.Driver(
        backend, {"destination": to_copy if p["skip_present"] else [dict(i, destination_status=None) for i in to_copy]},
        lambda _key, at_once: dict(env, REPL_PUT_TPS=replication_executor.put_image_share(at_once)), None,
        batch_size=p["batch_size"], max_concurrent=max_concurrent, poll_interval=p["poll_interval"],
        wait_timeout=p["wait_timeout"], max_rounds=1, force_tags=p["force_tags"],
    )
    try:
        outcome = driver.run()["destinations"]["destination"]
    finally:
        if p["executor"] == "local":
            backend.close()
    if outcome["error"] and not outcome["builds"]:
        module.fail_json(msg=outcome["error"], builds=[], plan=plan)
    if outcome["error"]:
        extra["error"] = outcome["error"]
    finish(module, outcome["builds"], skipped_results + outcome["results"], plan, extra)


if __name__ == "__main__":
    main()
