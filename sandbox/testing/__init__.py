"""Scenario files (``scenarios/**/*.yaml``) and the machinery the pytest plugin uses to run them."""
