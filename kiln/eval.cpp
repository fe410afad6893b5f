#include "kiln/eval.h"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <optional>
#include <thread>
#include <unordered_set>

#include "kiln/backend/gpu.h"
#include "kiln/backend/kernels.h"
#include "kiln/primitive.h"

namespace kiln {

namespace {

// One evaluation runs at a time: the worker of async_eval and the caller's thread take turns.
std::mutex& eval_mutex() {
  static std::mutex* m = new std::mutex();
  return *m;
}

void run_node(array& a) {
  Primitive& p = a.primitive();
  Backend backend = a.device().type == Device::cpu ? Backend::cpu : Backend::gpu;
  Kernel kernel = find_kernel(backend, p.name());
  if (!kernel) {
    fail<RuntimeError>("[eval] operation '", p.name(), "' has no ", backend == Backend::cpu ? "CPU" : "GPU",
                       " kernel");
  }
  kernel(p, a.inputs(), a);
  if (!a.buffer()) fail<RuntimeError>("[eval] kernel of '", p.name(), "' produced no output");
  a.detach();
}

// The nodes a walk has met. Most graphs that reach eval from Python are a few nodes: those are
// searched in a short vector (no allocation per node), larger ones in a hash set.
class SeenNodes {
 public:
  // Whether id is new (and records it).
  bool insert(const void* id) {
    if (set_.empty()) {
      if (std::find(few_.begin(), few_.end(), id) != few_.end()) return false;
      if (few_.size() < kFew) {
        few_.push_back(id);
        return true;
      }
      set_.insert(few_.begin(), few_.end());
    }
    return set_.insert(id).second;
  }

 private:
  static constexpr size_t kFew = 32;
  std::vector<const void*> few_;
  std::unordered_set<const void*> set_;
};

void eval_locked(std::vector<array>& outputs) {
  // Post-order walk with an explicit stack, so graph depth never touches the call stack.
  std::vector<std::optional<array>> tape;
  SeenNodes seen;
  std::vector<std::pair<array, size_t>> stack;
  for (auto& out : outputs) {
    if (out.is_available() || !seen.insert(out.id())) continue;
    stack.emplace_back(out, 0);
    while (!stack.empty()) {
      size_t top = stack.size() - 1;
      const auto& inputs = stack[top].first.inputs();
      if (stack[top].second < inputs.size()) {
        const array& in = inputs[stack[top].second++];
        if (!in.is_available() && seen.insert(in.id())) stack.emplace_back(in, 0);
      } else {
        tape.push_back(std::move(stack[top].first));
        stack.pop_back();
      }
    }
  }
  // Release our handles as we go: a node then lives only while a later node (or the user)
  // still holds it, so its buffer is freed right after its last consumer runs.
  for (auto& a : tape) {
    run_node(*a);
    a.reset();
  }
}

struct Worker {
  std::mutex mutex;
  std::condition_variable cv, idle;
  std::deque<std::vector<array>> tasks;
  size_t unfinished = 0;  // tasks queued or running
  std::thread thread;

  Worker() {
    thread = std::thread([this] {
      for (;;) {
        std::vector<array> task;
        {
          std::unique_lock<std::mutex> lock(mutex);
          cv.wait(lock, [this] { return !tasks.empty(); });
          task = std::move(tasks.front());
          tasks.pop_front();
        }
        {
          std::lock_guard<std::mutex> lock(eval_mutex());
          try {
            eval_locked(task);
          } catch (...) {
            // The arrays stay unevaluated; reading them evaluates again and reports the error there.
          }
          task.clear();  // our handles go before the work counts as done (memory readings see it)
        }
        std::lock_guard<std::mutex> lock(mutex);
        if (--unfinished == 0) idle.notify_all();
      }
    });
    thread.detach();
  }

  void wait_idle() {
    std::unique_lock<std::mutex> lock(mutex);
    idle.wait(lock, [this] { return unfinished == 0; });
  }
};

std::atomic<Worker*> async_worker{nullptr};

Worker& worker() {
  static Worker* w = [] {
    auto* p = new Worker();  // lives for the whole process
    async_worker.store(p);
    return p;
  }();
  return *w;
}

}  // namespace

void eval(std::vector<array> outputs) {
  std::lock_guard<std::mutex> lock(eval_mutex());
  eval_locked(outputs);
}

void async_eval(std::vector<array> outputs) {
  Worker& w = worker();
  {
    std::lock_guard<std::mutex> lock(w.mutex);
    w.tasks.push_back(std::move(outputs));
    ++w.unfinished;
  }
  w.cv.notify_one();
}

void synchronize() {
  if (Worker* w = async_worker.load()) w->wait_idle();
  std::lock_guard<std::mutex> lock(eval_mutex());
  if (auto* g = gpu_backend()) {
    if (g->device_count()) g->synchronize_all();
  }
}

}  // namespace kiln
