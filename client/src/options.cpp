// Parsing a run's URL and durations, checking option combinations, and the request's bytes, built once.
#include <duet/client/options.hpp>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>

namespace duet::client {

std::string url::authority() const
{
    bool ipv6 = host.find(':') != std::string::npos;
    return (ipv6 ? "[" + host + "]" : host) + ":" + std::to_string(port);
}

url parse_url(std::string_view text)
{
    const std::string_view scheme = "http://";
    if (text.substr(0, 8) == "https://") {
        throw usage_error{"https is not supported: duet-load speaks plain HTTP/1.1 (use http://)"};
    }
    if (text.substr(0, scheme.size()) != scheme) {
        throw usage_error{"invalid URL '" + std::string{text} + "': it must start with http://"};
    }
    auto rest = text.substr(scheme.size());
    auto slash = rest.find_first_of("/?");
    auto authority = rest.substr(0, slash);
    url u;
    // The path, "/" when there is none (also before a query). Appended: GCC 12 at -O3 reports a false
    // -Wrestrict for an insert at the front.
    const auto path = slash == std::string_view::npos ? std::string_view{} : rest.substr(slash);
    u.target.clear();
    if (path.empty() || path.front() == '?') {
        u.target.push_back('/');
    }
    u.target.append(path);
    std::string_view port_text;
    if (!authority.empty() && authority.front() == '[') {
        auto close = authority.find(']');
        if (close == std::string_view::npos) {
            throw usage_error{"invalid URL '" + std::string{text} + "': unclosed [ in the host"};
        }
        u.host = std::string{authority.substr(1, close - 1)};
        auto after = authority.substr(close + 1);
        if (!after.empty()) {
            if (after.front() != ':') {
                throw usage_error{"invalid URL '" + std::string{text} + "': junk after the IPv6 host"};
            }
            port_text = after.substr(1);
        }
    } else {
        auto colon = authority.rfind(':');
        u.host = std::string{authority.substr(0, colon)};
        if (colon != std::string_view::npos) {
            port_text = authority.substr(colon + 1);
        }
    }
    if (u.host.empty()) {
        throw usage_error{"invalid URL '" + std::string{text} + "': no host"};
    }
    if (authority.find('@') != std::string_view::npos) {
        throw usage_error{"invalid URL '" + std::string{text} + "': user information is not supported"};
    }
    if (!port_text.empty() || (authority.find(':') != std::string_view::npos && authority.front() != '[')) {
        unsigned port = 0;
        auto [ptr, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
        if (port_text.empty() || ec != std::errc{} || ptr != port_text.data() + port_text.size() ||
            port == 0 || port > 65535) {
            throw usage_error{"invalid URL '" + std::string{text} + "': the port must be 1-65535"};
        }
        u.port = static_cast<std::uint16_t>(port);
    }
    if (u.target.find_first_of(" \r\n") != std::string::npos) {
        throw usage_error{"invalid URL '" + std::string{text} +
                          "': spaces and line breaks must be %-encoded"};
    }
    return u;
}

std::chrono::nanoseconds parse_duration(std::string_view text)
{
    double value = 0;
    auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    std::string_view unit{ptr, static_cast<std::size_t>(text.data() + text.size() - ptr)};
    if (text.empty() || ec != std::errc{} || value < 0 || !std::isfinite(value)) {
        throw usage_error{"invalid duration '" + std::string{text} + "': write it like 10s, 1m, 500ms or 2h"};
    }
    double seconds = 0;
    if (unit.empty() || unit == "s") {
        seconds = value;
    } else if (unit == "ms") {
        seconds = value / 1000;
    } else if (unit == "us") {
        seconds = value / 1e6;
    } else if (unit == "m") {
        seconds = value * 60;
    } else if (unit == "h") {
        seconds = value * 3600;
    } else {
        throw usage_error{"invalid duration '" + std::string{text} + "': the unit must be ms, s, m or h"};
    }
    if (seconds > 30 * 24 * 3600.0) {
        throw usage_error{"invalid duration '" + std::string{text} + "': at most 30 days"};
    }
    return std::chrono::nanoseconds{static_cast<std::int64_t>(std::llround(seconds * 1e9))};
}

void run_options::validate() const
{
    if (connections == 0) {
        throw usage_error{"--connections must be at least 1"};
    }
    if (threads == 0) {
        throw usage_error{"--threads must be at least 1"};
    }
    if (threads > connections) {
        throw usage_error{"--threads (" + std::to_string(threads) + ") must not exceed --connections (" +
                          std::to_string(connections) + "): every thread needs a connection"};
    }
    if (duration && requests) {
        throw usage_error{"give --duration or --requests, not both"};
    }
    if (duration && duration->count() == 0) {
        throw usage_error{"--duration must be more than 0"};
    }
    if (requests && *requests == 0) {
        throw usage_error{"--requests must be at least 1"};
    }
    if (rate && !(*rate > 0)) {
        throw usage_error{"--rate must be more than 0 requests per second"};
    }
    if (timeout.count() <= 0 || connect_timeout.count() <= 0) {
        throw usage_error{"--timeout and --connect-timeout must be more than 0"};
    }
    if (method.empty() || !std::all_of(method.begin(), method.end(),
                                       [](char c) { return std::isupper(static_cast<unsigned char>(c)); })) {
        throw usage_error{"--method must be an HTTP method in capitals, e.g. GET or POST"};
    }
    for (const auto& [name, value] : headers) {
        if (name.empty() || name.find_first_of(" :\r\n") != std::string::npos ||
            value.find_first_of("\r\n") != std::string::npos) {
            throw usage_error{"invalid header '" + name + ": " + value + "' (write -H 'Name: value')"};
        }
    }
}

std::string run_options::request_bytes() const
{
    auto lower = [](std::string s) {
        std::transform(s.begin(), s.end(), s.begin(),
                       [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
        return s;
    };
    auto given = [&](const char* name) {
        return std::any_of(headers.begin(), headers.end(),
                           [&](const auto& h) { return lower(h.first) == name; });
    };
    std::string r = method + " " + target.target + " HTTP/1.1\r\n";
    if (!given("host")) {
        r += "Host: " + (target.port == 80 ? target.host : target.authority()) + "\r\n";
    }
    for (const auto& [name, value] : headers) {
        r += name + ": " + value + "\r\n";
    }
    if (!body.empty() && !given("content-length")) {
        r += "Content-Length: " + std::to_string(body.size()) + "\r\n";
    }
    r += "\r\n";
    r += body;
    return r;
}

} // namespace duet::client
