// Observability of a real duet-server process: its CPU accounting, a stalled stream subscriber, and a real
// Prometheus scraping it. A child process, so that the test's own client threads are not in the figures.
#include "http_client.hpp"
#include "server_process.hpp"
#include "test_env.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <gtest/gtest.h>

#include <signal.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <thread>

namespace {

using namespace std::chrono_literals;
using duet::test::http_get;
using duet::test::server_process;
using nlohmann::json;

const std::string binary = DUET_SERVER_BINARY;

json stats(std::uint16_t port)
{
    return http_get(port, "/stats").json();
}

double thread_cpu_seconds(const json& s, const std::string& prefix)
{
    double total = 0;
    for (const auto& t : s["cpu"]["threads"]) {
        if (t["name"].get<std::string>().rfind(prefix, 0) == 0) {
            total += t["user_s"].get<double>() + t["system_s"].get<double>();
        }
    }
    return total;
}

double process_cpu_seconds(const json& s)
{
    return s["cpu"]["process"]["user_s"].get<double>() + s["cpu"]["process"]["system_s"].get<double>();
}

long rss_kb(int pid)
{
    std::ifstream in{"/proc/" + std::to_string(pid) + "/status"};
    std::string line;
    while (std::getline(in, line)) {
        if (line.rfind("VmRSS:", 0) == 0) {
            return std::stol(line.substr(6));
        }
    }
    return -1;
}

std::uint16_t free_port()
{
    boost::asio::io_context ioc;
    boost::asio::ip::tcp::acceptor a{ioc, {boost::asio::ip::make_address("127.0.0.1"), 0}};
    return a.local_endpoint().port();
}

TEST(CpuAccounting, PoolWorkIsChargedToWorkersAndWaitingCostsAlmostNothing)
{
    server_process p{binary, {"--port", "0", "--workers", "2", "--set", "stats.sample_interval_ms=200"}};
    auto port = p.wait_listening();
    ASSERT_TRUE(port) << p.output();

    // A burst of I/O waits: 300 requests overlapping for half a second cost the process a few ticks of CPU.
    std::this_thread::sleep_for(300ms);
    double before = process_cpu_seconds(stats(*port));
    std::vector<std::string> sleeps(300, "/io/sleep?ms=500");
    auto replies = duet::test::get_concurrently(*port, sleeps);
    for (const auto& r : replies) {
        ASSERT_EQ(r.status, 200U) << r.error;
    }
    std::this_thread::sleep_for(400ms); // two samples later
    auto after_io = stats(*port);
    double io_burst = process_cpu_seconds(after_io) - before;
    // Half a second of 300 overlapping waits: a few tens of milliseconds of CPU in a release build.
    EXPECT_LT(io_burst, 0.25 * duet::test::sanitizer_slowdown)
        << "300 concurrent waits of 500 ms should leave the process near idle";

    // A burst of CPU work: over it, the workers' CPU time dwarfs the I/O thread's.
    double workers_before = thread_cpu_seconds(after_io, "duet-w");
    double io_before = thread_cpu_seconds(after_io, "duet-io");
    std::vector<std::string> jobs(4, "/cpu/primes?n=3000000");
    replies = duet::test::get_concurrently(*port, jobs);
    for (const auto& r : replies) {
        ASSERT_EQ(r.status, 200U) << r.error;
    }
    std::this_thread::sleep_for(400ms);
    auto s = stats(*port);
    double workers = thread_cpu_seconds(s, "duet-w") - workers_before;
    double io = thread_cpu_seconds(s, "duet-io") - io_before;
    EXPECT_GT(workers, 0.5) << s["cpu"].dump();
    EXPECT_GT(workers, 5 * io) << s["cpu"].dump();
    p.signal(SIGTERM);
    EXPECT_EQ(p.wait_exit(), 0);
}

TEST(StatsStream, AStalledSubscriberIsDroppedAndMemoryStaysFlat)
{
    server_process p{
        binary,
        {"--port", "0", "--set", "stats.stream_interval_ms=10", "--set", "server.write_timeout_ms=500"}};
    auto port = p.wait_listening();
    ASSERT_TRUE(port) << p.output();
    {
        // A reader with a tiny receive buffer that reads one event and then nothing.
        duet::test::event_stream stalled{*port, "/stats/stream", 4096};
        ASSERT_TRUE(stalled.next(5s));
        long rss_start = rss_kb(p.pid());
        bool dropped = false;
        for (int i = 0; i < 100 && !dropped; ++i) {
            std::this_thread::sleep_for(100ms);
            dropped = stats(*port)["connections"]["closed"]["write_timeout"].get<int>() >= 1;
        }
        EXPECT_TRUE(dropped) << "the server never gave up on a subscriber that does not read";
        auto s = stats(*port);
        EXPECT_EQ(s["stream"]["subscribers"], 0);
        long rss_end = rss_kb(p.pid());
        // AddressSanitizer keeps freed memory in quarantine (up to 256 MB): RSS means nothing there.
        if (!duet::test::sanitized) {
            EXPECT_LT(rss_end - rss_start, 4096)
                << "RSS grew from " << rss_start << " kB to " << rss_end << " kB";
        }
        EXPECT_TRUE(stalled.wait_closed(5s)) << "the server closed the stalled stream";
    }
    p.signal(SIGTERM);
    EXPECT_EQ(p.wait_exit(), 0);
}

TEST(Prometheus, ARealPrometheusScrapesTheCountsTheTestSent)
{
    ASSERT_EQ(std::system("command -v prometheus > /dev/null"), 0)
        << "prometheus is missing: the test command installs it (Debian package prometheus)";
    server_process duet{binary, {"--port", "0"}};
    auto port = duet.wait_listening();
    ASSERT_TRUE(port) << duet.output();
    for (int i = 0; i < 9; ++i) {
        ASSERT_EQ(http_get(*port, "/io/sleep?ms=1").status, 200U);
    }

    auto dir = std::filesystem::temp_directory_path() / ("duet-prometheus-" + std::to_string(::getpid()));
    std::filesystem::remove_all(dir);
    std::filesystem::create_directories(dir);
    std::ofstream{dir / "prometheus.yml"} << "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n"
                                             "scrape_configs:\n  - job_name: duet\n    static_configs:\n"
                                             "      - targets: ['127.0.0.1:"
                                          << *port << "']\n";
    auto prom_port = free_port();
    server_process prom{"/usr/bin/prometheus",
                        {"--config.file=" + (dir / "prometheus.yml").string(),
                         "--storage.tsdb.path=" + (dir / "data").string(),
                         "--web.listen-address=127.0.0.1:" + std::to_string(prom_port)}};
    ASSERT_TRUE(prom.wait_for_output("Server is ready to receive web requests", 30s)) << prom.output();

    // duet_http_requests_total{endpoint="/io/sleep",code="200"}, URL-encoded.
    const std::string query =
        "/api/v1/query?query=duet_http_requests_total%7Bendpoint%3D%22%2Fio%2Fsleep%22%2C"
        "code%3D%22200%22%7D";
    std::string value;
    for (int i = 0; i < 60 && value.empty(); ++i) {
        std::this_thread::sleep_for(500ms);
        auto r = http_get(prom_port, query);
        if (r.status != 200U) {
            continue;
        }
        auto result = r.json()["data"]["result"];
        if (!result.empty()) {
            value = result[0]["value"][1].get<std::string>();
        }
    }
    EXPECT_EQ(value, "9") << prom.output();
    prom.signal(SIGTERM);
    EXPECT_TRUE(prom.wait_exit(20s));
    duet.signal(SIGTERM);
    EXPECT_EQ(duet.wait_exit(), 0);
    std::filesystem::remove_all(dir);
}

} // namespace
