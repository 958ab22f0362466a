// Argument conversion for the operators' Python callables (calls.cpp).
//
// torch.ops.torch_activations.foo.default ends in a generic binding that
// matches the arguments against the schema, boxes them into a stack of
// IValues and calls the boxed kernel: about 0.7 us more per call than ATen's
// own generated bindings, which convert each argument to its C++ type and
// call the kernel unboxed. At 4K elements that is a third of a cheap op's
// time. The callables of calls.cpp do what ATen's bindings do, for the plain
// case only: positional arguments of exactly the schema's count, tensors that
// are torch.Tensor or nn.Parameter (no subclass), Python float/int/bool/str/
// None/dtype scalars, and no __torch_function__ mode active. Anything else
// goes, untouched, to the generic binding (the fallback), which then behaves
// exactly as it always did: subclasses' and modes' __torch_function__,
// keyword arguments, defaults, numpy scalars, symbolic values, and its own
// error messages. The fast path calls the operator through the dispatcher,
// like the generic binding, so autograd, autocast, the profiler, tracing and
// __torch_dispatch__ see the same call; it releases the GIL around it too.
#pragma once

#include <torch/csrc/Dtype.h>
#include <torch/csrc/Exceptions.h>
#include <torch/csrc/autograd/python_variable.h>
#include <ATen/PythonTorchFunctionTLS.h>

#include <optional>
#include <string>
#include <tuple>

namespace torch_activations::python {

// The generic binding of operator i (set once at import, see module.cpp).
PyObject* fallback_of(int i);

class Args {
 public:
  Args(PyObject* const* args, Py_ssize_t nargs, PyObject* kwnames, Py_ssize_t expected)
      : a_(args), ok_(kwnames == nullptr && nargs == expected && !at::impl::torch_function_mode_enabled()) {}
  bool ok() const { return ok_; }

  bool tensor(int i, at::Tensor& out) {
    PyObject* o = a_[i];
    if (!THPVariable_CheckExact(o)) return ok_ = false;
    out = THPVariable_Unpack(o);
    return true;
  }
  bool float_(int i, double& out) {
    PyObject* o = a_[i];
    if (PyFloat_CheckExact(o)) {
      out = PyFloat_AS_DOUBLE(o);
      return true;
    }
    if (PyLong_CheckExact(o)) {
      out = PyLong_AsDouble(o);
      if (out == -1.0 && PyErr_Occurred()) {
        PyErr_Clear();  // too large: the fallback reports it its own way
        return ok_ = false;
      }
      return true;
    }
    return ok_ = false;
  }
  bool int_(int i, int64_t& out) {
    PyObject* o = a_[i];
    if (!PyLong_CheckExact(o)) return ok_ = false;
    int overflow = 0;
    const long long v = PyLong_AsLongLongAndOverflow(o, &overflow);
    if (overflow != 0 || (v == -1 && PyErr_Occurred())) {
      PyErr_Clear();
      return ok_ = false;
    }
    out = static_cast<int64_t>(v);
    return true;
  }
  bool bool_(int i, bool& out) {
    PyObject* o = a_[i];
    if (!PyBool_Check(o)) return ok_ = false;
    out = o == Py_True;
    return true;
  }
  // The view stays valid while the caller holds the argument, i.e. for the
  // whole call (the UTF-8 form is cached in the string object).
  bool str(int i, c10::string_view& out) {
    PyObject* o = a_[i];
    if (!PyUnicode_CheckExact(o)) return ok_ = false;
    Py_ssize_t n = 0;
    const char* s = PyUnicode_AsUTF8AndSize(o, &n);
    if (s == nullptr) {
      PyErr_Clear();
      return ok_ = false;
    }
    out = c10::string_view(s, static_cast<size_t>(n));
    return true;
  }
  bool dtype(int i, at::ScalarType& out) {
    PyObject* o = a_[i];
    if (!THPDtype_Check(o)) return ok_ = false;
    out = reinterpret_cast<THPDtype*>(o)->scalar_type;
    return true;
  }

  // Optional arguments: None, or what the plain conversion accepts.
  bool opt_tensor(int i, std::optional<at::Tensor>& out) { return optional(i, out, &Args::tensor); }
  bool opt_float(int i, std::optional<double>& out) { return optional(i, out, &Args::float_); }
  bool opt_int(int i, std::optional<int64_t>& out) { return optional(i, out, &Args::int_); }
  bool opt_dtype(int i, std::optional<at::ScalarType>& out) { return optional(i, out, &Args::dtype); }

 private:
  template <class T>
  bool optional(int i, std::optional<T>& out, bool (Args::*plain)(int, T&)) {
    if (a_[i] == Py_None) return true;
    T v{};
    if (!(this->*plain)(i, v)) return false;
    out = std::move(v);
    return true;
  }

  PyObject* const* a_;
  bool ok_;
};

inline PyObject* fallback(int i, PyObject* const* args, Py_ssize_t nargs, PyObject* kwnames) {
  return PyObject_Vectorcall(fallback_of(i), args, static_cast<size_t>(nargs), kwnames);
}

inline PyObject* to_python(at::Tensor t) { return THPVariable_Wrap(std::move(t)); }

template <class... T>
PyObject* to_python(std::tuple<T...> ts) {
  PyObject* out = PyTuple_New(sizeof...(T));
  if (out == nullptr) return nullptr;
  Py_ssize_t k = 0;
  // Stops at the first tensor that fails to wrap (its error is set).
  auto put = [&](at::Tensor t) {
    PyObject* w = THPVariable_Wrap(std::move(t));
    if (w != nullptr) PyTuple_SET_ITEM(out, k++, w);
    return w != nullptr;
  };
  if (!std::apply([&](auto&... t) { return (put(std::move(t)) && ...); }, ts)) {
    Py_DECREF(out);
    return nullptr;
  }
  return out;
}

// Runs the operator with the GIL released and converts its result.
template <class F>
PyObject* run(F&& f) {
  using R = decltype(f());
  if constexpr (std::is_void_v<R>) {
    {
      pybind11::gil_scoped_release no_gil;
      f();
    }
    Py_RETURN_NONE;
  } else {
    std::decay_t<R> r;
    {
      pybind11::gil_scoped_release no_gil;
      r = f();
    }
    return to_python(std::move(r));
  }
}

}  // namespace torch_activations::python
