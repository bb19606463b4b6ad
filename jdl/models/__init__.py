"""The model zoo: functions that return a ``jdl.Module``."""

from jdl.models.mlp import mlp
from jdl.models import classic
from jdl.models.cnn import VGG_CONFIGS, cnn, cnn1d, lenet5, vgg
from jdl.models.inception import auxiliary_classifier, googlenet_small, googlenet_small_aux, inception_block
from jdl.models.resnet import (
    basic_block, bottleneck_block, cifar_resnet, named_from_positional, resnet, resnet18, resnet20, resnet32,
    resnet34, resnet50, resnet56,
)
from jdl.models.gpt import GPTConfig, gpt
from jdl.models.gpt2_weights import from_gpt2, gpt2_config
from jdl.models import gpt_generate, sampling_filters
from jdl.models.transformer import TransformerConfig, encoder_decoder, greedy_decode
from jdl.models import ngram
from jdl.models.sampling import sample_logits
from jdl.models.rnn import generate, lstm_lm
from jdl.models.seq2seq import Seq2SeqConfig, lstm_encoder_decoder, lstm_greedy_decode
from jdl.models import autoencoder, latent, vae  # issue 16: linear latent models, autoencoders, VAE
from jdl.models import diffusion
from jdl.models.denoisers import TimeMLP, time_embedding
from jdl.models.unet import UNet
from jdl.models import gan
from jdl.models.torch_weights import from_torch_state_dict, resnet_from_torch, vgg_from_torch
