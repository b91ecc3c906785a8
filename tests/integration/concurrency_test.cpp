// Concurrency on one thread: many I/O-bound requests overlap on the single I/O thread.
#include "http_client.hpp"
#include "running_server.hpp"

#include <gtest/gtest.h>

#include <set>

namespace {

using namespace std::chrono_literals;
using duet::test::get_concurrently;
using duet::test::running_server;

TEST(Concurrency, FiveHundredOverlappingSleepsFinishTogetherOnOneThread)
{
    running_server server;
    std::vector<std::string> targets(500, "/io/sleep?ms=300");
    auto start = std::chrono::steady_clock::now();
    auto replies = get_concurrently(server.port(), targets);
    auto wall = std::chrono::steady_clock::now() - start;

    std::set<std::int64_t> io_threads;
    for (const auto& r : replies) {
        ASSERT_EQ(r.status, 200U) << r.error << r.body;
        auto report = r.json()["report"];
        io_threads.insert(report["threads"]["io"]["tid"].get<std::int64_t>());
        EXPECT_EQ(report["model"], "event-loop");
        EXPECT_GE(report["timing_us"]["service"].get<double>(), 300000.0);
        // Waiting costs no CPU: each report's CPU time is tiny next to its 300 ms of service.
        EXPECT_LT(report["cpu_time_us"].get<double>(), 3000.0);
    }
    // 500 x 300 ms would be 150 s one after another; overlapped it is about 0.3 s.
    EXPECT_LT(wall, 2s);
    EXPECT_EQ(io_threads.size(), 1U) << "every request ran on the same single I/O thread";
}

TEST(Concurrency, FanoutJoinsConcurrentWaitsWithinOneRequest)
{
    running_server server;
    auto start = std::chrono::steady_clock::now();
    auto reply = duet::test::http_get(server.port(), "/io/fanout?n=100&ms=200");
    auto wall = std::chrono::steady_clock::now() - start;
    ASSERT_EQ(reply.status, 200U) << reply.error << reply.body;
    auto j = reply.json();
    EXPECT_EQ(j["result"]["waits"], 100);
    EXPECT_EQ(j["result"]["sequential_ms"], 20000);
    EXPECT_GE(j["report"]["timing_us"]["service"].get<double>(), 200000.0);
    EXPECT_LT(wall, 1s); // 100 x 200 ms, joined: about 200 ms, not 20 s
}

TEST(Concurrency, ManyFanoutsAtOnceStayConcurrent)
{
    running_server server;
    std::vector<std::string> targets(50, "/io/fanout?n=200&ms=300");
    auto start = std::chrono::steady_clock::now();
    auto replies = get_concurrently(server.port(), targets);
    auto wall = std::chrono::steady_clock::now() - start;
    for (const auto& r : replies) {
        ASSERT_EQ(r.status, 200U) << r.error;
    }
    EXPECT_LT(wall, 2s); // 10,000 timers across 50 requests, all overlapping
}

} // namespace
