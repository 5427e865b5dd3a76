"""The emulated GDC control plane: resources, identities, the deployer and the prediction gateway."""
