"""Drop-in twins of torch/nn/modules/batchnorm.py (filled in by its family)."""
