"""Batching rules for torch.func.vmap.

A pointwise op does not care which dimension is the batch: the rule moves
every batch dimension to the front (broadcasting unbatched tensors as a
zero-stride view, which the kernels read without copying) and calls the op
once on the whole batch. Row ops (the softmax family, the gated
units split along a dimension) and the pair form of the gated units get the
same treatment with their ``dim`` shifted past the batch dimension. Ops whose
meaning depends on a dimension in another way (prelu's channel dim), on call
order (rrelu's random draws) or on a reduction over the batch (the losses)
keep functorch's per-sample fallback, which is correct but loops.
"""
import torch

_ops = torch.ops.torch_activations


def _rule(op):
    def rule(info, in_dims, *args, **kwargs):
        moved, _ = _front(args, in_dims, info.batch_size)
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


def _front(args, in_dims, size):
    """Every tensor argument with its batch dimension first (an unbatched one
    as a zero-stride view), and the logical rank of the batched ones."""
    moved, rank = [], None
    for a, d in zip(args, in_dims):
        if isinstance(a, torch.Tensor):
            if d is None:
                a = a.unsqueeze(0).expand(size, *a.shape)
            else:
                a = a.movedim(d, 0)
                rank = a.dim() - 1
        moved.append(a)
    return moved + list(args[len(in_dims):]), rank


def _dim_rule(op, dim_pos, out_tuple=False):
    """Rule for an op whose argument ``dim_pos`` is a dimension of its
    (same-shaped) tensor arguments."""

    def rule(info, in_dims, *args, **kwargs):
        args, rank = _front(args, in_dims, info.batch_size)
        args, sample_args, sample_kwargs = list(args), list(args), kwargs
        if "dim" in kwargs:
            dim, where = kwargs["dim"], "kw"
        elif len(args) > dim_pos:
            dim, where = args[dim_pos], "pos"
        else:   # the schema's default
            dim, where = -1, "kw"
        if rank == 0:
            # A 0-d sample: dim must name the sample itself (-1 or 0, or the
            # op refuses 0-d input). Let the op judge one sample, then run
            # the batch as a column of 1-element rows.
            op(*[a[0] if isinstance(a, torch.Tensor) else a for a in sample_args], **sample_kwargs)
            args = [a.unsqueeze(1) if isinstance(a, torch.Tensor) else a for a in args]
            physical = 1
        else:
            if not -rank <= dim < rank:
                # Out of range for the sample: the op's own error.
                op(*[a[0] if isinstance(a, torch.Tensor) else a for a in args], **kwargs)
            physical = dim % rank + 1
        if where == "pos":
            args[dim_pos] = physical
        else:
            kwargs = dict(kwargs, dim=physical)
        try:
            out = op(*args, **kwargs)
        except RuntimeError:
            # Say it in the sample's terms (its dim, its sizes) where one
            # sample is enough to be refused.
            op(*[a[0] if isinstance(a, torch.Tensor) else a for a in sample_args], **sample_kwargs)
            raise
        if rank == 0:
            out = tuple(o.squeeze(1) for o in out) if out_tuple else out.squeeze(1)
        return out, ((0,) * len(out) if out_tuple else 0)

    return rule


def _pair_rule(op, out_tuple=False):
    def rule(info, in_dims, *args, **kwargs):
        args, _ = _front(args, in_dims, info.batch_size)
        out = op(*args, **kwargs)
        return out, ((0,) * len(out) if out_tuple else 0)

    return rule


# Ops taking a dimension of their same-ranked tensor arguments; each has
# _backward and _double_backward ops and the gated ones a pair overload.
_ROW_FAMILIES = ("softmax", "log_softmax", "softmin", "glu", "swiglu", "geglu", "reglu")


def register() -> None:
    for name in _ops._pointwise_ops():
        for suffix in ("", "_backward", "_double_backward"):
            qual = f"torch_activations::{name}{suffix}"
            torch.library.register_vmap(qual, _rule(getattr(_ops, name + suffix).default))
        torch.library.register_vmap(f"torch_activations::{name}_", _inplace_rule(getattr(_ops, name + "_").default))
    for family in _ROW_FAMILIES:
        for name in (family, family + "_backward", family + "_double_backward"):
            packet = getattr(_ops, name)
            for overload in packet.overloads():
                op = getattr(packet, overload)
                schema = op._schema
                many = len(schema.returns) > 1
                qual = f"torch_activations::{name}" + ("" if overload == "default" else f".{overload}")
                args = [a.name for a in schema.arguments]
                if "dim" in args:
                    torch.library.register_vmap(qual, _dim_rule(op, args.index("dim"), out_tuple=many))
                else:
                    torch.library.register_vmap(qual, _pair_rule(op, out_tuple=many))
