#pragma once
// The state every request shares, on the I/O thread only: configuration, routes, statistics, connections and
// the drain.

#include <duet/config.hpp>
#include <duet/cpu_allowance.hpp>
#include <duet/server/connection_table.hpp>
#include <duet/server/event_feed.hpp>
#include <duet/server/io.hpp>
#include <duet/server/request_ids.hpp>
#include <duet/server/router.hpp>
#include <duet/server/stats.hpp>
#include <duet/server/trace.hpp>
#include <duet/server/worker_pool.hpp>
#include <duet/thread_info.hpp>

#include <boost/asio/ip/tcp.hpp>

#include <chrono>
#include <cstdint>
#include <exception>
#include <memory>
#include <stop_token>
#include <string>
#include <vector>

namespace spdlog {
class logger;
}

namespace duet::server {

class slack_timer;
class upstream_pool;
class data_file;
class uring_file;

/// Everything requests share. It lives on the I/O thread and only the I/O thread touches it, so it needs no
/// locks: workers receive a job and hand back an outcome, nothing more.
struct server_state
{
    /// file_bytes: the size of /io/file's data file, which bounds its kb (0: only limits.max_file_kb does).
    server_state(const duet::config& c, worker_pool& p, const cpu_allowance& allowance,
                 std::uint64_t file_bytes = 0);

    const duet::config& cfg;
    worker_pool& pool;
    cpu_allowance cpus;
    router routes;
    std::string index_body; ///< GET /, built once from the routes
    request_ids ids;
    thread_ident io_thread;                     ///< set when the server starts running
    std::shared_ptr<spdlog::logger> access_log; ///< null when the access log is off
    server_stats stats;
    event_feed feed;      ///< /stats snapshots for /stats/stream subscribers
    trace_recorder trace; ///< the timeline /trace draws
    std::uint64_t traces_alive =
        0; ///< /trace responses being built or written (bounded by trace.max_concurrent)
    std::uint64_t jobs_made = 0; ///< CPU jobs created, counted for faults.fail_every_nth_job
    /// The io_context's, for /io/sleep and /io/fanout; made with the io_context.
    slack_timer* wait_timer = nullptr;
    /// The blocking threads of mode=threads (duet-b0, …); null: mode=threads answers 503.
    worker_pool* blocking = nullptr;
    std::stop_token blocking_stop; ///< requested when the server stops: a blocking sleep then ends at once
    /// /io/call's connections to its upstream, on this io_context.
    upstream_pool* upstream = nullptr;
    /// /io/file's file, and its reader on the I/O thread's io_uring (null: it reads on the blocking threads).
    data_file* file = nullptr;
    uring_file* file_ring = nullptr;

    // Connections and the drain.
    connection_table connections;
    std::uint64_t open_connections = 0;
    bool draining = false;
    io_timer* drain_waiter = nullptr; ///< cancelled when the last connection closes

    /// Called when a session coroutine ends: logs an exception that escaped it (a bug, counted as such), and
    /// finishes a drain when the last connection is gone.
    void session_ended(const std::exception_ptr& e);
};

} // namespace duet::server
