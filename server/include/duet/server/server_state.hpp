#pragma once

#include <duet/config.hpp>
#include <duet/cpu_allowance.hpp>
#include <duet/server/event_feed.hpp>
#include <duet/server/io.hpp>
#include <duet/server/report.hpp>
#include <duet/server/router.hpp>
#include <duet/server/stats.hpp>
#include <duet/server/worker_pool.hpp>
#include <duet/thread_info.hpp>

#include <boost/asio/ip/tcp.hpp>

#include <chrono>
#include <cstdint>
#include <exception>
#include <memory>
#include <string>
#include <vector>

namespace spdlog {
class logger;
}

namespace duet::server {

class wait_queue;

/// CLOCK_MONOTONIC_COARSE: a few nanoseconds to read and a few milliseconds of resolution, which is what a
/// deadline of seconds needs (steady_clock costs five times as much, and a connection sets several deadlines
/// per request).
struct coarse_clock
{
    using duration = std::chrono::nanoseconds;
    using rep = duration::rep;
    using period = duration::period;
    using time_point = std::chrono::time_point<coarse_clock>;
    static constexpr bool is_steady = true;
    static time_point now() noexcept;
};

class connection_table;

/// One open connection, as the drain and the deadline sweep see it. Lives in its session's coroutine frame;
/// registers itself in the server's connection_table and leaves it when destroyed.
///
/// Deadlines: instead of a timer per operation (set, cancelled and re-set several times per request), an
/// operation that must end in time sets a deadline in the table, and one sweep over the table (server.cpp)
/// cancels the socket's operations once it has passed and marks the connection `expired`.
class connection
{
public:
    connection(tcp_socket& s, connection_table& table);
    ~connection();
    connection(const connection&) = delete;
    connection& operator=(const connection&) = delete;

    /// The next socket operation must finish within `timeout` from now, or by `at`.
    void arm(std::chrono::milliseconds timeout) noexcept { arm_until(coarse_clock::now() + timeout); }
    void arm_until(coarse_clock::time_point at) noexcept;
    void disarm() noexcept;

    tcp_socket& socket;
    bool expired = false; ///< the sweep cancelled the operation in progress at its deadline
    bool idle = true;     ///< waiting for the first byte of its next request: safe to close during a drain

private:
    connection_table& table_;
    std::uint32_t slot_;
};

/// The open connections and their deadlines, in two arrays indexed by a slot that each connection keeps while
/// it is open (freed slots are reused, last freed first). The sweep reads only the deadlines: a contiguous
/// array of 8 bytes per slot, 80 KB for 10,000 connections. Walking the connections
/// themselves, one per coroutine frame scattered over the heap, cost milliseconds per sweep in cache and TLB
/// misses (measured: about 370 ns a connection).
class connection_table
{
public:
    using time_point = coarse_clock::time_point;

    std::uint32_t add(connection& c);
    void remove(std::uint32_t slot) noexcept;
    void set_deadline(std::uint32_t slot, time_point at) noexcept { deadlines_[slot] = at; }
    /// Slots in use or free: the most connections open at once so far, which is what the sweep reads.
    std::size_t slots() const noexcept { return connections_.size(); }

    /// Calls f(connection&) for every open connection.
    template <typename F>
    void for_each(F&& f) const
    {
        for (auto* c : connections_) {
            if (c != nullptr) {
                f(*c);
            }
        }
    }

    /// Calls f(connection&) for every connection whose deadline is at or before `now` (a free slot has none).
    template <typename F>
    void for_each_due(time_point now, F&& f) const
    {
        for (std::size_t i = 0; i < deadlines_.size(); ++i) {
            if (deadlines_[i] <= now) {
                f(*connections_[i]);
            }
        }
    }

private:
    std::vector<time_point> deadlines_;    ///< time_point::max(): no deadline, or a free slot
    std::vector<connection*> connections_; ///< null: a free slot
    std::vector<std::uint32_t> free_slots_;
};

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
    wait_queue* waits = nullptr; ///< the io_context's, for /io/sleep and /io/fanout; made with the io_context

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
