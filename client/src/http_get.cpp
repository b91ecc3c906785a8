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
    // Asynchronous calls on one io_context run here: a stream's deadline applies only to asynchronous
    // operations, and a blocking connect would wait for the kernel's retries (minutes) instead.
    net::io_context ioc;
    net::ip::tcp::resolver resolver{ioc};
    beast::tcp_stream stream{ioc};
    http::request<http::empty_body> req{http::verb::get, path, 11};
    req.set(http::field::host, target.authority());
    req.set(http::field::accept, "application/json");
    req.set(http::field::connection, "close");
    beast::flat_buffer buffer;
    http::response_parser<http::string_body> parser;
    parser.body_limit(max_bytes);
    std::string failed; // what went wrong, in one line; empty when the answer is whole

    const auto on_read = [&](beast::error_code ec, std::size_t) {
        if (ec) {
            failed = "GET " + path + " on " + target.authority() + " failed: " + ec.message();
        }
    };
    const auto on_write = [&](beast::error_code ec, std::size_t) {
        if (ec) {
            failed = "GET " + path + " on " + target.authority() + " failed: " + ec.message();
            return;
        }
        http::async_read(stream, buffer, parser, on_read);
    };
    const auto on_connect = [&](beast::error_code ec, const net::ip::tcp::endpoint&) {
        if (ec) {
            failed = "cannot connect to " + target.authority() + ": " + ec.message();
            return;
        }
        http::async_write(stream, req, on_write);
    };
    stream.expires_after(timeout); // one deadline for the connection, the request and the whole answer
    resolver.async_resolve(target.host, std::to_string(target.port),
                           [&](beast::error_code ec, const net::ip::tcp::resolver::results_type& endpoints) {
                               if (ec) {
                                   failed = "cannot resolve " + target.host + ": " + ec.message();
                                   return;
                               }
                               stream.async_connect(endpoints, on_connect);
                           });
    ioc.run();
    if (!failed.empty()) {
        throw http_get_error{failed};
    }
    return {parser.get().result_int(), std::move(parser.get().body())};
}

} // namespace duet::client
