#pragma once
// The configuration: one table of keys from which defaults, the JSON file, environment variables, --help and
// validation all derive.

#include <nlohmann/json_fwd.hpp>

#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace duet {

/// Listener, HTTP and connection bounds.
struct server_config
{
    std::string bind = "127.0.0.1";
    std::int64_t port = 8080;
    std::int64_t backlog = 1024;
    std::int64_t max_header_bytes = 8192;
    std::int64_t max_body_bytes = 65536;
    std::int64_t max_target_bytes = 4096;
    std::int64_t max_header_count = 64;
    std::int64_t max_connections = 10000;
    std::int64_t header_timeout_ms = 10000;
    std::int64_t idle_timeout_ms = 60000;
    std::int64_t write_timeout_ms = 10000;
    std::int64_t drain_timeout_ms = 10000;
    std::int64_t linger_timeout_ms = 1000;
    std::int64_t timer_slack_us = 50;
};

/// The worker pool that runs CPU-bound work.
struct pool_config
{
    std::int64_t workers = 0; // 0: the CPUs this process may use
    std::int64_t queue_limit = 1024;
    bool pin_workers = false;
    std::int64_t nice = 0;
    std::int64_t spin_us = 50;
};

/// Per-request work limits: a request at the limit costs at most a few seconds.
struct limits_config
{
    std::int64_t max_sleep_ms = 60000;
    std::int64_t max_fanout = 1000;
    std::int64_t max_primes_n = 10000000;
    std::int64_t max_fib_n = 45;
    std::int64_t max_mandelbrot_size = 1024;
    std::int64_t max_mandelbrot_iter = 2000;
    std::int64_t max_parts = 64;
    std::int64_t max_trace_ms = 10000;
    std::int64_t max_calls = 100;
    std::int64_t max_file_kb = 1024;
};

/// Real I/O besides the timers: the blocking threads (mode=threads, the classic model for contrast) and the
/// file /io/file reads.
struct io_config
{
    std::int64_t blocking_threads = 64;
    std::int64_t blocking_queue_limit = 4096;
    std::string file_path{}; // empty: a file the server creates at start, of file_size_mb
    std::int64_t file_size_mb = 16;
    std::string file_model = "auto";
};

/// The service /io/call calls: where it is, and the connection pool to it.
struct upstream_config
{
    std::string url = "self"; // self: this server's own /io/sleep
    std::int64_t max_connections = 100;
    std::int64_t queue_limit = 10000;
    std::int64_t timeout_ms = 5000;
    std::int64_t max_response_bytes = 65536;
};

/// What the server measures about itself: /stats, /stats/stream and /metrics.
struct stats_config
{
    bool enabled = true;
    std::int64_t window_ms = 10000;
    std::int64_t loop_probe_interval_ms = 10;
    std::int64_t loop_stall_threshold_ms = 50;
    std::int64_t sample_interval_ms = 1000;
    std::int64_t stream_interval_ms = 1000;
    std::int64_t max_stream_subscribers = 64;
    std::int64_t stream_send_buffer_bytes = 65536;
};

/// The timeline /trace draws: what the I/O thread records about each request, in a fixed ring.
struct trace_config
{
    bool enabled = true;
    std::int64_t capacity = 16384;
    std::int64_t max_concurrent = 2;
};

/// Fault injection, off by default: failures on purpose, to test clients and the server's error paths.
struct faults_config
{
    std::int64_t fail_every_nth_job = 0; // 0: off
};

struct log_config
{
    std::string level = "info";
    bool access = false;
};

/// The whole configuration. Defaults here are the documented defaults of config/duet.json (a test keeps the
/// two equal). Plain data: copy it freely; nothing in it is shared between threads after start-up.
struct config
{
    server_config server;
    pool_config pool;
    limits_config limits;
    io_config io;
    upstream_config upstream;
    stats_config stats;
    trace_config trace;
    log_config log;
    faults_config faults;
};

/// What one configuration key is: its dotted name, documentation and accepted values.
struct key_info
{
    std::string_view name;        ///< dotted, e.g. "pool.queue_limit"
    std::string_view unit;        ///< "ms", "bytes", … or empty
    std::string_view description; ///< one sentence
    std::int64_t min = 0;         ///< integer keys: inclusive bounds
    std::int64_t max = 0;
    std::span<const std::string_view> choices{}; ///< string keys limited to a set; empty means free text
    bool may_be_empty = false;                   ///< free text that may be "" (it then means a default)
};

