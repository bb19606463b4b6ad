"""Autoencoders: an encoder f squeezes x into a code z = f(x) of a few numbers, a decoder g
rebuilds x̂ = g(z), and both are trained to make x̂ close to x (the course's "learn a compressed
representation without labels"). A linear encoder and decoder with the squared error learn the
PCA subspace (``jdl.models.latent``); nonlinear ones can follow a curved data manifold.

A denoising autoencoder (Vincent et al., 2008) corrupts the input in training,
x̃ = x + σε, and still asks for the clean x: it cannot learn the identity map, and learns
instead to project corrupted points back onto the data.

Train one with ``jdl.train.fit(model, jdl.losses.mse, optimizer, (x, x))``: the targets are
the inputs themselves.
"""

from __future__ import annotations

import math
from typing import Any, Callable, Sequence

import jax
import jax.numpy as jnp

from jdl.core import Module, Params, PRNGKey, State, check_key, leaf, shape_struct
from jdl.nn.activations import relu, sigmoid
from jdl.nn.combinators import as_module, serial
from jdl.nn.conv import Conv2D
from jdl.nn.conv_transpose import ConvTranspose2D
from jdl.nn.linear import Dense, Flatten

Activation = Callable[[jax.Array], jax.Array]


def autoencoder(encoder: Module, decoder: Module, *, noise_std: float = 0.0) -> Module:
    """An autoencoder x̂ = g(f(x̃)) with x̃ = x + σε (ε ~ N(0, I)) when ``train=True`` and σ > 0
    (a denoising autoencoder), x̃ = x otherwise.

    Params and state are ``{'encoder': …, 'decoder': …}``; ``encode`` and ``decode`` run each
    half alone (``Module.children`` is ``(encoder, decoder)``).

    Shapes: x (B, ...) → x̂ of whatever shape the decoder returns (x's, for a training target).

    Args:
      encoder: x → z.
      decoder: z → x̂.
      noise_std: σ of the training-time Gaussian corruption; 0 for a plain autoencoder. With
        σ > 0, ``apply(..., train=True)`` needs a ``key``.
    """
    if not isinstance(noise_std, (int, float)) or noise_std < 0:
        raise ValueError(f"autoencoder: noise_std must be a number >= 0, got {noise_std!r}")

    def init(key: PRNGKey, x: Any) -> tuple[Params, State]:
        k_enc, k_dec = jax.random.split(key)
        enc_params, enc_state = encoder.init(k_enc, x)
        z = jax.eval_shape(lambda p, s, x: encoder.apply(p, s, x)[0], enc_params, enc_state, shape_struct(x))
        dec_params, dec_state = decoder.init(k_dec, z)
        return {"encoder": enc_params, "decoder": dec_params}, {"encoder": enc_state, "decoder": dec_state}

    def apply(params: Params, state: State, x: Any, *, key=None, train=False):
        if noise_std > 0:
            check_key("autoencoder (denoising)", key, train)
        k_noise, k_enc, k_dec = jax.random.split(key, 3) if key is not None else (None,) * 3
        if train and noise_std > 0:
            x = x + noise_std * jax.random.normal(k_noise, x.shape, x.dtype)  # x̃ = x + σε
        z, enc_state = encoder.apply(params["encoder"], state["encoder"], x, key=k_enc, train=train)
        x_hat, dec_state = decoder.apply(params["decoder"], state["decoder"], z, key=k_dec, train=train)
        return x_hat, {"encoder": enc_state, "decoder": dec_state}

    return leaf(init, apply, "autoencoder")._replace(children=(encoder, decoder))


def encode(model: Module, params: Params, state: State, x: Any) -> jax.Array:
    """The code z = f(x) of an ``autoencoder`` or ``vae`` (its encoder's output, in eval mode).

    Shapes: x (B, ...) → z (B, d_z) (for a ``vae``, (B, 2·d_z): μ and log σ² side by side)."""
    return model.children[0].apply(params["encoder"], state["encoder"], x)[0]


def decode(model: Module, params: Params, state: State, z: jax.Array) -> jax.Array:
    """The decoder's output g(z) of an ``autoencoder`` or ``vae``, in eval mode.

    Shapes: z (B, d_z) → (B, ...)."""
    return model.children[1].apply(params["decoder"], state["decoder"], z)[0]


def unflatten(shape: Sequence[int]) -> Module:
    """The parameter-free layer (B, prod(shape)) → (B, *shape)."""
    shape = tuple(shape)
    return as_module(lambda x: x.reshape(x.shape[0], *shape), name="unflatten")


