// One coroutine per connection (read a request, handle it, write the response, loop) and the listener that
// starts them, with the fast paths a connection needs: the client watch, the immediate send, the linger.
#include <duet/server/request_handler.hpp>
#include <duet/server/request_parser.hpp>
#include <duet/server/server_state.hpp>
#include <duet/server/session.hpp>
#include <duet/server/stats.hpp>
#include <duet/server/wire.hpp>

#include <boost/asio/any_completion_handler.hpp>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/buffers_suffix.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/error.hpp>
#include <spdlog/logger.h>
#include <spdlog/spdlog.h>

#include <sys/socket.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <memory>
#include <optional>
#include <tuple>
#include <variant>

namespace duet::server {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using net::ip::tcp;
using std::chrono::milliseconds;
using std::chrono::steady_clock;

namespace {

constexpr auto use_tuple = net::as_tuple(use_task);

// Bytes asked for per read. A connection holds this much between requests (and gives it back while a request
// that takes time is handled; the request after that one is parsed from the client watch's bytes, and takes
// a read buffer only if it is longer): 1 KB takes a typical request (wrk's are under 100 bytes, a browser's a
// few hundred), and the buffer grows, up to server.max_header_bytes more, for a request that needs it. Not
// 1,024: glibc's small bins take allocations of up to 1,000 bytes, and a larger one that its per-thread cache
// cannot serve first consolidates the fast bins (with 10,000 connections, malloc was 12% of the server's
// CPU).
constexpr std::size_t read_chunk = 1000;

// nginx's code for a request whose client went away before the answer: logged and counted, never sent.
constexpr unsigned client_closed_request = 499;

// While a request is handled, its client may go away (close or reset the connection): then the handling is
// cancelled (a wait ends at once; a job's result is dropped) and nothing is written. A half-close (the client
// shut down only its sending side) is the same end of stream on the wire and counts as gone, as it does for
// nginx.
//
// The watch is a read of the connection, started when the handling begins and left pending when it ends: it
// is also the first read of the next request. An end of stream or a reset while a request is handled cancels
// the handling; bytes (the next request, pipelined or sent after the response) end the watch and are kept for
// the next request's parse. Folding the two reads into one saves, per request, the read that would find
// nothing right after the response, and the cancellation of a watch that saw nothing.
//
// Shared by the session and the read's completion, which can run after the session has ended: that
// completion touches only this struct (its signal reaches the session's awaited operation only while a
// request is handled), and the session's waiter only while the session waits for it.
struct client_watch
{
    enum class phase : std::uint8_t {
        off,     ///< no read pending
        reading, ///< the read is pending
        done     ///< it completed: its result and bytes wait for the next request's parse
    };

    net::cancellation_signal cancel; ///< bound to the session coroutine: cancels what it awaits
    net::any_completion_handler<void(beast::error_code)> waiter; ///< the session, waiting for the read to end
    beast::error_code ec;
    std::size_t got = 0;
    std::array<char, 128> bytes{}; ///< what the read got: a typical request line and Host fit whole
    phase state = phase::off;
    bool handling = false; ///< a request is being handled: an end of stream or a reset cancels it
    bool gone = false;     ///< the client went away while a request was handled

    /// The read saw the end of the stream or an error.
    bool ended() const noexcept { return state == phase::done && ec; }

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

// The completion of the watch's read. It shares the watch with the session. Destroyed without being called
// (the io_context destroyed with the read pending), it drops the session's waiter: that owns the session's
// coroutine, which owns the session's share of the watch.
struct watch_read_done
{
    std::shared_ptr<client_watch> watch;

