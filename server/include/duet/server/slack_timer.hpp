#pragma once
// One timer for every wait of the I/O thread's requests, with a slack, so that waits ending close together
// share one wake-up.

#include <duet/server/io.hpp>

#include <boost/asio/any_completion_handler.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/execution_context.hpp>
#include <boost/system/error_code.hpp>

#include <chrono>
#include <cstddef>
#include <map>
#include <vector>

namespace duet::server {

/// The waits of the I/O thread's requests (/io/sleep, /io/fanout), all on one timer, with a slack.
///
/// A timer per wait costs an entry in Asio's timer queue and, whenever the earliest deadline changes, a
/// timerfd system call; and each deadline that differs from the others by a few microseconds is a wake-up of
/// its own. Here a wait ends once its deadline has passed, at most `slack` after it: the one timer is set to
/// the earliest deadline plus the slack, and when it fires every wait whose deadline has passed ends, in
/// deadline order, in that one turn of the loop. Waits that end within the slack of each other share a
/// wake-up, as a thread's poll and sleep timeouts do in the kernel (its timer slack, 50 us by default).
///
/// An execution-context service, so that the io_context's shutdown destroys the waits still pending, as it
/// does its own operations. It belongs to the I/O thread: start waits and run the io_context on that thread
/// only. A wait completes there, from the one timer: its handler is called directly, not through its
/// associated executor, so it must be one that runs on this io_context (a coroutine of the I/O thread is).
class slack_timer : public boost::asio::execution_context::service
{
public:
    using clock = std::chrono::steady_clock;
    using key_type = slack_timer;

    /// The io_context's slack timer, made on first use (server.timer_slack_us gives the slack).
    static slack_timer& of(boost::asio::io_context& ioc, clock::duration slack)
    {
        return boost::asio::make_service<slack_timer>(ioc, ioc.get_executor(), slack);
    }

    slack_timer(boost::asio::execution_context& owner, io_executor ex, clock::duration slack);

    /// Completes with no error once `due` has passed, at most about `slack` after it (later only while the
    /// loop is busy), or with operation_aborted as soon as its cancellation slot is emitted (any type: a
    /// cancelled wait has done nothing).
    template <typename Token>
    auto async_wait_until(clock::time_point due, Token&& token)
    {
        return boost::asio::async_initiate<Token, void(boost::system::error_code)>(
            [this](handler h, clock::time_point at) { start(at, std::move(h)); }, token, due);
    }

    std::size_t pending() const noexcept { return waits_.size(); }

private:
    using handler = boost::asio::any_completion_handler<void(boost::system::error_code)>;

    struct wait
    {
        handler done;
        boost::asio::cancellation_slot slot;
    };
    // Deadline order; equal deadlines in the order they were set. Waits mostly arrive in deadline order, so
    // most inserts go at the end, where the hint makes them cheap.
    using wait_map = std::multimap<clock::time_point, wait>;

    void start(clock::time_point due, handler h);
    void cancel(wait_map::iterator w);
    void on_timer();
    void arm();
    void recycle(wait_map::node_type node);
    void shutdown() override;

    // Nodes of ended waits kept for the next ones: a wait then costs no allocation. Bounded: a burst of waits
    // ending at once gives back all but these.
    static constexpr std::size_t max_spare = 256;

    io_timer timer_;
    clock::duration slack_;
    clock::time_point armed_ = clock::time_point::max(); ///< when the timer fires; max: not armed
    wait_map waits_;
    std::vector<wait_map::node_type> spare_;
};

} // namespace duet::server
