"""tracefactory: build and label reasoning-trace datasets for value models, then train and evaluate
value-guided search (arXiv 2505.17373)."""

__version__ = "0.1.0"
