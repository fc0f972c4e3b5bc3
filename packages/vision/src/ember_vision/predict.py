"""Classify one image: ``python -m ember_vision.predict IMAGE --model resnet18 --weights DEFAULT``.

``--weights`` takes a member name of the model's weights enum (``DEFAULT``, ``IMAGENET1K_V1``)
or a local ``.pth`` path; ``--offline`` sets ``EMBER_OFFLINE=1`` so only cached files are used.
The top-k classes are printed as ``name: probability``, one a line.
"""

import argparse
import os
import sys

from PIL import Image

import ember

from . import models
from .weights import imagenet_categories


def parse_args(argv=None):
    p = argparse.ArgumentParser(
        prog="python -m ember_vision.predict", description=__doc__.split("\n")[0]
    )
    p.add_argument("image", help="path of the image to classify")
    p.add_argument("--model", default="resnet18", choices=models.list_models())
    p.add_argument("--weights", default="DEFAULT", help="DEFAULT, a member name, or a .pth path")
    p.add_argument("--num-classes", type=int, default=1000, help="head size of a local checkpoint")
    p.add_argument("--topk", type=int, default=5)
    p.add_argument("--offline", action="store_true", help="never touch the network")
    return p.parse_args(argv)


def predict(image, model, preset, categories, topk=5):
    """``[(category, probability)]`` for the ``topk`` most probable classes of a PIL image.

    >>> import ember
    >>> from PIL import Image
    >>> from ember_vision import models, transforms
    >>> _ = ember.manual_seed(0)
    >>> net = models.resnet18(num_classes=3)
    >>> preset = transforms.ImageClassification(crop_size=32, resize_size=32)
    >>> out = predict(Image.new("RGB", (40, 40)), net, preset, ["a", "b", "c"], topk=2)
    >>> len(out), out[0][1] >= out[1][1]
    (2, True)
    """
    x = preset(image.convert("RGB")).unsqueeze(0)  # (1, 3, crop, crop)
    model.eval()
    with ember.no_grad():
        probs = ember.softmax(model(x), dim=1)[0]  # (num_classes,)
    values, indices = ember.topk(probs, min(topk, probs.shape[0]))
    return [(categories[int(i)], float(v)) for v, i in zip(values.tolist(), indices.tolist())]


def main(argv=None):
    args = parse_args(argv)
    if args.offline:
        os.environ["EMBER_OFFLINE"] = "1"
    enum_cls = models.get_model_weights(args.model)
    is_file = args.weights not in enum_cls.__members__ and os.path.isfile(args.weights)
    num_classes = args.num_classes if is_file else 1000
    try:
        model = models.get_model(args.model, weights=args.weights, num_classes=num_classes)
    except (RuntimeError, ValueError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    member = enum_cls.DEFAULT if is_file else enum_cls.verify(args.weights)
    if num_classes == 1000:
        categories = imagenet_categories()
    else:
        categories = [f"class {i}" for i in range(num_classes)]
    with Image.open(args.image) as img:
        top = predict(img, model, member.transforms(), categories, args.topk)
    for name, prob in top:
        print(f"{name}: {prob:.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
