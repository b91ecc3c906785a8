#pragma once

#include <duet/config.hpp>
#include <duet/cpu_allowance.hpp>
#include <duet/server/event_feed.hpp>
#include <duet/server/report.hpp>
#include <duet/server/router.hpp>
#include <duet/server/stats.hpp>
#include <duet/server/worker_pool.hpp>
#include <duet/thread_info.hpp>

#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/intrusive/list.hpp>

#include <cstdint>
#include <exception>
#include <memory>
#include <string>

namespace spdlog {
class logger;
}

namespace duet::server {

/// One open connection, as the drain sees it. Lives in its session's coroutine frame and unlinks itself.
struct connection
    : boost::intrusive::list_base_hook<boost::intrusive::link_mode<boost::intrusive::auto_unlink>>
{
    explicit connection(boost::beast::tcp_stream& s) : stream{s} {}

    boost::beast::tcp_stream& stream;
    bool idle = true; ///< waiting for the first byte of its next request: safe to close during a drain
};

using connection_list = boost::intrusive::list<connection, boost::intrusive::constant_time_size<false>>;

/// Everything requests share. It lives on the I/O thread and only the I/O thread touches it, so it needs no
/// locks: workers receive a job and hand back an outcome, nothing more.
struct server_state
{
    server_state(const duet::config& c, worker_pool& p, const cpu_allowance& allowance);

    const duet::config& cfg;
    worker_pool& pool;
    cpu_allowance cpus;
    router routes;
    std::string index_body; ///< GET /, built once from the routes
    request_ids ids;
    thread_ident io_thread;                     ///< set when the server starts running
    std::shared_ptr<spdlog::logger> access_log; ///< null when the access log is off
    server_stats stats;
    event_feed feed;             ///< /stats snapshots for /stats/stream subscribers
    std::uint64_t jobs_made = 0; ///< CPU jobs created, counted for faults.fail_every_nth_job

    // Connections and the drain.
    connection_list connections;
    std::uint64_t open_connections = 0;
    bool draining = false;
    boost::asio::steady_timer* drain_waiter = nullptr; ///< cancelled when the last connection closes

    /// Called when a session coroutine ends: logs an exception that escaped it (a bug, counted as such), and
    /// finishes a drain when the last connection is gone.
    void session_ended(const std::exception_ptr& e);
};

} // namespace duet::server
