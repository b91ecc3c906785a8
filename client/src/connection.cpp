// A load connection's operations and its response parser: connect, send, read a response, expire.
#include <duet/client/connection.hpp>

#include <boost/asio/connect.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/core/read_size.hpp>
#include <boost/beast/http/error.hpp>

namespace duet::client {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using net::ip::tcp;
using std::chrono::steady_clock;

namespace {

// How much one read asks for at most: a response's head and a report fit many times over.
constexpr std::size_t read_limit = 65536;

} // namespace

response_parser::response_parser(std::string* body, std::uint64_t body_limit, bool head) : body_{body}
{
    // Whole messages per put(): the body is parsed in the same call as the head when it is there already.
    eager(true);
    skip(head);
    this->body_limit(body_limit);
    if (body_ != nullptr) {
        body_->clear();
    }
}

void response_parser::on_response_impl(int code, beast::string_view, int, beast::error_code&)
{
    status_ = static_cast<unsigned>(code);
}

std::size_t response_parser::on_body_impl(beast::string_view body, beast::error_code&)
{
    if (body_ != nullptr) {
        body_->append(body.data(), body.size());
    }
    return body.size();
}

std::size_t response_parser::on_chunk_body_impl(std::uint64_t, beast::string_view body, beast::error_code& ec)
{
    return on_body_impl(body, ec);
}

connection::connection(io_executor ex) : socket_{ex} {}

task<beast::error_code> connection::connect(std::span<const tcp::endpoint> endpoints,
                                            steady_clock::time_point deadline)
{
    deadline_ = deadline;
    buffer_.clear(); // nothing of the last connection's stream belongs to this one
    auto [ec, ep] = co_await net::async_connect(socket_, endpoints, use_tuple);
    if (!ec) {
        beast::error_code ignored; // without Nagle is an optimisation, not a requirement
        socket_.set_option(tcp::no_delay{true}, ignored);
        // So that send can try the socket without blocking the thread.
        socket_.non_blocking(true, ec);
    }
    co_return outcome(ec);
}

task<beast::error_code> connection::send(net::const_buffer bytes, steady_clock::time_point deadline)
{
    beast::error_code ec;
    auto n = socket_.write_some(bytes, ec);
    if (!ec && n == bytes.size()) {
        co_return ec; // no suspension, no trip through the scheduler: the common case
    }
    if (ec && ec != net::error::would_block) {
        co_return outcome(ec);
    }
    deadline_ = deadline;
    auto [wec, wn] = co_await net::async_write(socket_, bytes + n, use_tuple);
    co_return outcome(wec);
}

task<beast::error_code> connection::read_response(response_parser& parser, steady_clock::time_point deadline)
{
    deadline_ = deadline;
    response_bytes_ = 0;
    for (;;) {
        if (buffer_.size() > 0) {
            beast::error_code ec;
            auto used = parser.put(buffer_.data(), ec);
            buffer_.consume(used);
            response_bytes_ += used;
            if (ec && ec != http::error::need_more) {
                co_return outcome(ec);
            }
            if (parser.is_done()) {
                co_return outcome({});
            }
        }
        auto [ec, n] = co_await socket_.async_read_some(
            buffer_.prepare(beast::read_size(buffer_, read_limit)), use_tuple);
        if (ec == net::error::eof) {
            // As Beast's read: nothing of the response yet is a clean end of the stream; a message that
            // ends at the close (no length given) is complete; anything else was cut short.
            if (!parser.got_some()) {
                co_return outcome(http::error::end_of_stream);
            }
            parser.put_eof(ec);
            co_return outcome(ec);
        }
        if (ec) {
            co_return outcome(ec);
        }
        buffer_.commit(n);
    }
}

void connection::close() noexcept
{
    beast::error_code ignored; // closing a broken socket can only fail in ways that change nothing
    socket_.close(ignored);
    buffer_.clear();
}

void connection::expire_if_due(steady_clock::time_point now) noexcept
{
    if (now >= deadline_) {
        expired_ = true;
        deadline_ = steady_clock::time_point::max();
        close();
    }
}

// Every operation ends here: its deadline is over, and an operation the sweep cut short says so.
beast::error_code connection::outcome(beast::error_code ec) noexcept
{
    deadline_ = steady_clock::time_point::max();
    if (expired_) {
        expired_ = false;
        return beast::error::timeout;
    }
    return ec;
}

} // namespace duet::client
