#pragma once
// Numbers appended to a string as decimal text, without a format string: the response path writes every
// number this way, at a fraction of fmt's cost through a back_insert_iterator (docs/PERFORMANCE.md).

#include <array>
#include <charconv>
#include <concepts>
#include <cstdint>
#include <string>

namespace duet::server {

template <std::integral T>
void append_int(std::string& out, T n)
{
    std::array<char, 24> digits; // not zeroed: to_chars writes the part that is appended
    auto [end, ec] = std::to_chars(digits.data(), digits.data() + digits.size(), n);
    // (pointer, length): the (pointer, pointer) overload is a replace, twice the instructions.
    out.append(digits.data(), static_cast<std::size_t>(end - digits.data()));
}

/// n / 1000 with exactly three decimals (3217 → "3.217", 5 → "0.005"); a negative n is written as 0.000.
inline void append_thousandths(std::string& out, std::int64_t n)
{
    n = n < 0 ? 0 : n;
    append_int(out, n / 1000);
    const auto frac = static_cast<int>(n % 1000);
    const std::array<char, 4> decimals{'.', static_cast<char>('0' + frac / 100),
                                       static_cast<char>('0' + frac / 10 % 10),
                                       static_cast<char>('0' + frac % 10)};
    out.append(decimals.data(), decimals.size());
}

} // namespace duet::server
