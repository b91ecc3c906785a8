// Request handling without a network: a request goes in, a response with its report comes out.
#include <duet/server/request_handler.hpp>

#include <duet/server/report.hpp>
#include <duet/server/server_state.hpp>
#include <duet/server/slack_timer.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <regex>

namespace {

namespace net = boost::asio;
namespace http = boost::beast::http;
using duet::server::request;
using duet::server::response;

// Request handling without a network: a request goes in, a response comes out.
class RequestHandler : public ::testing::Test
{
protected:
    RequestHandler() : pool_{2, 8}, st_{cfg_, pool_, duet::cpu_allowance{}}
    {
        st_.io_thread = duet::thread_ident::current();
        st_.wait_timer =
            &duet::server::slack_timer::of(ioc_, std::chrono::microseconds{cfg_.server.timer_slack_us});
    }

    response handle(http::verb method, std::string target, std::string request_id = {})
    {
        request req{method, target, 11};
        req.request_id = std::move(request_id);
        std::optional<response> res;
        net::co_spawn(ioc_,
                      duet::server::handle_request(st_, req, std::chrono::steady_clock::now(), endpoint_),
                      [&](std::exception_ptr e, response r) {
                          if (e) {
                              std::rethrow_exception(e);
                          }
                          res = std::move(r);
                      });
        ioc_.restart();
        ioc_.run();
        return std::move(*res);
    }

    static nlohmann::json body(const response& r) { return nlohmann::json::parse(r.body); }