    explicit watch_read_done(std::shared_ptr<client_watch> w) : watch{std::move(w)} {}
    watch_read_done(watch_read_done&&) noexcept = default;
    watch_read_done& operator=(watch_read_done&&) = delete;
    ~watch_read_done()
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
            // (a write's), or the session has ended. It read nothing; the next read starts afresh.
            w->state = client_watch::phase::off;
            return;
        }
        w->state = client_watch::phase::done;
        // A read on a stream socket ends with bytes or an error. One with neither is taken as the end of the
        // stream, not left to loop the session on nothing.
        w->ec = (ec || n > 0) ? ec : beast::error_code{net::error::eof};
        w->got = n;
        if (w->ec && w->handling) {
            w->gone = true; // end of stream or reset: nobody is waiting for the answer
            w->cancel.emit(net::cancellation_type::terminal);
        }
        if (w->waiter) {
            // Called directly, not posted: this completion runs on the I/O thread, as the waiting session
            // does.
            net::any_completion_handler<void(beast::error_code)> resume;
            resume.swap(w->waiter); // see wait_queue.cpp on Boost 1.81's move assignment
            std::move(resume)(w->ec);
        }
    }
};

// Starts watching the client while a request is handled. Bytes the watch holds still (the beginning of a
// pipelined request) move on to the read buffer, after those there, so that a read can watch; a read that has
// ended already (the client closed or reset the connection after its request) means the client is gone.
void watch_client(tcp_socket& socket, beast::flat_buffer& buffer, const std::shared_ptr<client_watch>& w)
{
    w->move_into(buffer);
    if (w->ended()) {
        w->gone = true;
        return;
    }
    w->handling = true;
    if (w->state != client_watch::phase::off) {
        return; // pending still (or holding bytes that the read buffer has no room for)
    }
    w->state = client_watch::phase::reading;
    socket.async_read_some(net::buffer(w->bytes), watch_read_done{w});
}

// Waits for the watch's read to end (its result stays in the watch).
auto watch_ended(client_watch& w)
{
    return net::async_initiate<decltype(use_tuple), void(beast::error_code)>(
        [&w](auto handler) {
            net::any_completion_handler<void(beast::error_code)> h{std::move(handler)};
            w.waiter.swap(h);
        },
        use_tuple);
}

// Ends the watch's part in a handling when it is over (or throws); its read stays pending for the next
// request.
struct watch_end
{
    client_watch& watch;

    explicit watch_end(client_watch& w) : watch{w} {}
    watch_end(const watch_end&) = delete;
    watch_end& operator=(const watch_end&) = delete;
    ~watch_end() { watch.handling = false; }
};

// What a connection's coroutine holds: the socket, its place in the server's connection table, the read
// buffer, the request being read (its strings are reused from one request to the next) and the buffer the
// response's header is formatted in.
struct session
{
    session(tcp_socket s, server_state& state, std::shared_ptr<client_watch> w)
        : socket{std::move(s)}, st{state}, conn{socket, state.connections}, watch{std::move(w)},
          buffer{static_cast<std::size_t>(state.cfg.server.max_header_bytes) + read_chunk}
    {}

