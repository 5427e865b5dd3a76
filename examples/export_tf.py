"""Export a tiny Keras model the way GDC's TensorFlow images want it: ``python examples/export_tf.py ./my_export``."""

from __future__ import annotations

import sys
from pathlib import Path

import keras

from sandbox.export import export_tensorflow


def main(out: str) -> None:
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(8, activation="relu"), keras.layers.Dense(2)])
    export_tensorflow(model, Path(out))  # SavedModel with the serve tag and serving_default
    print(f"SavedModel written to {out}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "my_export")
