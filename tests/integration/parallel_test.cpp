// Parallelism in depth: fork-join within one request, the bounded pool under a burst, worker placement.
#include "http_client.hpp"
#include "running_server.hpp"
#include "server_process.hpp"
#include "test_env.hpp"

#include <gtest/gtest.h>

#include <signal.h>

#include <fstream>
#include <future>
#include <set>
#include <thread>

namespace {

using namespace std::chrono_literals;
using duet::test::http_get;
using duet::test::running_server;
using nlohmann::json;

const std::string binary = DUET_SERVER_BINARY;

TEST(Split, PrimesGiveTheSequentialResultForEveryPartCount)
{
    running_server server;
    auto sequential = http_get(server.port(), "/cpu/primes?n=300000").json();
    ASSERT_EQ(sequential["result"]["primes"], 25997);
    for (int parts = 1; parts <= 8; ++parts) {
        auto r = http_get(server.port(), "/cpu/primes?n=300000&mode=split&parts=" + std::to_string(parts));
        ASSERT_EQ(r.status, 200U) << r.body;
        auto j = r.json();
        EXPECT_EQ(j["result"], sequential["result"]) << parts << " parts";
        const auto& report = j["report"];
        EXPECT_EQ(report["model"], "split");
        EXPECT_EQ(report["params"]["parts"], parts);
        const auto& split = report["split"];
        ASSERT_EQ(split["parts"], parts);
        ASSERT_EQ(split["per_part"].size(), static_cast<std::size_t>(parts));
        std::uint64_t covered = 0;
        for (const auto& part : split["per_part"]) {
            // Every part ran on a pool thread, and the ranges tile [0, n].
            EXPECT_EQ(part["worker"]["name"].get<std::string>().rfind("duet-w", 0), 0U) << part.dump();
            EXPECT_NE(part["worker"]["tid"], report["threads"]["io"]["tid"]);
            EXPECT_EQ(part["range"][0], covered);
            covered = part["range"][1].get<std::uint64_t>();
            EXPECT_GE(part["service_us"].get<double>(), 0.0);
        }
        EXPECT_EQ(covered, 300001U);
        EXPECT_GT(split["speedup"].get<double>(), 0.0);
        EXPECT_NEAR(split["efficiency"].get<double>(), split["speedup"].get<double>() / parts, 1e-9);
    }
}

TEST(Split, MandelbrotGivesTheSameResultAndImageForEveryPartCount)
{
    running_server server;
    auto sequential = http_get(server.port(), "/cpu/mandelbrot?size=200&iter=300").json();
    auto image = http_get(server.port(), "/cpu/mandelbrot?size=200&iter=300&format=pgm");
    ASSERT_EQ(image.status, 200U);
    EXPECT_EQ(image.header("content-type"), "image/x-portable-graymap");
    ASSERT_EQ(image.body.rfind("P5\n200 200\n255\n", 0), 0U);
    EXPECT_EQ(image.body.size(), 15U + 200 * 200);
    EXPECT_FALSE(image.header("server-timing").empty());
    for (int parts = 1; parts <= 8; ++parts) {
        auto q = "/cpu/mandelbrot?size=200&iter=300&mode=split&parts=" + std::to_string(parts);
        auto r = http_get(server.port(), q).json();
        EXPECT_EQ(r["result"], sequential["result"]) << parts << " parts";
        EXPECT_EQ(r["report"]["split"]["per_part"].size(), static_cast<std::size_t>(parts));
        EXPECT_EQ(http_get(server.port(), q + "&format=pgm").body, image.body) << parts << " parts";
    }
}

TEST(Split, BadCombinationsAreRefusedWithTheParameterNamed)
{
    running_server server;
    auto check = [&](const std::string& target, const char* code, const char* param) {
        auto r = http_get(server.port(), target);
        ASSERT_EQ(r.status, 400U) << target;
        EXPECT_EQ(r.json()["error"]["code"], code) << target;
        EXPECT_EQ(r.json()["error"]["param"], param) << target;
    };
    check("/cpu/primes?n=100&parts=2", "invalid_param", "parts");           // parts without split
    check("/cpu/primes?n=100&mode=split&parts=0", "out_of_range", "parts"); // below 1
    check("/cpu/primes?n=100&mode=split&parts=65", "out_of_range", "parts");
    check("/cpu/fib?n=10&mode=split", "invalid_param", "mode"); // fib does not split
    check("/cpu/mandelbrot?size=4&mode=split&parts=5", "out_of_range", "parts");
    check("/cpu/mandelbrot?size=1025", "out_of_range", "size");
    check("/cpu/mandelbrot?size=10&iter=2001", "out_of_range", "iter");
    check("/cpu/mandelbrot?size=10&format=png", "invalid_param", "format");
}

TEST(Split, APartThatCannotBeQueuedRefusesTheWholeRequest)
{
    auto cfg = duet::test::test_config();
    cfg.pool.workers = 1;
    cfg.pool.queue_limit = 2;
    running_server server{cfg};
    auto r = http_get(server.port(), "/cpu/primes?n=200000&mode=split&parts=8");
    ASSERT_EQ(r.status, 503U) << r.body;
    EXPECT_EQ(r.json()["error"]["code"], "pool_saturated");
    EXPECT_EQ(r.header("retry-after"), "1");
    // The parts that did run are finished, and the server carries on.
    EXPECT_EQ(http_get(server.port(), "/cpu/primes?n=1000&mode=split&parts=2").status, 200U);
}

TEST(PoolBound, ABurstGets503sTheAcceptedCompleteAndMemoryStaysBounded)
{
    duet::test::server_process p{binary, {"--port", "0", "--workers", "1", "--queue-limit", "2"}};
    auto port = p.wait_listening();
    ASSERT_TRUE(port) << p.output();
    auto rss_kb = [&] {
        std::ifstream in{"/proc/" + std::to_string(p.pid()) + "/status"};
        for (std::string line; std::getline(in, line);) {
            if (line.rfind("VmRSS:", 0) == 0) {
                return std::stol(line.substr(6));
            }
        }
        return -1L;
    };
    long rss_before = rss_kb();
    // 40 jobs of a few hundred ms at once, on one worker with room for two to wait.
    std::vector<std::string> burst(40, "/cpu/primes?n=2000000");
    auto cpu = std::async(std::launch::async, [&] { return duet::test::get_concurrently(*port, burst); });
    std::this_thread::sleep_for(200ms);
    auto health = http_get(*port, "/healthz");
    auto replies = cpu.get();
    EXPECT_EQ(health.status, 200U);
    EXPECT_LT(health.elapsed, 100ms * duet::test::sanitizer_slowdown) << "/healthz waited for the CPU burst";
    int ok = 0;
    int refused = 0;
    for (const auto& r : replies) {
        if (r.status == 200U) {
            ++ok;
            EXPECT_EQ(r.json()["result"]["primes"], 148933);
        } else {
            ASSERT_EQ(r.status, 503U) << r.error;
            EXPECT_EQ(r.header("retry-after"), "1");
            ++refused;
        }
    }
    EXPECT_GE(ok, 1);
    EXPECT_LE(ok, 3); // one running and two waiting, at most
    EXPECT_EQ(ok + refused, 40);
    auto s = http_get(*port, "/stats").json();
    EXPECT_EQ(s["pool"]["rejected"], refused);
    EXPECT_EQ(s["pool"]["completed"], ok);
    if (!duet::test::sanitized) {
        EXPECT_LT(rss_kb() - rss_before, 4096) << "refused jobs must not cost memory";
    }
    p.signal(SIGTERM);
    EXPECT_EQ(p.wait_exit(), 0);
}

TEST(Placement, PinnedWorkersAndNiceAreAppliedAndReported)
{
    duet::test::server_process p{
        binary, {"--port", "0", "--workers", "2", "--set", "pool.pin_workers=true", "--set", "pool.nice=7"}};
    auto port = p.wait_listening();
    ASSERT_TRUE(port) << p.output();
    EXPECT_TRUE(p.wait_for_output("worker placement", 5s)) << p.output();
    auto workers = http_get(*port, "/stats").json()["pool"]["per_worker"];
    ASSERT_EQ(workers.size(), 2U);
    std::set<int> cpus;
    for (const auto& w : workers) {
        EXPECT_EQ(w["nice"], 7) << w.dump();
        ASSERT_TRUE(w["pinned_cpu"].is_number()) << w.dump();
        cpus.insert(w["pinned_cpu"].get<int>());
        // The kernel agrees: the thread may run on that one CPU only.
        std::ifstream status{"/proc/" + std::to_string(p.pid()) + "/task/" +
                             std::to_string(w["tid"].get<int>()) + "/status"};
        std::string line;
        while (std::getline(status, line)) {
            if (line.rfind("Cpus_allowed_list:", 0) == 0) {
                EXPECT_EQ(line.substr(line.find_first_not_of(" \t", 18)),
                          std::to_string(w["pinned_cpu"].get<int>()));
            }
        }
    }
    // Two workers on a machine with two or more CPUs: two different CPUs.
    if (std::thread::hardware_concurrency() >= 2) {
        EXPECT_EQ(cpus.size(), 2U);
    }
    p.signal(SIGTERM);
    EXPECT_EQ(p.wait_exit(), 0);
}

} // namespace
