// Taking the server's timeline after a run: one GET /trace on a fresh connection, with a deadline, read
// whole.
#include <duet/client/trace_fetch.hpp>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <nlohmann/json.hpp>

namespace duet::client {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;

namespace {

// A trace is at most the server's ring, encoded: tens of megabytes with a large trace.capacity.
constexpr std::uint64_t max_trace_bytes = 512ULL << 20U;

http::response<http::string_body> get(const url& target, const std::string& path,
                                      std::chrono::milliseconds timeout)
{
    net::io_context ioc;
    net::ip::tcp::resolver resolver{ioc};
    beast::tcp_stream stream{ioc};
    beast::error_code ec;
    const auto endpoints = resolver.resolve(target.host, std::to_string(target.port), ec);
    if (ec) {
        throw trace_error{"cannot resolve " + target.host + ": " + ec.message()};
    }
    stream.expires_after(timeout);
    stream.connect(endpoints, ec);
    if (ec) {
        throw trace_error{"cannot connect to " + target.authority() + ": " + ec.message()};
    }
    http::request<http::empty_body> req{http::verb::get, path, 11};
    req.set(http::field::host, target.authority());
    req.set(http::field::connection, "close");
    http::write(stream, req, ec);
    beast::flat_buffer buffer;
    http::response_parser<http::string_body> parser;
    parser.body_limit(max_trace_bytes);
    if (!ec) {
        http::read(stream, buffer, parser, ec);
    }
    if (ec) {
        throw trace_error{"GET " + path + " on " + target.authority() + " failed: " + ec.message()};
    }
    return parser.release();
}

} // namespace

fetched_trace fetch_trace(const url& target, std::chrono::milliseconds window,
                          std::chrono::milliseconds timeout)
{
    auto ms = std::max<std::int64_t>(window.count(), 1);
    for (int attempt = 0; attempt < 2; ++attempt) {
        const auto res = get(target, "/trace?ms=" + std::to_string(ms), timeout);
        if (res.result() == http::status::ok) {
            return {res.body(), ms};
        }
        const auto error = nlohmann::json::parse(res.body(), nullptr, false);
        const auto& e = error.is_object() && error.contains("error") ? error["error"] : nlohmann::json{};
        if (res.result() == http::status::bad_request && e.value("code", "") == "out_of_range" &&
            e.contains("limit") && attempt == 0) {
            ms = e["limit"].get<std::int64_t>(); // the server keeps less than the run lasted: its most
            continue;
        }
        if (res.result() == http::status::not_found) {
            throw trace_error{target.authority() + " has no /trace: is it a duet-server?"};
        }
        throw trace_error{"GET /trace on " + target.authority() + ": " + std::to_string(res.result_int()) +
                          " " + e.value("message", std::string{res.reason()})};
    }
    throw trace_error{"GET /trace on " + target.authority() + " refused every window"};
}

} // namespace duet::client
