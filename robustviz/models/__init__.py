"""Models: the tiny shapes zoo (SmallCNN, TinyResNet, TinyViT; standard and noise-augmented) with shipped weights,
the normalisation wrapper that makes any classifier take [0, 1] images, and loaders for torchvision / timm /
RobustBench models (behind the ``models`` extra) and the user's own modules."""

from .._optional import import_submodules

import_submodules(__name__, ("wrappers", "zoo", "loaders", "formats", "train"))

from .formats import load_model_file  # noqa: E402
from .loaders import guess_cam_layer, load_module, load_robustbench, load_timm, load_torchvision  # noqa: E402
from .wrappers import IMAGENET_MEAN, IMAGENET_STD, NormalizedModel, attach_metadata  # noqa: E402
from .zoo import (  # noqa: E402
    ZOO_CLASS_NAMES,
    ZOO_NAMES,
    SmallCNN,
    TinyResNet,
    TinyViT,
    TokensToMap,
    build_architecture,
    create_model,
)

__all__ = ["IMAGENET_MEAN", "IMAGENET_STD", "ZOO_CLASS_NAMES", "ZOO_NAMES", "NormalizedModel", "SmallCNN",
           "TinyResNet", "TinyViT", "TokensToMap", "attach_metadata", "build_architecture", "create_model",
           "guess_cam_layer", "load_model_file", "load_module", "load_robustbench", "load_timm", "load_torchvision"]