    duet::config cfg_;
    duet::server::worker_pool pool_;
    duet::server::server_state st_;
    net::io_context ioc_;
    std::size_t endpoint_ = 0;
};

TEST_F(RequestHandler, SleepReportsTheEventLoopModelAndNoWorker)
{
    auto res = handle(http::verb::get, "/io/sleep?ms=20");
    ASSERT_EQ(res.status, http::status::ok) << res.body;
    EXPECT_EQ(res.content_type, "application/json");
    auto j = body(res);
    EXPECT_EQ(j["result"]["slept_ms"], 20);
    const auto& r = j["report"];
    EXPECT_EQ(r["endpoint"], "/io/sleep");
    EXPECT_EQ(r["params"]["ms"], 20);
    EXPECT_EQ(r["model"], "event-loop");
    EXPECT_GE(r["timing_us"]["service"].get<double>(), 20000.0);
    EXPECT_GE(r["timing_us"]["total"].get<double>(), r["timing_us"]["service"].get<double>());
    EXPECT_EQ(r["timing_us"]["queue"], 0.0);
    EXPECT_TRUE(r["threads"]["worker"].is_null());
    EXPECT_EQ(r["threads"]["io"]["tid"], duet::current_thread_id());
    EXPECT_LT(r["cpu_time_us"].get<double>(), 5000.0); // a 20 ms wait costs almost nothing
    EXPECT_EQ(r["id"], res.request_id);
}

TEST_F(RequestHandler, AZeroSleepYieldsOnceAndReportsLikeAnyOther)
{
    // ms=0 takes no timer: the handler yields to the loop (ioc_.run() must run it), then reports.
    auto res = handle(http::verb::get, "/io/sleep?ms=0");
    ASSERT_EQ(res.status, http::status::ok) << res.body;
    auto j = body(res);
    EXPECT_EQ(j["result"]["slept_ms"], 0);
    EXPECT_GE(j["result"]["late_us"].get<int>(), 0);
    EXPECT_EQ(j["report"]["model"], "event-loop");
    EXPECT_LT(j["report"]["timing_us"]["service"].get<double>(), 1e6);
}

TEST_F(RequestHandler, PoolWorkRunsOnAWorkerAndReportsItsCpuTime)
{
    auto res = handle(http::verb::get, "/cpu/fib?n=27");
    ASSERT_EQ(res.status, http::status::ok) << res.body;
    auto j = body(res);
    EXPECT_EQ(j["result"]["value"], 196418);
    const auto& r = j["report"];
    EXPECT_EQ(r["model"], "worker-pool");
    EXPECT_EQ(r["params"]["mode"], "pool");
    auto worker = r["threads"]["worker"]["name"].get<std::string>();
    EXPECT_EQ(worker.rfind("duet-w", 0), 0U) << worker;
    EXPECT_NE(r["threads"]["worker"]["tid"], duet::current_thread_id());
    EXPECT_GT(r["cpu_time_us"].get<double>(), 0.0);
    // CPU work: its CPU time is most of its service time (wide margin for a shared machine).
    EXPECT_LE(r["cpu_time_us"].get<double>(), r["timing_us"]["service"].get<double>() * 1.1 + 1000);
    EXPECT_GE(r["cores"]["start"].get<int>(), 0);
}

TEST_F(RequestHandler, InlineWorkRunsOnTheIoThread)
{
    auto res = handle(http::verb::get, "/cpu/primes?n=10000&mode=inline");
    ASSERT_EQ(res.status, http::status::ok);
    auto j = body(res);
    EXPECT_EQ(j["result"]["primes"], 1229);
    EXPECT_EQ(j["report"]["model"], "inline");
    EXPECT_TRUE(j["report"]["threads"]["worker"].is_null());
}

TEST_F(RequestHandler, ServerTimingAndRequestIdHeaders)
{
    auto res = handle(http::verb::get, "/io/sleep?ms=1");
    std::regex timing{R"(queue;dur=\d+\.\d{3}, service;dur=\d+\.\d{3}, total;dur=\d+\.\d{3})"};
    ASSERT_TRUE(res.server_timing);
    auto header = duet::server::server_timing(*res.server_timing);
    EXPECT_TRUE(std::regex_match(header, timing)) << header;
    auto first = res.request_id;
    auto second = handle(http::verb::get, "/io/sleep?ms=1").request_id;
    EXPECT_TRUE(std::regex_match(first, std::regex{"[0-9a-f]{8}-[0-9a-f]+"})) << first;
    EXPECT_EQ(first.substr(0, 9), second.substr(0, 9)) << "one prefix per server";
    EXPECT_NE(first, second);

    auto echoed = handle(http::verb::get, "/io/sleep?ms=1", "trace-abc.123");
    EXPECT_EQ(echoed.request_id, "trace-abc.123");
    EXPECT_EQ(body(echoed)["report"]["id"], "trace-abc.123");
    auto refused = handle(http::verb::get, "/io/sleep?ms=1", "bad id with spaces");
    EXPECT_NE(refused.request_id, "bad id with spaces");
    // The report writes ids without escaping them: one that would need it is never taken from the client.
    auto quoted = handle(http::verb::get, "/io/sleep?ms=1", R"(a"b\c)");
    EXPECT_NE(quoted.request_id, R"(a"b\c)");
    EXPECT_EQ(body(quoted)["report"]["id"], quoted.request_id);
}

TEST_F(RequestHandler, HeadSendsNoBodyButTheLength)
{
    auto get = handle(http::verb::get, "/healthz");
    auto head = handle(http::verb::head, "/healthz");
    EXPECT_EQ(head.status, http::status::ok);
    EXPECT_TRUE(head.head_only) << "the header alone is sent";
    EXPECT_FALSE(get.head_only);
    EXPECT_EQ(head.body.size(), get.body.size()) << "its Content-Length is the one GET sends";
}

TEST_F(RequestHandler, ErrorsAreJsonWithTheRightStatus)
{
    auto not_found = handle(http::verb::get, "/missing");
    EXPECT_EQ(not_found.status, http::status::not_found);
    EXPECT_EQ(body(not_found)["error"]["code"], "not_found");

    auto post = handle(http::verb::post, "/io/sleep?ms=1");
    EXPECT_EQ(post.status, http::status::method_not_allowed);
    EXPECT_EQ(post.allow, "GET, HEAD");

    auto range = handle(http::verb::get, "/io/fanout?n=1001&ms=1");
    EXPECT_EQ(range.status, http::status::bad_request);
    auto e = body(range)["error"];
    EXPECT_EQ(e["status"], 400);
    EXPECT_EQ(e["code"], "out_of_range");
    EXPECT_EQ(e["param"], "n");
    EXPECT_EQ(e["limit"], 1000);
    EXPECT_TRUE(range.keep_alive); // a 400 leaves the connection usable
}

TEST_F(RequestHandler, DrainingMakesReadyz503AndClosesConnections)
{
    EXPECT_EQ(handle(http::verb::get, "/readyz").status, http::status::ok);
    st_.draining = true;
    auto ready = handle(http::verb::get, "/readyz");
    EXPECT_EQ(ready.status, http::status::service_unavailable);
    EXPECT_FALSE(ready.keep_alive);
    auto health = handle(http::verb::get, "/healthz");
    EXPECT_EQ(health.status, http::status::ok);
    EXPECT_FALSE(health.keep_alive);
}

TEST_F(RequestHandler, IndexIsServed)
{
    auto res = handle(http::verb::get, "/");
    ASSERT_EQ(res.status, http::status::ok);
    auto j = body(res);
    EXPECT_EQ(j["name"], "duet");
    EXPECT_GE(j["endpoints"].size(), 7U);
}

} // namespace
