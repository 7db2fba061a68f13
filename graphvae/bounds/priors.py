"""Priors over latents ``p(z)``: the seam where a learned prior goes.

A prior is a small :class:`torch.nn.Module` (so that a learned one trains and moves
with its model, and the standard normal adds nothing to a state dict) with

* ``log_prob(z)``: ``log p(z)`` summed over the last dimension (one value per row);
* ``sample(shape, generator)``: draws of shape ``shape`` (the last entry is the latent
  width);
* ``kl(q)``: ``KL(q ‖ p)`` per row in closed form, or ``None`` when there is none —
  the bounds then use the Monte-Carlo estimate ``E_q[log q(z) − log p(z)]`` on their
  own draws of ``z`` (:meth:`graphvae.bounds.DiagGaussian.kl_to`), and say so.

Every prior also gives ``set_log_prob(Z, mask)`` (one value per graph; by default the sum
of the rows' ``log_prob``) and ``sample_set(n, dim, generator)``, the calls that
``oneshot-vae`` and ``seq-vae`` make. A :class:`SetPrior` is over the *set* of a graph's
node latents, whose rows are not independent, and has only those two (its ``log_prob`` and
``sample`` are refused): :class:`SetMixturePrior` is one whose nodes depend on each
other through a graph-level latent, :class:`ExemplarPrior` the training graphs' aggregate
posterior (a VampPrior whose pseudo-inputs are the training set).

Models own their prior (``model.prior``) and hand it to the bounds. The standard
normal ``N(0, I)`` is :class:`StandardNormal`, written here once: ``log N(z | 0, I) =
−½ Σ_j (z_j² + log 2π)`` and, for ``q = N(μ, diag σ²)``, ``KL(q ‖ N(0, I)) = ½ Σ_j
(μ_j² + σ_j² − 1 − log σ_j²)`` (Kingma & Welling, ICLR 2014, appendix B).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn

from graphvae.checks import MAX_INT
from graphvae.devices import draw_device
from graphvae.errors import quote

LOG_2PI = math.log(2 * math.pi)


def kl_standard_normal(loc: Tensor, logvar: Tensor) -> Tensor:
    """``KL(N(loc, diag e^l) ‖ N(0, I))`` summed over the last dimension:
    ``½ Σ (loc² + e^l − 1 − l)``, with ``e^l − 1 − l`` as its Taylor series to ``l⁷``
    where ``|l| < 0.1`` (truncation error below 1e-10 relative) and as ``expm1(l) − l``
    elsewhere. Written as ``exp(l) − 1 − l``, a coordinate whose posterior is near the
    prior (collapsed dimensions) lost its digits in float32 — 3× too large at ``l =
    1e-4``, negative at ``l = 1e-6`` — and a graph's nodes × dimensions add such errors up;
    ``expm1`` alone still leaves a relative error of about ``1e-7 / |l|``.

    The excess keeps only ``l`` for the backward pass, which recomputes the rest (the same
    operations, so the same gradient to the bit): autograd kept the series' dozen
    intermediates, each the size of the latents (0.55 GB more at the peak of a 10⁶-node
    link-prediction run)."""
    return 0.5 * (loc.pow(2) + _ExpExcess.apply(logvar)).sum(-1)


def _exp_excess(logvar: Tensor) -> Tensor:
    """``e^l − 1 − l`` elementwise, as :func:`kl_standard_normal` says."""
    small = logvar.clamp(-0.1, 0.1)       # the series' input: no overflow, no NaN gradient
    series = small.pow(2) * (0.5 + small * (1 / 6 + small * (1 / 24 + small * (
        1 / 120 + small * (1 / 720 + small / 5040)))))
    return torch.where(logvar.abs() < 0.1, series, torch.expm1(logvar) - logvar)


class _ExpExcess(torch.autograd.Function):
    """:func:`_exp_excess` whose backward pass recomputes its intermediates from ``l``
    instead of keeping them (as ``torch.utils.checkpoint`` would); both passes go by
    blocks of ``_EXCESS_BLOCK`` entries, so that the series' temporaries stay small
    beside the rest of the graph."""

    @staticmethod
    def forward(ctx: Any, logvar: Tensor) -> Tensor:       # (autograd is off in here)
        ctx.save_for_backward(logvar)
        flat = logvar.reshape(-1)
        out = torch.empty_like(flat)
        for i in range(0, flat.numel(), _EXCESS_BLOCK):    # by blocks, as the backward
            out[i:i + _EXCESS_BLOCK] = _exp_excess(flat[i:i + _EXCESS_BLOCK])
        return out.view_as(logvar)

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> Tensor:
        (logvar,) = ctx.saved_tensors
        flat, g = logvar.detach().reshape(-1), grad.reshape(-1)
        out = torch.empty_like(flat)
        with torch.enable_grad():           # by blocks: the rest of the graph is still held
            for i in range(0, flat.numel(), _EXCESS_BLOCK):
                lv = flat[i:i + _EXCESS_BLOCK].requires_grad_(True)
                out[i:i + _EXCESS_BLOCK] = torch.autograd.grad(
                    _exp_excess(lv), lv, g[i:i + _EXCESS_BLOCK])[0]
        return out.view_as(logvar)


#: Entries of ``l`` computed at a time in :class:`_ExpExcess`'s forward and backward passes.
_EXCESS_BLOCK = 1 << 20


class Prior(nn.Module):
    """Interface of a prior over latent rows (see the module docstring)."""

    def log_prob(self, z: Tensor) -> Tensor:
        raise NotImplementedError(f"{type(self).__name__} defines no log_prob")

    def sample(self, shape: tuple[int, ...], generator: torch.Generator | None = None,
               dtype: torch.dtype | None = None, device: torch.device | str | None = None
               ) -> Tensor:
        raise NotImplementedError(f"{type(self).__name__} defines no sample")

    def kl(self, q: Any) -> Tensor | None:
        """Closed-form ``KL(q ‖ p)`` per row, or ``None`` (the bounds estimate it)."""
        return None

    def set_log_prob(self, z: Tensor, mask: Tensor,
                     generator: torch.Generator | None = None) -> Tensor:
        """``log p(Z)`` of each set: ``z (..., B, k, d)`` with ``mask (B, k)`` → ``(..., B)``."""
        return (self.log_prob(z) * mask.to(z.dtype)).sum(-1)

    def sample_set(self, n: int, dim: int, generator: torch.Generator | None = None,
                   dtype: torch.dtype | None = None, device: torch.device | str | None = None
                   ) -> Tensor:
        """The latents of one graph of ``n`` nodes, ``(n, dim)``."""
        return self.sample((n, dim), generator, dtype, device)


class StandardNormal(Prior):
    """``p(z) = N(0, I)``, the default prior of every model."""

    def log_prob(self, z: Tensor) -> Tensor:
        return -0.5 * (z.pow(2) + LOG_2PI).sum(-1)

    def sample(self, shape: tuple[int, ...], generator: torch.Generator | None = None,
               dtype: torch.dtype | None = None, device: torch.device | str | None = None
               ) -> Tensor:
        """Drawn on the generator's device (the CPU without one) and moved to ``device``, so
        a CPU generator gives the same draws whatever the model's device."""
        where = draw_device(generator)
        z = torch.randn(tuple(shape), generator=generator, dtype=dtype, device=where)
        return z if device is None else z.to(device)

    def kl(self, q: Any) -> Tensor | None:
        loc, logvar = getattr(q, "loc", None), getattr(q, "logvar", None)
        if loc is None or logvar is None:
            return None
        return kl_standard_normal(loc, logvar)


