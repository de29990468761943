"""Drop-in modules: torch.nn's classes, signatures and state_dict keys, scratch's forward/backward.

`TWINS` maps each supported torch.nn class to its scratch twin (used by `scratch.swap`);
`scratch.nn.init` is the twin of `torch.nn.init`.
"""

from scratch.nn import init
from scratch.nn._twin import TWINS, Twin
from scratch.nn.activation import *  # noqa: F403
from scratch.nn.batchnorm import *  # noqa: F403
from scratch.nn.conv import *  # noqa: F403
from scratch.nn.linear import *  # noqa: F403
from scratch.nn.loss import *  # noqa: F403
from scratch.nn.pooling import *  # noqa: F403

__all__ = [cls.__name__ for cls in TWINS.values()] + ["TWINS", "Twin", "init"]
