// The accept loop: a session per connection, a 503 written at once beyond server.max_connections, and a pause
// instead of a busy loop while accepts fail (out of descriptors).
#include <duet/server/http_error.hpp>
#include <duet/server/http_types.hpp>
#include <duet/server/listener.hpp>
#include <duet/server/server_state.hpp>
#include <duet/server/session.hpp>
#include <duet/server/wire.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/this_coro.hpp>
#include <spdlog/spdlog.h>

#include <sys/socket.h>

#include <array>
#include <chrono>
#include <cstdint>
#include <string>

namespace duet::server {

namespace net = boost::asio;
namespace http = boost::beast::http;
using net::ip::tcp;
using std::chrono::milliseconds;
using std::chrono::steady_clock;

namespace {

// Over server.max_connections: answer 503 on the fresh socket without waiting for anything (a few hundred
// bytes fit any empty send buffer; if they do not, the client learns nothing worse than a close), and close.
void refuse_over_capacity(tcp_socket& socket, const server_state& st)
{
    const http_error e{
        .status = http::status::service_unavailable,
        .code = "over_capacity",
        .message = "the server has as many connections open as it allows (config key server.max_connections)",
        .limit = st.cfg.server.max_connections,
        .retry_after_s = 1};
    response res{e.status, 11};
    res.content_type = "application/json";
    res.body = e.body();
    res.retry_after_s = e.retry_after_s;
    res.keep_alive = false;
    std::string head;
    boost::system::error_code ignored; // the connection is being refused: how it closes changes nothing
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
    acceptor.set_option(tcp::no_delay{true}); // inherited by accepted sockets (see listener.hpp)
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
        auto [ec, socket] = co_await acceptor.async_accept(net::as_tuple(use_task));
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
            co_await pause.async_wait(net::as_tuple(use_task));
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
        // Responses are sent at once, without waiting (connection::send). A socket that is already gone fails
        // here and then in its first read.
        boost::system::error_code ignored;
        socket.non_blocking(true, ignored);
        ++st.open_connections;
        start_session(std::move(socket), st);
    }
}

} // namespace duet::server
