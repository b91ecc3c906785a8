// The request path without sockets: bytes → the request parser (Beast's) → router → handler → response → wire
// form. What a
// request costs the I/O thread besides the system calls; a regression shows here in nanoseconds (and, under
// callgrind, in instructions) before it shows in noisy end-to-end throughput.
#include <duet/server/request_handler.hpp>
#include <duet/server/request_parser.hpp>
#include <duet/server/server_state.hpp>
#include <duet/server/slack_timer.hpp>
#include <duet/server/wire.hpp>

#include <boost/asio/buffer.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <benchmark/benchmark.h>

#include <optional>
#include <string>

namespace {

namespace net = boost::asio;
namespace http = boost::beast::http;
using namespace duet::server;

void request_path(benchmark::State& state, const std::string& target)
{
    duet::config cfg;
    worker_pool pool{1, 1024};
    server_state st{cfg, pool, duet::cpu_allowance{}};
    net::io_context ioc{1};
    st.wait_timer = &slack_timer::of(ioc, std::chrono::microseconds{cfg.server.timer_slack_us});
    st.io_thread = duet::thread_ident::current();
    std::string bytes = // not const: the parser may rewrite a version in place (none here)
        "GET " + target + " HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nUser-Agent: wrk\r\nAccept: */*\r\n\r\n";
    std::string head;
    request req; // reused, as a connection reuses it
    std::size_t sent = 0;
    for (auto _ : state) {
        request_parser parser{req, cfg.server};
        boost::beast::error_code ec;
        parser.put(net::buffer(bytes), ec);
        std::size_t endpoint = 0;
        std::optional<response> res;
        net::co_spawn(ioc, handle_request(st, req, std::chrono::steady_clock::now(), endpoint),
                      [&](const std::exception_ptr&, response r) { res = std::move(r); });
        ioc.restart();
        ioc.run();
        for (const auto& b : wire_form(*res, head)) {
            sent += b.size();
        }
        st.stats.request_finished(endpoint, res->status_code(), {}, std::chrono::steady_clock::now());
    }
    benchmark::DoNotOptimize(sent);
}

void BM_RequestPathHealthz(benchmark::State& state)
{
    request_path(state, "/healthz");
}
BENCHMARK(BM_RequestPathHealthz);

// An I/O endpoint with its full JSON report; ms=0 completes without a timer wait.
void BM_RequestPathSleepReport(benchmark::State& state)
{
    request_path(state, "/io/sleep?ms=0");
}
BENCHMARK(BM_RequestPathSleepReport);

} // namespace
