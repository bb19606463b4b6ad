"""The absl flags of the ``jdl`` command and the choices they accept. Only ``jdl.cli.main``
and ``TrainConfig.from_flags`` read them; everything below takes plain arguments."""

from __future__ import annotations

from absl import flags

COMMANDS = ("train", "info", "data", "experiment", "bench")
# image models take (H, W, C) inputs, cnn1d takes (L,) or (L, C)
CNN_MODELS = ("lenet5", "cnn", "vgg", "googlenet", "resnet20", "resnet32", "resnet56", "plain20", "plain32",
              "plain56", "cnn1d")
# character language models (recurrent, and the GPT): (B, T) ids → (B, T, V) next-character logits, for the text data sets
LM_MODELS = ("lstm_lm", "gru_lm", "rnn_lm", "gpt")
# detectors (jdl.detection.zoo), for the detection data sets (shapes): see jdl/cli/train_detection.py
DETECTION_MODELS = ("yolo", "ssd")
GENERATIVE_MODELS = ("vae", "gan", "ddpm")  # image generators: jdl/cli/train_generative.py
MODELS = ("mlp",) + CNN_MODELS + LM_MODELS + DETECTION_MODELS + GENERATIVE_MODELS
OPTIMIZERS = ("sgd", "momentum_ema", "adagrad", "rmsprop", "adam", "adamw", "adam_l2")
# the learning rate each optimizer gets when --learning_rate is not given
DEFAULT_LEARNING_RATES = {"sgd": 0.1, "momentum_ema": 0.1, "adagrad": 0.05, "rmsprop": 1e-3, "adam": 1e-3,
                          "adamw": 1e-3, "adam_l2": 1e-3}
SCHEDULES = ("constant", "exponential", "step", "inverse_time", "cosine", "warmup_cosine")
ACTIVATIONS = ("relu", "tanh", "sigmoid", "gelu", "elu", "leaky_relu")

FLAGS = flags.FLAGS
# --- model, data, loop ---
flags.DEFINE_enum("model", "mlp", MODELS, "Model to train.")
flags.DEFINE_string("dataset", "digits", "Data set (see `jdl info` for the list).")
flags.DEFINE_integer("batch_size", 32, "Minibatch size.", lower_bound=1)
flags.DEFINE_integer("epochs", 20, "Passes over the training set.", lower_bound=0)
flags.DEFINE_integer("seed", 0, "Seed for init, data order and dropout.")
flags.DEFINE_list("hidden", ["128"], "MLP hidden layer sizes, comma-separated (language models: the "
                  "recurrent layers' state sizes, all equal, e.g. 256,256 for two layers; gpt: one d_model per "
                  "block, all equal, e.g. 128,128,128,128 for 4 blocks of width 128).")
flags.DEFINE_integer("embed", 64, "Language models (lstm_lm, gru_lm, rnn_lm): the size of each character's "
                     "embedding vector (gpt: unused, its embeddings are d_model wide).", lower_bound=1)
flags.DEFINE_enum("lstm_impl", "fused", ["fused", "native"], "lstm_lm: how the LSTM's recurrence runs: 'fused' "
                  "(XLA's scans, any device) or 'native' (C++ scans for x86-64 CPUs with AVX2, built with g++ on first "
                  "use; jdl.kernels.lstm_native) — the same numbers to float32 rounding.")
flags.DEFINE_enum("attention", "plain", ["plain", "blockwise", "jax", "native"], "gpt: how each block attends "
                  "(jdl.nn.attend's impl): 'plain' the definition, 'blockwise' the online softmax, 'jax' "
                  "jax.nn.dot_product_attention, 'native' C++ for x86-64 CPUs (built with g++ on first use); the same "
                  "numbers to float32 rounding. Dropout on the attention weights (--dropout) needs 'plain'.")
flags.DEFINE_integer("heads", 4, "gpt: the number h of attention heads; d_model (--hidden) must be "
                     "divisible by h.", lower_bound=1)
flags.DEFINE_integer("seq_len", 64, "Text data sets (pydoc_text): the length T of the next-character "
                     "windows (B, T) the model trains and is evaluated on (gpt: also its context, the rows of the "
                     "position table).", lower_bound=1)
flags.DEFINE_enum("activation", "relu", ACTIVATIONS, "Hidden activation of the MLP.")
flags.DEFINE_string("workdir", None, "Where metrics.jsonl, summary.json and curves.png go "
                    "(default: runs/<model>-<dataset>-<time>).")
flags.DEFINE_bool("progress", True, "Show a progress bar.")
flags.DEFINE_float("validation_fraction", 0.1, "Fraction of the training set held out, stratified and "
                   "seeded, as the validation split that early stopping and the best checkpoint use; 0: "
                   "none.", lower_bound=0.0, upper_bound=0.9)
flags.DEFINE_integer("train_size", None, "Train on the first N examples of the training split only (the "
                     "validation split is held out first; validation and test stay whole): a quick run "
                     "that checks the plumbing (default: all of it).", lower_bound=1)
flags.DEFINE_bool("test_every_epoch", False, "Also record test_* metrics every epoch, for plots only "
                  "(the test set is always evaluated once, at the end).")
flags.DEFINE_integer("accumulate_steps", 1, "Sum the gradients of K microbatches of batch_size/K per "
                     "step: the same step in a K-th of the memory.", lower_bound=1)
# --- optimizer ---
flags.DEFINE_enum("optimizer", "adam", OPTIMIZERS, "Optimizer (adam, lr 1e-3, trains digits better than sgd, lr 0.1).")
flags.DEFINE_float("learning_rate", None, "Learning rate η (default: the optimizer's, "
                   f"{DEFAULT_LEARNING_RATES}).", lower_bound=0.0)
