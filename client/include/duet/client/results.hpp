#pragma once
// What a duet-load run measured: counts, errors by class, latency histograms, the server's view, and the text
// and JSON reports built from them.

#include <duet/client/options.hpp>
#include <duet/histogram.hpp>

#include <nlohmann/json.hpp>

#include <array>
#include <chrono>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace duet::client {

/// Failed requests by class, as wrk counts them.
struct error_counts
{
    std::uint64_t connect = 0; ///< could not connect (or the connect timed out)
    std::uint64_t read = 0;    ///< the response could not be read: reset, closed early, malformed, too large
    std::uint64_t write = 0;   ///< the request could not be written
    std::uint64_t timeout = 0; ///< no complete response within --timeout

    std::uint64_t total() const { return connect + read + write + timeout; }
    error_counts& operator+=(const error_counts& o);
};

/// What duet's per-request reports say, aggregated: the server's side of the same requests.
struct server_view
{
    std::uint64_t reports = 0;
    histogram total;   ///< ns: request read -> response ready, on the server
    histogram queue;   ///< ns: waiting for a worker
    histogram service; ///< ns: running or waiting on timers
    std::map<std::string, std::uint64_t>
        threads;                        ///< who did the work: the worker, or duet-io for event-loop work
    std::map<int, std::uint64_t> cores; ///< the core the work ended on
    std::map<std::string, std::uint64_t> models; ///< event-loop, worker-pool, inline, split
    double cpu_us = 0; ///< the reports' cpu_time_us, summed: the server's CPU for these requests

    /// Adds one response body if it is a duet report ({"result": …, "report": {…}}); false otherwise.
    bool add_body(std::string_view body);
    void merge(const server_view& o);
};

/// Everything counted about a set of requests; mergeable, so each client thread keeps its own (no locks, no
/// atomics per request) and the run adds them up.
struct tally
{
    std::uint64_t requests = 0;        ///< completed and recorded (after the warm-up)
    std::uint64_t bytes_read = 0;      ///< of recorded responses, headers included
    std::uint64_t late = 0;            ///< open loop: sent more than 1 ms after their intended time
    std::uint64_t warmup_requests = 0; ///< completed during the warm-up, not recorded
    std::uint64_t reconnects = 0;
    std::array<std::uint64_t, 600> status{}; ///< by status code (100-599)
    error_counts errors;
    histogram latency; ///< ns; closed loop: send -> response; open loop: intended send time -> response
    histogram service; ///< ns; always send -> response (what the server and network took)
    server_view server;

    std::uint64_t non_2xx_3xx() const;
    void merge(const tally& o);
};

/// One second of the run.
struct second_sample
{
    double t = 0; ///< seconds since the measurement began, at the end of this second
    std::uint64_t requests = 0;
    std::uint64_t errors = 0;
    double p50_us = 0;
    double p99_us = 0;
};

/// A whole run: the tally, its time series, and how the client itself fared.
struct run_result
{
    tally counts;
    std::chrono::nanoseconds elapsed{}; ///< the measured part of the run (the warm-up excluded)
    std::vector<second_sample> series;
    double client_cpu_percent = 0; ///< the client's own CPU over the run, percent of one core
    std::vector<std::pair<std::string, double>> thread_busy_percent; ///< per client thread
    std::vector<std::string> warnings;
    bool interrupted = false; ///< stopped early by Ctrl-C
    std::string started_at;   ///< ISO 8601 UTC
    unsigned client_cpus = 0;

    double requests_per_second() const;
};

/// The JSON document of a run (schema in docs/LOAD.md); `options` is echoed as its configuration.
nlohmann::ordered_json to_json(const run_result& r, const run_options& options);

/// Merges the JSON documents of runs made at the same time on several machines: counts add, histograms merge
/// exactly, the time series add up second by second (per-second percentiles: the largest of the inputs').
/// Throws std::invalid_argument for a document that is not duet-load's.
nlohmann::ordered_json merge_json(const std::vector<nlohmann::json>& runs);

/// The human summary, in wrk's layout; `latency_table` adds the percentile table (--latency).
std::string text_summary(const nlohmann::ordered_json& run, bool latency_table);

/// Percentile summary of a histogram in microseconds: mean, stdev-free fields, min, max, p50 … p99.99.
nlohmann::ordered_json percentiles_us(const histogram& h);

} // namespace duet::client
