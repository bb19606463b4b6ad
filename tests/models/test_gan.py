"""GAN: the losses against their definitions through σ, the non-saturating loss's gradient
against the minimax one where D(G(z)) is small (analytic), and one jitted two-optimizer step
against two steps written by hand with optax."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jdl import optim
from jdl.models import gan
from jdl.train import init_train_state
from tests.helpers import assert_close, assert_init_shapes, draw_normal, draw_uniform


def test_losses_equal_their_definitions_through_sigmoid():
    with jax.enable_x64(True):
        lr, lf = jnp.array([[2.0], [-0.5]]), jnp.array([[-3.0], [1.0], [0.2]])
        d_r, d_f = jax.nn.sigmoid(lr), jax.nn.sigmoid(lf)
        np.testing.assert_allclose(gan.discriminator_loss(lr, lf),
                                   -np.mean(np.log(d_r)) - np.mean(np.log(1 - d_f)), rtol=1e-12)
        np.testing.assert_allclose(gan.generator_loss_minimax(lf), np.mean(np.log(1 - d_f)), rtol=1e-12)
        np.testing.assert_allclose(gan.generator_loss_non_saturating(lf), -np.mean(np.log(d_f)), rtol=1e-12)


@pytest.mark.parametrize("d_fake", [1e-3, 0.01, 0.1, 0.5, 0.9])
def test_non_saturating_gradient_dominates_where_the_discriminator_wins(d_fake):
    """∂/∂l of log(1 − σ(l)) is −D and of −log σ(l) is −(1 − D): the ratio is (1 − D)/D, large
    where D(G(z)) ≈ 0; in D itself, −1/(1 − D) against −1/D."""
    with jax.enable_x64(True):
        l = jnp.log(d_fake / (1 - d_fake)) * jnp.ones((1, 1))  # σ(l) = d_fake
        g_mm = jax.grad(gan.generator_loss_minimax)(l)[0, 0]
        g_ns = jax.grad(gan.generator_loss_non_saturating)(l)[0, 0]
        np.testing.assert_allclose(g_mm, -d_fake, rtol=1e-10)
        np.testing.assert_allclose(g_ns, -(1 - d_fake), rtol=1e-10)
        np.testing.assert_allclose(g_ns / g_mm, (1 - d_fake) / d_fake, rtol=1e-10)
        assert (abs(g_ns) > abs(g_mm)) == (d_fake < 0.5)
        d = jnp.asarray(d_fake)
        np.testing.assert_allclose(jax.grad(lambda d: jnp.log(1 - d))(d), -1 / (1 - d_fake), rtol=1e-12)
        np.testing.assert_allclose(jax.grad(lambda d: -jnp.log(d))(d), -1 / d_fake, rtol=1e-12)


def test_generator_gradients_differ_by_the_factor_through_a_fixed_discriminator():
    """For one z, ∇_θG of the two losses are parallel, in the ratio (1 − D(G(z)))/D(G(z))."""
    G, D = gan.mlp_generator((2, 2, 1), hidden=(8,)), gan.mlp_discriminator(hidden=(8,))
    z = draw_normal(jax.random.key(0), (1, 3))
    gp, _ = G.init(jax.random.key(1), z)
    dp, _ = D.init(jax.random.key(2), jnp.zeros((1, 2, 2, 1)))
    dp["3_dense"]["b"] = jnp.array([-4.0])  # make D reject: D(G(z)) small
    logit = lambda p: D.apply(dp, {}, G.apply(p, {}, z)[0])[0]  # noqa: E731
    dg = float(jax.nn.sigmoid(logit(gp))[0, 0])
    g_mm = jax.grad(lambda p: gan.generator_loss_minimax(logit(p)))(gp)
    g_ns = jax.grad(lambda p: gan.generator_loss_non_saturating(logit(p)))(gp)
    assert dg < 0.05
    assert_close(g_ns, jax.tree.map(lambda g: g * (1 - dg) / dg, g_mm), rtol=1e-3, atol=1e-7)


def test_one_jitted_step_equals_two_manual_steps_with_their_own_optimizers(loss="minimax"):
    G, D = gan.mlp_generator((4, 4, 1), hidden=(16,)), gan.mlp_discriminator(hidden=(16,))
    real = draw_uniform(jax.random.key(9), (8, 4, 4, 1))
    g_ts = init_train_state(G, optim.adam(1e-2), jnp.zeros((1, 5)), seed=1)
    d_ts = init_train_state(D, optim.sgd(0.1, momentum=0.9), real, seed=2)
    step = gan.make_gan_step(G, D, optim.adam(1e-2), optim.sgd(0.1, momentum=0.9), z_dim=5, generator_loss=loss)
    # the reference: optax, by hand, in the order the step promises (D first, then G against the new D)
    g_opt, d_opt = optax.adam(1e-2), optax.sgd(0.1, momentum=0.9)
    gp, dp = jax.tree.map(jnp.copy, (g_ts.params, d_ts.params))  # the step donates its inputs
    g_os, d_os = g_opt.init(gp), d_opt.init(dp)
    g_key = jax.random.wrap_key_data(jnp.copy(jax.random.key_data(g_ts.key)))
    g_ts, d_ts, m = step(g_ts, d_ts, real)

    @jax.jit  # one compilation; op by op, every primitive of both gradients compiles on its own
    def reference(gp, dp, g_os, d_os, z):
        fake = G.apply(gp, {}, z)[0]
        d_fake = jnp.mean(jax.nn.sigmoid(D.apply(dp, {}, fake)[0]))  # before D's update
        d_grad = jax.grad(lambda p: gan.discriminator_loss(D.apply(p, {}, real)[0], D.apply(p, {}, fake)[0]))(dp)
        u, d_os = d_opt.update(d_grad, d_os, dp)
        dp = optax.apply_updates(dp, u)
        g_grad = jax.grad(lambda p: gan.GENERATOR_LOSSES[loss](D.apply(dp, {}, G.apply(p, {}, z)[0])[0]))(gp)
        u, g_os = g_opt.update(g_grad, g_os, gp)
        return optax.apply_updates(gp, u), dp, g_os, d_os, d_fake

    for t in range(2):
        z = draw_normal(jax.random.fold_in(g_key, t), (8, 5))
        gp, dp, g_os, d_os, d_fake = reference(gp, dp, g_os, d_os, z)
        if t == 0:
            assert_close(d_ts.params, dp, rtol=1e-5, atol=1e-6)
            assert_close(g_ts.params, gp, rtol=1e-5, atol=1e-6)
            np.testing.assert_allclose(m["d_fake"], d_fake, rtol=1e-5)
            g_ts, d_ts, m = step(g_ts, d_ts, real)
    assert_close(d_ts.params, dp, rtol=1e-4, atol=1e-6)
    assert_close(g_ts.params, gp, rtol=1e-4, atol=1e-6)
    assert int(g_ts.step) == int(d_ts.step) == 2


def test_model_shapes_and_errors():
    z = jnp.zeros((3, 16))
    for G, D in ((gan.mlp_generator(), gan.mlp_discriminator()), (gan.dcgan_generator(8), gan.dcgan_discriminator(8))):
        _, _, x = assert_init_shapes(G, z)
        assert x.shape == (3, 8, 8, 1) and float(x.min()) >= 0 and float(x.max()) <= 1
        _, _, logit = assert_init_shapes(D, x)
        assert logit.shape == (3, 1)
    with pytest.raises(ValueError, match=r"make_gan_step: generator_loss must be one of \['minimax', 'non_saturating'\], got 'wgan'"):
        gan.make_gan_step(gan.mlp_generator(), gan.mlp_discriminator(), optim.sgd(0.1), optim.sgd(0.1),
                          z_dim=4, generator_loss="wgan")
