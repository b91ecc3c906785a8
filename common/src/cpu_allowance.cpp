// Reading the CPU allowance: sched_getaffinity and the cgroup's cpu.max or cfs quota files.
#include <duet/cpu_allowance.hpp>

#include <sched.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <sstream>
#include <string_view>
#include <thread>
#include <vector>

namespace duet {
namespace {

namespace fs = std::filesystem;

std::optional<std::string> read_first_line(const fs::path& file)
{
    std::ifstream in{file};
    std::string line;
    if (!in || !std::getline(in, line)) {
        return std::nullopt;
    }
    return line;
}

// The cgroup directory and its ancestors up to the mount point, leaf first. A container without its own
// cgroup namespace may list a host path that does not exist inside it; the mount root is always a candidate.
std::vector<fs::path> candidate_dirs(const fs::path& mount, std::string_view cgroup_path)
{
    std::vector<fs::path> dirs;
    fs::path rel = fs::path{cgroup_path}.relative_path();
    while (!rel.empty()) {
        dirs.push_back(mount / rel);
        rel = rel.parent_path();
    }
    dirs.push_back(mount);
    return dirs;
}

// cgroup v2 cpu.max: "max 100000" (no limit) or "150000 100000".
std::optional<double> parse_cpu_max(const std::string& line)
{
    std::istringstream in{line};
    std::string quota;
    double period = 0;
    if (!(in >> quota >> period) || quota == "max" || period <= 0) {
        return std::nullopt;
    }
    try {
        double q = std::stod(quota);
        return q > 0 ? std::optional<double>{q / period} : std::nullopt;
    } catch (const std::exception&) {
        return std::nullopt;
    }
}

// v1: cpu.cfs_quota_us is -1 when unlimited.
std::optional<double> read_v1_quota(const fs::path& dir)
{
    auto quota = read_first_line(dir / "cpu.cfs_quota_us");
    auto period = read_first_line(dir / "cpu.cfs_period_us");
    if (!quota || !period) {
        return std::nullopt;
    }
    try {
        double q = std::stod(*quota);
        double p = std::stod(*period);
        return q > 0 && p > 0 ? std::optional<double>{q / p} : std::nullopt;
    } catch (const std::exception&) {
        return std::nullopt;
    }
}

void keep_tightest(std::optional<cgroup_quota>& best, std::optional<double> cpus, const fs::path& file)
{
    if (cpus && (!best || *cpus < best->cpus)) {
        best = cgroup_quota{*cpus, file.string()};
    }
}

} // namespace

std::optional<cgroup_quota> read_cgroup_quota(const fs::path& root)
{
    std::ifstream in{root / "proc/self/cgroup"};
    std::optional<cgroup_quota> best;
    std::string line;
    // Each line is "hierarchy-id:controllers:path"; v2 has id 0 and no controllers.
    while (std::getline(in, line)) {
        auto first = line.find(':');
        auto second = line.find(':', first + 1);
        if (first == std::string::npos || second == std::string::npos) {
            continue;
        }
        std::string_view controllers{line.data() + first + 1, second - first - 1};
        std::string_view path{line.data() + second + 1, line.size() - second - 1};
        if (controllers.empty()) {
            for (const auto& dir : candidate_dirs(root / "sys/fs/cgroup", path)) {
                if (auto text = read_first_line(dir / "cpu.max")) {
                    keep_tightest(best, parse_cpu_max(*text), dir / "cpu.max");
                }
            }
            continue;
        }
        // v1: the cpu controller may be mounted alone or joined with cpuacct.
        bool has_cpu = false;
        std::string_view rest = controllers;
        while (!rest.empty()) {
            auto comma = rest.find(',');
            has_cpu = has_cpu || rest.substr(0, comma) == "cpu";
            rest = comma == std::string_view::npos ? std::string_view{} : rest.substr(comma + 1);
        }
        if (!has_cpu) {
            continue;
        }
        for (const char* mount :
             {"sys/fs/cgroup/cpu,cpuacct", "sys/fs/cgroup/cpu", "sys/fs/cgroup/cpuacct,cpu"}) {
            for (const auto& dir : candidate_dirs(root / mount, path)) {
                keep_tightest(best, read_v1_quota(dir), dir / "cpu.cfs_quota_us");
            }
        }
    }
    return best;
}

std::string cpu_allowance::describe() const
{
    std::ostringstream out;
    out << usable << " usable (affinity " << affinity << " of " << online << " online, ";
    if (quota) {
        out << "cgroup quota " << quota->cpus << (quota->cpus == 1 ? " CPU" : " CPUs") << " from "
            << quota->source << ")";
    } else {
        out << "no cgroup quota)";
    }
    return out.str();
}

std::vector<int> affinity_cpus()
{
    std::vector<int> cpus;
    cpu_set_t set;
    CPU_ZERO(&set);
    if (sched_getaffinity(0, sizeof(set), &set) == 0) {
        for (std::size_t cpu = 0; cpu < CPU_SETSIZE; ++cpu) {
            if (CPU_ISSET(cpu, &set)) {
                cpus.push_back(static_cast<int>(cpu));
            }
        }
    }
    return cpus;
}

cpu_allowance detect_cpu_allowance(const fs::path& root)
{
    cpu_allowance a;
    a.online = std::max(1U, std::thread::hardware_concurrency());
    cpu_set_t set;
    CPU_ZERO(&set);
    a.affinity =
        sched_getaffinity(0, sizeof(set), &set) == 0 ? static_cast<unsigned>(CPU_COUNT(&set)) : a.online;
    a.quota = read_cgroup_quota(root);
    a.usable = a.affinity;
    if (a.quota) {
        // A fractional quota still lets every thread run some of the time: round up (1.5 CPUs -> 2 workers).
        a.usable = std::min(a.usable, static_cast<unsigned>(std::ceil(a.quota->cpus)));
    }
    a.usable = std::max(1U, a.usable);
    return a;
}

} // namespace duet
