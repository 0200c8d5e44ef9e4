# Copyright: Contributors to the cloudops.ecr_replication project
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The sandbox's fault injector and the journal checks the fault tests rely on: each check must find what it is
there to find (a tag written before its blobs, a blob uploaded twice), or the fault tests would prove nothing."""

from __future__ import annotations

import threading

import pytest

from tests.sandbox.faults import FaultConfigError
from tests.sandbox.faults import FaultInjector
from tests.sandbox.faults import check_write_order
from tests.sandbox.faults import duplicate_uploads
from tests.sandbox.faults import manifest_refs

REG = "222222222222-ap-northeast-2"


def _entry(seq, kind, how, digest, tag=None, refs=(), repository="r", registry=REG):
    return {
        "seq": seq,
        "registry": registry,
        "kind": kind,
        "how": how,
        "repository": repository,
        "digest": digest,
        "tag": tag,
        "refs": list(refs),
    }


def test_write_order_accepts_blobs_then_children_then_the_tagged_index():
    journal = [
        _entry(0, "blob", "upload", "sha256:c1"),
        _entry(1, "blob", "exists", "sha256:l1"),  # already there: HEAD 200
        _entry(2, "manifest", "push", "sha256:m1", refs=["sha256:c1", "sha256:l1"]),
        _entry(3, "manifest", "push", "sha256:idx", tag="1.0", refs=["sha256:m1"]),
        _entry(4, "manifest", "put_image", "sha256:idx", tag="latest", refs=["sha256:m1"]),
    ]
    assert check_write_order(journal) == []


@pytest.mark.parametrize(
    "journal",
    [
        # the tag before the layer it needs
        [_entry(0, "blob", "upload", "sha256:c1"),
         _entry(1, "manifest", "push", "sha256:m1", tag="1.0", refs=["sha256:c1", "sha256:l1"]),
         _entry(2, "blob", "upload", "sha256:l1")],
        # the index tagged before its child manifest
        [_entry(0, "manifest", "put_image", "sha256:idx", tag="1.0", refs=["sha256:m1"]),
         _entry(1, "manifest", "push", "sha256:m1", refs=[])],
        # the blob is in another repository (or registry): not in place for this one
        [_entry(0, "blob", "upload", "sha256:l1", repository="other"),
         _entry(1, "manifest", "push", "sha256:m1", tag="x", refs=["sha256:l1"])],
    ],
)  # fmt: skip
def test_write_order_finds_a_tag_written_before_what_it_refers_to(journal):
    assert len(check_write_order(journal)) == 1


def test_duplicate_uploads_counts_only_blobs_written_twice_into_one_repository():
    journal = [
        _entry(0, "blob", "upload", "sha256:a"),
        _entry(1, "blob", "exists", "sha256:a"),  # a check, not work
        _entry(2, "blob", "upload", "sha256:a", repository="other"),  # another repository: its own copy
        _entry(3, "blob", "upload", "sha256:b"),
        _entry(4, "blob", "mount", "sha256:b"),  # the same blob again
    ]
    assert duplicate_uploads(journal) == {f"{REG} r@sha256:b": 2}


def test_manifest_refs_of_an_image_and_an_index():
    image = {"config": {"digest": "sha256:c"}, "layers": [{"digest": "sha256:l1"}, {"digest": "sha256:l2"}]}
    index = {"manifests": [{"digest": "sha256:m1"}, {"digest": "sha256:m2"}]}
    assert manifest_refs(image) == ["sha256:c", "sha256:l1", "sha256:l2"]
    assert manifest_refs(index) == ["sha256:m1", "sha256:m2"]


@pytest.mark.parametrize(
    "settings",
    [{"apis": {}}, {"api": {"PutImage": {"frist": 1}}}, {"registry": {"target": {"dwon": True}}},
     {"codebuild": {"fial": 1}}, {"token_ttl_seconds": 0}],
)  # fmt: skip
def test_a_misspelt_fault_is_refused_rather_than_testing_nothing(settings):
    with pytest.raises(FaultConfigError):
        FaultInjector().configure(settings)


def test_the_first_n_calls_fail_exactly_n_times_across_threads():
    faults = FaultInjector(rand=lambda: 1.0)
    faults.configure({"api": {"PutImage": {"first": 5}}})
    answers = []

    def call():
        for _attempt in range(20):
            answers.append(faults.api_fault("PutImage"))

    threads = [threading.Thread(target=call) for _thread in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    hits = [a for a in answers if a]
    assert len(hits) == 5 and hits[0] == (400, "ThrottlingException", "Rate exceeded")
    assert faults.snapshot()["injected"] == {"api PutImage ThrottlingException": 5}
    assert faults.api_fault("DescribeImages") is None  # an operation no fault names


def test_registry_faults_by_alias_method_and_kind():
    faults = FaultInjector(aliases={"target": REG}, rand=lambda: 1.0)
    faults.configure({"registry": {"target": {"blob_errors": 1, "status": 500, "methods": ["PUT"],
                                              "blob_resets": 1, "delay_seconds": 0.5}}})  # fmt: skip
    assert faults.registry_fault("other", "GET", blob=True) is None
    assert faults.registry_fault(REG, "GET", blob=False) is None  # not a blob: /v2/, manifests
    assert faults.registry_fault(REG, "PUT", blob=True) == {"delay": 0.5, "error": 500}
    assert faults.registry_fault(REG, "PUT", blob=True) == {"delay": 0.5}  # the one error was used
    assert faults.registry_fault(REG, "GET", blob=True) == {"delay": 0.5, "reset": True}
    assert faults.registry_fault(REG, "GET", blob=True) == {"delay": 0.5}
    faults.configure({"registry": {"*": {"down": True}}})
    assert faults.registry_fault(REG, "GET", blob=False) == {"error": 503}
    faults.configure({})
    assert faults.registry_fault(REG, "GET", blob=True) is None and faults.snapshot()["injected"] == {}


def test_codebuild_faults_are_used_once_each_and_the_token_lifetime_follows_the_setting():
    from tests.sandbox.ecr import TOKEN_LIFETIME_SECONDS
    from tests.sandbox.ecr import TokenAuthority

    faults = FaultInjector()
    tokens = faults.token_authority = TokenAuthority()
    faults.configure({"codebuild": {"queue_full": 1, "stop": 1, "stop_after": 2}, "token_ttl_seconds": 3})
    assert faults.take_queue_full() and not faults.take_queue_full()
    assert faults.take_build_fault() == ("stop", 2.0) and faults.take_build_fault() is None
    _password, expires = tokens.issue("1", "r", now=100.0)
    assert expires == 103.0
    faults.configure({})
    assert tokens.issue("1", "r", now=100.0)[1] == 100.0 + TOKEN_LIFETIME_SECONDS
