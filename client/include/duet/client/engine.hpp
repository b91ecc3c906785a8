#pragma once
// The load engine: client threads, each with its own io_context and share of the connections, run a closed or
// open loop and hand back their tallies.

#include <duet/client/options.hpp>
#include <duet/client/results.hpp>

#include <atomic>
#include <functional>
#include <memory>
#include <stdexcept>

namespace duet::client {

/// The target could not be reached before the run began (resolution or connection failed): bad usage, exit 2.
class unreachable_error : public std::runtime_error
{
public:
    using std::runtime_error::runtime_error;
};

/// What the progress line shows, once a second.
struct progress
{
    double elapsed_s = 0; ///< since the measurement began (negative during the warm-up)
    double total_s = 0;   ///< the measurement's planned length; 0 when it runs to a request count
    std::uint64_t requests = 0;
    double last_second_rps = 0;
    double p99_us = 0; ///< so far
    std::uint64_t errors = 0;
};

/// The load generator: `threads` threads, each with its own io_context and a slice of the connections (wrk's
/// model). Each connection is one coroutine: closed loop by default (the next request when the last response
/// is in), or open loop with a rate (each request at its intended time, latency measured from that time: a
/// stall shows in the percentiles, as wrk2 does). Every thread counts into its own tally; nothing is shared
/// per request. A coordinator on the calling thread collects a snapshot from each thread once a second.
class load_engine
{
public:
    /// Validates the options and resolves the target; does not connect yet.
    explicit load_engine(run_options options);
    ~load_engine();
    load_engine(const load_engine&) = delete;
    load_engine& operator=(const load_engine&) = delete;

    /// Connects once to check that the target is there; throws unreachable_error if it is not.
    void preflight();

    /// Runs the load and returns the result. on_tick is called on this thread once a second.
    run_result run(const std::function<void(const progress&)>& on_tick = {});

    /// Ends the run early (Ctrl-C). Safe to call from a signal handler: it only sets an atomic flag.
    void stop() noexcept { stop_requested_.store(true, std::memory_order_relaxed); }

private:
    struct impl;
    std::unique_ptr<impl> impl_;
    std::atomic<bool> stop_requested_{false};
};

} // namespace duet::client
