"""LoRA: equal to the base at init (bit for bit), merge equal to the unmerged two-matmul form,
gradients only on A and B, the PEFT-style forward in PyTorch given the same A and B, and a
LoRA-wrapped GPT whose loss falls while its base stays bit-identical."""

import numpy as np
import jax
import jax.numpy as jnp
import pytest

from jdl import optim
from jdl.losses import softmax_cross_entropy
from jdl.models.gpt import GPTConfig, gpt
from jdl.models.mlp import mlp
from jdl.nn import lora
from jdl.nn.linear import dense
from tests.helpers import assert_close, draw_normal

GPT_CONFIG = GPTConfig(vocab_size=32, context=16, num_layers=2, d_model=32, num_heads=4, tied_head=False)
ATTN = lora.LoRAConfig(rank=4, alpha=8.0, targets="blocks/*/attn/*")


@pytest.fixture(scope="module")
def gpt_setup():
    model = gpt(GPT_CONFIG)
    params, state = model.init(jax.random.key(0), jnp.zeros((1, 8), jnp.int32))
    return model, params, state


def random_adapters(params, key, scale=0.1):
    """The LoRA params with B random too (a trained-looking ΔW ≠ 0)."""
    leaves, tree = jax.tree.flatten(params["lora"])
    keys = jax.random.split(key, len(leaves))
    return {"base": params["base"],
            "lora": jax.tree.unflatten(tree, [scale * draw_normal(k, x.shape) for k, x in zip(keys, leaves)])}


def test_wrapped_gpt_equals_base_at_init(gpt_setup):
    model, params, state = gpt_setup
    wrapped = lora.with_lora(model, ATTN)
    lp = lora.init_lora(jax.random.key(1), params, ATTN)
    ids = jax.random.randint(jax.random.key(2), (2, 8), 0, GPT_CONFIG.vocab_size)
    assert sorted(lp["lora"]) == [f"blocks/{i}_block/attn/{n}" for i in range(2) for n in "koqv"]
    run = jax.jit(lambda m, p: m.apply(p, state, ids)[0], static_argnums=0)
    np.testing.assert_array_equal(run(wrapped, lp), run(model, params))
    assert np.all(np.asarray(lp["lora"]["blocks/0_block/attn/q"]["b"]) == 0)
    assert np.std(np.asarray(lp["lora"]["blocks/0_block/attn/q"]["a"])) > 0


def test_merge_equals_unmerged_form():
    """dense(merge(params)) = x W + b + (α/r)(x A) B, float64 reference in numpy."""
    model = mlp([16, 12, 5])
    x = draw_normal(jax.random.key(3), (7, 10))
    params, state = model.init(jax.random.key(4), x)
    cfg = lora.LoRAConfig(rank=3, alpha=6.0, init="kaiming")
    lp = random_adapters(lora.init_lora(jax.random.key(5), params, cfg), jax.random.key(6))
    merged = lora.merge(lp, cfg)
    run = jax.jit(lambda m, p: m.apply(p, state, x)[0], static_argnums=0)
    assert_close(run(lora.with_lora(model, cfg), lp), run(model, merged), rtol=1e-6, atol=1e-6)
    # the first layer by hand, unmerged, in float64
    path = next(iter(lp["lora"]))
    dense_p, ad = lora.get_at(params, path), lp["lora"][path]
    w, b, a, bb = (np.asarray(t, np.float64) for t in (dense_p["w"], dense_p["b"], ad["a"], ad["b"]))
    x64 = np.asarray(x, np.float64)
    ref = x64 @ w + b + 2.0 * (x64 @ a) @ bb
    assert_close(lora.lora_dense(lora.get_at(params, path), ad, x, cfg.scale), ref, rtol=1e-5, atol=1e-5)
    assert_close(dense(lora.get_at(merged, path), x), ref, rtol=1e-5, atol=1e-5)


