#pragma once
// One duet-load connection as the engine drives it: connect, send a request, read its response. The fast
// paths live here: a response parser that keeps only what the client counts, a write that does not suspend
// when the socket takes the request at once, and deadlines that the client thread's sweep enforces.

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/basic_stream_socket.hpp>
#include <boost/asio/basic_waitable_timer.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/basic_parser.hpp>

#include <chrono>
#include <cstdint>
#include <span>
#include <string>

namespace duet::client {

/// A client thread's executor, as its concrete type: Asio's type-erased any_io_executor is copied, queried
/// and destroyed by every operation, which a client that must outrun the server cannot afford.
using io_executor = boost::asio::io_context::executor_type;

/// A coroutine on a client thread.
template <typename T = void>
using task = boost::asio::awaitable<T, io_executor>;

/// The completion token of a client thread's operations: a task resumes with the error as a value (errors are
/// outcomes at the network edge, not exceptions).
inline constexpr auto use_tuple = boost::asio::as_tuple(boost::asio::use_awaitable_t<io_executor>{});

using tcp_socket = boost::asio::basic_stream_socket<boost::asio::ip::tcp, io_executor>;
using io_timer =
    boost::asio::basic_waitable_timer<std::chrono::steady_clock,
                                      boost::asio::wait_traits<std::chrono::steady_clock>, io_executor>;

/// Beast's basic_parser for one response, keeping what duet-load counts: the status, whether the connection
/// stays open (Beast's own framing rules), and the body only when asked (the server's view reads duet's
/// reports), appended to a string the connection reuses. Beast's response_parser stores every field in a
/// fields container, a lookup and an allocation per field that the client never reads. Fed with put().
class response_parser : public boost::beast::http::basic_parser<false>
{
public:
    /// `body`: where the body goes (cleared first, its capacity kept), or nullptr to drop it. `head`: the
    /// response answers a HEAD request, so it has no body whatever its Content-Length says.
    response_parser(std::string* body, std::uint64_t body_limit, bool head);

    /// The status code (0 until the status line is parsed).
    unsigned status() const noexcept { return status_; }

    /// An interim response (1xx but 101): the final one is still to come on the same connection.
    bool interim() const noexcept { return status_ >= 100 && status_ < 200 && status_ != 101; }

private:
    void on_request_impl(boost::beast::http::verb, boost::beast::string_view, boost::beast::string_view, int,
                         boost::beast::error_code&) override
    {}
    void on_response_impl(int code, boost::beast::string_view reason, int version,
                          boost::beast::error_code& ec) override;
    void on_field_impl(boost::beast::http::field, boost::beast::string_view, boost::beast::string_view,
                       boost::beast::error_code&) override
    {}
    void on_header_impl(boost::beast::error_code&) override {}
    void on_body_init_impl(const boost::optional<std::uint64_t>&, boost::beast::error_code&) override {}
    std::size_t on_body_impl(boost::beast::string_view body, boost::beast::error_code& ec) override;
    void on_chunk_header_impl(std::uint64_t, boost::beast::string_view, boost::beast::error_code&) override {}
    std::size_t on_chunk_body_impl(std::uint64_t, boost::beast::string_view body,
                                   boost::beast::error_code& ec) override;
    void on_finish_impl(boost::beast::error_code&) override {}

    std::string* body_;
    unsigned status_ = 0;
};

/// A load connection: its socket, its read buffer and the deadline of the operation in progress.
///
/// Instead of a timer per operation (Beast's tcp_stream arms, cancels and re-arms one for every read and
/// write), an operation sets a deadline here, and the client thread's sweep calls expire_if_due on every
/// connection a few times per timeout: one that is past its deadline is closed, and the operation in progress
/// ends with beast::error::timeout. send writes at once when the socket takes the whole request (it nearly
/// always does) and suspends only for a remainder. read_response parses what is buffered first and reads the
/// socket only when the parser needs more. One operation at a time, on the connection's thread.
class connection
{
public:
    explicit connection(io_executor ex);
    connection(const connection&) = delete;
    connection& operator=(const connection&) = delete;

    /// Connects to the first endpoint that answers, by `deadline`; sets TCP_NODELAY.
    task<boost::system::error_code> connect(std::span<const boost::asio::ip::tcp::endpoint> endpoints,
                                            std::chrono::steady_clock::time_point deadline);

    /// Writes `bytes` whole, by `deadline`.
    task<boost::system::error_code> send(boost::asio::const_buffer bytes,
                                         std::chrono::steady_clock::time_point deadline);

    /// Reads one response through `parser`, by `deadline`. http::error::end_of_stream: the server closed
    /// the connection before any byte of it (an idle keep-alive connection it gave up).
    task<boost::system::error_code> read_response(response_parser& parser,
                                                  std::chrono::steady_clock::time_point deadline);

    /// The bytes of the last response read, head and body.
    std::size_t response_bytes() const noexcept { return response_bytes_; }

    /// Closes the socket (cancelling what is in progress) and drops what is buffered; errors change nothing.
    void close() noexcept;

    /// The sweep: closes the connection if the operation in progress is past its deadline.
    void expire_if_due(std::chrono::steady_clock::time_point now) noexcept;

private:
    boost::system::error_code outcome(boost::system::error_code ec) noexcept;

    tcp_socket socket_;
    boost::beast::flat_buffer buffer_;
    std::chrono::steady_clock::time_point deadline_ = std::chrono::steady_clock::time_point::max();
    bool expired_ = false;
    std::size_t response_bytes_ = 0;
};

} // namespace duet::client
