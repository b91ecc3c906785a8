// The histogram: its error bound, percentiles, merging, and the windowed histogram's forgetting.
#include <duet/histogram.hpp>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

namespace {

using namespace std::chrono_literals;
using duet::histogram;
using duet::windowed_histogram;

// The exact nearest-rank percentile of a sorted sample, as histogram::percentile defines it.
std::uint64_t exact_percentile(const std::vector<std::uint64_t>& sorted, double p)
{
    if (p <= 0) {
        return sorted.front();
    }
    auto rank = static_cast<std::size_t>(std::ceil(p / 100.0 * static_cast<double>(sorted.size())));
    return sorted[std::clamp<std::size_t>(rank, 1, sorted.size()) - 1];
}

void expect_within_one_percent(const std::vector<std::uint64_t>& values, const char* what)
{
    histogram h;
    for (auto v : values) {
        h.record(v);
    }
    auto sorted = values;
    std::sort(sorted.begin(), sorted.end());
    for (double p : {0.0, 1.0, 10.0, 25.0, 50.0, 75.0, 90.0, 99.0, 99.9, 99.99, 100.0}) {
        auto exact = static_cast<double>(exact_percentile(sorted, p));
        auto got = static_cast<double>(h.percentile(p));
        EXPECT_LE(std::abs(got - exact), exact * 0.01 + 0.5)
            << what << " p" << p << ": " << got << " vs " << exact;
    }
    EXPECT_EQ(h.count(), values.size());
    EXPECT_EQ(h.min(), sorted.front());
    EXPECT_EQ(h.max(), sorted.back());
}

TEST(Histogram, EmptyHistogramAnswersZero)
{
    histogram h;
    EXPECT_EQ(h.count(), 0U);
    EXPECT_EQ(h.percentile(50), 0U);
    EXPECT_EQ(h.max(), 0U);
    EXPECT_EQ(h.mean(), 0.0);
}

TEST(Histogram, SmallValuesAreExact)
{
    histogram h;
    for (std::uint64_t v = 0; v < 128; ++v) {
        h.record(v);
    }
    for (std::uint64_t v = 0; v < 128; ++v) {
        EXPECT_EQ(h.count_at_or_below(v), v + 1);
    }
    EXPECT_EQ(h.percentile(50), 63U);
}

TEST(Histogram, EveryBucketKeepsRelativeErrorUnderOnePercentFromOneMicrosecondToAnHour)
{
    // Walk values geometrically from 1 us to 2 h (in ns); each is reported within 1% of itself.
    for (double v = 1000; v < 2.0 * 3600e9; v *= 1.0137) {
        histogram h;
        auto value = static_cast<std::uint64_t>(v);
        h.record(value);
        h.record(value + 1); // two values so that p50 is not clamped to min/max exactly
        auto got = static_cast<double>(h.percentile(50));
        EXPECT_LE(std::abs(got - static_cast<double>(value)), 0.01 * static_cast<double>(value)) << value;
        auto idx = histogram::bucket_of(value);
        EXPECT_LE(histogram::bucket_lowest(idx), value);
        EXPECT_GE(histogram::bucket_highest(idx), value);
    }
}

TEST(Histogram, BucketsTileTheRangeWithoutGaps)
{
    for (std::size_t i = 1; i < histogram::bucket_count; ++i) {
        ASSERT_EQ(histogram::bucket_lowest(i), histogram::bucket_highest(i - 1) + 1) << i;
    }
    EXPECT_EQ(histogram::bucket_highest(histogram::bucket_count - 1), histogram::max_trackable);
}

TEST(Histogram, PercentilesOfKnownDistributionsWithinOnePercent)
{
    std::mt19937_64 rng{42};
    std::vector<std::uint64_t> uniform, exponential, lognormal;
    std::uniform_int_distribution<std::uint64_t> u{1000, 10'000'000};
    std::exponential_distribution<double> e{1.0 / 2e6};
    std::lognormal_distribution<double> ln{std::log(1e6), 1.5};
    for (int i = 0; i < 200000; ++i) {
        uniform.push_back(u(rng));
        exponential.push_back(1000 + static_cast<std::uint64_t>(e(rng)));
        lognormal.push_back(1000 + static_cast<std::uint64_t>(ln(rng)));
    }
    expect_within_one_percent(uniform, "uniform");
    expect_within_one_percent(exponential, "exponential");
    expect_within_one_percent(lognormal, "lognormal");
}

TEST(Histogram, MeanAndSumAreExact)
{
    histogram h;
    h.record(1000);
    h.record(3000);
    h.record_n(5000, 2);
    EXPECT_EQ(h.count(), 4U);
    EXPECT_DOUBLE_EQ(h.sum(), 14000.0);
    EXPECT_DOUBLE_EQ(h.mean(), 3500.0);
}

TEST(Histogram, StandardDeviationIsCloseToTheExactOne)
{
    std::mt19937_64 rng{3};
    std::normal_distribution<double> d{5e6, 1e6};
    histogram h;
    double sum = 0, squares = 0;
    const int n = 100000;
    for (int i = 0; i < n; ++i) {
        auto v = static_cast<std::uint64_t>(std::max(0.0, d(rng)));
        h.record(v);
        sum += static_cast<double>(v);
        squares += static_cast<double>(v) * static_cast<double>(v);
    }
    double mean = sum / n;
    double exact = std::sqrt(squares / n - mean * mean);
    EXPECT_NEAR(h.stdev(), exact, exact * 0.01);
    histogram one;
    one.record(42);
    EXPECT_EQ(one.stdev(), 0.0);
}

TEST(Histogram, MergeEqualsRecordingEverythingInOne)
{
    std::mt19937_64 rng{7};
    std::uniform_int_distribution<std::uint64_t> d{0, 5'000'000'000};
    histogram a, b, all;
    for (int i = 0; i < 50000; ++i) {
        auto v = d(rng);
        (i % 3 == 0 ? a : b).record(v);
        all.record(v);
    }
    histogram merged;
    merged.merge(a);
    merged.merge(b);
    EXPECT_EQ(merged, all);
    EXPECT_EQ(merged.percentile(99), all.percentile(99));
}

TEST(Histogram, ValuesBeyondTheRangeAreCountedNotLost)
{
    histogram h;
    h.record(histogram::max_trackable + 12345);
    EXPECT_EQ(h.count(), 1U);
    EXPECT_EQ(h.overflow(), 1U);
    EXPECT_EQ(h.max(), histogram::max_trackable + 12345);
    EXPECT_EQ(h.percentile(100), histogram::max_trackable + 12345);
}

TEST(Histogram, JsonRoundTripIsLossless)
{
    histogram h;
    for (std::uint64_t v : {0ULL, 5ULL, 127ULL, 128ULL, 999ULL, 123456789ULL, 3'600'000'000'000ULL}) {
        h.record(v);
    }
    auto j = h.to_json();
    EXPECT_EQ(j["unit"], "ns");
    EXPECT_EQ(j["buckets"].size(), 7U);
    auto back = histogram::from_json(nlohmann::json::parse(j.dump()));
    EXPECT_EQ(back, h);
    j["count"] = 99;
    EXPECT_THROW(histogram::from_json(j), std::invalid_argument);
}

TEST(Histogram, CountAtOrBelowMakesCumulativeBuckets)
{
    histogram h;
    for (std::uint64_t v = 1; v <= 1000; ++v) {
        h.record(v * 1'000'000); // 1 ms .. 1 s
    }
    EXPECT_NEAR(static_cast<double>(h.count_at_or_below(100'000'000)), 100.0, 2.0);
    EXPECT_NEAR(static_cast<double>(h.count_at_or_below(500'000'000)), 500.0, 6.0);
    EXPECT_EQ(h.count_at_or_below(2'000'000'000), 1000U);
    EXPECT_EQ(h.count_at_or_below(0), 0U);
}

TEST(WindowedHistogram, RecentWindowForgetsOldValuesAndTotalKeepsThem)
{
    windowed_histogram w{10s};
    auto t0 = std::chrono::steady_clock::time_point{} + 1000s;
    for (int i = 0; i < 100; ++i) {
        w.record(1'000'000, t0); // 1 ms, at t0
    }
    w.record(50'000'000, t0 + 5s);
    EXPECT_EQ(w.recent(t0 + 5s).count(), 101U);
    EXPECT_EQ(w.recent(t0 + 5s).percentile(100), 50'000'000U);

    // 12 s later the 1 ms values have left the window; the 50 ms one is 7 s old and still in it.
    auto later = w.recent(t0 + 12s);
    EXPECT_EQ(later.count(), 1U);
    EXPECT_EQ(later.percentile(50), 50'000'000U);
    EXPECT_EQ(w.since_start().count(), 101U);

    // Recording much later reuses slots without mixing periods.
    w.record(2'000'000, t0 + 100s);
    EXPECT_EQ(w.recent(t0 + 100s).count(), 1U);
    EXPECT_EQ(w.since_start().count(), 102U);
    EXPECT_EQ(w.window(), 10s);
}

} // namespace
