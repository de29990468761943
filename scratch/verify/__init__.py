"""The proof side: the parity harness, its table of named cases, whole-model parity, the check.

- `scratch.verify.parity`: `Case`, `run_case`, `gradcheck_case`, `raised` (any candidate class)
- `scratch.verify.cases`: the table of named cases, `CASES` and `ERROR_CASES`
- `scratch.verify.model_parity`: a model against its swapped copy, layer by layer
- `scratch.verify.check`: the table as `scratch check` runs it
"""
