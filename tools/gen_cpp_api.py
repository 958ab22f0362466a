"""Generates the LibTorch C++ API of torch_activations from the registered
operator schemas:

  include/torch_activations/ops.h   declarations, with the schemas' defaults
  csrc/cpp_api.cpp                  definitions: typed calls through the dispatcher
  csrc/python/calls.cpp             Python callables of the default overloads that
                                    convert plain arguments and make those typed
                                    calls (see csrc/python/fastcall.h)

The schemas are read from the dispatcher after importing the built extension,
so they are exactly what csrc/registry.h expands to (plus the hand-written
rrelu and helper schemas). Run after changing an operator:

  python tools/gen_cpp_api.py          # rewrite both files
  python tools/gen_cpp_api.py --check  # exit 1 if either is out of date (a test runs this)
"""
import argparse
import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HEADER = os.path.join(ROOT, "include", "torch_activations", "ops.h")
SOURCE = os.path.join(ROOT, "csrc", "cpp_api.cpp")
CALLS = os.path.join(ROOT, "csrc", "python", "calls.cpp")
NAMESPACE = "torch_activations"

# Ops registered from plain C++ functions (m.def(schema, &fn)) have an unboxed
# kernel, and a typed call must then name that function's exact C++ type.
UNBOXED_ARG_TYPES = {"_set_cpu_capability": {"name": "const std::string&"},
                     "_set_lookup_reads": {"mode": "const std::string&"}}

VARIANTS = ["", "_", "_backward", "_double_backward"]


def registry_order():
    """Op families in registry.h order (pointwise, then parametric)."""
    text = open(os.path.join(ROOT, "csrc", "registry.h")).read()
    return re.findall(r"^\s*X\((\w+),", text, flags=re.M)


def family(name: str):
    for suffix in ("_double_backward", "_backward", "_"):
        if name.endswith(suffix):
            return name[: -len(suffix)], suffix
    return name, ""


def cpp_arg_type(op: str, arg) -> str:
    override = UNBOXED_ARG_TYPES.get(op, {}).get(arg.name)
    if override:
        return override
    # real_type keeps ScalarType apart from int (the schema's `type` does not).
    t = str(arg.real_type)
    mutable = arg.alias_info is not None and arg.alias_info.is_write
    table = {
        "Tensor": "at::Tensor&" if mutable else "const at::Tensor&",
        "Optional[Tensor]": "const std::optional<at::Tensor>&",
        "List[Tensor]": "at::TensorList",
        "float": "double",
        "Optional[float]": "std::optional<double>",
        "int": "int64_t",
        "Optional[int]": "std::optional<int64_t>",
        "List[int]": "at::IntArrayRef",
        # The output masks (bool[2]), the only bool lists in the schemas.
        "List[bool]": "std::array<bool, 2>",
        "bool": "bool",
        "str": "c10::string_view",
        "ScalarType": "at::ScalarType",
        "Optional[ScalarType]": "std::optional<at::ScalarType>",
        "Optional[Generator]": "std::optional<at::Generator>",
    }
    if t not in table:
        raise SystemExit(f"gen_cpp_api: no C++ type for argument '{arg.name}: {t}' of {op}; add it to the table")
    return table[t]


def cpp_return_type(op: str, schema) -> str:
    rets = [str(r.type) for r in schema.returns]
    one = {"Tensor": "at::Tensor", "str": "std::string", "List[str]": "std::vector<std::string>", "int": "int64_t"}
    for r in rets:
        if r not in one:
            raise SystemExit(f"gen_cpp_api: no C++ type for return '{r}' of {op}")
    if not rets:
        return "void"
    if len(rets) == 1:
        return one[rets[0]]
    return "std::tuple<" + ", ".join(one[r] for r in rets) + ">"


def cpp_default(arg) -> str:
    v = arg.default_value
    t = str(arg.type)
    if v is None:
        return "std::nullopt"
    if t == "bool":
        return "true" if v else "false"
    if t == "float":
        r = repr(float(v))
        return r if ("." in r or "e" in r) else r + ".0"
    if t == "str":
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if t == "int":
        return str(int(v))
    if t == "List[int]":
        return "{" + ", ".join(str(int(e)) for e in v) + "}"
    raise SystemExit(f"gen_cpp_api: no C++ default for {arg.name}: {t} = {v!r}")


