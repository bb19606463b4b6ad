"""The model zoo: functions that return a ``jdl.Module``."""

from jdl.models.mlp import mlp
from jdl.models import classic
from jdl.models.cnn import VGG_CONFIGS, cnn, cnn1d, lenet5, vgg
from jdl.models.inception import googlenet_small, inception_block
from jdl.models.resnet import (
    basic_block, bottleneck_block, cifar_resnet, resnet, resnet18, resnet20, resnet32, resnet34, resnet50,
    resnet56,
)
from jdl.models import autoencoder, latent, vae  # issue 16: linear latent models, autoencoders, VAE
