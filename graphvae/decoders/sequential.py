"""Edges decided pair by pair in rounds, each round seeing the decisions before it.

The pairs ``i < j`` of a graph are decided in decreasing order of a score ``s_ij``
computed from the node latents (so the order moves with the nodes under relabelling,
and the decoder stays equivariant). At its turn a pair chooses an *option*: 0 (no
edge) or an edge type ``1..R`` (a bond of order ``b`` for molecules; one option for
untyped graphs). What it sees of the earlier decisions, :class:`SequenceState`:

* the degrees of ``i`` and ``j`` so far and their common neighbours so far;
* whether ``i`` and ``j`` are already joined, and the number of components;
* for typed graphs, the remaining valences ``r_i, r_j`` (the atom's valence minus the
  bond orders so far).

A graph with ``P`` pairs and at most ``max_rounds`` rounds decides one pair a round (``P <=
max_rounds``) or a contiguous run of its order (large graphs: the pairs of a round are
independent given the rounds before). The runs come from the graph's own ``P``, so a
graph's likelihood and its sampling process do not depend on the graphs batched with it.
Typed graphs and the connectivity rule always decide one pair a round.

Options are *allowed* or not: an edge type of order ``b > min(r_i, r_j)`` never is
(valence), and with ``connect`` an option that would leave a component that can no
longer be joined — no later pair between it and another component with remaining
valence at both ends — is not either, unless one component is left. A connected
target (every training molecule) always passes both rules, so its probability is
never zero. Sampling with the same rules always gives valences within the table. The
connectivity rule looks one step ahead only, so it makes disconnected samples rare, not
impossible: two components whose only later pairs join each other both pass it, and
where no option passes both rules the valence rule alone applies. The ``budget`` rule
adds two conditions that any way of joining the components must meet (the feasible
later pairs connect them; the free valences can pay for a spanning tree over them),
so a connected target still always passes, and catches both of those cases, e.g. two
lone atoms that both count on a third atom's last free valence. The ``cuts`` rule adds
one condition for every set ``X`` of one or two atoms (see
:func:`graphvae.decoders.components.cuts_ok`):
the groups of components that the later pairs not at ``X`` leave apart can only be joined
through ``X``'s pairs, so they need no more joins than ``X``'s free valence pays for. It is
still a necessary condition (a connected target always passes), and catches the case the
budget misses, e.g. one atom with one free valence that three components count on. Training
replays the target's own decisions (teacher forcing) through :func:`run`, the same
function that samples, so the likelihood the model is trained on is exactly the
process it samples with.

Shapes: ``score (G, k, k)``; node masks and valences ``(G, k)``; options ``(G, T)``.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from graphvae.decoders.components import budget_ok, cuts_ok, group_labels, in_use, node_capacity

#: Scalar features of a pair at its turn (see :meth:`SequenceState.features`).
NUM_FEATURES = 10

#: ``choose(i, j, features (G, T, F), allowed (G, T, O)) -> options (G, T)``.
Chooser = Callable[[Tensor, Tensor, Tensor, Tensor], Tensor]


class SequenceState:
    """The decisions made so far in ``G`` graphs of ``k`` slots (``mask`` the real ones):
    ``adj`` (bool) and ``codes`` (the chosen option of every decided pair, 0: no edge).

    Args:
        mask: ``(G, k)`` real nodes.
        valence: ``(G, k)`` the valence of each node's type, or ``None`` (untyped: no
            valence rule, every edge option has order 1).
        num_options: ``1 + R``.
        connect: apply the connectivity rule.
        budget: with ``connect``, the stronger rule (see :meth:`_joinable`).
        cuts: with ``budget``, also the cut conditions (see
            :func:`~graphvae.decoders.components.cuts_ok`).
    """

    def __init__(self, mask: Tensor, valence: Tensor | None, num_options: int, connect: bool,
                 budget: bool = False, cuts: bool = False):
        g, k = mask.shape
        dev = mask.device
        if cuts and not budget:
            raise ValueError("SequenceState: cuts extends the budget rule; set budget too")
        self.mask, self.connect, self.num_options = mask, connect, num_options
        self.budget, self.cuts = budget, cuts
        self.typed = valence is not None
        self.rem = (valence.clone().float() if valence is not None
                    else torch.full((g, k), float("inf"), device=dev, dtype=torch.float))
        self.comp = torch.arange(k, device=dev).expand(g, k).clone()
        self.adj = torch.zeros(g, k, k, device=dev, dtype=torch.bool)
        self.codes = torch.zeros(g, k, k, dtype=torch.long, device=dev)
        self.deg = torch.zeros(g, k, device=dev, dtype=torch.float)
        self._ar = torch.arange(g, device=dev)

    def _order(self, option: Tensor) -> Tensor:
        """Bond order of each option (typed: the option itself; untyped: 1 for an edge)."""
        return option.float() if self.typed else (option > 0).float()

    def num_components(self) -> Tensor:
        """``(G,)`` connected components among the real nodes."""
        return in_use(self.comp, self.mask).sum(1).float()

    def features(self, i: Tensor, j: Tensor, n: Tensor) -> Tensor:
        """``(G, T, NUM_FEATURES)`` for the pairs ``(i, j)`` (``(G, T)`` each) at their
        turn; ``n (G,)`` the graph sizes."""
        g, k = self.mask.shape
        di, dj = self.deg.gather(1, i), self.deg.gather(1, j)
        # rows picked by index_select and counted as bytes: about 8x faster than
        # (adj[ar, i] * adj[ar, j]).sum(-1) in floats on 400-node graphs
        rows = self.adj.view(torch.uint8).reshape(g * k, k)
        base = (self._ar * k)[:, None]
        cn = (rows.index_select(0, (base + i).flatten())
              & rows.index_select(0, (base + j).flatten())).sum(-1, dtype=torch.int32)
        cn = cn.reshape(i.shape).float()
        same = (self.comp.gather(1, i) == self.comp.gather(1, j)).float()
        ncomp = self.num_components().clamp(min=1)[:, None].expand_as(di)
        logn = torch.log(n.float().clamp(min=1))[:, None].expand_as(di)
        if self.typed:
            ri, rj = self.rem.gather(1, i), self.rem.gather(1, j)
        else:
            ri = rj = torch.zeros_like(di)
        lo, hi = torch.minimum(ri, rj), torch.maximum(ri, rj)
        return torch.stack([torch.log1p(di + dj), (di - dj).abs() / (di + dj + 1),
                            torch.log1p(cn), cn / (torch.minimum(di, dj) + 1), logn, same,
                            torch.log(ncomp), lo, hi, (lo > 0).float()], -1)

    def allowed(self, i: Tensor, j: Tensor, later_i: Tensor, later_j: Tensor) -> Tensor:
        """``(G, num_options)``: the options of the pairs ``(i, j)`` (``(G,)`` each) that pass
        the valence and connectivity rules (the valence rule alone where no option passes
        both); ``later_i, later_j (G, L)`` the pairs still to be decided (``-1``: none)."""
        ri, rj = self.rem[self._ar, i], self.rem[self._ar, j]
        options = torch.arange(self.num_options, device=ri.device)
        val_ok = self._order(options)[None, :] <= torch.minimum(ri, rj)[:, None]
        if not self.connect:
            return val_ok
        ok = self._joinable_options(i, j, list(range(self.num_options)), later_i, later_j,
                                    val_ok) & val_ok
        return torch.where(ok.any(1, keepdim=True), ok, val_ok)

    def _joinable_after(self, i: Tensor, j: Tensor, option: int, later_i: Tensor,
                        later_j: Tensor) -> Tensor:
        """``(G,)``: :meth:`_joinable` after ``option`` on ``(i, j)``."""
        return self._joinable_options(i, j, [option], later_i, later_j)[:, 0]

    def _joinable_options(self, i: Tensor, j: Tensor, options: list[int], later_i: Tensor,
                          later_j: Tensor, wanted: Tensor | None = None) -> Tensor:
        """``(G, len(options))``: :meth:`_joinable` after each of ``options`` on ``(i, j)``,
        all options' states in one batch of ``len(options) · G`` rows; ``wanted (G, O)``:
        the options whose answer is used (the others' may come back ``True``)."""
        g, k = self.comp.shape
        o = len(options)
        hit = torch.zeros(g, k, device=self.rem.device)
        hit.scatter_add_(1, i[:, None], torch.ones(g, 1, device=hit.device))
        hit.scatter_add_(1, j[:, None], torch.ones(g, 1, device=hit.device))
        orders = self._order(torch.tensor(options, device=hit.device))
        rem = (self.rem[None] - orders[:, None, None] * hit[None]).reshape(o * g, k)
        merged = self._merged(self.comp, i, j)
        comp = torch.cat([merged if opt else self.comp for opt in options])
        want = None if wanted is None else wanted.t().reshape(o * g)
        ok = self._joinable(comp, rem, self.mask.repeat(o, 1), later_i.repeat(o, 1),
                            later_j.repeat(o, 1), want)
        return ok.reshape(o, g).t()

    def _joinable(self, comp: Tensor, rem: Tensor, mask: Tensor, later_i: Tensor,
                  later_j: Tensor, wanted: Tensor | None = None) -> Tensor:
        """``(N,)``: for ``N`` states (components ``comp``, remaining valences ``rem`` and real
        nodes ``mask``, each ``(N, k)``; the later pairs ``(N, L)``), whether one component
        is left or every component still has a later pair to another one with remaining
        valence at both ends. ``wanted (N,)``: the rows whose answer is used; the cut
        conditions are checked on those alone.

        With ``budget`` two more conditions, each necessary for the later pairs to join
        every component (so a connected target still always passes): the components are
        connected through those feasible later pairs, and with ``cap_C`` the joins component
        ``C`` can still make (the sum over its nodes of ``min(remaining valence, feasible
        later pairs at the node)``) and ``c`` components, ``Σ_C min(cap_C, c − 1) ≥
        2(c − 1)``: a spanning tree over the components has ``c − 1`` edges, each taking a
        unit of valence at both ends. It catches two components competing for one atom's
        last free valence."""
        used = in_use(comp, mask)                           # the component labels in use
        single = used.sum(1) <= 1
        if later_i.size(1) == 0:
            return single
        real = later_i >= 0
        li, lj = later_i.clamp(min=0), later_j.clamp(min=0)
        ci, cj = comp.gather(1, li), comp.gather(1, lj)
        feas = real & (ci != cj) & (rem.gather(1, li) > 0) & (rem.gather(1, lj) > 0)
        k = comp.size(1)
        joinable = torch.zeros(comp.size(0), k + 1, device=comp.device, dtype=torch.float)
        joinable.scatter_(1, torch.where(feas, ci, -1) + 1, 1.0)
        joinable.scatter_(1, torch.where(feas, cj, -1) + 1, 1.0)
        ok = ~(used & (joinable[:, 1:] == 0)).any(1)        # none stranded
        if self.budget:
            pairs_at, cap = node_capacity(rem, li, lj, feas)
            ok = ok & budget_ok(comp, ci, cj, feas, used, cap)
            if self.cuts:
                check = ok & ~single & (True if wanted is None else wanted)
                ok = ok & cuts_ok(rem, mask, li, lj, ci, cj, feas, used, pairs_at,
                                        cap, check)
        return single | ok

    def _merged(self, comp: Tensor, i: Tensor, j: Tensor) -> Tensor:
        ci, cj = comp[self._ar, i], comp[self._ar, j]
        lo, hi = torch.minimum(ci, cj), torch.maximum(ci, cj)
        return torch.where(comp == hi[:, None], lo[:, None].expand_as(comp), comp)

    def apply(self, i: Tensor, j: Tensor, option: Tensor) -> None:
        """Record the options ``(G, T)`` chosen for the pairs ``(i, j)`` (0: no edge)."""
        ar = self._ar[:, None]
        edge = option > 0
        e = edge.float()
        if self.typed:
            order = self._order(option)
            self.rem.scatter_add_(1, i, -order)
            self.rem.scatter_add_(1, j, -order)
        self.adj[ar, i, j] = self.adj[ar, i, j] | edge
        self.adj[ar, j, i] = self.adj[ar, j, i] | edge
        self.codes[ar, i, j] = torch.maximum(self.codes[ar, i, j], option)
        self.codes[ar, j, i] = torch.maximum(self.codes[ar, j, i], option)
        self.deg.scatter_add_(1, i, e)
        self.deg.scatter_add_(1, j, e)
        if not bool(edge.any()):
            return
        if i.size(1) == 1:                     # one pair a round (the rules): one merge
            self.comp = torch.where(edge, self._merged(self.comp, i[:, 0], j[:, 0]),
                                    self.comp)
        else:
            # a round of several pairs: each component's label becomes the smallest label
            # of the group the round's edges join it to, which is what merging the edges
            # one by one (keeping the smaller label) gives
            lab = group_labels(self.comp.gather(1, i), self.comp.gather(1, j), edge,
                                self.comp.size(1))
            self.comp = lab.gather(1, self.comp)


def pair_order(score: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
    """``(I, J)``, each ``(G, P)``: the pairs ``i < j`` in decreasing score, the pairs with a
    padded node last (``P = k(k-1)/2``), even behind a real pair scored −inf (an overflow):
    the runs of :func:`run` take a graph's real pairs from the front of its order."""
    k = score.size(-1)
    iu = torch.triu_indices(k, k, 1, device=score.device)
    s = score[:, iu[0], iu[1]]
    real = mask[:, iu[0]] & mask[:, iu[1]]
    order = torch.argsort(s, dim=1, descending=True, stable=True)
    padded_last = torch.argsort((~real.gather(1, order)).to(torch.int8), dim=1, stable=True)
    order = order.gather(1, padded_last)
    return iu[0][order], iu[1][order]


def rounds(num_pairs: int, max_rounds: int | None) -> list[tuple[int, int]]:
    """The ``[start, stop)`` runs of one graph's pair order decided together: one pair each
    when ``max_rounds`` is ``None`` or at least ``num_pairs``, else ``max_rounds`` runs of
    (almost) equal length."""
    if max_rounds is None or num_pairs <= max_rounds:
        return [(t, t + 1) for t in range(num_pairs)]
    cuts = torch.linspace(0, num_pairs, max_rounds + 1).round().long().tolist()
    return [(a, b) for a, b in zip(cuts, cuts[1:]) if b > a]


def round_starts(num_pairs: list[int], max_rounds: int) -> Tensor:
    """``(G, max_rounds + 1)``: where each graph's runs of :func:`rounds` start, from its own
    number of pairs (so a graph's rounds never depend on the other graphs it is batched
    with), then its number of pairs repeated (no run left)."""
    out = []
    for p in num_pairs:
        starts = [a for a, _ in rounds(p, max_rounds)] + [p]
        out.append(starts + [p] * (max_rounds + 1 - len(starts)))
    return torch.tensor(out, dtype=torch.long)


def run(score: Tensor, mask: Tensor, valence: Tensor | None, num_options: int, connect: bool,
        choose: Chooser, max_rounds: int | None = None, budget: bool = False,
        cuts: bool = False) -> SequenceState:
    """Walk the pairs in score order, round by round; ``choose`` picks each round's options
    from the pairs, their features and their allowed options (teacher forcing returns the
    target's; sampling draws them). Pairs with a padded node have no allowed option and
    always get 0. ``budget``: the stronger connectivity rule; ``cuts``: stronger still.
    Returns the final state
    (``state.adj``: the graph decided)."""
    score = score.detach()
    i_all, j_all = pair_order(score, mask)
    state = SequenceState(mask, valence, num_options, connect, budget, cuts)
    n = mask.sum(1)
    real = mask.gather(1, i_all) & mask.gather(1, j_all)
    pairs = (n * (n - 1) // 2).tolist()
    if valence is not None or connect or max_rounds is None or max(pairs, default=0) <= max_rounds:
        for t in range(i_all.size(1)):                 # one pair a round, under the rules
            i, j = i_all[:, t:t + 1], j_all[:, t:t + 1]
            later_i = torch.where(real[:, t + 1:], i_all[:, t + 1:], -1)
            later_j = torch.where(real[:, t + 1:], j_all[:, t + 1:], -1)
            allowed = state.allowed(i[:, 0], j[:, 0], later_i, later_j)[:, None]
            allowed = allowed & real[:, t:t + 1, None]
            option = choose(i, j, state.features(i, j, n), allowed)
            state.apply(i, j, torch.where(real[:, t:t + 1], option, 0))
        return state
    # no rules: each graph's real pairs (first in its order) in its own runs of `rounds`;
    # a graph whose run is shorter than the longest of the round fills it with the pair
    # (0, 0), which is no pair: no option allowed, nothing recorded
    starts = round_starts(pairs, max_rounds).to(score.device)
    for r in range(max_rounds):
        length = starts[:, r + 1] - starts[:, r]
        width = int(length.max())
        if width == 0:
            break
        offset = torch.arange(width, device=score.device)
        inside = offset[None, :] < length[:, None]
        pos = torch.where(inside, starts[:, r, None] + offset, 0)
        i = torch.where(inside, i_all.gather(1, pos), 0)
        j = torch.where(inside, j_all.gather(1, pos), 0)
        decided = inside & real.gather(1, pos)
        allowed = decided[..., None].expand(*i.shape, num_options)
        option = choose(i, j, state.features(i, j, n), allowed)
        state.apply(i, j, torch.where(decided, option, 0))
    return state