flags.DEFINE_float("momentum", None, "Momentum μ in [0, 1) for sgd and rmsprop (β for momentum_ema; "
                   "default: none, 0.9 for momentum_ema).", lower_bound=0.0, upper_bound=0.999999)
flags.DEFINE_bool("nesterov", False, "Nesterov momentum (sgd, rmsprop; needs --momentum).")
flags.DEFINE_bool("fused_optimizer", False, "adam, adamw, or sgd with --momentum: apply the update in one native "
                  "pass over all params (jdl.optim.fused_adam/fused_sgd, like PyTorch's fused=True; float32 params, "
                  "one x86-64 CPU with AVX2, C++ built with g++ on first use) — the same numbers to float32 rounding.")
flags.DEFINE_enum("schedule", "constant", SCHEDULES, "Learning-rate schedule over the update steps.")
flags.DEFINE_float("decay_rate", 0.5, "exponential/step: factor per --decay_steps; inverse_time: k in "
                   "η/(1 + k·t/decay_steps).", lower_bound=0.0)
flags.DEFINE_integer("decay_steps", None, "Steps per decay period (default: one epoch).", lower_bound=1)
flags.DEFINE_integer("warmup_steps", None, "warmup_cosine: linear warmup steps (default: one epoch).",
                     lower_bound=0)
# --- regularization ---
flags.DEFINE_float("dropout", 0.0, "Dropout probability p after every hidden activation.", lower_bound=0.0, upper_bound=0.99)
flags.DEFINE_float("weight_decay", 0.0, "Weight decay λ: λ·w added to the weights' gradient before the "
                   "optimizer (with sgd the same as --l2=λ; for decoupled decay use --optimizer=adamw).", lower_bound=0.0)
flags.DEFINE_float("l1", 0.0, "L1 penalty λ₁·‖w‖₁ on the weights, added to the loss.", lower_bound=0.0)
flags.DEFINE_float("l2", 0.0, "L2 penalty λ₂/2·‖w‖² on the weights, added to the loss.", lower_bound=0.0)
flags.DEFINE_enum("norm", "none", ("none", "batch", "layer"), "Normalization after every hidden Dense.")
flags.DEFINE_bool("augment", False, "Augment training batches (images: shifts and ±10° rotations; vectors: noise).")
flags.DEFINE_float("label_smoothing", 0.0, "Label smoothing ε of the cross-entropy.", lower_bound=0.0, upper_bound=0.99)
flags.DEFINE_integer("early_stopping_patience", None, "Stop when the validation loss has not improved for "
                     "this many epochs, keeping the best params (needs --validation_fraction > 0).", lower_bound=1)
# --- experiment and bench ---
flags.DEFINE_bool("quick", False, "jdl experiment / jdl bench: a few steps of everything, to check it runs.")
# --- checkpoints, precision, non-finite values ---
flags.DEFINE_integer("checkpoint_every", 100, "Write a checkpoint to <workdir>/checkpoints every N steps "
                     "(also at the best epoch, at the end and on SIGINT/SIGTERM); 0: none. A workdir "
                     "that has checkpoints is resumed where it stopped.", lower_bound=0)
flags.DEFINE_integer("keep", 3, "Checkpoints kept: the last K, plus the best by validation loss.", lower_bound=1)
flags.DEFINE_string("restore", None, "Start from the params of this checkpoint (a run's workdir or one "
                    "checkpoints/<step> folder) with a fresh optimizer: fine-tuning, or evaluation "
                    "alone with --epochs=0.")
flags.DEFINE_enum("compute_dtype", "float32", ["float32", "bfloat16"], "Mixed precision: forward and "
                  "backward passes in this dtype, params and optimizer state in float32. (float16 would "
                  "need loss scaling, which jdl does not do.)")
flags.DEFINE_enum("on_nonfinite", "stop", ["stop", "skip", "ignore"], "On a NaN/inf loss, gradient or "
                  "param: stop naming the step and param, skip the step, or ignore it.")
flags.DEFINE_string("compilation_cache", None, "Folder of JAX's persistent compilation cache for jdl "
                    "train and jdl experiment: a second run of the same model and shapes skips XLA "
                    "compilation (ResNet-20, one epoch on digits: 8.4 s → 3.4 s). Default $JDL_CACHE, "
                    "else $JAX_COMPILATION_CACHE_DIR, else ~/.cache/jdl/xla; 'none' turns it off.")
flags.DEFINE_enum("keep_host_memory", "auto", ["auto", "on", "off"], "On CPU, keep XLA's per-step "
                  "temporaries in the heap (jdl.runtime.keep_host_memory: synchronous dispatch, no mmap): "
                  "saves a page fault per 4 KiB of them every step. auto: on for gpt, whose temporaries are "
                  "largest.")
# --- data ---
flags.DEFINE_string("data_dir", None, "Data root of file-based data sets (mnist, fashion_mnist, "
                    "cifar10, the mnist1d cache); default $JDL_DATA, else ~/.cache/jdl. See docs/data.md.")
# --- devices and processes ---
flags.DEFINE_integer("devices", None, "Train data-parallel on the first N devices (default: every "
                     "device of the default backend; 1: the single-device path).", lower_bound=1)
flags.DEFINE_bool("fsdp", False, "With several devices: shard params and optimizer state over them "
                  "(FSDP) instead of replicating them; same values, 1/N of the memory per device.")
flags.DEFINE_string("coordinator", None, "HOST:PORT of process 0 of a multi-process run (with "
                    "--num_processes and --process_id; see docs/distributed.md).")
flags.DEFINE_integer("num_processes", None, "How many processes the multi-process run has.", lower_bound=1)
flags.DEFINE_integer("process_id", None, "This process's index in [0, --num_processes).", lower_bound=0)
