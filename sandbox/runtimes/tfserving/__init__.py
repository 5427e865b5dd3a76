"""A TensorFlow Serving-compatible model server built on the TensorFlow Python package.

Run it like the real binary::

    python -m sandbox.runtimes.tfserving --port=8500 --rest_api_port=8501 \
        --model_name=default --model_base_path=/models/default

This package imports only stdlib, numpy, tensorflow, tensorflow_serving, grpc, google.protobuf
and werkzeug, so it runs inside per-TF-version virtualenvs. Keep this file free of imports.
"""
