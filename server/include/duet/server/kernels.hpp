#pragma once
// CPU kernels: pure, deterministic functions of their input that burn CPU without touching memory much, so a
// request's cost is predictable and measurable. No I/O, no locks, no dependencies: testable alone.

#include <cstdint>
#include <vector>

namespace duet::kernels {

/// Primes p with lo <= p < hi, by trial division: cost per number grows like sqrt(p), so later ranges cost
/// more than earlier ones of the same length (a splitter must balance by work, not by length).
std::uint64_t count_primes_in(std::uint64_t lo, std::uint64_t hi);

/// The trial divisions count_primes_in(lo, hi) performs: a deterministic measure of its work, for tests and
/// benchmarks of how evenly a split shares it.
std::uint64_t trial_divisions_in(std::uint64_t lo, std::uint64_t hi);

/// Primes p <= n.
inline std::uint64_t count_primes(std::uint64_t n)
{
    return count_primes_in(0, n + 1);
}

/// Splits [0, n] into `parts` consecutive ranges of about equal trial-division work, not equal length: the
/// cost of testing x grows like sqrt(x), so the boundaries follow the cumulative cost x^1.5. Returns parts +
/// 1 boundaries b with b[0] = 0 and b[parts] = n + 1; part i is [b[i], b[i+1]). No allocation beyond the
/// result.
std::vector<std::uint64_t> split_primes(std::uint64_t n, unsigned parts);

/// Fibonacci number F(n) by naive double recursion: about 1.6^n calls, exponential CPU and no memory.
/// F(0) = 0, F(1) = 1; n <= 92 fits in 64 bits.
std::uint64_t fib(std::uint32_t n);

/// What a Mandelbrot render found: points that never escaped, and a checksum of every pixel's escape count
/// weighted by its position (a sum, so it is the same however the rows are split).
struct mandelbrot_result
{
    std::uint64_t in_set = 0;
    std::uint64_t checksum = 0;

    mandelbrot_result& operator+=(const mandelbrot_result& o)
    {
        in_set += o.in_set;
        checksum += o.checksum;
        return *this;
    }
    friend bool operator==(const mandelbrot_result&, const mandelbrot_result&) = default;
};

/// Renders the rows r of a size x size escape-time image of the region [-2, 1] x [-1.5, 1.5] with
/// r % stride == offset (interleaved rows balance the work: the middle rows cost most), at most max_iter
/// iterations per point. If image is not null it receives one byte per pixel of those rows (row-major, size x
/// size bytes in all): 0 for points in the set, otherwise 1 + 254 x sqrt(escape / max_iter), so a PGM shows
/// it.
mandelbrot_result mandelbrot_rows(std::uint32_t size, std::uint32_t max_iter, std::uint32_t offset,
                                  std::uint32_t stride, std::uint8_t* image);

} // namespace duet::kernels
