"""The workloads' FLOP counts (by hand and against XLA's own count) and that the three
implementations of a workload compute the same thing from the same weights."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from benchmarks.workloads import char_lstm, common, lenet5, mlp


def test_mlp_counts_by_hand():
    # forward 2·128·(784·512 + 512·512 + 512·10) = 171,180,032; weight grads the same;
    # input grads of layers 2 and 3 only: 2·128·(512·512 + 512·10) = 68,419,584.
    assert mlp.flops() == 171_180_032 * 2 + 68_419_584 == 410_779_648
    assert mlp.n_params() == 784 * 512 + 512 + 512 * 512 + 512 + 512 * 10 + 10 == 669_706
    # Adam: params, m, v read and written once (6·P floats) + x (128·784) + y (128).
    assert mlp.min_bytes(optimizer="adam") == 4 * (6 * 669_706 + 128 * 784 + 128)


def test_lenet5_counts_by_hand():
    conv1 = 2 * 128 * 28 * 28 * 6 * 25  # SAME: 28×28 outputs, 6 channels, 5·5·1 taps
    conv2 = 2 * 128 * 10 * 10 * 16 * 150  # 10×10 outputs, 16 channels, 5·5·6 taps
    dense = 2 * 128 * (400 * 120 + 120 * 84 + 84 * 10)
    assert lenet5.flops("SAME") == 3 * (conv1 + conv2 + dense) - conv1 == 289_781_760
    assert lenet5.n_params("SAME") == 156 + 2416 + 48120 + 10164 + 850


def test_mlp_flops_agree_with_xla_cost_analysis():
    """XLA counts the matmuls of value_and_grad plus elementwise work: ours is the matmul part."""
    import jdl
    from jdl.losses import softmax_cross_entropy

    model = mlp.jdl_model()
    x, y = mlp.data(mlp.BATCH, 0)
    params, state = model.init(jax.random.key(0), x)
    loss = lambda p: softmax_cross_entropy(model.apply(p, state, x)[0], y)
    cost = jax.jit(jax.grad(loss)).lower(params).compile().cost_analysis()
    cost = cost[0] if isinstance(cost, list) else cost
    assert mlp.flops() <= cost["flops"] <= 1.05 * mlp.flops()


@pytest.fixture(scope="module")
def mlp_options(tmp_path_factory):
    return mlp.configure(quick=True, seed=0, workdir=str(tmp_path_factory.mktemp("w")))["options"]


def test_mlp_implementations_agree_step_for_step(mlp_options):
    """Same weights, batch, loss and optimizer: the losses of the first three steps agree."""
    torch = pytest.importorskip("torch")
    losses = {}
    for impl in ("jdl", "flax", "torch"):
        runner = mlp.build(impl, mlp_options)
        runner.first_call()  # step 1
        out = [runner.step() for _ in range(2)]  # steps 2 and 3
        losses[impl] = [float(o["loss"]) if isinstance(o, dict) else float(o.detach()) for o in out]
    np.testing.assert_allclose(losses["flax"], losses["jdl"], rtol=2e-5)
    np.testing.assert_allclose(losses["torch"], losses["jdl"], rtol=2e-5)
    assert losses["jdl"][1] < losses["jdl"][0] + 1e-3 and torch is not None


def test_lenet5_torch_twin_equals_flax_twin():
    """The PyTorch LeNet-5 (NCHW, OIHW, permuted first Dense) computes the flax one (NHWC, HWIO)."""
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    shapes = [(5, 5, 1, 6), (5, 5, 6, 16), (400, 120), (120, 84), (84, 10)]
    layers = [{"w": (0.2 * rng.standard_normal(s)).astype(np.float32),
               "b": (0.1 * rng.standard_normal(s[-1])).astype(np.float32)} for s in shapes]
    x = rng.standard_normal((4, 28, 28, 1), dtype=np.float32)
    for act, pool in (("relu", "max"), ("tanh", "avg")):
        y_flax = lenet5.flax_model(act, pool, "SAME").apply({"params": lenet5.flax_params(layers)}, x)
        net = lenet5.torch_model(layers, act, pool, "SAME")
        y_torch = net(torch.from_numpy(x.transpose(0, 3, 1, 2))).detach().numpy()
        np.testing.assert_allclose(y_torch, np.asarray(y_flax), rtol=1e-4, atol=1e-5)


def test_ordered_layers_follow_the_run_order_and_round_trip(tmp_path):
    params = {"10_dense": {"w": np.ones((2, 3)), "b": np.zeros(3)}, "2_dense": {"w": np.zeros((4, 2)), "b": np.ones(2)},
              "3_relu": {}}
    order = [p for p, _ in common.ordered_layers(params)]
    assert order == [("2_dense",), ("10_dense",)]
    layers = [dict(l) for _, l in common.ordered_layers(params)]
    back = common.load_layers(common.save_layers(str(tmp_path / "w.npz"), layers))
    jax.tree.map(np.testing.assert_array_equal, back, layers)
    swapped = common.with_layers(params, [layers[0], {"w": jnp.full((2, 3), 5.0), "b": jnp.zeros(3)}])
    assert float(swapped["10_dense"]["w"][0, 0]) == 5.0 and swapped["3_relu"] == {}


def test_mlp_bfloat16_variants_agree_and_differ_from_float32(mlp_options):
    """The -bf16 rows run mixed precision in all three libraries: jdl's losses are flax's (to
    1e-4), PyTorch's autocast ones within bfloat16 rounding, and none is float32's."""
    pytest.importorskip("torch")
    losses = {}
    for dtype in ("float32", "bfloat16"):
        for impl in ("jdl", "flax", "torch"):
            runner = mlp.build(impl, {**mlp_options, "dtype": dtype})
            runner.first_call()
            out = runner.step()
            losses[impl, dtype] = float(out["loss"]) if isinstance(out, dict) else float(out.detach())
    np.testing.assert_allclose(losses["flax", "bfloat16"], losses["jdl", "bfloat16"], rtol=1e-4)
    np.testing.assert_allclose(losses["torch", "bfloat16"], losses["jdl", "bfloat16"], rtol=1e-2)
    assert abs(losses["jdl", "bfloat16"] - losses["jdl", "float32"]) > 1e-5
    with pytest.raises(ValueError, match="compute dtype"):
        mlp.build("jdl", {**mlp_options, "dtype": "float8"})


def test_char_lstm_counts_by_hand():
    # forward 2·32·64·(128·1024 + 256·1024 + 256·65) = 1,678,770,176; backward twice that.
    assert char_lstm.flops() == 3 * 1_678_770_176
    assert char_lstm.n_params() == 65 * 128 + 128 * 1024 + 256 * 1024 + 1024 + 256 * 65 + 65 == 419_265


def test_char_lstm_implementations_agree_step_for_step(tmp_path):
    """jdl (Embedding + the LSTM kernel, its recurrence native where it builds + Dense), flax (RNN of OptimizedLSTMCell) and
    PyTorch (nn.LSTM) from the same weights and batch: equal losses at step 0 and after two
    Adam steps, the same parameter count, and the loss near log V at initialization."""
    torch = pytest.importorskip("torch")
    options = char_lstm.configure(quick=True, seed=0, workdir=str(tmp_path))["options"]
    losses = {}
    for impl in ("jdl", "flax", "torch"):
        runner = char_lstm.build(impl, options)
        runner.first_call()  # step 1
        out = [runner.step() for _ in range(2)]  # steps 2 and 3: losses of the params after 1 and 2 updates
        losses[impl] = [float(o["loss"]) if isinstance(o, dict) else float(o.detach()) for o in out]
    np.testing.assert_allclose(losses["flax"], losses["jdl"], rtol=2e-5)
    np.testing.assert_allclose(losses["torch"], losses["jdl"], rtol=2e-5)
    assert losses["jdl"][1] < losses["jdl"][0] < np.log(char_lstm.VOCAB) + 0.1
    net = char_lstm.torch_model(common.load_layers(options["weights"]))
    assert sum(p.numel() for p in net.parameters() if p.requires_grad) == char_lstm.n_params()
    assert torch is not None


def test_char_lstm_step_zero_losses_agree(tmp_path):
    """The first loss, before any update, from each library's forward pass alone."""
    torch = pytest.importorskip("torch")
    from jdl.losses import softmax_cross_entropy

    options = char_lstm.configure(quick=True, seed=1, workdir=str(tmp_path))["options"]
    layers = common.load_layers(options["weights"])
    x, y = char_lstm.data(1)
    model = char_lstm.jdl_model()
    params = char_lstm.load_jdl(model.init(jax.random.key(0), x)[0], layers)
    jdl_loss = float(softmax_cross_entropy(model.apply(params, {}, x)[0], y))
    flax_logits = char_lstm.flax_model().apply({"params": char_lstm.flax_params(layers)}, x)
    flax_loss = float(softmax_cross_entropy(flax_logits, y))
    logits = char_lstm.torch_model(layers)(torch.from_numpy(x))
    torch_loss = float(torch.nn.functional.cross_entropy(logits, torch.from_numpy(y.reshape(-1)).long()).detach())
    np.testing.assert_allclose([flax_loss, torch_loss], [jdl_loss] * 2, rtol=1e-5)


