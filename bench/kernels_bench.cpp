// Kernel scaling: one request's work split into 1..N parts on a pool of N workers (N = the machine's CPUs).
#include <duet/cpu_allowance.hpp>
#include <duet/server/kernels.hpp>
#include <duet/server/worker_pool.hpp>

#include <boost/asio/bind_executor.hpp>
#include <boost/asio/io_context.hpp>
#include <benchmark/benchmark.h>

#include <vector>

namespace {

namespace net = boost::asio;
using duet::server::job_outcome;
using duet::server::worker_pool;

unsigned cpus()
{
    return duet::detect_cpu_allowance().usable;
}

// Runs parts[i]() on the pool for every i and waits for all of them on an io_context, as a split request
// does.
template <typename Job>
void run_parts(worker_pool& pool, net::io_context& ioc, std::vector<Job>& parts)
{
    for (auto& job : parts) {
        pool.async_submit(job, net::bind_executor(ioc, [](auto&&) {}));
    }
    ioc.restart();
    ioc.run();
}

void BM_PrimesSplit(benchmark::State& state)
{
    const auto parts = static_cast<unsigned>(state.range(0));
    const std::uint64_t n = 2'000'000;
    net::io_context ioc{1};
    worker_pool pool{cpus(), 1024};
    auto bounds = duet::kernels::split_primes(n, parts);
    struct part
    {
        std::uint64_t lo, hi;
        std::uint64_t operator()() const { return duet::kernels::count_primes_in(lo, hi); }
    };
    std::vector<part> jobs;
    for (unsigned i = 0; i < parts; ++i) {
        jobs.push_back({bounds[i], bounds[i + 1]});
    }
    for (auto _ : state) {
        run_parts(pool, ioc, jobs);
    }
    state.counters["workers"] = pool.size();
}
BENCHMARK(BM_PrimesSplit)->DenseRange(1, 4)->Arg(8)->Unit(benchmark::kMillisecond)->UseRealTime();

void BM_MandelbrotSplit(benchmark::State& state)
{
    const auto parts = static_cast<std::uint32_t>(state.range(0));
    net::io_context ioc{1};
    worker_pool pool{cpus(), 1024};
    struct part
    {
        std::uint32_t offset, stride;
        duet::kernels::mandelbrot_result operator()() const
        {
            return duet::kernels::mandelbrot_rows(512, 500, offset, stride, nullptr);
        }
    };
    std::vector<part> jobs;
    for (std::uint32_t i = 0; i < parts; ++i) {
        jobs.push_back({i, parts});
    }
    for (auto _ : state) {
        run_parts(pool, ioc, jobs);
    }
    state.counters["workers"] = pool.size();
}
BENCHMARK(BM_MandelbrotSplit)->DenseRange(1, 4)->Arg(8)->Unit(benchmark::kMillisecond)->UseRealTime();

} // namespace
