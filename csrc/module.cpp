// The Python extension module. It defines no Python functions: importing it
// loads the shared library, whose static initializers register every
// operator with the dispatcher (torch.ops.torch_activations.*).
#include <Python.h>

extern "C" PyObject* PyInit__C(void) {
  static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_C", nullptr, -1, nullptr,
                                      nullptr,               nullptr, nullptr, nullptr};
  return PyModule_Create(&module);
}
