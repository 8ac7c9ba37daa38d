"""Train the built-in demo model and write it into the package.

Trains :class:`attrkit.demo.model.DigitsCNN` on a stratified 75 % split of scikit-learn's
8x8 digits (shipped with scikit-learn, nothing is downloaded) and writes, under
``attrkit/demo/data/``:

- ``digits_cnn.pt``: the state dict;
- ``digits_heldout.npz``: the whole held-out 25 % (pixels 0..16 as uint8, labels, and each
  digit's index in ``load_digits()``), so the demo and the tests need no scikit-learn;
- ``digits_cnn.json``: the training setup and the accuracy on the held-out split.

Usage (needs scikit-learn; about 10 seconds on 2 CPU cores)::

    python scripts/train_demo_model.py
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

from attrkit.demo.model import (
    HELDOUT_FILE,
    METADATA_FILE,
    WEIGHTS_FILE,
    DigitsCNN,
    digits_to_tensors,
)

DATA_DIR = Path(__file__).resolve().parent.parent / "attrkit" / "demo" / "data"
SEED = 0
TEST_SIZE = 0.25
EPOCHS = 40
BATCH_SIZE = 32
LEARNING_RATE = 3e-3
WEIGHT_DECAY = 1e-4


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DATA_DIR, help="output folder")
    args = parser.parse_args()

    start = time.perf_counter()
    torch.manual_seed(SEED)
    torch.use_deterministic_algorithms(True)
    digits = load_digits()
    pixels = digits.images.astype(np.uint8)  # integers 0..16
    indices = np.arange(len(pixels))
    train_idx, test_idx = train_test_split(
        indices, test_size=TEST_SIZE, random_state=SEED, stratify=digits.target
    )
    x_train, y_train = digits_to_tensors(pixels[train_idx], digits.target[train_idx])
    x_test, y_test = digits_to_tensors(pixels[test_idx], digits.target[test_idx])

    model = DigitsCNN()
    optimizer = torch.optim.Adam(model.parameters(), lr=LEARNING_RATE, weight_decay=WEIGHT_DECAY)
    generator = torch.Generator().manual_seed(SEED)
    for _ in range(EPOCHS):
        model.train()
        for batch in torch.randperm(len(x_train), generator=generator).split(BATCH_SIZE):
            optimizer.zero_grad()
            F.cross_entropy(model(x_train[batch]), y_train[batch]).backward()
            optimizer.step()
    model.eval()
    with torch.no_grad():
        train_accuracy = float((model(x_train).argmax(1) == y_train).float().mean())
        test_accuracy = float((model(x_test).argmax(1) == y_test).float().mean())

    args.out.mkdir(parents=True, exist_ok=True)
    torch.save(model.state_dict(), args.out / WEIGHTS_FILE)
    np.savez_compressed(
        args.out / HELDOUT_FILE,
        images=pixels[test_idx],
        labels=digits.target[test_idx].astype(np.uint8),
        indices=test_idx.astype(np.int16),
    )
    metadata = {
        "model": f"{DigitsCNN.__module__}.{DigitsCNN.__qualname__}",
        "dataset": "sklearn.datasets.load_digits (8x8, pixels 0..16, input = pixels / 16)",
        "split": {"test_size": TEST_SIZE, "random_state": SEED, "stratify": True},
        "n_train": len(train_idx),
        "n_test": len(test_idx),
        "train_accuracy": round(train_accuracy, 4),
        "test_accuracy": round(test_accuracy, 4),
        "training": {
            "seed": SEED,
            "epochs": EPOCHS,
            "batch_size": BATCH_SIZE,
            "optimizer": "Adam",
            "learning_rate": LEARNING_RATE,
            "weight_decay": WEIGHT_DECAY,
        },
        "parameters": sum(p.numel() for p in model.parameters()),
        "trained_with": {"torch": torch.__version__, "python": platform.python_version()},
    }
    (args.out / METADATA_FILE).write_text(json.dumps(metadata, indent=2) + "\n")
    print(
        f"train accuracy {train_accuracy:.2%}, held-out accuracy {test_accuracy:.2%} "
        f"({len(test_idx)} digits); wrote {args.out} in {time.perf_counter() - start:.1f} s"
    )


if __name__ == "__main__":
    main()
