"""Drop-in twins of torch/nn/modules/loss.py (filled in by its family)."""
