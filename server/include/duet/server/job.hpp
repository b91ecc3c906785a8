#pragma once
// A CPU job as the pool sees it, and its outcome as the I/O thread gets it back: status, value, times, core.

#include <duet/thread_info.hpp>

#include <chrono>
#include <exception>
#include <type_traits>

namespace duet::server {

enum class job_status {
    done,     ///< ran; value holds the result
    failed,   ///< ran and threw; error holds the exception
    rejected, ///< never ran: the pool's queue was full or the pool was stopping
};

/// When and where one CPU job ran, measured on the thread that ran it.
struct job_timing
{
    std::chrono::steady_clock::time_point enqueued; ///< handed to the pool (== started when run inline)
    std::chrono::steady_clock::time_point started;
    std::chrono::steady_clock::time_point finished;
    std::chrono::nanoseconds cpu{}; ///< thread CPU time the job consumed
    int core_start = -1;            ///< sched_getcpu() when it started and finished
    int core_end = -1;

    std::chrono::nanoseconds queue() const { return started - enqueued; }
    std::chrono::nanoseconds service() const { return finished - started; }
};

/// What a job produced and how it ran. Plain data, moved from the worker to the I/O thread.
template <typename R>
struct job_outcome
{
    job_status status = job_status::done;
    R value{};
    std::exception_ptr error;
    job_timing timing;
    const thread_ident* worker = nullptr; ///< the pool worker that ran it; null when run inline or rejected
};

/// Runs f on the calling thread and measures it: wall time, thread CPU time, the core at start and end.
/// An exception from f becomes job_status::failed; it never escapes.
template <typename F>
auto run_measured(F& f) -> job_outcome<std::invoke_result_t<F&>>
{
    job_outcome<std::invoke_result_t<F&>> out;
    out.timing.core_start = current_core();
    auto cpu_start = thread_cpu_time();
    out.timing.started = std::chrono::steady_clock::now();
    try {
        out.value = f();
    } catch (...) {
        out.status = job_status::failed;
        out.error = std::current_exception();
    }
    out.timing.finished = std::chrono::steady_clock::now();
    out.timing.cpu = thread_cpu_time() - cpu_start;
    out.timing.core_end = current_core();
    out.timing.enqueued = out.timing.started;
    return out;
}

} // namespace duet::server
