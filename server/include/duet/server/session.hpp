#pragma once
// One coroutine per connection: read a request, route it, handle it, send the response, record it, loop.

#include <duet/server/io.hpp>

namespace duet::server {

struct server_state;

/// Starts the session of an accepted connection: a coroutine on the I/O thread that serves it until it
/// closes, then decrements st.open_connections (which the caller has incremented) and ends a drain that waits
/// for it. The socket is non-blocking already (responses are sent without waiting).
void start_session(tcp_socket socket, server_state& st);

} // namespace duet::server
