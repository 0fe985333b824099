"""fjit.nn: activations, losses, initializers, convolution/pooling functions and layers, written
in fjit.numpy only, so that grad, vmap, jit and scan apply to all of it.

Functions keep jax.nn's names (activations), optax's (losses) and jax.nn.initializers' (in
`fjit.nn.initializers`); layers keep PyTorch's names and hyperparameters, in the init/apply
style described in `fjit.nn.module`."""
from . import initializers
from .activations import *  # noqa: F401,F403  (jax.nn's names: relu, gelu, softmax, ...)
from .activations import __all__ as _activations
from .losses import *  # noqa: F401,F403  (optax's names: softmax_cross_entropy, ...)
from .losses import __all__ as _losses
from .activation_layers import *  # noqa: F401,F403  (PyTorch's: ReLU, LeakyReLU, GELU, ...)
from .activation_layers import ACTIVATION_LAYERS as _activation_layers
from .convolution import avg_pool, conv, conv_transpose, max_pool
from .layers import (AvgPool1d, AvgPool2d, BatchNorm1d, BatchNorm2d, Conv1d, Conv2d, Conv3d,
                     ConvTranspose1d, ConvTranspose2d, Dropout, Embedding, Flatten,
                     GlobalAvgPool, GlobalMaxPool, GroupNorm, LayerNorm, Linear, MaxPool1d,
                     MaxPool2d, MultiHeadAttention)
from .module import (Identity, Lambda, Layer, Module, ModuleDict, ModuleList, Parameter,
                     Sequential)
from .resize import (AdaptiveAvgPool1d, AdaptiveAvgPool2d, AdaptiveMaxPool1d,
                     AdaptiveMaxPool2d, Upsample, adaptive_avg_pool, adaptive_max_pool,
                     interpolate)
from .from_torch import ConversionError, from_torch
from .torch_compat import StateDictError, load_torch_state_dict, to_torch_state_dict

__all__ = list(_activations) + list(_losses) + list(_activation_layers) + [
    "initializers", "conv", "conv_transpose", "max_pool", "avg_pool", "Module", "Layer",
    "Parameter", "Sequential", "ModuleList", "ModuleDict", "Identity",
    "Lambda", "Linear", "Conv1d", "Conv2d", "Conv3d", "ConvTranspose1d", "ConvTranspose2d",
    "MaxPool1d", "MaxPool2d", "AvgPool1d", "AvgPool2d", "GlobalAvgPool", "GlobalMaxPool",
    "Flatten", "Dropout", "Embedding", "BatchNorm1d", "BatchNorm2d", "LayerNorm", "GroupNorm",
    "MultiHeadAttention", "Upsample", "AdaptiveAvgPool1d", "AdaptiveAvgPool2d",
    "AdaptiveMaxPool1d", "AdaptiveMaxPool2d", "interpolate", "adaptive_avg_pool",
    "adaptive_max_pool", "load_torch_state_dict", "to_torch_state_dict", "StateDictError",
    "from_torch", "ConversionError"]
