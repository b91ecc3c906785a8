#pragma once
// A refusal as a value: the status, a stable code and the limit broken, serialised as the JSON error body.

#include <boost/beast/http/status.hpp>

#include <cstdint>
#include <optional>
#include <string>

namespace duet::server {

/// A request the server refuses, as a value: handlers and parsers return it, the session turns it into a JSON
/// response. Body: {"error": {"status": 400, "code": "out_of_range", "message": "...", "param": "ms",
/// "limit": 60000}}, where param and limit appear only when they apply.
struct http_error
{
    boost::beast::http::status status = boost::beast::http::status::bad_request;
    std::string code{};                  ///< stable, machine-readable: "out_of_range", "not_found", …
    std::string message{};               ///< one sentence for a person
    std::string param{};                 ///< the query parameter at fault, if any
    std::optional<std::int64_t> limit{}; ///< the bound it broke, if any
    std::string allow{};                 ///< for 405: the Allow header's value
    std::optional<std::int64_t> retry_after_s{}; ///< for 503: the Retry-After header's value
    unsigned upstream_status = 0;                ///< for 502 upstream_status: what the upstream answered

    /// The JSON body, serialised.
    std::string body() const;
};

} // namespace duet::server
