"""Graph models, all speaking one protocol.

Every trainable model has ``forward(batch, generator=None)`` returning a
:class:`~graphvae.bounds.BoundEstimate` (``value``: the bound in nats per graph;
``surrogate``: the training loss) and ``init_kwargs()`` (its constructor arguments, saved
in checkpoints; :mod:`~graphvae.models.checkpoints` rebuilds from them); samplers add
``sample(num, generator, device)`` giving :class:`~graphvae.containers.SampledGraph`
records; each owns its prior (``model.prior``). For :mod:`graphvae.testing` they also
give ``node_latents``, ``invariance_batch(x, edge_index, node_types, edge_types)``,
``graph_posterior(batch)``, ``decoder_outputs(z, batch)`` and ``exact_bound(batch, eps)``.

* :class:`GraphAutoencoder` (GAE, VGAE, joint; :func:`build_model`) on a
  :class:`~graphvae.containers.LinkBatch`;
* :class:`GraphVAE` (Simonovsky & Komodakis) and :class:`EquivariantGraphVAE` (one-shot,
  per-node latents) and :class:`SequentialGraphVAE` (per-node latents under a set prior,
  pairs decided in sequence) on a :class:`~graphvae.containers.GraphBatch`.
"""

from graphvae.models.autoencoders import (
    MODELS,
    EdgeObjective,
    GraphAutoencoder,
    build_model,
)
from graphvae.models.checkpoints import BUILDERS, load_model, save_model
from graphvae.models.graphvae import GraphVAE
from graphvae.models.oneshot import EquivariantGraphVAE
from graphvae.models.sequential import SequentialGraphVAE

__all__ = ["BUILDERS", "MODELS", "EdgeObjective", "EquivariantGraphVAE", "GraphAutoencoder",
           "GraphVAE", "SequentialGraphVAE", "build_model", "load_model", "save_model"]