def test_gpt_counts_by_hand():
    # forward: 2·2048·(4·12·256² + 256·65) = 12,953,059,328 for the projections and the head,
    # 4·4·16·128²·256 = 1,073,741,824 for QKᵀ and PV; the backward twice the forward.
    from benchmarks.workloads import gpt

    assert gpt.flops() == 3 * (12_953_059_328 + 1_073_741_824) == 42_080_403_456
    assert gpt.n_params() == 65 * 256 + 128 * 256 + 4 * (12 * 256 ** 2 + 13 * 256) + 2 * 256 == 3_208_960


@pytest.fixture(scope="module")
def tiny_gpt(tmp_path_factory):
    from benchmarks.workloads import gpt

    sizes = gpt.Sizes(vocab=17, context=16, layers=2, d_model=32, heads=4, batch=3)
    return sizes, gpt.configure(quick=True, seed=0, workdir=str(tmp_path_factory.mktemp("g")), sizes=sizes)["options"]


def test_gpt_implementations_agree_step_for_step(tiny_gpt):
    """jdl.models.gpt, flax.linen (MultiHeadDotProductAttention) and nanoGPT in PyTorch from the
    same weights and batch, trained with AdamW: equal losses after one and two updates, in
    float32 (to 2e-5) and in bfloat16 mixed precision (to bfloat16's rounding), the trained
    parameter count, and a first loss near log V."""
    torch = pytest.importorskip("torch")
    from benchmarks.workloads import gpt, gpt_twins

    sizes, options = tiny_gpt
    losses = {}
    for dtype in ("float32", "bfloat16"):
        for impl in ("jdl", "flax", "torch"):
            runner = gpt.build(impl, {**options, "dtype": dtype})
            runner.first_call()  # step 1
            out = [runner.step() for _ in range(2)]  # the losses after 1 and 2 updates
            losses[impl, dtype] = [float(o["loss"]) if isinstance(o, dict) else float(o.detach()) for o in out]
    for impl in ("flax", "torch"):
        np.testing.assert_allclose(losses[impl, "float32"], losses["jdl", "float32"], rtol=2e-5)
        np.testing.assert_allclose(losses[impl, "bfloat16"], losses["jdl", "bfloat16"], rtol=2e-3)
    assert losses["jdl", "float32"][1] < losses["jdl", "float32"][0] < np.log(sizes.vocab) + 0.1
    assert losses["jdl", "bfloat16"] != losses["jdl", "float32"]
    net = gpt_twins.torch_model(gpt.load_weights(options["weights"]), sizes)
    assert sum(p.numel() for p in net.parameters()) == gpt.n_params(sizes) and torch is not None


