#include "kiln/backend/cpu/parallel.h"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdlib>
#include <exception>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace kiln::cpu {

namespace {

// Parallel regions come back to back while a model runs (a few hundred a decoded token), so the
// threads spin a while for the next one before they sleep: a sleeping worker's wake-up (a
// futex) took longer than many of those regions' work.
class Pool {
 public:
  explicit Pool(int n) : size_(std::max(1, n)) {
    for (int i = 1; i < size_; ++i) workers_.emplace_back([this] { loop(); });
  }
  ~Pool() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stop_ = true;
    }
    cv_.notify_all();
    for (auto& t : workers_) t.join();
  }

  int size() const { return size_; }

  // Runs fn over the pool and returns true, or returns false at once when another thread's
  // region holds the pool (one parallel region at a time).
  bool run(int64_t n, int64_t chunks, const std::function<void(int64_t, int64_t)>& fn) {
    std::unique_lock<std::mutex> run_lock(run_mutex_, std::try_to_lock);
    if (!run_lock.owns_lock()) return false;
    const uint32_t gen = generation_.load(std::memory_order_relaxed) + 1;
    // The ticket first: a worker late for the last region that reads any of the new values
    // below (release / acquire) also sees this ticket, and so claims nothing with them.
    ticket_.store(uint64_t{gen} << 32, std::memory_order_relaxed);
    done_.store(0, std::memory_order_relaxed);
    fn_.store(&fn, std::memory_order_release);
    n_.store(n, std::memory_order_release);
    chunks_.store(chunks, std::memory_order_release);
    {
      std::lock_guard<std::mutex> lock(mutex_);
      error_ = nullptr;
      generation_.store(gen, std::memory_order_release);
    }
    cv_.notify_all();
    work(gen, &fn, n, chunks);
    for (int i = 0; done_.load(std::memory_order_acquire) != chunks; ++i) {
      if (i < kSpins) {
        pause(i);
        continue;
      }
      std::unique_lock<std::mutex> lock(mutex_);
      done_cv_.wait(lock, [&] { return done_.load(std::memory_order_acquire) == chunks; });
      break;
    }
    std::lock_guard<std::mutex> lock(mutex_);
    if (error_) std::rethrow_exception(error_);
    return true;
  }

 private:
  // About 0.1-0.5 ms of spinning, by the processor's pause length.
  static constexpr int kSpins = 20000;

  // One step of a spin. Every 64th gives the core away, so that with more threads than cores
  // (KILN_NUM_THREADS, other programs) the spinners do not starve the threads with work.
  static void pause(int i) {
    if (i % 64 == 63) {
      std::this_thread::yield();
      return;
    }
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    asm volatile("yield");
#endif
  }

  // Takes chunks of generation gen until none is left. A chunk is claimed with the generation in
  // the ticket's upper half, so a worker that arrives after its generation has ended (and a new
  // one begun) claims nothing and never runs a stale fn.
  void work(uint32_t gen, const std::function<void(int64_t, int64_t)>* fn, int64_t n, int64_t chunks) {
    for (;;) {
      uint64_t t = ticket_.load(std::memory_order_acquire);
      do {
        if (static_cast<uint32_t>(t >> 32) != gen || static_cast<int64_t>(t & 0xffffffffu) >= chunks) return;
      } while (!ticket_.compare_exchange_weak(t, t + 1, std::memory_order_acq_rel));
      const int64_t c = static_cast<int64_t>(t & 0xffffffffu);
      try {
        (*fn)(n * c / chunks, n * (c + 1) / chunks);
      } catch (...) {
        std::lock_guard<std::mutex> lock(mutex_);
        if (!error_) error_ = std::current_exception();
      }
      if (done_.fetch_add(1, std::memory_order_acq_rel) + 1 == chunks) {
        std::lock_guard<std::mutex> lock(mutex_);  // the waiter checks under this lock: no lost wake-up
        done_cv_.notify_all();
      }
    }
  }

  void loop() {
    uint32_t seen = 0;
    for (;;) {
      uint32_t gen = generation_.load(std::memory_order_acquire);
      for (int i = 0; gen == seen && i < kSpins; ++i) {
        pause(i);
        gen = generation_.load(std::memory_order_acquire);
      }
      if (gen == seen) {
        std::unique_lock<std::mutex> lock(mutex_);
        cv_.wait(lock, [&] { return stop_ || generation_.load(std::memory_order_relaxed) != seen; });
        if (stop_) return;
        gen = generation_.load(std::memory_order_acquire);
      }
      seen = gen;
      // This generation's values, or, when it has already ended, values that work() cannot
      // claim a chunk with (see run).
      work(gen, fn_.load(std::memory_order_acquire), n_.load(std::memory_order_acquire),
           chunks_.load(std::memory_order_acquire));
    }
  }

  int size_;
  std::vector<std::thread> workers_;
  std::mutex run_mutex_;
  std::mutex mutex_;
  std::condition_variable cv_, done_cv_;
  std::atomic<const std::function<void(int64_t, int64_t)>*> fn_{nullptr};
  std::atomic<int64_t> n_{0}, chunks_{0};
  std::atomic<uint64_t> ticket_{0};  // (generation << 32) | next chunk
  std::atomic<int64_t> done_{0};
  std::atomic<uint32_t> generation_{0};
  bool stop_ = false;  // under mutex_
  std::exception_ptr error_;  // under mutex_
};

int default_threads() {
  if (const char* env = std::getenv("KILN_NUM_THREADS")) {
    int n = std::atoi(env);
    if (n > 0) return n;
  }
  return std::max(1u, std::thread::hardware_concurrency());
}

std::mutex pool_mutex;
Pool* pool_ptr = nullptr;

Pool& pool() {
  std::lock_guard<std::mutex> lock(pool_mutex);
  if (!pool_ptr) pool_ptr = new Pool(default_threads());  // lives for the whole process
  return *pool_ptr;
}

}  // namespace

int num_threads() { return pool().size(); }

void set_num_threads(int n) {
  std::lock_guard<std::mutex> lock(pool_mutex);
  pool_ptr = new Pool(std::max(1, n));  // the old pool is leaked: a worker may still be inside it
}

void parallel_for(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t)>& fn) {
  if (n <= 0) return;
  Pool& p = pool();
  int64_t chunks = std::min<int64_t>(p.size(), (n + grain - 1) / std::max<int64_t>(grain, 1));
  thread_local bool inside = false;  // nested regions run inline
  if (chunks <= 1 || inside) {
    fn(0, n);
    return;
  }
  inside = true;
  bool ran = false;
  try {
    ran = p.run(n, chunks, [&](int64_t b, int64_t e) {
      bool was = inside;
      inside = true;
      fn(b, e);
      inside = was;
    });
    // The pool is busy with another thread's region: this one runs on its own thread rather
    // than queueing behind it (threads that each preprocess an image stay parallel).
    if (!ran) fn(0, n);
  } catch (...) {
    inside = false;
    throw;
  }
  inside = false;
}

}  // namespace kiln::cpu
