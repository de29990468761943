"""Pure array kernels, no autograd: `numpy/` and `torch/` hold the same functions by name.

Every op is a pair `<op>_forward(*arrays, **options) -> (outputs, cache)` and
`<op>_backward(cache, grad_y, needs) -> grads`, grads in the order of the forward's array
inputs (None where absent or not needed). `windows` holds the window arithmetic they share.
"""
