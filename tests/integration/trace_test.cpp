// /trace on a real server: the timeline shows concurrency (waits overlapping on one thread), parallelism
// (jobs at the same time on two workers) and blocking (nothing else on the I/O thread during an inline job);
// bad input and many readers are refused clearly.
#include "http_client.hpp"
#include "running_server.hpp"
#include "test_env.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <future>
#include <map>
#include <string>
#include <thread>
#include <vector>

namespace {

using namespace std::chrono_literals;
using duet::test::http_get;
using duet::test::running_server;
using nlohmann::json;

// The smallest fib n whose service time on this machine is at least `target_ms`.
int fib_taking(std::uint16_t port, double target_ms)
{
    for (int n = 25; n < 45; ++n) {
        auto r = http_get(port, "/cpu/fib?n=" + std::to_string(n));
        if (r.json()["report"]["timing_us"]["service"].get<double>() >= target_ms * 1000) {
            return n;
        }
    }
    return 45;
}

struct span
{
    double start;
    double end;
    std::int64_t tid;
};

std::vector<span> slices(const json& trace, const std::string& cat, const std::string& name = {})
{
    std::vector<span> out;
    for (const auto& e : trace["traceEvents"]) {
        if (e["ph"] == "X" && e["cat"] == cat && (name.empty() || e["name"] == name)) {
            const auto start = e["ts"].get<double>();
            out.push_back({start, start + e["dur"].get<double>(), e["tid"].get<std::int64_t>()});
        }
    }
    return out;
}

// The waits of an endpoint: its async events, begin to end by id.
std::vector<span> waits(const json& trace, const std::string& name)
{
    std::map<std::string, span> by_id;
    for (const auto& e : trace["traceEvents"]) {
        if ((e["ph"] == "b" || e["ph"] == "e") && e["name"] == name) {
            auto& s = by_id[e["id"].get<std::string>()];
            (e["ph"] == "b" ? s.start : s.end) = e["ts"].get<double>();
        }
    }
    std::vector<span> out;
    for (const auto& [id, s] : by_id) {
        out.push_back(s);
    }
    return out;
}

// The most spans in progress at one moment.
std::size_t most_at_once(const std::vector<span>& spans)
{
    std::size_t most = 0;
    for (const auto& s : spans) {
        const auto at = s.start;
        most = std::max<std::size_t>(
            most, static_cast<std::size_t>(std::count_if(spans.begin(), spans.end(), [at](const span& o) {
                return o.start <= at && at < o.end;
            })));
    }
    return most;
}

TEST(Trace, ShowsWaitsOverlappingJobsInParallelAndTheLoopBlockedByAnInlineJob)
{
    running_server server;
    const auto port = server.port();
    const auto usable = http_get(port, "/stats").json()["cpus"]["usable"].get<int>();
    const auto n = fib_taking(port, 200);
    const auto start = std::chrono::steady_clock::now();

    // Concurrency: 20 waits of 200 ms at once.
    const auto sleeps = duet::test::get_concurrently(port, std::vector<std::string>(20, "/io/sleep?ms=200"));
    for (const auto& r : sleeps) {
        ASSERT_EQ(r.status, 200U) << r.error;
    }
    // Parallelism: two jobs of about 200 ms on the pool at once.
    const auto jobs =
        duet::test::get_concurrently(port, std::vector<std::string>(2, "/cpu/fib?n=" + std::to_string(n)));
    for (const auto& r : jobs) {
        ASSERT_EQ(r.status, 200U) << r.error;
    }
    // Blocking: one job inline, while a client keeps asking for /healthz.
    auto inline_job = std::async(std::launch::async, [&] {
        return http_get(port, "/cpu/fib?n=" + std::to_string(n) + "&mode=inline");
    });
    std::this_thread::sleep_for(50ms);
    std::vector<double> probes_sent; // microseconds of the monotonic clock, the server's too (same process)
    for (int i = 0; i < 5; ++i) {
        probes_sent.push_back(
            std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now().time_since_epoch())
                .count());
        ASSERT_EQ(http_get(port, "/healthz").status, 200U);
    }
    ASSERT_EQ(inline_job.get().status, 200U);

