"""Autoencoders for vector data: deep AE, denoising AE, VAE and IWAE, on the shared bounds.

One class, :class:`VectorAutoencoder`, covers all four: a deterministic code is a
:class:`~graphvae.bounds.PointMass` posterior (its ELBO is the reconstruction
log-likelihood), a variational one a :class:`~graphvae.bounds.DiagGaussian`;
a denoising AE corrupts the encoder's input and scores the clean input; IWAE is
a VAE trained with :class:`~graphvae.bounds.IWAE`. The likelihoods are
``likelihoods.features``' Bernoulli (on logits) and Gaussian (fixed or learned
per-dimension variance), so the numbers mean the same thing as on the graph side.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import Tensor, nn

from graphvae.bounds import ELBO, IWAE, BoundEstimate, DiagGaussian, PointMass, StandardNormal
from graphvae.checks import MAX_FEATURES, check_width_list, check_widths
from graphvae.config import check_count, check_field_types, check_keys
from graphvae.devices import draw_device
from graphvae.likelihoods import MIN_LOGVAR, LogLik, bernoulli_log_prob, gaussian_log_prob
from graphvae.vector.layers import ACTIVATIONS, Corruption, mlp

LIKELIHOODS = ("bernoulli", "gaussian")
#: The smallest fixed variance: below it float32 cannot hold the Gaussian's log-density.
MIN_VARIANCE = 1e-30


def check_variance(variance: str | float) -> None:
    """A one-line ``ValueError`` unless ``variance`` is ``"learned"`` or a number in
    ``[MIN_VARIANCE, ∞)``."""
    if variance != "learned" and (isinstance(variance, str)
                                  or not MIN_VARIANCE <= float(variance) < math.inf):
        raise ValueError(f"variance must be 'learned' or a number from {MIN_VARIANCE:g} "
                         f"(float32 holds its log-density) up, got {variance!r}")


@dataclass(frozen=True)
class VectorConfig:
    """Everything needed to rebuild a :class:`VectorAutoencoder` (saved in checkpoints)."""

    in_dim: int
    latent_dim: int = 40
    hidden: tuple[int, ...] = (400,)
    variational: bool = True
    likelihood: str = "bernoulli"
    variance: str | float = "learned"   # Gaussian only: "learned" or a fixed variance
    activation: str = "relu"
    corruption: str | None = None       # denoising AE: a Corruption kind
    noise_level: float = 0.1

    def __post_init__(self):
        check_field_types(self)
        # the bounds the vector command's flags have (a saved in_dim or width of 2^62
        # failed inside torch: "Storage size calculation overflowed")
        check_count("in_dim", self.in_dim, maximum=MAX_FEATURES)
        check_widths("latent_dim", self.latent_dim)
        check_width_list("hidden", self.hidden, allow_empty=True)
        if self.likelihood not in LIKELIHOODS:
            raise ValueError(f"unknown likelihood {self.likelihood!r}: use one of {LIKELIHOODS}")
        check_variance(self.variance)
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"unknown activation {self.activation!r}: use one of "
                             f"{sorted(ACTIVATIONS)}")
        if self.corruption is not None:
            Corruption(self.corruption, self.noise_level)  # validates

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["hidden"] = list(self.hidden)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> VectorConfig:
        """What :meth:`to_dict` wrote (``hidden`` as a list; a missing one is no layer);
        a one-line ``ValueError`` for anything else."""
        check_keys(cls, d)
        hidden = d.get("hidden", [])
        return cls(**{**d, "hidden": tuple(hidden) if type(hidden) is list else hidden})


class VectorAutoencoder(nn.Module):
    """MLP encoder and decoder around a ``latent_dim`` bottleneck.

    ``encode(x)`` gives the posterior (``DiagGaussian`` when ``variational``, else
    ``PointMass``); ``log_likelihood(x, z)`` is ``log p(x | z)`` in nats, one value
    per sample and row; ``bound`` evaluates the ELBO or IWAE_K per row.
    """

    def __init__(self, config: VectorConfig):
        super().__init__()
        self.config = config
        c = config
        out = 2 * c.latent_dim if c.variational else c.latent_dim
        self.encoder = mlp([c.in_dim, *c.hidden, out], c.activation)
        self.decoder = mlp([c.latent_dim, *reversed(c.hidden), c.in_dim], c.activation)
        self.logvar: nn.Parameter | None = None
        if c.likelihood == "gaussian" and c.variance == "learned":
            self.logvar = nn.Parameter(torch.zeros(c.in_dim))
        self.corruption = Corruption(c.corruption, c.noise_level) if c.corruption else None
        self.prior = StandardNormal()
        # the training bound of forward(): "elbo" with num_samples draws or IWAE_K; the KL
        # weight is for warm-up (graphvae.training.KLWarmup)
        self.objective, self.num_samples, self.kl_weight = "elbo", 1, 1.0

    kind = "vector"

    def init_kwargs(self) -> dict[str, Any]:
        """The config (JSON types) that rebuilds this model for its state dict."""
        return self.config.to_dict()

    def set_objective(self, objective: str = "elbo", num_samples: int = 1
                      ) -> VectorAutoencoder:
        """Choose the bound :meth:`forward` trains on; returns the model."""
        if objective not in ("elbo", "iwae") or num_samples < 1:
            raise ValueError(f"objective must be 'elbo' or 'iwae' and num_samples >= 1, got "
                             f"{objective!r}, {num_samples}")
        if objective == "iwae" and not self.config.variational:
            raise ValueError("the IWAE objective needs a variational model")
        self.objective, self.num_samples = objective, num_samples
        return self

    def forward(self, x: Tensor, generator: torch.Generator | None = None) -> BoundEstimate:
        """The model protocol: the training bound (:meth:`set_objective`) of the rows ``x``,
        with the encoder's input corrupted in training mode for a denoising AE."""
        x_in = (self.corruption(x, generator) if self.corruption is not None and self.training
                else None)
        return self.bound(x, self.objective, self.num_samples, x_in=x_in, generator=generator,
                          kl_weight=self.kl_weight)

    # -- the model ---------------------------------------------------------------------
    def rows(self, x: Tensor) -> Tensor:
        """``x`` in the parameters' dtype: float64 rows (a ``.npy`` file's, numpy's default),
        integer or bool rows meet float32 weights in every method that takes rows, as the
        API functions (``estimate_nll``, ``train_vector``) take them."""
        if not isinstance(x, Tensor) or x.dim() != 2 or x.size(1) != self.config.in_dim:
            got = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
            raise ValueError(f"x must be rows of shape (N, {self.config.in_dim}), got {got} "
                             f"(one row: x[None]; a data set given to fit: batches of rows, "
                             f"e.g. graphvae.training.Shuffled)")
        dtype = next(self.encoder.parameters()).dtype
        return x if x.dtype == dtype else x.to(dtype)

    def encode(self, x: Tensor) -> DiagGaussian | PointMass:
        x = self.rows(x)
        h = self.encoder(x).to(x.dtype)  # float32 again under bf16 autocast
        if not self.config.variational:
            return PointMass(h)
        loc, logvar = h.chunk(2, dim=-1)
        return DiagGaussian(loc, logvar)

    def decoder_logvar(self) -> Tensor | float:
        if self.logvar is not None:
            return self.logvar.clamp(min=MIN_LOGVAR)
        return math.log(float(self.config.variance))

    def decode(self, z: Tensor) -> Tensor:
        """Decoder output: Bernoulli logits or the Gaussian mean (in ``z``'s dtype).

        Under ``torch.autocast`` the layers run in bf16 but the output is cast back,
        so likelihoods, log-densities and log-sum-exps stay in full precision.
        """
        return self.decoder(z).to(z.dtype)

    def mean(self, z: Tensor) -> Tensor:
        """``E[x | z]``: probabilities (Bernoulli) or the mean (Gaussian)."""
        out = self.decode(z)
        return torch.sigmoid(out) if self.config.likelihood == "bernoulli" else out

    def log_likelihood(self, x: Tensor, z: Tensor) -> Tensor:
        """``log p(x | z)`` summed over dimensions; ``z: (..., B, d)`` gives ``(..., B)``."""
        x, out = self.rows(x), self.decode(z)
        if self.config.likelihood == "bernoulli":
            return bernoulli_log_prob(x, out)
        return gaussian_log_prob(x, out, self.decoder_logvar())

    # -- bounds ------------------------------------------------------------------------
    def bound(self, x: Tensor, objective: str = "elbo", num_samples: int = 1,
              x_in: Tensor | None = None, generator: torch.Generator | None = None,
              eps: Tensor | None = None, kl_weight: float = 1.0) -> BoundEstimate:
        """ELBO (``objective="elbo"``, ``num_samples`` draws) or IWAE_K per row of ``x``.

        ``x_in`` is what the encoder sees (a corrupted ``x`` for a denoising AE);
        the likelihood always scores ``x``. The surrogate is the mean loss per row,
        with the ELBO's KL term weighted by ``kl_weight`` (KL warm-up; the value is
        always the true bound).
        """
        q = self.encode(x if x_in is None else x_in)

        def loglik(z: Tensor) -> LogLik:
            v = self.log_likelihood(x, z)
            return LogLik(v, v)

        scale = 1.0 / x.size(0)
        if objective == "elbo":
            return ELBO(num_samples, kl_weight=kl_weight, scale=scale, prior=self.prior)(
                q, loglik, eps=eps, generator=generator)
        if objective == "iwae":
            if kl_weight != 1.0:
                raise ValueError("KL weighting (warm-up) applies to the ELBO objective only")
            if not isinstance(q, DiagGaussian):
                raise ValueError("the IWAE objective needs a variational model")
            return IWAE(num_samples, scale=scale, prior=self.prior)(q, loglik, eps=eps,
                                                                    generator=generator)
        raise ValueError(f"unknown objective {objective!r}: use 'elbo' or 'iwae'")

    @torch.no_grad()
    def log_marginal(self, x: Tensor, num_samples: int = 5000, chunk: int = 500,
                     generator: torch.Generator | None = None) -> Tensor:
        """Importance-sampled ``log p(x)`` per row with ``q(z|x)`` as proposal.

        ``log (1/K) Σ_k p(x|z_k) p(z_k) / q(z_k|x)`` with ``K = num_samples`` (5000
        by default, as in Burda et al. 2016); it is IWAE_K, a stochastic lower bound
        that converges to ``log p(x)``. Samples are drawn ``chunk`` at a time and the
        log-sum-exp is accumulated, so memory is ``chunk × B × in_dim``.
        """
        check_count("num_samples", num_samples)
        check_count("chunk", chunk)
        x = self.rows(x)
        q = self.encode(x)
        if not isinstance(q, DiagGaussian):
            raise ValueError("log p(x) needs a variational model (vae or iwae)")
        total = torch.full((x.size(0),), -math.inf, dtype=x.dtype, device=x.device)
        done = 0
        while done < num_samples:
            s = min(chunk, num_samples - done)
            z, eps = q.draw((s,), generator=generator)
            logw = self.log_likelihood(x, z) + self.prior.log_prob(z) - q.log_prob(z, eps)
            total = torch.logaddexp(total, torch.logsumexp(logw, 0))
            done += s
        return total - math.log(num_samples)

    # -- uses --------------------------------------------------------------------------
    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None,
               mean: bool = True) -> Tensor:
        """``n`` draws ``z ~ p(z)`` decoded to ``E[x|z]`` (a sample of x if ``mean=False``)."""
        p = next(self.parameters())
        z = self.prior.sample((n, self.config.latent_dim), generator, p.dtype, p.device)
        m = self.mean(z)
        if mean:
            return m
        where = draw_device(generator, m.device)          # drawn there, then moved
        if self.config.likelihood == "bernoulli":
            return torch.bernoulli(m.to(where), generator=generator).to(m.device)
        std = torch.exp(0.5 * torch.as_tensor(self.decoder_logvar(), dtype=m.dtype,
                                              device=m.device))
        return m + std * torch.randn(m.shape, generator=generator, dtype=m.dtype,
                                     device=where).to(m.device)

    @torch.no_grad()
    def reconstruct(self, x: Tensor) -> Tensor:
        """``E[x | z = mean of q(z|x)]``."""
        return self.mean(self.encode(x).mean)

    @torch.no_grad()
    def codes(self, x: Tensor) -> Tensor:
        """The posterior mean (the code) of each row."""
        return self.encode(x).mean

    @torch.no_grad()
    def interpolate(self, x0: Tensor, x1: Tensor, steps: int = 8) -> Tensor:
        """Decode ``(1 − t) z0 + t z1`` for ``steps`` values of ``t`` in [0, 1] (linear path)."""
        if steps < 2:
            raise ValueError(f"steps must be >= 2, got {steps}")
        z0, z1 = self.codes(x0.reshape(1, -1)), self.codes(x1.reshape(1, -1))
        t = torch.linspace(0, 1, steps, dtype=z0.dtype, device=z0.device).unsqueeze(1)
        return self.mean((1 - t) * z0 + t * z1)

    @torch.no_grad()
    def vector_field(self, x: Tensor) -> Tensor:
        """``r(x) − x``: where the (denoising) autoencoder moves each point.

        For a denoising AE trained with small Gaussian noise σ, ``r(x) − x ≈ σ² ∇ log p(x)``
        (Alain & Bengio, JMLR 2014): the field points toward the data.
        """
        return self.reconstruct(x) - x