class SetPrior(Prior):
    """A prior over the set of a graph's node latents, whose rows are not independent:
    it has :meth:`set_log_prob` and :meth:`sample_set` only. The per-row ``log_prob`` and
    ``sample`` are refused in one line naming them."""

    def log_prob(self, z: Tensor) -> Tensor:
        raise ValueError(f"{type(self).__name__} is a prior over sets of latents, whose rows "
                         f"are not independent: use set_log_prob")

    def sample(self, shape: tuple[int, ...], generator: torch.Generator | None = None,
               dtype: torch.dtype | None = None, device: torch.device | str | None = None
               ) -> Tensor:
        raise ValueError(f"{type(self).__name__} is a prior over sets of latents, whose rows "
                         f"are not independent: use sample_set")


class SetMixturePrior(SetPrior):
    """Node latents that depend on each other through a graph-level latent ``u``.

    ``u ~ N(0, I_m)``; given ``u``, each node's latent is drawn from a mixture of ``K``
    diagonal Gaussians whose weights, means and variances are an MLP of ``u``:
    ``p(Z) = ∫ N(u; 0, I) Π_i Σ_k π_k(u) N(z_i; μ_k(u), σ_k²(u)) du``. The mixture lets
    node latents form groups (communities, a hub and its leaves, atom kinds), and ``u``
    ties them within a graph (how many groups, of what sizes). Order-free: the density
    is a symmetric function of the rows, and a draw is exchangeable.

    ``log p(Z)`` has no closed form, so :meth:`set_log_prob` returns the one-draw estimate
    of its lower bound ``E_{q(u|Z)}[Σ_i log p(z_i | u)] − KL(q(u|Z) ‖ N(0, I))`` with
    ``q(u | Z)`` Gaussian from a DeepSets encoder of ``Z`` (mean-pooled, so order-free):
    a bound inside the model's bound, which therefore stays a lower bound on
    ``log p(G)`` in expectation.
    """

    set_prior = True

    def __init__(self, dim: int, components: int = 4, graph_latent: int = 8,
                 hidden: int = 64):
        super().__init__()
        self.dim, self.components, self.graph_latent = dim, components, graph_latent
        k = components
        self.decode = nn.Sequential(nn.Linear(graph_latent, hidden), nn.ReLU(),
                                    nn.Linear(hidden, k + 2 * k * dim))
        self.phi = nn.Sequential(nn.Linear(dim, hidden), nn.ReLU(), nn.Linear(hidden, hidden))
        self.rho = nn.Sequential(nn.Linear(hidden + 1, hidden), nn.ReLU(),
                                 nn.Linear(hidden, 2 * graph_latent))

    def _mixture(self, u: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        k, d = self.components, self.dim
        out = self.decode(u)
        weights = torch.log_softmax(out[..., :k], -1)                        # (..., K)
        mu = out[..., k:k + k * d].reshape(*u.shape[:-1], k, d)               # (..., K, d)
        logvar = out[..., k + k * d:].reshape(*u.shape[:-1], k, d).clamp(-6.0, 3.0)
        return weights, mu, logvar

    def node_log_prob(self, z: Tensor, u: Tensor) -> Tensor:
        """``log p(z_i | u)`` for ``z (..., B, k, d)``, ``u (..., B, m)`` → ``(..., B, k)``."""
        weights, mu, logvar = self._mixture(u)
        zz = z.unsqueeze(-2)                                                 # (..., B, k, 1, d)
        mu, logvar = mu.unsqueeze(-3), logvar.unsqueeze(-3)                   # (..., B, 1, K, d)
        lp = -0.5 * ((zz - mu).pow(2) * torch.exp(-logvar) + logvar + LOG_2PI).sum(-1)
        return torch.logsumexp(lp + weights.unsqueeze(-2), -1)

    def posterior_u(self, z: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
        """``q(u | Z)``: mean and log-variance, ``(..., B, m)`` each."""
        m = mask.to(z.dtype)
        pooled = (self.phi(z) * m[..., None]).sum(-2)
        n = m.sum(-1, keepdim=True).clamp(min=1).expand(pooled.shape[:-1] + (1,))
        loc, logvar = self.rho(torch.cat([pooled / n, torch.log(n)], -1)).chunk(2, -1)
        return loc, logvar.clamp(-8.0, 4.0)

    def set_log_prob(self, z: Tensor, mask: Tensor, generator: torch.Generator | None = None,
                     u_noise: Tensor | None = None) -> Tensor:
        """One-draw lower-bound estimate of ``log p(Z)`` per set (see the class docstring);
        ``u_noise`` fixes the draw of ``u`` (zeros: ``u`` at the mean of ``q(u | Z)``)."""
        loc, logvar = self.posterior_u(z, mask)
        if u_noise is None:
            u_noise = torch.randn(loc.shape, generator=generator, dtype=loc.dtype,
                                  device=draw_device(generator)
                                  ).to(loc.device)
        u = loc + torch.exp(0.5 * logvar) * u_noise
        lp = (self.node_log_prob(z, u) * mask.to(z.dtype)).sum(-1)
        kl = kl_standard_normal(loc, logvar)
        return lp - kl

    def sample_set(self, n: int, dim: int, generator: torch.Generator | None = None,
                   dtype: torch.dtype | None = None, device: torch.device | str | None = None
                   ) -> Tensor:
        where = draw_device(generator)
        param = next(self.parameters())
        u = torch.randn(self.graph_latent, generator=generator, device=where,
                        dtype=param.dtype).to(param.device)
        weights, mu, logvar = self._mixture(u)
        comp = torch.multinomial(weights.exp().detach().to(where), n, replacement=True,
                                 generator=generator).to(mu.device)
        eps = torch.randn(n, self.dim, generator=generator, device=where).to(mu.device)
        z = (mu[comp] + torch.exp(0.5 * logvar[comp]) * eps).detach()
        return z if dtype is None else z.to(dtype)


class ExemplarPrior(SetPrior):
    """The aggregate posterior of the training graphs, as a prior over a graph's node latents.

    ``p(Z | n) = (1 / M_n) Σ_{m : n_m = n} r_m(Z)`` over the ``M_n`` training graphs
    ("exemplars") of ``n`` nodes, where ``r_m`` is the encoder's posterior ``q(Z | G_m) =
    Π_i N(z_i; μ_mi, σ_mi²)`` made order-free, ``r_m(Z) = (1/n!) Σ_π Π_i N(z_π(i); μ_mi,
    σ_mi²)``. It is the VampPrior of Tomczak & Welling (AISTATS 2018) with the training set
    as its pseudo-inputs, which they show is the prior that maximises the training ELBO
    (the aggregate posterior); Norouzi et al. (NeurIPS 2020, "Exemplar VAE") sample so. A
    size with no exemplar falls back to ``N(0, I)``.

    **Sampling** (:meth:`sample_set`): an exemplar of the size, uniformly; ``z_i = μ_mi +
    σ_mi ε_i``; the rows in a random order. Order-free by construction.

    **Density** (:meth:`set_log_prob`): the sum over the ``n!`` orders has no closed form,
    so each ``r_m`` is bounded below by the terms it surely contains: the best order
    ``π*`` (a linear assignment, :func:`scipy.optimize.linear_sum_assignment`) and every
    order that differs from it only among rows of ``G_m``'s posterior that are exactly
    equal (nodes the encoder cannot tell apart), ``Π_c |c|!`` terms of the same value:
    ``log r_m(Z) ≥ Σ_i log N(z_π*(i); μ_mi, σ_mi²) + log Π_c |c|! − log n!``. The model's
    bound with this prior is therefore still a lower bound on ``log p(G)``, looser than the
    ELBO by at most ``log n! − log Π_c |c|!`` nats per graph.

    It is *fitted* (:meth:`fit`) to a trained encoder's posteriors and holds them as
    buffers: ``M × k × d`` numbers per model, meant for graph sets of hundreds of graphs,
    not for QM9's 100,000 molecules (where samples would also copy training molecules).
    """

    set_prior = True
    loc: Tensor
    logvar: Tensor
    sizes: Tensor
    log_sym: Tensor

    def __init__(self, dim: int, exemplars: int, max_nodes: int):
        super().__init__()
        if exemplars < 1 or max_nodes < 1:
            raise ValueError("an exemplar prior needs at least one exemplar of >= 1 node")
        if exemplars * max_nodes * dim * 8 > MAX_INT:     # bytes, in float64 too
            raise ValueError(f"an exemplar prior of {quote(exemplars)} exemplars of up to "
                             f"{quote(max_nodes)} nodes in {quote(dim)} dimensions holds more "
                             f"bytes than torch counts (2^63 - 1)")
        self.dim = dim
        self.fallback = StandardNormal()    # a size with no exemplar (no state of its own)
        self.register_buffer("loc", torch.zeros(exemplars, max_nodes, dim))
        self.register_buffer("logvar", torch.zeros(exemplars, max_nodes, dim))
        self.register_buffer("sizes", torch.zeros(exemplars, dtype=torch.long))
        self.register_buffer("log_sym", torch.zeros(exemplars))

    def fit(self, loc: Sequence[Tensor], logvar: Sequence[Tensor]) -> None:
        """Hold the posteriors ``(n_m, d)`` of the exemplars."""
        if len(loc) != self.sizes.numel() or len(logvar) != len(loc):
            raise ValueError(f"expected {self.sizes.numel()} exemplars, got {len(loc)}")
        self.loc.zero_()
        self.logvar.zero_()
        for m, (mu, lv) in enumerate(zip(loc, logvar)):
            n = mu.size(0)
            if n > self.loc.size(1) or mu.shape != lv.shape or mu.size(-1) != self.dim:
                raise ValueError(f"exemplar {m}: posterior of shape {tuple(mu.shape)} does "
                                 f"not fit ({self.loc.size(1)}, {self.dim})")
            self.loc[m, :n] = mu.detach()
            self.logvar[m, :n] = lv.detach()
            self.sizes[m] = n
            _, counts = torch.unique(torch.cat([mu, lv], -1).detach(), dim=0,
                                     return_counts=True)
            self.log_sym[m] = float(torch.lgamma(counts.double() + 1).sum())

    def _pair_log_probs(self, z: Tensor, m: Tensor, n: int, dtype: torch.dtype) -> Tensor:
        """``ll[m, i, a] = log N(z_a; μ_mi, σ_mi²)`` computed in ``dtype``."""
        mu, lv = self.loc[m, :n].to(dtype), self.logvar[m, :n].to(dtype)         # (M', n, d)
        diff = z.to(dtype)[None, None, :, :] - mu[:, :, None, :]
        return -0.5 * (diff.pow(2) * torch.exp(-lv[:, :, None, :]) + lv[:, :, None, :]
                       + LOG_2PI).sum(-1)

    def _log_r(self, z: Tensor, m: Tensor) -> Tensor:
        """``log r_m(Z)`` bounded below (class docstring) for ``z (n, d)`` and the exemplars
        ``m (M',)`` of its size → ``(M',)``."""
        from scipy.optimize import linear_sum_assignment

        n = z.size(0)
        ll = self._pair_log_probs(z, m, n, z.dtype)
        if not bool(torch.isfinite(ll).all()):
            # a log-variance below about −88 overflows exp(−lv) in float32 (an infeasible
            # assignment, or 0 · inf): then in float64, which holds it
            ll = self._pair_log_probs(z, m, n, torch.float64)
        cost = -ll.detach().double().cpu().numpy()
        rows = torch.arange(n, device=z.device)
        out = []
        for t in range(len(m)):
            _, cols = linear_sum_assignment(cost[t])
            out.append(ll[t, rows, torch.as_tensor(cols, device=z.device)].sum())
        return (torch.stack(out).to(z.dtype) + self.log_sym[m].to(z.dtype)
                - math.lgamma(n + 1))

    def set_log_prob(self, z: Tensor, mask: Tensor, generator: torch.Generator | None = None,
                     u_noise: Tensor | None = None) -> Tensor:
        """``log p(Z | n)`` of each set, bounded below (class docstring): ``z (..., B, k,
        d)``, ``mask (B, k)`` → ``(..., B)`` (``generator``, ``u_noise``: unused)."""
        lead = z.shape[:-2]
        flat = z.reshape(-1, z.size(-2), z.size(-1))
        masks = mask.expand(*lead[:-1], *mask.shape).reshape(-1, mask.size(-1))
        out = []
        for zz, mm in zip(flat, masks):
            zn = zz[mm]
            m = torch.nonzero(self.sizes == zn.size(0)).flatten()
            if len(m) == 0:
                out.append(self.fallback.log_prob(zn).sum())
            else:
                out.append(torch.logsumexp(self._log_r(zn, m), 0) - math.log(len(m)))
        return torch.stack(out).reshape(lead)

    def sample_set(self, n: int, dim: int, generator: torch.Generator | None = None,
                   dtype: torch.dtype | None = None, device: torch.device | str | None = None
                   ) -> Tensor:
        where = draw_device(generator)
        m = torch.nonzero(self.sizes == n).flatten().cpu()
        if len(m) == 0:
            z = self.fallback.sample((n, dim), generator, self.loc.dtype)
        else:
            pick = int(m[int(torch.randint(len(m), (1,), generator=generator, device=where))])
            eps = torch.randn(n, dim, generator=generator, device=where, dtype=self.loc.dtype)
            order = torch.randperm(n, generator=generator, device=where)
            z = (self.loc[pick, :n] + torch.exp(0.5 * self.logvar[pick, :n]) * eps.to(
                self.loc.device))[order.to(self.loc.device)]
        z = z.to(self.loc.device)
        return z if dtype is None else z.to(dtype)
