#pragma once

#include <duet/server/io.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>

namespace duet::server {

struct server_state;

/// The accept loop: one session per accepted connection, until the acceptor is closed by a drain. A session
/// is one coroutine: wait for a request (idle deadline), read it (header deadline, header and body limits),
/// handle it, write the response (write deadline), and loop while keep-alive holds.
task<void> run_listener(tcp_acceptor& acceptor, server_state& st);

} // namespace duet::server