/// A key that is unknown, malformed or out of range; what() is one line naming the key and where it came
/// from.
class config_error : public std::runtime_error
{
public:
    using std::runtime_error::runtime_error;
};

inline constexpr std::string_view log_levels[] = {"trace", "debug",    "info", "warn",
                                                  "error", "critical", "off"};
inline constexpr std::string_view file_models[] = {"auto", "threads"};

/// Calls f(info, member) for every key of c, in documentation order. member is std::int64_t&, bool& or
/// std::string& (const when c is const). The single table from which defaults, parsing, environment
/// variables,
/// --help and validation all derive.
template <typename Config, typename F>
void for_each_key(Config& c, F&& f)
{
    f(key_info{"server.bind", "",
               "Address to listen on: an IPv4 or IPv6 literal (0.0.0.0 for every interface)."},
      c.server.bind);
    f(key_info{"server.port", "", "TCP port to listen on; 0 picks a free port (logged at start).", 0, 65535},
      c.server.port);
    f(key_info{"server.backlog", "connections",
               "Listen backlog: connections the kernel queues before accept (capped by net.core.somaxconn).",
               1, 65535},
      c.server.backlog);
    f(key_info{"server.max_header_bytes", "bytes",
               "Largest request line plus header block; a bigger one gets 431 and the connection closes.",
               512, 1048576},
      c.server.max_header_bytes);
    f(key_info{"server.max_body_bytes", "bytes",
               "Largest request body; a bigger one gets 413 and the connection closes.", 0, 67108864},
      c.server.max_body_bytes);
    f(key_info{"server.max_target_bytes", "bytes",
               "Longest request target (path and query); a longer one gets 414 and the connection closes.",
               16, 1048576},
      c.server.max_target_bytes);
    f(key_info{"server.max_header_count", "fields",
               "Most header fields in a request; more get 431 and the connection closes.", 1, 10000},
      c.server.max_header_count);
    f(key_info{"server.max_connections", "connections",
               "Most connections open at once; one more is answered 503 and closed at once.", 1, 1000000},
      c.server.max_connections);
    f(key_info{"server.header_timeout_ms", "ms",
               "Deadline to receive a whole request once its first byte has arrived; then the connection "
               "closes.",
               100, 3600000},
      c.server.header_timeout_ms);
    f(key_info{"server.idle_timeout_ms", "ms",
               "How long a keep-alive connection may wait for its next request before it is closed.", 100,
               86400000},
      c.server.idle_timeout_ms);
    f(key_info{"server.write_timeout_ms", "ms",
               "Deadline to write one response to a client that does not read; then the connection closes.",
               100, 3600000},
      c.server.write_timeout_ms);
    f(key_info{"server.drain_timeout_ms", "ms",
               "On SIGINT/SIGTERM, how long in-flight requests may run before the rest are cancelled.", 0,
               3600000},
      c.server.drain_timeout_ms);
    f(key_info{"server.linger_timeout_ms", "ms",
               "After refusing a request (400, 413, 431), how long to read and discard what the client still "
               "sends "
               "before closing, so that it reads the refusal rather than a reset; 0 closes at once.",
               0, 60000},
      c.server.linger_timeout_ms);
    f(key_info{"server.timer_slack_us", "us",
               "How much later than its deadline an /io/sleep or /io/fanout wait may end, so that waits "
               "ending close together share a wake-up of the I/O thread; 0: each at its deadline.",
               0, 10000},
      c.server.timer_slack_us);
    f(key_info{"pool.workers", "threads",
               "Worker threads for CPU work; 0 means the CPUs this process may use.", 0, 1024},
      c.pool.workers);
    f(key_info{"pool.queue_limit", "jobs",
               "CPU jobs that may wait for a free worker; beyond it a request gets 503 with Retry-After.", 1,
               1000000},
      c.pool.queue_limit);
    f(
        key_info{
            "pool.pin_workers", "",
            "Pin worker i to the i-th CPU this process may use (sched_setaffinity), instead of letting the "
            "kernel move it."},
        c.pool.pin_workers);
    f(key_info{"pool.nice", "",
               "Nice value of the worker threads, 0 (normal) to 19 (lowest priority), so that the I/O thread "
               "wins "
               "a core that both want.",
               0, 19},
      c.pool.nice);
    f(
        key_info{
            "pool.spin_us", "us",
            "How long an idle worker polls for the next job before it sleeps: a job that arrives meanwhile "
            "starts without the tens of microseconds a wake-up costs. 0 sleeps at once.",
            0, 10000},
        c.pool.spin_us);
    f(key_info{"limits.max_sleep_ms", "ms", "Largest ms accepted by /io/sleep and /io/fanout.", 0, 86400000},
      c.limits.max_sleep_ms);
    f(key_info{"limits.max_fanout", "waits", "Largest n accepted by /io/fanout.", 1, 100000},
      c.limits.max_fanout);
    f(key_info{"limits.max_primes_n", "", "Largest n accepted by /cpu/primes.", 2, 1000000000},
      c.limits.max_primes_n);
    f(key_info{"limits.max_fib_n", "",
               "Largest n accepted by /cpu/fib (naive recursion: cost grows 1.6x per step).", 1, 92},
      c.limits.max_fib_n);
    f(key_info{"limits.max_mandelbrot_size", "pixels",
               "Largest size (the image is size x size) of /cpu/mandelbrot.", 1, 8192},
      c.limits.max_mandelbrot_size);
    f(key_info{"limits.max_mandelbrot_iter", "iterations", "Largest iter (per point) of /cpu/mandelbrot.", 1,
               1000000},
      c.limits.max_mandelbrot_iter);
    f(key_info{"limits.max_parts", "parts",
               "Largest parts of a split request (mode=split): jobs it puts on the pool.", 1, 1024},
      c.limits.max_parts);
    f(key_info{"limits.max_trace_ms", "ms",
               "Longest window of /trace: the last ms of the timeline it returns.", 1, 3600000},
      c.limits.max_trace_ms);
    f(key_info{"limits.max_calls", "calls", "Largest n accepted by /io/call: upstream calls made at once.", 1,
               10000},
      c.limits.max_calls);
    f(key_info{"limits.max_file_kb", "KiB",
               "Largest kb accepted by /io/file (and at most the data file's size).", 1, 1048576},
      c.limits.max_file_kb);
    f(
        key_info{
            "io.blocking_threads", "threads",
            "Threads of the blocking pool (duet-b0, ...) that mode=threads waits on, one wait per thread at "
            "a time, as a thread-per-request server does.",
            1, 4096},
        c.io.blocking_threads);
    f(key_info{"io.blocking_queue_limit", "jobs",
               "Waits queued for a free blocking thread; beyond it a request gets 503 with Retry-After.", 1,
               1000000},
      c.io.blocking_queue_limit);
    f(key_info{"io.file_path",
               "",
               "The file /io/file reads; empty: a file of io.file_size_mb the server writes at start (and "
               "unlinks at once, so that nothing is left behind).",
               0,
               0,
               {},
               true},
      c.io.file_path);
    f(key_info{"io.file_size_mb", "MiB",
               "Size of the file the server writes at start when io.file_path is empty.", 1, 4096},
      c.io.file_size_mb);
    f(key_info{"io.file_model", "",
               "How /io/file reads without mode=threads: auto (io_uring on the I/O thread where the kernel "
               "allows it, else the blocking threads) or threads (always the blocking threads).",
               0, 0, file_models},
      c.io.file_model);
    f(
        key_info{
            "upstream.url", "",
            "What /io/call calls: http://HOST:PORT/PATH (the calls add ?ms=N), or self for this server's own "
            "/io/sleep. Requests can never choose it."},
        c.upstream.url);
    f(key_info{"upstream.max_connections", "connections",
               "Connections to the upstream open at once (kept alive and reused); calls beyond them wait for "
               "one.",
               1, 100000},
      c.upstream.max_connections);
    f(key_info{"upstream.queue_limit", "calls",
               "Calls that may wait for a free upstream connection; beyond it a request gets 503.", 0,
               1000000},
      c.upstream.queue_limit);
    f(key_info{"upstream.timeout_ms", "ms",
               "Deadline of each upstream connect, of each call's wait for a free connection, and of its "
               "exchange (the write and the whole answer); past it the request gets 504.",
               1, 3600000},
      c.upstream.timeout_ms);
    f(key_info{"upstream.max_response_bytes", "bytes",
               "Largest upstream response (header and body); a bigger one is a bad answer (502).", 1024,
               67108864},
      c.upstream.max_response_bytes);
    f(key_info{"stats.enabled", "",
               "Record per-request statistics (counts, latency histograms); off only to measure what they "
               "cost."},
      c.stats.enabled);
    f(key_info{"stats.window_ms", "ms", "The sliding window of the 'recent' latency percentiles in /stats.",
               1000, 3600000},
      c.stats.window_ms);
    f(key_info{"stats.loop_probe_interval_ms", "ms",
               "How often the event-loop probe timer fires; its lateness is the loop's lag.", 1, 1000},
      c.stats.loop_probe_interval_ms);
    f(key_info{"stats.loop_stall_threshold_ms", "ms",
               "A probe later than this counts as an event-loop stall.", 1, 60000},
      c.stats.loop_stall_threshold_ms);
    f(key_info{"stats.sample_interval_ms", "ms",
               "How often CPU usage per core, process and thread is read from /proc.", 100, 60000},
      c.stats.sample_interval_ms);
    f(key_info{"stats.stream_interval_ms", "ms", "How often /stats/stream sends a snapshot.", 10, 60000},
      c.stats.stream_interval_ms);
    f(key_info{"stats.max_stream_subscribers", "connections",
               "Concurrent /stats/stream subscribers; one more gets 503.", 0, 10000},
      c.stats.max_stream_subscribers);
    f(key_info{"stats.stream_send_buffer_bytes", "bytes",
               "Kernel send buffer of each /stats/stream connection (SO_SNDBUF): how much a subscriber that "
               "stops "
               "reading can leave unsent before its write waits, and then times out.",
               4096, 16777216},
      c.stats.stream_send_buffer_bytes);
    f(key_info{"trace.enabled", "",
               "Record every request's slices of work, waits and jobs for /trace; off only to measure what "
               "recording costs."},
      c.trace.enabled);
    f(
        key_info{
            "trace.capacity", "records",
            "Records the timeline keeps (a request, or one of its jobs, or a counter sample each; 128 bytes "
            "apiece); the oldest are overwritten.",
            256, 262144},
        c.trace.capacity);
    f(key_info{"trace.max_concurrent", "responses",
               "/trace responses built or being written at once; one more gets 503. Each may be megabytes.",
               1, 64},
      c.trace.max_concurrent);
    f(key_info{"log.level", "", "Least severe log level written.", 0, 0, log_levels}, c.log.level);
    f(key_info{"log.access", "", "Write one access-log line per request (off: it costs throughput)."},
      c.log.access);
    f(key_info{"faults.fail_every_nth_job", "jobs",
               "Fault injection: every Nth CPU job throws instead of running, and its request gets 500 "
               "job_failed; 0 turns it off.",
               0, 1000000000},
      c.faults.fail_every_nth_job);
}

