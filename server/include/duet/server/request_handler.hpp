#pragma once

#include <duet/server/http_error.hpp>
#include <duet/server/http_types.hpp>
#include <duet/server/io.hpp>

#include <boost/asio/awaitable.hpp>

#include <chrono>
#include <cstddef>

namespace duet::server {

struct server_state;

/// What handle_request tells its caller about a request, for accounting and for what happens next.
struct request_tally
{
    std::size_t endpoint = 0; ///< index into the server's endpoint stats (the router's table, then "other")
    bool stream = false; ///< the response is the header of an event stream: the caller streams events next
};

/// The whole of request handling: route, validate, run the handler, build the response with its report and
/// headers. A function from request to response that touches no socket, so tests can call it without a
/// network. Runs on the I/O thread. `received` is when the request was fully read. It counts the request as
/// started in its endpoint's statistics; the caller finishes it (request_finished) once the response is
/// written.
task<response> handle_request(server_state& st, const request& req,
                              std::chrono::steady_clock::time_point received, request_tally& tally);

/// The JSON error response for e, shaped for req (version, keep-alive, HEAD) and the server's state.
response error_response(server_state& st, const request& req, const http_error& e);

} // namespace duet::server
