"""Pure math: soft assignment, target distribution, KL, k-means, metrics, choosing k, collapse checks, N2D's manifold + mixture. No I/O, no config."""