class Fn:
    def __init__(self, schema):
        self.schema = schema
        self.op = schema.name.split("::", 1)[1]
        # An overload (swiglu.pair) is a C++ overload of the same name: the
        # argument types tell them apart.
        self.overload = schema.overload_name
        # Internal helpers are `_name` in Python; C++ has no such convention.
        self.cpp_name = self.op.lstrip("_")
        self.args = [(a.name, cpp_arg_type(self.op, a), a) for a in schema.arguments]
        self.ret = cpp_return_type(self.op, schema)
        mutable = [n for n, t, _ in self.args if t == "at::Tensor&"]
        # An in-place op returning nothing gives back its input, like ATen's relu_.
        self.returns_self = self.ret == "void" and len(mutable) == 1
        self.self_arg = mutable[0] if self.returns_self else None
        self.public_ret = "at::Tensor&" if self.returns_self else self.ret
        # An out= overload is foo_out(out, self, ...) returning out, as ATen's
        # at::relu_out(out, self): the output first, so that the parameters
        # keep their defaults.
        self.call_order = [n for n, _, _ in self.args]
        if self.overload == "out":
            self.cpp_name = self.cpp_name + "_out"
            self.ret = "at::Tensor&"
            self.public_ret = "at::Tensor&"
            kw = [x for x in self.args if x[2].kwarg_only]
            self.args = kw + [x for x in self.args if not x[2].kwarg_only]
        self.fn_type = f"{self.ret}({', '.join(t for _, t, _ in sorted(self.args, key=lambda x: self.call_order.index(x[0])))})"
        # FunctionSchema.default_value cannot tell "=None" from no default;
        # the schema's text can.
        self.none_defaults = set(re.findall(r"\? (\w+)=None", str(schema)))


def schemas():
    sys.path.insert(0, ROOT)
    import torch
    import torch_activations  # noqa: F401  (registers the operators)

    return [s for s in torch._C._jit_get_all_schemas() if s.name.startswith(NAMESPACE + "::")]


def collect():
    fns = [Fn(s) for s in schemas()]
    order = registry_order()
    rank = {n: i for i, n in enumerate(order)}

    def key(f):
        base, suffix = family(f.op)
        if base.startswith("_"):
            return (2, 0, f.op, 0)
        return (0, rank[base], base, VARIANTS.index(suffix)) if base in rank else (1, 0, base, VARIANTS.index(suffix))

    return sorted(fns, key=key)


def render_params(f: Fn, with_defaults: bool) -> str:
    out = []
    for name, t, a in f.args:
        p = f"{t} {name}"
        if with_defaults:
            if name in f.none_defaults:
                p += " = std::nullopt"
            elif a.default_value is not None:
                p += " = " + cpp_default(a)
        out.append(p)
    return ", ".join(out)


HEADER_TOP = """\
// The C++ API of torch_activations: one function per registered operator.
// GENERATED by tools/gen_cpp_api.py from the operator schemas; do not edit.
//
// Each function calls its operator through the dispatcher, like the at::
// functions do, so autograd (gradients from C++), the profiler, autocast and
// the Meta kernels all apply. Link against the torch_activations library,
// whose static initializers register the operators.
//
//   #include <torch_activations/ops.h>
//   at::Tensor y = torch_activations::gelu(x, "tanh");
//   y.sum().backward();   // runs torch_activations::gelu_backward
#pragma once

#include <ATen/core/Tensor.h>
#include <ATen/core/Generator.h>
#include <c10/util/string_view.h>

#include <array>
#include <optional>
#include <string>
#include <tuple>
#include <vector>

#ifndef TORCH_ACTIVATIONS_API
#define TORCH_ACTIVATIONS_API __attribute__((visibility("default")))
#endif

namespace torch_activations {
"""

SOURCE_TOP = """\
// Definitions of include/torch_activations/ops.h.
// GENERATED by tools/gen_cpp_api.py from the operator schemas; do not edit.
// The operator handle is looked up once per function; the typed call checks
// the C++ signature against the schema (and against the kernel's, for ops
// registered from plain C++ functions).
#include <ATen/core/dispatch/Dispatcher.h>

#include "torch_activations/ops.h"

namespace torch_activations {
"""


def render(fns):
    h = [HEADER_TOP]
    c = [SOURCE_TOP]
    current = None
    for f in fns:
        base, _ = family(f.op)
        if base.startswith("_"):
            base = "instruction set of the CPU kernels"
        if base != current:
            h.append(f"\n// ---- {base}")
            current = base
        h.append(f"// {f.schema}")
        h.append(f"TORCH_ACTIVATIONS_API {f.public_ret} {f.cpp_name}({render_params(f, True)});")
        call_args = ", ".join(f.call_order)
        body = [f"\n{f.public_ret} {f.cpp_name}({render_params(f, False)}) {{",
                "  static const auto op = c10::Dispatcher::singleton()",
                f"                            .findSchemaOrThrow(\"{f.schema.name}\", \"{f.overload}\")",
                f"                            .typed<{f.fn_type}>();"]
        if f.returns_self:
            body += [f"  op.call({call_args});", f"  return {f.self_arg};"]
        elif f.ret == "void":
            body += [f"  op.call({call_args});"]
        else:
            body += [f"  return op.call({call_args});"]
        body.append("}")
        c.append("\n".join(body))
    h.append("\n}  // namespace torch_activations\n")
    c.append("\n}  // namespace torch_activations\n")
    return "\n".join(h), "\n".join(c)


