#pragma once
// How many CPUs this process may use: its affinity mask and a cgroup's CPU quota (v1 or v2).

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace duet {

/// A CPU bandwidth limit set by a cgroup (Docker's and podman's --cpus), in CPUs: 1.5 means 150 ms per 100
/// ms.
struct cgroup_quota
{
    double cpus = 0;
    std::string source; ///< the file it was read from, for the log
};

/// Reads the tightest CPU quota of the calling process's cgroup and its ancestors: cgroup v2 `cpu.max`, or v1
/// `cpu.cfs_quota_us` / `cpu.cfs_period_us`. root is "/" in production and a fake tree in tests.
/// No quota (unlimited, no cgroup, unreadable files) gives nullopt.
std::optional<cgroup_quota> read_cgroup_quota(const std::filesystem::path& root = "/");

/// How many CPUs this process may use, and why.
struct cpu_allowance
{
    unsigned online = 0;               ///< CPUs the machine has (std::thread::hardware_concurrency)
    unsigned affinity = 0;             ///< CPUs in this process's affinity mask (sched_getaffinity)
    std::optional<cgroup_quota> quota; ///< cgroup CPU quota, if any
    unsigned usable = 1;               ///< min(affinity, quota rounded up), at least 1

    /// One line for the start-up log, e.g. "2 usable (affinity 2 of 2 online, no cgroup quota)".
    std::string describe() const;
};

/// The CPUs in the calling thread's affinity mask, ascending (where workers may be pinned).
std::vector<int> affinity_cpus();

/// Detects the CPUs this process may use. Reads /proc and /sys once; call it at start-up, not per request.
cpu_allowance detect_cpu_allowance(const std::filesystem::path& root = "/");

} // namespace duet
