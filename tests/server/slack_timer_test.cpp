// The slack timer: waits end in deadline order, within the slack, share wake-ups, and cancel one by one.
#include <duet/server/slack_timer.hpp>

#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/error.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <optional>
#include <vector>

namespace {

namespace net = boost::asio;
using duet::server::slack_timer;
using clock_type = slack_timer::clock;
using namespace std::chrono_literals;
using error_code = boost::system::error_code;

struct outcome
{
    std::optional<error_code> ec;
    clock_type::time_point at;
};

auto record(outcome& o)
{
    return [&o](error_code ec) {
        o.ec = ec;
        o.at = clock_type::now();
    };
}

TEST(SlackTimer, AWaitEndsAfterItsDeadlineAndWithinItsSlack)
{
    net::io_context ioc;
    auto& q = slack_timer::of(ioc, 20ms);
    outcome o;
    auto due = clock_type::now() + 30ms;
    q.async_wait_until(due, record(o));
    ioc.run();
    ASSERT_TRUE(o.ec.has_value());
    EXPECT_FALSE(*o.ec);
    EXPECT_GE(o.at, due);
    EXPECT_LT(o.at, due + 20ms + 500ms); // the slack, and a wide margin for a loaded machine
    EXPECT_EQ(q.pending(), 0U);
}

TEST(SlackTimer, WaitsEndInDeadlineOrderWhateverTheOrderTheyStarted)
{
    net::io_context ioc;
    auto& q = slack_timer::of(ioc, 0ms);
    std::vector<int> order;
    auto now = clock_type::now();
    for (int i : {3, 1, 4, 2, 5}) {
        q.async_wait_until(now + i * 10ms, [&order, i](error_code ec) {
            EXPECT_FALSE(ec);
            order.push_back(i);
        });
    }
    ioc.run();
    EXPECT_EQ(order, (std::vector<int>{1, 2, 3, 4, 5}));
}

// Ended waits leave their nodes for the next ones; a wait in a reused node behaves like any other.
TEST(SlackTimer, WaitsStartedAfterOthersEndedWorkTheSame)
{
    net::io_context ioc;
    auto& q = slack_timer::of(ioc, 0ms);
    for (int round = 0; round < 3; ++round) {
        std::vector<int> order;
        net::cancellation_signal cancel;
        outcome cancelled;
        auto now = clock_type::now();
        for (int i : {2, 1, 3}) {
            q.async_wait_until(now + i * 5ms, [&order, i](error_code ec) {
                EXPECT_FALSE(ec);
                order.push_back(i);
            });
        }
        q.async_wait_until(now + 10s, net::bind_cancellation_slot(cancel.slot(), record(cancelled)));
        net::post(ioc, [&] { cancel.emit(net::cancellation_type::terminal); });
        ioc.restart();
        ioc.run();
        EXPECT_EQ(order, (std::vector<int>{1, 2, 3})) << "round " << round;
        ASSERT_TRUE(cancelled.ec.has_value());
        EXPECT_EQ(*cancelled.ec, net::error::operation_aborted);
    }
}

// The point of the slack: waits whose deadlines are within it of the earliest end together, in one completion
// of the one timer, that is one turn of the loop.
TEST(SlackTimer, WaitsWithinTheSlackOfTheEarliestEndInOneTurnOfTheLoop)
{
    net::io_context ioc;
    auto& q = slack_timer::of(ioc, 200ms);
    auto now = clock_type::now();
    int done = 0;
    for (int i = 0; i < 100; ++i) {
        q.async_wait_until(now + 10ms + i * 1ms, [&done](error_code ec) {
            EXPECT_FALSE(ec);
            ++done;
        });
    }
    // The first handler to run is the timer's: all 100 deadlines (10 to 109 ms) have passed by the time it
    // fires (the first deadline plus the slack, 210 ms).
    EXPECT_EQ(ioc.run_one(), 1U);
    EXPECT_EQ(done, 100);
    EXPECT_EQ(q.pending(), 0U);
}

TEST(SlackTimer, AnEarlierWaitStartedLaterIsNotHeldUpByTheTimerSetForALaterOne)
{
    net::io_context ioc;
    auto& q = slack_timer::of(ioc, 0ms);
    outcome late;
    outcome early;
    auto start = clock_type::now();
    q.async_wait_until(start + 10s, record(late));
    q.async_wait_until(start + 20ms, record(early)); // re-sets the timer: its first wait ends, aborted
    while (!early.ec && ioc.run_one() > 0) {
    }
    ASSERT_TRUE(early.ec.has_value());
    EXPECT_FALSE(*early.ec);
    EXPECT_LT(early.at - start, 5s);
    EXPECT_FALSE(late.ec.has_value());
    EXPECT_EQ(q.pending(), 1U);
}

TEST(SlackTimer, ACancelledWaitEndsAtOnceWithOperationAbortedAndTheOthersGoOn)
{
    net::io_context ioc;
    auto& q = slack_timer::of(ioc, 0ms);
    net::cancellation_signal cancel;
    outcome cancelled;
    outcome kept;
    auto start = clock_type::now();
    q.async_wait_until(start + 10s, net::bind_cancellation_slot(cancel.slot(), record(cancelled)));
    q.async_wait_until(start + 50ms, record(kept));
    net::post(ioc, [&] { cancel.emit(net::cancellation_type::terminal); });
    ioc.run();
    ASSERT_TRUE(cancelled.ec.has_value());
    EXPECT_EQ(*cancelled.ec, net::error::operation_aborted);
    EXPECT_LT(cancelled.at - start, 5s);
    ASSERT_TRUE(kept.ec.has_value());
    EXPECT_FALSE(*kept.ec);
    EXPECT_GE(kept.at, start + 50ms);
}

// A cancellation slot keeps its handler until the next operation replaces it: a signal emitted again, or
// after the wait has ended, must find nothing to do.
TEST(SlackTimer, ASignalEmittedAfterTheWaitEndedOrTwiceChangesNothing)
{
    net::io_context ioc;
    auto& q = slack_timer::of(ioc, 0ms);
    net::cancellation_signal ended_signal;
    net::cancellation_signal twice_signal;
    outcome ended;
    outcome twice;
    outcome other;
    auto start = clock_type::now();
    q.async_wait_until(start + 1ms, net::bind_cancellation_slot(ended_signal.slot(), record(ended)));
    q.async_wait_until(start + 10s, net::bind_cancellation_slot(twice_signal.slot(), record(twice)));
    q.async_wait_until(start + 100ms, record(other));
    ioc.run_one(); // the 1 ms wait ends
    ASSERT_TRUE(ended.ec.has_value());
    EXPECT_FALSE(*ended.ec);
    outcome reusing; // takes the ended wait's node
    q.async_wait_until(start + 150ms, record(reusing));
    ended_signal.emit(net::cancellation_type::terminal);
    twice_signal.emit(net::cancellation_type::terminal);
    twice_signal.emit(net::cancellation_type::terminal);
    ioc.run();
    EXPECT_FALSE(*ended.ec);
    ASSERT_TRUE(twice.ec.has_value());
    EXPECT_EQ(*twice.ec, net::error::operation_aborted);
    ASSERT_TRUE(other.ec.has_value());
    EXPECT_FALSE(*other.ec);
    ASSERT_TRUE(reusing.ec.has_value());
    EXPECT_FALSE(*reusing.ec) << "the ended wait's signal cancelled the wait that reused its node";
}

// With nothing pending the slack timer holds no Asio timer: io_context::run returns, as it does when the last
// Asio timer is cancelled, rather than at the cancelled wait's deadline.
TEST(SlackTimer, WithEveryWaitCancelledTheLoopHasNoWorkLeft)
{
    net::io_context ioc;
    auto& q = slack_timer::of(ioc, 0ms);
    net::cancellation_signal cancel;
    outcome o;
    auto start = clock_type::now();
    q.async_wait_until(start + 30s, net::bind_cancellation_slot(cancel.slot(), record(o)));
    net::post(ioc, [&] { cancel.emit(net::cancellation_type::terminal); });
    ioc.run();
    ASSERT_TRUE(o.ec.has_value());
    EXPECT_EQ(*o.ec, net::error::operation_aborted);
    EXPECT_LT(clock_type::now() - start, 10s);
}

// Like the operations Asio owns, a wait still pending when the io_context is destroyed is destroyed with it
// (a suspended coroutine's frames are freed), never invoked.
TEST(SlackTimer, PendingWaitsAreDestroyedNotInvokedWhenTheContextGoes)
{
    auto owned = std::make_shared<int>(0);
    std::weak_ptr<int> watch = owned;
    bool invoked = false;
    {
        net::io_context ioc;
        auto& q = slack_timer::of(ioc, 0ms);
        q.async_wait_until(clock_type::now() + 1h,
                           [held = std::move(owned), &invoked](error_code) { invoked = true; });
        ioc.poll();
        EXPECT_FALSE(watch.expired());
    }
    EXPECT_TRUE(watch.expired());
    EXPECT_FALSE(invoked);
}

} // namespace
