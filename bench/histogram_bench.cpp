// What recording a latency costs on the hot path.
#include <duet/histogram.hpp>

#include <benchmark/benchmark.h>

#include <chrono>
#include <random>
#include <vector>

namespace {

std::vector<std::uint64_t> latencies()
{
    std::mt19937_64 rng{1};
    std::lognormal_distribution<double> d{std::log(200'000.0), 1.0}; // around 200 us, in ns
    std::vector<std::uint64_t> v(4096);
    for (auto& x : v) {
        x = static_cast<std::uint64_t>(d(rng));
    }
    return v;
}

void BM_HistogramRecord(benchmark::State& state)
{
    duet::histogram h;
    auto values = latencies();
    std::size_t i = 0;
    for (auto _ : state) {
        h.record(values[i++ & 4095]);
    }
    benchmark::DoNotOptimize(h.count());
}
BENCHMARK(BM_HistogramRecord);

void BM_WindowedHistogramRecord(benchmark::State& state)
{
    duet::windowed_histogram h{std::chrono::seconds{10}};
    auto values = latencies();
    std::size_t i = 0;
    auto now = std::chrono::steady_clock::now();
    for (auto _ : state) {
        h.record(values[i++ & 4095], now);
    }
    benchmark::DoNotOptimize(h.since_start().count());
}
BENCHMARK(BM_WindowedHistogramRecord);

} // namespace
