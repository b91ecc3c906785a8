#pragma once
// From a parsed request to its response, in two halves: route_request (no waiting) and call_handler (awaits).

#include <duet/server/http_error.hpp>
#include <duet/server/http_types.hpp>
#include <duet/server/io.hpp>
#include <duet/server/params.hpp>

#include <boost/asio/awaitable.hpp>

#include <chrono>
#include <cstddef>
#include <string>
#include <variant>

namespace duet::server {

struct server_state;
struct endpoint;

/// A request routed to a reporting handler (/io/..., /cpu/...), with its validated parameters and its id.
struct handler_call
{
    const endpoint* ep = nullptr;
    param_values params;
    std::string id;
    std::uint64_t seq = 0; ///< the request's number in the timeline (0: not recorded)
};

/// What routing decided: the endpoint the request counts for, and either its answer or the handler to call.
struct routed_request
{
    std::size_t endpoint = 0; ///< index into the server's endpoint stats (the router's table, then "other")
    std::variant<response, handler_call> next;
    std::uint64_t seq = 0; ///< the request's number in the timeline (0: not recorded)
};

/// Request handling is a function from request to response that touches no socket, so tests can call it
/// without a network; it runs on the I/O thread, and `received` is when the request was fully read. It counts
/// the request as started in its endpoint's statistics; the caller finishes it (request_finished) once the
/// response is written. It comes in two halves:
///
/// route_request routes and validates, and answers at once what needs no handler: plain endpoints such as
/// /healthz, and refusals (404, 405, a parameter out of range). A plain function, so most requests are
/// handled without a coroutine. Otherwise it returns the call to make.
routed_request route_request(server_state& st, const request& req,
                             std::chrono::steady_clock::time_point received);

/// call_handler runs a routed request's handler and builds the response with its report and headers.
task<response> call_handler(server_state& st, const request& req, handler_call call,
                            std::chrono::steady_clock::time_point received);

/// Both halves in one, for tests and benchmarks (the session watches the client in between). `endpoint` is
/// set to route_request's.
task<response> handle_request(server_state& st, const request& req,
                              std::chrono::steady_clock::time_point received, std::size_t& endpoint);

/// The JSON error response for e, shaped for req (version, keep-alive, HEAD) and the server's state.
response error_response(server_state& st, const request& req, const http_error& e);

/// The JSON error response to a request that could not be read whole, before its connection closes: so no
/// HEAD and no keep-alive, only its version (HTTP/1.0 or 1.1).
response refusal_response(server_state& st, const http_error& e, unsigned version);

} // namespace duet::server
