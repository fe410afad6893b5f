// A read-only memory mapping of a whole file. Loaders parse straight from the mapping, so a
// multi-gigabyte model file costs address space, not a read into memory.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "kiln/errors.h"

namespace kiln::io {

// The file cannot be opened, read or mapped (missing, a directory, no permission). `code` is the
// errno of the failure where there is one (ENOENT, EACCES, EISDIR, ...), else 0; the Python bindings
// raise the OSError subclass it names (FileNotFoundError, PermissionError, IsADirectoryError).
struct FileError : RuntimeError {
  using RuntimeError::RuntimeError;
  FileError(const std::string& what, int error_code) : RuntimeError(what), code(error_code) {}
  int code = 0;
};

class MappedFile {
 public:
  // Maps `path` read-only. `op` prefixes error messages ("[op] cannot open 'path': ...").
  explicit MappedFile(const std::string& path, const char* op = "mmap");
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;
  MappedFile(MappedFile&& o) noexcept;
  MappedFile& operator=(MappedFile&& o) noexcept;

  const std::string& path() const { return path_; }
  size_t size() const { return size_; }
  // Null for an empty file.
  const uint8_t* data() const { return data_; }

 private:
  void release();

  std::string path_;
  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
};

}  // namespace kiln::io
