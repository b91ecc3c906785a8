// The CPU kernels against known values, and split points of equal work.
#include <duet/server/kernels.hpp>

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <vector>

namespace {

using duet::kernels::count_primes;
using duet::kernels::count_primes_in;
using duet::kernels::fib;

TEST(Kernels, CountPrimesMatchesKnownValuesOfPi)
{
    EXPECT_EQ(count_primes(0), 0U);
    EXPECT_EQ(count_primes(1), 0U);
    EXPECT_EQ(count_primes(2), 1U);
    EXPECT_EQ(count_primes(3), 2U);
    EXPECT_EQ(count_primes(10), 4U);
    EXPECT_EQ(count_primes(100), 25U);
    EXPECT_EQ(count_primes(1000), 168U);
    EXPECT_EQ(count_primes(7919), 1000U); // the 1000th prime is 7919
    EXPECT_EQ(count_primes(1000000), 78498U);
}

TEST(Kernels, CountPrimesInRangesAddsUp)
{
    // Any split of [0, n] gives the same total: what a fork-join splitter relies on.
    const std::uint64_t n = 200000;
    std::uint64_t total = 0;
    for (std::uint64_t lo = 0; lo <= n; lo += 12345) {
        total += count_primes_in(lo, std::min(lo + 12345, n + 1));
    }
    EXPECT_EQ(total, count_primes(n));
    EXPECT_EQ(count_primes_in(5, 5), 0U);
    EXPECT_EQ(count_primes_in(24, 29), 0U);
    EXPECT_EQ(count_primes_in(24, 30), 1U);
}

TEST(Kernels, FibonacciMatchesKnownValues)
{
    const std::uint64_t expected[] = {0, 1, 1, 2, 3, 5, 8, 13, 21, 34, 55};
    for (std::uint32_t i = 0; i < std::size(expected); ++i) {
        EXPECT_EQ(fib(i), expected[i]) << "F(" << i << ")";
    }
    EXPECT_EQ(fib(30), 832040U);
    EXPECT_EQ(fib(35), 9227465U);
}

} // namespace

namespace {

using duet::kernels::mandelbrot_rows;
using duet::kernels::split_primes;
using duet::kernels::trial_divisions_in;

TEST(Kernels, SplitPrimesCoversTheRangeInOrder)
{
    for (unsigned parts : {1U, 2U, 3U, 7U, 64U}) {
        auto b = split_primes(1'000'000, parts);
        ASSERT_EQ(b.size(), parts + 1);
        EXPECT_EQ(b.front(), 0U);
        EXPECT_EQ(b.back(), 1'000'001U);
        EXPECT_TRUE(std::is_sorted(b.begin(), b.end()));
        std::uint64_t total = 0;
        for (unsigned i = 0; i < parts; ++i) {
            total += count_primes_in(b[i], b[i + 1]);
        }
        EXPECT_EQ(total, 78498U) << parts << " parts";
    }
    auto tiny = split_primes(3, 8); // more parts than numbers: empty parts, still in order
    EXPECT_EQ(tiny.back(), 4U);
    EXPECT_TRUE(std::is_sorted(tiny.begin(), tiny.end()));
}

TEST(Kernels, SplitPrimesBalancesWorkNotLength)
{
    const std::uint64_t n = 2'000'000;
    const unsigned parts = 4;
    auto spread = [](const std::vector<std::uint64_t>& b) {
        std::uint64_t lo = UINT64_MAX, hi = 0;
        for (std::size_t i = 0; i + 1 < b.size(); ++i) {
            auto w = trial_divisions_in(b[i], b[i + 1]);
            lo = std::min(lo, w);
            hi = std::max(hi, w);
        }
        return static_cast<double>(hi) / static_cast<double>(lo);
    };
    std::vector<std::uint64_t> equal_length;
    for (unsigned i = 0; i <= parts; ++i) {
        equal_length.push_back(i == parts ? n + 1 : (n + 1) * i / parts);
    }
    // Equal lengths: the last part does far more trial divisions than the first.
    EXPECT_GT(spread(equal_length), 1.8);
    // Equal work: within 15% of each other.
    EXPECT_LT(spread(split_primes(n, parts)), 1.15);
}

TEST(Kernels, MandelbrotRowsSplitIntoAnyNumberOfPartsGiveTheSameImage)
{
    const std::uint32_t size = 97, iter = 300;
    std::vector<std::uint8_t> whole(size * size), pieced(size * size);
    auto expected = mandelbrot_rows(size, iter, 0, 1, whole.data());
    EXPECT_GT(expected.in_set, 0U);
    EXPECT_LT(expected.in_set, static_cast<std::uint64_t>(size) * size);
    for (std::uint32_t parts = 1; parts <= 8; ++parts) {
        std::fill(pieced.begin(), pieced.end(), std::uint8_t{7});
        duet::kernels::mandelbrot_result sum;
        for (std::uint32_t i = 0; i < parts; ++i) {
            sum += mandelbrot_rows(size, iter, i, parts, pieced.data());
        }
        EXPECT_EQ(sum, expected) << parts << " parts";
        EXPECT_EQ(pieced, whole) << parts << " parts";
    }
}

TEST(Kernels, MandelbrotKnowsTheSetFromOutside)
{
    // One pixel: the centre of a 1x1 image is (-0.5, 0), inside the main cardioid.
    EXPECT_EQ(mandelbrot_rows(1, 100, 0, 1, nullptr).in_set, 1U);
    std::uint8_t px = 0;
    mandelbrot_rows(1, 100, 0, 1, &px);
    EXPECT_EQ(px, 0U); // in the set: black
}

} // namespace
