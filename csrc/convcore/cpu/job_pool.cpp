#include "convcore/cpu/job_pool.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "convcore/threading.h"

namespace convcore {

namespace {

std::atomic<int> g_holds{0};

// Jobs are dealt in contiguous ranges, one per thread (the caller takes
// range 0, worker i range i + 1), and a thread that runs out takes jobs
// from the others' ranges. The drivers number jobs in spatial order, so on
// a balanced run each core computes the same part of every layer's output
// and reads its input mostly from its own cache.
struct alignas(64) Range {
  std::atomic<index_t> next{0};
  index_t end = 0;
};
constexpr int kMaxRanges = 64;

struct Batch {
  const std::function<void(index_t)>* f = nullptr;
  index_t n = 0;
  int nr = 1;  // ranges in use
  Range r[kMaxRanges];
  void deal(index_t jobs, int parts) {
    n = jobs;
    nr = std::max(1, std::min(parts, kMaxRanges));
    for (int i = 0; i < nr; ++i) {
      r[i].next.store(jobs * i / nr, std::memory_order_relaxed);
      r[i].end = jobs * (i + 1) / nr;
    }
  }
};

class Pool {
 public:
  void run(index_t n, const std::function<void(index_t)>& f, int threads) {
    std::unique_lock<std::mutex> busy(run_mu_, std::try_to_lock);
    if (!busy.owns_lock() || threads <= 1) return serial(n, f);
    resize(threads - 1);
    Batch b;
    b.f = &f;
    b.deal(n, threads);
    {
      std::lock_guard<std::mutex> g(mu_);
      batch_ = &b;
      ++gen_;
      gen_pub_.store(gen_, std::memory_order_release);
    }
    cv_.notify_all();
    {
      DenormalGuard dg;
      work(b, 0);
    }
    {
      // Close the batch: a worker that has not joined yet never will; wait
      // for those that did to finish the jobs they claimed.
      std::unique_lock<std::mutex> g(mu_);
      batch_ = nullptr;
      if (active_.load(std::memory_order_acquire) == 0) return;
    }
    // Spin a little first: a worker's last job usually ends within
    // microseconds, while sleeping on the condition variable costs a futex
    // round trip plus a wake-up that takes tens of microseconds on a VM
    // (once per layer; models on 2 threads, A/B in alternating processes:
    // MobileNetV2 4.68 -> 4.41 ms, EfficientNet-Lite 6.13 -> 5.74, SqueezeNet
    // 1.89 -> 1.45).
    const auto t0 = std::chrono::steady_clock::now();
    for (int i = 1; active_.load(std::memory_order_acquire) != 0; ++i) {
#if defined(__x86_64__) || defined(__i386__)
      __builtin_ia32_pause();
#endif
      if (i % 64 == 0 && std::chrono::steady_clock::now() - t0 > std::chrono::microseconds(200)) {
        std::unique_lock<std::mutex> g(mu_);
        idle_cv_.wait(g, [&] { return active_.load(std::memory_order_acquire) == 0; });
        return;
      }
    }
  }

  // Wakes sleeping workers without work: they spin (held) until the next
  // batch, so a run's first layers do not pay their wake-up (on a VM an idle
  // vCPU can take a millisecond to come back).
  void kick() {
    {
      if (!has_workers_.load(std::memory_order_acquire)) return;
      std::lock_guard<std::mutex> g(mu_);
      ++gen_;
      gen_pub_.store(gen_, std::memory_order_release);
    }
    cv_.notify_all();
  }

 private:
  // Own range first, then the others' in turn.
  static void work(Batch& b, int me) {
    for (int k = 0; k < b.nr; ++k) {
      Range& r = b.r[(me + k) % b.nr];
      for (index_t i = r.next.fetch_add(1); i < r.end; i = r.next.fetch_add(1)) (*b.f)(i);
    }
  }

