// A connection's operations, and the client watch behind unless_client_leaves: a read of the socket that is
// pending while a request is handled and becomes the next request's first read.
#include <duet/server/connection.hpp>
#include <duet/server/request_parser.hpp>
#include <duet/server/wire.hpp>

#include <boost/asio/any_completion_handler.hpp>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/buffers_suffix.hpp>
#include <boost/beast/http/error.hpp>

#include <algorithm>
#include <array>
#include <cassert>
#include <cstdint>
#include <cstring>
#include <tuple>

namespace duet::server {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using std::chrono::milliseconds;

namespace {

constexpr auto use_tuple = net::as_tuple(use_task);

// Bytes asked for per read: a typical request (wrk's are under 100 bytes, a browser's a few hundred), and the
// buffer grows, up to server.max_header_bytes more, for one that needs it. 1,000 rather than 1,024: a larger
// allocation first consolidates glibc's fast bins (docs/PERFORMANCE.md).
constexpr std::size_t read_chunk = 1000;

} // namespace

// A client may go away while its request is handled: then the handling is cancelled and nothing is written. A
// half-close (the client shut down only its sending side) is the same end of stream on the wire and counts as
// gone, as it does for nginx.
//
// The watch is a read of the connection into 128 bytes of its own, started when the handling begins and left
// pending when it ends: it is also the first read of the next request. An end of stream or a reset while a
// request is handled cancels the handling; bytes end the watch and are kept for the next request's parse. So
// a request costs one read that finds nothing, not two, and no cancellation.
//
// Shared by the connection and the read's completion, which can run after the connection has gone: that
// completion touches only this struct (its signal reaches the session's awaited operation only while a
// request is handled), and the connection's waiter only while the connection waits for it.
struct client_watch
{
    enum class phase : std::uint8_t {
        off,     ///< no read pending
        reading, ///< the read is pending
        done     ///< it completed: its result and bytes wait for the next request's parse
    };

    net::cancellation_signal cancel; ///< bound to the session coroutine: cancels what it awaits
    net::any_completion_handler<void(beast::error_code)> waiter; ///< the connection, waiting for the read
    beast::error_code ec;
    std::size_t got = 0;
    std::array<char, 128> bytes{}; ///< what the read got: a typical request line and Host fit whole
    phase state = phase::off;
    bool handling = false; ///< a request is being handled: an end of stream or a reset cancels it
    bool gone = false;     ///< the client went away while a request was handled

    /// The read saw the end of the stream or an error: no more requests will come.
    bool stream_ended() const noexcept { return state == phase::done && ec; }

    /// The read got bytes that nobody has taken yet.
    bool has_bytes() const noexcept { return got > 0; }
    net::mutable_buffer data() noexcept { return net::buffer(bytes.data(), got); }

    /// Drops the first n bytes; the watch is off once none are left.
    void consume(std::size_t n) noexcept
    {
        got -= n;
        std::memmove(bytes.data(), bytes.data() + n, got);
        if (got == 0) {
            state = phase::off;
        }
    }

    /// Moves the bytes to the end of `to`, as many as it has room for (none: nothing changes).
    void move_into(beast::flat_buffer& to)
    {
        if (!has_bytes()) {
            return;
        }
        const auto n = net::buffer_copy(to.prepare(std::min(got, to.max_size() - to.size())), data());
        to.commit(n);
        consume(n);
    }
};

namespace {

// The completion of the watch's read. Destroyed without being called (the io_context destroyed with the read
// pending), it drops the connection's waiter: that owns the session's coroutine, which owns the connection's
// share of the watch.
struct watch_read_handler
{
    std::shared_ptr<client_watch> watch;

    explicit watch_read_handler(std::shared_ptr<client_watch> w) : watch{std::move(w)} {}
    watch_read_handler(watch_read_handler&&) noexcept = default;
    watch_read_handler& operator=(watch_read_handler&&) = delete;
    ~watch_read_handler()
    {
        if (watch) {
            net::any_completion_handler<void(beast::error_code)> dropped;
            dropped.swap(watch->waiter);
        }
    }

