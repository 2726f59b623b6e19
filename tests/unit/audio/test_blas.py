"""BLAS runs on one thread inside ``one_blas_thread``, and gets its own limit back after."""

from __future__ import annotations

import threading

from threadpoolctl import threadpool_info

from shared.audio.blas import one_blas_thread


def blas_threads() -> set[int]:
    return {pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas"}


def test_one_thread_inside_and_the_original_limit_after_the_last_caller_leaves():
    before = blas_threads()
    assert before  # numpy's OpenBLAS is loaded
    first_in, second_out = threading.Event(), threading.Event()
    seen: list[set[int]] = []

    def second() -> None:
        first_in.wait()
        with one_blas_thread():
            seen.append(blas_threads())
        second_out.set()

    worker = threading.Thread(target=second)
    worker.start()
    with one_blas_thread():
        first_in.set()
        second_out.wait(5)  # the second caller came and went while the first is inside
        seen.append(blas_threads())
    worker.join(5)
    assert seen == [{1}, {1}]
    assert blas_threads() == before
