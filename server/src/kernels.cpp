#include <duet/server/kernels.hpp>

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

} // namespace duet::kernels