def dense_encoder(hidden: Sequence[int], d_out: int, activation: Activation = relu) -> Module:
    """flatten → [Dense(h) → φ] for each h in ``hidden`` → Dense(d_out).

    Shapes: x (B, ...) → (B, d_out)."""
    layers: list = [Flatten()]
    for h in hidden:
        layers += [Dense(h), activation]
    return serial(*layers, Dense(d_out))


def dense_decoder(hidden: Sequence[int], output_shape: Sequence[int], activation: Activation = relu,
                  output_activation: Activation | None = None) -> Module:
    """[Dense(h) → φ] for each h in ``hidden`` → Dense(prod(output_shape)) → reshape
    (→ ``output_activation``, e.g. a sigmoid for pixels in [0, 1]; none gives logits or means).

    Shapes: z (B, d_z) → (B, *output_shape)."""
    layers: list = []
    for h in hidden:
        layers += [Dense(h), activation]
    layers += [Dense(math.prod(output_shape)), unflatten(output_shape)]
    return serial(*layers, *([output_activation] if output_activation is not None else []))


def _check_image_shape(name: str, input_shape: Sequence[int], levels: int) -> tuple[int, int, int]:
    if len(input_shape) != 3:
        raise ValueError(f"{name}: input_shape must be (H, W, C), got {tuple(input_shape)}")
    h, w, c = input_shape
    if h % 2 ** levels or w % 2 ** levels:
        raise ValueError(f"{name}: H and W must be divisible by 2^{levels} = {2 ** levels} for "
                         f"{levels} stride-2 layers, got H={h}, W={w}")
    return h, w, c


def conv_encoder(input_shape: Sequence[int], channels: Sequence[int], d_out: int,
                 activation: Activation = relu) -> Module:
    """[Conv2D(c, 3, stride 2, 'SAME') → φ] for each c in ``channels`` (each halves H and W)
    → flatten → Dense(d_out).

    Shapes: x (B, H, W, C) → (B, d_out); H, W divisible by 2^len(channels)."""
    _check_image_shape("conv_encoder", input_shape, len(channels))
    layers: list = []
    for c in channels:
        layers += [Conv2D(c, 3, stride=2), activation]
    return serial(*layers, Flatten(), Dense(d_out))


def conv_decoder(output_shape: Sequence[int], channels: Sequence[int], activation: Activation = relu,
                 output_activation: Activation | None = None) -> Module:
    """The mirror of ``conv_encoder``: Dense → reshape to (H/2^L, W/2^L, channels[−1]), then
    ConvTranspose2D(c, 4, stride 2, padding 1) (each doubles H and W) for the channels in
    reverse, the last one to C output channels (→ ``output_activation``).

    Shapes: z (B, d_z) → (B, H, W, C); L = len(channels)."""
    h, w, c_out = _check_image_shape("conv_decoder", output_shape, len(channels))
    levels = len(channels)
    start = (h // 2 ** levels, w // 2 ** levels, channels[-1])
    layers: list = [Dense(math.prod(start)), activation, unflatten(start)]
    outs = [*channels[::-1][1:], c_out]
    for i, c in enumerate(outs):
        layers.append(ConvTranspose2D(c, 4, stride=2, padding=1))
        if i < len(outs) - 1:
            layers.append(activation)
    return serial(*layers, *([output_activation] if output_activation is not None else []))


def dense_autoencoder(input_shape: Sequence[int], hidden: Sequence[int] = (128,), latent: int = 2, *,
                      noise_std: float = 0.0) -> Module:
    """A fully connected autoencoder with a ``latent``-dimensional code and sigmoid outputs
    (pixels in [0, 1]): x → flatten → hidden → z → reversed hidden → x̂.

    Shapes: x (B, *input_shape) → x̂ (B, *input_shape)."""
    return autoencoder(dense_encoder(hidden, latent),
                       dense_decoder(tuple(hidden)[::-1], input_shape, output_activation=sigmoid),
                       noise_std=noise_std)


def conv_autoencoder(input_shape: Sequence[int], channels: Sequence[int] = (16, 32), latent: int = 2, *,
                     noise_std: float = 0.0) -> Module:
    """A convolutional autoencoder: stride-2 convolutions down to a ``latent`` code, transposed
    convolutions (``ConvTranspose2D``) back up, sigmoid outputs.

    Shapes: x (B, H, W, C) → x̂ (B, H, W, C)."""
    return autoencoder(conv_encoder(input_shape, channels, latent),
                       conv_decoder(input_shape, channels, output_activation=sigmoid), noise_std=noise_std)


def reconstruction_error(model: Module, params: Params, state: State, x: jax.Array) -> jax.Array:
    """The mean squared error per pixel, mean_i ‖x_i − x̂_i‖² / D, in eval mode (no corruption).

    Shapes: x (B, ...) → a scalar."""
    x_hat, _ = model.apply(params, state, x)
    return jnp.mean(jnp.square(x_hat - x))
