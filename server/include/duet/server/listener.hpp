#pragma once
// The listening socket and the accept loop, which starts a session per connection or refuses it when full.

#include <duet/server/io.hpp>

#include <boost/asio/ip/tcp.hpp>

namespace duet::server {

struct server_state;

/// Opens, binds and listens: address reuse, and TCP_NODELAY on the listener, which Linux copies to every
/// connection it accepts, so the accept loop needs no system call per connection for it. (Nagle's algorithm
/// would hold a small response back while an earlier one, or a 100 Continue, is still unacknowledged.)
void listen_on(tcp_acceptor& acceptor, const boost::asio::ip::tcp::endpoint& at, int backlog);

/// The accept loop: a session per accepted connection (start_session), until a drain closes the acceptor.
/// Beyond server.max_connections a connection is answered 503 at once and closed; failed accepts (out of
/// descriptors) pause it for 50 ms.
task<void> run_listener(tcp_acceptor& acceptor, server_state& st);

} // namespace duet::server
