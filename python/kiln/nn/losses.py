"""Loss functions with PyTorch's definitions, arguments (input first, then target) and reductions ('mean',
'sum' or 'none'). The class axis of logits is the last one by default (kiln's layouts are channels-last);
axis=1 gives PyTorch's (N, C, ...)."""
from __future__ import annotations

from typing import Any, Optional

from .. import _core as kn

_REDUCTIONS = ("mean", "sum", "none")


def _array(x: Any) -> kn.array:
    return x if isinstance(x, kn.array) else kn.array(x)


def _check_reduction(reduction: str, loss: str) -> None:
    if reduction not in _REDUCTIONS:
        raise ValueError(f"[{loss}] reduction must be 'mean', 'sum' or 'none', not {reduction!r}")


def _reduce(loss: kn.array, reduction: str, name: str) -> kn.array:
    _check_reduction(reduction, name)
    if reduction == "mean":
        return kn.mean(loss)
    if reduction == "sum":
        return kn.sum(loss)
    return loss


def _check_same_shape(a: kn.array, b: kn.array, name: str) -> None:
    if tuple(a.shape) != tuple(b.shape):
        raise ValueError(f"[{name}] input {tuple(a.shape)} and target {tuple(b.shape)} must have the same shape")


def _class_targets(logp: kn.array, targets: kn.array, axis: int, name: str) -> None:
    """Checks that integer targets have the shape of the input without its class axis."""
    expected = tuple(d for i, d in enumerate(logp.shape) if i != axis % logp.ndim)
    if tuple(targets.shape) != expected:
        raise ValueError(f"[{name}] class targets of shape {tuple(targets.shape)} do not fit input "
                         f"{tuple(logp.shape)} with classes on axis {axis} (expected {expected})")


def _indexed_nll(logp: kn.array, targets: kn.array, weight: Optional[kn.array], ignore_index: int,
                 label_smoothing: float, reduction: str) -> kn.array:
    """The (label-smoothed) negative log-likelihood of class indices, logp's classes on the last axis."""
    classes = logp.shape[-1]
    valid = targets != ignore_index
    safe = kn.where(valid, targets, 0)
    picked = kn.squeeze(kn.take_along_axis(logp, kn.expand_dims(safe, -1), axis=-1), -1)
    zero = kn.zeros_like(picked)
    w = kn.where(valid, kn.take(weight, safe).astype(picked.dtype) if weight is not None else 1, 0).astype(picked.dtype)
    nll = -picked * w
    loss = nll * (1.0 - label_smoothing)
    if label_smoothing > 0:
        # The smoothed part spreads label_smoothing evenly over the classes: -sum_c w_c logp_c / C.
        weighted = logp * weight.astype(logp.dtype) if weight is not None else logp
        smooth = kn.where(valid, -kn.sum(weighted, axis=-1), zero)
        loss = loss + smooth * (label_smoothing / classes)
    if reduction == "none":
        return kn.where(valid, loss, zero)
    total = kn.sum(loss)
    if reduction == "sum":
        return total
    return total / kn.sum(w)  # the mean over the targets counted, by their weights


def nll_loss(log_probs: Any, targets: Any, weight: Optional[Any] = None, axis: int = -1, ignore_index: int = -100,
             reduction: str = "mean") -> kn.array:
    """-log_probs[target] (times weight[target]) per sample; 'mean' divides by the sum of the weights of the
    targets that are not ignore_index."""
    _check_reduction(reduction, "nll_loss")
    logp, targets = _array(log_probs), _array(targets)
    _class_targets(logp, targets, axis, "nll_loss")
    logp = kn.moveaxis(logp, axis, -1)
    return _indexed_nll(logp, targets, None if weight is None else _array(weight), ignore_index, 0.0, reduction)


def cross_entropy(logits: Any, targets: Any, weight: Optional[Any] = None, axis: int = -1, ignore_index: int = -100,
                  reduction: str = "mean", label_smoothing: float = 0.0) -> kn.array:
    """The cross entropy of softmax(logits) with targets: integer class indices (the shape of logits without
    the class axis; ignore_index skips a sample) or class probabilities (the shape of logits).

    label_smoothing in [0, 1] mixes the targets with the uniform distribution: (1 - ls) * target + ls / C.
    weight rescales each class; with class indices 'mean' divides by the sum of the targets' weights."""
    _check_reduction(reduction, "cross_entropy")
    if not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"[cross_entropy] label_smoothing must be in [0, 1], not {label_smoothing}")
    logits, targets = _array(logits), _array(targets)
    w = None if weight is None else _array(weight)
    logp = kn.log_softmax(logits, axis=axis)
    if kn.is_integer(targets.dtype):
        _class_targets(logits, targets, axis, "cross_entropy")
        return _indexed_nll(kn.moveaxis(logp, axis, -1), targets, w, ignore_index, label_smoothing, reduction)
    if tuple(targets.shape) != tuple(logits.shape):
        raise ValueError(f"[cross_entropy] probability targets {tuple(targets.shape)} must have the shape of the "
                         f"logits {tuple(logits.shape)} (or give integer class indices)")
    classes = logits.shape[axis]
    probs = targets.astype(logp.dtype)
    if label_smoothing > 0:
        probs = probs * (1.0 - label_smoothing) + label_smoothing / classes
    terms = logp * probs
    if w is not None:
        shape = [1] * logits.ndim
        shape[axis] = classes
        terms = terms * kn.reshape(w.astype(logp.dtype), shape)
    return _reduce(-kn.sum(terms, axis=axis), reduction, "cross_entropy")