# Argument conversions of csrc/python/fastcall.h, by schema type: (C++ local
# type, Args method).
PY_ARGS = {
    "Tensor": ("at::Tensor", "tensor"),
    "Optional[Tensor]": ("std::optional<at::Tensor>", "opt_tensor"),
    "float": ("double", "float_"),
    "Optional[float]": ("std::optional<double>", "opt_float"),
    "int": ("int64_t", "int_"),
    "Optional[int]": ("std::optional<int64_t>", "opt_int"),
    "bool": ("bool", "bool_"),
    "str": ("c10::string_view", "str"),
    "ScalarType": ("at::ScalarType", "dtype"),
    "Optional[ScalarType]": ("std::optional<at::ScalarType>", "opt_dtype"),
}

CALLS_TOP = """\
// Python callables of the operators' default overloads (see fastcall.h).
// GENERATED by tools/gen_cpp_api.py from the operator schemas; do not edit.
// Operators with an argument or result type fastcall.h does not convert have
// none here and are called through their generic binding.
#include "fastcall.h"
#include "torch_activations/ops.h"

namespace torch_activations::python {
namespace {
"""


def fast_call(f: Fn):
    """The body of f's Python callable, or None where it has no fast path."""
    s = f.schema
    if f.overload != "" or f.op in UNBOXED_ARG_TYPES:
        return None
    if any(str(a.real_type) not in PY_ARGS for a in s.arguments):
        return None
    rets = [str(r.type) for r in s.returns]
    if any(r != "Tensor" for r in rets):
        return None
    decls, checks = [], []
    for i, a in enumerate(s.arguments):
        ctype, method = PY_ARGS[str(a.real_type)]
        decls.append(f"  {ctype} {a.name}{{}};")
        checks.append(f"a.{method}({i}, {a.name})")
    call = f"torch_activations::{f.cpp_name}({', '.join(f.call_order)})"
    # An op returning () gives None in Python even where its C++ function
    # returns its argument.
    body = f"{{ {call}; }}" if not rets else f"{{ return {call}; }}"
    return decls, checks, body


def render_calls(fns):
    out = [CALLS_TOP]
    names = []
    for f in fns:
        fc = fast_call(f)
        if fc is None:
            continue
        decls, checks, body = fc
        i = len(names)
        names.append(f.op)
        cond = " && ".join(["a.ok()"] + checks)
        out.append("\n".join([
            f"// {f.schema}",
            f"PyObject* call_{f.op}(PyObject*, PyObject* const* args, Py_ssize_t nargs, PyObject* kwnames) {{",
            "  HANDLE_TH_ERRORS",
            f"  Args a(args, nargs, kwnames, {len(f.schema.arguments)});",
            *decls,
            f"  if (!({cond})) return fallback({i}, args, nargs, kwnames);",
            f"  return run([&] {body});",
            "  END_HANDLE_TH_ERRORS",
            "}\n"]))
    out.append("}  // namespace\n")
    out.append(f"extern const int kNumCalls = {len(names)};")
    out.append("PyMethodDef kCalls[] = {")
    for n in names:
        out.append(f"    {{\"{n}\", reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(call_{n})), "
                   "METH_FASTCALL | METH_KEYWORDS, nullptr},")
    out.append("    {nullptr, nullptr, 0, nullptr}};")
    out.append("\n}  // namespace torch_activations::python\n")
    return "\n".join(out)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--check", action="store_true", help="exit 1 if the generated files are out of date")
    args = ap.parse_args(argv)
    fns = collect()
    header, source = render(fns)
    stale = []
    for path, text in ((HEADER, header), (SOURCE, source), (CALLS, render_calls(fns))):
        old = open(path).read() if os.path.exists(path) else None
        if old != text:
            stale.append(os.path.relpath(path, ROOT))
            if not args.check:
                os.makedirs(os.path.dirname(path), exist_ok=True)
                with open(path, "w") as fh:
                    fh.write(text)
    if args.check and stale:
        print("out of date (run python tools/gen_cpp_api.py): " + ", ".join(stale))
        return 1
    if not args.check:
        print("wrote " + (", ".join(stale) if stale else "nothing (up to date)"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