    tcp_socket socket;
    server_state& st;
    connection conn;
    std::shared_ptr<client_watch> watch;
    beast::flat_buffer buffer;
    request req;
    std::string head;
    std::string peer; ///< for the access log
};

// Why a socket operation failed, as a close reason: the expected ends of a connection, told apart for /stats.
close_reason reason_for(const beast::error_code& ec, close_reason on_timeout, const session& s)
{
    if (s.conn.expired && ec == net::error::operation_aborted) {
        return on_timeout;
    }
    if (ec == net::error::operation_aborted) {
        return s.st.draining ? close_reason::drain : close_reason::error;
    }
    if (ec == net::error::eof || ec == net::error::connection_reset) {
        return close_reason::client;
    }
    return close_reason::error;
}

// Writes the buffers whole within the write deadline. A response nearly always fits the socket's send buffer,
// so it is sent at once (one sendmsg, no wait, no deadline to set); only what does not fit waits for the
// socket. The socket is in non-blocking mode.
template <typename Buffers>
task<beast::error_code> send(session& s, const Buffers& buffers)
{
    beast::error_code ec;
    const auto sent = s.socket.write_some(buffers, ec);
    if (!ec && sent == net::buffer_size(buffers)) {
        co_return ec;
    }
    if (ec && ec != net::error::would_block) {
        co_return ec;
    }
    beast::buffers_suffix<Buffers> rest{buffers};
    rest.consume(sent);
    s.conn.arm(milliseconds{s.st.cfg.server.write_timeout_ms});
    auto [write_ec, n] = co_await net::async_write(s.socket, rest, use_tuple);
    s.conn.disarm();
    co_return write_ec;
}

// The end of reading a request: nothing (the request is in s.req), a refusal to answer before closing, or a
// reason to close without a word.
using read_end = std::variant<std::monostate, http_error, close_reason>;

// Reads one request: from the bytes already buffered first (a pipelined request may be whole there), then
// from the socket. Until its first byte arrives the connection is idle (a drain may close it) and the idle
// deadline applies; from then on, one header deadline for the whole request, header and body (restarted
// after a 100 Continue), however the bytes trickle in.
//
// The bytes the client watch read come after the read buffer's. While the read buffer is empty they are
// parsed where they are: a request that fits there (most do) needs no read buffer at all.
task<read_end> read_request(session& s)
{
    const auto& sc = s.st.cfg.server;
    const milliseconds header_timeout{sc.header_timeout_ms};
    auto& w = *s.watch;
    request_parser parser{s.req, sc};
    std::optional<coarse_clock::time_point> due; // the header deadline, once the request has begun
    std::size_t header_bytes = 0; // consumed by the parser so far: it drops the request line as it goes
    bool go_ahead_sent = false;
    for (;;) {
        const bool from_watch = s.buffer.size() == 0 && w.has_bytes();
        if (from_watch || s.buffer.size() > 0) {
            beast::error_code ec;
            const bool in_header = !parser.is_header_done();
            std::size_t used = 0;
            std::size_t left = 0; // what the parser has not taken
            if (from_watch) {
                used = parser.put(w.data(), ec);
                w.consume(used);
                left = w.got;
            } else {
                used = parser.put(s.buffer.data(), ec);
                s.buffer.consume(used);
                left = s.buffer.size();
            }
            // An error first: Beast marks a request without a body done before the header's checks have run.
            if (ec && ec != http::error::need_more) {
                co_return refusal_for(ec, parser, sc);
            }
            if (parser.is_done()) {
                co_return std::monostate{};
            }
            if (in_header) {
                // Beast bounds the header bytes it has not consumed yet; the bound is on the whole header.
                header_bytes += used;
                if (!parser.is_header_done() &&
                    header_bytes + left > static_cast<std::size_t>(sc.max_header_bytes)) {
                    co_return refusal_for(http::error::header_limit, parser, sc);
                }
            }
            if (parser.is_header_done() && s.req.expect_continue && s.req.version == 11 && !go_ahead_sent) {
                // The client waits for our go-ahead before it sends the body; a body over the limit was
                // refused already, when its Content-Length was parsed.
                go_ahead_sent = true;
                static constexpr std::string_view go_ahead = "HTTP/1.1 100 Continue\r\n\r\n";
                if (auto write_ec = co_await send(s, net::buffer(go_ahead))) {
                    co_return reason_for(write_ec, close_reason::write_timeout, s);
                }
                due = coarse_clock::now() + header_timeout;
            }
            if (!ec && left > 0) {
                continue; // the header is in, and body bytes are buffered already
            }
        }
        const auto room = std::min(read_chunk, s.buffer.max_size() - s.buffer.size());
        if (room == 0) { // the parser's header limit stops a request before this
            co_return refusal_for(http::error::header_limit, parser, sc);
        }
        if (w.has_bytes()) {
            // The parser needs more than the watch's bytes, or them after the read buffer's: they join it.
            w.move_into(s.buffer);
            continue;
        }
        const bool waiting = s.buffer.size() == 0 && !parser.started();
        if (waiting && s.st.draining) {
            co_return close_reason::drain;
        }
        if (!waiting && !due) {
            due = coarse_clock::now() + header_timeout;
        }
        s.conn.idle = waiting;
        if (waiting) {
            s.conn.arm(milliseconds{sc.idle_timeout_ms});
        } else {
            s.conn.arm_until(*due);
        }
        beast::error_code ec;
        std::size_t n = 0;
        if (w.state == client_watch::phase::off) {
            std::tie(ec, n) = co_await s.socket.async_read_some(s.buffer.prepare(room), use_tuple);
        } else if (w.state == client_watch::phase::reading) {
            // The watch's read, started while an earlier request was handled, is this one's.
            co_await watch_ended(w);
            ec = w.ec;
        } else {
            ec = w.ec; // it ended during the response
        }
        s.conn.disarm();
        s.conn.idle = false;
        if (ec) {
            co_return reason_for(ec, waiting ? close_reason::idle_timeout : close_reason::read_timeout, s);
        }
        s.buffer.commit(n);
    }
}

// Lingering close (RFC 9112 9.6): stop sending, then read and discard what the client still sends, until it
// closes or the deadline passes. Closing with unread data makes the kernel answer with a reset, and on some
// stacks a reset destroys the refusal we just sent before the client reads it. Bounded by time; the bytes are
// thrown away as they come.
task<void> linger(session& s)
{
    const milliseconds timeout{s.st.cfg.server.linger_timeout_ms};
    beast::error_code ec;
    s.socket.shutdown(tcp_socket::shutdown_send, ec);
    if (ec || timeout.count() == 0) {
        co_return;
    }
    std::array<char, 4096> sink{};
    const auto due = coarse_clock::now() + timeout;
    s.conn.arm_until(due);
    for (;;) {
        auto [read_ec, n] = co_await s.socket.async_read_some(net::buffer(sink), use_tuple);
        if (read_ec || s.conn.expired || coarse_clock::now() >= due) {
            co_return; // the client closed, or the deadline passed (also for a client that never stops)
        }
    }
}

void log_access(const session& s, unsigned status, std::size_t bytes, steady_clock::time_point received,
                steady_clock::time_point done)
{
    auto us = std::chrono::duration_cast<std::chrono::microseconds>(done - received).count();
    s.st.access_log->info("{} \"{} {} HTTP/{}.{}\" {} {} {}us", s.peer, s.req.method_string(), s.req.target,
                          s.req.version / 10, s.req.version % 10, status, bytes, us);
}

// /stats/stream, after its header: one server-sent event per snapshot until the client goes, the drain ends
// the feed, or a write misses its deadline (a subscriber that does not read is dropped, not buffered for).
// The handler reserved the subscriber's slot; this releases it.
task<close_reason> stream_events(session& s, bool header_written)
{
    auto& st = s.st;
    // A fixed send buffer: the kernel's autotuning would let a stalled subscriber sit on megabytes.
    beast::error_code ignored; // a refusal leaves the kernel's default, which the write deadline still bounds
    s.socket.set_option(
        net::socket_base::send_buffer_size{static_cast<int>(st.cfg.stats.stream_send_buffer_bytes)}, ignored);
    // The first event at once, so that a subscriber need not wait a whole interval for data; then only the
    // feed's messages published after it (the feed's latest may be from long ago, and older than this one).
    std::uint64_t seen = st.feed.sequence();
    event_feed::message msg =
        header_written ? std::make_shared<const std::string>(stats_event(st, true)) : event_feed::message{};
    close_reason reason = header_written ? close_reason::drain : close_reason::error;
    while (msg) {
        if (auto ec = co_await send(s, net::buffer(*msg))) {
            reason = reason_for(ec, close_reason::write_timeout, s);
            break;
        }
        msg = co_await st.feed.next(seen);
    }
    --st.stats.stream_subscribers;
    co_return reason;
}

// Answers a refused request (no route was taken: it never reached handle_request), lingers, and counts it.
task<void> refuse(session& s, const http_error& e, steady_clock::time_point received)
{
    auto& st = s.st;
    st.stats.request_started(st.stats.other());
    request shape{http::verb::get, "/", s.req.version == 10 ? 10U : 11U};
    shape.keep_alive = false;
    auto res = error_response(st, shape, e);
    co_await send(s, wire_form(res, s.head)); // best effort: we close either way
    auto now = steady_clock::now();
    st.stats.request_finished(st.stats.other(), res.status_code(), now - received, now);
    co_await linger(s);
}

// One connection, one coroutine: read a request (idle deadline, then header deadline, header and body
// limits), handle it, write the response (write deadline), and loop while keep-alive holds. Peer closes,
// timeouts and drain cancellations end it quietly.
task<void> run_session(session& s)
{
    auto& st = s.st;
    // A cancelled wait is an outcome the handlers look at, not an exception.
    co_await net::this_coro::throw_if_cancelled(false);
    if (st.access_log) {
        beast::error_code ec;
        s.peer = s.socket.remote_endpoint(ec).address().to_string();
    }
    close_reason reason = close_reason::client;
    for (;;) {
        auto end = co_await read_request(s);
        if (const auto* why = std::get_if<close_reason>(&end)) {
            reason = *why;
            break;
        }
        if (const auto* refused = std::get_if<http_error>(&end)) {
            co_await refuse(s, *refused, steady_clock::now());
            reason = close_reason::bad_request;
            break;
        }
        auto received = steady_clock::now();
        request_tally tally;
        response res;
        auto next = route_request(st, s.req, received, tally);
        auto* call = std::get_if<handler_call>(&next);
        if (call == nullptr) {
            res = std::move(std::get<response>(next));
        } else {
            // Work that takes time: watch the client meanwhile (see client_watch), and give back the read
            // buffer, if nothing of a next request is in it, and the response head's buffer (1.2 KB per
            // waiting connection; the response takes a fresh one, and the next request one only if it does
            // not fit in the watch's bytes).
            if (s.buffer.size() == 0) {
                s.buffer.shrink_to_fit();
            }
            std::string{}.swap(s.head);
            watch_client(s.socket, s.buffer, s.watch);
            if (!s.watch->gone) {
                watch_end watching{*s.watch}; // also if the handling throws
                res = co_await call_handler(st, s.req, std::move(*call), received);
            }
            if (s.watch->gone) {
                auto now = steady_clock::now();
                st.stats.request_finished(tally.endpoint, client_closed_request, now - received, now);
                if (st.access_log) {
                    log_access(s, client_closed_request, 0, received, now);
                }
                reason = close_reason::client_gone;
                break;
            }
        }

        auto write_ec = co_await send(s, wire_form(res, s.head));
        if (tally.stream) {
            reason = co_await stream_events(s, !write_ec);
        }
        auto now = steady_clock::now();
        st.stats.request_finished(tally.endpoint, res.status_code(), now - received, now);
        if (st.access_log) {
            log_access(s, res.status_code(), res.head_only ? 0 : res.body.size(), received, now);
        }
        if (tally.stream) {
            break; // an event stream ends its connection; stream_events said why
        }
        if (write_ec) {
            reason = reason_for(write_ec, close_reason::write_timeout, s);
            break;
        }
        if (!res.keep_alive) {
            reason = st.draining ? close_reason::drain : close_reason::client;
            break;
        }
    }
    st.stats.connection_closed(reason);
    // Send FIN so the client reads a clean end of stream; errors here (already closed) change nothing.
    beast::error_code ignored;
    s.socket.shutdown(tcp_socket::shutdown_send, ignored);
}

task<void> run_session(tcp_socket socket, server_state& st, std::shared_ptr<client_watch> watch)
{
    session s{std::move(socket), st, std::move(watch)};
    co_await run_session(s);
}

// The session coroutine's completion: it carries the cancellation slot that the client watch emits on, and
// owns (with any wait still pending) the watch the signal lives in.
struct session_done
{
    server_state* st;
    std::shared_ptr<client_watch> watch;