def test_only_adapters_get_gradients(gpt_setup):
    model, params, state = gpt_setup
    wrapped = lora.with_lora(model, ATTN)
    lp = lora.init_lora(jax.random.key(1), params, ATTN)
    ids = jax.random.randint(jax.random.key(2), (2, 9), 0, GPT_CONFIG.vocab_size)

    def loss(p):
        logits = wrapped.apply(p, state, ids[:, :-1])[0]
        return softmax_cross_entropy(logits, ids[:, 1:]).mean()

    grad = jax.jit(jax.grad(loss))
    g = grad(lp)
    assert all(np.all(np.asarray(x) == 0) for x in jax.tree.leaves(g["base"]))
    # at init B = 0, so dL/dA = (α/r) xᵀ (dL/dh) Bᵀ = 0 and only B moves first
    assert all(np.all(np.asarray(ad["a"]) == 0) for ad in g["lora"].values())
    assert all(np.abs(np.asarray(ad["b"])).max() > 0 for ad in g["lora"].values())
    g2 = grad(random_adapters(lp, jax.random.key(7)))
    assert all(np.abs(np.asarray(ad["a"])).max() > 0 for ad in g2["lora"].values())


def test_train_base_gives_the_base_the_merged_models_gradient(gpt_setup):
    """W' = W + (α/r)·A B, so ∂ℓ/∂W = ∂ℓ/∂W' (and the unadapted leaves' gradients are the
    plain model's): with train_base=True, grad over base equals the base model's grad at merge."""
    model, params, state = gpt_setup
    lp = random_adapters(lora.init_lora(jax.random.key(1), params, ATTN), jax.random.key(7))
    ids = jax.random.randint(jax.random.key(2), (2, 9), 0, GPT_CONFIG.vocab_size)
    loss = lambda m, p: softmax_cross_entropy(m.apply(p, state, ids[:, :-1])[0], ids[:, 1:]).mean()
    g = jax.jit(jax.grad(lambda p: loss(lora.with_lora(model, ATTN, train_base=True), p)))(lp)  # op by op: slow
    ref = jax.jit(jax.grad(lambda p: loss(model, p)))(lora.merge(lp, ATTN))
    jax.tree.map(lambda a, b: assert_close(a, b, rtol=1e-5, atol=1e-7), g["base"], ref)
    assert np.abs(np.asarray(g["base"]["wte"]["w"])).max() > 0
    assert all(np.abs(np.asarray(ad["a"])).max() > 0 for ad in g["lora"].values())


@pytest.mark.torch
def test_peft_style_forward_in_torch():
    """PEFT's LoRA Linear: h = x W_tᵀ + b + (α/r)·lora_B(lora_A(x)) with lora_A.weight = aᵀ
    (r, d_in), lora_B.weight = bᵀ (d_out, r); jdl runs the merged W + (α/r) a b."""
    torch = pytest.importorskip("torch")
    d_in, d_out, cfg = 12, 9, lora.LoRAConfig(rank=4, alpha=16.0, init="kaiming")
    params = {"w": draw_normal(jax.random.key(8), (d_in, d_out)), "b": jnp.arange(d_out) * 0.1}
    lp = random_adapters(lora.init_lora(jax.random.key(9), {"fc": params}, cfg), jax.random.key(10))
    ad = lp["lora"]["fc"]
    x = np.asarray(draw_normal(jax.random.key(11), (5, d_in)))
    t = lambda a: torch.tensor(np.asarray(a), dtype=torch.float64)
    base = torch.nn.Linear(d_in, d_out).double()
    lora_a, lora_b = torch.nn.Linear(d_in, 4, bias=False).double(), torch.nn.Linear(4, d_out, bias=False).double()
    with torch.no_grad():
        base.weight.copy_(t(params["w"]).T)
        base.bias.copy_(t(params["b"]))
        lora_a.weight.copy_(t(ad["a"]).T)
        lora_b.weight.copy_(t(ad["b"]).T)
        ref = base(t(x)) + (cfg.alpha / cfg.rank) * lora_b(lora_a(t(x)))
        merged_w = base.weight + (cfg.alpha / cfg.rank) * lora_b.weight @ lora_a.weight  # PEFT's merge
    mine = lora.merge(lp, cfg)["fc"]
    assert_close(dense(mine, jnp.asarray(x)), ref.numpy(), rtol=1e-5, atol=1e-5)
    assert_close(mine["w"], merged_w.numpy().T, rtol=1e-5, atol=1e-6)