    void operator()(const beast::error_code& ec, std::size_t n)
    {
        const auto w = std::move(watch); // called: nothing for the destructor to drop
        if (ec == net::error::operation_aborted && !w->waiter) {
            // Nobody waited for this read: the socket's operations were cancelled for another one's deadline
            // (a write's), or the connection has gone. It read nothing; the next read starts afresh.
            w->state = client_watch::phase::off;
            return;
        }
        w->state = client_watch::phase::done;
        // A read on a stream socket ends with bytes or an error; one with neither is the end of the stream.
        w->ec = (ec || n > 0) ? ec : beast::error_code{net::error::eof};
        w->got = n;
        if (w->ec && w->handling) {
            w->gone = true; // end of stream or reset: nobody is waiting for the answer
            w->cancel.emit(net::cancellation_type::terminal);
        }
        if (w->waiter) {
            // Called directly, not posted: this completion runs on the I/O thread, as the connection does.
            net::any_completion_handler<void(beast::error_code)> resume;
            resume.swap(w->waiter); // see slack_timer.cpp on Boost 1.81's move assignment
            std::move(resume)(w->ec);
        }
    }
};

// Waits for the watch's pending read to complete (its result stays in the watch).
auto watch_read(client_watch& w)
{
    return net::async_initiate<decltype(use_tuple), void(beast::error_code)>(
        [&w](auto handler) {
            net::any_completion_handler<void(beast::error_code)> h{std::move(handler)};
            w.waiter.swap(h);
        },
        use_tuple);
}

// The watch's part in one handling, for as long as the handling runs (also if it throws); its read stays
// pending for the next request.
class handling_scope
{
public:
    explicit handling_scope(client_watch& w) : watch_{w} { watch_.handling = true; }
    handling_scope(const handling_scope&) = delete;
    handling_scope& operator=(const handling_scope&) = delete;
    ~handling_scope() { watch_.handling = false; }

private:
    client_watch& watch_;
};

} // namespace

std::shared_ptr<client_watch> connection::make_watch()
{
    return std::make_shared<client_watch>();
}

net::cancellation_slot connection::cancellation_slot(client_watch& watch) noexcept
{
    return watch.cancel.slot();
}

connection::connection(tcp_socket socket, const duet::server_config& sc, connection_table& table,
                       const bool* draining, std::shared_ptr<client_watch> watch)
    : socket_{std::move(socket)}, sc_{sc}, draining_{draining}, slot_{socket_, table},
      watch_{std::move(watch)}, buffer_{static_cast<std::size_t>(sc.max_header_bytes) + read_chunk}
{}

connection::~connection() = default;

void connection::assert_io_thread() noexcept
{
    // The io_context's UNSAFE_IO hint drops each socket's lock on this promise (docs/ARCHITECTURE.md).
    assert(socket_.get_executor().running_in_this_thread());
}

task<read_result> connection::read_request(request& req)
{
    assert_io_thread();
    const milliseconds header_timeout{sc_.header_timeout_ms};
    auto& w = *watch_;
    request_parser parser{req, sc_};
    std::optional<coarse_clock::time_point> due; // the header deadline, once the request has begun
    std::size_t header_bytes = 0; // consumed by the parser so far: it drops the request line as it goes
    bool go_ahead_sent = false;
    for (;;) {
        // The watch's bytes come after the read buffer's. While the read buffer is empty they are parsed
        // where they are: a request that fits there (most do) needs no read buffer at all.
        const bool from_watch = buffer_.size() == 0 && w.has_bytes();
        if (from_watch || buffer_.size() > 0) {
            received_at_ = std::chrono::steady_clock::now(); // the last time is the request's
            beast::error_code ec;
            const bool in_header = !parser.is_header_done();
            std::size_t used = 0;
            std::size_t left = 0; // what the parser has not taken
            if (from_watch) {
                used = parser.put(w.data(), ec);
                w.consume(used);
                left = w.got;
            } else {
                used = parser.put(buffer_.data(), ec);
                buffer_.consume(used);
                left = buffer_.size();
            }
            // An error first: Beast marks a request without a body done before the header's checks have run.
            if (ec && ec != http::error::need_more) {
                co_return refusal_for(ec, parser, sc_);
            }
            if (parser.is_done()) {
                co_return std::monostate{};
            }
            if (in_header) {
                // Beast bounds the header bytes it has not consumed yet; the bound is on the whole header.
                header_bytes += used;
                if (!parser.is_header_done() &&
                    header_bytes + left > static_cast<std::size_t>(sc_.max_header_bytes)) {
                    co_return refusal_for(http::error::header_limit, parser, sc_);
                }
            }
            if (parser.is_header_done() && req.expect_continue && req.version == 11 && !go_ahead_sent) {
                // The client waits for our go-ahead before it sends the body; a body over the limit was
                // refused already, when its Content-Length was parsed.
                go_ahead_sent = true;
                static constexpr std::string_view go_ahead = "HTTP/1.1 100 Continue\r\n\r\n";
                if (auto write_ec = co_await send(net::buffer(go_ahead))) {
                    co_return reason_for(write_ec, close_reason::write_timeout);
                }
                due = coarse_clock::now() + header_timeout;
            }
            if (!ec && left > 0) {
                continue; // the header is in, and body bytes are buffered already
            }
        }
        const auto room = std::min(read_chunk, buffer_.max_size() - buffer_.size());
        if (room == 0) { // the parser's header limit stops a request before this
            co_return refusal_for(http::error::header_limit, parser, sc_);
        }
        if (w.has_bytes()) {
            // The parser needs more than the watch's bytes, or them after the read buffer's: they join it.
            w.move_into(buffer_);
            continue;
        }
        const bool waiting = buffer_.size() == 0 && !parser.started();
        if (waiting && *draining_) {
            co_return close_reason::drain;
        }
        if (!waiting && !due) {
            due = coarse_clock::now() + header_timeout;
        }
        slot_.idle = waiting;
        if (waiting) {
            slot_.arm(milliseconds{sc_.idle_timeout_ms});
        } else {
            slot_.arm_until(*due);
        }
        beast::error_code ec;
        std::size_t n = 0;
        if (w.state == client_watch::phase::off) {
            std::tie(ec, n) = co_await socket_.async_read_some(buffer_.prepare(room), use_tuple);
        } else if (w.state == client_watch::phase::reading) {
            // The watch's read, started while an earlier request was handled, is this one's.
            co_await watch_read(w);
            ec = w.ec;
        } else {
            ec = w.ec; // it ended during the response
        }
        slot_.disarm();
        slot_.idle = false;
        if (ec) {
            co_return reason_for(ec, waiting ? close_reason::idle_timeout : close_reason::read_timeout);
        }
        buffer_.commit(n);
    }
}

// The socket is in non-blocking mode (the listener sets it), so the first write_some does not wait.
template <typename Buffers>
task<beast::error_code> connection::send_buffers(Buffers buffers)
{
    assert_io_thread();
    beast::error_code ec;
    const auto sent = socket_.write_some(buffers, ec);
    if (!ec && sent == net::buffer_size(buffers)) {
        co_return ec;
    }
    if (ec && ec != net::error::would_block) {
        co_return ec;
    }
    beast::buffers_suffix<Buffers> rest{buffers};
    rest.consume(sent);
    slot_.arm(milliseconds{sc_.write_timeout_ms});
    auto [write_ec, n] = co_await net::async_write(socket_, rest, use_tuple);
    slot_.disarm();
    co_return write_ec;
}

task<beast::error_code> connection::send(const response& res)
{
    return send_buffers(wire_form(res, head_));
}

task<beast::error_code> connection::send(net::const_buffer bytes)
{
    return send_buffers(bytes);
}

// Starts watching the client. Bytes the watch holds still (the beginning of a pipelined request) move on to
// the read buffer, after those there, so that a read can watch; a read that has ended already (the client
// closed or reset the connection after its request) means the client is gone. False if it is.
bool connection::start_watching()
{
    auto& w = *watch_;
    w.move_into(buffer_);
    if (w.stream_ended()) {
        w.gone = true;
        return false;
    }
    if (w.state == client_watch::phase::off) {
        w.state = client_watch::phase::reading;
        socket_.async_read_some(net::buffer(w.bytes), watch_read_handler{watch_});
    } // else pending still (or holding bytes that the read buffer has no room for)
    return true;
}

task<bool> connection::unless_client_leaves(task<response> handling, response& res)
{
    assert_io_thread();
    // The response takes a fresh head buffer, and the next request a read buffer only if it does not fit in
    // the watch's bytes: meanwhile a waiting connection holds neither (1.2 KB).
    if (buffer_.size() == 0) {
        buffer_.shrink_to_fit();
    }
    std::string{}.swap(head_);
    if (!start_watching()) {
        co_return false;
    }
    {
        handling_scope scope{*watch_};
        res = co_await std::move(handling);
    }
    co_return !watch_->gone;
}

// Closing with unread data makes the kernel answer with a reset, and on some stacks a reset destroys the
// refusal just sent before the client reads it. Bounded by time; the bytes are thrown away as they come.
task<void> connection::linger()
{
    assert_io_thread();
    const milliseconds timeout{sc_.linger_timeout_ms};
    beast::error_code ec;
    socket_.shutdown(tcp_socket::shutdown_send, ec);
    if (ec || timeout.count() == 0) {
        co_return;
    }
    std::array<char, 4096> sink{};
    const auto due = coarse_clock::now() + timeout;
    slot_.arm_until(due);
    for (;;) {
        auto [read_ec, n] = co_await socket_.async_read_some(net::buffer(sink), use_tuple);
        if (read_ec || slot_.expired || coarse_clock::now() >= due) {
            co_return; // the client closed, or the deadline passed (also for a client that never stops)
        }
    }
}

void connection::shutdown() noexcept
{
    assert_io_thread();
    beast::error_code ignored;
    socket_.shutdown(tcp_socket::shutdown_send, ignored);
}

close_reason connection::reason_for(const beast::error_code& ec, close_reason on_timeout) const noexcept
{
    if (slot_.expired && ec == net::error::operation_aborted) {
        return on_timeout;
    }
    if (ec == net::error::operation_aborted) {
        return *draining_ ? close_reason::drain : close_reason::error;
    }
    if (ec == net::error::eof || ec == net::error::connection_reset) {
        return close_reason::client;
    }
    return close_reason::error;
}

std::string connection::peer() const
{
    beast::error_code ec;
    return socket_.remote_endpoint(ec).address().to_string();
}

void connection::set_send_buffer(int bytes) noexcept
{
    assert_io_thread();
    beast::error_code ignored; // a refusal leaves the kernel's default, which the write deadline still bounds
    socket_.set_option(net::socket_base::send_buffer_size{bytes}, ignored);
}

bool connection::reading_ahead() const noexcept
{
    return watch_->state == client_watch::phase::reading;
}

} // namespace duet::server
