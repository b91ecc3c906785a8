// Request ids: a random prefix fixed per server and a sequence, or the client's own id when it is safe to
// echo.
#include <duet/server/request_ids.hpp>

#include <algorithm>
#include <array>
#include <charconv>
#include <random>

namespace duet::server {

namespace {

bool valid_client_id(std::string_view id)
{
    return !id.empty() && id.size() <= request_ids::max_client_id &&
           std::all_of(id.begin(), id.end(), [](char c) {
               return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                      c == '.' || c == '_' || c == ':' || c == '-';
           });
}

} // namespace

request_ids::request_ids()
{
    // "{:08x}-", once per server.
    constexpr std::string_view hex = "0123456789abcdef";
    const std::uint32_t random = std::random_device{}();
    prefix_.assign(8, '0');
    for (std::size_t i = 0; i < 8; ++i) {
        prefix_[7 - i] = hex[(random >> (4 * i)) & 0xfU];
    }
    prefix_.push_back('-');
}

std::string request_ids::next(std::string_view from_client)
{
    if (valid_client_id(from_client)) {
        return std::string{from_client};
    }
    // prefix + "{:x}", without a format string: one id per request.
    std::array<char, 16> digits; // not zeroed: to_chars writes the part that is appended
    auto [end, ec] = std::to_chars(digits.data(), digits.data() + digits.size(), ++sequence_, 16);
    std::string id = prefix_; // in the string's own buffer, as long as the id is up to 15 characters
    id.append(digits.data(), static_cast<std::size_t>(end - digits.data()));
    return id;
}

} // namespace duet::server