  static void serial(index_t n, const std::function<void(index_t)>& f) {
    DenormalGuard dg;
    for (index_t i = 0; i < n; ++i) f(i);
  }

  void worker(int id) {
    unsigned long seen = 0;
    std::unique_lock<std::mutex> g(mu_);
    for (;;) {
      if (stop_ > id) return;
      if (gen_ != seen && batch_) {
        seen = gen_;
        Batch* b = batch_;
        active_.fetch_add(1, std::memory_order_relaxed);
        g.unlock();
        {
          DenormalGuard dg;
          work(*b, id + 1);
        }
        g.lock();
        // (under mu_: a caller that saw active_ != 0 under it and went to
        // sleep is woken; one still spinning sees the count)
        if (active_.fetch_sub(1, std::memory_order_acq_rel) == 1) idle_cv_.notify_all();
        continue;
      }
      // Nothing to do (or a batch that closed before this worker got to it:
      // it is done). Spin briefly (~50 us; held: up to 20 ms) before
      // sleeping, so back-to-back calls (a network's layers) find the worker
      // awake. A worker woken from sleep spins again too: were it to sleep
      // at once, a wake-up slower than the batches would keep it asleep for
      // good (seen: 1 thread's speed on a loop of 40 us layers).
      seen = gen_;
      g.unlock();
      const auto t0 = std::chrono::steady_clock::now();
      for (int i = 1; gen_pub_.load(std::memory_order_acquire) == seen; ++i) {
#if defined(__x86_64__) || defined(__i386__)
        __builtin_ia32_pause();
#endif
        if (i % 64 == 0) {
          const auto spun = std::chrono::steady_clock::now() - t0;
          const bool held = g_holds.load(std::memory_order_relaxed) > 0;
          if (spun > (held ? std::chrono::microseconds(20000) : std::chrono::microseconds(50)))
            break;
          // Held: stay awake, but give the core to any other runnable thread.
          if (held) std::this_thread::yield();
        }
      }
      g.lock();
      if (gen_ == seen) cv_.wait(g, [&] { return stop_ > id || gen_ != seen; });
    }
  }

  // Restarts the pool with `want` workers (called with run_mu_ held, so no
  // batch is open).
  void resize(int want) {
    if (int(threads_.size()) == want) return;
    stop_all();
    for (int i = 0; i < want; ++i) threads_.emplace_back([this, i] { worker(i); });
    has_workers_.store(want > 0, std::memory_order_release);
  }

  void stop_all() {
    {
      std::lock_guard<std::mutex> g(mu_);
      stop_ = 1 << 30;
    }
    cv_.notify_all();
    for (auto& t : threads_) t.join();
    threads_.clear();
    std::lock_guard<std::mutex> g(mu_);
    stop_ = -1;
  }

  std::mutex run_mu_;  // one batch at a time
  std::mutex mu_;
  std::condition_variable cv_, idle_cv_;
  Batch* batch_ = nullptr;
  unsigned long gen_ = 0;
  std::atomic<unsigned long> gen_pub_{0};  // gen_, readable without the lock
  std::atomic<int> active_{0};  // workers inside the open batch (joined under mu_)
  int stop_ = -1;
  std::vector<std::thread> threads_;
  std::atomic<bool> has_workers_{false};
};

Pool& pool() {
  // Never destroyed: joining workers during static teardown is fragile.
  static Pool* p = new Pool();
  return *p;
}

}  // namespace

void hold_workers(bool on) {
  if (on) {
    if (g_holds.fetch_add(1, std::memory_order_relaxed) == 0) pool().kick();
    return;
  }
  if (g_holds.fetch_sub(1, std::memory_order_relaxed) <= 0) g_holds.fetch_add(1);  // unbalanced
}

void run_jobs(index_t n, const std::function<void(index_t)>& f) {
  if (n <= 0) return;
  const int threads = int(std::min<index_t>(get_num_threads(), n));
  pool().run(n, f, threads);
}

}  // namespace convcore