def test_kaiming_init_bound_and_gaussian_std():
    w = {"fc": {"w": jnp.zeros((400, 50)), "b": jnp.zeros(50)}}
    a_k = lora.init_lora(jax.random.key(0), w, lora.LoRAConfig(rank=8, init="kaiming"))["lora"]["fc"]["a"]
    assert float(jnp.abs(a_k).max()) <= 1 / 20 and float(jnp.abs(a_k).max()) > 0.045
    a_g = lora.init_lora(jax.random.key(0), w, lora.LoRAConfig(rank=8))["lora"]["fc"]["a"]
    assert abs(float(jnp.std(a_g)) - 1 / 8) < 0.01


def test_lora_gpt_trains_and_base_stays(gpt_setup):
    """Adapters on the attention projections and the untied head (a frozen random tied head
    caps the logits at |LN(h)|·|w_te| ≈ 0.6, out of LoRA's reach on attention alone)."""
    model, params, state = gpt_setup
    cfg = lora.LoRAConfig(rank=4, alpha=8.0, targets=("blocks/*/attn/*", "head"))
    wrapped = lora.with_lora(model, cfg)
    lp = lora.init_lora(jax.random.key(1), params, cfg)
    counts = lora.trainable_count(lp)
    # 2 blocks × 4 projections × r (C + C), and the head's r (C + V)
    assert counts.trainable == 2 * 4 * 4 * (32 + 32) + 4 * (32 + 32)
    assert counts.full == sum(x.size for x in jax.tree.leaves(params))
    ids = jnp.tile(jnp.arange(9) % 5, (4, 1))  # a periodic sequence the base cannot predict yet
    opt = optim.frozen(optim.adamw(1e-2, weight_decay=0.1), "base/**")

    def loss(p):
        return softmax_cross_entropy(wrapped.apply(p, state, ids[:, :-1])[0], ids[:, 1:]).mean()

    @jax.jit
    def step(p, s):
        value, g = jax.value_and_grad(loss)(p)
        u, s = opt.update(g, s, p)
        return optim.apply_updates(p, u), s, value

    p, s, losses = lp, opt.init(lp), []
    for _ in range(40):
        p, s, value = step(p, s)
        losses.append(float(value))
    assert losses[-1] < 0.25 * losses[0]
    assert all(np.array_equal(a, b) for a, b in zip(jax.tree.leaves(p["base"]), jax.tree.leaves(params)))
    merged = lora.merge(p, cfg)
    assert_close(model.apply(merged, state, ids)[0], wrapped.apply(p, state, ids)[0], rtol=1e-6, atol=1e-6)


def test_errors(gpt_setup):
    model, params, state = gpt_setup
    with pytest.raises(ValueError, match=r"no Dense params .* match \('nothing/\*',\)"):
        lora.init_lora(jax.random.key(0), params, lora.LoRAConfig(targets="nothing/*"))
    with pytest.raises(ValueError, match="rank r=64 exceeds min\\(d_in, d_out\\)=32 of 'blocks/0_block/attn/k'"):
        lora.init_lora(jax.random.key(0), params, lora.LoRAConfig(rank=64, targets="blocks/*/attn/*"))
    with pytest.raises(ValueError, match="LoRAConfig: rank must be a positive int, got 0"):
        lora.LoRAConfig(rank=0)
    with pytest.raises(ValueError, match="LoRAConfig: init must be one of"):
        lora.LoRAConfig(init="xavier")
    with pytest.raises(TypeError, match=r"lora.merge: expected LoRA params \{'base', 'lora'\}"):
        lora.merge(params, ATTN)
    lp = lora.init_lora(jax.random.key(0), params, ATTN)
    bad = {**lp, "lora": {**lp["lora"], "blocks/0_block/attn/q": {"a": jnp.zeros((5, 4)), "b": jnp.zeros((4, 32))}}}
    with pytest.raises(ValueError, match=r"'blocks/0_block/attn/q' has w \(32, 32\) but a \(5, 4\)"):
        lora.merge(bad, ATTN)
    with pytest.raises(TypeError, match="lora_gpt: apply got an unexpected keyword argument 'trian'"):
        lora.with_lora(model, ATTN).apply(lp, state, jnp.zeros((1, 4), jnp.int32), trian=True)
