"""from_gpt2 and gpt2_config against Hugging Face's GPT2LMHeadModel with random weights (built
here, nothing downloaded): logits, gradients and greedy generation token for token."""

import dataclasses
import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jdl.losses import softmax_cross_entropy
from jdl.models.gpt import gpt
from jdl.models.gpt_generate import generate
from jdl.models.gpt2_weights import from_gpt2, gpt2_config

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
pytestmark = pytest.mark.torch

HF_ARGS = dict(n_layer=2, n_embd=64, n_head=4, n_positions=64, vocab_size=100,
               initializer_range=0.2, bos_token_id=None, eos_token_id=None, pad_token_id=0)


def hf_model(**overrides):
    torch.manual_seed(0)
    config = transformers.GPT2Config(**{**HF_ARGS, **overrides})
    return transformers.GPT2LMHeadModel(config).eval(), config


@pytest.fixture(scope="module")
def hf():
    return hf_model()


@pytest.fixture(scope="module")
def ids():
    return np.random.default_rng(0).integers(0, 100, (2, 24))


def hf_logits(model, ids):
    with torch.no_grad():
        return model(torch.tensor(ids)).logits.numpy()


@pytest.mark.parametrize("stack", ["loop", "repeat"])
def test_logits_equal_transformers(hf, ids, stack):
    model, hc = hf
    params, config = from_gpt2(model.state_dict(), gpt2_config(hc, stack=stack))
    out, _ = jax.jit(gpt(config).apply)(params, {}, jnp.asarray(ids, jnp.int32))
    ref = hf_logits(model, ids)
    assert np.abs(ref).max() > 1.0  # logits large enough for 1e-4 to mean something
    np.testing.assert_allclose(np.asarray(out), ref, rtol=1e-4, atol=1e-4)


def test_gradients_equal_torch_autograd(hf, ids):
    model, hc = hf
    params, config = from_gpt2(model.state_dict(), gpt2_config(hc))
    x = jnp.asarray(ids, jnp.int32)
    loss = lambda p: softmax_cross_entropy(gpt(config).apply(p, {}, x)[0][:, :-1], x[:, 1:])
    value, grads = jax.jit(jax.value_and_grad(loss))(params)
    model.zero_grad()
    ref = model(torch.tensor(ids), labels=torch.tensor(ids)).loss  # the same shifted mean
    ref.backward()
    np.testing.assert_allclose(value, ref.item(), rtol=1e-5)
    tg = {k: v.grad.numpy() for k, v in model.named_parameters()}
    blk = grads["blocks"]["1_block"]
    np.testing.assert_allclose(grads["wte"]["w"], tg["transformer.wte.weight"], rtol=1e-3, atol=1e-6)
    w_qkv = np.concatenate([blk["attn"][n]["w"] for n in "qkv"], axis=1)  # (C, 3C) as c_attn
    np.testing.assert_allclose(w_qkv, tg["transformer.h.1.attn.c_attn.weight"], rtol=1e-3, atol=1e-6)
    np.testing.assert_allclose(blk["mlp"]["fc1"]["w"], tg["transformer.h.1.mlp.c_fc.weight"],
                               rtol=1e-3, atol=1e-6)


@pytest.mark.parametrize("stack", ["loop", "repeat"])
def test_greedy_cached_generation_equals_transformers(hf, ids, stack):
    model, hc = hf
    params, config = from_gpt2(model.state_dict(), gpt2_config(hc, stack=stack))
    prompt = ids[:, :5]
    with torch.no_grad():
        ref = model.generate(torch.tensor(prompt), max_new_tokens=12, do_sample=False).numpy()
    out = np.asarray(generate(params, config, jnp.asarray(prompt, jnp.int32), 12, None, temperature=0.0))
    np.testing.assert_array_equal(out, ref)
    assert max(len(set(row)) for row in out[:, 5:].tolist()) > 1


def test_untied_head_and_config_read_off_the_shapes(ids):
    model, hc = hf_model(tie_word_embeddings=False, n_embd=128, n_head=2, n_layer=1)  # heads of 64
    sd = {k.removeprefix("transformer."): v for k, v in model.state_dict().items()}  # GPT2Model-style keys too
    params, config = from_gpt2(sd)
    # the same shape from the weights as from config.json (whose resid_pdrop gives the dropout)
    assert config == dataclasses.replace(gpt2_config(hc.to_dict()), dropout=0.0)
    assert not config.tied_head and params["head"]["w"].shape == (128, 100)
    out, _ = gpt(config).apply(params, {}, jnp.asarray(ids[:, :8], jnp.int32))
    np.testing.assert_allclose(np.asarray(out), hf_logits(model, ids[:, :8]), rtol=1e-4, atol=1e-4)


def test_errors(hf):
    model, hc = hf
    sd = model.state_dict()
    with pytest.raises(ValueError, match="gpt2_config: activation_function='relu' is not supported"):
        gpt2_config({**hc.to_dict(), "activation_function": "relu"})
    with pytest.raises(ValueError, match="gpt2_config: scale_attn_by_inverse_layer_idx=True"):
        gpt2_config({**hc.to_dict(), "scale_attn_by_inverse_layer_idx": True})
    with pytest.raises(ValueError, match="from_gpt2: the state dict has no 'h.1.mlp.c_fc.bias'"):
        from_gpt2({k: v for k, v in sd.items() if k != "transformer.h.1.mlp.c_fc.bias"}, gpt2_config(hc))
    with pytest.raises(ValueError, match=r"from_gpt2: 'wpe.weight' has shape \(64, 64\) but the config expects \(32, 64\)"):
        from_gpt2(sd, gpt2_config({**hc.to_dict(), "n_positions": 32}))
    with pytest.raises(ValueError, match="from_gpt2: unexpected keys"):
        from_gpt2(sd, gpt2_config({**hc.to_dict(), "n_layer": 1}))
    with pytest.raises(ValueError, match="lm_head.weight differs from wte.weight"):
        from_gpt2({**sd, "lm_head.weight": torch.zeros(100, 64)}, gpt2_config(hc))
    with pytest.raises(ValueError, match="n_embd=96 is not a multiple of GPT-2's head size 64"):
        from_gpt2({"wte.weight": np.zeros((10, 96)), "wpe.weight": np.zeros((8, 96)),
                   "h.0.mlp.c_fc.weight": np.zeros((96, 384))})


def test_a_saved_checkpoint_loads_as_docs_gpt_md_says(hf, ids, tmp_path):
    safetensors_numpy = pytest.importorskip("safetensors.numpy")
    model, _ = hf
    model.save_pretrained(tmp_path)  # config.json + model.safetensors, as on the Hub
    config = gpt2_config(json.loads((tmp_path / "config.json").read_text()))
    params, config = from_gpt2(safetensors_numpy.load_file(tmp_path / "model.safetensors"), config)
    out, _ = jax.jit(gpt(config).apply)(params, {}, jnp.asarray(ids, jnp.int32))
    np.testing.assert_allclose(np.asarray(out), hf_logits(model, ids), rtol=1e-4, atol=1e-4)
