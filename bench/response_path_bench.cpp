// duet-load's response path without sockets: the bytes of a response → the parser → the tally (status,
// latency histograms, the server's view). What a response costs the client besides the system calls; a
// regression shows here in nanoseconds (and, under callgrind, in instructions). Beast's own response_parser
// is measured beside it, as the yardstick the client's parser replaced.
#include <duet/client/connection.hpp>
#include <duet/client/results.hpp>

#include <boost/asio/buffer.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/string_body.hpp>
#include <benchmark/benchmark.h>

#include <chrono>
#include <string>

namespace {

namespace net = boost::asio;
namespace http = boost::beast::http;

// duet-server's /healthz response, as sent.
const std::string healthz =
    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 15\r\nDate: Mon, "
    "07 Dec 2026 12:03:54 GMT\r\nServer: duet/0.1.0\r\n\r\n{\"status\":\"ok\"}";

void count(duet::client::tally& t, unsigned code, std::size_t bytes, std::string_view body)
{
    ++t.requests;
    t.bytes_read += bytes;
    ++t.status[code < t.status.size() ? code : 0];
    t.latency.record(std::chrono::nanoseconds{51234});
    t.service.record(std::chrono::nanoseconds{51234});
    t.server.add_body(body);
}

void BM_ResponsePathHealthz(benchmark::State& state)
{
    duet::client::tally t;
    std::string body; // reused, as a connection reuses it
    for (auto _ : state) {
        duet::client::response_parser p{&body, 1 << 20, false};
        boost::beast::error_code ec;
        auto used = p.put(net::buffer(healthz), ec);
        count(t, p.status(), used, body);
    }
    benchmark::DoNotOptimize(t.requests);
}
BENCHMARK(BM_ResponsePathHealthz);

// The same with Beast's response_parser and a string body, as duet-load read responses before.
void BM_ResponsePathHealthzBeastParser(benchmark::State& state)
{
    duet::client::tally t;
    for (auto _ : state) {
        http::response_parser<http::string_body> p;
        p.eager(true);
        p.body_limit(1 << 20);
        boost::beast::error_code ec;
        auto used = p.put(net::buffer(healthz), ec);
        count(t, p.get().result_int(), used, p.get().body());
    }
    benchmark::DoNotOptimize(t.requests);
}
BENCHMARK(BM_ResponsePathHealthzBeastParser);

} // namespace
