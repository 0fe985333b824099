"""LeNet-5 (LeCun et al. 1998) as PyTorch tutorials write it, for 28x28 (padded to 32x32 by
the first convolution) or 32x32 single-channel images."""
from __future__ import annotations

from .. import nn


class LeNet5(nn.Module):
    """conv1 (6 5x5) - pool - conv2 (16 5x5) - pool - fc1 120 - fc2 84 - fc3 classes.
    `activation`: a layer class (nn.ReLU by default, nn.Tanh for the original)."""

    def __init__(self, num_classes=10, in_channels=1, input_size=28, activation=nn.ReLU):
        if input_size not in (28, 32):
            raise ValueError(f"LeNet5: input_size must be 28 or 32, got {input_size}")
        self.conv1 = nn.Conv2d(in_channels, 6, 5, padding=2 if input_size == 28 else 0)
        self.act = activation()
        self.pool = nn.MaxPool2d(2)
        self.conv2 = nn.Conv2d(6, 16, 5)
        self.fc1 = nn.Linear(16 * 5 * 5, 120)
        self.fc2 = nn.Linear(120, 84)
        self.fc3 = nn.Linear(84, num_classes)

    def forward(self, x):
        x = self.pool(self.act(self.conv1(x)))
        x = self.pool(self.act(self.conv2(x)))
        x = x.reshape(x.shape[0], -1)
        return self.fc3(self.act(self.fc2(self.act(self.fc1(x)))))
