"""The `torch.nn.functional`-shaped API: every function takes a keyword-only `backend`."""

from scratch.functional.activation import *  # noqa: F403
from scratch.functional.conv import *  # noqa: F403
from scratch.functional.linear import *  # noqa: F403
from scratch.functional.loss import *  # noqa: F403
from scratch.functional.norm import *  # noqa: F403
from scratch.functional.penalty import *  # noqa: F403
from scratch.functional.pooling import *  # noqa: F403
