#include <duet/server/request_handler.hpp>
#include <duet/server/server_state.hpp>
#include <duet/server/session.hpp>
#include <duet/server/stats.hpp>
#include <duet/server/wire.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/string.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/read.hpp>
#include <spdlog/logger.h>
#include <spdlog/spdlog.h>

#include <sys/socket.h>

#include <array>
#include <cerrno>
#include <chrono>
#include <optional>
#include <variant>

namespace duet::server {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using net::ip::tcp;
using std::chrono::milliseconds;
using std::chrono::steady_clock;
using namespace net::experimental::awaitable_operators;

namespace {

constexpr auto use_tuple = net::as_tuple(net::use_awaitable);

// Bytes asked for per read while waiting for a new request; Beast grows the buffer if a request needs more.
// Every open connection holds this much while its request is handled: 1 KB takes a typical request (wrk's
// are under 100 bytes, a browser's a few hundred) and costs 3 KB less per connection than 4 KB did, 29 MB at
// 10,000 connections.
constexpr std::size_t read_chunk = 1024;

// nginx's code for a request whose client went away before the answer: logged and counted, never sent.
constexpr unsigned client_closed_request = 499;

http_error refusal(http::status status, const char* code, std::string message, std::int64_t limit)
{
    return http_error{status, code, std::move(message), {}, limit, {}, {}};
}

// A failed read: either a request we must refuse with a status (then close, as the stream cannot be
// resynced), or nullopt for the ends that are nobody's fault or cannot be answered: the peer closed or reset,
// the header deadline passed (tcp_stream has already closed the socket), or the drain cancelled the read.
std::optional<http_error> refusal_for(const beast::error_code& ec, const duet::server_config& sc)
{
    if (ec == http::error::header_limit || ec == http::error::buffer_overflow) {
        return refusal(http::status::request_header_fields_too_large, "header_too_large",
                       "the request line and headers exceed the limit (config key server.max_header_bytes)",
                       sc.max_header_bytes);
    }
    if (ec == http::error::body_limit) {
        return refusal(http::status::payload_too_large, "body_too_large",
                       "the request body exceeds the limit (config key server.max_body_bytes)",
                       sc.max_body_bytes);
    }
    if (ec == http::error::end_of_stream || ec == http::error::partial_message) {
        return std::nullopt;
    }
    if (ec.category() == http::make_error_code(http::error::bad_method).category()) {
        return http_error{http::status::bad_request,
                          "bad_request",
                          "malformed HTTP request: " + ec.message(),
                          {},
                          std::nullopt,
                          {},
                          {}};
    }
    return std::nullopt;
}

// Bounds that Beast's parser does not enforce by itself, checked once the header is in.
std::optional<http_error> refusal_for(const request& req, const duet::server_config& sc)
{
    if (static_cast<std::int64_t>(req.target().size()) > sc.max_target_bytes) {
        return refusal(http::status::uri_too_long, "target_too_long",
                       "the request target exceeds the limit (config key server.max_target_bytes)",
                       sc.max_target_bytes);
    }
    std::int64_t fields = 0;
    for (auto it = req.begin(); it != req.end() && fields <= sc.max_header_count; ++it) {
        ++fields;
    }
    if (fields > sc.max_header_count) {
        return refusal(http::status::request_header_fields_too_large, "too_many_headers",
                       "the request has more header fields than allowed (config key server.max_header_count)",
                       sc.max_header_count);
    }
    return std::nullopt;
}

// Lingering close (RFC 9112 9.6): stop sending, then read and discard what the client still sends, until it
// closes or the deadline passes. Closing with unread data makes the kernel answer with a reset, and on some
// stacks a reset destroys the refusal we just sent before the client reads it. Bounded by time; the bytes are
// thrown away as they come.
net::awaitable<void> linger(beast::tcp_stream& stream, milliseconds timeout)
{
    beast::error_code ec;
    stream.socket().shutdown(tcp::socket::shutdown_send, ec);
    if (ec || timeout.count() == 0) {
        co_return;
    }
    std::array<char, 4096> sink{};
    stream.expires_after(timeout);
    for (;;) {
        auto [read_ec, n] = co_await stream.async_read_some(net::buffer(sink), use_tuple);
        if (read_ec) {
            co_return; // the client closed, or the deadline passed: either way we are done
        }
    }
}

void log_access(server_state& st, const std::string& peer, const request& req, unsigned status,
                std::size_t bytes, steady_clock::time_point received, steady_clock::time_point done)
{
    auto us = std::chrono::duration_cast<std::chrono::microseconds>(done - received).count();
    st.access_log->info("{} \"{} {} HTTP/{}.{}\" {} {} {}us", peer, req.method_string(), req.target(),
                        req.version() / 10, req.version() % 10, status, bytes, us);
}

// Why a read or write failed, as a close reason: the expected ends of a connection, told apart for /stats.
close_reason reason_for(const beast::error_code& ec, close_reason on_timeout, const server_state& st)
{
    if (ec == beast::error::timeout) {
        return on_timeout;
    }
    if (ec == net::error::operation_aborted) {
        return st.draining ? close_reason::drain : close_reason::error;
    }
    if (ec == http::error::end_of_stream || ec == http::error::partial_message || ec == net::error::eof) {
        return close_reason::client;
    }
    return close_reason::error;
}

// Completes when the client has gone away (it closed or reset the connection) while its request is handled:
// then the handling is cancelled and nothing is written. A half-close (the client shut down only its sending
// side) is the same end of stream on the wire and counts as gone, as it does for nginx. Data it sends
// meanwhile (a pipelined request) is left for the next read, and the watch goes on quietly until cancelled.
net::awaitable<void> client_gone(beast::tcp_stream& stream)
{
    auto& socket = stream.socket();
    for (;;) {
        auto [ec] = co_await socket.async_wait(tcp::socket::wait_read, use_tuple);
        if (ec) {
            co_return; // cancelled because the handler finished first, or the socket failed: either way, done
        }
        char byte = 0;
        auto n = ::recv(socket.native_handle(), &byte, 1, MSG_PEEK | MSG_DONTWAIT);
        if (n > 0) {
            break; // a pipelined request
        }
        if (n == 0 || (errno != EAGAIN && errno != EINTR)) { // EWOULDBLOCK is EAGAIN on Linux
            co_return; // end of stream or reset: nobody is waiting for the answer
        }
        // A spurious wake-up: nothing to read after all; watch again.
    }
    // Leave the pipelined request in the socket and wait until the handler finishes and cancels this wait.
    net::steady_timer forever{socket.get_executor(), net::steady_timer::time_point::max()};
    co_await forever.async_wait(use_tuple);
}

// /stats/stream, after its header: one server-sent event per snapshot until the client goes, the drain ends
// the feed, or a write misses its deadline (a subscriber that does not read is dropped, not buffered for).
// The handler reserved the subscriber's slot; this releases it.
net::awaitable<close_reason> stream_events(beast::tcp_stream& stream, server_state& st, bool header_written)
{
    const auto write_timeout = milliseconds{st.cfg.server.write_timeout_ms};
    // A fixed send buffer: the kernel's autotuning would let a stalled subscriber sit on megabytes.
    beast::error_code ignored; // a refusal leaves the kernel's default, which the write deadline still bounds
    stream.socket().set_option(
        net::socket_base::send_buffer_size{static_cast<int>(st.cfg.stats.stream_send_buffer_bytes)}, ignored);
    std::uint64_t seen = 0;
    // The first event at once, so that a subscriber need not wait a whole interval for data.
    event_feed::message msg =
        header_written ? std::make_shared<const std::string>(stats_event(st)) : event_feed::message{};
    close_reason reason = header_written ? close_reason::drain : close_reason::error;
    while (msg) {
        stream.expires_after(write_timeout);
        auto [ec, n] = co_await net::async_write(stream, net::buffer(*msg), use_tuple);
        if (ec) {
            reason = reason_for(ec, close_reason::write_timeout, st);
            break;
        }
        msg = co_await st.feed.next(seen);
    }
    --st.stats.stream_subscribers;
    co_return reason;
}

// Answers a refused request (no route was taken: it never reached handle_request), lingers, and counts it.
net::awaitable<void> refuse(beast::tcp_stream& stream, server_state& st, const http_error& e,
                            unsigned version, std::size_t endpoint, steady_clock::time_point received)
{
    const auto& sc = st.cfg.server;
    request shape{http::verb::get, "/", version == 10 ? 10U : 11U};
    shape.keep_alive(false);
    auto res = error_response(st, shape, e);
    stream.expires_after(milliseconds{sc.write_timeout_ms});
    std::string head;
    co_await net::async_write(stream, wire_form(res, head), use_tuple); // best effort: we close either way
    auto now = steady_clock::now();
    st.stats.request_finished(endpoint, res.result_int(), now - received, now);
    co_await linger(stream, milliseconds{sc.linger_timeout_ms});
}

} // namespace

net::awaitable<void> run_session(tcp::socket socket, server_state& st)
{
    const auto& sc = st.cfg.server;
    std::string peer;
    if (st.access_log) {
        beast::error_code ec;
        peer = socket.remote_endpoint(ec).address().to_string();
    }
    beast::tcp_stream stream{std::move(socket)};
    connection conn{stream};
    st.connections.push_back(conn);
    beast::flat_buffer buffer;
    std::string wire_head; // each response's status line and fields, formatted here; its capacity is reused
    close_reason reason = close_reason::client;

    for (;;) {
        if (buffer.size() == 0) {
            // Between requests: the keep-alive wait, which the idle deadline or a drain may end.
            if (st.draining) {
                reason = close_reason::drain;
                break;
            }
            conn.idle = true;
            stream.expires_after(milliseconds{sc.idle_timeout_ms});
            auto [ec, n] = co_await stream.async_read_some(buffer.prepare(read_chunk), use_tuple);
            conn.idle = false;
            if (ec) {
                reason = reason_for(ec, close_reason::idle_timeout, st);
                break;
            }
            buffer.commit(n);
        }

        // The header first, within the header deadline; then, if there is one, the body.
        http::request_parser<http::string_body> parser;
        parser.header_limit(static_cast<std::uint32_t>(sc.max_header_bytes));
        parser.body_limit(static_cast<std::uint64_t>(sc.max_body_bytes));
        stream.expires_after(milliseconds{sc.header_timeout_ms});
        auto [read_ec, header_bytes] = co_await http::async_read_header(stream, buffer, parser, use_tuple);
        if (!read_ec) {
            const auto& head = parser.get();
            if (auto bound = refusal_for(head, sc)) {
                st.stats.request_started(st.stats.other());
                co_await refuse(stream, st, *bound, head.version(), st.stats.other(), steady_clock::now());
                reason = close_reason::bad_request;
                break;
            }
            if (!parser.is_done()) {
                // A client that asked to wait for our go-ahead before sending its body gets it now; a body
                // over the limit was refused already, when its Content-Length was parsed.
                if (beast::iequals(head[http::field::expect], "100-continue") && head.version() == 11) {
                    static constexpr std::string_view go_ahead = "HTTP/1.1 100 Continue\r\n\r\n";
                    stream.expires_after(milliseconds{sc.write_timeout_ms});
                    co_await net::async_write(stream, net::buffer(go_ahead), use_tuple);
                    stream.expires_after(milliseconds{sc.header_timeout_ms});
                }
                auto [body_ec, body_bytes] = co_await http::async_read(stream, buffer, parser, use_tuple);
                read_ec = body_ec;
            }
        }
        if (read_ec) {
            reason = reason_for(read_ec, close_reason::read_timeout, st);
            if (auto refused = refusal_for(read_ec, sc)) {
                st.stats.request_started(st.stats.other());
                unsigned version = parser.is_header_done() ? parser.get().version() : 11U;
                co_await refuse(stream, st, *refused, version, st.stats.other(), steady_clock::now());
                reason = close_reason::bad_request;
            }
            break;
        }
        auto received = steady_clock::now();
        const request& req = parser.get();
        request_tally tally;
        response res;
        const endpoint* ep = st.routes.find(req.target());
        if (ep != nullptr && ep->handler != nullptr) {
            // Work that takes time: race it against the client going away, so that a wait or a job nobody
            // will read is cancelled (or its result dropped) instead of answered into a closed socket.
            auto outcome = co_await (handle_request(st, req, received, tally) || client_gone(stream));
            if (outcome.index() == 1) {
                auto now = steady_clock::now();
                st.stats.request_finished(tally.endpoint, client_closed_request, now - received, now);
                if (st.access_log) {
                    log_access(st, peer, req, client_closed_request, 0, received, now);
                }
                reason = close_reason::client_gone;
                break;
            }
            res = std::move(std::get<0>(outcome));
        } else {
            res = co_await handle_request(st, req, received, tally);
        }

        stream.expires_after(milliseconds{sc.write_timeout_ms});
        auto [write_ec, written] = co_await net::async_write(stream, wire_form(res, wire_head), use_tuple);
        if (tally.stream) {
            reason = co_await stream_events(stream, st, !write_ec);
        }
        auto now = steady_clock::now();
        st.stats.request_finished(tally.endpoint, res.result_int(), now - received, now);
        if (st.access_log) {
            log_access(st, peer, req, res.result_int(), res.body().size(), received, now);
        }
        if (tally.stream) {
            break; // an event stream ends its connection; stream_events said why
        }
        if (write_ec) {
            reason = reason_for(write_ec, close_reason::write_timeout, st);
            break;
        }
        if (!res.keep_alive()) {
            reason = st.draining ? close_reason::drain : close_reason::client;
            break;
        }
    }
    st.stats.connection_closed(reason);
    // Send FIN so the client reads a clean end of stream; errors here (already closed) change nothing.
    beast::error_code ignored;
    stream.socket().shutdown(tcp::socket::shutdown_send, ignored);
}

namespace {

// Over server.max_connections: answer 503 on the fresh socket without waiting for anything (a few hundred
// bytes fit any empty send buffer; if they do not, the client learns nothing worse than a close), and close.
void refuse_over_capacity(tcp::socket& socket, const server_state& st)
{
    http_error e{http::status::service_unavailable,
                 "over_capacity",
                 "the server has as many connections open as it allows (config key server.max_connections)",
                 {},
                 st.cfg.server.max_connections,
                 {},
                 1};
    auto body = e.body();
    auto text = "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nRetry-After: 1\r\n"
                "Connection: close\r\nContent-Length: " +
                std::to_string(body.size()) + "\r\n\r\n" + body;
    ::send(socket.native_handle(), text.data(), text.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
    beast::error_code ignored; // the connection is being refused: how it closes changes nothing
    socket.shutdown(tcp::socket::shutdown_send, ignored);
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

net::awaitable<void> run_listener(tcp::acceptor& acceptor, server_state& st)
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
            net::steady_timer pause{ex, milliseconds{50}};
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
        socket.set_option(tcp::no_delay{true}, ignored);
        ++st.open_connections;
        net::co_spawn(ex, run_session(std::move(socket), st),
                      [&st](const std::exception_ptr& e) { st.session_ended(e); });
    }
}

} // namespace duet::server
