"""Hand-written optimizers, twins of torch.optim: same signatures, defaults and state keys.

    opt = scratch.optim.Adam(model.parameters(), lr=1e-3, backend="torch")   # or "numpy"

Each subclasses `torch.optim.Optimizer` (param groups, zero_grad, state_dict, LR schedulers and
closures are torch's) and computes its update by hand: in NumPy on arrays viewing the parameter
memory (`_numpy.py`), or in plain torch ops in torch.optim's own op order (`_torch.py`).
"""

from scratch.optim.adagrad import Adagrad
from scratch.optim.adam import Adam
from scratch.optim.adamw import AdamW
from scratch.optim.optimizer import ScratchOptimizer
from scratch.optim.rmsprop import RMSprop
from scratch.optim.sgd import SGD

__all__ = ["SGD", "Adagrad", "Adam", "AdamW", "RMSprop", "ScratchOptimizer"]
