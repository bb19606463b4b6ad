"""PyTorch (torchvision) weights as jdl params: ResNet and VGG ``state_dict`` converters.

torchvision's ``resnet18/34/50`` and ``vgg*``/``vgg*_bn`` keep their weights under names that map
onto jdl's models as follows (jdl's ResNet keys follow torchvision's, ``jdl.models.resnet``):

    conv1.weight (O, I, kh, kw)            → conv1/w (kh, kw, I, O)     (OIHW → HWIO)
    bn1.weight, .bias                      → bn1/gamma, beta            (params)
    bn1.running_mean, .running_var         → bn1/mean, var              (state)
    layer{i}.{j}.conv{k}, .bn{k}           → layer{i}/block{j}/branch/conv{k}, bn{k}
    layer{i}.{j}.downsample.0, .1          → layer{i}/block{j}/shortcut/conv, bn
    fc.weight (K, D), fc.bias              → fc/w (D, K), fc/b
    features.{n} (the k-th conv / BN)      → VGG's k-th ``{m}_conv2d`` / ``{m}_batchnorm``
    classifier.{n} (the k-th Linear)       → VGG's k-th ``{m}_dense``

Three conventions differ and are handled:

- Layout: PyTorch is N·C·H·W with OIHW kernels and (out, in) Linear weights; jdl is NHWC with
  HWIO kernels and (in, out) Dense weights, so kernels are transposed (2, 3, 1, 0) and Linear
  weights transposed.
- Flatten order: VGG's first Linear reads the last feature map flattened as C·H·W; jdl's
  ``Flatten`` gives H·W·C. Its (K, C·H·W) weight is reshaped to (K, C, H, W), moved to
  (H, W, C, K) and flattened to (H·W·C, K).
- BatchNorm: PyTorch's running variance is the unbiased N/(N−1)·σ² and its ``momentum`` 0.1
  weighs the *new* batch (running ← 0.9·running + 0.1·batch). Evaluation only reads the stored
  ``running_var``, so it is copied as is; to keep training the converted model as PyTorch
  does, build its norms as ``BatchNorm(momentum=0.9, unbiased_running_var=True)``
  (jdl's ResNet default is momentum 0.9). ``num_batches_tracked`` is not needed and dropped.

Nothing here imports torch: tensors are read with ``to_numpy``; nothing is downloaded.
"""

from __future__ import annotations

import math
from typing import Any, Mapping

import jax
import jax.numpy as jnp
import numpy as np

from jdl.core import path_str
from jdl.models.gpt2_weights import to_numpy

BN_NAMES = {"weight": ("params", "gamma"), "bias": ("params", "beta"),
            "running_mean": ("state", "mean"), "running_var": ("state", "var")}


def _leaf(torch_name: str, value: np.ndarray, is_bn: bool) -> tuple[str, str, np.ndarray]:
    """(tree, leaf name, array) of one torch tensor: 'params' or 'state', jdl's leaf name, and
    the array in jdl's layout."""
    suffix = torch_name.rsplit(".", 1)[1]
    if is_bn:
        tree, name = BN_NAMES[suffix]
        return tree, name, value
    if suffix == "bias":
        return "params", "b", value
    if value.ndim == 4:
        return "params", "w", value.transpose(2, 3, 1, 0)  # (O, I, kh, kw) → (kh, kw, I, O)
    return "params", "w", value.T  # Linear (out, in) → Dense (in, out)


def _resnet_module_path(module: str) -> str:
    """torchvision's module name → jdl's: 'layer2.0.downsample.1' → 'layer2/block0/shortcut/bn'."""
    parts = module.split(".")
    if not parts[0].startswith("layer"):
        return module  # conv1, bn1, fc
    block = f"{parts[0]}/block{parts[1]}"
    if parts[2] == "downsample":
        return f"{block}/shortcut/{('conv', 'bn')[int(parts[3])]}"
    return f"{block}/branch/{parts[2]}"


def resnet_from_torch(state_dict: Mapping[str, Any], params: Any, state: Any) -> tuple[Any, Any]:
    """jdl ResNet (params, state) from a torchvision ResNet ``state_dict`` (basic or bottleneck).

    Args:
      state_dict: name → tensor (torch or numpy), e.g. ``torchvision.models.resnet18().state_dict()``.
      params, state: the jdl model's (``jax.eval_shape(resnet18(1000).init, key, x)`` will do):
        the structure and shapes to fill. Every leaf must be filled and every tensor used.
    Returns: (params, state) of float32 arrays in the named layout.
    """
    flat: dict = {"params": {}, "state": {}}
    for name, value in state_dict.items():
        if name.endswith("num_batches_tracked"):
            continue
        module = name.rsplit(".", 1)[0]
        jdl_module = _resnet_module_path(module)
        is_bn = jdl_module.rsplit("/", 1)[-1].startswith("bn")
        tree, leaf, array = _leaf(name, to_numpy(value), is_bn)
        flat[tree][f"{jdl_module}/{leaf}"] = (name, array)
    return _fill("resnet_from_torch", params, flat["params"]), _fill("resnet_from_torch", state, flat["state"])


