// A reader for PyTorch checkpoints (`torch.save` of a state dict, `.pth`/`.pt`), without Python.
//
// Two layouts are read:
// - the zip archive torch.save writes since PyTorch 1.6: `<archive>/data.pkl` (the pickled object),
//   `<archive>/data/<key>` (one record per storage, raw little-endian bytes), `<archive>/byteorder`;
// - the legacy stream (`_use_new_zipfile_serialization=False`): a magic number, a protocol number
//   and a system-info dict, each pickled, then the object, the list of storage keys, and each
//   storage as an int64 element count followed by its bytes.
//
// The pickle is run by a small unpickler that knows only what state dicts hold: dicts (plain and
// collections.OrderedDict), lists, tuples, str, int, float, bool, None, torch.Size, tensors
// (torch._utils._rebuild_tensor{,_v2,_v3}), parameters (_rebuild_parameter{,_with_state}) and the
// storage types (torch.FloatStorage, ..., torch.storage.UntypedStorage with a torch dtype). Any
// other global (os.system, a pickled nn.Module class, numpy scalars) is refused by name before
// anything is built, so a checkpoint can never run code. Tensors are strided views of their
// storage (shared storages, offsets and any non-negative strides, as torch's as_strided); loading
// copies each one out row-contiguously.
//
// The pickled object is flattened into dotted names: {"state_dict": {"fc": {"weight": t}},
// "epoch": 3} gives the tensor "state_dict.fc.weight" and the scalar "epoch"; list and tuple
// elements and int dict keys are named by number ("param_groups.0.lr"). A checkpoint whose root
// is a single tensor gives one tensor named "". To take one sub-dict, pass its name as the prefix
// of TorchCheckpoint::load_all ("state_dict" gives "fc.weight").
//
// Everything read from the file is bounds-checked, including the zip records' CRC-32s; a corrupt,
// truncated or unsupported file throws ValueError with a message that starts
// "[torch_checkpoint] '<path>': " and names the problem (the opcode, the global, the record).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <variant>
#include <vector>

#include "kiln/array.h"
#include "kiln/io/mapped_file.h"

namespace kiln::io {

// One tensor as stored: a strided view (in elements of `dtype`) of a storage.
struct TorchTensorInfo {
  std::string name;
  Dtype dtype = float32;
  Shape shape;
  Strides strides;
  int64_t storage_offset = 0;
  std::string storage_key;  // the record <archive>/data/<key>, or the legacy stream's key
  bool requires_grad = false;
  bool is_parameter = false;  // saved as a torch.nn.Parameter
};

// A non-tensor leaf of the pickled object: None, bool, int, float or str.
using TorchScalar = std::variant<std::monostate, bool, int64_t, double, std::string>;

class TorchCheckpoint {
 public:
  // Maps and parses `path`. Throws FileError when it cannot be opened and ValueError when it is
  // not a checkpoint this reader supports.
  static TorchCheckpoint open(const std::string& path);

  const std::string& path() const { return file_->path(); }
  bool is_legacy() const { return legacy_; }

  // The tensors, in the order the pickle builds them.
  const std::vector<TorchTensorInfo>& tensors() const { return tensors_; }
  bool has_tensor(const std::string& name) const { return index_.count(name) != 0; }
  const TorchTensorInfo& tensor(const std::string& name) const;  // ValueError when absent
  // The other leaves by dotted name (an optimizer's "param_groups.0.lr", a training "epoch").
  const std::map<std::string, TorchScalar>& scalars() const { return scalars_; }

  // Copies a tensor out as a row-contiguous array of its stored dtype, or cast to `target`.
  array load_tensor(const std::string& name, std::optional<Dtype> target = std::nullopt) const;
  // Every tensor; with a prefix, only those under that sub-dict, named without "prefix.".
  // ValueError when no tensor lies under the prefix.
  std::map<std::string, array> load_all(std::optional<Dtype> target = std::nullopt,
                                        const std::string& prefix = "") const;

 private:
  TorchCheckpoint() = default;

  struct StorageRecord {
    uint64_t offset = 0;  // of the bytes in the file
    uint64_t nbytes = 0;
    std::optional<uint32_t> crc32;  // zip records carry one; the legacy stream has none
  };

  std::shared_ptr<MappedFile> file_;
  bool legacy_ = false;
  std::vector<TorchTensorInfo> tensors_;
  std::unordered_map<std::string, size_t> index_;
  std::map<std::string, TorchScalar> scalars_;
  std::unordered_map<std::string, StorageRecord> storages_;
};

// Every tensor of a checkpoint by dotted name (see above), in its stored dtype or cast to `target`.
std::map<std::string, array> load_torch_checkpoint(const std::string& path, std::optional<Dtype> target = {});

}  // namespace kiln::io
