#pragma once

#include <duet/server/http_error.hpp>
#include <duet/server/http_types.hpp>

#include <boost/asio/awaitable.hpp>

#include <chrono>

namespace duet::server {

struct server_state;

/// The whole of request handling: route, validate, run the handler, build the response with its report and
/// headers. A function from request to response that touches no socket, so tests can call it without a
/// network. Runs on the I/O thread. `received` is when the request was fully read.
boost::asio::awaitable<response> handle_request(server_state& st, const request& req,
                                                std::chrono::steady_clock::time_point received);

/// The JSON error response for e, shaped for req (version, keep-alive, HEAD) and the server's state.
response error_response(server_state& st, const request& req, const http_error& e);

} // namespace duet::server
