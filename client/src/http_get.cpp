// One GET on a fresh connection, with a deadline, read whole (Beast's synchronous calls: it is not the load).
#include <duet/client/http_get.hpp>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>

namespace duet::client {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;

http_answer http_get(const url& target, const std::string& path, std::chrono::milliseconds timeout,
                     std::uint64_t max_bytes)
{
    net::io_context ioc;
    net::ip::tcp::resolver resolver{ioc};
    beast::tcp_stream stream{ioc};
    beast::error_code ec;
    const auto endpoints = resolver.resolve(target.host, std::to_string(target.port), ec);
    if (ec) {
        throw http_get_error{"cannot resolve " + target.host + ": " + ec.message()};
    }
    stream.expires_after(timeout);
    stream.connect(endpoints, ec);
    if (ec) {
        throw http_get_error{"cannot connect to " + target.authority() + ": " + ec.message()};
    }
    http::request<http::empty_body> req{http::verb::get, path, 11};
    req.set(http::field::host, target.authority());
    req.set(http::field::accept, "application/json");
    req.set(http::field::connection, "close");
    http::write(stream, req, ec);
    beast::flat_buffer buffer;
    http::response_parser<http::string_body> parser;
    parser.body_limit(max_bytes);
    if (!ec) {
        http::read(stream, buffer, parser, ec);
    }
    if (ec) {
        throw http_get_error{"GET " + path + " on " + target.authority() + " failed: " + ec.message()};
    }
    return {parser.get().result_int(), std::move(parser.get().body())};
}

} // namespace duet::client
