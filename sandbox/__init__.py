"""gdc-sandbox: a local emulation of GDC air-gapped Online Prediction.

The package is one engine with two front doors: the ``gdc-sandbox`` CLI (:mod:`sandbox.cli`)
and the pytest plugin (:mod:`sandbox.pytest_plugin`).
"""

__version__ = "0.1.0"
