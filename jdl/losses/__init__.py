"""Loss functions. Each takes predictions first and targets second, returns the mean over
examples (``reduction='mean'``), their sum (``'sum'``) or one value per example (``'none'``),
and checks at trace time that the two shapes agree. ``core``: regression, classification,
distillation, preference, robust and auxiliary-head losses; ``latent``: the VAE's KL,
likelihoods and ELBO."""

from jdl.losses.core import _reduce, _same_shape  # noqa: F401  (shared by jdl.contrastive, jdl.detection)
from jdl.losses.core import (auxiliary_loss, binary_cross_entropy, distillation, dpo_loss,
                             generalized_cross_entropy, mse, sigmoid_binary_cross_entropy,
                             softmax_cross_entropy)
from jdl.losses.latent import (bernoulli_log_likelihood, decoder_log_likelihood, elbo, gaussian_kl,
                               gaussian_log_likelihood, vae_loss)

__all__ = ["mse", "binary_cross_entropy", "sigmoid_binary_cross_entropy", "softmax_cross_entropy",
           "distillation", "dpo_loss", "generalized_cross_entropy", "auxiliary_loss", "gaussian_kl",
           "bernoulli_log_likelihood", "gaussian_log_likelihood", "decoder_log_likelihood", "elbo",
           "vae_loss"]
