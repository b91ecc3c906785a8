// The test HTTP client: Beast's parser over blocking loopback sockets with a deadline on every call.
#include "http_client.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <stdexcept>

namespace duet::test {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using net::ip::tcp;
using std::chrono::steady_clock;

namespace {

constexpr auto use_tuple = net::as_tuple(net::use_awaitable);

tcp::endpoint loopback(std::uint16_t port)
{
    return {net::ip::make_address_v4("127.0.0.1"), port};
}

std::string lower(std::string_view s)
{
    std::string out{s};
    std::transform(out.begin(), out.end(), out.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    return out;
}

// Writes one request and reads its response on an open stream; deadline per exchange.
net::awaitable<http_reply> exchange(beast::tcp_stream& stream, beast::flat_buffer& buffer, http::verb method,
                                    std::string_view target,
                                    const std::vector<std::pair<std::string, std::string>>& headers,
                                    std::chrono::milliseconds timeout)
{
    http_reply reply;
    http::request<http::string_body> req{method, target, 11};
    req.set(http::field::host, "127.0.0.1");
    req.set(http::field::user_agent, "duet-tests");
    for (const auto& [name, value] : headers) {
        req.set(name, value);
    }
    auto start = steady_clock::now();
    stream.expires_after(timeout);
    if (auto [ec, n] = co_await http::async_write(stream, req, use_tuple); ec) {
        reply.error = "write: " + ec.message();
        co_return reply;
    }
    http::response_parser<http::string_body> parser;
    parser.body_limit(64 * 1024 * 1024);
    parser.skip(method == http::verb::head);
    if (auto [ec, n] = co_await http::async_read(stream, buffer, parser, use_tuple); ec) {
        reply.error = "read: " + ec.message();
        co_return reply;
    }
    reply.elapsed = steady_clock::now() - start;
    const auto& res = parser.get();
    reply.status = res.result_int();
    reply.keep_alive = res.keep_alive();
    for (const auto& field : res) {
        reply.headers[lower(field.name_string())] = std::string{field.value()};
    }
    reply.body = res.body();
    co_return reply;
}

net::awaitable<http_reply> connect_and_get(std::uint16_t port, std::string target,
                                           std::chrono::milliseconds timeout)
{
    beast::tcp_stream stream{co_await net::this_coro::executor};
    stream.expires_after(timeout);
    if (auto [ec] = co_await stream.async_connect(loopback(port), use_tuple); ec) {
        http_reply reply;
        reply.error = "connect: " + ec.message();
        co_return reply;
    }
    beast::flat_buffer buffer;
    co_return co_await exchange(stream, buffer, http::verb::get, target, {}, timeout);
}

// Runs one coroutine to completion on a private io_context and returns its value.
template <typename T>
T run_blocking(net::io_context& ioc, net::awaitable<T> op)
{
    std::optional<T> value;
    std::exception_ptr error;
    net::co_spawn(ioc, std::move(op), [&](std::exception_ptr e, T v) {
        error = e;
        value = std::move(v);
    });
    ioc.restart();
    ioc.run();
    if (error) {
        std::rethrow_exception(error);
    }
    return std::move(*value);
}

} // namespace

std::string http_reply::header(const std::string& lower_name) const
{
    auto it = headers.find(lower_name);
    return it == headers.end() ? std::string{} : it->second;
}

struct client_connection::impl
{
    net::io_context ioc;
    beast::tcp_stream stream{ioc};
    beast::flat_buffer buffer;
    std::chrono::milliseconds timeout;
};

client_connection::client_connection(std::uint16_t port, std::chrono::milliseconds timeout)
    : impl_{std::make_unique<impl>()}
{
    impl_->timeout = timeout;
    impl_->stream.expires_after(timeout);
    impl_->stream.connect(loopback(port));
}

client_connection::~client_connection() = default;

http_reply client_connection::request(http::verb method, std::string_view target,
                                      const std::vector<std::pair<std::string, std::string>>& headers)
{
    auto& m = *impl_;
    return run_blocking(m.ioc, exchange(m.stream, m.buffer, method, target, headers, m.timeout));
}

bool client_connection::closed_by_server(std::chrono::milliseconds within)
{
    auto& m = *impl_;
    auto wait = [&]() -> net::awaitable<bool> {
        m.stream.expires_after(within);
        char byte = 0;
        auto [ec, n] = co_await m.stream.async_read_some(net::buffer(&byte, 1), use_tuple);
        co_return ec&& ec != beast::error::timeout;
    };
    return run_blocking(m.ioc, wait());
}

http_reply http_get(std::uint16_t port, std::string_view target, std::chrono::milliseconds timeout)
{
    net::io_context ioc;
    return run_blocking(ioc, connect_and_get(port, std::string{target}, timeout));
}

std::vector<http_reply> get_concurrently(std::uint16_t port, const std::vector<std::string>& targets,
                                         std::chrono::milliseconds timeout)
{
    net::io_context ioc;
    std::vector<http_reply> replies(targets.size());
    for (std::size_t i = 0; i < targets.size(); ++i) {
        net::co_spawn(ioc, connect_and_get(port, targets[i], timeout),
                      [&replies, i](std::exception_ptr e, http_reply r) {
                          if (e) {
                              r.error = "exception";
                          }
                          replies[i] = std::move(r);
                      });
    }
    ioc.run();
    return replies;
}

struct event_stream::impl
{
    net::io_context ioc;
    beast::tcp_stream stream{ioc};
    std::string pending; // bytes read and not yet returned

