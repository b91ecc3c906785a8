// A yardstick for target 2 of the performance work (docs/PERFORMANCE.md): the least a single-threaded Asio
// server can do for wrk's /io/sleep?ms=N test. One io_context, one coroutine per connection, a request taken
// as whatever ends in a blank line, a steady_timer for the wait, a fixed 15-byte answer. No report, no stats,
// no deadlines, no limits: not a server to run, a measure of what the loop itself costs.
//
//   duet-calibration-server PORT [BACKLOG] [BURN_NS]
//
// BURN_NS adds that much busy CPU before each answer, to see how the same test degrades as a request's cost
// grows.
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include <array>
#include <chrono>
#include <cstdlib>
#include <string>
#include <string_view>

namespace {

namespace net = boost::asio;
using net::ip::tcp;
using std::chrono::steady_clock;

constexpr std::string_view answer =
    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 15\r\n\r\n"
    "{\"status\":\"ok\"}";

net::awaitable<void> session(tcp::socket socket, steady_clock::duration burn)
{
    std::array<char, 1000> buf{};
    std::size_t have = 0;
    net::steady_timer timer{socket.get_executor()};
    try {
        for (;;) {
            have += co_await socket.async_read_some(net::buffer(buf.data() + have, buf.size() - have),
                                                    net::use_awaitable);
            const std::string_view seen{buf.data(), have};
            if (seen.find("\r\n\r\n") == std::string_view::npos) {
                if (have == buf.size()) {
                    co_return;
                }
                continue;
            }
            have = 0;
            const auto ms = seen.find("ms=");
            const long wait = ms == std::string_view::npos ? 0 : std::atol(buf.data() + ms + 3);
            if (wait > 0) {
                timer.expires_after(std::chrono::milliseconds{wait});
                co_await timer.async_wait(net::use_awaitable);
            }
            for (const auto start = steady_clock::now(); steady_clock::now() - start < burn;) {
            }
            co_await net::async_write(socket, net::buffer(answer), net::use_awaitable);
        }
    } catch (const boost::system::system_error&) {
        // the client closed: the connection ends
    }
}

net::awaitable<void> listen(tcp::acceptor& acceptor, steady_clock::duration burn)
{
    net::steady_timer pause{acceptor.get_executor()};
    for (;;) {
        auto [ec, socket] = co_await acceptor.async_accept(net::as_tuple(net::use_awaitable));
        if (ec) {
            // Out of descriptors, or a connection reset before it was accepted: carry on, without spinning.
            pause.expires_after(std::chrono::milliseconds{10});
            co_await pause.async_wait(net::as_tuple(net::use_awaitable));
            continue;
        }
        net::co_spawn(acceptor.get_executor(), session(std::move(socket), burn), net::detached);
    }
}

} // namespace

int main(int argc, char** argv)
{
    if (argc < 2) {
        return 2;
    }
    const auto port = static_cast<unsigned short>(std::atoi(argv[1]));
    const int backlog = argc > 2 ? std::atoi(argv[2]) : 1024;
    const std::chrono::nanoseconds burn{argc > 3 ? std::atol(argv[3]) : 0};
    net::io_context ioc{1};
    tcp::acceptor acceptor{ioc};
    const tcp::endpoint at{net::ip::make_address("127.0.0.1"), port};
    acceptor.open(at.protocol());
    acceptor.set_option(tcp::acceptor::reuse_address{true});
    acceptor.set_option(tcp::no_delay{true}); // Linux copies it to each accepted socket
    acceptor.bind(at);
    acceptor.listen(backlog);
    net::co_spawn(ioc, listen(acceptor, burn), net::detached);
    ioc.run();
}
