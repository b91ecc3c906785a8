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

/// What routing tells its caller about a request, for accounting and for what happens next.
struct request_tally
{
    std::size_t endpoint = 0; ///< index into the server's endpoint stats (the router's table, then "other")
    bool stream = false; ///< the response is the header of an event stream: the caller streams events next
};

/// A request routed to a reporting handler (/io/..., /cpu/...), with its validated parameters and its id.
struct handler_call
{
    const endpoint* ep = nullptr;
    param_values params;
    std::string id;
};

/// Request handling is a function from request to response that touches no socket, so tests can call it
/// without a network; it runs on the I/O thread, and `received` is when the request was fully read. It counts
/// the request as started in its endpoint's statistics; the caller finishes it (request_finished) once the
/// response is written. It comes in two halves:
///
/// route_request routes and validates, and answers at once what needs no handler: plain endpoints such as
/// /healthz, and refusals (404, 405, a parameter out of range). A plain function, so most requests are
/// handled without a coroutine. Otherwise it returns the call to make.
std::variant<response, handler_call> route_request(server_state& st, const request& req,
                                                   std::chrono::steady_clock::time_point received,
                                                   request_tally& tally);

/// call_handler runs a routed request's handler and builds the response with its report and headers.
task<response> call_handler(server_state& st, const request& req, handler_call call,
                            std::chrono::steady_clock::time_point received);

/// Both halves in one, for callers with nothing to do in between (the session watches the client there).
task<response> handle_request(server_state& st, const request& req,
                              std::chrono::steady_clock::time_point received, request_tally& tally);

/// The JSON error response for e, shaped for req (version, keep-alive, HEAD) and the server's state.
response error_response(server_state& st, const request& req, const http_error& e);

} // namespace duet::server