def mse_loss(input: Any, target: Any, reduction: str = "mean") -> kn.array:
    """(input - target)**2."""
    x, t = _array(input), _array(target)
    _check_same_shape(x, t, "mse_loss")
    return _reduce(kn.square(x - t), reduction, "mse_loss")


def l1_loss(input: Any, target: Any, reduction: str = "mean") -> kn.array:
    """|input - target|."""
    x, t = _array(input), _array(target)
    _check_same_shape(x, t, "l1_loss")
    return _reduce(kn.abs(x - t), reduction, "l1_loss")


def smooth_l1_loss(input: Any, target: Any, reduction: str = "mean", beta: float = 1.0) -> kn.array:
    """0.5 d**2 / beta where |d| < beta, else |d| - 0.5 beta, for d = input - target (beta 0: l1_loss)."""
    if beta < 0:
        raise ValueError(f"[smooth_l1_loss] beta must be non-negative, not {beta}")
    x, t = _array(input), _array(target)
    _check_same_shape(x, t, "smooth_l1_loss")
    d = kn.abs(x - t)
    if beta == 0:
        return _reduce(d, reduction, "smooth_l1_loss")
    return _reduce(kn.where(d < beta, d * d * (0.5 / beta), d - 0.5 * beta), reduction, "smooth_l1_loss")


def huber_loss(input: Any, target: Any, reduction: str = "mean", delta: float = 1.0) -> kn.array:
    """0.5 d**2 where |d| < delta, else delta (|d| - 0.5 delta): smooth_l1_loss times delta."""
    if delta <= 0:
        raise ValueError(f"[huber_loss] delta must be positive, not {delta}")
    x, t = _array(input), _array(target)
    _check_same_shape(x, t, "huber_loss")
    d = kn.abs(x - t)
    return _reduce(kn.where(d < delta, d * d * 0.5, (d - 0.5 * delta) * delta), reduction, "huber_loss")


def binary_cross_entropy(input: Any, target: Any, weight: Optional[Any] = None, reduction: str = "mean") -> kn.array:
    """-(t log p + (1 - t) log(1 - p)) of probabilities p, each log clamped at -100 as PyTorch does."""
    p, t = _array(input), _array(target)
    _check_same_shape(p, t, "binary_cross_entropy")
    t = t.astype(p.dtype)
    log_p = kn.maximum(kn.log(p), -100)
    log_q = kn.maximum(kn.log1p(-p), -100)
    loss = -(t * log_p + (1 - t) * log_q)
    if weight is not None:
        loss = loss * _array(weight)
    return _reduce(loss, reduction, "binary_cross_entropy")


def binary_cross_entropy_with_logits(input: Any, target: Any, weight: Optional[Any] = None,
                                     reduction: str = "mean", pos_weight: Optional[Any] = None) -> kn.array:
    """binary_cross_entropy(sigmoid(x), t), computed stably from the logits x:
    (1 - t) x + (1 + (pos_weight - 1) t) log(1 + exp(-x)); pos_weight weighs the positive term (per class,
    broadcast along the last axis)."""
    x, t = _array(input), _array(target)
    _check_same_shape(x, t, "binary_cross_entropy_with_logits")
    t = t.astype(x.dtype)
    softplus_neg = kn.logaddexp(-x, 0)  # log(1 + exp(-x))
    if pos_weight is not None:
        loss = (1 - t) * x + ((_array(pos_weight) - 1) * t + 1) * softplus_neg
    else:
        loss = (1 - t) * x + softplus_neg
    if weight is not None:
        loss = loss * _array(weight)
    return _reduce(loss, reduction, "binary_cross_entropy_with_logits")


def kl_div(input: Any, target: Any, reduction: str = "mean", log_target: bool = False) -> kn.array:
    """target * (log target - input) for log-probabilities input (PyTorch's argument order); reduction may also
    be 'batchmean' (the sum divided by the batch size)."""
    x, t = _array(input), _array(target)
    _check_same_shape(x, t, "kl_div")
    if log_target:
        loss = kn.exp(t) * (t - x)
    else:
        t = t.astype(x.dtype)
        loss = kn.where(t > 0, t * (kn.log(kn.where(t > 0, t, 1)) - x), kn.zeros_like(x))
    if reduction == "batchmean":
        return kn.sum(loss) / (x.shape[0] if x.ndim else 1)
    return _reduce(loss, reduction, "kl_div")


__all__ = ["cross_entropy", "nll_loss", "mse_loss", "l1_loss", "smooth_l1_loss", "huber_loss", "binary_cross_entropy",
           "binary_cross_entropy_with_logits", "kl_div"]
