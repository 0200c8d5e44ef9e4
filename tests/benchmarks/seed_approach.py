# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Faithful re-creations of the two seed approaches (../shared/seeds), used only as the baseline of the benchmarks.

- ``list_seed_000``: the 000 seed's Python driver: ``describe_repositories()`` and ``describe_images(repositoryName)``,
  one call each, no pagination (the API's default page: 100 repositories, 100 images), tagged images only,
  ``imageTags[0]`` only. Each image it finds is one ``StartBuild``.
- ``list_seed_003``: the 003 seed's Lambda: ``describe_repositories(maxResults=1000)`` and ``list_images(maxResults=1000,
  filter TAGGED)``, first page only (``ListImages`` returns one entry per tag, so a page of 1,000 is 1,000 tags).
- ``SEED_BUILDSPEC``: the 000 seed's buildspec, step by step, for the sandbox CodeBuild. Differences, all of which make
  the seed *faster* here than on CodeBuild (so the measured ratios are conservative):

  * ``docker pull`` / ``docker push`` are ``skopeo copy docker://... dir:...`` and ``skopeo copy dir:... docker://...``
    (the sandbox has no Docker daemon); like ``docker pull`` without ``--all`` skopeo keeps one platform of an index;
  * the registry hosts come from project variables ``src_registry`` / ``dest_registry`` instead of
    ``<account>.dkr.ecr.<region>.amazonaws.com`` (the sandbox's registries listen on 127.0.0.1 ports);
  * ``docker login`` is ``skopeo login`` (into the build's private ``XDG_RUNTIME_DIR``);
  * the seed's ``echo "AWS_ACCESS_KEY_ID is ..."`` and its three ``aws configure set ... --profile target_profile``
    (credentials written to a profile file) are left out: the assumed-role credentials stay in the environment of
    the commands that need them. That saves three AWS CLI start-ups per image.
"""

from __future__ import annotations

import time
from typing import Any

SEED_PROJECT = "bench-seed-replication"

SEED_BUILDSPEC = r"""version: 0.2
env:
  shell: bash
phases:
  build:
    commands:
      - |
        set -e
        echo "login source registry"
        aws ecr get-login-password --region $AWS_DEFAULT_REGION | skopeo login --username AWS --password-stdin $src_registry >/dev/null
        srcImage="$src_registry/$ECR_REPO_NAME:$ECR_REPO_TAG"
        echo "pull image"
        skopeo copy --quiet docker://$srcImage dir:$CODEBUILD_SRC_DIR/image
        echo "Assuming role $dest_role"
        set +x
        sts=$(aws sts assume-role --role-arn "$dest_role" --role-session-name target_profile \
          --query 'Credentials.[AccessKeyId,SecretAccessKey,SessionToken]' --output text)
        sts=($sts)
        tgt() { AWS_ACCESS_KEY_ID=${sts[0]} AWS_SECRET_ACCESS_KEY=${sts[1]} AWS_SESSION_TOKEN=${sts[2]} "$@"; }
        if ! repoMsg=$(tgt aws ecr describe-repositories --repository-names $ECR_REPO_NAME --region $dest_region 2>&1); then
          echo -n "$ECR_REPO_NAME does not exists in ECR@$dest_region, creating... "
          tgt aws ecr create-repository --repository-name $ECR_REPO_NAME --region $dest_region > /dev/null || true
          echo "done."
        fi
        targetImage="$dest_registry/$ECR_REPO_NAME:$ECR_REPO_TAG"
        echo "login target registry in $dest_account"
        tgt aws ecr get-login-password --region $dest_region | skopeo login --username AWS --password-stdin $dest_registry >/dev/null
        echo "push image to target account $dest_account target region $dest_region"
        skopeo copy --quiet dir:$CODEBUILD_SRC_DIR/image docker://$targetImage
"""


def list_seed_000(ecr) -> tuple[list[dict[str, Any]], int]:
    """(the (repository, tag) pairs the 000 driver starts a build for, API calls made)."""
    calls = 1
    found = []
    for repository in ecr.describe_repositories()["repositories"]:
        calls += 1
        for image in ecr.describe_images(repositoryName=repository["repositoryName"])["imageDetails"]:
            if "imageTags" in image:
                found.append(
                    {
                        "repository": image["repositoryName"],
                        "digest": image["imageDigest"],
                        "tag": image["imageTags"][0],
                    }
                )
    return found, calls


def list_seed_003(ecr) -> tuple[list[dict[str, Any]], int]:
    """(the (repository, tag) pairs the 003 Lambda re-puts, API calls made for the listing)."""
    calls = 1
    found = []
    for repository in ecr.describe_repositories(maxResults=1000)["repositories"]:
        calls += 1
        answer = ecr.list_images(
            repositoryName=repository["repositoryName"], maxResults=1000, filter={"tagStatus": "TAGGED"}
        )
        for image in answer["imageIds"]:
            found.append(
                {"repository": repository["repositoryName"], "digest": image["imageDigest"], "tag": image["imageTag"]}
            )
    return found, calls


def coverage(catalog_images: list[dict[str, Any]], found: list[dict[str, Any]]) -> dict[str, int]:
    """What a seed listing misses of the catalog: images (repository+digest) and tags never reached."""
    reached_images = {(f["repository"], f["digest"]) for f in found}
    reached_tags = {(f["repository"], f["tag"]) for f in found}
    all_images = {(i["repository"], i["digest"]) for i in catalog_images}
    all_tags = {(i["repository"], t) for i in catalog_images for t in i["tags"]}
    untagged = {(i["repository"], i["digest"]) for i in catalog_images if not i["tags"]}
    indexes = {(i["repository"], i["digest"]) for i in catalog_images if i["kind"] == "index"}
    return {
        "images": len(all_images),
        "images_missed": len(all_images - reached_images),
        "untagged_missed": len(untagged - reached_images),
        "tagged_missed": len((all_images - untagged) - reached_images),
        "tags": len(all_tags),
        "tags_missed": len(all_tags - reached_tags),
        "indexes_reached": len(indexes & reached_images),
    }


class SeedDriver:
    """The 000 seed's driver loop: one ``StartBuild`` per (repository, tag), then wait for every build."""

    def __init__(self, codebuild, project: str = SEED_PROJECT, poll_interval: float = 2.0):
        self.codebuild = codebuild
        self.project = project
        self.poll_interval = poll_interval

    def start(self, work: list[dict[str, Any]]) -> list[str]:
        ids = []
        for item in work:
            response = self.codebuild.start_build(
                projectName=self.project,
                environmentVariablesOverride=[
                    {"name": "ECR_REPO_NAME", "value": item["repository"], "type": "PLAINTEXT"},
                    {"name": "ECR_REPO_TAG", "value": item["tag"], "type": "PLAINTEXT"},
                ],
            )
            ids.append(response["build"]["id"])
        return ids

    def wait(self, ids: list[str], timeout: float) -> list[dict[str, Any]]:
        deadline = time.time() + timeout
        final = {}
        while True:
            pending = [i for i in ids if i not in final]
            for start in range(0, len(pending), 100):
                for build in self.codebuild.batch_get_builds(ids=pending[start : start + 100])["builds"]:
                    if build["buildStatus"] != "IN_PROGRESS":
                        final[build["id"]] = build
            if len(final) == len(ids):
                return [final[i] for i in ids]
            if time.time() > deadline:
                raise TimeoutError(f"{len(ids) - len(final)} seed builds still running after {timeout:.0f}s")
            time.sleep(self.poll_interval)
