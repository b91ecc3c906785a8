#pragma once

#include <cstdint>

// CPU kernels: pure, deterministic functions of their input that burn CPU without touching memory much, so a
// request's cost is predictable and measurable. No I/O, no allocation, no dependencies: testable alone.
namespace duet::kernels {

/// Primes p with lo <= p < hi, by trial division: cost per number grows like sqrt(p), so later ranges cost
/// more than earlier ones of the same length (a splitter must balance by work, not by length).
std::uint64_t count_primes_in(std::uint64_t lo, std::uint64_t hi);

/// Primes p <= n.
inline std::uint64_t count_primes(std::uint64_t n)
{
    return count_primes_in(0, n + 1);
}

/// Fibonacci number F(n) by naive double recursion: about 1.6^n calls, exponential CPU and no memory.
/// F(0) = 0, F(1) = 1; n <= 92 fits in 64 bits.
std::uint64_t fib(std::uint32_t n);

} // namespace duet::kernels
