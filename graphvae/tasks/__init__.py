"""Orchestration of the three jobs on the package's parts: link prediction
(``link_prediction``, with ``exports`` for ``--out``), small-graph generation
(``generation``) and ``check-invariance`` (``invariance``)."""

__all__: list[str] = []
