"""Model servers that the GDC prebuilt images run: a TF Serving-compatible server and TorchServe.

Keep this file free of imports: the TF server runs this package under other Python environments.
"""
