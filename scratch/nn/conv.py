"""Drop-in twins of torch/nn/modules/conv.py (filled in by its family)."""
