// duet-load's results without a network: merging tallies, the text and JSON reports, the server's view.
#include <duet/client/results.hpp>

#include <gtest/gtest.h>

#include <random>

namespace {

using namespace std::chrono_literals;
using duet::client::run_result;
using duet::client::server_view;

duet::client::run_options options()
{
    duet::client::run_options o;
    o.target = duet::client::parse_url("http://127.0.0.1:8080/healthz");
    o.duration = 2s;
    return o;
}

// A run with `n` latencies drawn from rng, as one machine would report it.
run_result make_run(std::mt19937_64& rng, int n, std::uint64_t errors)
{
    std::lognormal_distribution<double> d{std::log(300'000.0), 0.8};
    run_result r;
    for (int i = 0; i < n; ++i) {
        auto v = static_cast<std::uint64_t>(d(rng));
        r.counts.latency.record(v);
        r.counts.service.record(v / 2);
        ++r.counts.status[i % 10 == 0 ? 404 : 200];
    }
    r.counts.requests = static_cast<std::uint64_t>(n);
    r.counts.bytes_read = static_cast<std::uint64_t>(n) * 100;
    r.counts.errors.read = errors;
    r.elapsed = 2s;
    r.series = {{1, static_cast<std::uint64_t>(n / 2), 0, 10, 20},
                {2, static_cast<std::uint64_t>(n - n / 2), errors, 11, 30}};
    return r;
}

TEST(Results, JsonCarriesCountsPercentilesAndHistograms)
{
    std::mt19937_64 rng{1};
    auto r = make_run(rng, 1000, 3);
    auto j = duet::client::to_json(r, options());
    EXPECT_EQ(j["tool"], "duet-load");
    EXPECT_EQ(j["requests"]["completed"], 1000);
    EXPECT_DOUBLE_EQ(j["requests"]["per_second"].get<double>(), 500.0);
    EXPECT_EQ(j["status"]["200"], 900);
    EXPECT_EQ(j["status"]["404"], 100);
    EXPECT_EQ(j["errors"]["read"], 3);
    EXPECT_EQ(j["errors"]["non_2xx_3xx"], 100);
    EXPECT_EQ(j["latency_us"]["count"], 1000);
    EXPECT_NEAR(j["latency_us"]["p50"].get<double>(),
                static_cast<double>(r.counts.latency.percentile(50)) / 1000.0, 1e-9);
    EXPECT_EQ(j["series"].size(), 2U);
    EXPECT_EQ(j["config"]["duration_s"], 2.0);
    EXPECT_TRUE(j["server"].is_null());
    auto text = duet::client::text_summary(j, true);
    EXPECT_NE(text.find("1000 requests in 2.00s"), std::string::npos) << text;
    EXPECT_NE(text.find("Non-2xx or 3xx responses: 100"), std::string::npos) << text;
    EXPECT_NE(text.find("99.99%"), std::string::npos) << text;
}

TEST(Results, MergingTwoRunsEqualsOneRunOverTheUnion)
{
    std::mt19937_64 rng{2};
    auto a = make_run(rng, 3000, 1);
    auto b = make_run(rng, 5000, 2);
    run_result both;
    both.counts.merge(a.counts);
    both.counts.merge(b.counts);
    both.elapsed = 2s;

    auto merged =
        duet::client::merge_json({nlohmann::json::parse(duet::client::to_json(a, options()).dump()),
                                  nlohmann::json::parse(duet::client::to_json(b, options()).dump())});
    auto expected = duet::client::to_json(both, options());
    EXPECT_EQ(merged["requests"]["completed"], 8000);
    EXPECT_EQ(merged["errors"], expected["errors"]);
    EXPECT_EQ(merged["status"], expected["status"]);
    EXPECT_EQ(merged["latency_us"], expected["latency_us"]); // histograms merge exactly
    EXPECT_EQ(merged["histograms"], expected["histograms"]);
    EXPECT_EQ(merged["merged_from"], 2);
    EXPECT_EQ(merged["config"]["connections"], 20);
    ASSERT_EQ(merged["series"].size(), 2U);
    EXPECT_EQ(merged["series"][1]["requests"], 2500 + 1500);
    EXPECT_EQ(merged["series"][1]["errors"], 3);
    EXPECT_THROW(duet::client::merge_json({nlohmann::json{{"tool", "wrk"}}}), std::invalid_argument);
}

TEST(ServerView, ReadsDuetReportsAndIgnoresTheRest)
{
    server_view v;
    EXPECT_FALSE(v.add_body(R"({"status":"ok"})"));
    EXPECT_FALSE(v.add_body("not json at all, but long enough to look"));
    EXPECT_FALSE(v.add_body(R"({"report": "a string, not a report"})"));
    const char* pool =
        R"({"result":{"n":1},"report":{"model":"worker-pool","timing_us":{"total":1500.5,)"
        R"("queue":20.0,"service":1400.0},"threads":{"io":{"name":"duet-io","tid":1},)"
        R"("worker":{"name":"duet-w1","tid":3}},"cores":{"start":0,"end":1},"cpu_time_us":1399}})";
    const char* loop = R"({"result":{},"report":{"model":"event-loop","timing_us":{"total":10000,"queue":0,)"
                       R"("service":9990},"threads":{"io":{"name":"duet-io","tid":1},"worker":null},)"
                       R"("cores":{"start":0,"end":0},"cpu_time_us":3}})";
    EXPECT_TRUE(v.add_body(pool));
    EXPECT_TRUE(v.add_body(pool));
    EXPECT_TRUE(v.add_body(loop));
    EXPECT_EQ(v.reports, 3U);
    EXPECT_EQ(v.threads["duet-w1"], 2U);
    EXPECT_EQ(v.threads["duet-io"], 1U);
    EXPECT_EQ(v.models["worker-pool"], 2U);
    EXPECT_EQ(v.cores[1], 2U);
    EXPECT_NEAR(static_cast<double>(v.queue.max()), 20000.0, 1.0);
    EXPECT_NEAR(static_cast<double>(v.total.max()), 10000000.0, 1.0);
}

} // namespace
