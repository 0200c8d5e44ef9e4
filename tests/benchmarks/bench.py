# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""``make bench``: copy the sandbox catalog four ways and compare them (issue 13).

From the same source to an empty destination each time, on a sandbox of its own (ports BENCH_BASE_PORT.., 27000):

1. ``strategy: codebuild`` and 2. ``strategy: local``: ``playbooks/provision.yml`` once, then
   ``playbooks/replicate.yml -e dest_region=... -e dest_account=... -e strategy=...``, what a user runs;
3. ``skopeo sync --all --preserve-digests``, repository by repository, as an operator would script it (destination
   repositories created first, one auth file, the repositories that failed synced again: ``BENCH_SYNC_PASSES``);
4. the seed approach: one build per tagged image, one tag, full pull and push (skopeo to a directory and back), one
   ``StartBuild`` per image (tests/benchmarks/seed_approach.py), on a subset of ``--seed-images`` images;
5. a no-op re-run of 1 and 2; plus a scaling series of 1, 2 and 3 at 100 and 300 images (``large`` profile).

Per run: wall time; builds and build seconds; blob bytes read from the source and written to the destination,
counted at the sandbox registry proxies (``/_sandbox/stats``), divided by the unique bytes the destination was
missing (per repository and blob); controller-side AWS API calls by operation (a counting proxy; the sandbox
CodeBuild's builds call the sandbox directly); the most manifest writes (PutImage) in one second in the destination
account+region; and a check of every digest and tag of the source in the destination.

Writes ``bench/results/<date>-<profile>.json``, ``.md`` (tables, with a modelled AWS cost for 1,000 images) and
``.png`` (wall time and bytes moved against images, per method).
"""

from __future__ import annotations

import argparse
import concurrent.futures
import datetime
import json
import math
import os
import platform
import shutil
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO_ROOT))
COLLECTIONS = REPO_ROOT / ".ansible" / "collections"
if str(COLLECTIONS) not in sys.path:
    sys.path.insert(0, str(COLLECTIONS))

from tests.benchmarks.conftest import table  # noqa: E402
from tests.benchmarks.seed_approach import SEED_BUILDSPEC  # noqa: E402
from tests.benchmarks.seed_approach import SeedDriver  # noqa: E402
from tests.sandbox import lifecycle  # noqa: E402
from tests.sandbox.call_counter import CountingProxy  # noqa: E402
from tests.sandbox.config import SandboxConfig  # noqa: E402
from tests.sandbox.fixtures import Sandbox  # noqa: E402
from tests.sandbox.fixtures import ensure_trusted_role  # noqa: E402
from tests.sandbox.fixtures import replace_codebuild_project  # noqa: E402

BASE_PORT = int(os.environ.get("BENCH_BASE_PORT", "27000"))
PROVISIONING_SECONDS = float(os.environ.get("BENCH_PROVISIONING_SECONDS", "2"))
CONCURRENCY = int(os.environ.get("BENCH_CONCURRENCY", "5"))
PUT_IMAGE_TPS = float(os.environ.get("BENCH_PUT_IMAGE_TPS", "10"))
# skopeo sync gives up on a repository when a throttled multi-arch index write makes it try a list type that
# --preserve-digests forbids (README, "How fast"): the operator's script syncs the failed repositories again.
SYNC_PASSES = int(os.environ.get("BENCH_SYNC_PASSES", "3"))
PROJECT = "ecr-replication"  # provision.yml's default
SEED_PROJECT = "bench-seed-replication"
SEED_BUILD_ROLE = "EcrBenchSeedBuild"
SEED_TARGET_ROLE = "EcrBenchSeedTarget"
LIST_OPERATIONS = ("DescribeRepositories", "DescribeImages", "ListImages")
# Cost model (published on-demand prices, us-east-1, 2026): CodeBuild general1.small per build minute, billed per
# started minute; provisioning 30-90 s per build on CodeBuild (60 s here); inter-region transfer per GB.
CODEBUILD_USD_PER_MINUTE = 0.005
PROVISIONING_MODEL_SECONDS = 60
TRANSFER_USD_PER_GB = 0.02
METHODS = ("codebuild", "local", "skopeo sync", "seed")


def log(message: str) -> None:
    print("bench: " + message, flush=True)


class Bench:
    def __init__(self, sandbox: Sandbox, work: Path, list_images: bool = True):
        self.sb = sandbox
        self.work = work
        self.counter = CountingProxy(int(sandbox.env["AWS_ENDPOINT_URL"].rsplit(":", 1)[1]), BASE_PORT + 90).start()
        self.ssl = ssl.create_default_context(cafile=str(sandbox.config.ca_bundle))
        self.source = sandbox.client("ecr")
        self.target = sandbox.client("ecr", "target", sandbox.dest_region)
        self.codebuild = sandbox.client("codebuild")
        self.images = self.listing(self.source) if list_images else {}
        self.env = sandbox.subprocess_env(
            ANSIBLE_COLLECTIONS_PATH=str(COLLECTIONS),
            ANSIBLE_LOCAL_TEMP=str(work / "ansible-tmp"),
            ANSIBLE_NOCOLOR="1",
            ANSIBLE_RETRY_FILES_ENABLED="0",
            PATH=str(Path(sys.executable).parent) + ":" + os.environ.get("PATH", "/usr/bin:/bin"),
        )
        self.dest = ["-e", "dest_region=" + sandbox.dest_region, "-e", "dest_account=" + sandbox.target_account]

    # -- the sandbox ---------------------------------------------------------------------------------------------
    @staticmethod
    def listing(ecr) -> dict:
        """{repository: {digest: [tags]}} of every image (untagged, index children and referrers included)."""
        found = {}
        for page in ecr.get_paginator("describe_repositories").paginate():
            for repo in page["repositories"]:
                images = found.setdefault(repo["repositoryName"], {})
                for ipage in ecr.get_paginator("list_images").paginate(repositoryName=repo["repositoryName"]):
                    for i in ipage["imageIds"]:
                        images.setdefault(i["imageDigest"], [])
                        if i.get("imageTag"):
                            images[i["imageDigest"]].append(i["imageTag"])
        return found

    def unique_bytes(self, ecr, images: dict) -> tuple:
        """(bytes of the distinct blobs of the registry, of each repository summed): what a copy into an empty
        registry must upload at least, with cross-repository blob mounts and without."""
        total, registry = 0, {}
        for repo, digests in images.items():
            blobs, todo, seen = {}, list(digests), set()
            while todo:
                chunk, todo = [d for d in todo[:100] if d not in seen], todo[100:]
                seen.update(chunk)
                if not chunk:
                    continue
                answer = ecr.batch_get_image(repositoryName=repo, imageIds=[{"imageDigest": d} for d in chunk])
                for image in answer["images"]:
                    manifest = json.loads(image["imageManifest"])
                    for blob in [manifest.get("config") or {}] + (manifest.get("layers") or []):
                        if blob.get("digest"):
                            blobs[blob["digest"]] = blob.get("size", 0)
                    todo.extend(m["digest"] for m in manifest.get("manifests") or [] if m["digest"] not in seen)
            total += sum(blobs.values())
            registry.update(blobs)
        return sum(registry.values()), total

    def stats(self, reset: bool = False, limit: float | None = None) -> dict:
        out = {}
        for side, account, region in (("source", self.sb.source_account, self.sb.source_region),
                                      ("target", self.sb.target_account, self.sb.dest_region)):
            endpoint = self.sb.config.registry(account, region).proxy_endpoint
            action = "/reset" if reset else "/limit?tps=%s" % limit if limit is not None and side == "target" else ""
            request = urllib.request.Request(endpoint + "/_sandbox/stats" + action, method="POST" if action else "GET")
            with urllib.request.urlopen(request, context=self.ssl, timeout=30) as response:
                out[side] = json.loads(response.read())
        return out

    def reset(self) -> None:
        self.sb.reset_target()
        # ECR forgets a deleted repository's layers; distribution keeps them on disk (and would answer the next
        # copy's blob checks with "present"): remove them, so every run starts from a really empty destination.
        for endpoint in self.sb.config.registries:
            if endpoint.account == self.sb.target_account:
                storage = self.sb.config.sandbox_dir / "registries" / endpoint.key / "data/docker/registry/v2"
                shutil.rmtree(storage / "repositories", ignore_errors=True)
                shutil.rmtree(storage / "blobs", ignore_errors=True)
        self.stats(reset=True)
        self.counter.reset()

    def builds(self, project: str) -> set:
        ids, token = [], None
        while True:
            answer = self.codebuild.list_builds_for_project(projectName=project, **({"nextToken": token} if token else {}))
            ids.extend(answer["ids"])
            token = answer.get("nextToken")
            if not token:
                return set(ids)

    def build_seconds(self, ids: list) -> float:
        total = 0.0
        for n in range(0, len(ids), 100):
            for build in self.codebuild.batch_get_builds(ids=ids[n : n + 100])["builds"]:
                total += sum(p.get("durationInSeconds", 0) for p in build.get("phases", [])
                             if p["phaseType"] not in ("SUBMITTED", "QUEUED"))
        return round(total, 1)

    def verify(self, repositories: list) -> dict:
        """Every image and tag of the source repositories, looked up in the destination."""
        dest = self.listing(self.target)
        missing_images = missing_untagged = missing_tags = wrong = 0
        for repo in repositories:
            have = dest.get(repo, {})
            tag_at = {t: d for d, tags in have.items() for t in tags}
            for digest, tags in self.images[repo].items():
                if digest not in have:
                    missing_images += 1
                    missing_untagged += 0 if tags else 1
                for tag in tags:
                    if tag not in tag_at:
                        missing_tags += 1
                    elif tag_at[tag] != digest:
                        wrong += 1
        expected = sum(len(self.images[r]) for r in repositories)
        return {"images": expected, "missing_images": missing_images, "missing_untagged": missing_untagged,
                "missing_tags": missing_tags, "wrong_tags": wrong, "complete": missing_images + missing_tags + wrong == 0,
                "unique_bytes_copied": self.unique_bytes(self.target, {r: dest.get(r, {}) for r in repositories})}

    # -- methods ---------------------------------------------------------------------------------------------------
    def playbook(self, *args: str, counted: bool = False) -> subprocess.CompletedProcess:
        env = dict(self.env, AWS_ENDPOINT_URL=self.counter.url) if counted else self.env
        cmd = [str(Path(sys.executable).with_name("ansible-playbook"))] + list(args)
        proc = subprocess.run(cmd, env=env, cwd=self.work, capture_output=True, text=True, timeout=3600, check=False)
        if proc.returncode < 0:  # killed from outside (a shared machine): the run says nothing, run it again
            log("playbook killed by signal %d, running it again" % -proc.returncode)
            proc = subprocess.run(cmd, env=env, cwd=self.work, capture_output=True, text=True, timeout=3600, check=False)
        if proc.returncode != 0:
            log("playbook failed (%d): %s" % (proc.returncode, (proc.stdout[-3000:] + proc.stderr[-2000:])))
        return proc

    def provision(self) -> None:
        # trust_caller: strategy local copies as the controller, which must then be able to assume the destination role.
        # concurrent_build_limit: the project allows what the sandbox account allows and replicate.yml's default
        # max_concurrent_builds (5) asks for; provision.yml's own default (2) would quietly lower it
        proc = self.playbook(str(REPO_ROOT / "playbooks/provision.yml"), *self.dest, "-e", "dest_profile=target",
                             "-e", "all_repositories=true", "-e", "trust_caller=true",
                             "-e", "concurrent_build_limit=%d" % CONCURRENCY)
        if proc.returncode != 0:
            raise SystemExit("provision.yml failed")
        sb = self.sb
        iam = sb.client("iam")
        ensure_trusted_role(iam, SEED_BUILD_ROLE, {"Service": "codebuild.amazonaws.com"})
        build_role = "arn:aws:iam::%s:role/%s" % (sb.source_account, SEED_BUILD_ROLE)
        trusted = {"AWS": [build_role, "arn:aws:iam::%s:root" % sb.source_account]}
        ensure_trusted_role(sb.client("iam", "target"), SEED_TARGET_ROLE, trusted)
        variables = {"dest_region": sb.dest_region, "dest_account": sb.target_account,
                     "dest_role": "arn:aws:iam::%s:role/%s" % (sb.target_account, SEED_TARGET_ROLE),
                     "src_account": sb.source_account, "src_registry": sb.registry_host("source"),
                     "dest_registry": sb.registry_host("target", sb.dest_region)}
        replace_codebuild_project(self.codebuild, SEED_PROJECT, SEED_BUILDSPEC, build_role, variables,
                                  timeoutInMinutes=60)

    def run_strategy(self, strategy: str, repositories: list, noop: bool = False) -> dict:
        before = self.builds(PROJECT)
        report = self.work / ("report-" + uuid.uuid4().hex[:8])
        started = time.time()
        proc = self.playbook(str(REPO_ROOT / "playbooks/replicate.yml"), *self.dest, "-e", "strategy=" + strategy,
                             "-e", json.dumps({"repositories": repositories}), "-e", "report_dir=" + str(report),
                             "-e", "poll_interval=1", counted=True)
        wall = time.time() - started
        new = sorted(self.builds(PROJECT) - before)
        return {"wall_seconds": round(wall, 1), "ok": proc.returncode == 0, "builds": len(new),
                "build_seconds": self.build_seconds(new)}

    def run_sync(self, repositories: list) -> dict:
        """What an operator scripts: create the destination repositories, log in once, one skopeo sync per
        repository, one after the other."""
        started = time.time()
        target = self.sb.client("ecr", "target", self.sb.dest_region)
        auths = {}
        for ecr in (self.source, target):
            data = ecr.get_authorization_token()["authorizationData"][0]
            auths[data["proxyEndpoint"].split("://", 1)[-1]] = {"auth": data["authorizationToken"]}
        src, dst = list(auths)
        authfile = self.work / "sync-auth.json"
        authfile.touch(mode=0o600)
        authfile.write_text(json.dumps({"auths": auths}))
        to_sync = [r for r in repositories if self.images[r]]  # skopeo sync fails on an empty repository
        for repo in to_sync:
            try:
                target.create_repository(repositoryName=repo)
            except target.exceptions.RepositoryAlreadyExistsException:
                pass

        def sync(repo: str) -> bool:
            parent = repo.rpartition("/")[0]  # skopeo sync keeps the last path component only
            proc = subprocess.run(
                # --retry-times: ECR throttles manifest writes over 10 a second (so does the bench's sandbox)
                ["skopeo", "sync", "--all", "--preserve-digests", "--retry-times", "8", "--src", "docker",
                 "--dest", "docker", "--authfile", str(authfile), "%s/%s" % (src, repo),
                 dst + ("/" + parent if parent else "")],
                env=self.env, capture_output=True, text=True, timeout=3600, check=False)
            if proc.returncode != 0:
                log("skopeo sync %s failed: %s" % (repo, proc.stderr.strip().splitlines()[-1:]))
            return proc.returncode == 0

        failed = until_done(to_sync, sync, SYNC_PASSES)
        authfile.unlink()
        return {"wall_seconds": round(time.time() - started, 1), "ok": not failed[-1], "builds": 0,
                "build_seconds": 0, "failed_repositories_per_pass": [len(names) for names in failed]}

    def run_seed(self, repositories: list) -> dict:
        work = [{"repository": r, "tag": tags[0]} for r in repositories for tags in self.images[r].values() if tags]
        before = self.builds(SEED_PROJECT)
        started = time.time()
        driver = SeedDriver(self.codebuild, SEED_PROJECT)
        builds = driver.wait(driver.start(work), timeout=3600)
        wall = time.time() - started
        new = sorted(self.builds(SEED_PROJECT) - before)
        return {"wall_seconds": round(wall, 1), "ok": all(b["buildStatus"] == "SUCCEEDED" for b in builds),
                "builds": len(new), "build_seconds": self.build_seconds(new)}

    def measure(self, method: str, repositories: list, noop: bool = False) -> dict:
        prepared = time.time()
        if not noop:
            self.reset()
        else:
            self.stats(reset=True)
            self.counter.reset()
        images = sum(len(self.images[r]) for r in repositories)
        log("%s%s: %d repositories, %d images" % (method, " (no-op re-run)" if noop else "", len(repositories), images))
        prepared = time.time() - prepared
        run = {"codebuild": lambda: self.run_strategy("codebuild", repositories, noop),
               "local": lambda: self.run_strategy("local", repositories, noop),
               "skopeo sync": lambda: self.run_sync(repositories),
               "seed": lambda: self.run_seed(repositories)}[method]()
        stats = self.stats()
        calls = self.counter.snapshot()
        checked = time.time()
        check = self.verify(repositories)
        checked = time.time() - checked
        unique, unique_per_repository = check.pop("unique_bytes_copied")
        written, read = stats["target"]["blob_bytes_written"], stats["source"]["blob_bytes_read"]
        run.update(method=method, noop=noop, repositories=len(repositories), images=images,
                   bytes_read=read, bytes_written=written, unique_missing_bytes=0 if noop else unique,
                   unique_missing_bytes_per_repository=0 if noop else unique_per_repository,
                   bytes_ratio=round(written / unique, 3) if unique and not noop else None,
                   put_peak_per_second=stats["target"]["manifest_puts_peak_per_second"],
                   put_peak_per_calendar_second=stats["target"]["manifest_puts_peak_per_calendar_second"],
                   manifest_puts=stats["target"]["manifest_puts"], api_calls=calls,
                   manifest_puts_throttled=stats["target"]["manifest_puts_throttled"],
                   list_calls=sum(n for op, n in calls.items() if op.split(":")[-1] in LIST_OPERATIONS),
                   verification=check)
        log("  %.1fs, %d builds, %s bytes written (ratio %s), PutImage peak %d/s, complete=%s (reset %.1fs, check %.1fs)"
            % (run["wall_seconds"], run["builds"], written, run["bytes_ratio"], run["put_peak_per_second"],
               check["complete"], prepared, checked))
        return run


def until_done(items: list, attempt, passes: int) -> list:
    """``attempt(item)`` for every item, then again for those it failed (returned False), up to ``passes`` passes in
    all, as a careful operator's script does; the items that failed in each pass made, in order."""
    failed, todo = [], list(items)
    for _pass in range(max(1, passes)):
        todo = [item for item in todo if not attempt(item)]
        failed.append(todo)
        if not todo:
            break
    return failed


def subsets(images: dict, sizes: list) -> dict:
    """{size: repositories}: whole repositories, round robin over name order, until ``size`` images.

    The catalog's stress repositories (more than ten times the median repository's images or tags: the ``large``
    profile's one image with 150 tags and 260 nightly builds) are left to the whole-catalog runs: in a subset of 100
    images, the 150 tags alone made it cost as much as 250 ordinary images, and the scaling series measured them."""
    def weight(name: str) -> int:
        return max(len(images[name]), sum(len(tags) for tags in images[name].values()))

    weights = sorted(weight(name) for name in images)
    ceiling = 10 * max(1, weights[len(weights) // 2]) if weights else 0
    names = sorted(name for name in images if weight(name) <= ceiling)
    order = names[::3] + names[1::3] + names[2::3]
    out = {}
    for size in sizes:
        chosen, total = [], 0
        for name in order:
            if total >= size:
                break
            chosen.append(name)
            total += len(images[name])
        out[size] = sorted(chosen)
    return out


def cost_model(runs: list) -> list:
    """Modelled AWS cost of 1,000 images per method, from the measured builds and build seconds per image."""
    rows = []
    for run in runs:
        if run["noop"] or run["method"] not in ("codebuild", "seed") or not run["images"]:
            continue
        per_image = run["build_seconds"] / run["images"]
        builds = math.ceil(run["builds"] * 1000 / run["images"])
        run_seconds = per_image * 1000 / builds
        minutes = builds * math.ceil((PROVISIONING_MODEL_SECONDS + run_seconds) / 60)
        gigabytes = run["bytes_written"] * 1000 / run["images"] / 1e9
        rows.append({"method": run["method"], "images_measured": run["images"], "builds_per_1000": builds,
                     "billed_minutes": minutes, "codebuild_usd": round(minutes * CODEBUILD_USD_PER_MINUTE, 2),
                     "transfer_usd": round(gigabytes * TRANSFER_USD_PER_GB, 4)})
    return rows


def resynced(run: dict) -> str:
    """What the table says of a skopeo sync run that had to sync failed repositories again (in its wall time)."""
    passes = run.get("failed_repositories_per_pass") or [0]
    if not passes[0]:
        return ""
    return "; %d failed %s synced again (%d passes%s)" % (
        passes[0], "repository" if passes[0] == 1 else "repositories", len(passes),
        ", %d still failed" % passes[-1] if passes[-1] else "")


def markdown(result: dict) -> str:
    main = [r for r in result["runs"] if r["repositories"] == result["all_repositories"] or r["method"] == "seed"]
    sync = next((r for r in main if r["method"] == "skopeo sync" and not r["noop"]), None)
    seed = next((r for r in main if r["method"] == "seed"), None)
    rows = []
    for r in main:
        v = r["verification"]
        left_out = "none" if v["complete"] else "%d images (%d untagged), %d tags" % (
            v["missing_images"], v["missing_untagged"], v["missing_tags"])
        left_out += resynced(r)
        per_image = r["wall_seconds"] / r["images"] if r["images"] else 0
        seed_per_image = seed["wall_seconds"] / seed["images"] if seed and seed["images"] else 0
        # the least time ECR's PutImage limit allows for the manifest writes this method made
        floor = r["manifest_puts"] / result["settings"]["put_image_tps"]
        rows.append([
            r["method"] + (" (no-op re-run)" if r["noop"] else ""), r["images"], r["wall_seconds"],
            "%.2f" % (r["wall_seconds"] / sync["wall_seconds"]) if sync and sync["wall_seconds"] and not r["noop"] else "",
            "%.1f (%.2f)" % (floor, r["wall_seconds"] / floor) if floor else "",
            "%.2f" % (per_image / seed_per_image) if seed_per_image and not r["noop"] else "",
            r["builds"], r["build_seconds"], r["bytes_written"], r["bytes_ratio"] if r["bytes_ratio"] is not None else "",
            "%s (%s)" % (r["manifest_puts"], r["manifest_puts_throttled"]), r["put_peak_per_calendar_second"],
            r["list_calls"], left_out])
    headers = ["method", "images", "wall s", "vs sync", "PutImage floor s (wall / floor)", "per image vs seed", "builds", "build s", "blob bytes written",
               "written / unique missing", "manifest writes (throttled)", "PutImage peak/s", "list calls", "left out"]
    scaling = [[r["method"] + resynced(r), r["images"], r["wall_seconds"], r["bytes_written"], r["bytes_ratio"]]
               for r in result["runs"] if not r["noop"] and r["method"] != "seed"]
    cost = [[c["method"], c["images_measured"], c["builds_per_1000"], c["billed_minutes"], c["codebuild_usd"],
             c["transfer_usd"]] for c in result["cost_1000_images"]]
    m = result["machine"]
    lines = [
        "# make bench: %s profile, %s" % (result["profile"], result["date"]),
        "",
        "Machine: %s, %s CPUs, load average %s at the start; sandbox CodeBuild: %s s provisioning, %s concurrent "
        "builds; manifest writes throttled at %s a second per account+region, as ECR's PutImage. Absolute seconds are "
        "the sandbox's; compare the ratios, measured in the same run. PutImage peak: the most manifest writes in "
        "one calendar second. PutImage floor: the method's manifest writes / %s a second, the least time the limit "
        "allows them (a method that bursts above the limit, and is throttled, can end under it)."
        % (m["platform"], m["cpus"], m["load_average"], PROVISIONING_SECONDS, CONCURRENCY,
           result["settings"]["put_image_tps"], result["settings"]["put_image_tps"]),
        "",
        table(headers, rows),
        "",
        "Targets: " + ", ".join("%s %s" % (k, "met" if v else "NOT met") for k, v in result["targets"].items()),
        "",
        "## Scaling",
        "",
        table(["method", "images", "wall s", "blob bytes written", "written / unique missing"], scaling),
        "",
        "## Modelled AWS cost of 1,000 images",
        "",
        "CodeBuild general1.small at $%s a minute, billed per started minute, %d s provisioning per build; "
        "inter-region transfer at $%s/GB (the sandbox's images are small: scale by your image sizes)." % (
            CODEBUILD_USD_PER_MINUTE, PROVISIONING_MODEL_SECONDS, TRANSFER_USD_PER_GB),
        "",
        table(["method", "measured on images", "builds", "billed minutes", "CodeBuild $", "transfer $"], cost),
    ]
    if result.get("overhead"):
        o = result["overhead"]
        lines += ["", "## Non-transfer time per image", "",
                  "Copy program alone, one copy at a time, %d images: (wall - the images' own copy time) / images; "
                  "the earlier programs' copy time: inside the first skopeo copy of each image.%s" % (
                      o["images"], " Carried from earlier runs (make bench BENCH_OVERHEAD=1 measures the current "
                      "program again)." if o.get("carried") else ""), "",
                  table(["program", "wall s", "transfer s", "non-transfer s per image"],
                        [[k, v["wall_seconds"], v["transfer_seconds"], v["overhead_per_image"]]
                         # oldest program first: each later one spends less outside transfer (the JSON sorts keys)
                         for k, v in sorted(o["programs"].items(), key=lambda p: -p[1]["overhead_per_image"])])]
    return "\n".join(lines) + "\n"


def plot(result: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    for method in METHODS:
        runs = sorted((r for r in result["runs"] if r["method"] == method and not r["noop"]), key=lambda r: r["images"])
        if not runs:
            continue
        x = [r["images"] for r in runs]
        left.plot(x, [r["wall_seconds"] for r in runs], marker="o", label=method)
        right.plot(x, [r["bytes_written"] / 1e6 for r in runs], marker="o", label=method)
    left.set(xlabel="images", ylabel="wall time (s)", title="wall time")
    right.set(xlabel="images", ylabel="blob MB written to the destination", title="bytes moved")
    for ax in (left, right):
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle("make bench, %s profile, %s" % (result["profile"], result["date"]))
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def targets(result: dict) -> dict:
    runs = [r for r in result["runs"] if r["repositories"] == result["all_repositories"]]
    get = {(r["method"], r["noop"]): r for r in runs}
    local, sync, cb = get.get(("local", False)), get.get(("skopeo sync", False)), get.get(("codebuild", False))
    out = {}
    if local and sync:
        out["local wall <= skopeo sync"] = local["wall_seconds"] <= sync["wall_seconds"] and local["verification"]["complete"]
    if cb:
        out["builds <= ceil(images/50)"] = cb["builds"] <= math.ceil(cb["images"] / 50)
    ratios = [r["bytes_ratio"] for r in (cb, local) if r and r["bytes_ratio"] is not None]
    out["bytes moved / unique missing <= 1.05"] = bool(ratios) and max(ratios) <= 1.05
    pages = result["listing_pages"]
    noops = [r for r in runs if r["noop"]]
    out["no-op: 0 builds, 0 blob bytes, list calls <= 2 x pages"] = bool(noops) and all(
        r["builds"] == 0 and r["bytes_written"] == 0 and r["list_calls"] <= 2 * pages for r in noops)
    out["PutImage <= 10/s (ours)"] = all(r["put_peak_per_calendar_second"] <= 10 and not r["manifest_puts_throttled"]
                                         for r in result["runs"] if r["method"] in ("codebuild", "local"))
    return out


# Measured by this bench on 2026-12-02 (bench/results/2026-12-02-large.json), same 46 images, one copy at a time: the
# programs before issue 13 and after its first part (skopeo). Run again with BENCH_BASELINE_BUILDSPEC=<file>.
EARLIER_OVERHEAD = {
    "before issue 13 (measured 2026-12-02)": {"wall_seconds": 97.7, "transfer_seconds": 12.0, "overhead_per_image": 1.863},
    "skopeo, issue 13 part 1 (measured 2026-12-02)": {
        "wall_seconds": 23.1,
        "transfer_seconds": 15.5,
        "overhead_per_image": 0.165,
    },
}
# The current program, by the last make bench that measured it (BENCH_OVERHEAD=1): carried when it is not measured.
LAST_OVERHEAD = {
    "own data plane (measured 2026-12-02 16:30 UTC)": {"wall_seconds": 24.3, "transfer_seconds": 23.3,
                                                       "overhead_per_image": 0.022},
}


def overhead(bench: Bench, repositories: list) -> dict:
    """Non-transfer time per image of the copy program, one copy at a time, run by the buildspec runner: (wall -
    the images' own copy time) / images. The copy time of an image is its RESULT line's ``seconds`` (blobs,
    manifests and tags; a program that runs skopeo (BENCH_BASELINE_BUILDSPEC) is timed by a skopeo wrapper, first
    copy of each digest). What is left: start, login, listing, manifests read, verification."""
    from ansible_collections.cloudops.ecr_replication.plugins.module_utils import batching
    from ansible_collections.cloudops.ecr_replication.plugins.module_utils.buildspec_runner import BuildspecRunner

    programs = {"current": (REPO_ROOT / "buildspec.yml").read_text()}
    baseline = os.environ.get("BENCH_BASELINE_BUILDSPEC")  # a file: measure that program too, side by side
    if baseline:
        programs = {"baseline (%s)" % Path(baseline).name: Path(baseline).read_text(), **programs}
    wrapper = bench.work / "timed-skopeo"
    timings = bench.work / "skopeo-times"
    # every copy with its source; the first copy of a source is the transfer, later ones (tags) are not
    wrapper.write_text('#!/bin/bash\nstart=$(date +%s.%N)\nskopeo "$@"\nrc=$?\n'
                       '[ "$1" = copy ] && echo "$start $(date +%s.%N) ${@: -2:1}" >> "$SKOPEO_TIMES"\nexit $rc\n')
    wrapper.chmod(0o755)
    images = [{"repository": r, "digest": d, "tags": t} for r in repositories for d, t in bench.images[r].items()]
    sb = bench.sb
    role = "arn:aws:iam::%s:role/ecr-replication-target" % sb.target_account
    out = {}
    for name, text in programs.items():
        bench.reset()
        timings.write_text("")
        env = dict(bench.env, REPL_SOURCE_REGION=sb.source_region, REPL_DEST_REGION=sb.dest_region,
                   REPL_DEST_ACCOUNT=sb.target_account, REPL_PARALLEL="1", REPL_SKOPEO=str(wrapper),
                   SKOPEO_TIMES=str(timings), AWS_REGION=sb.source_region, AWS_DEFAULT_REGION=sb.source_region,
                   **batching.split_env(batching.encode_batch(images)))
        if os.environ.get("ECR_REPLICATION_EXTERNAL_ID"):
            env.update(REPL_DEST_ROLE_ARN=role, REPL_EXTERNAL_ID=os.environ["ECR_REPLICATION_EXTERNAL_ID"])
        else:  # the target account's administrator role of the sandbox: no external ID
            env.update(REPL_DEST_ROLE_ARN=sb.env["SANDBOX_TARGET_ADMIN_ROLE_ARN"])
        lines = []
        started = time.time()
        result = BuildspecRunner(text, env, workdir=str(bench.work), build_id="overhead", sink=lines.append).run()
        wall = time.time() - started
        if "skopeo" in text.split("REPLICATOR_PY", 1)[-1]:
            first = {}
            for start, end, source in (line.split() for line in timings.read_text().splitlines()):
                first.setdefault(source, float(end) - float(start))
            transfer = sum(first.values())
        else:
            transfer = sum(json.loads(line.split(" ", 1)[1]).get("seconds", 0)
                           for line in lines if line.startswith("RESULT "))
        complete = bench.verify(repositories)["complete"]
        out[name] = {"wall_seconds": round(wall, 1), "transfer_seconds": round(transfer, 1), "status": result.status,
                     "complete": complete, "overhead_per_image": round((wall - transfer) / len(images), 3)}
        log("overhead %s: %s" % (name, out[name]))
    return {"images": len(images), "programs": dict(EARLIER_OVERHEAD, **out)}


def overhead_only(args) -> int:
    result = json.loads(Path(args.render).read_text())
    work = Path(tempfile.mkdtemp(prefix="ecr-bench-"))
    config = SandboxConfig(work / "sandbox", BASE_PORT)
    try:
        bench = Bench(Sandbox(config, lifecycle.start(config, result["profile"], timeout=300), result["profile"]), work)
        bench.provision()
        total = sum(len(v) for v in bench.images.values())
        result["overhead"] = overhead(bench, subsets(bench.images, [min(40, total)])[min(40, total)])
    finally:
        lifecycle.stop(config)
    Path(args.render).write_text(json.dumps(result, indent=1, sort_keys=True) + "\n")
    shutil.rmtree(work, ignore_errors=True)
    render(Path(args.render))
    return 0


def render(path: Path) -> None:
    """The .md and .png of a run's .json (targets evaluated again)."""
    result = json.loads(path.read_text())
    result["targets"] = targets(result)
    path.write_text(json.dumps(result, indent=1, sort_keys=True) + "\n")
    path.with_suffix(".md").write_text(markdown(result))
    plot(result, path.with_suffix(".png"))
    print(markdown(result))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument("--profile", choices=("small", "large"), default="large")
    parser.add_argument("--out", default=str(REPO_ROOT / "bench" / "results"))
    parser.add_argument("--seed-images", type=int, default=int(os.environ.get("BENCH_SEED_IMAGES", "12")))
    parser.add_argument("--no-overhead", action="store_true", help="skip the non-transfer time measurement")
    parser.add_argument("--methods", default="skopeo sync,local,codebuild",
                        help="comma-separated subset of the whole-catalog methods (a quick look at one of them)")
    parser.add_argument("--no-scaling", action="store_true", help="skip the 100 and 300 image series")
    parser.add_argument("--render", metavar="JSON", help="only write the .md and .png of an earlier run's .json")
    parser.add_argument("--overhead-only", action="store_true", help="with --render: measure the non-transfer time "
                        "again (its own sandbox) and put it in that .json")
    args = parser.parse_args()
    if args.render and args.overhead_only:
        return overhead_only(args)
    if args.render:
        render(Path(args.render))
        return 0
    work = Path(tempfile.mkdtemp(prefix="ecr-bench-"))
    config = SandboxConfig(work / "sandbox", BASE_PORT)
    os.environ.update(SANDBOX_CODEBUILD_PROVISIONING_SECONDS=str(PROVISIONING_SECONDS),
                      SANDBOX_CODEBUILD_CONCURRENCY=str(CONCURRENCY), SANDBOX_CODEBUILD_QUEUE_LIMIT="5000")
    started = time.time()
    load = " / ".join("%.1f" % x for x in os.getloadavg())
    log("starting a %s sandbox on 127.0.0.1:%d (%s)" % (args.profile, BASE_PORT, work))
    try:
        env = lifecycle.start(config, "none", timeout=300)
        bench = Bench(Sandbox(config, env, profile=args.profile), work, list_images=False)
        # Seeding (the registries) and provision.yml (IAM, CodeBuild, SSM) share nothing: side by side, a minute less
        seeding = concurrent.futures.ThreadPoolExecutor(1).submit(lifecycle.seed, config, args.profile, env)
        bench.provision()
        seeding.result()
        bench.images = bench.listing(bench.source)
        log("sandbox started, seeded and provisioned in %.1fs" % (time.time() - started))
        # ECR's PutImage limit, enforced in the destination once seeding is done: a method that writes manifests
        # faster pays for it in retries, as it would on AWS
        bench.stats(limit=PUT_IMAGE_TPS)
        everything = sorted(bench.images)
        total = sum(len(v) for v in bench.images.values())
        sizes = [s for s in (100, 300) if s < total] if args.profile == "large" and not args.no_scaling else []
        methods = [m for m in ("skopeo sync", "local", "codebuild") if m in args.methods.split(",")]
        runs = []
        for method in methods:
            runs.append(bench.measure(method, everything))
            if method != "skopeo sync":
                runs.append(bench.measure(method, everything, noop=True))
        for size, repositories in subsets(bench.images, sizes).items():
            for method in methods:
                runs.append(bench.measure(method, repositories))
        if args.seed_images > 0:  # 0: without the seed's builds (CI)
            seed_repositories = subsets(bench.images, [min(args.seed_images, total)])[min(args.seed_images, total)]
            runs.append(bench.measure("seed", seed_repositories))
        pages = math.ceil(len(everything) / 1000) + sum(max(1, math.ceil(len(v) / 1000)) for v in bench.images.values())
        result = {
            "profile": args.profile,
            "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "load_average": load,
                        "python": platform.python_version(),
                        "skopeo": subprocess.run(["skopeo", "--version"], capture_output=True, text=True, check=False).stdout.strip()},
            "settings": {"provisioning_seconds": PROVISIONING_SECONDS, "concurrent_builds": CONCURRENCY,
                         "put_image_tps": PUT_IMAGE_TPS},
            "all_repositories": len(everything), "images": total, "listing_pages": pages, "runs": runs,
        }
        if not args.no_overhead:
            small = subsets(bench.images, [min(40, total)])[min(40, total)]
            result["overhead"] = overhead(bench, small)
        elif args.profile == "large":
            result["overhead"] = {"images": 46, "programs": dict(EARLIER_OVERHEAD, **LAST_OVERHEAD), "carried": True}
        result["cost_1000_images"] = cost_model(runs)
        result["targets"] = targets(result)
        result["seconds"] = round(time.time() - started)
    finally:
        lifecycle.stop(config)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    stem = out / ("%s-%s" % (datetime.date.today().isoformat(), args.profile))
    stem.with_suffix(".json").write_text(json.dumps(result, indent=1, sort_keys=True) + "\n")
    stem.with_suffix(".md").write_text(markdown(result))
    plot(result, stem.with_suffix(".png"))
    print(markdown(result))
    log("wrote %s.{json,md,png} in %d s" % (stem, result["seconds"]))
    shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
