"""Tiny named graphs shared by the tests (undirected, both directions stored)."""

import pytest
import torch

from graphvae.graph import to_simple_undirected


def undirected(pairs, n):
    return to_simple_undirected(torch.tensor(pairs, dtype=torch.long).t(), n)


@pytest.fixture
def triangle():
    return undirected([(0, 1), (1, 2), (0, 2)], 3)


@pytest.fixture
def path3():
    return undirected([(0, 1), (1, 2)], 3)


@pytest.fixture
def star5():
    """Centre 0 joined to leaves 1..4."""
    return undirected([(0, 1), (0, 2), (0, 3), (0, 4)], 5)


def random_graph(n, p, seed):
    g = torch.Generator().manual_seed(seed)
    upper = torch.triu(torch.rand(n, n, generator=g) < p, diagonal=1)
    return to_simple_undirected(upper.nonzero().t(), n)
