// The report is written out by hand for speed: it must still be exactly the documented JSON.
#include <duet/server/report.hpp>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

namespace {

using namespace std::chrono_literals;
using duet::server::handler_output;
using duet::server::report_context;

TEST(Report, IsTheDocumentedJsonWithNanosecondMicros)
{
    duet::thread_ident io{"duet-io", 101};
    duet::thread_ident worker{"duet-w1", 102};
    handler_output out{.result = {{"n", 30}, {"value", 832040}},
                       .work = {.model = "worker-pool",
                                .queue = 1500ns,
                                .service = 2'000'007ns,
                                .cpu = 1'999'999ns,
                                .core_start = 0,
                                .core_end = 1,
                                .worker = &worker}};
    std::vector<duet::server::param_spec> specs{{.name = "n", .min = 1, .max = 45},
                                                {.name = "mode", .choices = {"pool", "inline"}}};
    duet::server::param_values params{specs};
    params.set(0, 30, true);
    params.set(1, 0, false);
    report_context ctx{.id = "0badc0de-1",
                       .endpoint = "/cpu/fib",
                       .params = &params,
                       .io_thread = &io,
                       .total = 2'100'000ns};
    auto text = duet::server::report_body(ctx, out);
    auto body = nlohmann::ordered_json::parse(text);
    EXPECT_EQ(body["result"], out.result.to_json());
    const auto& r = body["report"];
    std::vector<std::string> keys;
    for (const auto& [k, v] : r.items()) {
        keys.push_back(k);
    }
    EXPECT_EQ(keys, (std::vector<std::string>{"id", "endpoint", "params", "model", "timing_us", "threads",
                                              "cores", "cpu_time_us"}));
    EXPECT_EQ(r["id"], "0badc0de-1");
    EXPECT_EQ(r["endpoint"], "/cpu/fib");
    EXPECT_EQ(r["params"], (nlohmann::ordered_json{{"n", 30}, {"mode", "pool"}}));
    EXPECT_EQ(r["model"], "worker-pool");
    EXPECT_DOUBLE_EQ(r["timing_us"]["total"].get<double>(), 2100.0);
    EXPECT_DOUBLE_EQ(r["timing_us"]["queue"].get<double>(), 1.5);
    EXPECT_DOUBLE_EQ(r["timing_us"]["service"].get<double>(), 2000.007);
    EXPECT_NE(text.find(R"("service":2000.007)"), std::string::npos) << "nanoseconds, exactly: " << text;
    EXPECT_EQ(r["threads"]["io"], (nlohmann::ordered_json{{"name", "duet-io"}, {"tid", 101}}));
    EXPECT_EQ(r["threads"]["worker"], (nlohmann::ordered_json{{"name", "duet-w1"}, {"tid", 102}}));
    EXPECT_EQ(r["cores"], (nlohmann::ordered_json{{"start", 0}, {"end", 1}}));
    EXPECT_DOUBLE_EQ(r["cpu_time_us"].get<double>(), 1999.999);
    EXPECT_FALSE(r.contains("split"));
}

TEST(Report, EventLoopWorkHasNoWorkerAndASplitIsAppended)
{
    duet::thread_ident io{"odd \"name\"\\\x01", 7}; // a thread name is whatever the process set: escaped
    handler_output out{.result = {{"slept_ms", 0}, {"late_us", -3}, {"checksum", std::uint64_t{1} << 63U}},
                       .work = {.model = "split", .core_start = -1, .core_end = -1},
                       .split = {{"parts", 2}, {"speedup", 1.9}}};
    report_context ctx{.id = "x", .endpoint = "/cpu/primes", .params = nullptr, .io_thread = &io};
    auto body = nlohmann::json::parse(duet::server::report_body(ctx, out));
    EXPECT_EQ(body["result"], nlohmann::json(out.result.to_json()))
        << "negative and unsigned 64-bit integers";
    EXPECT_EQ(body["result"]["checksum"].get<std::uint64_t>(), std::uint64_t{1} << 63U);
    EXPECT_TRUE(body["report"]["params"].empty());
    EXPECT_EQ(body["report"]["threads"]["io"]["name"], "odd \"name\"\\\x01");
    EXPECT_TRUE(body["report"]["threads"]["worker"].is_null());
    EXPECT_EQ(body["report"]["cores"]["start"], -1);
    EXPECT_EQ(body["report"]["timing_us"]["queue"], 0.0);
    EXPECT_EQ(body["report"]["split"]["parts"], 2);
    EXPECT_DOUBLE_EQ(body["report"]["split"]["speedup"].get<double>(), 1.9);
}

} // namespace
