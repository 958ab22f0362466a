// The Python extension module. Importing it loads the shared library, whose
// static initializers register every operator with the dispatcher
// (torch.ops.torch_activations.*). Its one function, _calls, hands out the
// operators' direct Python callables (python/calls.cpp).
#include <Python.h>

#include <vector>

namespace torch_activations::python {

extern const int kNumCalls;
extern PyMethodDef kCalls[];

namespace {
// Owned references, kept for the life of the process: the callables that
// hold indices into it can outlive the module object.
std::vector<PyObject*>& fallbacks() {
  static std::vector<PyObject*> v;
  return v;
}
}  // namespace

PyObject* fallback_of(int i) { return fallbacks()[static_cast<size_t>(i)]; }

namespace {
// _calls(generic: dict[str, callable]) -> dict[str, callable]
// generic maps every operator name to the binding it falls back to; the
// result maps the names that have a direct callable to it. Called once.
PyObject* calls(PyObject* module, PyObject* generic) {
  if (!PyDict_Check(generic)) {
    PyErr_SetString(PyExc_TypeError, "torch_activations._C._calls: expected a dict of operator name -> callable");
    return nullptr;
  }
  if (!fallbacks().empty()) {
    PyErr_SetString(PyExc_RuntimeError, "torch_activations._C._calls: the callables are already bound");
    return nullptr;
  }
  std::vector<PyObject*> found;
  for (int i = 0; i < kNumCalls; ++i) {
    PyObject* f = PyDict_GetItemString(generic, kCalls[i].ml_name);  // borrowed
    if (f == nullptr || !PyCallable_Check(f)) {
      PyErr_Format(PyExc_KeyError, "torch_activations._C._calls: no generic binding for operator '%s'",
                   kCalls[i].ml_name);
      return nullptr;
    }
    found.push_back(f);
  }
  PyObject* out = PyDict_New();
  if (out == nullptr) return nullptr;
  PyObject* modname = PyUnicode_FromString("torch_activations._C");
  if (modname == nullptr) {
    Py_DECREF(out);
    return nullptr;
  }
  for (int i = 0; i < kNumCalls; ++i) {
    PyObject* fn = PyCFunction_NewEx(&kCalls[i], nullptr, modname);
    if (fn == nullptr || PyDict_SetItemString(out, kCalls[i].ml_name, fn) != 0) {
      Py_XDECREF(fn);
      Py_DECREF(modname);
      Py_DECREF(out);
      return nullptr;
    }
    Py_DECREF(fn);
  }
  Py_DECREF(modname);
  for (PyObject* f : found) Py_INCREF(f);
  fallbacks() = std::move(found);
  return out;
}

PyMethodDef kModuleMethods[] = {
    {"_calls", calls, METH_O, "Direct callables of the operators' default overloads (internal)."},
    {nullptr, nullptr, 0, nullptr}};
}  // namespace
}  // namespace torch_activations::python

extern "C" PyObject* PyInit__C(void) {
  static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_C", nullptr, -1,
                                      torch_activations::python::kModuleMethods,
                                      nullptr, nullptr, nullptr, nullptr};
  return PyModule_Create(&module);
}
