#pragma once
// CPU accounting from /proc: per-core utilisation, process CPU, CPU per thread. The parsers are pure
// functions of the files' text, tested on fixtures; cpu_sampler reads the files and turns two readings into
// rates.

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace duet {

/// One line of /proc/stat ("cpu3 user nice system idle iowait irq softirq steal …"), in clock ticks.
struct core_times
{
    int cpu = -1; ///< the core number; -1 for the "cpu" line that sums every core
    std::uint64_t user = 0, nice = 0, system = 0, idle = 0, iowait = 0, irq = 0, softirq = 0, steal = 0;

    std::uint64_t total() const { return user + nice + system + idle + iowait + irq + softirq + steal; }
};

/// The per-core lines of /proc/stat (not the summary line), in file order.
std::vector<core_times> parse_proc_stat(std::string_view text);

/// The fields duet uses from /proc/<pid>/stat or /proc/<pid>/task/<tid>/stat.
struct task_times
{
    std::int64_t id = 0;
    std::string name;            ///< comm: the thread's name, at most 15 characters
    std::uint64_t utime = 0;     ///< user CPU, clock ticks
    std::uint64_t stime = 0;     ///< system CPU, clock ticks
    std::uint64_t starttime = 0; ///< clock ticks after boot
    std::uint64_t vsize = 0;     ///< bytes
    std::uint64_t rss_pages = 0;
};

/// Parses one stat line; the name may contain spaces and parentheses. nullopt if malformed.
std::optional<task_times> parse_task_stat(std::string_view text);

/// Usage of one core over the last interval, in percent of that interval.
struct core_usage
{
    int cpu = 0;
    double user = 0, system = 0, idle = 0, iowait = 0, steal = 0;
};

/// CPU used by one thread: over the last interval (percent of one core) and in total.
struct thread_usage
{
    std::int64_t tid = 0;
    std::string name;
    double percent = 0;
    double user_seconds = 0;
    double system_seconds = 0;
};

/// One sample: rates over the interval since the previous sample, and totals since start.
struct cpu_snapshot
{
    std::chrono::system_clock::time_point at{};
    double interval_s = 0; ///< 0 for the first sample, whose rates are since the process started
    std::vector<core_usage> cores;
    double process_percent_of_one_core = 0; ///< user+system over the interval; 200 means two cores' worth
    double process_percent_of_allowed = 0;  ///< the same, divided by the CPUs this process may use
    double process_user_seconds = 0;
    double process_system_seconds = 0;
    std::vector<thread_usage> threads;
    std::uint64_t rss_bytes = 0;
    std::uint64_t vsize_bytes = 0;
    std::uint64_t open_fds = 0;
    std::uint64_t max_fds = 0;
    double start_time_s = 0; ///< the process start, in seconds since the Unix epoch
};

/// Reads /proc (under root, for tests) and turns successive readings into rates. Reading a few small files
/// costs tens of microseconds: sample on a timer, never per request. Not thread-safe: one owner thread.
class cpu_sampler
{
public:
    explicit cpu_sampler(unsigned allowed_cpus, std::filesystem::path root = "/");

    /// Reads /proc now and returns the new snapshot (rates relative to the previous call).
    const cpu_snapshot& sample();

    const cpu_snapshot& last() const noexcept { return last_; }

private:
    unsigned allowed_cpus_;
    std::filesystem::path root_;
    double ticks_per_second_;
    std::chrono::steady_clock::time_point previous_at_{};
    std::vector<core_times> previous_cores_;
    std::uint64_t previous_process_ticks_ = 0;
    std::vector<task_times> previous_threads_;
    cpu_snapshot last_;
};

} // namespace duet
