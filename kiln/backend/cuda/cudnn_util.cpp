// Shared cuDNN helpers (kiln/backend/cuda/cudnn_util.h).
#include "kiln/backend/cuda/cudnn_util.h"

#ifdef KILN_HAS_CUDNN

#include <map>
#include <mutex>

#include "kiln/errors.h"

namespace kiln::cuda {

cudnnHandle_t cudnn_handle(int device, int stream, cudaStream_t s, const char* op) {
  static std::mutex mutex;
  static std::map<std::pair<int, int>, cudnnHandle_t> handles;
  std::lock_guard<std::mutex> lock(mutex);
  auto [it, fresh] = handles.try_emplace({device, stream}, nullptr);
  if (fresh) {
    cudnnStatus_t st = cudnnCreate(&it->second);
    if (st != CUDNN_STATUS_SUCCESS) {
      handles.erase(it);
      fail<RuntimeError>("[", op, "] cudnnCreate: ", cudnnGetErrorString(st));
    }
    cudnnSetStream(it->second, s);
  }
  return it->second;
}

bool cudnn_dtype(Dtype t, cudnn_frontend::DataType_t& io, cudnn_frontend::DataType_t& compute) {
  using cudnn_frontend::DataType_t;
  compute = DataType_t::FLOAT;
  switch (t) {
    case float16: io = DataType_t::HALF; return true;
    case bfloat16: io = DataType_t::BFLOAT16; return true;
    case float32: io = DataType_t::FLOAT; return true;
    case float64: io = compute = DataType_t::DOUBLE; return true;
    default: return false;
  }
}

}  // namespace kiln::cuda

#endif
