"""Batching rules for torch.func.vmap.

A pointwise op does not care which dimension is the batch: the rule moves
every batch dimension to the front (broadcasting unbatched tensors as a
zero-stride view, which the kernels read without copying) and calls the op
once on the whole batch. Ops whose meaning depends on a dimension (prelu's
channel dim) or on call order (rrelu's random draws) keep functorch's
per-sample fallback, which is correct but loops.
"""
import torch

_ops = torch.ops.torch_activations


def _rule(op):
    def rule(info, in_dims, *args, **kwargs):
        size = info.batch_size
        moved = []
        for a, d in zip(args, in_dims):
            if isinstance(a, torch.Tensor):
                if d is None:
                    a = a.unsqueeze(0).expand(size, *a.shape)
                else:
                    a = a.movedim(d, 0)
            moved.append(a)
        moved += list(args[len(in_dims):])
        return op(*moved, **kwargs), 0

    return rule


def _inplace_rule(op):
    # The op is elementwise, so it can run on the whole physical tensor
    # wherever the batch dimension is; self is batched whenever the rule runs
    # (functorch calls the op directly when no argument is).
    def rule(info, in_dims, self, *args, **kwargs):
        op(self, *args, **kwargs)
        return None, None

    return rule


def register() -> None:
    for name in _ops._pointwise_ops():
        for suffix in ("", "_backward", "_double_backward"):
            qual = f"torch_activations::{name}{suffix}"
            torch.library.register_vmap(qual, _rule(getattr(_ops, name + suffix).default))
        torch.library.register_vmap(f"torch_activations::{name}_", _inplace_rule(getattr(_ops, name + "_").default))
