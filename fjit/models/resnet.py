"""ResNet-18/34/50 in torchvision's layout (v1.5: a Bottleneck's stride sits on its 3x3
convolution), with an ImageNet stem (7x7 stride-2 convolution and max-pool) or a CIFAR stem
(3x3 stride-1 convolution, no max-pool) for 32x32 images.  Initialization is torchvision's:
He-normal (fan_out) convolutions, BatchNorm at weight 1 and bias 0, PyTorch's default for
the classifier."""
from __future__ import annotations

from .. import nn
from ..nn import initializers as inits

# torchvision: kaiming_normal_(mode="fan_out", nonlinearity="relu"); conv weights are
# (out, in, kh, kw)
_CONV_INIT = inits.variance_scaling(2.0, "fan_out", "normal", in_axis=1, out_axis=0)


def _conv(cin, cout, kernel, stride=1, padding=0):
    return nn.Conv2d(cin, cout, kernel, stride, padding, bias=False, weight_init=_CONV_INIT)


class BasicBlock(nn.Module):
    """Two 3x3 convolutions and the shortcut (ResNet-18/34)."""
    expansion = 1

    def __init__(self, inplanes, planes, stride=1, downsample=None):
        self.conv1 = _conv(inplanes, planes, 3, stride, 1)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = _conv(planes, planes, 3, 1, 1)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = downsample
        self.stride = stride

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        return self.relu(self.bn2(self.conv2(out)) + identity)


class Bottleneck(nn.Module):
    """1x1 reduce, 3x3 (with the stride), 1x1 expand by 4, and the shortcut (ResNet-50)."""
    expansion = 4

    def __init__(self, inplanes, planes, stride=1, downsample=None):
        self.conv1 = _conv(inplanes, planes, 1)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = _conv(planes, planes, 3, stride, 1)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = _conv(planes, planes * self.expansion, 1)
        self.bn3 = nn.BatchNorm2d(planes * self.expansion)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample
        self.stride = stride

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        return self.relu(self.bn3(self.conv3(out)) + identity)


class ResNet(nn.Module):
    """torchvision.models.ResNet: `block` BasicBlock or Bottleneck, `layers` the blocks per
    stage; `stem` "imagenet" (224x224 inputs) or "cifar" (32x32)."""

    def __init__(self, block, layers, num_classes=1000, stem="imagenet", in_channels=3):
        if stem not in ("imagenet", "cifar"):
            raise ValueError(f"ResNet: stem must be 'imagenet' or 'cifar', got {stem!r}")
        self.inplanes = 64
        if stem == "imagenet":
            self.conv1 = _conv(in_channels, 64, 7, 2, 3)
        else:
            self.conv1 = _conv(in_channels, 64, 3, 1, 1)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1) if stem == "imagenet" else nn.Identity()
        self.layer1 = self._make_layer(block, 64, layers[0])
        self.layer2 = self._make_layer(block, 128, layers[1], stride=2)
        self.layer3 = self._make_layer(block, 256, layers[2], stride=2)
        self.layer4 = self._make_layer(block, 512, layers[3], stride=2)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(512 * block.expansion, num_classes)

    def _make_layer(self, block, planes, blocks, stride=1):
        downsample = None
        if stride != 1 or self.inplanes != planes * block.expansion:
            downsample = nn.Sequential(_conv(self.inplanes, planes * block.expansion, 1, stride),
                                       nn.BatchNorm2d(planes * block.expansion))
        stage = [block(self.inplanes, planes, stride, downsample)]
        self.inplanes = planes * block.expansion
        stage += [block(self.inplanes, planes) for _ in range(1, blocks)]
        return nn.Sequential(*stage)

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        x = self.avgpool(x)
        return self.fc(x.reshape(x.shape[0], -1))


def resnet18(num_classes=1000, stem="imagenet", in_channels=3):
    return ResNet(BasicBlock, [2, 2, 2, 2], num_classes, stem, in_channels)


def resnet34(num_classes=1000, stem="imagenet", in_channels=3):
    return ResNet(BasicBlock, [3, 4, 6, 3], num_classes, stem, in_channels)


def resnet50(num_classes=1000, stem="imagenet", in_channels=3):
    return ResNet(Bottleneck, [3, 4, 6, 3], num_classes, stem, in_channels)
