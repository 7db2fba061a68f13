"""Variational autoencoders on graphs: link prediction, small-graph generation and
permutation-invariance testing, on torch and torch-geometric.

Subpackages: ``models`` (the model protocol and the graph models), ``bounds`` (ELBO,
IWAE, permutation bounds, priors), ``training`` (the one loop), ``tasks`` (link
prediction, generation, check-invariance), ``datasets``, ``evaluation``, ``chem``,
``testing`` (invariance assertions for users' tests) and ``vector`` (autoencoders for
vector data, without torch-geometric). Importing ``graphvae`` itself loads none of them.
"""

__version__ = "0.1.0"
__all__: list[str] = []
