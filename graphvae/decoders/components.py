"""The components of a partly decided graph, for the connectivity rules of
:mod:`graphvae.decoders.sequential`: which component labels are in use, the groups into
which a set of pairs joins the components, and the ``budget`` and ``cuts`` conditions,
each necessary for the later pairs to join every component.

States are batched: ``comp (N, k)`` gives each of ``k`` slots its component label (the
smallest slot index of its component), ``mask (N, k)`` the real nodes, ``rem (N, k)`` the
remaining valences; the later pairs are ``(N, L)`` index tensors ``li, lj`` with their
components ``ci, cj`` and ``feas`` (between two components, with remaining valence at
both ends).
"""

from __future__ import annotations

import itertools

import torch
from torch import Tensor


def in_use(comp: Tensor, mask: Tensor) -> Tensor:
    """``(N, k)`` bool: the component labels ``comp`` gives the real nodes ``mask``."""
    present = torch.zeros(comp.size(0), comp.size(1) + 1, device=comp.device, dtype=torch.bool)
    present.scatter_(1, torch.where(mask, comp, -1) + 1, True)
    return present[:, 1:]


def node_capacity(rem: Tensor, li: Tensor, lj: Tensor, feas: Tensor
                  ) -> tuple[Tensor, Tensor]:
    """``(pairs_at, cap)``, each ``(G, k)``: the feasible later pairs at each node, and the
    joins it can still make, ``min(⌊free valence⌋, pairs_at)`` (padded nodes: 0 pairs)."""
    f = feas.float()
    pairs_at = torch.zeros(rem.shape, device=rem.device)
    pairs_at.scatter_add_(1, li, f)
    pairs_at.scatter_add_(1, lj, f)
    return pairs_at, torch.minimum(rem.clamp(min=0).floor(), pairs_at)


_SETS: dict[tuple[int, str], Tensor] = {}


def atom_sets(k: int, device: torch.device) -> Tensor:
    """``(k + k(k−1)/2, 2)``: every set of one (``(v, v)``) or two atoms among ``k``."""
    key = (k, str(device))
    if key not in _SETS:
        sets = [(v, v) for v in range(k)] + list(itertools.combinations(range(k), 2))
        _SETS[key] = torch.tensor(sets, dtype=torch.long, device=device).reshape(-1, 2)
    return _SETS[key]


def groups(ci: Tensor, cj: Tensor, keep: Tensor, present: Tensor) -> Tensor:
    """``(N,)``: the groups into which the pairs ``keep`` (between components ``ci``,
    ``cj``, each ``(N, L)``) join the components ``present (N, k)``: the present
    components that are their group's label (see :func:`group_labels`)."""
    n, k = present.shape
    own = torch.arange(k, device=ci.device).expand(n, k)
    return ((group_labels(ci, cj, keep, k)[:, :k] == own) & present).sum(1)


def group_labels(ci: Tensor, cj: Tensor, keep: Tensor, k: int) -> Tensor:
    """``(N, k + 1)``: each of the ``k`` components' group label, the smallest component
    index of the group into which the pairs ``keep`` (between components ``ci``, ``cj``,
    each ``(N, L)``) join it (column ``k``: a spare).

    Minimum-label propagation with pointer jumping. Every component starts with its own
    index as label; each round gives both ends of every kept pair the smaller of their
    labels, then replaces each label by the label's own label. A label never exceeds its
    component's index and always names a component of the same group, so at the fixed
    point the two ends of every kept pair share a label and that label is its own: a group
    has one label, one of its components. It is the group's smallest component, whose label
    can be neither larger (no label exceeds its index) nor smaller (labels name components
    of the group). (Pairs not kept point at a spare column ``k``.)"""
    n = ci.size(0)
    spare = torch.full_like(ci, k)
    ci, cj = torch.where(keep, ci, spare), torch.where(keep, cj, spare)
    own = torch.arange(k + 1, device=ci.device).expand(n, k + 1)
    lab = own.clone()
    while True:
        m = torch.minimum(lab.gather(1, ci), lab.gather(1, cj))
        new = lab.scatter_reduce(1, ci, m, "amin").scatter_reduce_(1, cj, m, "amin")
        new = new.gather(1, new)
        if torch.equal(new, lab):
            return lab
        lab = new


def budget_ok(comp: Tensor, ci: Tensor, cj: Tensor, feas: Tensor, present: Tensor,
              cap_node: Tensor) -> Tensor:
    """The two conditions of ``budget`` (see
    :meth:`graphvae.decoders.sequential.SequenceState._joinable`); ``present (G, k)``
    the component labels in use, ``cap_node`` each node's joins (:func:`node_capacity`)."""
    g, k = comp.shape
    # the feasible later pairs join the components into one group
    connected = groups(ci, cj, feas, present) <= 1
    # capacity: the joins each component can still make
    cap = torch.zeros(g, k, device=comp.device).scatter_add_(1, comp, cap_node)
    c = present.sum(1, keepdim=True).float()
    enough = (torch.minimum(cap, c - 1) * present).sum(1) >= 2 * (c[:, 0] - 1)
    return connected & enough


def cuts_ok(rem: Tensor, mask: Tensor, li: Tensor, lj: Tensor, ci: Tensor, cj: Tensor,
             feas: Tensor, present: Tensor, pairs_at: Tensor, cap: Tensor,
             ok: Tensor) -> Tensor:
    """The ``cuts`` conditions, checked where ``ok`` (the other rules pass and more than
    one component is left; ``True`` elsewhere): for every
    set ``X`` of one or two atoms, with ``g(X)`` the number of groups of components
    that the feasible later pairs *not* at ``X`` join, ``g(X) − 1 ≤ Σ_{v∈X} cap_v``
    (``cap_v``: ``min(free valence, feasible later pairs at v)``; ``pairs_at`` and
    ``cap`` from :func:`node_capacity`). Any way of joining every component contains
    a spanning tree over them; ``g(X) − 1`` of its edges must cross between the groups,
    every such edge is a pair at ``X``, and each takes a unit of free valence at an atom
    of ``X``. So a connected target always passes.

    Sets whose condition holds anyway are not computed: where ``Σ cap ≥ c − 1``
    (``c`` components; ``g(X) ≤ c``), where ``Σ cap = 0`` (no pair is removed, and
    the budget rule has checked ``g(∅) = 1``), and where an atom of ``X`` has at
    least as much free valence as feasible pairs (its pairs add at most that many
    groups, so the condition follows from the other atom's, or holds alone)."""
    sets = atom_sets(rem.size(1), rem.device)                   # (S, 2); (v, v): {v}
    u, v = sets[:, 0], sets[:, 1]
    cap_x = cap[:, u] + torch.where(u == v, 0.0, cap[:, v])      # (g, S)
    tight = (rem.clamp(min=0).floor() < pairs_at) & mask
    c = present.sum(1, keepdim=True)
    need = tight[:, u] & tight[:, v] & (cap_x >= 1) & (cap_x < c - 1) & ok[:, None]
    rows, which = need.nonzero(as_tuple=True)
    if rows.numel() == 0:
        return torch.ones_like(ok)
    xu, xv = u[which, None], v[which, None]
    r_i, r_j = li[rows], lj[rows]
    keep = feas[rows] & (r_i != xu) & (r_j != xu) & (r_i != xv) & (r_j != xv)
    apart = groups(ci[rows], cj[rows], keep, present[rows])
    fails = apart - 1 > cap_x[rows, which]
    out = torch.ones_like(ok)
    out[rows[fails]] = False
    return out
