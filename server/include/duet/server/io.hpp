#pragma once
// The I/O thread's executor as its concrete type, and the coroutine, socket and timer types built on it.

#include <boost/asio/awaitable.hpp>
#include <boost/asio/basic_socket_acceptor.hpp>
#include <boost/asio/basic_stream_socket.hpp>
#include <boost/asio/basic_waitable_timer.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <chrono>

namespace duet::server {

/// The I/O thread's executor, as its concrete type. Asio's default, any_io_executor, is type-erased: every
/// operation copies it, queries it for work tracking and destroys it, and each copy is 32 bytes in every
/// socket, timer and pending operation (docs/PERFORMANCE.md has what that cost). The server only ever runs on
/// one io_context, so its coroutines, sockets and timers name that executor.
using io_executor = boost::asio::io_context::executor_type;

/// A coroutine on the I/O thread.
template <typename T = void>
using task = boost::asio::awaitable<T, io_executor>;

/// The completion token that resumes a task.
inline constexpr boost::asio::use_awaitable_t<io_executor> use_task{};

using tcp_socket = boost::asio::basic_stream_socket<boost::asio::ip::tcp, io_executor>;
using tcp_acceptor = boost::asio::basic_socket_acceptor<boost::asio::ip::tcp, io_executor>;
using io_timer =
    boost::asio::basic_waitable_timer<std::chrono::steady_clock,
                                      boost::asio::wait_traits<std::chrono::steady_clock>, io_executor>;

} // namespace duet::server
