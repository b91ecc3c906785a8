#pragma once
// The lean request and response types: what duet reads from a request, and the few fields it sets on a
// response.

#include <boost/beast/http/status.hpp>
#include <boost/beast/http/verb.hpp>

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace duet::server {

/// A request as duet reads it: what routing, the report and the connection need, and nothing more. Beast's
/// parser (request_parser) fills it in; the other header fields are checked and counted, never stored, so
/// reading a request allocates nothing once a connection's strings have grown to fit.
struct request
{
    request() = default;
    request(boost::beast::http::verb m, std::string_view t, unsigned v)
        : method{m}, target{t}, version{v}, keep_alive{v >= 11}
    {}

    boost::beast::http::verb method = boost::beast::http::verb::get;
    std::string unknown_method; ///< the method as sent, when it is none Beast knows (method is unknown)
    std::string target;
    unsigned version = 11;  ///< 10 or 11
    bool keep_alive = true; ///< the connection persists after the response, as the version and fields say
    bool expect_continue = false; ///< Expect: 100-continue
    std::string request_id;       ///< X-Request-Id as the client sent it; empty when there is none
    std::string accept;           ///< Accept, its fields joined by ", " (kept for GET /'s negotiation)
    std::string body;

    std::string_view method_string() const
    {
        if (method == boost::beast::http::verb::unknown) {
            return unknown_method;
        }
        auto known = boost::beast::http::to_string(method);
        return {known.data(), known.size()};
    }
};

/// The three figures of the Server-Timing header.
struct timing
{
    std::chrono::nanoseconds queue{};
    std::chrono::nanoseconds service{};
    std::chrono::nanoseconds total{};
};

/// A response as duet sends it: the status, the few header fields duet ever sets, and the body. wire_form
/// turns it into bytes (Content-Length, Connection and Server are written from these members).
struct response
{
    response() = default;
    response(boost::beast::http::status s, unsigned v) : status{s}, version{v} {}

    boost::beast::http::status status = boost::beast::http::status::ok;
    unsigned version = 11;
    bool keep_alive = true; ///< false: the connection closes after this response, whatever the client asked
    std::string_view content_type; ///< static text; no Content-Type field when empty
    std::string body;
    std::string request_id;                    ///< X-Request-Id; none when empty
    std::optional<timing> server_timing;       ///< Server-Timing
    std::string allow;                         ///< Allow (405); none when empty
    std::optional<std::int64_t> retry_after_s; ///< Retry-After (503)
    std::string_view extra_fields; ///< static header lines, each ending in CRLF (the dashboard's policy)
    bool vary_accept = false;      ///< Vary: Accept (GET /, whose form depends on it)
    bool event_stream = false;     ///< the header of an event stream: no length, not to be cached or buffered
    bool head_only = false;        ///< a HEAD: the header with the length of the body, and not the body
    std::shared_ptr<void> lease;   ///< released with the response: counts big answers in flight (/trace)

    unsigned status_code() const { return static_cast<unsigned>(status); }
    /// The header of an event stream that the session writes next (a HEAD gets the header alone).
    bool streams() const { return event_stream && !head_only; }
};

} // namespace duet::server