    using cancellation_slot_type = net::cancellation_slot;
    cancellation_slot_type get_cancellation_slot() const noexcept { return watch->cancel.slot(); }

    void operator()(const std::exception_ptr& e) const { st->session_ended(e); }
};

// Over server.max_connections: answer 503 on the fresh socket without waiting for anything (a few hundred
// bytes fit any empty send buffer; if they do not, the client learns nothing worse than a close), and close.
void refuse_over_capacity(tcp_socket& socket, const server_state& st)
{
    http_error e{http::status::service_unavailable,
                 "over_capacity",
                 "the server has as many connections open as it allows (config key server.max_connections)",
                 {},
                 st.cfg.server.max_connections,
                 {},
                 1};
    response res{e.status, 11};
    res.content_type = "application/json";
    res.body = e.body();
    res.retry_after_s = e.retry_after_s;
    res.keep_alive = false;
    std::string head;
    beast::error_code ignored; // the connection is being refused: how it closes changes nothing
    socket.non_blocking(true, ignored);
    socket.write_some(wire_form(res, head), ignored); // one sendmsg, no wait
    socket.shutdown(tcp_socket::shutdown_send, ignored);
    // Closing with unread input makes the kernel answer with a reset, which can destroy the 503 before the
    // client reads it: discard what has arrived already (a request is usually there by now), without waiting.
    std::array<char, 4096> sink{};
    for (int i = 0; i < 16; ++i) {
        if (::recv(socket.native_handle(), sink.data(), sink.size(), MSG_DONTWAIT) <= 0) {
            break;
        }
    }
    socket.close(ignored);
}

} // namespace

