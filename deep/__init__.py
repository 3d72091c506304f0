"""Distributionally robust data pruning on real networks and datasets (torch)."""