    const auto elapsed =
        std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - start);
    const auto r = http_get(port, "/trace?ms=" + std::to_string(elapsed.count() + 500));
    ASSERT_EQ(r.status, 200U) << r.body.substr(0, 300);
    EXPECT_EQ(r.header("content-type"), "application/json");
    const auto trace = r.json();

    // The threads are named: the I/O thread and the workers.
    std::map<std::int64_t, std::string> thread_names;
    for (const auto& e : trace["traceEvents"]) {
        if (e["ph"] == "M" && e["name"] == "thread_name") {
            thread_names[e["tid"].get<std::int64_t>()] = e["args"]["name"];
        }
    }
    const auto io_tid = std::find_if(thread_names.begin(), thread_names.end(),
                                     [](const auto& t) { return t.second == "duet-io"; });
    ASSERT_NE(io_tid, thread_names.end());

    // The 20 waits were in progress together, while the I/O thread's own slices for them were short.
    const auto sleep_waits = waits(trace, "/io/sleep");
    ASSERT_EQ(sleep_waits.size(), 20U);
    EXPECT_GE(most_at_once(sleep_waits), 18U) << "the waits overlap: one thread kept them all in progress";
    for (const auto& s : slices(trace, "request", "/io/sleep")) {
        EXPECT_EQ(s.tid, io_tid->first);
        EXPECT_LT(s.end - s.start, 100'000.0) << "a slice of work, not the wait";
    }

    // The two jobs ran on workers; with two usable CPUs, on two lanes at overlapping times.
    const auto job_slices = slices(trace, "job", "/cpu/fib");
    ASSERT_GE(job_slices.size(), 2U);
    const auto& a = job_slices[job_slices.size() - 2];
    const auto& b = job_slices[job_slices.size() - 1];
    EXPECT_NE(a.tid, io_tid->first);
    EXPECT_NE(b.tid, io_tid->first);
    if (usable >= 2) {
        EXPECT_NE(a.tid, b.tid) << "two workers";
        EXPECT_TRUE(a.start < b.end && b.start < a.end) << "at the same time";
    }

    // The inline job is one slice on the I/O lane, and nothing else ran there meanwhile: the probes waited.
    const auto inline_slices = slices(trace, "inline", "/cpu/fib");
    ASSERT_EQ(inline_slices.size(), 1U);
    const auto& blocked = inline_slices[0];
    EXPECT_EQ(blocked.tid, io_tid->first);
    EXPECT_GE(blocked.end - blocked.start, 100'000.0);
    for (const auto& cat : {"request", "inline"}) {
        for (const auto& s : slices(trace, cat)) {
            if (s.tid != io_tid->first || (s.start == blocked.start && s.end == blocked.end)) {
                continue;
            }
            EXPECT_FALSE(s.start > blocked.start && s.start < blocked.end)
                << "a slice at " << s.start << " inside the inline job [" << blocked.start << ", "
                << blocked.end << "]";
        }
    }
    // A probe sent while the job ran was served only after it: the loop was blocked.
    ASSERT_LT(probes_sent.front(), blocked.end)
        << "no probe was sent during the inline job; the test proved nothing";
    for (const auto& s : slices(trace, "request", "/healthz")) {
        if (s.start >= probes_sent.front()) {
            EXPECT_GE(s.start, blocked.end) << "a /healthz probe was served during the inline job";
        }
    }
    // And the loop's lag counter saw it.
    double worst_lag = 0;
    for (const auto& e : trace["traceEvents"]) {
        if (e["ph"] == "C" && e["name"] == "event-loop lag (us)") {
            worst_lag = std::max(worst_lag, e["args"]["value"].get<double>());
        }
    }
    EXPECT_GE(worst_lag, 50'000.0);
}

TEST(Trace, BadWindowsAre400WithTheLimit)
{
    auto cfg = duet::test::test_config();
    cfg.limits.max_trace_ms = 5000;
    running_server server{cfg};
    for (const char* query : {"", "?ms=0", "?ms=-1", "?ms=5001", "?ms=99999999999999999999", "?ms=1&ms=2",
                              "?ms=abc", "?ms=1e3", "?window=5"}) {
        const auto r = http_get(server.port(), std::string{"/trace"} + query);
        EXPECT_EQ(r.status, 400U) << query;
        const auto e = r.json()["error"];
        EXPECT_TRUE(e["param"] == "ms" || e["code"] == "unknown_param") << query << ": " << r.body;
        if (std::string_view{query} == "?ms=5001") {
            EXPECT_EQ(e["limit"], 5000);
        }
    }
    EXPECT_EQ(http_get(server.port(), "/trace?ms=5000").status, 200U);
}

TEST(Trace, OffMeansA503ThatSaysSo)
{
    auto cfg = duet::test::test_config();
    cfg.trace.enabled = false;
    running_server server{cfg};
    const auto r = http_get(server.port(), "/trace?ms=100");
    EXPECT_EQ(r.status, 503U);
    EXPECT_EQ(r.json()["error"]["code"], "trace_disabled");
}

// Each /trace response may be megabytes: beyond trace.max_concurrent at once, one more is refused, and the
// slot comes back when a response is gone.
TEST(Trace, ResponsesInFlightAreBounded)
{
    auto cfg = duet::test::test_config();
    cfg.trace.max_concurrent = 1;
    running_server server{cfg};
    const auto port = server.port();
    {
        // Enough in the ring that encoding a trace takes a while.
        duet::test::client_connection c{port};
        for (int i = 0; i < 5000; ++i) {
            ASSERT_EQ(c.get("/healthz").status, 200U);
        }
    }
    const auto replies = duet::test::get_concurrently(port, std::vector<std::string>(10, "/trace?ms=10000"));
    int served = 0;
    int refused = 0;
    for (const auto& r : replies) {
        if (r.status == 200U) {
            ++served;
        } else {
            ASSERT_EQ(r.status, 503U) << r.error << r.body.substr(0, 200);
            EXPECT_EQ(r.json()["error"]["code"], "too_many_traces");
            EXPECT_EQ(r.json()["error"]["limit"], 1);
            EXPECT_EQ(r.header("retry-after"), "1");
            ++refused;
        }
    }
    EXPECT_GE(served, 1);
    EXPECT_GE(refused, 1) << "ten at once, one allowed";
    EXPECT_EQ(http_get(port, "/trace?ms=100").status, 200U) << "the slot came back";
}

// A trace in flight when the drain begins is answered, with the connection closing; one the server had not
// read yet is refused by the close, as any request is. Never half an answer.
TEST(Trace, ATraceAroundTheDrainIsAnsweredWholeOrNotAtAll)
{
    running_server server;
    duet::test::raw_connection c{server.port()};
    c.send("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"); // the connection is served before the drain
    ASSERT_NE(c.read_until("{\"status\":\"ok\"}", 5s).find("200 OK"), std::string::npos);
    c.send("GET /trace?ms=10000 HTTP/1.1\r\nHost: x\r\n\r\n");
    server.get().request_stop();
    std::string got = c.read_until("\r\n\r\n", 5s);
    if (!got.empty()) {
        ASSERT_EQ(got.rfind("HTTP/1.1 200 OK\r\n", 0), 0U) << got.substr(0, 200);
        EXPECT_NE(got.find("\r\nConnection: close\r\n"), std::string::npos) << got.substr(0, 400);
        const auto length_at = got.find("Content-Length: ");
        ASSERT_NE(length_at, std::string::npos);
        const auto length = std::stoul(got.substr(length_at + 16));
        while (got.size() < got.find("\r\n\r\n") + 4 + length) {
            const auto more = c.read_until("]}", 5s);
            if (more.empty()) {
                break;
            }
            got += more;
        }
        const auto body = got.substr(got.find("\r\n\r\n") + 4);
        EXPECT_EQ(body.size(), length);
        EXPECT_TRUE(json::accept(body)) << "the body is whole JSON";
    }
    EXPECT_TRUE(c.closed_by_server(5s));
}

} // namespace
