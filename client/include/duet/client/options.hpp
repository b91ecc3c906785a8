#pragma once
// What a duet-load run is asked to do: the target URL, the load's shape, and the request written once.

#include <chrono>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace duet::client {

/// A target: http://host[:port][/path][?query]. Only plain HTTP.
struct url
{
    std::string host; ///< as given: a name, an IPv4 literal or an IPv6 literal without brackets
    std::uint16_t port = 80;
    std::string target = "/"; ///< path and query, as sent in the request line

    /// "host:port", with brackets for IPv6, for the Host header and messages.
    std::string authority() const;
    std::string to_string() const { return "http://" + authority() + target; }
};

/// Bad usage, in one line for the user: an invalid URL, flag value or combination.
class usage_error : public std::runtime_error
{
public:
    using std::runtime_error::runtime_error;
};

/// Parses an http:// URL; throws usage_error naming what is wrong.
url parse_url(std::string_view text);

/// Parses a duration as wrk writes them: "10s", "1m", "500ms", "2h", or a bare number of seconds.
std::chrono::nanoseconds parse_duration(std::string_view text);

/// Everything one run needs; validate() checks the combinations.
struct run_options
{
    url target;
    std::string method = "GET";
    std::vector<std::pair<std::string, std::string>> headers;
    std::string body;
    unsigned connections = 10;
    unsigned threads = 2;
    std::optional<std::chrono::nanoseconds> duration; ///< -d: how long to measure (after the warm-up)
    std::optional<std::uint64_t> requests;            ///< -n: how many requests in all (instead of -d)
    std::optional<double> rate;                       ///< -R: requests per second in all; open loop
    std::chrono::nanoseconds timeout = std::chrono::seconds{2};
    std::chrono::nanoseconds connect_timeout = std::chrono::seconds{2};
    std::chrono::nanoseconds warmup{0};
    std::uint64_t max_body_bytes = 8 * 1024 * 1024; ///< a response body larger than this is a read error
    bool server_view = true;                        ///< aggregate the reports in duet's responses

    /// Throws usage_error for an impossible combination (e.g. more threads than connections, zero rate).
    void validate() const;

    /// The request's bytes, built once and sent as they are for every request (as wrk does).
    std::string request_bytes() const;
};

} // namespace duet::client
