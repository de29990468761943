"""Drop-in twins of torch/nn/modules/pooling.py (filled in by its family)."""