void listen_on(tcp_acceptor& acceptor, const tcp::endpoint& at, int backlog)
{
    acceptor.open(at.protocol());
    acceptor.set_option(tcp_acceptor::reuse_address{true});
    acceptor.set_option(tcp::no_delay{true}); // inherited by accepted sockets (see session.hpp)
    acceptor.bind(at);
    acceptor.listen(backlog);
}

task<void> run_listener(tcp_acceptor& acceptor, server_state& st)
{
    auto ex = co_await net::this_coro::executor;
    // An episode of failed accepts (out of descriptors) is logged once when it starts and once when accepts
    // have worked again after a quiet second; descriptors freed for a moment in between do not start a new
    // one.
    bool failing = false;
    std::uint64_t failures = 0;
    auto last_failure = steady_clock::now();
    for (;;) {
        auto [ec, socket] = co_await acceptor.async_accept(use_tuple);
        if (!acceptor.is_open()) {
            co_return; // the drain closed the acceptor
        }
        if (ec) {
            // Out of descriptors (EMFILE, ENFILE) or a connection reset before it was accepted: pause so that
            // a persistent condition does not spin, then carry on.
            if (!failing) {
                spdlog::warn("accept failed: {}; retrying every 50 ms", ec.message());
                failing = true;
            }
            ++failures;
            last_failure = steady_clock::now();
            ++st.stats.accept_errors;
            io_timer pause{ex, milliseconds{50}};
            co_await pause.async_wait(use_tuple);
            continue;
        }
        if (failing && steady_clock::now() - last_failure > std::chrono::seconds{1}) {
            spdlog::info("accepting connections again, after {} failed accepts", failures);
            failing = false;
            failures = 0;
        }
        ++st.stats.connections_accepted;
        if (static_cast<std::int64_t>(st.open_connections) >= st.cfg.server.max_connections) {
            refuse_over_capacity(socket, st);
            st.stats.connection_closed(close_reason::over_capacity);
            continue;
        }
        beast::error_code ignored; // a socket that is already gone fails here and then in its first read
        socket.non_blocking(true, ignored); // responses are sent at once, without waiting (see send)
        ++st.open_connections;
        auto watch = std::make_shared<client_watch>();
        net::co_spawn(ex, run_session(std::move(socket), st, watch), session_done{&st, watch});
    }
}

} // namespace duet::server
