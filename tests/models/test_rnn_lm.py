"""Recurrent language models: logits (and the LSTM's gradients) equal torch's Embedding →
LSTM/GRU/RNN → Linear with the same weights; carrying the state over a split window equals one
pass; generation with the carried state equals recomputing the whole prefix (greedy at τ = 0,
and the same draws at τ = 1), compiled once."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jdl.losses import softmax_cross_entropy
from jdl.models import generate, lstm_lm
from jdl.models.sampling import sample_logits

V, E, H, B, T = 11, 5, 7, 3, 6
IDS = jnp.asarray(np.random.default_rng(0).integers(0, V, (B, T)), jnp.int32)


def init(model, seed=0, scale=1.0):
    params, _ = model.init(jax.random.key(seed), IDS)
    return jax.tree.map(lambda a: scale * a, params)


@pytest.fixture(scope="module")
def lstm2():
    model = lstm_lm(V, embed=E, hidden=H, num_layers=2)
    return model, init(model, scale=2.0)  # larger weights: logits far from ties


def torch_lm(params, kind, torch):
    """torch.nn.Embedding → torch.nn.{LSTM, GRU, RNN}(2 layers, batch_first) → Linear holding
    ``params`` (torch's weights are our w_x, w_h transposed; its two biases are our b and b_h or 0)."""
    emb = torch.nn.Embedding(V, E)
    cell = {"lstm": torch.nn.LSTM, "gru": torch.nn.GRU, "rnn": torch.nn.RNN}[kind](E, H, 2, batch_first=True)
    head = torch.nn.Linear(H, V)
    t = lambda a: torch.tensor(np.asarray(a))  # noqa: E731
    with torch.no_grad():
        emb.weight.copy_(t(params["0_embedding"]["w"]))
        for layer in range(2):
            p = params[f"{layer + 1}_{'simple_rnn' if kind == 'rnn' else kind}"]
            getattr(cell, f"weight_ih_l{layer}").copy_(t(p["w_x"]).T)
            getattr(cell, f"weight_hh_l{layer}").copy_(t(p["w_h"]).T)
            getattr(cell, f"bias_ih_l{layer}").copy_(t(p["b"]))
            getattr(cell, f"bias_hh_l{layer}").copy_(t(p["b_h"]) if "b_h" in p else torch.zeros(p["b"].shape))
        head.weight.copy_(t(params["3_dense"]["w"]).T)
        head.bias.copy_(t(params["3_dense"]["b"]))
    return emb, cell, head


@pytest.mark.torch
@pytest.mark.parametrize("kind", ["lstm", "gru", "rnn"])
def test_logits_and_final_state_equal_torch_embedding_rnn_linear(kind):
    torch = pytest.importorskip("torch")
    model = lstm_lm(V, embed=E, hidden=H, num_layers=2, kind=kind)
    params = init(model)
    logits, carry = jax.jit(lambda p: model.apply(p, {}, IDS, return_carry=True)[0])(params)
    emb, cell, head = torch_lm(params, kind, torch)
    out, state = cell(emb(torch.tensor(np.asarray(IDS), dtype=torch.long)))
    np.testing.assert_allclose(logits, head(out).detach().numpy(), rtol=1e-5, atol=1e-5)
    h_n = state[0] if kind == "lstm" else state  # (layers, B, H)
    for layer in range(2):
        h = carry[layer].h if kind == "lstm" else carry[layer]
        np.testing.assert_allclose(h, h_n[layer].detach().numpy(), rtol=1e-5, atol=1e-6)
        if kind == "lstm":
            np.testing.assert_allclose(carry[layer].c, state[1][layer].detach().numpy(), rtol=1e-5, atol=1e-6)


@pytest.mark.torch
def test_lstm_lm_cross_entropy_gradients_equal_torch(lstm2):
    torch = pytest.importorskip("torch")
    model, params = lstm2
    y = jnp.roll(IDS, -1, axis=1)
    grads = jax.jit(jax.grad(lambda p: softmax_cross_entropy(model.apply(p, {}, IDS)[0], y)))(params)
    emb, cell, head = torch_lm(params, "lstm", torch)
    out, _ = cell(emb(torch.tensor(np.asarray(IDS), dtype=torch.long)))
    torch.nn.functional.cross_entropy(head(out).reshape(-1, V), torch.tensor(np.asarray(y)).reshape(-1).long()).backward()
    np.testing.assert_allclose(grads["0_embedding"]["w"], emb.weight.grad.numpy(), rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(grads["2_lstm"]["w_h"], cell.weight_hh_l1.grad.numpy().T, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(grads["1_lstm"]["b"], cell.bias_ih_l0.grad.numpy(), rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(grads["3_dense"]["w"], head.weight.grad.numpy().T, rtol=1e-4, atol=1e-6)


def test_carrying_the_state_over_two_windows_equals_one_pass(lstm2):
    model, params = lstm2
    whole, _ = model.apply(params, {}, IDS)
    (first, carry), _ = model.apply(params, {}, IDS[:, :2], return_carry=True)
    second, _ = model.apply(params, {}, IDS[:, 2:], carry=carry)
    np.testing.assert_allclose(jnp.concatenate([first, second], axis=1), whole, rtol=1e-5, atol=1e-6)


def recompute(model, params, prompt, n, choose):
    """Decode by running the model over the whole prefix at every step (the reference, O(n²)):
    the prefix sits in a buffer of P + n ids whose later places do not reach the logits at
    position P − 1 + i (the model is causal), so one compiled function serves every step."""
    P = prompt.shape[1]
    logits = jax.jit(lambda p, seq: model.apply(p, {}, seq)[0])  # (B, P + n, V)
    seq = jnp.concatenate([prompt, jnp.zeros((prompt.shape[0], n), prompt.dtype)], axis=1)
    for i in range(n):
        z = logits(params, seq)[:, P - 1 + i]  # (B, V): the logits after the prefix of P + i ids
        seq = seq.at[:, P + i].set(choose(i, z))
    return seq[:, P:]


def test_greedy_generation_equals_argmax_decoding_over_the_full_prefix(lstm2, key):
    model, params = lstm2
    got = generate(model, params, IDS[:, :3], 8, key, 0.0)
    np.testing.assert_array_equal(got, recompute(model, params, IDS[:, :3], 8, lambda i, z: jnp.argmax(z, -1)))
    assert len(set(np.asarray(got).ravel().tolist())) > 1  # not a constant stream


def test_sampled_generation_with_carried_state_equals_recomputation(lstm2, key):
    model, params = lstm2
    got = generate(model, params, IDS[:, :3], 10, key, 1.0)
    ref = recompute(model, params, IDS[:, :3], 10, lambda i, z: sample_logits(jax.random.fold_in(key, i), z, 1.0))
    np.testing.assert_array_equal(got, ref)
    one = generate(model, params, IDS[0, :3], 10, key, 1.0)  # an unbatched prompt (P,) → (n,)
    assert one.shape == (10,) and one.dtype == jnp.int32


def test_generation_compiles_once_for_every_temperature_and_key(lstm2):
    model, params = lstm2
    traces = []

    def counted_apply(*args, **kwargs):
        traces.append(1)  # runs when generate traces, not when a compiled program runs
        return model.apply(*args, **kwargs)

    counted = model._replace(apply=counted_apply)
    prompt = IDS[:, :4]
    generate(counted, params, prompt, 5, jax.random.key(1), 0.5)
    after_first = len(traces)
    for seed, tau in ((2, 1.0), (3, 0.0), (4, 0.7)):
        generate(counted, params, prompt, 5, jax.random.key(seed), tau)
    assert after_first > 0 and len(traces) == after_first


def test_dropout_only_in_training_and_it_needs_a_key(key):
    model = lstm_lm(V, embed=E, hidden=H, num_layers=2, dropout=0.5)
    params = init(model)
    a, _ = model.apply(params, {}, IDS)
    np.testing.assert_array_equal(a, model.apply(params, {}, IDS)[0])
    dropped, _ = model.apply(params, {}, IDS, key=key, train=True)
    assert not np.allclose(dropped, a)
    with pytest.raises(ValueError, match="key"):
        model.apply(params, {}, IDS, train=True)


def test_errors_name_the_model_and_the_value(lstm2, key):
    model, params = lstm2
    with pytest.raises(ValueError, match="lstm_lm: kind must be one of 'lstm', 'gru', 'rnn', got 'transformer'"):
        lstm_lm(V, kind="transformer")
    with pytest.raises(ValueError, match="lstm_lm: hidden must be a positive int, got 0"):
        lstm_lm(V, hidden=0)
    with pytest.raises(ValueError, match=r"lstm_lm: expected an input of rank 2 \(B, T\)"):
        model.apply(params, {}, IDS[0])
    with pytest.raises(ValueError, match="lstm_lm: carry must be a tuple of 2 per-layer carries"):
        model.apply(params, {}, IDS, carry=(None,))
    with pytest.raises(TypeError, match="lstm_lm: apply got an unexpected keyword argument 'cary'"):
        model.apply(params, {}, IDS, cary=None)
    from jdl.models import mlp

    with pytest.raises(TypeError, match="generate: the model 'serial' does not carry a recurrent state"):
        generate(mlp([3]), {}, IDS, 2, key)
    with pytest.raises(ValueError, match=r"generate: prompt_ids must be \(B, P\) or \(P,\) with P >= 1"):
        generate(model, params, IDS[:, :0], 2, key)
    with pytest.raises(ValueError, match="generate: temperature must be >= 0"):
        generate(model, params, IDS, 2, key, -0.5)


def plain_lstm_lm(params, ids, carry=None):
    """The LSTM LM as first written (and as the course writes it): Embedding, then each
    ``LSTM(impl='scan')`` layer on the previous one's outputs, then the Dense head on every step."""
    from jdl.nn import Dense, Embedding
    from jdl.nn.recurrent import LSTM

    h, _ = Embedding(V, E).apply(params["0_embedding"], {}, ids)  # (B, T, E)
    final = []
    for i in (1, 2):
        (h, c), _ = LSTM(H, return_carry=True).apply(params[f"{i}_lstm"], {}, h,
                                                       carry=None if carry is None else carry[i - 1])
        final.append(c)
    return Dense(V).apply(params["3_dense"], {}, h)[0], tuple(final)


@pytest.mark.parametrize("batch", [3, 1])  # B·T = 18 > V: the (V, 4H) table; B·T = 6 < V: embeddings first
def test_lstm_lm_equals_the_plain_scan_stack_in_values_and_gradients(lstm2, batch):
    """lstm_lm's fused kernel (and table gather) against the plain scan, same params: logits,
    final carries (also from a given carry) and the gradient of the LM loss."""
    model, params = lstm2
    ids, y = IDS[:batch], jnp.roll(IDS[:batch], -1, axis=1)
    (logits, carry), _ = model.apply(params, {}, ids, return_carry=True)
    want, want_carry = plain_lstm_lm(params, ids)
    np.testing.assert_allclose(logits, want, rtol=1e-5, atol=1e-5)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6), carry, want_carry)
    again, _ = model.apply(params, {}, ids[:, ::-1], carry=carry)
    np.testing.assert_allclose(again, plain_lstm_lm(params, ids[:, ::-1], want_carry)[0], rtol=1e-5, atol=1e-5)
    loss = lambda f: lambda p: softmax_cross_entropy(f(p), y)  # noqa: E731
    grads = jax.grad(loss(lambda p: model.apply(p, {}, ids)[0]))(params)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6), grads,
                 jax.grad(loss(lambda p: plain_lstm_lm(p, ids)[0]))(params))


@pytest.mark.parametrize("batch", [3, 1])
def test_an_id_outside_the_vocabulary_gives_nan_logits_on_either_path(lstm2, batch):
    model, params = lstm2
    ids = IDS[:batch].at[0, 2].set(V)
    logits, _ = model.apply(params, {}, ids)
    assert np.all(np.isnan(logits[0, 2:])) and np.all(np.isfinite(logits[0, :2]))
