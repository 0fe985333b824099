"""A model zoo in PyTorch's layouts: the attribute names, and so the state_dict keys, of
torchvision's ResNets, of PyTorch's DCGAN example, of torchvision.ops.MLP and of a
nanoGPT-style transformer, so that PyTorch weights load by name with
`fjit.nn.load_torch_state_dict` and go back with `fjit.nn.to_torch_state_dict`.

    from fjit import models
    net = models.resnet18(num_classes=10, stem="cifar")
    params, state = net.init(fjit.random.PRNGKey(0)), net.init_state()
    logits, state = net.apply(params, images, state=state, train=True)
"""
from .dcgan import DCGANDiscriminator, DCGANGenerator
from .gpt import GPT
from .lenet import LeNet5
from .mlp import MLP
from .resnet import BasicBlock, Bottleneck, ResNet, resnet18, resnet34, resnet50

__all__ = ["LeNet5", "MLP", "ResNet", "BasicBlock", "Bottleneck", "resnet18", "resnet34",
           "resnet50", "DCGANGenerator", "DCGANDiscriminator", "GPT"]
