#pragma once
// One accepted HTTP/1.1 connection, as its session uses it: read a request, send a response, watch whether
// the client leaves while a request is handled, linger before closing. The fast paths live here, behind these
// few operations, each with its own deadline.

#include <duet/config.hpp>
#include <duet/server/connection_table.hpp>
#include <duet/server/http_error.hpp>
#include <duet/server/http_types.hpp>
#include <duet/server/io.hpp>
#include <duet/server/stats.hpp>

#include <boost/asio/buffer.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/beast/core/flat_buffer.hpp>

#include <chrono>
#include <memory>
#include <string>
#include <variant>

namespace duet::server {

struct client_watch;

/// How reading a request ended: the request was read (monostate), a refusal to answer before closing (the
/// stream cannot be resynchronised), or a reason to close without a word (the peer left, a deadline, the
/// drain).
using read_result = std::variant<std::monostate, http_error, close_reason>;

/// A connection's socket and everything it needs between requests: its slot in the connection table (the
/// deadline), the read buffer, the buffer a response's head is formatted in, and the client watch.
///
/// read_request parses what is buffered first and reads the socket only when the parser needs more; until the
/// first byte the idle deadline applies, then one header deadline for the whole request. send writes with one
/// sendmsg at once (a response nearly always fits the socket's buffer); only a remainder waits, under the
/// write deadline. unless_client_leaves keeps a read of the socket pending while a request is handled: if the
/// client closes or resets the connection first, the handling is cancelled; bytes that arrive (the next
/// request) end the watch and are kept, so that read is the next request's. linger, after a refusal, stops
/// sending and discards what still arrives for a bounded time, so that the client reads the refusal rather
/// than a reset.
///
/// Operations on the I/O thread only, one at a time (a debug build asserts the thread). The coroutine that
/// owns the connection must be spawned with a completion handler whose cancellation slot is
/// cancellation_slot(watch): that is how a client that leaves cancels what its handling awaits.
class connection
{
public:
    /// The watch a connection is made with. Made first, because the session's completion handler shares it:
    /// it holds the cancellation signal, which must outlive the coroutine.
    static std::shared_ptr<client_watch> make_watch();
    static boost::asio::cancellation_slot cancellation_slot(client_watch& watch) noexcept;

    /// `draining` points to the server's drain flag: a connection waiting for a request when it is set
    /// closes.
    connection(tcp_socket socket, const duet::server_config& sc, connection_table& table,
               const bool* draining, std::shared_ptr<client_watch> watch);
    ~connection();
    connection(const connection&) = delete;
    connection& operator=(const connection&) = delete;

    /// Reads the next request into `req` (cleared first; its strings keep their capacity).
    task<read_result> read_request(request& req);

    /// When the last request read was received whole: when its last bytes began to be parsed (they were
    /// buffered already, or had just been read).
    std::chrono::steady_clock::time_point received_at() const noexcept { return received_at_; }

    /// Writes `res` whole within the write deadline. The task refers to res's body: keep res until it is
    /// done.
    task<boost::system::error_code> send(const response& res);
    task<boost::system::error_code> send(response&&) = delete;
    /// Writes `bytes` whole within the write deadline (an event of a stream).
    task<boost::system::error_code> send(boost::asio::const_buffer bytes);

    /// Runs `handling` while watching the client, its response into `res`; false if the client left first
    /// (the handling was then cancelled, or not started: a client that closed right after its request is gone
    /// already). Gives back the read and head buffers while it waits, which is most of what a waiting
    /// connection holds.
    task<bool> unless_client_leaves(task<response> handling, response& res);

    /// Lingering close (RFC 9112 §9.6): half-closes, then reads and discards until the client closes or
    /// server.linger_timeout_ms passes.
    task<void> linger();

    /// Half-closes, so that the client reads a clean end of stream; errors (already closed) change nothing.
    void shutdown() noexcept;

    /// Why an error of one of these operations ends the connection (on_timeout: which deadline it was under).
    close_reason reason_for(const boost::system::error_code& ec, close_reason on_timeout) const noexcept;

    /// The peer's address, for the access log ("" if the socket has none any more).
    std::string peer() const;

    /// A fixed kernel send buffer (an event stream's): a stalled reader then cannot sit on megabytes.
    void set_send_buffer(int bytes) noexcept;

    /// Whether the last handling's watch left a read of the socket pending, which the next read_request takes
    /// over (for tests: that the next request costs no fresh read).
    bool reading_ahead() const noexcept;

private:
    template <typename Buffers>
    task<boost::system::error_code> send_buffers(Buffers buffers); // by value: the frame outlives a temporary
    bool start_watching();
    void assert_io_thread() noexcept;

    tcp_socket socket_;
    const duet::server_config& sc_;
    const bool* draining_;
    connection_slot slot_;
    std::shared_ptr<client_watch> watch_;
    boost::beast::flat_buffer buffer_;
    std::string head_;
    std::chrono::steady_clock::time_point received_at_{};
};

} // namespace duet::server
