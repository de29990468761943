"""The optimizer updates written in NumPy, on arrays that view the parameter and state memory.

Same functions, arguments and op order as `_torch.py`; each writes `param` and its state in place.
torch's CPU kernels fuse some multiply-adds (`add(alpha=)`, `lerp`) where NumPy rounds twice, so
a step agrees to a few units in the last place rather than bit for bit. Scalars that torch hands
to a kernel as a `Scalar` (alpha=, value=) are passed as Python floats, so NumPy computes in the
array's dtype; a tensor `lr` arrives as a NumPy scalar of its dtype, as torch computes with it.
"""

from __future__ import annotations

import numpy as np
import torch

from scratch.kernels.numpy import silent

Scalar = float | np.floating


def _lerp_(start: np.ndarray, end: np.ndarray, weight: float) -> None:
    """`start.lerp_(end, weight)` with torch's two-sided formula (exact at weight 0 and 1)."""
    if abs(weight) < 0.5:
        start += weight * (end - start)
    else:
        start[...] = end - (end - start) * (1 - weight)


_CHUNK = 1 << 16  # elements: 256 KiB of float32 scratch, which stays in the cache


def _add_scaled_(target: np.ndarray, a: np.ndarray, scale: float) -> None:
    """`target += scale * a`, the same two roundings, without a temporary of the array's size:
    in chunks of `_CHUNK` elements through one small scratch buffer. A 3072 x 256 weight (the
    bench's train.mlp) kept 3 MiB of temporaries per step for this alone."""
    if scale == 1:  # 1 * a is a, exactly: one pass, as torch's add_(alpha=1)
        np.add(target, a, out=target)
        return
    if target.size <= _CHUNK or not (target.flags.c_contiguous and a.flags.c_contiguous):
        target += scale * a
        return
    flat_t, flat_a = target.reshape(-1), a.reshape(-1)  # views: both are contiguous
    scratch = np.empty(_CHUNK, np.result_type(a, scale))
    for start in range(0, flat_t.size, _CHUNK):  # chunks of the flat array, not a pixel loop
        part = scratch[: min(_CHUNK, flat_t.size - start)]
        np.multiply(flat_a[start : start + _CHUNK], scale, out=part)
        flat_t[start : start + _CHUNK] += part


def sgd(
    param: np.ndarray,
    grad: np.ndarray,
    momentum_buffer: np.ndarray | None,
    *,
    fresh_buffer: bool,
    lr: Scalar,
    weight_decay: Scalar,
    decay_in_place: bool,
    momentum: float,
    dampening: float,
    nesterov: bool,
    maximize: bool,
) -> None:
    """SGD: `g += wd*p`; `b = g` on the first step, else `b = mu*b + (1-tau)*g`; `p -= lr*g'`."""
    grad = -grad if maximize else grad
    if weight_decay != 0:
        if decay_in_place:  # as torch's differentiable path: into the gradient itself
            grad += float(weight_decay) * param
        else:
            grad = grad + float(weight_decay) * param
    if momentum != 0:
        if fresh_buffer:  # torch: buf = grad.clone(), so no dampening on the first step
            momentum_buffer[...] = grad
        else:
            momentum_buffer *= momentum
            _add_scaled_(momentum_buffer, grad, 1 - dampening)
        grad = grad + momentum * momentum_buffer if nesterov else momentum_buffer
    _add_scaled_(param, grad, float(-lr))


def adam(
    param: np.ndarray,
    grad: np.ndarray,
    exp_avg: np.ndarray,
    exp_avg_sq: np.ndarray,
    max_exp_avg_sq: np.ndarray | None,
    *,
    step: float,
    lr: Scalar,
    beta1: float,
    beta2: float,
    eps: float,
    weight_decay: float,
    amsgrad: bool,
    maximize: bool,
    decoupled_weight_decay: bool,
) -> None:
    """Adam/AdamW: moments by lerp and addcmul, `p -= lr/bc1 * m / (sqrt(v)/sqrt(bc2) + eps)`."""
    grad = -grad if maximize else grad
    if weight_decay != 0:
        if decoupled_weight_decay:  # AdamW: decay the parameter before the moments
            param *= float(1 - lr * weight_decay)
        else:
            grad = grad + weight_decay * param
    _lerp_(exp_avg, grad, 1 - beta1)
    exp_avg_sq *= beta2
    exp_avg_sq += (1 - beta2) * grad * grad
    bias_correction1 = 1 - beta1**step  # Python floats, as torch computes them
    bias_correction2 = 1 - beta2**step
    step_size = lr / bias_correction1  # in lr's dtype when lr is a tensor
    bias_correction2_sqrt = bias_correction2**0.5
    if amsgrad:  # the max of the raw second moment, not of its bias-corrected value
        np.maximum(max_exp_avg_sq, exp_avg_sq, out=max_exp_avg_sq)
        denom = np.sqrt(max_exp_avg_sq) / bias_correction2_sqrt
    else:
        denom = np.sqrt(exp_avg_sq) / bias_correction2_sqrt
    denom += eps  # eps after sqrt(v_hat)
    param += float(-step_size) * exp_avg / denom


