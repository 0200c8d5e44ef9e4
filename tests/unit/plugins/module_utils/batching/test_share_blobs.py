# Copyright: Contributors to the cloudops.ecr_replication project
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""batching.share_blobs: the blobs several batches need are uploaded by one first batch, and the batches after it
are told where to mount them from (issue 13: bytes written / unique bytes missing <= 1.05)."""

from __future__ import annotations

import math

from ansible_collections.cloudops.ecr_replication.plugins.module_utils import batching

BASES = {name: {"sha256:" + name * 64: 1000 * (n + 1), "sha256:" + name.upper() * 0 + name * 63 + "0": 10}
         for n, name in enumerate("abc")}


def digest(n):
    return "sha256:" + ("%064x" % n)


def catalog(count=120, repos=12):
    """``count`` images in ``repos`` repositories; image n sits on base 'abc'[n % 3] plus a unique layer."""
    images, blobs = [], {}
    for n in range(count):
        image = {"repository": "team/app-%02d" % (n % repos), "digest": digest(n), "tags": ["v%d" % n]}
        images.append(image)
        blobs[(image["repository"], image["digest"])] = dict(BASES["abc"[n % 3]], **{digest(10000 + n): 5})
    return batching.build_batches(batching.normalize_images(images), 10), blobs


def uploads(batches, blobs):
    """Blob bytes a run uploads where each batch is a build, as the copy program works: a blob already in the
    image's repository is not sent; a hinted one is mounted (an earlier batch must have put it there); else one
    upload per build (the others repositories of the build mount it)."""
    where, bytes_written = set(), 0
    for batch in batches:
        hints = {}
        for image in batch:
            hints.update(image.get("mounts") or {})
        sent = set()
        for image in batch:
            for blob, size in blobs[(image["repository"], image["digest"])].items():
                if (image["repository"], blob) in where:
                    continue
                if blob in hints:
                    assert (hints[blob], blob) in where, "a mount hint names a repository without the blob"
                elif blob not in sent:
                    bytes_written += size
                    sent.add(blob)
        for image in batch:
            where.update((image["repository"], blob) for blob in blobs[(image["repository"], image["digest"])])
    return bytes_written


def test_without_sharing_every_batch_uploads_the_bases_again():
    batches, blobs = catalog()
    unique = sum({b: s for need in blobs.values() for b, s in need.items()}.values())
    assert uploads(batches, blobs) > 2 * unique  # what the plan below saves


def test_the_first_batch_brings_the_shared_blobs_and_the_others_mount_them():
    batches, blobs = catalog()
    planned, pioneer = batching.share_blobs(batches, blobs, 10)
    assert pioneer
    first = {b for image in planned[0] for b in blobs[(image["repository"], image["digest"])]}
    assert all(b in first for base in BASES.values() for b in base)
    unique = sum({b: s for need in blobs.values() for b, s in need.items()}.values())
    assert uploads(planned, blobs) == unique
    # every image once, builds within ceil(images / batch_size), each batch within the size
    flat = [(i["repository"], i["digest"]) for b in planned for i in b]
    assert sorted(flat) == sorted(blobs) and len(flat) == len(set(flat))
    assert len(planned) <= math.ceil(120 / 10) and all(len(b) <= 10 for b in planned)
    # the hints travel in the batch encoding, to the program
    mounts = {}
    decoded = batching.decode_batch(batching.encode_batch(planned[3]), mounts)
    assert [(i["repository"], i["digest"]) for i in decoded] == [(i["repository"], i["digest"]) for i in planned[3]]
    assert mounts and all(repo in {i["repository"] for i in planned[0]} for repo in mounts.values())


def test_the_pioneer_is_small_when_a_further_build_is_allowed():
    batches, blobs = catalog(count=95)  # 10 batches; ceil(95/10) = 10, the pioneer of 3 makes 1 + 10 > 10
    planned, _pioneer = batching.share_blobs(batches, blobs, 10)
    assert len(planned) <= 10
    batches, blobs = catalog(count=91)  # ceil(91/10) = 10; 1 + ceil(88/10) = 10: room for a pioneer of its own
    planned, _pioneer = batching.share_blobs(batches, blobs, 10)
    assert len(planned[0]) == 3 and len(planned) == 10


def test_one_batch_or_nothing_shared_changes_nothing():
    batches, blobs = catalog(count=10)
    assert batching.share_blobs(batches, blobs, 10) == (batches, False)
    batches, blobs = catalog()
    alone = {key: {digest(20000 + n): 5} for n, key in enumerate(blobs)}
    planned, pioneer = batching.share_blobs(batches, alone, 10)
    assert not pioneer and planned == batches


def test_decoding_without_mounts_keeps_the_old_shape():
    text = batching.encode_batch([{"repository": "a", "digest": digest(1), "tags": []}])
    mounts = {}
    assert batching.decode_batch(text, mounts) == [{"repository": "a", "digest": digest(1), "tags": []}]
    assert mounts == {}


def test_without_billed_builds_the_pioneer_holds_only_what_brings_shared_blobs():
    # strategy local: no build is billed, so the first batch (which the others wait for) stays as small as it can
    batches, blobs = catalog(count=95)
    planned, pioneer = batching.share_blobs(batches, blobs, 10, keep_count=False)
    assert pioneer and len(planned[0]) == 3 and len(planned) == 11
    assert uploads(planned, blobs) == sum({b: s for need in blobs.values() for b, s in need.items()}.values())
