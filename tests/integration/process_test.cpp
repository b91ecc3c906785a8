// duet-server as a user runs it: the executable, its flags, environment, signals and threads.
#include "http_client.hpp"
#include "server_process.hpp"

#include <duet/config.hpp>
#include <duet/version.hpp>

#include <gtest/gtest.h>

#include <signal.h>

#include <filesystem>
#include <fstream>
#include <future>
#include <set>
#include <thread>

namespace {

using namespace std::chrono_literals;
using duet::test::server_process;

const std::string binary = DUET_SERVER_BINARY;
const std::string shipped_config = std::string{DUET_SOURCE_DIR} + "/config/duet.json";

std::set<std::string> thread_names(int pid)
{
    std::set<std::string> names;
    for (const auto& task : std::filesystem::directory_iterator("/proc/" + std::to_string(pid) + "/task")) {
        std::ifstream comm{task.path() / "comm"};
        std::string name;
        std::getline(comm, name);
        names.insert(name);
    }
    return names;
}

TEST(Process, VersionAndHelp)
{
    server_process version{binary, {"--version"}};
    EXPECT_EQ(version.wait_exit(), 0);
    EXPECT_NE(version.output().find(std::string{duet::version}), std::string::npos);

    server_process help{binary, {"--help"}};
    EXPECT_EQ(help.wait_exit(), 0);
    duet::config defaults;
    duet::for_each_key(defaults, [&](const duet::key_info& info, const auto&) {
        EXPECT_NE(help.output().find(std::string{info.name}), std::string::npos) << info.name;
        EXPECT_NE(help.output().find(duet::env_name(info.name)), std::string::npos) << info.name;
    });
    for (const char* flag :
         {"--bind", "--port", "--workers", "--config", "--log-level", "--set", "--access-log"}) {
        EXPECT_NE(help.output().find(flag), std::string::npos) << flag;
    }
    EXPECT_NE(help.output().find("=8080"), std::string::npos) << "the port's default is shown";
}

TEST(Process, BadUsageExitsWith2AndNamesTheProblem)
{
    server_process unknown_flag{binary, {"--frobnicate"}};
    EXPECT_EQ(unknown_flag.wait_exit(), 2);

    server_process bad_env{binary, {"--port", "0"}, {"DUET_POOL_QUEUE_LIMIT=lots"}};
    EXPECT_EQ(bad_env.wait_exit(), 2);
    EXPECT_NE(bad_env.output().find("DUET_POOL_QUEUE_LIMIT"), std::string::npos) << bad_env.output();
    EXPECT_NE(bad_env.output().find("pool.queue_limit"), std::string::npos) << bad_env.output();

    server_process bad_flag{binary, {"--port", "70000"}};
    EXPECT_EQ(bad_flag.wait_exit(), 2);
    EXPECT_NE(bad_flag.output().find("server.port"), std::string::npos) << bad_flag.output();

    server_process bad_key{binary, {"--set", "limits.max_fib=3"}};
    EXPECT_EQ(bad_key.wait_exit(), 2);
    EXPECT_NE(bad_key.output().find("limits.max_fib"), std::string::npos) << bad_key.output();

    server_process bad_bind{binary, {"--bind", "localhost-ish", "--port", "0"}};
    EXPECT_EQ(bad_bind.wait_exit(), 2);
    EXPECT_NE(bad_bind.output().find("server.bind"), std::string::npos) << bad_bind.output();

    server_process missing_file{binary, {"--config", "/nonexistent/duet.json"}};
    EXPECT_EQ(missing_file.wait_exit(), 2);
}

TEST(Process, PortInUseExitsWith1)
{
    server_process first{binary, {"--config", shipped_config, "--port", "0"}};
    auto port = first.wait_listening();
    ASSERT_TRUE(port) << first.output();
    server_process second{binary, {"--config", shipped_config, "--port", std::to_string(*port)}};
    EXPECT_EQ(second.wait_exit(), 1);
    EXPECT_NE(second.output().find("cannot listen"), std::string::npos) << second.output();
    first.signal(SIGTERM);
    EXPECT_EQ(first.wait_exit(), 0);
}

TEST(Process, ShippedConfigStartsAndLogsWhatItFound)
{
    server_process p{binary, {"--config", shipped_config, "--port", "0"}};
    auto port = p.wait_listening();
    ASSERT_TRUE(port) << p.output();
    EXPECT_NE(p.output().find("127.0.0.1"), std::string::npos);
    EXPECT_NE(p.output().find("1 I/O thread"), std::string::npos);
    EXPECT_NE(p.output().find("usable"), std::string::npos) << "CPUs seen are logged";
    EXPECT_EQ(duet::test::http_get(*port, "/healthz").status, 200U);
    p.signal(SIGINT);
    EXPECT_EQ(p.wait_exit(), 0);
}

TEST(Process, OneIoThreadAndNamedWorkersFromEnvironmentAndFlags)
{
    {
        server_process p{binary, {"--port", "0"}, {"DUET_POOL_WORKERS=3", "DUET_IO_BLOCKING_THREADS=2"}};
        auto port = p.wait_listening();
        ASSERT_TRUE(port) << p.output();
        EXPECT_NE(p.output().find("3 workers"), std::string::npos) << p.output();
        EXPECT_TRUE(p.wait_for_output("mode=threads on 2 blocking threads", 5s)) << p.output();
        // Exactly one thread serves HTTP (the main thread, renamed duet-io); the workers and the blocking
        // threads of mode=threads are named for top -H.
        std::set<std::string> expected{"duet-io", "duet-w0", "duet-w1", "duet-w2", "duet-b0", "duet-b1"};
#if defined(__SANITIZE_THREAD__)
        expected.insert("duet-server"); // ThreadSanitizer's own background thread keeps the process name
#endif
        EXPECT_EQ(thread_names(p.pid()), expected);
        p.signal(SIGTERM);
        EXPECT_EQ(p.wait_exit(), 0);
    }
    {
        // A flag beats the environment.
        server_process p{binary, {"--port", "0", "--workers", "2"}, {"DUET_POOL_WORKERS=3"}};
        ASSERT_TRUE(p.wait_listening()) << p.output();
        EXPECT_NE(p.output().find("2 workers"), std::string::npos) << p.output();
        p.signal(SIGTERM);
        EXPECT_EQ(p.wait_exit(), 0);
    }
    {
        server_process p{binary, {"--port", "0", "--workers", "1"}};
        ASSERT_TRUE(p.wait_listening()) << p.output();
        EXPECT_NE(p.output().find("1 I/O thread, 1 worker;"), std::string::npos) << p.output();
        p.signal(SIGTERM);
        EXPECT_EQ(p.wait_exit(), 0);
    }
}

// The threads of a process, but for io_uring's own kernel workers (iou-wrk-N): the kernel starts them for a
// file read it cannot complete at once (pages not cached), and they are not the server's.
std::multiset<std::string> own_threads(pid_t pid)
{
    std::multiset<std::string> names;
    for (const auto& t : std::filesystem::directory_iterator("/proc/" + std::to_string(pid) + "/task")) {
        std::ifstream comm{t.path() / "comm"};
        std::string name;
        std::getline(comm, name);
        if (!name.starts_with("iou-")) {
            names.insert(name);
        }
    }
    return names;
}

// The process's threads are duet-io, the workers and the blocking threads, whatever it serves: no request
// starts a thread. A split once did: its parts' completions had no executor, and Asio ran them on its system
// executor's own pool. The calls of /io/call and the reads of /io/file complete through the same executors.
TEST(Process, NoRequestStartsAThread)
{
    server_process p{binary, {"--port", "0", "--workers", "2", "--set", "io.blocking_threads=4"}};
    auto port = p.wait_listening();
    ASSERT_TRUE(port) << p.output();
    const auto before = own_threads(p.pid());
    EXPECT_EQ(before.count("duet-b3"), 1U);
    for (std::string_view target :
         {"/cpu/primes?n=100000&mode=split&parts=8", "/cpu/mandelbrot?size=64&mode=split", "/cpu/fib?n=20",
          "/cpu/fib?n=20&mode=inline", "/io/fanout?n=100&ms=1", "/io/sleep?ms=1",
          "/io/sleep?ms=1&mode=threads", "/io/call?n=8&ms=1", "/io/call?n=8&ms=1&mode=threads",
          "/io/file?kb=256", "/io/file?kb=256&mode=threads", "/trace?ms=1000", "/stats", "/metrics"}) {
        EXPECT_EQ(duet::test::http_get(*port, target).status, 200U) << target;
    }
    EXPECT_EQ(own_threads(p.pid()), before);
    p.signal(SIGTERM);
    EXPECT_EQ(p.wait_exit(), 0);
}

TEST(Process, AccessLogIsOffByDefaultAndOnByFlag)
{
    for (bool on : {false, true}) {
        std::vector<std::string> args{"--port", "0"};
        if (on) {
            args.emplace_back("--access-log");
        }
        server_process p{binary, args};
        auto port = p.wait_listening();
        ASSERT_TRUE(port) << p.output();
        ASSERT_EQ(duet::test::http_get(*port, "/io/sleep?ms=1").status, 200U);
        if (on) {
            EXPECT_TRUE(p.wait_for_output("\"GET /io/sleep?ms=1 HTTP/1.1\" 200", 5s)) << p.output();
        }
        p.signal(SIGTERM);
        EXPECT_EQ(p.wait_exit(), 0);
        EXPECT_EQ(p.output().find("GET /io/sleep") != std::string::npos, on) << p.output();
    }
}

TEST(Process, SigtermLetsInFlightRequestsFinishThenExitsZero)
{
    server_process p{binary, {"--port", "0", "--workers", "2"}};
    auto port = p.wait_listening();
    ASSERT_TRUE(port) << p.output();
    std::vector<std::string> targets(20, "/io/sleep?ms=1000");
    targets.push_back("/cpu/primes?n=5000000"); // about 0.7 s on a worker
    targets.push_back("/io/fanout?n=50&ms=800");
    auto inflight =
        std::async(std::launch::async, [&] { return duet::test::get_concurrently(*port, targets); });
    std::this_thread::sleep_for(300ms); // every request is in flight now
    p.signal(SIGTERM);
    ASSERT_TRUE(p.wait_for_output("draining", 5s)) << p.output(); // logged as the listener closes
    auto refused = duet::test::http_get(*port, "/healthz", 2s);
    EXPECT_EQ(refused.status, 0U) << "a new connection during the drain is refused";

    auto replies = inflight.get();
    for (std::size_t i = 0; i < replies.size(); ++i) {
        EXPECT_EQ(replies[i].status, 200U) << targets[i] << ": " << replies[i].error;
    }
    // The sleeps were certainly still running at the signal: their responses close their connections.
    EXPECT_FALSE(replies.front().keep_alive) << "responses during a drain carry Connection: close";
    EXPECT_EQ(p.wait_exit(5s), 0) << p.output();
    EXPECT_NE(p.output().find("drained"), std::string::npos) << p.output();
}

TEST(Process, DrainTimeoutBoundsTheWait)
{
    server_process p{binary, {"--port", "0", "--drain-timeout-ms", "300"}};
    auto port = p.wait_listening();
    ASSERT_TRUE(port) << p.output();
    auto slow =
        std::async(std::launch::async, [&] { return duet::test::http_get(*port, "/io/sleep?ms=5000", 10s); });
    std::this_thread::sleep_for(200ms);
    auto start = std::chrono::steady_clock::now();
    p.signal(SIGTERM);
    EXPECT_EQ(p.wait_exit(5s), 0) << p.output();
    EXPECT_LT(std::chrono::steady_clock::now() - start, 3s);
    EXPECT_NE(p.output().find("drain timeout"), std::string::npos) << p.output();
    EXPECT_EQ(slow.get().status, 0U); // cut, as the configuration asked
}

} // namespace