def adagrad(
    param: np.ndarray,
    grad: np.ndarray,
    state_sum: np.ndarray,
    *,
    step: float,
    lr: Scalar,
    lr_decay: float,
    weight_decay: float,
    eps: float,
    maximize: bool,
) -> None:
    """Adagrad: `sum += g*g`; `p -= clr * g / (sqrt(sum) + eps)`, `clr = lr / (1 + (t-1)*decay)`."""
    grad = -grad if maximize else grad
    if weight_decay != 0:
        grad = grad + weight_decay * param
    clr = lr / (1 + (step - 1) * lr_decay)
    state_sum += grad * grad
    std = np.sqrt(state_sum)
    std += eps  # eps outside the sqrt
    param += float(-clr) * grad / std


def rmsprop(
    param: np.ndarray,
    grad: np.ndarray,
    square_avg: np.ndarray,
    grad_avg: np.ndarray | None,
    momentum_buffer: np.ndarray | None,
    *,
    lr: Scalar,
    alpha: float,
    eps: float,
    weight_decay: float,
    momentum: float,
    centered: bool,
    maximize: bool,
) -> None:
    """RMSprop: `v = a*v + (1-a)*g*g`; centered subtracts `mean(g)^2`; optional momentum buffer."""
    grad = -grad if maximize else grad
    if weight_decay != 0:
        grad = grad + weight_decay * param
    square_avg *= alpha
    square_avg += (1 - alpha) * grad * grad
    if centered:
        _lerp_(grad_avg, grad, 1 - alpha)
        avg = np.sqrt(square_avg + -1.0 * grad_avg * grad_avg)
    else:
        avg = np.sqrt(square_avg)
    avg += eps
    if momentum > 0:
        momentum_buffer *= momentum
        momentum_buffer += 1.0 * grad / avg
        param += float(-lr) * momentum_buffer
    else:
        param += float(-lr) * grad / avg


def check_param(param: torch.Tensor) -> None:
    """What the NumPy updates cannot do, refused before any update of a step is made: torch's
    error for an in-place write into a parameter whose elements share memory (an expanded
    leaf, which NumPy would write through), and the dtypes and devices NumPy cannot compute.
    Per parameter and step: the common case is three tests (0.3 us)."""
    strides = param.stride()
    if param.dtype in _COMPUTED and 0 not in strides and not param.is_meta:
        return
    if any(st == 0 and n > 1 for st, n in zip(strides, param.shape)):
        raise RuntimeError(
            "unsupported operation: more than one element of the written-to tensor refers to a "
            "single memory location. Please clone() the tensor before performing the operation."
        )
    if param.dtype == torch.bfloat16:
        raise TypeError("the numpy backend has no bfloat16: use backend='torch' or float32")
    if param.dtype == torch.float16:  # torch rounds each op from float32, its scalars unrounded;
        # NumPy's float16 arithmetic rounds lr, betas and eps too: off by 5e-3 in 20 SGD steps
        raise TypeError(
            "the numpy backend's optimizers have no float16 (NumPy rounds the update's "
            "scalars to float16, torch computes each op in float32): use backend='torch', "
            "bit-exact against torch.optim in float16, or float32 parameters"
        )
    if param.is_meta:
        raise NotImplementedError(
            "the numpy backend computes values, and a meta tensor has none: use backend='torch'"
        )


_COMPUTED = {torch.float32, torch.float64}  # (complex and integer params are refused before)


def _scalar(x: torch.Tensor):
    """A 0-d tensor as a NumPy scalar of its dtype."""
    return x.detach().cpu().numpy()[()]


def run(update, tensors: tuple[torch.Tensor | None, ...], options: dict) -> None:
    """Apply `update` (silent: see `_silent_updates`) to NumPy views of the tensors (checked by
    `check_param`); copies off the CPU are written back."""
    # writable views of the memory on the CPU (detach + cpu in one call), host copies elsewhere
    arrays = [None if t is None else t.numpy(force=True) for t in tensors]
    scalars = {k: _scalar(v) if isinstance(v, torch.Tensor) else v for k, v in options.items()}
    update(*arrays, **scalars)
    for t, a in zip(tensors, arrays, strict=True):
        if t is not None and not t.is_cpu:
            t.copy_(torch.from_numpy(a))


# NaN and inf are values, as in torch, which never warns about them: NumPy's RuntimeWarnings
# (errors under `-W error`) would stop an update half-way. The kernels' own errstate wrapper
# (0.15 us a call against 1.2 us for `np.errstate`): the bench MLP's SGD step (4 parameters)
# takes 370 us with it and `check_param`, 359 without either (in-process A/B, one thread).
for _name in ("sgd", "adam", "adagrad", "rmsprop"):
    globals()[_name] = silent(globals()[_name])
