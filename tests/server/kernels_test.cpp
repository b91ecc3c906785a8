#include <duet/server/kernels.hpp>

#include <gtest/gtest.h>

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