def test_gpt_step_zero_losses_agree(tiny_gpt):
    """The loss before any update, from each library's forward pass alone."""
    torch = pytest.importorskip("torch")
    from benchmarks.workloads import gpt, gpt_twins
    from jdl.losses import softmax_cross_entropy

    sizes, options = tiny_gpt
    w = gpt.load_weights(options["weights"])
    x, y = gpt.data(sizes, options["seed"])
    # each forward jitted (one compile, not one per operation as run eagerly)
    jdl_apply, flax_apply = jax.jit(gpt.jdl_model(sizes).apply), jax.jit(gpt_twins.flax_model(sizes).apply)
    jdl_loss = float(softmax_cross_entropy(jdl_apply(gpt.nested(w), {}, x)[0], y))
    flax_logits = flax_apply({"params": gpt_twins.flax_params(w, sizes)}, x)
    flax_loss = float(softmax_cross_entropy(flax_logits, y))
    logits = gpt_twins.torch_model(w, sizes)(torch.from_numpy(x).long())
    torch_loss = float(torch.nn.functional.cross_entropy(logits, torch.from_numpy(y.reshape(-1)).long()).detach())
    np.testing.assert_allclose([flax_loss, torch_loss], [jdl_loss] * 2, rtol=1e-5)


def test_char_lstm_torch_without_a_bf16_lstm_is_skipped_with_the_reason(tmp_path, monkeypatch):
    """Where oneDNN has no bfloat16 LSTM primitive (some CPUs), the PyTorch bfloat16 row is a
    Skip naming the cause (AVX2-only CPUs, this one among them, with torch 2.13); where it
    exists the row builds; other errors are not swallowed."""
    torch = pytest.importorskip("torch")
    options = {**char_lstm.configure(quick=True, seed=0, workdir=str(tmp_path))["options"], "dtype": "bfloat16"}
    try:
        char_lstm.build("torch", options)
    except common.Skip as why:
        assert "could not create a primitive" in str(why)

    def failing(message):
        def lstm(*args, **kwargs):
            raise RuntimeError(message)
        return lstm

    monkeypatch.setattr(torch.nn.LSTM, "forward", failing("could not create a primitive descriptor for the LSTM"))
    with pytest.raises(common.Skip, match="bfloat16 on this CPU: could not create a primitive"):
        char_lstm.build("torch", options)
    monkeypatch.setattr(torch.nn.LSTM, "forward", failing("something else"))
    with pytest.raises(RuntimeError, match="something else"):
        char_lstm.build("torch", options)
