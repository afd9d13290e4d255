"""MultiGrid gridworlds: vectorised TorchRL environment with an explicit model."""
