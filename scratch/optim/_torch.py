"""The optimizer updates in plain torch ops, in torch.optim's own op order (its single-tensor,
non-capturable path), so each step is bit-exact against `torch.optim.X(..., foreach=False)`.

Every function updates `param` and its state tensors in place and returns nothing. Scalars are
Python floats or 0-d tensors (a tensor `lr` or `betas`), used exactly as torch uses them.
"""

from __future__ import annotations

import torch
from torch import Tensor

Scalar = float | Tensor


def sgd(
    param: Tensor,
    grad: Tensor,
    momentum_buffer: Tensor | None,
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
    """SGD: `g += wd*p`; `b = g` on the first step, else `b = mu*b + (1-tau)*g`; `p -= lr*g'`.

    `decay_in_place` (a tensor weight_decay that requires grad): torch's differentiable path,
    which adds `wd * p` into the gradient itself (`p.grad`, unless maximize negated it)."""
    grad = -grad if maximize else grad
    if weight_decay != 0:
        if decay_in_place:
            grad = grad.addcmul_(param.clone(), weight_decay)
        else:
            grad = grad.add(param, alpha=weight_decay)
    if momentum != 0:
        if fresh_buffer:  # torch: buf = grad.clone(), so no dampening on the first step
            momentum_buffer.copy_(grad)
        else:
            momentum_buffer.mul_(momentum).add_(grad, alpha=1 - dampening)
        grad = grad.add(momentum_buffer, alpha=momentum) if nesterov else momentum_buffer
    if isinstance(lr, Tensor) and lr.requires_grad:
        param.addcmul_(grad, lr, value=-1)
    else:
        param.add_(grad, alpha=-lr)


def _on(x: Scalar, like: Tensor) -> Scalar:
    """A tensor scalar moved to `like`'s device and dtype (as torch does for Adam's beta1)."""
    return x.to(device=like.device, dtype=like.dtype) if isinstance(x, Tensor) else x


def adam(
    param: Tensor,
    grad: Tensor,
    exp_avg: Tensor,
    exp_avg_sq: Tensor,
    max_exp_avg_sq: Tensor | None,
    *,
    step: float,
    lr: Scalar,
    beta1: Scalar,
    beta2: Scalar,
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
            param.mul_(1 - lr * weight_decay)
        else:
            grad = grad.add(param, alpha=weight_decay)
    exp_avg.lerp_(grad, 1 - _on(beta1, param))
    exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
    bias_correction1 = 1 - beta1**step  # Python floats (or 0-d tensors for tensor betas)
    bias_correction2 = 1 - beta2**step
    step_size = lr / bias_correction1
    bias_correction2_sqrt = bias_correction2**0.5
    if amsgrad:  # the max of the raw second moment, not of its bias-corrected value
        torch.maximum(max_exp_avg_sq, exp_avg_sq, out=max_exp_avg_sq)
        denom = (max_exp_avg_sq.sqrt() / bias_correction2_sqrt).add_(eps)
    else:
        denom = (exp_avg_sq.sqrt() / bias_correction2_sqrt).add_(eps)  # eps after sqrt(v_hat)
    param.addcdiv_(exp_avg, denom, value=-step_size)


def adagrad(
    param: Tensor,
    grad: Tensor,
    state_sum: Tensor,
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
        grad = grad.add(param, alpha=weight_decay)
    clr = lr / (1 + (step - 1) * lr_decay)
    state_sum.addcmul_(grad, grad, value=1)
    std = state_sum.sqrt().add_(eps)  # eps outside the sqrt
    param.addcdiv_(grad, std, value=-clr)


def rmsprop(
    param: Tensor,
    grad: Tensor,
    square_avg: Tensor,
    grad_avg: Tensor | None,
    momentum_buffer: Tensor | None,
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
        grad = grad.add(param, alpha=weight_decay)
    square_avg.mul_(alpha).addcmul_(grad, grad, value=1 - alpha)
    if centered:
        grad_avg.lerp_(grad, 1 - alpha)
        avg = square_avg.addcmul(grad_avg, grad_avg, value=-1).sqrt_()
    else:
        avg = square_avg.sqrt()
    avg = avg.add_(eps)
    if momentum > 0:
        momentum_buffer.mul_(momentum).addcdiv_(grad, avg)
        param.add_(momentum_buffer, alpha=-lr)
    else:
        param.addcdiv_(grad, avg, value=-lr)


def run(update, tensors: tuple[Tensor | None, ...], options: dict) -> None:
    """Apply `update` to the tensors themselves (the torch backend needs no conversion)."""
    update(*tensors, **options)
