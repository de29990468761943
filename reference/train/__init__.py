"""Training with scratch layers side by side with torch.nn: lockstep runs, run folders, sweeps.

`train(TrainSettings(), "runs/x")` trains the scratch stack and the torch stack from the same
weights on the same batches; `resume("runs/x")` continues an interrupted run; the CLI commands
`scratch train` and `scratch sweep` live in `reference.train.cli` and `reference.train.sweep`.
"""

from reference.train.core import RunResult, resume, train
from reference.train.settings import TrainSettings, check_settings
from reference.train.stacks import Diverged

__all__ = ["Diverged", "RunResult", "TrainSettings", "check_settings", "resume", "train"]
