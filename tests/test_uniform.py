"""Exact sampler decisions below float32's 2⁻²⁴ spacing (graphvae.uniform)."""

import pytest
import torch

from graphvae import uniform as uni
from graphvae.models.sequential import inverse_cdf

N = 200_000


def _share(hits: torch.Tensor, p: float) -> None:
    """The share of hits is p within 5 binomial standard errors."""
    se = (p * (1 - p) / hits.numel()) ** 0.5
    assert abs(hits.double().mean().item() - p) < 5 * se


def test_an_edge_of_probability_1e9_is_drawn_at_its_rate_in_the_first_cell():
    """u = 0 stands for the cell [0, 2⁻²⁴). With p = 1e-9 inside it, the decision u < p was
    always True there (so P(edge) = 2⁻²⁴ ≈ 6e-8, 60× too often); refined, it holds with
    probability p / 2⁻²⁴ = 0.016777... within the cell, so P(edge) = 2⁻²⁴ · p · 2²⁴ = p."""
    p = torch.full((N,), 1e-9, dtype=torch.float32)
    g = torch.Generator().manual_seed(0)
    u = uni.refine(torch.zeros(N), p[:, None], g)
    assert ((u >= 0) & (u < uni.STEP)).all()
    _share(u < p, float(p[0]) * 2 ** 24)


def test_a_rare_last_option_is_drawn_at_its_rate_in_the_last_cell():
    """p = (1 − 1e-9, 1e-9) in float64: option 1 needs u ≥ 1 − 1e-9, inside the last cell
    [1 − 2⁻²⁴, 1); unrefined it was never drawn. Refined, within that cell it is drawn
    with probability 1e-9 · 2²⁴."""
    p = torch.tensor([1 - 1e-9, 1e-9], dtype=torch.float64).expand(N, 2)
    allowed = torch.ones(N, 2, dtype=torch.bool)
    top = torch.full((N,), 1 - uni.STEP, dtype=torch.float32)
    assert (inverse_cdf(p, top.double(), allowed) == 0).all()
    u = uni.refine(top, p.cumsum(-1), torch.Generator().manual_seed(1))
    _share(inverse_cdf(p, u, allowed) == 1, 1e-9 * 2 ** 24)


def test_cells_without_a_boundary_are_left_alone_and_draw_nothing():
    """Where no boundary lies inside the cell the draw is the float32 one and the generator
    is untouched, so seeded samples stay what they were; a boundary on a cell's edge is not
    inside it."""
    g = torch.Generator().manual_seed(2)
    before = g.get_state()
    u = torch.tensor([0.5, 0.25, 0.0], dtype=torch.float32)
    cuts = torch.tensor([[0.1, 0.9], [0.25, 0.25 + uni.STEP], [uni.STEP, 1.0]])
    out = uni.refine(u, cuts, g)
    assert out.dtype == torch.float64 and out.tolist() == [0.5, 0.25, 0.0]
    assert torch.equal(g.get_state(), before)


def test_bernoulli_keeps_float64_draws_and_refines_float32_ones(monkeypatch):
    """float64 probabilities are compared with float64 draws (as before); float32 ones go
    through refine: with every draw forced into the first cell, p = 3e-9 is drawn at the
    rate p · 2²⁴ there."""
    g = torch.Generator().manual_seed(3)
    p64 = torch.full((1000,), 0.5, dtype=torch.float64)
    ref = torch.rand(1000, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    assert torch.equal(uni.bernoulli(p64, g, torch.device("cpu")), ref < 0.5)
    monkeypatch.setattr(uni, "uniform", lambda shape, gen, where: torch.zeros(shape))
    p32 = torch.full((N,), 3e-9, dtype=torch.float32)
    _share(uni.bernoulli(p32, torch.Generator().manual_seed(4), torch.device("cpu")),
           float(p32[0]) * 2 ** 24)


@pytest.mark.parametrize("p", [0.3, 1e-3])
def test_bernoulli_rate_over_whole_draws(p):
    """Over ordinary draws the rate is p (the refinement changes nothing you could see)."""
    probs = torch.full((N,), p, dtype=torch.float32)
    _share(uni.bernoulli(probs, torch.Generator().manual_seed(5), torch.device("cpu")),
           float(probs[0]))


def test_uniform_draw_types_a_float64_draw_kept_and_a_tie_is_not_below(monkeypatch):
    """Off the CPU the draws are float64 (the meta device stands for any other device
    here, with no GPU); a float64 draw is already exact, so refine returns it as it is
    and leaves the generator where it was; an edge is drawn when u < p, so u = p = ½
    is no edge."""
    assert uni.uniform((3,), None, torch.device("meta")).dtype == torch.float64
    assert uni.uniform((3,), None, torch.device("cpu")).dtype == torch.float32
    g = torch.Generator().manual_seed(7)
    state = g.get_state()
    u = torch.tensor([0.25, 0.5], dtype=torch.float64)
    inside = torch.tensor([[0.25 + 2 ** -30], [0.5]], dtype=torch.float64)  # in 0.25's cell
    assert torch.equal(uni.refine(u, inside, g), u)
    assert torch.equal(g.get_state(), state)
    monkeypatch.setattr(torch, "rand", lambda shape, **kw: torch.full(shape, 0.5,
                                                                     dtype=kw["dtype"]))
    assert uni.bernoulli(torch.tensor([0.5, 0.75], dtype=torch.float64), None,
                         torch.device("cpu")).tolist() == [False, True]
