// What the server measures about itself, recorded per request on the I/O thread, and the /stats,
// /stats/stream and /metrics documents built from it.
#include <duet/server/data_file.hpp>
#include <duet/server/server_state.hpp>
#include <duet/server/stats.hpp>
#include <duet/server/upstream.hpp>
#include <duet/version.hpp>

#include <fmt/chrono.h>
#include <fmt/format.h>

#include <algorithm>
#include <map>

namespace duet::server {

using std::chrono::steady_clock;

namespace {

constexpr std::array<std::string_view, close_reason_count> close_reason_names = {
    "client", "idle_timeout", "read_timeout",  "write_timeout", "bad_request",
    "error",  "drain",        "over_capacity", "client_gone"};

// Prometheus histogram buckets, in seconds: from 50 us (a /healthz) to a minute (the longest sleep).
constexpr std::array<double, 19> le_seconds = {0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005,
                                               0.01,    0.025,  0.05,    0.1,    0.25,  0.5,    1.0,
                                               2.5,     5.0,    10.0,    30.0,   60.0};

double micros(double ns)
{
    return ns / 1000.0;
}

nlohmann::ordered_json summary_us(const histogram& h)
{
    return {
        {"count", h.count()},
        {"mean", micros(h.mean())},
        {"p50", micros(static_cast<double>(h.percentile(50)))},
        {"p90", micros(static_cast<double>(h.percentile(90)))},
        {"p99", micros(static_cast<double>(h.percentile(99)))},
        {"p99.9", micros(static_cast<double>(h.percentile(99.9)))},
        {"max", micros(static_cast<double>(h.max()))},
    };
}

nlohmann::ordered_json windows_us(const windowed_histogram& w, steady_clock::time_point now,
                                  histogram& scratch)
{
    scratch.reset();
    w.merge_recent_into(scratch, now);
    return {{"since_start", summary_us(w.since_start())}, {"recent", summary_us(scratch)}};
}

std::string iso_time(std::chrono::system_clock::time_point t)
{
    auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count() % 1000;
    return fmt::format("{:%Y-%m-%dT%H:%M:%S}.{:03}Z", fmt::gmtime(std::chrono::system_clock::to_time_t(t)),
                       ms);
}

nlohmann::ordered_json status_json(const std::vector<std::pair<unsigned, std::uint64_t>>& by_status)
{
    nlohmann::ordered_json j = nlohmann::ordered_json::object();
    auto sorted = by_status;
    std::sort(sorted.begin(), sorted.end());
    for (const auto& [status, n] : sorted) {
        j[std::to_string(status)] = n;
    }
    return j;
}

// Prometheus label values escape backslash, double quote and newline.
std::string label(std::string_view v)
{
    std::string out;
    for (char c : v) {
        if (c == '\\' || c == '"') {
            out += '\\';
            out += c;
        } else if (c == '\n') {
            out += "\\n";
        } else {
            out += c;
        }
    }
    return out;
}

template <typename... Args>
void append(std::string& out, fmt::format_string<Args...> format, Args&&... args)
{
    fmt::format_to(std::back_inserter(out), format, std::forward<Args>(args)...);
}

void help_type(std::string& out, std::string_view name, std::string_view type, std::string_view help)
{
    append(out, "# HELP {} {}\n# TYPE {} {}\n", name, help, name, type);
}

// One Prometheus histogram series from a nanosecond histogram; labels is "" or `endpoint="/x",`.
void histogram_series(std::string& out, std::string_view name, std::string_view labels, const histogram& h)
{
    for (double le : le_seconds) {
        append(out, "{}_bucket{{{}le=\"{}\"}} {}\n", name, labels, le,
               h.count_at_or_below(static_cast<std::uint64_t>(le * 1e9)));
    }
    append(out, "{}_bucket{{{}le=\"+Inf\"}} {}\n", name, labels, h.count());
    // Formatted, not "{" + std::string{…}: GCC 12 at -O3 reports a false -Wrestrict for that operator+.
    const std::string braces =
        labels.empty() ? "" : fmt::format("{{{}}}", labels.substr(0, labels.size() - 1));
    append(out, "{}_sum{} {}\n", name, braces, h.sum() / 1e9);
    append(out, "{}_count{} {}\n", name, braces, h.count());
}

} // namespace

std::uint64_t server_stats::in_flight() const noexcept
{
    std::uint64_t n = 0;
    for (const auto& e : endpoints) {
        n += e.in_flight;
    }
    return n;
}

std::string_view to_string(close_reason r)
{
    return close_reason_names.at(static_cast<std::size_t>(r));
}

std::uint64_t endpoint_stats::count() const
{
    std::uint64_t n = 0;
    for (const auto& [status, c] : by_status) {
        n += c;
    }
    return n;
}

server_stats::server_stats(const duet::config& cfg, std::vector<std::string> endpoint_names,
                           unsigned allowed_cpus)
    : enabled{cfg.stats.enabled}, stall_threshold{std::chrono::milliseconds{
                                      cfg.stats.loop_stall_threshold_ms}},
      loop_lag{std::chrono::milliseconds{cfg.stats.window_ms}}, queue_wait{std::chrono::milliseconds{
                                                                    cfg.stats.window_ms}},
      blocking_queue_wait{std::chrono::milliseconds{cfg.stats.window_ms}},
      upstream_latency{std::chrono::milliseconds{cfg.stats.window_ms}}, cpu{allowed_cpus}
{
    endpoint_names.emplace_back("other");
    endpoints.reserve(endpoint_names.size());
    for (auto& name : endpoint_names) {
        endpoints.emplace_back(std::move(name), std::chrono::milliseconds{cfg.stats.window_ms});
    }
}

void server_stats::request_started(std::size_t endpoint) noexcept
{
    if (enabled) {
        ++endpoints[endpoint].in_flight;
    }
}

void server_stats::request_finished(std::size_t endpoint, unsigned status, std::chrono::nanoseconds latency,
                                    steady_clock::time_point now)
{
    if (!enabled) {
        return;
    }
    auto& e = endpoints[endpoint];
    --e.in_flight;
    auto it = std::find_if(e.by_status.begin(), e.by_status.end(),
                           [&](const auto& p) { return p.first == status; });
    if (it != e.by_status.end()) {
        ++it->second;
    } else {
        e.by_status.emplace_back(status, 1); // allocates once per new status code, never again
    }
    e.latency.record(latency, now);
}

void server_stats::record_loop_lag(std::chrono::nanoseconds lag, steady_clock::time_point now) noexcept
{
    loop_lag.record(lag, now);
    if (lag > stall_threshold) {
        ++loop_stalls;
    }
}

void server_stats::record_job(job_status status, std::chrono::nanoseconds wait,
                              steady_clock::time_point now) noexcept
{
    switch (status) {
    case job_status::done:
        ++jobs_completed;
        queue_wait.record(wait, now);
        break;
    case job_status::failed:
        ++jobs_failed;
        queue_wait.record(wait, now);
        break;
    case job_status::rejected:
        ++jobs_rejected;
        break;
    }
}

void server_stats::record_blocking(job_status status, std::chrono::nanoseconds wait,
                                   steady_clock::time_point now) noexcept
{
    if (status == job_status::rejected) {
        ++blocking_rejected;
        return;
    }
    ++blocking_completed;
    blocking_queue_wait.record(wait, now);
}

void server_stats::record_call(call_error e, std::chrono::nanoseconds duration,
                               steady_clock::time_point now) noexcept
{
    ++upstream_calls[static_cast<std::size_t>(e)];
    if (e != call_error::saturated && e != call_error::cancelled) { // refused before it began, or cut short
        upstream_latency.record(duration, now);
    }
}

namespace {

// The blocking threads of mode=threads: how many, how busy, what waits for them.
nlohmann::ordered_json blocking_json(server_state& st, steady_clock::time_point now)
{
    if (st.blocking == nullptr) {
        return nullptr;
    }
    auto& s = st.stats;
    return {{"threads", st.blocking->size()},
            {"busy", st.blocking->busy()},
            {"queued", st.blocking->queued()},
            {"queue_limit", st.blocking->queue_limit()},
            {"completed", s.blocking_completed},
            {"rejected", s.blocking_rejected},
            {"queue_wait_us", windows_us(s.blocking_queue_wait, now, s.scratch_recent)}};
}

// /io/call's upstream: its pool of connections and how its calls went.
nlohmann::ordered_json upstream_json(server_state& st, steady_clock::time_point now)
{
    if (st.upstream == nullptr) {
        return nullptr;
    }
    auto& s = st.stats;
    const auto& u = *st.upstream;
    nlohmann::ordered_json calls = nlohmann::ordered_json::object();
    for (std::size_t i = 0; i < call_error_count; ++i) {
        calls[std::string{to_string(static_cast<call_error>(i))}] = s.upstream_calls[i];
    }
    return {{"url", u.target().url},
            {"connections",
             {{"open", u.open()},
              {"idle", u.idle()},
              {"max", u.max_connections()},
              {"opened", u.opened_total()},
              {"reused", u.reused_total()}}},
            {"waiting", u.waiting()},
            {"calls", std::move(calls)},
            {"latency_us", windows_us(s.upstream_latency, now, s.scratch_recent)}};
}

nlohmann::ordered_json file_json(const server_state& st)
{
    if (st.file == nullptr) {
        return nullptr;
    }
    return {{"model", st.file_ring != nullptr ? "io_uring" : "blocking-thread"},
            {"file", st.file->description()},
            {"bytes", st.file->size()}};
}

} // namespace

nlohmann::ordered_json stats_json(server_state& st, steady_clock::time_point now)
{
    auto& s = st.stats;
    const auto& cfg = st.cfg;

    // Requests: every endpoint, and the total merged from them.
    nlohmann::ordered_json endpoints = nlohmann::ordered_json::object();
    std::map<unsigned, std::uint64_t> total_status;
    std::uint64_t total_in_flight = 0;
    auto& all_since = s.scratch_all_since;
    auto& all_recent = s.scratch_all_recent;
    auto& recent = s.scratch_recent;
    all_since.reset();
    all_recent.reset();
    for (const auto& e : s.endpoints) {
        recent.reset();
        e.latency.merge_recent_into(recent, now);
        all_since.merge(e.latency.since_start());
        all_recent.merge(recent);
        total_in_flight += e.in_flight;
        for (const auto& [status, n] : e.by_status) {
            total_status[status] += n;
        }
        endpoints[e.name] = {
            {"count", e.count()},
            {"in_flight", e.in_flight},
            {"status", status_json(e.by_status)},
            {"latency_us",
             {{"since_start", summary_us(e.latency.since_start())}, {"recent", summary_us(recent)}}},
        };
    }
    nlohmann::ordered_json total_status_json = nlohmann::ordered_json::object();
    std::uint64_t total_count = 0;
    for (const auto& [status, n] : total_status) {
        total_status_json[std::to_string(status)] = n;
        total_count += n;
    }

    nlohmann::ordered_json workers = nlohmann::ordered_json::array();
    for (const auto& w : st.pool.workers()) {
        workers.push_back({{"name", w.ident.name},
                           {"tid", w.ident.tid},
                           {"pinned_cpu", w.pinned_cpu >= 0 ? nlohmann::ordered_json(w.pinned_cpu) : nullptr},
                           {"nice", w.nice},
                           {"busy", w.busy},
                           {"jobs", w.jobs},
                           {"busy_s", std::chrono::duration<double>(w.busy_time).count()},
                           {"cpu_s", std::chrono::duration<double>(w.cpu_time).count()}});
    }

    nlohmann::ordered_json closed = nlohmann::ordered_json::object();
    for (std::size_t i = 0; i < close_reason_count; ++i) {
        closed[std::string{close_reason_names[i]}] = s.closed[i];
    }

    const auto& c = s.cpu.last();
    nlohmann::ordered_json cores = nlohmann::ordered_json::array();
    for (const auto& core : c.cores) {
        cores.push_back({{"cpu", core.cpu},
                         {"user", core.user},
                         {"system", core.system},
                         {"idle", core.idle},
                         {"iowait", core.iowait},
                         {"steal", core.steal}});
    }
    nlohmann::ordered_json threads = nlohmann::ordered_json::array();
    for (const auto& t : c.threads) {
        threads.push_back({{"name", t.name},
                           {"tid", t.tid},
                           {"percent", t.percent},
                           {"user_s", t.user_seconds},
                           {"system_s", t.system_seconds}});
    }

    nlohmann::ordered_json quota = nullptr;
    if (st.cpus.quota) {
        quota = {{"cpus", st.cpus.quota->cpus}, {"source", st.cpus.quota->source}};
    }

    return {
        {"version", duet::version},
        {"time", iso_time(std::chrono::system_clock::now())},
        {"uptime_s", std::chrono::duration<double>(now - s.started_at).count()},
        {"window_s", std::chrono::duration<double>(std::chrono::milliseconds{cfg.stats.window_ms}).count()},
        {"recording", s.enabled},
        {"cpus",
         {{"usable", st.cpus.usable},
          {"online", st.cpus.online},
          {"affinity", st.cpus.affinity},
          {"cgroup_quota", quota}}},
        {"requests",
         {{"total",
           {{"count", total_count},
            {"in_flight", total_in_flight},
            {"status", std::move(total_status_json)},
            {"latency_us", {{"since_start", summary_us(all_since)}, {"recent", summary_us(all_recent)}}}}},
          {"endpoints", std::move(endpoints)}}},
        {"event_loop",
         {{"probe_interval_ms", cfg.stats.loop_probe_interval_ms},
          {"stall_threshold_ms", cfg.stats.loop_stall_threshold_ms},
          {"stalls", s.loop_stalls},
          {"lag_us", windows_us(s.loop_lag, now, s.scratch_recent)}}},
        {"pool",
         {{"workers", st.pool.size()},
          {"busy", st.pool.busy()},
          {"queued", st.pool.queued()},
          {"queue_limit", st.pool.queue_limit()},
          {"completed", s.jobs_completed},
          {"failed", s.jobs_failed},
          {"rejected", s.jobs_rejected},
          {"queue_wait_us", windows_us(s.queue_wait, now, s.scratch_recent)},
          {"per_worker", std::move(workers)}}},
        {"blocking", blocking_json(st, now)},
        {"upstream", upstream_json(st, now)},
        {"file", file_json(st)},
        {"connections",
         {{"open", st.open_connections},
          {"accepted", s.connections_accepted},
          {"accept_errors", s.accept_errors},
          {"closed", std::move(closed)}}},
        {"cpu",
         {{"sampled_at", iso_time(c.at)},
          {"interval_s", c.interval_s},
          {"process",
           {{"percent_of_one_core", c.process_percent_of_one_core},
            {"percent_of_allowed", c.process_percent_of_allowed},
            {"user_s", c.process_user_seconds},
            {"system_s", c.process_system_seconds}}},
          {"cores", std::move(cores)},
          {"threads", std::move(threads)}}},
        {"memory", {{"rss_bytes", c.rss_bytes}, {"vsize_bytes", c.vsize_bytes}}},
        {"fds", {{"open", c.open_fds}, {"max", c.max_fds}}},
        {"stream", {{"subscribers", s.stream_subscribers}}},
    };
}

std::string stats_event(server_state& st, bool first)
{
    // Each event's id is its sequence number; data is one line of JSON, as SSE requires for one data field.
    // A subscriber's first event also sets how long a client that loses the stream waits to reconnect: one
    // interval, the time its next event would have taken.
    auto data = json_text(stats_json(st, steady_clock::now()));
    if (first) {
        return fmt::format("retry: {}\nevent: stats\nid: {}\ndata: {}\n\n", st.cfg.stats.stream_interval_ms,
                           ++st.stats.events_sent, data);
    }
    return fmt::format("event: stats\nid: {}\ndata: {}\n\n", ++st.stats.events_sent, data);
}

std::string metrics_text(server_state& st)
{
    auto& s = st.stats;
    std::string out;
    out.reserve(16384);

    help_type(out, "duet_build_info", "gauge", "Always 1; the version is a label.");
    append(out, "duet_build_info{{version=\"{}\"}} 1\n", duet::version);

    help_type(out, "duet_http_requests_total", "counter",
              "HTTP requests answered, by endpoint and status code.");
    for (const auto& e : s.endpoints) {
        auto sorted = e.by_status;
        std::sort(sorted.begin(), sorted.end());
        for (const auto& [status, n] : sorted) {
            append(out, "duet_http_requests_total{{endpoint=\"{}\",code=\"{}\"}} {}\n", label(e.name), status,
                   n);
        }
    }
    help_type(out, "duet_http_requests_in_flight", "gauge", "Requests fully read and not yet answered.");
    for (const auto& e : s.endpoints) {
        append(out, "duet_http_requests_in_flight{{endpoint=\"{}\"}} {}\n", label(e.name), e.in_flight);
    }
    help_type(out, "duet_http_request_duration_seconds", "histogram",
              "Time from a request fully read to its response written.");
    for (const auto& e : s.endpoints) {
        histogram_series(out, "duet_http_request_duration_seconds",
                         fmt::format("endpoint=\"{}\",", label(e.name)), e.latency.since_start());
    }

    help_type(
        out, "duet_event_loop_lag_seconds", "histogram",
        "How late the I/O thread's periodic probe timer fired: high when something blocks the event loop.");
    histogram_series(out, "duet_event_loop_lag_seconds", "", s.loop_lag.since_start());
    help_type(out, "duet_event_loop_stalls_total", "counter",
              "Probes later than stats.loop_stall_threshold_ms.");
    append(out, "duet_event_loop_stalls_total {}\n", s.loop_stalls);

    help_type(out, "duet_pool_workers", "gauge", "Worker threads in the CPU pool.");
    append(out, "duet_pool_workers {}\n", st.pool.size());
    help_type(out, "duet_pool_busy_workers", "gauge", "Workers running a job now.");
    append(out, "duet_pool_busy_workers {}\n", st.pool.busy());
    help_type(out, "duet_pool_queue_depth", "gauge", "CPU jobs waiting for a free worker.");
    append(out, "duet_pool_queue_depth {}\n", st.pool.queued());
    help_type(out, "duet_pool_queue_limit", "gauge", "The most jobs that may wait (pool.queue_limit).");
    append(out, "duet_pool_queue_limit {}\n", st.pool.queue_limit());
    help_type(out, "duet_pool_jobs_total", "counter",
              "CPU jobs by outcome: completed, failed (threw) or rejected.");
    append(out, "duet_pool_jobs_total{{outcome=\"completed\"}} {}\n", s.jobs_completed);
    append(out, "duet_pool_jobs_total{{outcome=\"failed\"}} {}\n", s.jobs_failed);
    append(out, "duet_pool_jobs_total{{outcome=\"rejected\"}} {}\n", s.jobs_rejected);
    help_type(out, "duet_pool_queue_wait_seconds", "histogram", "Time CPU jobs waited for a free worker.");
    histogram_series(out, "duet_pool_queue_wait_seconds", "", s.queue_wait.since_start());
    help_type(out, "duet_worker_busy_seconds_total", "counter", "Wall time each worker spent running jobs.");
    auto workers = st.pool.workers();
    for (const auto& w : workers) {
        append(out, "duet_worker_busy_seconds_total{{worker=\"{}\"}} {}\n", label(w.ident.name),
               std::chrono::duration<double>(w.busy_time).count());
    }

    if (st.blocking != nullptr) {
        help_type(out, "duet_blocking_threads", "gauge", "Threads of the blocking pool (mode=threads).");
        append(out, "duet_blocking_threads {}\n", st.blocking->size());
        help_type(out, "duet_blocking_busy_threads", "gauge", "Blocking threads in a wait or a read now.");
        append(out, "duet_blocking_busy_threads {}\n", st.blocking->busy());
        help_type(out, "duet_blocking_queue_depth", "gauge",
                  "Waits and reads queued for a free blocking thread.");
        append(out, "duet_blocking_queue_depth {}\n", st.blocking->queued());
        help_type(out, "duet_blocking_jobs_total", "counter", "Jobs of the blocking threads by outcome.");
        append(out, "duet_blocking_jobs_total{{outcome=\"completed\"}} {}\n", s.blocking_completed);
        append(out, "duet_blocking_jobs_total{{outcome=\"rejected\"}} {}\n", s.blocking_rejected);
        help_type(out, "duet_blocking_queue_wait_seconds", "histogram",
                  "Time waits and reads queued for a free blocking thread.");
        histogram_series(out, "duet_blocking_queue_wait_seconds", "", s.blocking_queue_wait.since_start());
    }
    if (st.upstream != nullptr) {
        const auto& u = *st.upstream;
        help_type(out, "duet_upstream_connections", "gauge",
                  "Connections to /io/call's upstream: open (busy or idle) and idle.");
        append(out, "duet_upstream_connections{{state=\"open\"}} {}\n", u.open());
        append(out, "duet_upstream_connections{{state=\"idle\"}} {}\n", u.idle());
        help_type(out, "duet_upstream_connections_max", "gauge", "upstream.max_connections.");
        append(out, "duet_upstream_connections_max {}\n", u.max_connections());
        help_type(out, "duet_upstream_connections_opened_total", "counter",
                  "Connections opened to the upstream.");
        append(out, "duet_upstream_connections_opened_total {}\n", u.opened_total());
        help_type(out, "duet_upstream_connections_reused_total", "counter",
                  "Calls made on a connection kept alive from an earlier call.");
        append(out, "duet_upstream_connections_reused_total {}\n", u.reused_total());
        help_type(out, "duet_upstream_waiting_calls", "gauge",
                  "Calls waiting for a free upstream connection.");
        append(out, "duet_upstream_waiting_calls {}\n", u.waiting());
        help_type(out, "duet_upstream_calls_total", "counter", "Calls to the upstream, by how they ended.");
        for (std::size_t i = 0; i < call_error_count; ++i) {
            append(out, "duet_upstream_calls_total{{outcome=\"{}\"}} {}\n",
                   to_string(static_cast<call_error>(i)), s.upstream_calls[i]);
        }
        help_type(out, "duet_upstream_call_duration_seconds", "histogram",
                  "Duration of each upstream call, from asking for a connection to the whole answer.");
        histogram_series(out, "duet_upstream_call_duration_seconds", "", s.upstream_latency.since_start());
    }

    help_type(out, "duet_connections_open", "gauge", "Connections open now.");
    append(out, "duet_connections_open {}\n", st.open_connections);
    help_type(out, "duet_connections_accepted_total", "counter", "Connections accepted.");
    append(out, "duet_connections_accepted_total {}\n", s.connections_accepted);
    help_type(out, "duet_accept_errors_total", "counter",
              "Accepts that failed: out of file descriptors, or reset before accepted.");
    append(out, "duet_accept_errors_total {}\n", s.accept_errors);
    help_type(out, "duet_connections_closed_total", "counter", "Connections closed, by reason.");
    for (std::size_t i = 0; i < close_reason_count; ++i) {
        append(out, "duet_connections_closed_total{{reason=\"{}\"}} {}\n", close_reason_names[i],
               s.closed[i]);
    }
    help_type(out, "duet_stream_subscribers", "gauge", "Open /stats/stream connections.");
    append(out, "duet_stream_subscribers {}\n", s.stream_subscribers);

    // CPU figures come from the last /proc sample (every stats.sample_interval_ms).
    const auto& c = s.cpu.last();
    help_type(out, "duet_cpus_usable", "gauge", "CPUs this process may use (affinity and cgroup quota).");
    append(out, "duet_cpus_usable {}\n", st.cpus.usable);
    help_type(out, "duet_thread_cpu_seconds_total", "counter",
              "CPU time (user + system) per thread, by name.");
    std::map<std::string, double> per_name;
    for (const auto& t : c.threads) {
        per_name[t.name] += t.user_seconds + t.system_seconds;
    }
    for (const auto& [name, seconds] : per_name) {
        append(out, "duet_thread_cpu_seconds_total{{thread=\"{}\"}} {}\n", label(name), seconds);
    }
    help_type(out, "duet_cpu_core_usage_ratio", "gauge",
              "Share of each core's time over the last sample interval, by mode (the whole machine, not just "
              "duet).");
    for (const auto& core : c.cores) {
        for (auto [mode, v] :
             {std::pair{"user", core.user}, std::pair{"system", core.system}, std::pair{"idle", core.idle},
              std::pair{"iowait", core.iowait}, std::pair{"steal", core.steal}}) {
            append(out, "duet_cpu_core_usage_ratio{{cpu=\"{}\",mode=\"{}\"}} {}\n", core.cpu, mode,
                   v / 100.0);
        }
    }
    help_type(out, "process_cpu_seconds_total", "counter",
              "Total user and system CPU time spent in seconds.");
    append(out, "process_cpu_seconds_total {}\n", c.process_user_seconds + c.process_system_seconds);
    help_type(out, "process_resident_memory_bytes", "gauge", "Resident memory size in bytes.");
    append(out, "process_resident_memory_bytes {}\n", c.rss_bytes);
    help_type(out, "process_virtual_memory_bytes", "gauge", "Virtual memory size in bytes.");
    append(out, "process_virtual_memory_bytes {}\n", c.vsize_bytes);
    help_type(out, "process_open_fds", "gauge", "Number of open file descriptors.");
    append(out, "process_open_fds {}\n", c.open_fds);
    help_type(out, "process_max_fds", "gauge", "Maximum number of open file descriptors.");
    append(out, "process_max_fds {}\n", c.max_fds);
    help_type(out, "process_start_time_seconds", "gauge",
              "Start time of the process since unix epoch in seconds.");
    append(out, "process_start_time_seconds {}\n", c.start_time_s);
    return out;
}

} // namespace duet::server
