"""Run an ONNX graph as a ``torch.nn.Module``, so ONNX-only sources reach the torch-based converters
(litert-torch for TFLite, coremltools for Core ML).

The module is built for *fixed* input shapes (mobile targets are fixed-shape anyway): shape arithmetic
(``Shape -> Gather -> Concat -> Reshape`` chains) is evaluated in numpy while tracing, so only tensor maths
reaches the exported graph. An op outside the table fails at construction with the op named, before any
converter runs.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from edgekit.errors import ConversionError

Value = Any  # torch.Tensor (data) or np.ndarray (static: initializers, constants, shapes)

_ONNX_DTYPES = {1: np.float32, 2: np.uint8, 3: np.int8, 5: np.int16, 6: np.int32, 7: np.int64, 9: np.bool_,
                10: np.float16, 11: np.float64}


def _ints(v: Value, op: str) -> list[int]:
    if isinstance(v, np.ndarray):
        return [int(x) for x in np.atleast_1d(v).tolist()]
    raise ConversionError(f"ONNX op {op} needs a static shape/axes input, but it is computed from data at run time; "
                          "fix the input shapes (--input-shape) or export the model with static shapes")


def _np_dtype(to: int) -> Any:
    try:
        return _ONNX_DTYPES[to]
    except KeyError:
        raise ConversionError(f"ONNX Cast to element type {to} is not supported; supported: "
                              f"{sorted(_ONNX_DTYPES)}") from None


def _torch_ops() -> dict[str, Callable[..., Value]]:
    import torch
    import torch.nn.functional as F  # noqa: N812

    def gemm(a: Any, b: Any, c: Any = None, alpha: float = 1.0, beta: float = 1.0, transA: int = 0,  # noqa: N803
             transB: int = 0) -> Any:  # noqa: N803
        a = a.t() if transA else a
        b = b.t() if transB else b
        y = alpha * (a @ b) if alpha != 1.0 else a @ b
        return y + beta * c if c is not None else y

    def conv(x: Any, w: Any, b: Any = None, strides: Sequence[int] = (1, 1), pads: Sequence[int] = (0, 0, 0, 0),
             dilations: Sequence[int] = (1, 1), group: int = 1, kernel_shape: Any = None,
             auto_pad: bytes = b"NOTSET") -> Any:
        if auto_pad not in (b"NOTSET", "NOTSET"):
            raise ConversionError(f"ONNX Conv auto_pad={auto_pad!r} is not supported; export with explicit pads")
        n = len(w.shape) - 2
        pads = list(pads) or [0] * (2 * n)
        begin, end = pads[:n], pads[n:]
        if begin != end:
            x = F.pad(x, [p for pair in zip(reversed(begin), reversed(end), strict=True) for p in pair])
            begin = [0] * n
        fn = {1: F.conv1d, 2: F.conv2d}[n]
        return fn(x, w, b, stride=list(strides), padding=begin, dilation=list(dilations), groups=group)

    def pool(kind: str) -> Callable[..., Any]:
        def run(x: Any, kernel_shape: Sequence[int], strides: Sequence[int] | None = None,
                pads: Sequence[int] | None = None, ceil_mode: int = 0, count_include_pad: int = 0,
                dilations: Any = None, auto_pad: Any = b"NOTSET", storage_order: int = 0) -> Any:
            n = len(kernel_shape)
            pad = list(pads or [0] * (2 * n))[:n]
            stride = list(strides or kernel_shape)
            if kind == "max":
                return F.max_pool2d(x, list(kernel_shape), stride, pad, ceil_mode=bool(ceil_mode))
            return F.avg_pool2d(x, list(kernel_shape), stride, pad, ceil_mode=bool(ceil_mode),
                                count_include_pad=bool(count_include_pad))
        return run

    def layer_norm(x: Any, scale: Any, bias: Any = None, axis: int = -1, epsilon: float = 1e-5,
                   stash_type: int = 1) -> Any:
        axis = axis % x.dim()
        return F.layer_norm(x, tuple(x.shape[axis:]), scale, bias, epsilon)

    def batch_norm(x: Any, scale: Any, b: Any, mean: Any, var: Any, epsilon: float = 1e-5, momentum: float = 0.9,
                   training_mode: int = 0) -> Any:
        return F.batch_norm(x, mean, var, scale, b, False, 0.0, epsilon)

    def reduce(fn: Callable[..., Any]) -> Callable[..., Any]:
        def run(x: Any, axes_in: Any = None, axes: Sequence[int] | None = None, keepdims: int = 1,
                noop_with_empty_axes: int = 0) -> Any:
            dims = _ints(axes_in, "Reduce") if axes_in is not None else list(axes or range(x.dim()))
            return fn(x, dim=dims, keepdim=bool(keepdims))
        return run

    def flatten(x: Any, axis: int = 1) -> Any:
        return x.reshape(int(np.prod(x.shape[:axis], dtype=np.int64)), -1)

    def clip(x: Any, lo: Any = None, hi: Any = None, min: float | None = None,  # noqa: A002
             max: float | None = None) -> Any:  # noqa: A002
        lo_v = float(np.asarray(lo)) if isinstance(lo, np.ndarray) else lo if lo is not None else min
        hi_v = float(np.asarray(hi)) if isinstance(hi, np.ndarray) else hi if hi is not None else max
        return torch.clamp(x, lo_v, hi_v)

    def gelu(x: Any, approximate: bytes = b"none") -> Any:
        approx = approximate.decode() if isinstance(approximate, bytes) else approximate
        return F.gelu(x, approximate=approx)

    return {
        "Gemm": gemm, "MatMul": torch.matmul, "Conv": conv,
        "MaxPool": pool("max"), "AveragePool": pool("avg"),
        "GlobalAveragePool": lambda x: x.mean(dim=tuple(range(2, x.dim())), keepdim=True),
        "Relu": F.relu, "Sigmoid": torch.sigmoid, "Tanh": torch.tanh, "Erf": torch.erf, "Gelu": gelu,
        "Softmax": lambda x, axis=-1: torch.softmax(x, dim=axis),
        "LayerNormalization": layer_norm, "BatchNormalization": batch_norm,
        "ReduceMean": reduce(torch.mean), "ReduceSum": reduce(torch.sum),
        "ReduceMax": reduce(lambda x, dim, keepdim: torch.amax(x, dim=dim, keepdim=keepdim)),
        "Flatten": flatten, "Clip": clip,
        "Sqrt": torch.sqrt, "Reciprocal": torch.reciprocal, "Neg": torch.neg, "Exp": torch.exp, "Log": torch.log,
        "Abs": torch.abs, "Not": torch.logical_not,
        "Transpose": lambda x, perm=None: x.permute(*(perm or reversed(range(x.dim())))),
        "Where": lambda c, a, b: torch.where(c.bool() if hasattr(c, "bool") else c, a, b),
    }


# Ops computed in numpy when every input is static (shape arithmetic), in torch otherwise.
_BINARY: dict[str, Any] = {"Add": np.add, "Sub": np.subtract, "Mul": np.multiply, "Div": None, "Pow": np.power,
           "Mod": np.mod, "Equal": np.equal, "Less": np.less, "Greater": np.greater, "And": np.logical_and,
           "Or": np.logical_or}


_NP_UNARY: dict[str, Callable[..., Any]] = {
    "Where": lambda c, x, y: np.where(c, x, y), "Not": np.logical_not, "Neg": np.negative, "Abs": np.abs,
    "Sqrt": np.sqrt, "Reciprocal": np.reciprocal, "Exp": np.exp, "Log": np.log,
    "Transpose": lambda x, perm=None: np.transpose(x, perm),
}


def supported_ops() -> set[str]:
    static_aware = {"Split", "Shape", "Gather", "Concat", "Unsqueeze", "Squeeze", "Cast", "Slice", "Reshape", "Expand",
                    "Constant", "ConstantOfShape", "Identity", "Range", "Dropout", "Size"}
    return static_aware | set(_BINARY) | {"Gemm", "MatMul", "Conv", "MaxPool", "AveragePool", "GlobalAveragePool",
                                          "Relu", "Sigmoid", "Tanh", "Erf", "Gelu", "Softmax", "LayerNormalization",
                                          "BatchNormalization", "ReduceMean", "ReduceSum", "ReduceMax", "Flatten",
                                          "Clip", "Sqrt", "Reciprocal", "Neg", "Exp", "Log", "Abs", "Not",
                                          "Transpose", "Where"}


def _attrs(node: Any) -> dict[str, Any]:
    import onnx

    out = {}
    for a in node.attribute:
        v = onnx.helper.get_attribute_value(a)
        if isinstance(v, onnx.TensorProto):
            v = onnx.numpy_helper.to_array(v)
        out[a.name] = list(v) if isinstance(v, (list, tuple)) else v
    return out


def check_supported(model: Any) -> None:
    """Raise ConversionError naming every op (and one node of it) this interpreter cannot run."""
    known = supported_ops()
    missing: dict[str, str] = {}
    for node in model.graph.node:
        if node.domain not in ("", "ai.onnx"):
            missing.setdefault(f"{node.domain}::{node.op_type}", node.name)
        elif node.op_type not in known:
            missing.setdefault(node.op_type, node.name)
    if missing:
        ops = ", ".join(f"{op} (node {name!r})" for op, name in missing.items())
        raise ConversionError(f"the ONNX graph uses op(s) the ONNX-to-torch path does not support: {ops}; "
                              f"supported: {', '.join(sorted(known))}. Use a torch/Hugging Face source instead, "
                              "or open an issue with the model")


def load(onnx_path: Path) -> Any:
    """An ``OnnxModule`` for ``onnx_path`` (ConversionError naming the op when one is unsupported)."""
    import onnx

    model = onnx.load(str(onnx_path))
    check_supported(model)
    return _module_class()(model)


def _module_class() -> type:
    import onnx
    import torch

    class OnnxModule(torch.nn.Module):
        """Executes the ONNX nodes in order; keyword inputs by ONNX name; returns a dict of named outputs."""

        def __init__(self, model: onnx.ModelProto) -> None:
            super().__init__()
            g = model.graph
            init_names = {i.name for i in g.initializer}
            self.input_names = [i.name for i in g.input if i.name not in init_names]
            self.output_names = [o.name for o in g.output]
            self._nodes = [(n.op_type, list(n.input), list(n.output), _attrs(n)) for n in g.node]
            self._static: dict[str, np.ndarray] = {}
            self._param_of: dict[str, str] = {}
            for i, t in enumerate(g.initializer):
                arr = onnx.numpy_helper.to_array(t)
                if arr.dtype.kind == "f" and arr.size > 1:
                    key = f"p{i}_" + re.sub(r"\W", "_", t.name)[-40:]
                    self.register_buffer(key, torch.from_numpy(arr.copy()))
                    self._param_of[t.name] = key
                else:
                    self._static[t.name] = arr
            self._ops = _torch_ops()

        def forward(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
            env: dict[str, Value] = dict(self._static)
            env.update({name: getattr(self, key) for name, key in self._param_of.items()})
            env.update(dict(zip(self.input_names, args, strict=False)))
            env.update(kwargs)
            for op, ins, outs, attrs in self._nodes:
                values = [env[i] if i else None for i in ins]
                result = self._run(op, values, attrs) if op != "Split" else _split(values, attrs, len(outs))
                for name, val in zip(outs, result if isinstance(result, tuple) else (result,), strict=False):
                    env[name] = np.asarray(val) if isinstance(val, np.generic) else val
            return {name: _as_tensor(env[name]) for name in self.output_names}

        def _run(self, op: str, v: list[Value], a: dict[str, Any]) -> Value:  # noqa: C901 - one dispatch table
            static = all(x is None or isinstance(x, np.ndarray) for x in v)
            if op in ("Identity", "Dropout"):
                return v[0]
            if op == "Constant":
                return np.asarray(next(iter(a.values())))
            if op == "Shape":
                return np.array(tuple(v[0].shape), dtype=np.int64)[a.get("start", 0):a.get("end")]
            if op == "Size":
                return np.array(int(np.prod(tuple(v[0].shape))), dtype=np.int64)
            if op == "ConstantOfShape":
                fill = a.get("value", np.zeros(1, np.float32))
                arr = np.full(_ints(v[0], op), fill.reshape(-1)[0], dtype=fill.dtype)
                return arr if arr.size <= 64 or fill.dtype.kind != "f" else torch.from_numpy(arr)
            if op == "Range":
                return np.arange(v[0], v[1], v[2])
            if op == "Cast":
                dt = _np_dtype(a["to"])
                return v[0].astype(dt) if static else v[0].to(torch.from_numpy(np.zeros(0, dt)).dtype)
            if op == "Reshape":
                shape = _ints(v[1], op)
                src = tuple(v[0].shape)
                shape = [src[i] if d == 0 and not a.get("allowzero") else d for i, d in enumerate(shape)]
                return v[0].reshape(shape)
            if op == "Unsqueeze":
                axes = _ints(v[1], op) if len(v) > 1 else a["axes"]
                x = v[0]
                for ax in sorted(d % (x.ndim + len(axes)) for d in axes):
                    x = np.expand_dims(x, ax) if static else x.unsqueeze(ax)
                return x
            if op == "Squeeze":
                axes = _ints(v[1], op) if len(v) > 1 and v[1] is not None else a.get("axes")
                if axes is None:
                    return np.squeeze(v[0]) if static else v[0].squeeze()
                axes = sorted((d % v[0].ndim for d in axes), reverse=True)
                x = v[0]
                for ax in axes:
                    x = np.squeeze(x, ax) if static else x.squeeze(ax)
                return x
            if op == "Concat":
                if static:
                    return np.concatenate([np.atleast_1d(x) for x in v], axis=a["axis"])
                return torch.cat([_as_tensor(x) for x in v], dim=a["axis"])
            if op == "Gather":
                axis = a.get("axis", 0)
                if static:
                    return np.take(v[0], v[1], axis=axis)
                idx = v[1]
                if isinstance(idx, np.ndarray):
                    if idx.ndim == 0:
                        return v[0].select(axis, int(idx))
                    idx = torch.from_numpy(idx.astype(np.int64))
                if isinstance(v[0], np.ndarray):  # embedding lookup into a static table
                    return torch.nn.functional.embedding(idx.long(), _as_tensor(v[0]))
                if axis == 0 and v[0].dim() == 2:
                    return torch.nn.functional.embedding(idx.long(), v[0])
                return torch.index_select(v[0], axis, idx.reshape(-1).long()).reshape(
                    *v[0].shape[:axis], *idx.shape, *v[0].shape[axis + 1:])
            if op == "Slice":
                starts, ends = _ints(v[1], op), _ints(v[2], op)
                axes = _ints(v[3], op) if len(v) > 3 and v[3] is not None else list(range(len(starts)))
                steps = _ints(v[4], op) if len(v) > 4 and v[4] is not None else [1] * len(starts)
                index: list[Any] = [slice(None)] * v[0].ndim
                for s, e, ax, st in zip(starts, ends, axes, steps, strict=True):
                    dim = v[0].shape[ax]
                    index[ax % v[0].ndim] = slice(max(min(s, dim), -dim), max(min(e, dim), -dim - 1), st)
                return v[0][tuple(index)]
            if op == "Expand":
                shape = _ints(v[1], op)
                if static:
                    return v[0] * np.ones(shape, dtype=v[0].dtype)
                target = np.broadcast_shapes(tuple(v[0].shape), tuple(shape))
                return v[0].expand(*target)
            if op in _BINARY:
                if static:
                    if op == "Div":
                        return (v[0] // v[1]) if v[0].dtype.kind in "iu" else v[0] / v[1]
                    return _BINARY[op](v[0], v[1])
                x, y = (_as_tensor(t, like) for t, like in ((v[0], v[1]), (v[1], v[0])))
                fns: dict[str, Any] = {"Add": torch.add, "Sub": torch.sub, "Mul": torch.mul, "Mod": torch.remainder,
                                       "Div": torch.div, "Pow": torch.pow, "Equal": torch.eq, "Less": torch.lt,
                                       "Greater": torch.gt, "And": torch.logical_and, "Or": torch.logical_or}
                return fns[op](x, y)
            if static and op in _NP_UNARY:
                return _NP_UNARY[op](*v, **a)
            fn = self._ops[op]
            tensors = [_as_tensor(x) if isinstance(x, np.ndarray) and x.dtype.kind == "f" else x for x in v]
            if op in ("ReduceMean", "ReduceSum", "ReduceMax") and len(tensors) > 1:
                return fn(tensors[0], tensors[1], **a)
            if op == "Where":
                tensors = [_as_tensor(x) for x in v]
            return fn(*[t for t in tensors], **a) if op != "Clip" else fn(*tensors, **a)

    return OnnxModule


def _split(v: list[Value], a: dict[str, Any], n_out: int) -> tuple[Value, ...]:
    axis = a.get("axis", 0)
    x = v[0]
    sizes = _ints(v[1], "Split") if len(v) > 1 and v[1] is not None else a.get("split")
    if not sizes:
        dim = x.shape[axis]
        step = -(-dim // n_out)  # ONNX: equal parts, the last one smaller
        sizes = [min(step, dim - i * step) for i in range(n_out)]
    if isinstance(x, np.ndarray):
        return tuple(np.split(x, np.cumsum(sizes)[:-1], axis=axis))
    return tuple(x.split(list(sizes), dim=axis))


def _as_tensor(x: Value, like: Value = None) -> Any:
    import torch

    if isinstance(x, np.ndarray):
        arr = x
        if like is not None and not isinstance(like, np.ndarray) and arr.dtype.kind in "fiub":
            t = torch.from_numpy(np.ascontiguousarray(arr))
            return t.to(like.dtype) if like.dtype.is_floating_point or arr.dtype.kind != "f" else t
        return torch.from_numpy(np.ascontiguousarray(arr))
    return x
