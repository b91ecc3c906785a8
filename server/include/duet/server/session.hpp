#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>

namespace duet::server {

struct server_state;

/// One connection, one coroutine: wait for a request (idle deadline), read it (header deadline, header and
/// body limits), handle it, write the response (write deadline), and loop while keep-alive holds. The buffer
/// and the parser live in this frame. Peer closes, timeouts and drain cancellations end it quietly.
boost::asio::awaitable<void> run_session(boost::asio::ip::tcp::socket socket, server_state& st);

/// The accept loop: one session per accepted connection, until the acceptor is closed by a drain.
boost::asio::awaitable<void> run_listener(boost::asio::ip::tcp::acceptor& acceptor, server_state& st);

} // namespace duet::server
