"""scratch: hand-written layers with hand-written backwards, proven equal to torch.nn.

import scratch
scratch.nn.Conv2d(3, 6, 5, backend="numpy")     # a drop-in for torch.nn.Conv2d
scratch.functional.cross_entropy(logits, y)      # shaped like torch.nn.functional
report = scratch.swap(model, backend="torch")    # put scratch twins into any model
opt = scratch.optim.Adam(model.parameters())     # a drop-in for torch.optim.Adam
report = scratch.verify(MyConv, like="Conv2d")   # prove your own layer equal to torch.nn's
"""

from scratch import functional, nn, optim
from scratch.kernels import BACKENDS, DEFAULT_BACKEND
from scratch.swap import SwapReport, swap, unswap

__version__ = "0.1.0"


def __getattr__(name: str):
    """`scratch.verify`, imported on first use (the proof side is not needed to run layers)."""
    if name == "verify":
        import scratch.verify

        return scratch.verify
    raise AttributeError(f"module 'scratch' has no attribute {name!r}")


__all__ = [
    "BACKENDS",
    "DEFAULT_BACKEND",
    "SwapReport",
    "functional",
    "nn",
    "optim",
    "swap",
    "unswap",
    "__version__",
]
