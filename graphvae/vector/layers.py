"""Layers of the vector autoencoders: MLPs (with gated linear units as an option) and the
input corruptions of denoising autoencoders."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor, nn


class GatedLinear(nn.Module):
    """A gated linear unit layer, ``(W x + b) ⊙ σ(V x + c)`` (Dauphin et al., ICML 2017).

    The hidden layer of Tomczak & Welling's MLP VAEs (*VAE with a VampPrior*, AISTATS
    2018: two gated layers of 300 units each way). One ``Linear(in, 2·out)`` computes
    both halves.
    """

    def __init__(self, in_features: int, out_features: int):
        super().__init__()
        self.linear = nn.Linear(in_features, 2 * out_features)

    def forward(self, x: Tensor) -> Tensor:
        h, g = self.linear(x).chunk(2, dim=-1)
        return h * torch.sigmoid(g)


# "gated" is not an elementwise function: it makes each hidden layer a GatedLinear.
ACTIVATIONS: dict[str, type[nn.Module] | None] = {"relu": nn.ReLU, "tanh": nn.Tanh,
                                                  "elu": nn.ELU, "gated": None}
CORRUPTIONS = ("gaussian", "masking", "salt_and_pepper")


def mlp(sizes: list[int], activation: str) -> nn.Sequential:
    """Linear layers of the given widths with ``activation`` between them (none after the last).

    ``activation="gated"``: every layer but the last is a :class:`GatedLinear`.
    """
    if activation not in ACTIVATIONS:
        raise ValueError(f"unknown activation {activation!r}: use one of {sorted(ACTIVATIONS)}")
    act = ACTIVATIONS[activation]
    layers: list[nn.Module] = []
    for i in range(len(sizes) - 1):
        hidden = i < len(sizes) - 2
        if hidden and act is None:
            layers.append(GatedLinear(sizes[i], sizes[i + 1]))
            continue
        layers.append(nn.Linear(sizes[i], sizes[i + 1]))
        if hidden and act is not None:
            layers.append(act())
    return nn.Sequential(*layers)


@dataclass(frozen=True)
class Corruption:
    """Input corruption of a denoising autoencoder (Vincent et al., ICML 2008 / JMLR 2010).

    * ``gaussian``: ``x + level · ε``, ``ε ~ N(0, I)``;
    * ``masking``: each entry set to 0 with probability ``level``;
    * ``salt_and_pepper``: each entry, with probability ``level``, set to ``low`` or
      ``high`` (one half each).
    """

    kind: str = "gaussian"
    level: float = 0.1
    low: float = 0.0
    high: float = 1.0

    def __post_init__(self):
        if self.kind not in CORRUPTIONS:
            raise ValueError(f"unknown corruption {self.kind!r}: use one of {CORRUPTIONS}")
        if not 0 <= self.level < math.inf or (self.kind != "gaussian" and self.level > 1):
            need = ("a finite standard deviation >= 0" if self.kind == "gaussian" else
                    "a probability in [0, 1]")
            raise ValueError(f"the {self.kind} corruption's level must be {need}, got "
                             f"{self.level}")

    def __call__(self, x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        if self.kind == "gaussian":
            return x + self.level * torch.randn(x.shape, generator=generator, dtype=x.dtype,
                                                device=x.device)
        u = torch.rand(x.shape, generator=generator, dtype=x.dtype, device=x.device)
        if self.kind == "masking":
            return torch.where(u < self.level, torch.zeros_like(x), x)
        coin = torch.rand(x.shape, generator=generator, dtype=x.dtype, device=x.device)
        noise = torch.where(coin < 0.5, torch.full_like(x, self.low), torch.full_like(x, self.high))
        return torch.where(u < self.level, noise, x)
