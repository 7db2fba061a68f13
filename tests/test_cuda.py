"""Paths only a GPU exercises, skipped without CUDA (the suite never needs one).

Each was found by reading the code against torch's device rules, with no GPU at hand:
constants built on the CPU meeting a CUDA model, and random draws made on a device other
than their generator's (``graphvae.devices.draw_device``: draws are made on the
generator's device, then moved). On a GPU machine these tests check the fixes; here they
are skipped. Before that, each was run under a CPU simulation of torch's device rules
(tensors tagged as CUDA, raising where torch raises; not part of the suite): every test
failed on the code before the fix and passed after it.
"""

from __future__ import annotations

import pytest
import torch

from graphvae.adjacency import Adjacency

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")

CUDA = torch.device("cuda")


def _cycle(n: int) -> torch.Tensor:
    i = torch.arange(n)
    ring = torch.stack([i, (i + 1) % n])
    return torch.cat([ring, ring.flip(0)], 1)


@pytest.mark.parametrize("objective", ["matched", "permutation", "plain"])
def test_graphvae_bounds_on_cuda_equal_the_cpu_ones(objective):
    """Max-pooling matching built its constants on the CPU (every matched step failed on
    CUDA), and a typed graph's types stayed on the CPU in ``pad``."""
    from graphvae.models.graphvae import GraphVAE
    torch.manual_seed(0)
    model = GraphVAE(3, 6, latent_channels=4, hidden_channels=(8,), decoder_hidden=(16,),
                     node_types=3, edge_types=2, objective=objective, num_perms=2)
    n = 5
    ei = _cycle(n)
    x, nt, et = torch.randn(n, 3), torch.randint(3, (n,)), torch.randint(2, (ei.size(1),))
    values = []
    for dev in ("cpu", "cuda"):
        m = model.to(dev)
        adj = Adjacency(ei.to(dev), n)
        perms = m.training_permutations(x.to(dev), adj, torch.Generator().manual_seed(1))
        est = m.bound(x.to(dev), adj, perms, nt, et, eps=torch.zeros(1, 4, device=dev))
        values.append(est.value.item())
    assert values[1] == pytest.approx(values[0], abs=1e-4)


@pytest.mark.parametrize("gen_device", ["cpu", "cuda"])
def test_samplers_on_cuda_take_a_generator_of_either_device(gen_device):
    """The one-shot and sequential samplers drew graph sizes on the CPU whatever the
    generator's device; the permutations and the mini-batch draws on the data's device."""
    from graphvae.models import build_model
    from graphvae.models.oneshot import EquivariantGraphVAE
    from graphvae.models.sequential import SequentialGraphVAE
    from graphvae.permutations import random_permutations
    from graphvae.tasks.features import identity_features
    from graphvae.training import PairBatches

    def gen():
        return torch.Generator(device=gen_device).manual_seed(0)

    torch.manual_seed(0)
    for cls in (EquivariantGraphVAE, SequentialGraphVAE):
        model = cls(3, [0, 1, 2, 1], latent_channels=3, hidden_channels=(8,)).to(CUDA)
        graphs = model.sample(4, gen(), CUDA)
        assert len(graphs) == 4
    assert random_permutations(5, 3, gen()).device.type == "cpu"
    n = 12
    adj = Adjacency(_cycle(n).to(CUDA), n)
    vgae = build_model("vgae", n).to(CUDA)
    x = identity_features(n).to(CUDA)
    assert torch.isfinite(vgae.bound(x, adj, generator=gen()).value).all()
    loader = PairBatches(vgae, x, adj, 5, steps=0)
    steps = list(loader.batches(0, gen()))
    assert sum(b.pairs.pos.size(1) for b in steps) == loader.pairs.size(1)


def test_vector_model_on_cuda_takes_cpu_rows_and_a_cpu_generator():
    """``train_vector`` left CPU rows on the CPU for a CUDA model, and ``sample(mean=False)``
    drew on the model's device with the caller's generator."""
    from graphvae.vector.models import build_vector_model
    from graphvae.vector.train import estimate_nll
    torch.manual_seed(0)
    model = build_vector_model("vae", 6, likelihood="bernoulli").to(CUDA)
    rows = (torch.rand(8, 6) < 0.5).double()
    assert estimate_nll(model, rows, num_samples=10) > 0
    draws = model.sample(3, torch.Generator().manual_seed(0), mean=False)
    assert draws.device.type == "cuda" and set(draws.unique().tolist()) <= {0.0, 1.0}
