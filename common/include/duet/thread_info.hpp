#pragma once
// Thread names and ids, the thread CPU clock and the core a thread runs on, as the reports show them.

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

namespace duet {

/// Names the calling thread (as `top -H` and /proc/self/task/*/comm show it); Linux keeps 15 characters.
void set_current_thread_name(std::string_view name);

/// The calling thread's name.
std::string current_thread_name();

/// The calling thread's kernel thread id (gettid), as `top -H` and /proc/self/task list it.
std::int64_t current_thread_id();

/// The core the calling thread runs on right now (sched_getcpu), or -1 if unknown. Cheap (vDSO).
int current_core();

/// CPU time the calling thread has consumed (CLOCK_THREAD_CPUTIME_ID). A system call: not free, but cheap.
std::chrono::nanoseconds thread_cpu_time();

/// Pins the calling thread to one CPU; false (errno kept) if the kernel refuses, e.g. a CPU outside the mask.
bool pin_current_thread(int cpu);

/// Sets the calling thread's nice value (Linux schedules threads individually; 0 is normal, 19 the lowest
/// priority). Raising it needs no privilege; false if the kernel refuses.
bool set_current_thread_nice(int nice);

/// The calling thread's nice value.
int current_thread_nice();

/// A thread's identity as reports show it.
struct thread_ident
{
    std::string name;
    std::int64_t tid = 0;

    /// The calling thread's identity.
    static thread_ident current() { return {current_thread_name(), current_thread_id()}; }
};

} // namespace duet
