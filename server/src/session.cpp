#include <duet/server/request_handler.hpp>
#include <duet/server/server_state.hpp>
#include <duet/server/session.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/write.hpp>
#include <spdlog/logger.h>
#include <spdlog/spdlog.h>

#include <array>
#include <chrono>
#include <optional>

namespace duet::server {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using net::ip::tcp;
using std::chrono::milliseconds;
using std::chrono::steady_clock;

namespace {

constexpr auto use_tuple = net::as_tuple(net::use_awaitable);

// Bytes asked for per read while waiting for a new request; Beast grows the buffer if a request needs more.
constexpr std::size_t read_chunk = 4096;

// A failed read: either a request we must refuse with a status (then close, as the stream cannot be
// resynced), or nullopt for the ends that are nobody's fault or cannot be answered: the peer closed or reset,
// the header deadline passed (tcp_stream has already closed the socket), or the drain cancelled the read.
std::optional<http_error> refusal_for(const beast::error_code& ec, const duet::server_config& sc)
{
    if (ec == http::error::header_limit || ec == http::error::buffer_overflow) {
        return http_error{
            http::status::request_header_fields_too_large,
            "header_too_large",
            "the request line and headers exceed the limit (config key server.max_header_bytes)",
            {},
            sc.max_header_bytes,
            {},
            {}};
    }
    if (ec == http::error::body_limit) {
        return http_error{http::status::payload_too_large,
                          "body_too_large",
                          "the request body exceeds the limit (config key server.max_body_bytes)",
                          {},
                          sc.max_body_bytes,
                          {},
                          {}};
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

// Lingering close: stop sending, then read and discard what the client still sends, until it closes or the
// deadline passes. Closing with unread data would make the kernel answer with a reset, and a reset can
// destroy the refusal we just sent before the client reads it. Bounded by time; the bytes are thrown away as
// they come.
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

void log_access(server_state& st, const std::string& peer, const request& req, const response& res,
                steady_clock::time_point received)
{
    auto us = std::chrono::duration_cast<std::chrono::microseconds>(steady_clock::now() - received).count();
    st.access_log->info("{} \"{} {} HTTP/{}.{}\" {} {} {}us", peer, req.method_string(), req.target(),
                        req.version() / 10, req.version() % 10, res.result_int(), res.body().size(), us);
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

    for (;;) {
        if (buffer.size() == 0) {
            // Between requests: the keep-alive wait, which the idle deadline or a drain may end.
            if (st.draining) {
                break;
            }
            conn.idle = true;
            stream.expires_after(milliseconds{sc.idle_timeout_ms});
            auto [ec, n] = co_await stream.async_read_some(buffer.prepare(read_chunk), use_tuple);
            conn.idle = false;
            if (ec) {
                break; // the client closed, stayed idle too long, or the drain closed us: normal ends
            }
            buffer.commit(n);
        }

        http::request_parser<http::string_body> parser;
        parser.header_limit(static_cast<std::uint32_t>(sc.max_header_bytes));
        parser.body_limit(static_cast<std::uint64_t>(sc.max_body_bytes));
        stream.expires_after(milliseconds{sc.header_timeout_ms});
        auto [read_ec, read_bytes] = co_await http::async_read(stream, buffer, parser, use_tuple);
        if (read_ec) {
            if (auto refusal = refusal_for(read_ec, sc)) {
                request dummy{http::verb::get, "/", 11};
                dummy.keep_alive(false);
                auto res = error_response(st, dummy, *refusal);
                stream.expires_after(milliseconds{sc.write_timeout_ms});
                co_await http::async_write(stream, res, use_tuple); // best effort: we close either way
                co_await linger(stream, milliseconds{sc.linger_timeout_ms});
            }
            break;
        }
        auto received = steady_clock::now();
        const request& req = parser.get();
        auto res = co_await handle_request(st, req, received);

        stream.expires_after(milliseconds{sc.write_timeout_ms});
        auto [write_ec, written] = co_await http::async_write(stream, res, use_tuple);
        if (st.access_log) {
            log_access(st, peer, req, res, received);
        }
        if (write_ec || !res.keep_alive()) {
            break; // a client that stopped reading, or one that asked to close
        }
    }
    // Send FIN so the client reads a clean end of stream; errors here (already closed) change nothing.
    beast::error_code ignored;
    stream.socket().shutdown(tcp::socket::shutdown_send, ignored);
}

net::awaitable<void> run_listener(tcp::acceptor& acceptor, server_state& st)
{
    auto ex = co_await net::this_coro::executor;
    for (;;) {
        auto [ec, socket] = co_await acceptor.async_accept(use_tuple);
        if (!acceptor.is_open()) {
            co_return; // the drain closed the acceptor
        }
        if (ec) {
            // Out of descriptors, or a connection reset before it was accepted: pause so that a persistent
            // condition (EMFILE) does not spin, then carry on.
            spdlog::warn("accept failed: {}", ec.message());
            net::steady_timer pause{ex, milliseconds{50}};
            co_await pause.async_wait(use_tuple);
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
