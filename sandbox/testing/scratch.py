"""Temp folders for model builders, removed when the process exits.

Builders run inside pytest and on their own (a support engineer rebuilding a customer's artifact), so
their scratch space cannot hang off a fixture; it is tied to the process instead.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from pathlib import Path


def temp_dir(prefix: str) -> Path:
    """A new temp folder, deleted at interpreter exit."""
    path = Path(tempfile.mkdtemp(prefix=prefix))
    atexit.register(shutil.rmtree, path, True)
    return path


def private_keras_home() -> None:
    """Point ``KERAS_HOME`` at a throwaway folder unless the user chose one (Keras writes keras.json there)."""
    if "KERAS_HOME" not in os.environ:
        os.environ["KERAS_HOME"] = str(temp_dir("keras-home-"))
