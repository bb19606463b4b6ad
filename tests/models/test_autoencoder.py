"""Autoencoders: shapes, the denoising corruption's statistics, and a linear autoencoder trained
with ``fit`` reaching the reconstruction error of PCA (scikit-learn), which no linear code of
the same size can beat."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from sklearn.decomposition import PCA as SkPCA
from threadpoolctl import threadpool_limits

import jdl
from jdl.models import autoencoder as ae
from jdl.nn.combinators import as_module


def test_linear_autoencoder_reaches_the_pca_reconstruction_error():
    x, _ = jdl.data.load("digits", "train")
    x = x - x.mean(axis=0, keepdims=True)  # PCA centres the data; the biases could, but slowly
    k = 6
    model = ae.autoencoder(ae.dense_encoder((), k), ae.dense_decoder((), x.shape[1:]))
    result = jdl.train.fit(model, jdl.losses.mse, jdl.optim.adam(1e-2), (x, x), epochs=40, batch_size=128,
                           progress=False, tensorboard=False)
    ts = result.train_state
    ours = float(ae.reconstruction_error(model, ts.params, ts.state, jnp.asarray(x)))
    flat = x.reshape(len(x), -1)
    with threadpool_limits(1):
        pca = SkPCA(k).fit(flat)
    best = float(np.mean((pca.inverse_transform(pca.transform(flat)) - flat) ** 2))
    assert best * (1 - 1e-4) <= ours < 1.05 * best, (ours, best)


def test_dense_and_conv_autoencoders_map_images_to_images():
    x = jnp.asarray(jdl.data.load("digits", "test")[0][:5])
    model = ae.dense_autoencoder((8, 8, 1), hidden=(32,), latent=2)
    params, state = model.init(jax.random.key(0), x)
    y, _ = model.apply(params, state, x)
    assert y.shape == x.shape and float(y.min()) > 0 and float(y.max()) < 1  # sigmoid outputs
    z = ae.encode(model, params, state, x)
    assert z.shape == (5, 2)
    np.testing.assert_allclose(ae.decode(model, params, state, z), y, rtol=1e-6)
    conv = ae.conv_autoencoder((8, 8, 1), channels=(8, 16), latent=2)
    p, s = jax.eval_shape(conv.init, jax.random.key(0), x)
    assert p["encoder"]["0_conv2d"]["w"].shape == (3, 3, 1, 8)
    assert p["decoder"]["3_conv_transpose2d"]["w"].shape == (4, 4, 16, 8)
    assert p["decoder"]["5_conv_transpose2d"]["w"].shape == (4, 4, 8, 1)
    assert jax.eval_shape(lambda p, s, x: conv.apply(p, s, x)[0], p, s, x).shape == x.shape


def test_denoising_corrupts_only_in_training_with_the_given_sigma():
    identity = as_module(lambda x: x, name="identity")
    model = ae.autoencoder(identity, identity, noise_std=0.3)
    x = jnp.linspace(0, 1, 20_000).reshape(100, 200)
    noisy, _ = model.apply({"encoder": {}, "decoder": {}}, {"encoder": {}, "decoder": {}}, x,
                           key=jax.random.key(0), train=True)
    eps = np.asarray(noisy - x)
    assert abs(eps.mean()) < 0.01 and abs(eps.std() - 0.3) < 0.01  # x̃ = x + 0.3·ε
    clean, _ = model.apply({"encoder": {}, "decoder": {}}, {"encoder": {}, "decoder": {}}, x)
    np.testing.assert_array_equal(clean, x)
    with pytest.raises(ValueError, match=r"autoencoder \(denoising\) is stochastic and needs a random key"):
        model.apply({"encoder": {}, "decoder": {}}, {"encoder": {}, "decoder": {}}, x, train=True)


def test_errors():
    with pytest.raises(ValueError, match="autoencoder: noise_std must be a number >= 0, got -1"):
        ae.dense_autoencoder((8, 8, 1), noise_std=-1)
    with pytest.raises(ValueError, match=r"conv_encoder: H and W must be divisible by 2\^3 = 8 .* got H=12, W=12"):
        ae.conv_encoder((12, 12, 1), (4, 8, 16), 2)
    with pytest.raises(ValueError, match=r"conv_decoder: input_shape must be \(H, W, C\), got \(8, 8\)"):
        ae.conv_decoder((8, 8), (4,))
