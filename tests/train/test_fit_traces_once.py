"""fit never recompiles: the training step is traced once although the data set does not
divide into batches (fit drops the last, smaller batch), and the evaluation step once although
the test set does not either (it pads the last batch and masks it)."""

import numpy as np

import jdl
from benchmarks.timing import trace_counter
from jdl.losses import softmax_cross_entropy


def test_fit_traces_train_and_eval_steps_once():
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((10, 3), dtype=np.float32), rng.integers(0, 2, 10).astype(np.int32)
    xt, yt = rng.standard_normal((7, 3), dtype=np.float32), rng.integers(0, 2, 7).astype(np.int32)
    counted_train, train_traces = trace_counter()
    counted_eval, eval_traces = trace_counter()
    train_loss, eval_loss = counted_train(softmax_cross_entropy), counted_eval(softmax_cross_entropy)

    def loss(out, target, reduction="mean"):  # fit's step uses the mean, evaluation 'none'
        return (eval_loss if reduction == "none" else train_loss)(out, target, reduction=reduction)

    result = jdl.train.fit(jdl.models.mlp([4, 2]), loss, jdl.optim.sgd(0.1), (x, y), (xt, yt),
                           epochs=3, batch_size=4, eval_batch_size=4, progress=False, tensorboard=False)
    assert (train_traces(), eval_traces()) == (1, 1)
    assert result is not None
