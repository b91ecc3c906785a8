// The CPU kernels: trial-division primes, naive Fibonacci, the Mandelbrot escape count, and equal-work split
// points.
#include <duet/server/kernels.hpp>

#include <algorithm>
#include <cmath>

namespace duet::kernels {
namespace {

bool is_prime(std::uint64_t x)
{
    if (x < 4) {
        return x >= 2;
    }
    if (x % 2 == 0 || x % 3 == 0) {
        return false;
    }
    // Every prime above 3 is 6k ± 1.
    for (std::uint64_t d = 5; d * d <= x; d += 6) {
        if (x % d == 0 || x % (d + 2) == 0) {
            return false;
        }
    }
    return true;
}

} // namespace

std::uint64_t trial_divisions_in(std::uint64_t lo, std::uint64_t hi)
{
    // The same steps as is_prime, counted instead of answered.
    std::uint64_t steps = 0;
    for (std::uint64_t x = lo; x < hi; ++x) {
        steps += 2; // the tests by 2 and 3
        if (x < 5 || x % 2 == 0 || x % 3 == 0) {
            continue;
        }
        for (std::uint64_t d = 5; d * d <= x; d += 6) {
            ++steps;
            if (x % d == 0 || x % (d + 2) == 0) {
                break;
            }
        }
    }
    return steps;
}

std::uint64_t count_primes_in(std::uint64_t lo, std::uint64_t hi)
{
    std::uint64_t count = 0;
    for (std::uint64_t x = lo; x < hi; ++x) {
        count += is_prime(x) ? 1U : 0U;
    }
    return count;
}

std::uint64_t fib(std::uint32_t n)
{
    return n < 2 ? n : fib(n - 1) + fib(n - 2);
}

std::vector<std::uint64_t> split_primes(std::uint64_t n, unsigned parts)
{
    parts = std::max(1U, parts);
    std::vector<std::uint64_t> bounds(parts + 1);
    bounds[parts] = n + 1;
    // The work up to x is about x^1.5 / ln x: primes (density 1 / ln x) cost sqrt(x) divisions each, and
    // composites stop early. Boundary i is where that reaches i / parts of the total, found by bisection.
    auto work = [](double x) { return x < 3 ? 0.0 : x * std::sqrt(x) / std::log(x); };
    const double total = work(static_cast<double>(n + 1));
    for (unsigned i = 1; i < parts; ++i) {
        const double target = total * static_cast<double>(i) / static_cast<double>(parts);
        std::uint64_t lo = bounds[i - 1];
        std::uint64_t hi = n + 1;
        while (lo < hi) {
            auto mid = lo + (hi - lo) / 2;
            if (work(static_cast<double>(mid)) < target) {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        bounds[i] = lo;
    }
    return bounds;
}

mandelbrot_result mandelbrot_rows(std::uint32_t size, std::uint32_t max_iter, std::uint32_t offset,
                                  std::uint32_t stride, std::uint8_t* image)
{
    mandelbrot_result r;
    const double scale = 3.0 / static_cast<double>(size);
    for (std::uint32_t row = offset; row < size; row += std::max(1U, stride)) {
        const double ci = -1.5 + (static_cast<double>(row) + 0.5) * scale;
        for (std::uint32_t col = 0; col < size; ++col) {
            const double cr = -2.0 + (static_cast<double>(col) + 0.5) * scale;
            double zr = 0;
            double zi = 0;
            std::uint32_t it = 0;
            while (it < max_iter && zr * zr + zi * zi <= 4.0) {
                const double t = zr * zr - zi * zi + cr;
                zi = 2.0 * zr * zi + ci;
                zr = t;
                ++it;
            }
            const std::uint64_t index = static_cast<std::uint64_t>(row) * size + col;
            r.checksum += static_cast<std::uint64_t>(it) * (index + 1);
            if (it == max_iter) {
                ++r.in_set;
            }
            if (image != nullptr) {
                // A square root brightens the slow escapes near the set's edge, where the detail is.
                const double shade = std::sqrt(static_cast<double>(it) / static_cast<double>(max_iter));
                image[index] =
                    it == max_iter ? std::uint8_t{0} : static_cast<std::uint8_t>(1 + 254.0 * shade);
            }
        }
    }
    return r;
}

} // namespace duet::kernels
