"""Neural-network modules, functional ops, init and utils (PyTorch's torch.nn)."""
