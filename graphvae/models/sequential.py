"""A per-node-latent graph VAE whose prior ties the nodes together and whose decoder decides
pairs in sequence (``seq-vae``).

It keeps :class:`~graphvae.models.EquivariantGraphVAE`'s encoder, ``p(n)`` and node
latents, and changes the two parts that made that model a weak generator:

* **Prior**, two designs (``graphvae generate --prior``):

  - :class:`~graphvae.bounds.priors.ExemplarPrior` (the default on graph sets): the
    aggregate posterior of the training graphs, fitted after training: draw a training
    graph of the size, draw its node latents from the encoder's posterior, shuffle. It is
    the VampPrior with the training set as pseudo-inputs, the prior that maximises the
    training ELBO (Tomczak & Welling 2018). Sets of a few hundred small graphs are where
    it pays: an i.i.d. ``N(0, I)`` prior cannot say "these nodes form one community and
    those another", and a parametric prior over sets has to learn that from 100 graphs.
    The model is trained as a β-VAE (KL weight 0.001, posterior log-variances offset by
    −6) so that the posteriors are sharp enough to decode one graph each. ``log p(Z)``
    is bounded below by the best node matching (see the class), so ``test_bound_nats``
    stays a lower bound on ``log p(G)`` in expectation (one draw of Z per graph), a loose
    one.
  - :class:`~graphvae.bounds.priors.SetMixturePrior` (the default on QM9, where copying
    training molecules would defeat novelty): a graph-level latent ``u ~ N(0, I)`` and,
    given ``u``, a mixture of ``K`` Gaussians per node; ``log p(Z)`` is bounded through
    ``q(u | Z)``, so the reported bound is an ELBO whose prior term is itself a one-draw
    lower-bound estimate.

  We chose these over a learned VampPrior (its pseudo-inputs are graphs, so every prior
  evaluation runs the encoder on all of them) and over a flow or diffusion over the set
  (exact or tighter densities, but each costs far more to train and sample on two cores).
* **Decoder** (:mod:`graphvae.decoders.sequential`): node types ``t_i ~ Cat(MLP(z_i))``
  first; then the pairs in decreasing order of the score ``s_ij = h_iᵀh_j + b``
  (``h = MLP(z)``, the one-shot model's edge logit), each choosing "no edge" or an edge
  type from ``MLP([h_i ⊙ h_j, h_i + h_j, s_ij, state features])`` over the options the
  valence and (with ``connect``) connectivity rules allow. The likelihood
  ``log p(t, A, τ | Z)`` is the sum of the log-probabilities of the target's own
  choices, replayed in that order: exactly the process :meth:`sample` runs. For
  molecules the valence rule is *valence-aware training*: the model is trained on the
  normalised distribution over valence-respecting choices, so it never puts mass on a
  violation and needs no penalty or correction.

The order is a function of ``Z`` and moves with the nodes, so the bound's distribution
does not depend on node order. Ties in ``s`` are the exception: where two nodes share a
latent exactly (automorphic atoms at the posterior mean), tied pairs are taken in label
order. Sampled and posterior-drawn ``Z`` have no ties almost surely, so
``graphvae check-invariance`` checks the decoder at a posterior draw
(``decoder_check_point``) and the bound as always.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from graphvae.config import MAX_WIDTH, check_count
from graphvae.containers import GraphBatch, SampledGraph
from graphvae.decoders.sequential import NUM_FEATURES, run
from graphvae.devices import draw_device
from graphvae.errors import quote
from graphvae.models.oneshot import EquivariantGraphVAE
from graphvae.uniform import refine, uniform

SAMPLE_CHUNK = 256

#: The connectivity rules (:mod:`graphvae.decoders.sequential`): ``lookahead``, every
#: component keeps a later pair with free valence at both ends; ``budget``, also the
#: later pairs connect all components and the free valences suffice for a spanning tree;
#: ``cuts``, also no one or two atoms are counted on for more joins than their free
#: valence pays for.
CONNECT_RULES = ("lookahead", "budget", "cuts")


def _mlp(dims: Sequence[int]) -> nn.Sequential:
    layers: list[nn.Module] = []
    for a, b in zip(dims, dims[1:]):
        layers += [nn.Linear(a, b), nn.ReLU()]
    return nn.Sequential(*layers[:-1])


def inverse_cdf(p: Tensor, u: Tensor, allowed: Tensor) -> Tensor:
    """The option of each row of ``p (..., O)`` whose cumulative interval holds ``u (...)``
    in ``[0, 1)``: never an option of probability 0 (a refused one), not at ``u = 0`` and
    not where the float sum of ``p`` ends short of 1 (then the last ``allowed`` option).
    A float64 ``u`` from :func:`graphvae.uniform.refine` is compared in float64."""
    last = (allowed * torch.arange(p.size(-1), device=p.device)).amax(-1)
    return torch.minimum((p.cumsum(-1) <= u[..., None]).sum(-1), last)


class SequentialGraphVAE(EquivariantGraphVAE):
    """See the module docstring.

    Args (beyond :class:`EquivariantGraphVAE`'s):
        valences: the valence of each node type (typed graphs: molecules), or ``None``.
        connect: apply the connectivity rule (set it when every graph the model will be
            scored on is connected: the rule gives a disconnected graph probability 0; it
            is a one-step look-ahead that makes disconnected graphs rare, see
            :mod:`graphvae.decoders.sequential`).
        connect_rule: ``lookahead``, ``budget`` or ``cuts`` (:data:`CONNECT_RULES`): with
            ``budget`` the rule also refuses options after which the later pairs cannot
            connect all components or the free valences cannot pay for joining them; with
            ``cuts``, also those after which the components that only one or two atoms can
            join need more joins than those atoms' free valence.
        components, graph_latent: the prior's mixture size ``K`` and ``u``'s width (0
            components: the standard normal prior).
        exemplars: the number of training graphs held by an
            :class:`~graphvae.bounds.priors.ExemplarPrior` (0: none; it is fitted after
            training by :meth:`fit_exemplar_prior`).
        max_rounds: untyped graphs without ``connect`` decide their pairs in at most this
            many rounds, split from each graph's own number of pairs (large graphs);
            otherwise one pair a round.
    """

    kind = "seq-vae"
    #: ``graphvae check-invariance`` checks the decoder at a posterior draw: the pair order
    #: ties exactly where two nodes share a latent, as automorphic atoms do at the posterior
    #: mean, and there the decision order (so ``log p(G | Z)`` of a labelled graph) follows
    #: the labels. Every ``Z`` the model trains on, bounds or samples is a continuous draw,
    #: without ties almost surely.
    decoder_check_point = "draw"

    def __init__(self, in_channels: int, size_counts: Sequence[float], latent_channels: int = 16,
                 hidden_channels: Sequence[int] = (64, 64), conv: str = "gin",
                 decoder_hidden: Sequence[int] = (64,), embed_channels: int = 32,
                 node_types: int = 0, edge_types: int = 0,
                 valences: Sequence[int] | None = None, connect: bool = False,
                 components: int = 4, graph_latent: int = 8, max_rounds: int = 256,
                 logvar_offset: float = 0.0, exemplars: int = 0,
                 connect_rule: str = "lookahead"):
        super().__init__(in_channels, size_counts, latent_channels, hidden_channels, conv,
                         decoder_hidden, embed_channels, components=components,
                         graph_latent=graph_latent, logvar_offset=logvar_offset,
                         exemplars=exemplars)
        check_count("node_types", node_types, minimum=0, maximum=MAX_WIDTH)
        check_count("edge_types", edge_types, minimum=0, maximum=MAX_WIDTH)
        if not decoder_hidden:              # (its first width is the pair head's)
            raise ValueError("seq-vae: decoder_hidden needs at least one width")
        if valences is not None and not isinstance(valences, list | tuple):
            raise ValueError(f"seq-vae: valences must be a list or tuple, got {quote(valences)}")
        if bool(node_types) != (valences is not None) or (valences is not None
                                                          and len(valences) != node_types):
            raise ValueError("seq-vae: typed graphs need one valence per node type, untyped "
                             "graphs none")
        for i, v in enumerate(valences or ()):
            check_count(f"valences[{i}]", v)          # a bond needs a free valence
        if node_types and not edge_types:
            raise ValueError("seq-vae: typed graphs need edge (bond) types")
        check_count("max_rounds", max_rounds)
        if connect_rule not in CONNECT_RULES:
            raise ValueError(f"seq-vae: unknown connect_rule {connect_rule!r}; choose one of "
                             f"{list(CONNECT_RULES)}")
        self._init.update(node_types=node_types, edge_types=edge_types,
                          valences=None if valences is None else [int(v) for v in valences],
                          connect=bool(connect), components=components,
                          graph_latent=graph_latent, max_rounds=max_rounds,
                          logvar_offset=float(logvar_offset), exemplars=exemplars,
                          connect_rule=connect_rule)
        self.node_types, self.edge_types = node_types, edge_types
        self.connect, self.max_rounds = bool(connect), max_rounds
        self.budget = connect_rule in ("budget", "cuts")
        self.cuts = connect_rule == "cuts"
        self.num_options = 1 + max(edge_types, 1)
        self.register_buffer("valence", torch.tensor(list(valences or []), dtype=torch.float))
        width = decoder_hidden[0]
        self.type_head = _mlp([latent_channels, width, node_types]) if node_types else None
        self.pair_head = _mlp([2 * embed_channels + 1 + NUM_FEATURES, width, width,
                               self.num_options])

    # ------------------------------------------------------------------ decoder
    def _pair_logits(self, h: Tensor, s: Tensor, i: Tensor, j: Tensor, feats: Tensor) -> Tensor:
        """Option logits ``(G, T, O)`` of the pairs ``(i, j)`` (``(G, T)``); the score ``s_ij``
        enters as a feature and as an offset of every edge option."""
        ar = torch.arange(h.size(0), device=h.device)[:, None]
        hi, hj = h[ar, i], h[ar, j]
        sij = s[ar, i, j]
        out = self.pair_head(torch.cat([hi * hj, hi + hj, sij[..., None], feats.to(h.dtype)],
                                       -1))
        return torch.cat([out[..., :1], out[..., 1:] + sij[..., None]], -1)

    def _valences(self, types: Tensor | None) -> Tensor | None:
        if types is None or self.type_head is None:
            return None
        return self.get_buffer("valence")[types]

    def log_likelihood(self, z: Tensor, batch: GraphBatch) -> Tensor:
        """``log p(t, A, τ | Z)`` per graph for ``z (S, B, k, d)`` → ``(S, B)``: node types,
        then every real pair's choice in score order (teacher forcing)."""
        s_num, b, k = z.size(0), batch.num_graphs, batch.k
        flat = z.reshape(s_num * b, k, z.size(-1))
        mask = batch.mask.repeat(s_num, 1)
        target = batch.dense.long()
        if self.type_head is not None and batch.edge_types is not None:
            target = target * (batch.edge_types + 1)
        target = target.repeat(s_num, 1, 1)
        types = None
        lp = z.new_zeros(s_num * b)
        if self.type_head is not None and batch.node_types is not None:
            padded = batch.node_types.new_zeros(b * k).index_copy(0, batch.slot, batch.node_types)
            types = padded.reshape(b, k).repeat(s_num, 1)
            tl = F.log_softmax(self.type_head(flat), -1).gather(-1, types[..., None])[..., 0]
            lp = lp + (tl * mask).sum(-1)
        s, h = self.edge_logits(flat)
        rows = torch.arange(s_num * b, device=z.device)[:, None]
        seen: list[tuple[Tensor, Tensor, Tensor, Tensor]] = []

        def teacher(i: Tensor, j: Tensor, feats: Tensor, allowed: Tensor) -> Tensor:
            seen.append((i, j, feats, allowed))
            return target[rows, i, j]

        run(s, mask, self._valences(types), self.num_options, self.connect, teacher,
            self.max_rounds, self.budget, self.cuts)
        if not seen:                                   # one-node graphs: no pair to decide
            return lp.reshape(s_num, b)
        i, j, feats, allowed = (torch.cat(x, 1) for x in zip(*seen))
        logits = self._pair_logits(h, s, i, j, feats).masked_fill(~allowed, -torch.inf)
        real = allowed.any(-1)
        chosen = F.log_softmax(logits.masked_fill(~real[..., None], 0.0), -1)
        chosen = chosen.gather(-1, target[rows, i, j][..., None])[..., 0]
        lp = lp + torch.where(real, chosen, torch.zeros_like(chosen)).sum(-1)
        return lp.reshape(s_num, b)

    def decoder_outputs(self, z: Tensor, batch: GraphBatch) -> list[tuple[str, Tensor, str]]:
        """The pair scores (``pairs``) and ``log p(G | Z)`` (``graph``) for node latents
        ``z (n, d)`` of a one-graph batch."""
        s, _ = self.edge_logits(z)
        return [("pair scores", s, "pairs"),
                ("log p(G | Z)", self.log_likelihood(z[None, None], batch), "graph")]

    # ------------------------------------------------------------------ sampling
    @torch.no_grad()
    def sample(self, num_graphs: int, generator: torch.Generator | None = None,
               device: torch.device | str = "cpu") -> list[SampledGraph]:
        """Draw graphs: ``n ~ p(n)``, ``Z ~ p(Z)``, node types, then the pairs in score order
        under the same rules as training. Each record keeps the probabilities of its pairs'
        choices (``edge_prob``, ``bond_prob``) for the valency-aware decoding."""
        check_count("num_graphs", num_graphs, minimum=0)
        if num_graphs == 0:
            return []
        where = draw_device(generator, torch.device("cpu"))
        sizes = torch.multinomial(self.size_logprob.exp().to(where), num_graphs,
                                  replacement=True, generator=generator).tolist()
        out: list[SampledGraph] = []
        for start in range(0, num_graphs, SAMPLE_CHUNK):
            out += self._sample_chunk(sizes[start:start + SAMPLE_CHUNK], generator, where,
                                      torch.device(device))
        return out

    def _sample_chunk(self, sizes: list[int], generator: torch.Generator | None,
                      where: torch.device, device: torch.device) -> list[SampledGraph]:
        g, k, d = len(sizes), max(sizes), self.latent_channels
        z = torch.zeros(g, k, d, device=device, dtype=next(self.parameters()).dtype)
        for r, n in enumerate(sizes):
            z[r, :n] = self.prior.sample_set(n, d, generator, z.dtype, device)
        mask = torch.arange(k, device=device)[None, :] < torch.tensor(sizes, device=device)[:, None]
        types = None
        if self.type_head is not None:
            probs = F.softmax(self.type_head(z), -1).reshape(g * k, -1)
            types = torch.multinomial(probs.to(where), 1, generator=generator).reshape(g, k)
            types = types.to(device)
        s, h = self.edge_logits(z)
        rows = torch.arange(g, device=device)[:, None]
        # each pair's option log-probabilities as drawn: in log space, so that an edge of
        # probability 1e-8 keeps its value (1 - p(no edge) rounds it away in float32)
        logp_out = torch.full((g, k, k, self.num_options), -torch.inf, device=device,
                              dtype=z.dtype)

        def draw(i: Tensor, j: Tensor, feats: Tensor, allowed: Tensor) -> Tensor:
            logits = self._pair_logits(h, s, i, j, feats).masked_fill(~allowed, -torch.inf)
            logits = logits.masked_fill(~allowed.any(-1, keepdim=True), 0.0)
            p = F.softmax(logits, -1)
            logp = F.log_softmax(logits, -1)
            logp_out[rows, i, j] = logp
            logp_out[rows, j, i] = logp
            u = uniform(p.shape[:-1], generator, where)
            u = refine(u, p.cumsum(-1).to(where), generator).to(device)
            return inverse_cdf(p, u, allowed)

        state = run(s, mask, self._valences(types), self.num_options, self.connect, draw,
                    self.max_rounds, self.budget, self.cuts)
        out = []
        for r, n in enumerate(sizes):
            a = state.adj[r, :n, :n].float()
            edge_logp = logp_out[r, :n, :n, 1:]                  # the edge options
            edge_lse = torch.logsumexp(edge_logp, -1)
            # (a sum of probabilities near 1 rounds above it in float32: 1.0000002, which the
            # valency-aware decoding refused after the whole run's training and sampling)
            edge_prob = edge_lse.exp().clamp(max=1.0) * (1 - torch.eye(n, device=device))
            rec = SampledGraph(a, edge_prob)
            if types is not None:
                rec.node_types = types[r, :n]
                # the bond type given an edge; 0 where no edge was possible
                rec.bond_prob = torch.where(torch.isfinite(edge_lse)[..., None],
                                            (edge_logp - edge_lse[..., None]).exp(),
                                            torch.zeros_like(edge_logp))
                rec.bond_types = state.codes[r, :n, :n]
            out.append(rec)
        return out