VECTOR_MODELS: dict[str, dict[str, Any]] = {
    "ae": {"variational": False},
    "dae": {"variational": False, "corruption": "gaussian"},
    "vae": {"variational": True},
    "iwae": {"variational": True},
}


#: IWAE's importance samples K when ``build_vector_model("iwae")`` is given none (the
#: command line's ``--k`` default)
IWAE_DEFAULT_K = 5


def build_vector_model(kind: str, in_dim: int, num_samples: int | None = None,
                       **kwargs: Any) -> VectorAutoencoder:
    """``ae``, ``dae``, ``vae`` or ``iwae``: IWAE differs from VAE only in its objective,
    which the returned model's :meth:`~VectorAutoencoder.forward` (and
    :func:`~graphvae.vector.train.train_vector` unless told otherwise) trains on: IWAE_K
    with ``K = num_samples`` (default :data:`IWAE_DEFAULT_K`). ``num_samples`` is for
    ``iwae`` only."""
    if kind not in VECTOR_MODELS:
        raise ValueError(f"unknown model {kind!r}: use one of {sorted(VECTOR_MODELS)}; the "
                         f"linear autoencoder is graphvae.vector.LinearAE, trained by "
                         f"train_linear_ae")
    if num_samples is not None and kind != "iwae":
        raise ValueError(f"num_samples is IWAE's K; a {kind!r} model takes none")
    opts = {**VECTOR_MODELS[kind], **{k: v for k, v in kwargs.items() if v is not None}}
    if kind == "dae" and not opts.get("corruption"):
        raise ValueError("a denoising AE needs a corruption")
    if isinstance(opts.get("hidden"), list):
        opts["hidden"] = tuple(opts["hidden"])
    model = VectorAutoencoder(VectorConfig(in_dim=in_dim, **opts))
    if kind == "iwae":
        model.set_objective("iwae", IWAE_DEFAULT_K if num_samples is None else num_samples)
    return model
