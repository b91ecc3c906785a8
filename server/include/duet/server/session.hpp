#pragma once

#include <duet/server/io.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>

namespace duet::server {

struct server_state;

/// Opens, binds and listens: address reuse, and TCP_NODELAY on the listener, which Linux copies to every
/// connection it accepts, so the accept loop needs no system call per connection for it. (Nagle's algorithm
/// would hold a small response back while an earlier one, or a 100 Continue, is still unacknowledged.)
void listen_on(tcp_acceptor& acceptor, const boost::asio::ip::tcp::endpoint& at, int backlog);

/// The accept loop: one session per accepted connection, until the acceptor is closed by a drain. A session
/// is one coroutine: wait for a request (idle deadline), read it (header deadline, header and body limits),
/// handle it, write the response (write deadline), and loop while keep-alive holds.
task<void> run_listener(tcp_acceptor& acceptor, server_state& st);

} // namespace duet::server
