#pragma once
// The CPU time of a request's own code on the I/O thread, which runs in pieces between its waits.

#include <duet/thread_info.hpp>

#include <chrono>

namespace duet::server {

/// Measures the CPU time of code that runs in pieces between suspensions on one thread: call pause() before a
/// co_await and resume() after it, so that the time other requests use meanwhile is not counted.
class cpu_meter
{
public:
    cpu_meter() : started_{thread_cpu_time()} {}
    void pause() { total_ += thread_cpu_time() - started_; }
    void resume() { started_ = thread_cpu_time(); }
    /// Total so far; call it while running (not paused).
    std::chrono::nanoseconds total() const { return total_ + (thread_cpu_time() - started_); }

private:
    std::chrono::nanoseconds started_;
    std::chrono::nanoseconds total_{};
};

} // namespace duet::server
