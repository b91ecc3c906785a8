#pragma once
// What the server measures about itself (requests, the loop, the pool, connections, CPU) and the documents
// that report it.

#include <duet/config.hpp>
#include <duet/cpu_allowance.hpp>
#include <duet/cpu_usage.hpp>
#include <duet/histogram.hpp>
#include <duet/server/job.hpp>
#include <duet/server/upstream.hpp>

#include <nlohmann/json.hpp>

#include <array>
#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace duet::server {

struct server_state;

/// Why a connection ended.
enum class close_reason : std::uint8_t {
    client,        ///< the client closed it, or asked to (Connection: close, HTTP/1.0)
    idle_timeout,  ///< no new request within server.idle_timeout_ms
    read_timeout,  ///< a request did not arrive whole within server.header_timeout_ms
    write_timeout, ///< the client did not read its response within server.write_timeout_ms
    bad_request,   ///< refused as malformed or too large (400, 413, 431), then closed
    error,         ///< a network error: reset, broken pipe
    drain,         ///< closed by the server's graceful drain
    over_capacity, ///< refused at accept: server.max_connections were open (answered 503)
    client_gone,   ///< the client went away while its request was being handled (counted as status 499)
};
inline constexpr std::size_t close_reason_count = 9;
std::string_view to_string(close_reason r);

/// Counts and latency of the requests one endpoint answered.
struct endpoint_stats
{
    endpoint_stats(std::string endpoint_name, std::chrono::milliseconds window)
        : name{std::move(endpoint_name)}, latency{window}
    {}

    std::string name; ///< the path, or "other" for requests that matched no endpoint
    std::uint64_t in_flight = 0;
    std::vector<std::pair<unsigned, std::uint64_t>>
        by_status;              ///< (status, count), in order of first appearance
    windowed_histogram latency; ///< request fully read -> response written, ns

    std::uint64_t count() const;
};

/// Everything the server measures about itself. It lives on the I/O thread with the rest of the request
/// state, so recording takes no lock and no atomic: an index, a few additions, two histogram buckets.
struct server_stats
{
    server_stats(const duet::config& cfg, std::vector<std::string> endpoint_names, unsigned allowed_cpus);

    // Requests: started when fully read, finished when the response is written. endpoint indexes the router's
    // table; other() is for requests that matched no endpoint or could not be parsed.
    std::size_t other() const noexcept { return endpoints.size() - 1; }
    /// Requests read and not yet answered, every endpoint together.
    std::uint64_t in_flight() const noexcept;
    void request_started(std::size_t endpoint) noexcept;
    void request_finished(std::size_t endpoint, unsigned status, std::chrono::nanoseconds latency,
                          std::chrono::steady_clock::time_point now);

    void record_loop_lag(std::chrono::nanoseconds lag, std::chrono::steady_clock::time_point now) noexcept;
    void record_job(job_status status, std::chrono::nanoseconds queue_wait,
                    std::chrono::steady_clock::time_point now) noexcept;
    void connection_closed(close_reason r) noexcept { ++closed[static_cast<std::size_t>(r)]; }
    void record_blocking(job_status status, std::chrono::nanoseconds queue_wait,
                         std::chrono::steady_clock::time_point now) noexcept;
    void record_call(call_error e, std::chrono::nanoseconds duration,
                     std::chrono::steady_clock::time_point now) noexcept;

    bool enabled;
    std::chrono::nanoseconds stall_threshold;
    std::chrono::steady_clock::time_point started_at = std::chrono::steady_clock::now();

    std::vector<endpoint_stats> endpoints; ///< the router's endpoints in order, then "other"

    windowed_histogram loop_lag; ///< ns
    std::uint64_t loop_stalls = 0;

    std::uint64_t jobs_completed = 0;
    std::uint64_t jobs_failed = 0;
    std::uint64_t jobs_rejected = 0;
    windowed_histogram queue_wait; ///< ns, for jobs that ran

    std::uint64_t blocking_completed = 0;
    std::uint64_t blocking_rejected = 0;
    windowed_histogram blocking_queue_wait; ///< ns: waits and reads for a free blocking thread

    std::array<std::uint64_t, call_error_count> upstream_calls{}; ///< by how they ended
    windowed_histogram upstream_latency;                          ///< ns, every call however it ended

    std::uint64_t connections_accepted = 0;
    std::uint64_t accept_errors = 0; ///< accepts that failed (out of descriptors, reset before accept)
    std::array<std::uint64_t, close_reason_count> closed{};

    std::uint64_t stream_subscribers = 0;
    std::uint64_t events_sent = 0; ///< the last /stats/stream event id

    cpu_sampler cpu;

    // Reused by stats_json so that a snapshot allocates no histograms (one every 10 ms for a busy stream).
    histogram scratch_recent;
    histogram scratch_all_since;
    histogram scratch_all_recent;
};

/// The GET /stats document (schema in docs/API.md). Merges histograms and reads the pool's counters: about a
/// millisecond, fine once per request to /stats or once per stream interval, never per request elsewhere.
nlohmann::ordered_json stats_json(server_state& st, std::chrono::steady_clock::time_point now);

/// One server-sent event carrying a /stats snapshot: "event: stats\nid: N\ndata: {…}\n\n", N one more than
/// the last event's. A subscriber's first event begins with "retry: <stats.stream_interval_ms>\n".
std::string stats_event(server_state& st, bool first = false);

/// The GET /metrics document: Prometheus text exposition format 0.0.4.
std::string metrics_text(server_state& st);

} // namespace duet::server