/// DUET_ + the key upper-cased with dots as underscores: "pool.queue_limit" -> "DUET_POOL_QUEUE_LIMIT".
std::string env_name(std::string_view key);

/// Sets one key from text (an environment variable or a command-line flag); source names it in errors.
/// Throws config_error for an unknown key or a value of the wrong type or out of range.
void set_key(config& c, std::string_view key, std::string_view text, std::string_view source);

/// Applies a parsed JSON document of nested objects ({"server": {"port": 8080}}); unknown keys are errors.
void apply_json(config& c, const nlohmann::json& doc, std::string_view source);

/// Reads a JSON file (comments allowed) and applies it.
void apply_file(config& c, const std::filesystem::path& file);

/// Reads environment variables through getenv, for every key; absent ones are left alone.
using getenv_fn = std::function<const char*(const char*)>;
void apply_env(config& c, const getenv_fn& getenv);

/// Where settings come from, lowest precedence first: defaults < file < DUET_* env < flags.
struct config_sources
{
    std::optional<std::filesystem::path> file;
    getenv_fn getenv;                                       ///< empty: the environment is not read
    std::vector<std::pair<std::string, std::string>> flags; ///< key, value (from the command line)
};

/// Builds the effective configuration. Throws config_error (one line naming the key) on any invalid input.
config load_config(const config_sources& sources);

/// The effective configuration as nested JSON, in the same shape as the config file.
nlohmann::ordered_json to_json(const config& c);

} // namespace duet
