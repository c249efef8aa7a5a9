"""Your own model on torchvision's FashionMNIST: a small CNN, the data as torchvision gives it.

    schedtui run examples.fashion_mnist:experiment --preset examples/fashion_mnist.toml --data-dir ~/data

The factory hands schedtui the model and two map-style datasets (torchvision's
`FashionMNIST`, downloaded into --data-dir when missing); schedtui batches them in
an order fixed by the seed, trains with the preset's optimizer and loss, and the
dropout and BatchNorm modules of the model become knobs on their own. A few
minutes an epoch on a laptop CPU; seconds on a GPU.
"""

import torch
from torch import nn
from torchvision import datasets, transforms

import schedtui


def small_cnn(dropout: float = 0.25) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(1, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3, padding=1), nn.BatchNorm2d(64), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Dropout(dropout), nn.Linear(64 * 7 * 7, 128), nn.ReLU(), nn.Dropout(dropout), nn.Linear(128, 10),
    )


def experiment(cfg: dict) -> schedtui.Experiment:
    to_tensor = transforms.Compose([transforms.ToTensor(), transforms.Normalize((0.286,), (0.353,))])
    root = cfg["data_dir"]
    train = datasets.FashionMNIST(root, train=True, download=True, transform=to_tensor)
    val = datasets.FashionMNIST(root, train=False, download=True, transform=to_tensor)
    torch.manual_seed(cfg["seed"])
    return schedtui.Experiment(model=small_cnn(), train=train, val=val)  # optimizer and loss: the preset's
