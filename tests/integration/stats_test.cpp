// /stats, /stats/stream and /metrics on an in-process server: what they count after known traffic.
#include "http_client.hpp"
#include "running_server.hpp"

#include <gtest/gtest.h>

#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <future>
#include <iterator>
#include <regex>
#include <sstream>
#include <thread>

namespace {

using namespace std::chrono_literals;
using duet::test::http_get;
using duet::test::raw_exchange;
using duet::test::running_server;
using nlohmann::json;

json stats(std::uint16_t port)
{
    auto r = http_get(port, "/stats");
    EXPECT_EQ(r.status, 200U) << r.error;
    return r.json();
}

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

TEST(Stats, CountsAreExactAfterAScriptedSetOfRequests)
{
    running_server server;
    auto port = server.port();
    for (int i = 0; i < 5; ++i) {
        ASSERT_EQ(http_get(port, "/io/sleep?ms=20").status, 200U);
    }
    for (int i = 0; i < 3; ++i) {
        ASSERT_EQ(http_get(port, "/cpu/fib?n=20").status, 200U);
    }
    ASSERT_EQ(http_get(port, "/nope").status, 404U);
    ASSERT_EQ(http_get(port, "/nope/again").status, 404U);
    ASSERT_EQ(http_get(port, "/io/sleep?ms=-1").status, 400U);
    auto bad = raw_exchange(port, "NONSENSE\r\n\r\n");
    ASSERT_EQ(bad.bytes.rfind("HTTP/1.1 400", 0), 0U);

    auto s = stats(port);
    const auto& eps = s["requests"]["endpoints"];
    EXPECT_EQ(eps["/io/sleep"]["count"], 6);
    EXPECT_EQ(eps["/io/sleep"]["status"]["200"], 5);
    EXPECT_EQ(eps["/io/sleep"]["status"]["400"], 1);
    EXPECT_EQ(eps["/cpu/fib"]["count"], 3);
    EXPECT_EQ(eps["/cpu/fib"]["status"]["200"], 3);
    EXPECT_EQ(eps["other"]["status"]["404"], 2);
    EXPECT_EQ(eps["other"]["status"]["400"], 1);
    EXPECT_EQ(eps["/stats"]["in_flight"], 1); // this very request
    EXPECT_EQ(s["requests"]["total"]["count"], 12);
    EXPECT_EQ(s["requests"]["total"]["status"]["200"], 8);

    // Percentiles are plausible: five of the six sleeps waited 20 ms.
    const auto& sleep = eps["/io/sleep"]["latency_us"]["since_start"];
    EXPECT_EQ(sleep["count"], 6);
    EXPECT_GE(sleep["p50"].get<double>(), 19000.0);
    EXPECT_LT(sleep["p50"].get<double>(), 1000000.0);
    EXPECT_GE(sleep["max"].get<double>(), sleep["p90"].get<double>());
    EXPECT_GE(sleep["p90"].get<double>(), sleep["p50"].get<double>());
    EXPECT_EQ(eps["/io/sleep"]["latency_us"]["recent"]["count"], 6);

    EXPECT_EQ(s["pool"]["completed"], 3);
    EXPECT_EQ(s["pool"]["rejected"], 0);
    EXPECT_EQ(s["pool"]["queue_wait_us"]["since_start"]["count"], 3);
    int jobs = 0;
    for (const auto& w : s["pool"]["per_worker"]) {
        jobs += w["jobs"].get<int>();
        EXPECT_EQ(w["name"].get<std::string>().rfind("duet-w", 0), 0U);
    }
    EXPECT_EQ(jobs, 3);
    EXPECT_EQ(s["connections"]["accepted"], 13); // twelve requests and this one, each on its own connection
    EXPECT_EQ(s["connections"]["closed"]["bad_request"], 1);
    EXPECT_GE(s["cpus"]["usable"], 1);
    EXPECT_GT(s["event_loop"]["lag_us"]["since_start"]["count"], 0);
}

TEST(Stats, RecentWindowForgetsWhatSinceStartKeeps)
{
    auto cfg = duet::test::test_config();
    cfg.stats.window_ms = 1000;
    running_server server{cfg};
    for (int i = 0; i < 4; ++i) {
        ASSERT_EQ(http_get(server.port(), "/io/sleep?ms=1").status, 200U);
    }
    EXPECT_EQ(stats(server.port())["requests"]["endpoints"]["/io/sleep"]["latency_us"]["recent"]["count"], 4);
    std::this_thread::sleep_for(1300ms);
    auto s = stats(server.port());
    EXPECT_EQ(s["requests"]["endpoints"]["/io/sleep"]["latency_us"]["recent"]["count"], 0);
    EXPECT_EQ(s["requests"]["endpoints"]["/io/sleep"]["latency_us"]["since_start"]["count"], 4);
}

TEST(Stats, RecordingCanBeTurnedOff)
{
    auto cfg = duet::test::test_config();
    cfg.stats.enabled = false;
    running_server server{cfg};
    ASSERT_EQ(http_get(server.port(), "/io/sleep?ms=1").status, 200U);
    auto s = stats(server.port());
    EXPECT_EQ(s["recording"], false);
    EXPECT_EQ(s["requests"]["total"]["count"], 0);
}

TEST(EventLoopLag, InlineWorkStallsTheLoopPoolWorkDoesNot)
{
    double pool_job_ms = 0;
    {
        running_server server;
        int n = fib_taking(server.port(), 300);
        auto r = http_get(server.port(), "/cpu/fib?n=" + std::to_string(n));
        pool_job_ms = r.json()["report"]["timing_us"]["service"].get<double>() / 1000;
        auto lag = stats(server.port())["event_loop"];
        // The loop kept running while the job ran on a worker: its worst lag is a fraction of the job.
        EXPECT_LT(lag["lag_us"]["since_start"]["max"].get<double>() / 1000, pool_job_ms / 2) << lag.dump();
    }
    {
        running_server server;
        int n = fib_taking(server.port(), 300);
        auto r = http_get(server.port(), "/cpu/fib?mode=inline&n=" + std::to_string(n));
        double inline_ms = r.json()["report"]["timing_us"]["service"].get<double>() / 1000;
        auto lag = stats(server.port())["event_loop"];
        // The probe could not fire while the job held the thread: it fired about the job's duration late.
        EXPECT_GE(lag["lag_us"]["since_start"]["max"].get<double>() / 1000, inline_ms - 30) << lag.dump();
        EXPECT_GE(lag["lag_us"]["since_start"]["p99.9"].get<double>() / 1000, inline_ms / 2) << lag.dump();
        EXPECT_GE(lag["stalls"].get<int>(), 1);
    }
}

TEST(Metrics, CountsMatchTheTrafficAndTheFormatIsPrometheus)
{
    running_server server;
    for (int i = 0; i < 7; ++i) {
        ASSERT_EQ(http_get(server.port(), "/io/sleep?ms=1").status, 200U);
    }
    ASSERT_EQ(http_get(server.port(), "/cpu/primes?n=1000").status, 200U);
    auto r = http_get(server.port(), "/metrics");
    ASSERT_EQ(r.status, 200U);
    EXPECT_EQ(r.header("content-type"), "text/plain; version=0.0.4; charset=utf-8");
    const auto& m = r.body;
    EXPECT_NE(m.find("duet_http_requests_total{endpoint=\"/io/sleep\",code=\"200\"} 7\n"), std::string::npos);
    EXPECT_NE(m.find("duet_http_request_duration_seconds_count{endpoint=\"/io/sleep\"} 7\n"),
              std::string::npos);
    EXPECT_NE(m.find("duet_http_request_duration_seconds_bucket{endpoint=\"/io/sleep\",le=\"+Inf\"} 7\n"),
              std::string::npos);
    EXPECT_NE(m.find("duet_pool_jobs_total{outcome=\"completed\"} 1\n"), std::string::npos);
    for (const char* name :
         {"duet_http_requests_in_flight", "duet_event_loop_lag_seconds_bucket", "duet_pool_queue_depth",
          "duet_pool_busy_workers", "duet_thread_cpu_seconds_total", "process_cpu_seconds_total",
          "process_resident_memory_bytes", "process_open_fds"}) {
        EXPECT_NE(m.find(std::string{"\n"} + name), std::string::npos) << name;
    }
    // Every sample line is "name{labels} value" or "name value", and every family has HELP and TYPE.
    std::regex sample{R"(^[a-zA-Z_:][a-zA-Z0-9_:]*(\{[^}]*\})? [-+0-9.eE]+(Inf)?$)"};
    std::istringstream lines{m};
    std::string line;
    int samples = 0;
    while (std::getline(lines, line)) {
        if (line.rfind("# HELP ", 0) == 0 || line.rfind("# TYPE ", 0) == 0) {
            continue;
        }
        EXPECT_TRUE(std::regex_match(line, sample)) << line;
        ++samples;
    }
    EXPECT_GT(samples, 100);
    // Cumulative buckets never decrease.
    std::regex bucket{
        R"(duet_http_request_duration_seconds_bucket\{endpoint="/io/sleep",le="[^"]+"\} (\d+))"};
    long previous = 0;
    for (std::sregex_iterator it{m.begin(), m.end(), bucket}, end; it != end; ++it) {
        long v = std::stol((*it)[1]);
        EXPECT_GE(v, previous);
        previous = v;
    }
    EXPECT_EQ(previous, 7);
}

TEST(Metrics, PromtoolAcceptsTheExposition)
{
    running_server server;
    ASSERT_EQ(http_get(server.port(), "/io/sleep?ms=1").status, 200U);
    ASSERT_EQ(http_get(server.port(), "/nope").status, 404U);
    auto r = http_get(server.port(), "/metrics");
    ASSERT_EQ(r.status, 200U);
    ASSERT_EQ(std::system("command -v promtool > /dev/null"), 0)
        << "promtool is missing: the test command installs it (Debian package prometheus)";
    auto file =
        std::filesystem::temp_directory_path() / ("duet-metrics-" + std::to_string(::getpid()) + ".txt");
    std::ofstream{file} << r.body;
    auto out = file.string() + ".out";
    int rc = std::system(("promtool check metrics < " + file.string() + " > " + out + " 2>&1").c_str());
    std::ifstream in{out};
    std::string report{std::istreambuf_iterator<char>{in}, {}};
    EXPECT_EQ(rc, 0) << report;
    EXPECT_EQ(report, "") << "promtool's lint found problems";
    std::filesystem::remove(file);
    std::filesystem::remove(out);
}

// An event of /stats/stream: its id and snapshot, and the retry it set (0: none).
struct stats_event
{
    long id = 0;
    long retry_ms = 0;
    json snapshot;
};

stats_event parse_event(const std::string& text)
{
    std::smatch m;
    EXPECT_TRUE(std::regex_search(
        text, m, std::regex{R"(^(retry: (\d+)\n)?event: stats\nid: (\d+)\ndata: (\{.*\})$)"}))
        << text;
    if (m.empty()) {
        return {};
    }
    return {.id = std::stol(m[3]),
            .retry_ms = m[2].matched ? std::stol(m[2]) : 0,
            .snapshot = json::parse(m[4].str())};
}

// Reads n events and checks that ids and snapshot times only go forward, from the first (which sets the
// retry).
void expect_forward(duet::test::event_stream& es, int n, const char* who)
{
    long last_id = 0;
    std::string last_time;
    double last_uptime = -1;
    for (int i = 0; i < n; ++i) {
        auto text = es.next(5s);
        ASSERT_TRUE(text) << who << ": event " << i;
        const auto ev = parse_event(*text);
        EXPECT_EQ(ev.retry_ms, i == 0 ? 100 : 0) << who << ": the first event, and only it, sets the retry";
        EXPECT_GT(ev.id, last_id) << who << ": event " << i;
        EXPECT_GT(ev.snapshot["uptime_s"].get<double>(), last_uptime) << who << ": event " << i;
        EXPECT_GE(ev.snapshot["time"].get<std::string>(), last_time) << who << ": event " << i;
        last_id = ev.id;
        last_uptime = ev.snapshot["uptime_s"].get<double>();
        last_time = ev.snapshot["time"].get<std::string>();
    }
}

// Every subscriber, not only a fresh server's first, sees its events in order: the feed's latest snapshot,
// taken before it joined, must never follow the fresh one it starts with.
TEST(StatsStream, SubscribersWhoJoinLaterSeeIdsAndTimesOnlyGoForward)
{
    auto cfg = duet::test::test_config();
    cfg.stats.stream_interval_ms = 100;
    running_server server{cfg};
    {
        duet::test::event_stream first{server.port(), "/stats/stream"};
        expect_forward(first, 3, "the first subscriber");
    }
    std::this_thread::sleep_for(500ms); // the feed keeps its latest snapshot from before
    duet::test::event_stream second{server.port(), "/stats/stream"};
    expect_forward(second, 4, "the second subscriber");
    std::this_thread::sleep_for(300ms);
    duet::test::event_stream third{server.port(), "/stats/stream"}; // joins while the second still listens
    expect_forward(third, 4, "the third subscriber");
}

TEST(StatsStream, SubscriberReceivesSnapshotsInOrder)
{
    auto cfg = duet::test::test_config();
    cfg.stats.stream_interval_ms = 100;
    running_server server{cfg};
    duet::test::event_stream es{server.port(), "/stats/stream"};
    ASSERT_EQ(es.head().rfind("HTTP/1.1 200", 0), 0U) << es.head();
    EXPECT_NE(es.head().find("Content-Type: text/event-stream"), std::string::npos);
    double last_uptime = -1;
    long last_id = 0;
    for (int i = 0; i < 4; ++i) {
        auto ev = es.next(5s);
        ASSERT_TRUE(ev) << "event " << i;
        const auto parsed = parse_event(*ev);
        long id = parsed.id;
        const auto& snapshot = parsed.snapshot;
        EXPECT_GT(id, last_id);
        EXPECT_GT(snapshot["uptime_s"].get<double>(), last_uptime);
        EXPECT_EQ(snapshot["stream"]["subscribers"], 1);
        last_id = id;
        last_uptime = snapshot["uptime_s"].get<double>();
    }
}

TEST(StatsStream, ManySubscribersDoNotSlowRequestHandling)
{
    auto cfg = duet::test::test_config();
    cfg.stats.stream_interval_ms = 50;
    running_server server{cfg};
    std::vector<std::unique_ptr<duet::test::event_stream>> subscribers;
    for (int i = 0; i < 40; ++i) {
        subscribers.push_back(std::make_unique<duet::test::event_stream>(server.port(), "/stats/stream"));
    }
    // While 40 subscribers get 20 snapshots a second, 300 overlapping waits still finish together.
    std::vector<std::string> targets(300, "/io/sleep?ms=300");
    auto start = std::chrono::steady_clock::now();
    auto replies = duet::test::get_concurrently(server.port(), targets);
    auto wall = std::chrono::steady_clock::now() - start;
    for (const auto& r : replies) {
        ASSERT_EQ(r.status, 200U) << r.error;
    }
    EXPECT_LT(wall, 2s);
    for (auto& sub : subscribers) {
        for (int i = 0; i < 3; ++i) {
            ASSERT_TRUE(sub->next(5s)) << "a subscriber stopped receiving";
        }
    }
}

TEST(StatsStream, SubscribersBeyondTheLimitGet503AndTheDrainEndsStreams)
{
    auto cfg = duet::test::test_config();
    cfg.stats.max_stream_subscribers = 2;
    running_server server{cfg};
    duet::test::event_stream a{server.port(), "/stats/stream"};
    duet::test::event_stream b{server.port(), "/stats/stream"};
    ASSERT_TRUE(a.next(5s));
    ASSERT_TRUE(b.next(5s));
    auto refused = http_get(server.port(), "/stats/stream");
    EXPECT_EQ(refused.status, 503U);
    EXPECT_EQ(refused.json()["error"]["code"], "too_many_subscribers");
    EXPECT_EQ(refused.json()["error"]["limit"], 2);
    EXPECT_EQ(stats(server.port())["stream"]["subscribers"], 2);

    auto start = std::chrono::steady_clock::now();
    server.stop(); // the drain must not wait for streams that never end
    EXPECT_LT(std::chrono::steady_clock::now() - start, 3s);
    EXPECT_TRUE(a.wait_closed(2s));
    EXPECT_TRUE(b.wait_closed(2s));
}

} // namespace
