"""torchvision ResNet/VGG weights into jdl: the reference is a PyTorch module written here with
torchvision's exact names and layout (torchvision itself is not a dependency), random weights
and random BatchNorm running statistics, run in eval mode."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jdl import models
from jdl.nn import BatchNorm

torch = pytest.importorskip("torch")
nn = torch.nn


class BasicBlock(nn.Module):  # torchvision.models.resnet.BasicBlock
    expansion = 1

    def __init__(self, c_in, width, stride=1, downsample=None):
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, width, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(width, width, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.downsample = downsample

    def forward(self, x):
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + (x if self.downsample is None else self.downsample(x)))


class Bottleneck(nn.Module):  # torchvision's v1.5: the stride on the 3×3
    expansion = 4

    def __init__(self, c_in, width, stride=1, downsample=None):
        super().__init__()
        self.conv1, self.bn1 = nn.Conv2d(c_in, width, 1, bias=False), nn.BatchNorm2d(width)
        self.conv2, self.bn2 = nn.Conv2d(width, width, 3, stride, 1, bias=False), nn.BatchNorm2d(width)
        self.conv3, self.bn3 = nn.Conv2d(width, 4 * width, 1, bias=False), nn.BatchNorm2d(4 * width)
        self.relu, self.downsample = nn.ReLU(inplace=True), downsample

    def forward(self, x):
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + (x if self.downsample is None else self.downsample(x)))


class ResNet(nn.Module):  # torchvision.models.resnet.ResNet, widths as an argument
    def __init__(self, block, layers, widths=(64, 128, 256, 512), num_classes=10):
        super().__init__()
        self.inplanes = 64
        self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
        self.bn1, self.relu = nn.BatchNorm2d(64), nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        for i, (n, w) in enumerate(zip(layers, widths)):
            setattr(self, f"layer{i + 1}", self._make_layer(block, w, n, 1 if i == 0 else 2))
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(widths[-1] * block.expansion, num_classes)
        self.n_stages = len(layers)

    def _make_layer(self, block, width, n, stride):
        downsample = None
        if stride != 1 or self.inplanes != width * block.expansion:
            downsample = nn.Sequential(nn.Conv2d(self.inplanes, width * block.expansion, 1, stride, bias=False),
                                       nn.BatchNorm2d(width * block.expansion))
        layers = [block(self.inplanes, width, stride, downsample)]
        self.inplanes = width * block.expansion
        layers += [block(self.inplanes, width) for _ in range(1, n)]
        return nn.Sequential(*layers)

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        for i in range(self.n_stages):
            x = getattr(self, f"layer{i + 1}")(x)
        return self.fc(torch.flatten(self.avgpool(x), 1))


class VGG(nn.Module):  # torchvision.models.vgg.VGG with make_layers(cfg, batch_norm)
    def __init__(self, cfg, batch_norm, hw, hidden=16, num_classes=10):
        super().__init__()
        layers, c = [], 3
        for v in cfg:
            if v == "M":
                layers.append(nn.MaxPool2d(2, 2))
            else:
                layers += [nn.Conv2d(c, v, 3, padding=1)] + ([nn.BatchNorm2d(v)] if batch_norm else []) + [nn.ReLU(True)]
                c = v
        self.features = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d((hw, hw))  # the identity on an hw×hw map, as at 224×224
        self.classifier = nn.Sequential(nn.Linear(c * hw * hw, hidden), nn.ReLU(True), nn.Dropout(),
                                        nn.Linear(hidden, num_classes))

    def forward(self, x):
        return self.classifier(torch.flatten(self.avgpool(self.features(x)), 1))  # C·H·W order


def randomize(module, seed):
    """Random weights and BatchNorm running statistics (mean ≠ 0, var ≠ 1), eval mode."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, t in module.state_dict().items():
            if name.endswith("running_var"):
                t.copy_(0.5 + torch.rand(t.shape, generator=g))
            elif name.endswith(("running_mean", "bias")):
                t.copy_(0.2 * torch.randn(t.shape, generator=g))
            elif name.endswith("weight") and t.ndim == 1:  # BatchNorm γ
                t.copy_(1 + 0.2 * torch.randn(t.shape, generator=g))
    return module.eval()


