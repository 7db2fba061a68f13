"""Intra-op threads that fit the work (graphvae.threads)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from graphvae import threads


@pytest.fixture
def two_threads():
    """Start from two threads (the autouse fixture set one), whatever the machine."""
    torch.set_num_threads(2)
    yield


def test_small_work_runs_on_one_thread_and_large_work_is_left_alone(two_threads):
    with threads.threads_for(threads.SMALL_WORK - 1) as n:
        assert n == torch.get_num_threads() == 1
    assert torch.get_num_threads() == 2
    with threads.threads_for(threads.SMALL_WORK) as n:
        assert n == torch.get_num_threads() == 2
    with threads.threads_for(1, "meta") as n:         # not the CPU: left alone
        assert n == 2


def test_large_work_takes_back_the_threads_a_block_set_aside(two_threads):
    with threads.large_work() as n:                 # outside a block: nothing changes
        assert n == 2
    torch.set_num_threads(1)                        # a caller that chose one thread keeps it
    with threads.large_work() as n:
        assert n == 1
    torch.set_num_threads(2)
    with threads.threads_for(10):
        with threads.large_work() as n:
            assert n == torch.get_num_threads() == 2
        assert torch.get_num_threads() == 1          # the block's one thread again
        with threads.threads_for(10), threads.large_work() as n:
            assert n == 1                            # the inner block replaced one thread
    assert torch.get_num_threads() == 2 and threads._REPLACED == []


def test_fcd_runs_as_large_work(two_threads, monkeypatch):
    seen = []

    class FakeFcd:
        @staticmethod
        def load_ref_model():
            return None

        @staticmethod
        def get_predictions(model, smiles, device):
            seen.append(torch.get_num_threads())
            return np.arange(2.0 * len(smiles)).reshape(-1, 2)

        @staticmethod
        def calculate_frechet_distance(mu1, sigma1, mu2, sigma2):
            return 1.5

    from graphvae.chem import scores
    monkeypatch.setattr(scores, "require_fcd", lambda: FakeFcd)
    monkeypatch.setattr(scores, "_REFERENCE", None)
    with threads.threads_for(10):
        assert scores.fcd_score(["C", "CC"], ["O", "CO"]) == 1.5
        assert torch.get_num_threads() == 1
    assert seen == [2, 2]                            # the reference, then the samples
