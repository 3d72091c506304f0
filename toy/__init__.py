"""Theory of distributionally robust data pruning on a mixture of two 1-D Gaussians (numpy/scipy only)."""
