"""A multi-layer perceptron in torchvision.ops.MLP's layout."""
from __future__ import annotations

from .. import nn


class MLP(nn.Sequential):
    """Linear, [norm], activation, Dropout for each hidden width, then Linear and Dropout,
    as torchvision.ops.MLP builds it (so its state_dict keys are "0.weight", "3.weight", ...
    with the default no-norm layout).  `norm_layer`, `activation_layer`: layer classes."""

    def __init__(self, in_channels, hidden_channels, norm_layer=None,
                 activation_layer=nn.ReLU, bias=True, dropout=0.0):
        hidden_channels = list(hidden_channels)
        if not hidden_channels:
            raise ValueError("MLP: hidden_channels needs at least the output width")
        layers, width = [], in_channels
        for out in hidden_channels[:-1]:
            layers.append(nn.Linear(width, out, bias=bias))
            if norm_layer is not None:
                layers.append(norm_layer(out))
            layers += [activation_layer(), nn.Dropout(dropout)]
            width = out
        layers += [nn.Linear(width, hidden_channels[-1], bias=bias), nn.Dropout(dropout)]
        super().__init__(*layers)