    // Reads more bytes into pending; false on close, error or timeout.
    bool read_more(std::chrono::milliseconds timeout)
    {
        auto op = [&]() -> net::awaitable<bool> {
            std::array<char, 8192> chunk{};
            stream.expires_after(timeout);
            auto [ec, n] = co_await stream.async_read_some(net::buffer(chunk), use_tuple);
            pending.append(chunk.data(), n);
            co_return !ec;
        };
        return run_blocking(ioc, op());
    }
};

event_stream::event_stream(std::uint16_t port, std::string_view target, int receive_buffer,
                           std::chrono::milliseconds timeout)
    : impl_{std::make_unique<impl>()}
{
    auto& m = *impl_;
    m.stream.socket().open(tcp::v4());
    if (receive_buffer > 0) {
        m.stream.socket().set_option(net::socket_base::receive_buffer_size{receive_buffer});
    }
    m.stream.expires_after(timeout);
    m.stream.connect(loopback(port));
    std::string req =
        "GET " + std::string{target} + " HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n\r\n";
    net::write(m.stream.socket(), net::buffer(req));
    while (m.pending.find("\r\n\r\n") == std::string::npos) {
        if (!m.read_more(timeout)) {
            head_ = m.pending;
            return;
        }
    }
    auto end = m.pending.find("\r\n\r\n");
    head_ = m.pending.substr(0, end + 4);
    m.pending.erase(0, end + 4);
}

event_stream::~event_stream() = default;

std::optional<std::string> event_stream::next(std::chrono::milliseconds timeout)
{
    auto& m = *impl_;
    auto deadline = steady_clock::now() + timeout;
    for (;;) {
        auto end = m.pending.find("\n\n");
        if (end != std::string::npos) {
            auto event = m.pending.substr(0, end);
            m.pending.erase(0, end + 2);
            return event;
        }
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - steady_clock::now());
        if (left <= 0ms || !m.read_more(left)) {
            return std::nullopt;
        }
    }
}

bool event_stream::wait_closed(std::chrono::milliseconds timeout)
{
    auto& m = *impl_;
    auto deadline = steady_clock::now() + timeout;
    for (;;) {
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - steady_clock::now());
        if (left <= 0ms) {
            return false;
        }
        m.pending.clear();
        if (!m.read_more(left)) {
            return steady_clock::now() < deadline;
        }
    }
}

raw_reply raw_exchange(std::uint16_t port, std::string_view bytes, std::chrono::milliseconds timeout)
{
    net::io_context ioc;
    auto op = [&]() -> net::awaitable<raw_reply> {
        raw_reply reply;
        beast::tcp_stream stream{ioc};
        stream.expires_after(timeout);
        if (auto [ec] = co_await stream.async_connect(loopback(port), use_tuple); ec) {
            co_return reply;
        }
        // A write error is no reason to stop: a server may refuse early and close, and its answer is still
        // there to read.
        co_await net::async_write(stream, net::buffer(bytes.data(), bytes.size()), use_tuple);
        std::array<char, 4096> chunk{};
        for (;;) {
            auto [ec, n] = co_await stream.async_read_some(net::buffer(chunk), use_tuple);
            reply.bytes.append(chunk.data(), n);
            if (ec) {
                reply.closed = ec != beast::error::timeout;
                co_return reply;
            }
        }
    };
    return run_blocking(ioc, op());
}

raw_connection::raw_connection(std::uint16_t port) : fd_{::socket(AF_INET, SOCK_STREAM, 0)}
{
    sockaddr_in to{};
    to.sin_family = AF_INET;
    to.sin_port = htons(port);
    to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd_ < 0 || ::connect(fd_, reinterpret_cast<const sockaddr*>(&to), sizeof to) != 0) {
        throw std::runtime_error{"raw_connection: cannot connect"};
    }
}

raw_connection::~raw_connection()
{
    close();
}

void raw_connection::close()
{
    if (fd_ >= 0) {
        ::close(fd_);
        fd_ = -1;
    }
}

void raw_connection::send(std::string_view bytes)
{
    while (!bytes.empty()) {
        const auto n = ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
        if (n <= 0) {
            throw std::runtime_error{"raw_connection: send failed"};
        }
        bytes.remove_prefix(static_cast<std::size_t>(n));
    }
}

long raw_connection::receive_by(steady_clock::time_point until, std::array<char, 4096>& chunk)
{
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(until - steady_clock::now());
    pollfd p{fd_, POLLIN, 0};
    if (left.count() <= 0 || ::poll(&p, 1, static_cast<int>(left.count())) != 1) {
        return -2; // nothing before the deadline
    }
    return ::recv(fd_, chunk.data(), chunk.size(), 0);
}

std::string raw_connection::read_until(std::string_view needle, std::chrono::milliseconds timeout)
{
    std::string got;
    const auto until = steady_clock::now() + timeout;
    std::array<char, 4096> chunk{};
    while (got.find(needle) == std::string::npos) {
        const auto n = receive_by(until, chunk);
        if (n <= 0) {
            break;
        }
        got.append(chunk.data(), static_cast<std::size_t>(n));
    }
    return got;
}

bool raw_connection::closed_by_server(std::chrono::milliseconds timeout)
{
    const auto until = steady_clock::now() + timeout;
    std::array<char, 4096> chunk{};
    for (;;) {
        const auto n = receive_by(until, chunk);
        if (n == -2) {
            return false;
        }
        if (n <= 0) {
            return true; // the end of the stream, or a reset
        }
    }
}

} // namespace duet::test
