// The /proc parsers (stat, a process's and its threads' stat) and the sampler that turns two readings into
// rates.
#include <duet/cpu_usage.hpp>

#include <linux/magic.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <fstream>
#include <sstream>

namespace duet {
namespace {

namespace fs = std::filesystem;

std::string read_file(const fs::path& p)
{
    std::ifstream in{p};
    std::ostringstream out;
    out << in.rdbuf();
    return out.str();
}

std::uint64_t to_u64(std::string_view s)
{
    std::uint64_t v = 0;
    std::from_chars(s.data(), s.data() + s.size(), v);
    return v;
}

std::vector<std::string_view> split_spaces(std::string_view s)
{
    std::vector<std::string_view> out;
    std::size_t i = 0;
    while (i < s.size()) {
        while (i < s.size() && (s[i] == ' ' || s[i] == '\n')) {
            ++i;
        }
        auto start = i;
        while (i < s.size() && s[i] != ' ' && s[i] != '\n') {
            ++i;
        }
        if (i > start) {
            out.push_back(s.substr(start, i - start));
        }
    }
    return out;
}

double percent(std::uint64_t part, std::uint64_t whole)
{
    return whole == 0 ? 0.0 : 100.0 * static_cast<double>(part) / static_cast<double>(whole);
}

// Counters only grow, but a core that went offline and came back may restart: never report a negative delta.
std::uint64_t delta(std::uint64_t now, std::uint64_t before)
{
    return now >= before ? now - before : 0;
}

// Since Linux 6.2 the size of /proc/<pid>/fd is the number of open descriptors: a statfs and a stat instead of
// a listing, for which the kernel builds an entry per descriptor (milliseconds with 10,000 sockets, on the I/O
// thread; docs/PERFORMANCE.md). Older kernels report 0: then the entries are counted.
std::uint64_t count_open_fds(const fs::path& dir)
{
    struct statfs fs_info
    {};
    struct stat dir_info
    {};
    if (::statfs(dir.c_str(), &fs_info) == 0 && fs_info.f_type == PROC_SUPER_MAGIC &&
        ::stat(dir.c_str(), &dir_info) == 0 && dir_info.st_size > 0) {
        return static_cast<std::uint64_t>(dir_info.st_size);
    }
    std::error_code ec; // a directory that cannot be read counts nothing
    std::uint64_t n = 0;
    for (const auto& entry : fs::directory_iterator(dir, ec)) {
        (void)entry;
        ++n;
    }
    return n;
}

} // namespace

std::vector<core_times> parse_proc_stat(std::string_view text)
{
    std::vector<core_times> cores;
    std::size_t pos = 0;
    while (pos < text.size()) {
        auto eol = text.find('\n', pos);
        auto line = text.substr(pos, eol == std::string_view::npos ? std::string_view::npos : eol - pos);
        pos = eol == std::string_view::npos ? text.size() : eol + 1;
        if (line.size() < 4 || line.substr(0, 3) != "cpu" || line[3] < '0' || line[3] > '9') {
            continue;
        }
        auto f = split_spaces(line);
        if (f.size() < 5) {
            continue;
        }
        core_times c;
        c.cpu = static_cast<int>(to_u64(f[0].substr(3)));
        std::uint64_t* fields[] = {&c.user,   &c.nice, &c.system,  &c.idle,
                                   &c.iowait, &c.irq,  &c.softirq, &c.steal};
        for (std::size_t i = 0; i < std::size(fields) && i + 1 < f.size(); ++i) {
            *fields[i] = to_u64(f[i + 1]);
        }
        cores.push_back(c);
    }
    return cores;
}

std::optional<task_times> parse_task_stat(std::string_view text)
{
    auto open = text.find('(');
    auto close = text.rfind(')');
    if (open == std::string_view::npos || close == std::string_view::npos || close < open) {
        return std::nullopt;
    }
    auto rest = split_spaces(text.substr(close + 1));
    // rest[0] is field 3 (state); field N of proc(5) is rest[N - 3].
    if (rest.size() < 22) {
        return std::nullopt;
    }
    task_times t;
    t.id = static_cast<std::int64_t>(to_u64(split_spaces(text.substr(0, open)).at(0)));
    t.name = std::string{text.substr(open + 1, close - open - 1)};
    t.utime = to_u64(rest[11]);
    t.stime = to_u64(rest[12]);
    t.starttime = to_u64(rest[19]);
    t.vsize = to_u64(rest[20]);
    t.rss_pages = to_u64(rest[21]);
    return t;
}

cpu_sampler::cpu_sampler(unsigned allowed_cpus, fs::path root)
    : allowed_cpus_{std::max(1U, allowed_cpus)}, root_{std::move(root)},
      ticks_per_second_{static_cast<double>(sysconf(_SC_CLK_TCK))}
{}

const cpu_snapshot& cpu_sampler::sample()
{
    auto now = std::chrono::steady_clock::now();
    cpu_snapshot s;
    s.at = std::chrono::system_clock::now();
    bool first = previous_at_ == std::chrono::steady_clock::time_point{};
    s.interval_s = first ? 0.0 : std::chrono::duration<double>(now - previous_at_).count();
    double interval_ticks = s.interval_s * ticks_per_second_;

    auto stat_text = read_file(root_ / "proc/stat");
    auto cores = parse_proc_stat(stat_text);
    for (const auto& c : cores) {
        auto prev = std::find_if(previous_cores_.begin(), previous_cores_.end(),
                                 [&](const core_times& p) { return p.cpu == c.cpu; });
        core_usage u{.cpu = c.cpu};
        if (prev != previous_cores_.end()) {
            auto total = delta(c.total(), prev->total());
            u.user = percent(delta(c.user + c.nice, prev->user + prev->nice), total);
            u.system =
                percent(delta(c.system + c.irq + c.softirq, prev->system + prev->irq + prev->softirq), total);
            u.idle = percent(delta(c.idle, prev->idle), total);
            u.iowait = percent(delta(c.iowait, prev->iowait), total);
            u.steal = percent(delta(c.steal, prev->steal), total);
        }
        s.cores.push_back(u);
    }

    if (auto self = parse_task_stat(read_file(root_ / "proc/self/stat"))) {
        auto ticks = self->utime + self->stime;
        s.process_user_seconds = static_cast<double>(self->utime) / ticks_per_second_;
        s.process_system_seconds = static_cast<double>(self->stime) / ticks_per_second_;
        if (!first && interval_ticks > 0) {
            s.process_percent_of_one_core =
                100.0 * static_cast<double>(delta(ticks, previous_process_ticks_)) / interval_ticks;
            s.process_percent_of_allowed = s.process_percent_of_one_core / allowed_cpus_;
        }
        previous_process_ticks_ = ticks;
        s.rss_bytes = self->rss_pages * static_cast<std::uint64_t>(sysconf(_SC_PAGESIZE));
        s.vsize_bytes = self->vsize;
        // btime: boot time in seconds since the epoch; starttime: ticks after boot.
        auto btime = stat_text.find("\nbtime ");
        if (btime != std::string::npos) {
            auto boot = static_cast<double>(
                to_u64(split_spaces(std::string_view{stat_text}.substr(btime + 7)).at(0)));
            s.start_time_s = boot + static_cast<double>(self->starttime) / ticks_per_second_;
        }
    }

    std::vector<task_times> threads;
    std::error_code ec;
    for (const auto& task : fs::directory_iterator(root_ / "proc/self/task", ec)) {
        // A thread may end between listing and reading: skip what cannot be read.
        if (auto t = parse_task_stat(read_file(task.path() / "stat"))) {
            threads.push_back(std::move(*t));
        }
    }
    std::sort(threads.begin(), threads.end(), [](const auto& a, const auto& b) { return a.id < b.id; });
    for (const auto& t : threads) {
        thread_usage u{.tid = t.id,
                       .name = t.name,
                       .user_seconds = static_cast<double>(t.utime) / ticks_per_second_,
                       .system_seconds = static_cast<double>(t.stime) / ticks_per_second_};
        auto prev = std::find_if(previous_threads_.begin(), previous_threads_.end(),
                                 [&](const task_times& p) { return p.id == t.id; });
        if (!first && interval_ticks > 0) {
            // A thread missing from the previous reading started since then: all its CPU time is in the
            // interval.
            auto before = prev == previous_threads_.end() ? 0 : prev->utime + prev->stime;
            u.percent = 100.0 * static_cast<double>(delta(t.utime + t.stime, before)) / interval_ticks;
        }
        s.threads.push_back(std::move(u));
    }

    s.open_fds = count_open_fds(root_ / "proc/self/fd");
    rlimit lim{};
    if (getrlimit(RLIMIT_NOFILE, &lim) == 0) {
        s.max_fds = lim.rlim_cur;
    }

    previous_at_ = now;
    previous_cores_ = std::move(cores);
    previous_threads_ = std::move(threads);
    last_ = std::move(s);
    return last_;
}

} // namespace duet
