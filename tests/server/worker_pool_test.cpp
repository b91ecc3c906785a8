// The worker pool: the bound, the hand-off back to the I/O executor, failures, placement and stopping.
#include <duet/server/worker_pool.hpp>

#include <boost/asio/bind_executor.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <future>
#include <stdexcept>
#include <thread>
#include <vector>

namespace {

namespace net = boost::asio;
using namespace std::chrono_literals;
using duet::server::job_outcome;
using duet::server::job_status;
using duet::server::worker_pool;

TEST(WorkerPool, JobsRunOnNamedWorkersAndResultsReturnToTheCallersThread)
{
    net::io_context ioc;
    worker_pool pool{2, 16};
    auto io_thread = std::this_thread::get_id();
    std::vector<job_outcome<std::string>> outcomes;
    std::vector<std::thread::id> completion_threads;
    for (int i = 0; i < 4; ++i) {
        pool.async_submit([] { return duet::current_thread_name(); },
                          net::bind_executor(ioc, [&](job_outcome<std::string> out) {
                              completion_threads.push_back(std::this_thread::get_id());
                              outcomes.push_back(std::move(out));
                          }));
    }
    ioc.run(); // returns only when every job has completed: outstanding jobs hold work on ioc
    ASSERT_EQ(outcomes.size(), 4U);
    for (std::size_t i = 0; i < outcomes.size(); ++i) {
        const auto& out = outcomes[i];
        EXPECT_EQ(completion_threads[i], io_thread);
        EXPECT_EQ(out.status, job_status::done);
        EXPECT_TRUE(out.value == "duet-w0" || out.value == "duet-w1") << out.value;
        ASSERT_NE(out.worker, nullptr);
        EXPECT_EQ(out.worker->name, out.value);
        EXPECT_GE(out.timing.started, out.timing.enqueued);
        EXPECT_GE(out.timing.finished, out.timing.started);
        EXPECT_GE(out.timing.core_start, 0);
    }
}

TEST(WorkerPool, WorkersRunJobsInParallel)
{
    net::io_context ioc;
    worker_pool pool{2, 16};
    int done = 0;
    auto start = std::chrono::steady_clock::now();
    for (int i = 0; i < 4; ++i) {
        pool.async_submit(
            [] {
                std::this_thread::sleep_for(300ms);
                return 0;
            },
            net::bind_executor(ioc, [&](job_outcome<int>) { ++done; }));
    }
    ioc.run();
    auto elapsed = std::chrono::steady_clock::now() - start;
    EXPECT_EQ(done, 4);
    EXPECT_GE(elapsed, 600ms);  // two workers, four 300 ms jobs: two rounds
    EXPECT_LT(elapsed, 1150ms); // not four rounds
}

TEST(WorkerPool, CoroutineAwaitsAJobWithoutBlockingItsThread)
{
    net::io_context ioc;
    worker_pool pool{1, 16};
    std::uint64_t result = 0;
    int ticks = 0;
    net::co_spawn(
        ioc,
        [&]() -> net::awaitable<void> {
            auto out = co_await pool.async_submit(
                [] {
                    std::this_thread::sleep_for(200ms);
                    return std::uint64_t{42};
                },
                net::use_awaitable);
            result = out.value;
        },
        net::detached);
    // Meanwhile the same thread keeps running other handlers.
    std::function<void()> tick = [&] {
        if (result == 0 && ++ticks < 1000) {
            std::this_thread::sleep_for(1ms);
            net::post(ioc, tick);
        }
    };
    net::post(ioc, tick);
    ioc.run();
    EXPECT_EQ(result, 42U);
    EXPECT_GT(ticks, 20);
}

TEST(WorkerPool, FullQueueRejectsAtOnceInsteadOfGrowing)
{
    net::io_context ioc;
    worker_pool pool{1, 1};
    std::promise<void> release;
    auto gate = release.get_future().share();
    std::atomic<bool> first_started{false};
    std::vector<job_status> statuses(3, job_status::done);
    pool.async_submit(
        [gate, &first_started] {
            first_started = true;
            gate.wait();
            return 1;
        },
        net::bind_executor(ioc, [&](job_outcome<int> o) { statuses[0] = o.status; }));
    while (!first_started) {
        std::this_thread::sleep_for(1ms);
    }
    // The worker is busy: one job may wait, the next is refused.
    pool.async_submit([] { return 2; },
                      net::bind_executor(ioc, [&](job_outcome<int> o) { statuses[1] = o.status; }));
    EXPECT_EQ(pool.queued(), 1U);
    pool.async_submit([] { return 3; }, net::bind_executor(ioc, [&](job_outcome<int> o) {
                          statuses[2] = o.status;
                          release.set_value();
                      }));
    ioc.run();
    EXPECT_EQ(statuses[0], job_status::done);
    EXPECT_EQ(statuses[1], job_status::done);
    EXPECT_EQ(statuses[2], job_status::rejected);
}

TEST(WorkerPool, AThrowingJobFailsAloneAndTheWorkerSurvives)
{
    net::io_context ioc;
    worker_pool pool{1, 4};
    job_outcome<int> bad, good;
    pool.async_submit([]() -> int { throw std::runtime_error{"boom"}; },
                      net::bind_executor(ioc, [&](job_outcome<int> o) { bad = std::move(o); }));
    pool.async_submit([] { return 7; },
                      net::bind_executor(ioc, [&](job_outcome<int> o) { good = std::move(o); }));
    ioc.run();
    EXPECT_EQ(bad.status, job_status::failed);
    ASSERT_TRUE(bad.error);
    EXPECT_THROW(std::rethrow_exception(bad.error), std::runtime_error);
    EXPECT_EQ(good.status, job_status::done);
    EXPECT_EQ(good.value, 7);
}

TEST(WorkerPool, StopDropsQueuedJobsWithoutRunningThem)
{
    std::atomic<int> ran{0};
    {
        net::io_context ioc;
        worker_pool pool{1, 8};
        std::promise<void> started;
        pool.async_submit(
            [&] {
                started.set_value();
                std::this_thread::sleep_for(100ms);
                return ++ran;
            },
            net::bind_executor(ioc, [](job_outcome<int>) {}));
        started.get_future().wait();
        for (int i = 0; i < 5; ++i) {
            pool.async_submit([&] { return ++ran; }, net::bind_executor(ioc, [](job_outcome<int>) {}));
        }
        pool.stop();
        EXPECT_EQ(ran, 1);
        // Submitting after stop is refused, not lost: the handler is told.
        job_status after = job_status::done;
        pool.async_submit([] { return 0; },
                          net::bind_executor(ioc, [&](job_outcome<int> o) { after = o.status; }));
        ioc.run();
        EXPECT_EQ(after, job_status::rejected);
    }
    EXPECT_EQ(ran, 1);
}

} // namespace
