// The cost of handing CPU work to the pool and getting the result back on the I/O thread.
#include <duet/server/worker_pool.hpp>

#include <boost/asio/bind_executor.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <benchmark/benchmark.h>

namespace {

namespace net = boost::asio;
using duet::server::job_outcome;
using duet::server::worker_pool;

// The argument: how long idle workers spin before sleeping (pool.spin_us), 0 or the default 50 us.
duet::server::pool_placement spin(const benchmark::State& state)
{
    return {.spin = std::chrono::microseconds{state.range(0)}};
}

// Post a trivial job to a worker and run the completion on the io_context: one full round trip per iteration,
// as a /cpu request pays it (worker wake-up, the job, the post back, the I/O thread's wake-up). Here the I/O
// thread sleeps in epoll_wait between jobs, as an idle server's does: two wake-ups per round trip.
void BM_OffloadRoundTrip(benchmark::State& state)
{
    net::io_context ioc{1};
    worker_pool pool{1, 1024, spin(state)};
    std::uint64_t sum = 0;
    for (auto _ : state) {
        pool.async_submit([] { return std::uint64_t{1}; },
                          net::bind_executor(ioc, [&](job_outcome<std::uint64_t> o) { sum += o.value; }));
        ioc.restart();
        ioc.run(); // returns when the completion has run: the job held work on ioc until then
    }
    benchmark::DoNotOptimize(sum);
}
BENCHMARK(BM_OffloadRoundTrip)->Arg(0)->Arg(50)->Repetitions(10)->ReportAggregatesOnly(true)->UseRealTime();

// The same with a busy I/O thread: it polls instead of sleeping in epoll_wait, as a loaded event loop is
// always running something. What remains is the hand-off itself plus the worker's wake-up.
void BM_OffloadRoundTripBusyLoop(benchmark::State& state)
{
    net::io_context ioc{1};
    auto busy = net::make_work_guard(ioc); // poll() must not stop the context between jobs
    worker_pool pool{1, 1024, spin(state)};
    std::uint64_t sum = 0;
    for (auto _ : state) {
        bool done = false;
        pool.async_submit([] { return std::uint64_t{1}; },
                          net::bind_executor(ioc, [&](job_outcome<std::uint64_t> o) {
                              sum += o.value;
                              done = true;
                          }));
        while (!done) {
            ioc.poll();
        }
    }
    benchmark::DoNotOptimize(sum);
}
BENCHMARK(BM_OffloadRoundTripBusyLoop)
    ->Arg(0)
    ->Arg(50)
    ->Repetitions(10)
    ->ReportAggregatesOnly(true)
    ->UseRealTime();

// The same from a coroutine, as the handlers do it: co_await pool.async_submit(job, use_awaitable).
void BM_OffloadRoundTripCoroutine(benchmark::State& state)
{
    net::io_context ioc{1};
    worker_pool pool{1, 1024, spin(state)};
    std::uint64_t sum = 0;
    for (auto _ : state) {
        net::co_spawn(
            ioc,
            [&]() -> net::awaitable<void> {
                auto o = co_await pool.async_submit([] { return std::uint64_t{1}; }, net::use_awaitable);
                sum += o.value;
            },
            net::detached);
        ioc.restart();
        ioc.run();
    }
    benchmark::DoNotOptimize(sum);
}
BENCHMARK(BM_OffloadRoundTripCoroutine)
    ->Arg(0)
    ->Arg(50)
    ->Repetitions(10)
    ->ReportAggregatesOnly(true)
    ->UseRealTime();

} // namespace
