// A process-wide pool of worker threads for the batch calls (encode_batch, count_batch; no Python inside).
//
// Threads started per call cost each batch a thread start, and, worse, a cold per-thread piece cache (3.25 MiB
// allocated, zeroed and faulted in, then every multi-token piece merged again): with 16 threads over 2 MB of
// documents, each thread's share of the work is about a millisecond, the size of that setup. Pool threads live as
// long as the process, so their caches stay warm from one call to the next.
//
// - One batch at a time uses the pool: a call that finds it busy (another Python thread's batch, the GIL being
//   released) gets false from try_run and starts its own threads, as before.
// - The pool belongs to the process that started it. After a fork (a DataLoader's workers), the child has none of
//   its threads and maybe a mutex that was held at the fork: current() then starts a new pool and never touches
//   the old one (leaked on purpose, as the pool itself is at exit: its threads may be waiting on its mutex).
// - Threads are only added, up to the most a call asked for, and never exit; a thread that cannot be started
//   leaves the work to those there are (the caller always takes part).
#pragma once

#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <mutex>
#include <system_error>
#include <thread>

#if defined(_WIN32)
#include <process.h>
#define WORKER_POOL_PID() _getpid()
#else
#include <unistd.h>
#define WORKER_POOL_PID() getpid()
#endif

namespace encoder_py {

class WorkerPool {
  public:
    // This process's pool; call with the GIL held (which serializes the check and the replacement after a fork).
    static WorkerPool* current() {
        static WorkerPool* pool = nullptr;
        const long pid = static_cast<long>(WORKER_POOL_PID());
        if (!pool || pool->pid_ != pid) pool = new WorkerPool(pid);  // NOLINT: never freed (see above)
        return pool;
    }

    // Run `work()` on `extra` pool threads and on the calling thread, and return when all are done. False, having
    // run nothing, when another call holds the pool. Nothing is allocated per call but the threads still missing.
    template <class F>
    bool try_run(size_t extra, F& work) {
        return try_run_erased(extra, [](void* w) { (*static_cast<F*>(w))(); }, &work);
    }

  private:
    explicit WorkerPool(long pid) : pid_(pid) {}

    bool try_run_erased(size_t extra, void (*fn)(void*), void* arg) {
        std::unique_lock<std::mutex> turn(turn_, std::try_to_lock);
        if (!turn.owns_lock()) return false;
        while (threads_ < extra) {
            try {
                std::thread(&WorkerPool::serve, this).detach();
            } catch (const std::exception&) {  // std::system_error or std::bad_alloc: no more threads
                break;                          // the ones there are do the work
            }
            ++threads_;
        }
        if (extra > threads_) extra = threads_;
        {
            std::lock_guard<std::mutex> l(mu_);
            fn_ = fn;
            arg_ = arg;
            open_ = extra;
            busy_ = extra;
            ++generation_;
        }
        if (extra) wake_.notify_all();
        fn(arg);
        std::unique_lock<std::mutex> l(mu_);
        done_.wait(l, [this] { return busy_ == 0; });
        fn_ = nullptr;
        arg_ = nullptr;
        return true;
    }

    void serve() {
        uint64_t seen = 0;
        std::unique_lock<std::mutex> l(mu_);
        for (;;) {
            wake_.wait(l, [&] { return generation_ != seen && open_ > 0; });
            seen = generation_;
            --open_;  // this thread takes one of the call's places
            void (*fn)(void*) = fn_;
            void* arg = arg_;
            l.unlock();
            fn(arg);
            l.lock();
            if (--busy_ == 0) done_.notify_all();
        }
    }

    const long pid_;
    std::mutex turn_;  // held by the call using the pool
    std::mutex mu_;    // guards the fields below
    std::condition_variable wake_, done_;
    void (*fn_)(void*) = nullptr;  // the call's work, and its argument
    void* arg_ = nullptr;
    uint64_t generation_ = 0;
    size_t open_ = 0;     // places of this call not yet taken by a thread
    size_t busy_ = 0;     // places taken or open whose work has not finished
    size_t threads_ = 0;  // started so far (only the holder of turn_ changes it)
};

}  // namespace encoder_py
