// The extension module kiln._core; the package kiln (python/kiln/__init__.py) re-exports it.
#include <cerrno>
#include <string>

#include "common.h"
#include "kiln/io/mapped_file.h"

namespace {

// The OSError subclass of a file error's errno; a missing file when there is none.
PyObject* file_error_type(int code) {
  switch (code) {
    case 0:
    case ENOENT: return PyExc_FileNotFoundError;
    case EACCES:
    case EPERM: return PyExc_PermissionError;
    case EISDIR: return PyExc_IsADirectoryError;
    case ENOTDIR: return PyExc_NotADirectoryError;
    default: return PyExc_OSError;
  }
}

}  // namespace

NB_MODULE(_core, m) {
  m.doc() = "kiln: lazy arrays on CPUs and NVIDIA GPUs";

  // kiln's exceptions become the Python ones their names promise, with the C++ message.
  nb::register_exception_translator([](const std::exception_ptr& p, void*) {
    try {
      std::rethrow_exception(p);
    } catch (const kiln::io::FileError& e) {
      PyErr_SetString(file_error_type(e.code), e.what());
    } catch (const kiln::TypeError& e) {
      PyErr_SetString(PyExc_TypeError, e.what());
    } catch (const kiln::ValueError& e) {
      PyErr_SetString(PyExc_ValueError, e.what());
    } catch (const kiln::IndexError& e) {
      PyErr_SetString(PyExc_IndexError, e.what());
    } catch (const kiln::RuntimeError& e) {
      PyErr_SetString(PyExc_RuntimeError, e.what());
    }
  });

  // Types first: the functions' default arguments refer to them.
  kiln_py::init_dtype(m);
  kiln_py::init_device(m);
  kiln_py::init_array(m);
  kiln_py::init_ops_elementwise(m);
  kiln_py::init_ops_reduce(m);
  kiln_py::init_ops_shape(m);
  kiln_py::init_ops_creation(m);
  kiln_py::init_ops_linalg(m);
  kiln_py::init_ops_conv(m);
  kiln_py::init_ops_index(m);
  kiln_py::init_ops_sort(m);
  kiln_py::init_random(m);
  kiln_py::init_fast(m);
  kiln_py::init_io(m);
  kiln_py::init_text(m);
  kiln_py::init_vision(m);
  m.attr("__version__") = kiln::kVersion;

  // What `from kiln._core import *` (python/kiln/__init__.py) takes: every public name but the
  // submodules that the Python modules kiln.models, kiln.text and kiln.vision wrap.
  nb::list all;
  for (auto [name, value] : nb::borrow<nb::dict>(m.attr("__dict__"))) {
    std::string s = nb::cast<std::string>(name);
    if (s[0] != '_' && s != "models" && s != "text" && s != "vision") all.append(name);
  }
  m.attr("__all__") = all;
}
