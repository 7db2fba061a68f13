"""Orchestration of the four jobs on the package's parts: link prediction
(``link_prediction``, with ``link_scores`` and ``exports`` for ``--out``), small-graph
generation (``generation``), scoring sample files (``scoring``, ``graphvae score``) and
``check-invariance`` (``invariance``)."""

__all__: list[str] = []