def logits_both(torch_model, jdl_model, x_nchw):
    params, state = jax.eval_shape(jdl_model.init, jax.random.key(0),
                                   jax.ShapeDtypeStruct(x_nchw.transpose(0, 2, 3, 1).shape, jnp.float32))
    params, state = models.from_torch_state_dict(torch_model.state_dict(), params, state)
    y, _ = jax.jit(jdl_model.apply)(params, state, jnp.asarray(x_nchw.transpose(0, 2, 3, 1)))  # NCHW → NHWC
    with torch.no_grad():
        ref = torch_model(torch.from_numpy(x_nchw)).numpy()
    return np.asarray(y), ref, params


def test_resnet18_from_torch_gives_pytorchs_logits():
    ref_model = randomize(ResNet(BasicBlock, [2, 2, 2, 2]), 0)
    x = np.random.default_rng(0).normal(size=(2, 3, 32, 32)).astype(np.float32)
    y, ref, params = logits_both(ref_model, models.resnet18(10), x)
    np.testing.assert_allclose(y, ref, rtol=1e-4, atol=1e-4 * np.abs(ref).max())
    assert params["layer2"]["block0"]["shortcut"]["conv"]["w"].shape == (1, 1, 64, 128)
    np.testing.assert_array_equal(params["layer1"]["block1"]["branch"]["conv2"]["w"],  # OIHW → HWIO
                                  ref_model.layer1[1].conv2.weight.detach().numpy().transpose(2, 3, 1, 0))


def test_bottleneck_resnet_from_torch():
    ref_model = randomize(ResNet(Bottleneck, [1, 2], widths=(4, 8), num_classes=5), 1)
    x = np.random.default_rng(1).normal(size=(2, 3, 16, 16)).astype(np.float32)
    y, ref, _ = logits_both(ref_model, models.resnet((1, 2), (4, 8), 5, block="bottleneck"), x)
    np.testing.assert_allclose(y, ref, rtol=1e-4, atol=1e-4 * np.abs(ref).max())


@pytest.mark.parametrize("batch_norm", [False, True])
def test_vgg_from_torch_flattens_chw_as_hwc(batch_norm):
    cfg = (8, "M", 16, "M")
    ref_model = randomize(VGG(cfg, batch_norm, hw=3), 2)
    x = np.random.default_rng(2).normal(size=(2, 3, 12, 12)).astype(np.float32)
    jdl_model = models.vgg(cfg, 10, fc=(16,), norm=BatchNorm if batch_norm else None, impl="xla")
    y, ref, params = logits_both(ref_model, jdl_model, x)
    np.testing.assert_allclose(y, ref, rtol=1e-4, atol=1e-4 * np.abs(ref).max())
    w = ref_model.classifier[0].weight.detach().numpy()  # (K, C·H·W): column c·9 + h·3 + w
    first_dense = min((k for k in params if k.endswith("_dense")), key=lambda k: int(k.split("_")[0]))
    np.testing.assert_array_equal(params[first_dense]["w"][(1 * 3 + 2) * 16 + 5], w[:, 5 * 9 + 1 * 3 + 2])


def test_converter_errors_name_what_does_not_fit():
    ref_model = ResNet(BasicBlock, [1, 1], widths=(4, 8))
    shape = jax.ShapeDtypeStruct((1, 16, 16, 3), jnp.float32)
    params, state = jax.eval_shape(models.resnet((1, 1), (4, 16), 10).init, jax.random.key(0), shape)
    with pytest.raises(ValueError, match=r"resnet_from_torch: .*shapes differ for \['fc.weight → fc/w: \(8, 10\) vs \(16, 10\)"):
        models.resnet_from_torch(ref_model.state_dict(), params, state)
    params, state = jax.eval_shape(models.resnet((1, 2), (4, 8), 10).init, jax.random.key(0), shape)
    with pytest.raises(ValueError, match=r"no tensor for \['layer2/block1/branch/bn1/beta'"):
        models.resnet_from_torch(ref_model.state_dict(), params, state)
    with pytest.raises(ValueError, match="from_torch_state_dict: expected torchvision ResNet"):
        models.from_torch_state_dict({"encoder.weight": np.zeros(2)}, params, state)