def _by_index(keys: list[str]) -> list[str]:
    return sorted(keys, key=lambda k: int(k.split("_")[0]))


def vgg_from_torch(state_dict: Mapping[str, Any], params: Any, state: Any) -> tuple[Any, Any]:
    """jdl VGG (``jdl.models.vgg``, with or without ``norm=BatchNorm``) (params, state) from a
    torchvision VGG ``state_dict``: the k-th conv, BatchNorm and Linear of ``features`` and
    ``classifier`` become jdl's k-th ``conv2d``, ``batchnorm`` and ``dense``, and the first
    Linear's columns go from C·H·W to H·W·C order (a square last feature map).

    Args: as ``resnet_from_torch``. Returns: (params, state) in jdl's positional layout.
    """
    sd = {k: to_numpy(v) for k, v in state_dict.items() if not k.endswith("num_batches_tracked")}
    modules: dict = {}
    for name in sd:
        part, index, _ = name.split(".")
        modules.setdefault((part, int(index)), []).append(name)
    kinds: dict = {"conv2d": [], "batchnorm": [], "dense": []}
    for (part, _), names in sorted(modules.items(), key=lambda kv: (kv[0][0] != "features", kv[0][1])):
        weight = sd[f"{names[0].rsplit('.', 1)[0]}.weight"]
        kinds["conv2d" if weight.ndim == 4 else "batchnorm" if part == "features" else "dense"].append(names)
    jdl_keys = {kind: [k for k in _by_index(list(params)) if k.endswith("_" + kind)] for kind in kinds}
    for kind in kinds:
        if len(kinds[kind]) != len(jdl_keys[kind]):
            raise ValueError(f"vgg_from_torch: the state dict has {len(kinds[kind])} {kind} layers but "
                             f"the jdl model has {len(jdl_keys[kind])}")
    flat: dict = {"params": {}, "state": {}}
    for kind in kinds:
        for i, (names, key) in enumerate(zip(kinds[kind], jdl_keys[kind])):
            for name in names:
                tree, leaf, array = _leaf(name, sd[name], kind == "batchnorm")
                if kind == "dense" and i == 0 and leaf == "w":
                    array = _chw_rows_to_hwc(array, kinds["conv2d"], sd)
                flat[tree][f"{key}/{leaf}"] = (name, array)
    return _fill("vgg_from_torch", params, flat["params"]), _fill("vgg_from_torch", state, flat["state"])


def _chw_rows_to_hwc(w: np.ndarray, convs: list, sd: Mapping[str, np.ndarray]) -> np.ndarray:
    """Rows of a Dense weight (C·H·W, K) reordered to jdl's flatten order (H·W·C, K)."""
    c = sd[convs[-1][0]].shape[0] if convs else 1  # the last conv's output channels
    hw = w.shape[0] // c
    h = math.isqrt(hw)
    if h * h * c != w.shape[0]:
        raise ValueError(f"vgg_from_torch: the first Linear takes {w.shape[0]} features, not "
                         f"C·H·W with C={c} and a square H = W")
    return w.reshape(c, h, h, -1).transpose(1, 2, 0, 3).reshape(w.shape[0], -1)  # (C,H,W,K) → (H,W,C,K)


def _fill(where: str, template: Any, flat: dict) -> Any:
    """``template`` with each leaf taken from ``flat[path] = (torch name, array)``; a leaf with no
    tensor, a tensor of another shape, or a tensor no leaf takes is a ``ValueError``."""
    missing, wrong = [], []

    def take(path, leaf):
        p = path_str(path)
        if p not in flat:
            missing.append(p)
            return leaf
        name, array = flat[p]
        if tuple(array.shape) != tuple(leaf.shape):
            wrong.append(f"{name} → {p}: {tuple(array.shape)} vs {tuple(leaf.shape)}")
        return jnp.asarray(array, jnp.float32)

    out = jax.tree_util.tree_map_with_path(take, template)
    used = {path_str(p) for p, _ in jax.tree_util.tree_flatten_with_path(template)[0]}
    unused = [flat[p][0] for p in flat if p not in used]
    if missing or wrong or unused:
        raise ValueError(f"{where}: the state dict does not fit the jdl model: no tensor for "
                         f"{missing[:4]}, shapes differ for {wrong[:4]}, tensors unused {unused[:4]}")
    return out


def from_torch_state_dict(state_dict: Mapping[str, Any], params: Any, state: Any) -> tuple[Any, Any]:
    """``resnet_from_torch`` or ``vgg_from_torch``, by the state dict's names ('layer1.…' or
    'features.…'): jdl (params, state) shaped like the given ones, holding torchvision's weights."""
    names = list(state_dict)
    if any(n.startswith("layer1.") for n in names):
        return resnet_from_torch(state_dict, params, state)
    if any(n.startswith("features.") for n in names):
        return vgg_from_torch(state_dict, params, state)
    raise ValueError(f"from_torch_state_dict: expected torchvision ResNet ('layer1.0.conv1.weight') "
                     f"or VGG ('features.0.weight') names, got {names[:3]}")
