// duet-load experiment as a user runs it: against a running duet-server, against servers it starts itself,
// and against targets it must refuse. The conclusions are asserted with wide margins (a shared 2-CPU
// machine).
#include "server_process.hpp"
#include "test_env.hpp"

#include <nlohmann/json.hpp>

#include <gtest/gtest.h>

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>

namespace {

using namespace std::chrono_literals;
using duet::test::server_process;

// Under a sanitizer or without optimisation both programs run several times slower: the runs must complete
// and report, but their timings prove nothing, so the figures are asserted only in an optimised, plain build.
#if defined(NDEBUG)
constexpr bool timed = !duet::test::sanitized;
#else
constexpr bool timed = false;
#endif

const std::string load_binary = DUET_LOAD_BINARY;
const std::string server_binary = DUET_SERVER_BINARY;

struct finished
{
    int code = -1;
    std::string output;
    nlohmann::json doc; ///< --json's document, when it was asked for and written
};

finished run_experiment(std::vector<std::string> args, std::chrono::milliseconds timeout = 180s)
{
    const auto json =
        std::filesystem::temp_directory_path() /
        ("duet-experiment-" + std::to_string(::getpid()) + "-" + std::to_string(rand()) + ".json");
    args.insert(args.begin(), "experiment");
    args.insert(args.end(), {"--json", json.string()});
    server_process p{load_binary, args};
    finished f;
    f.code = p.wait_exit(timeout).value_or(-1);
    f.output = p.output();
    std::ifstream in{json};
    if (in) {
        f.doc = nlohmann::json::parse(in, nullptr, false);
        std::filesystem::remove(json);
    }
    return f;
}

const nlohmann::json& experiment(const finished& f, const std::string& name)
{
    static const nlohmann::json none;
    if (f.doc.is_object()) {
        for (const auto& e : f.doc["experiments"]) {
            if (e["name"] == name) {
                return e;
            }
        }
    }
    return none;
}

double value_at(const nlohmann::json& e, const std::string& label, const std::string& name)
{
    for (const auto& p : e["points"]) {
        if (p["label"] == label) {
            return p["values"].value(name, -1.0);
        }
    }
    return -1;
}

TEST(Experiment, AllQuickAgainstARunningServerProvesEachClaimItCan)
{
    server_process server{server_binary, {"--port", "0"}};
    auto port = server.wait_listening();
    ASSERT_TRUE(port) << server.output();
    const auto pictures =
        std::filesystem::temp_directory_path() / ("duet-charts-" + std::to_string(::getpid()));
    auto f = run_experiment({"all", "--quick", "http://127.0.0.1:" + std::to_string(*port), "--svg-dir",
                             pictures.string(), "--report", (pictures / "report.html").string()});
    // A chart per experiment, and the page that holds them all, self-contained.
    for (const char* name : {"concurrency", "threads", "parallelism", "split", "blocking", "single-core"}) {
        std::ifstream svg{pictures / (std::string{name} + ".svg")};
        std::string text{std::istreambuf_iterator<char>{svg}, {}};
        EXPECT_EQ(text.rfind("<svg", 0), 0U) << name;
    }
    std::ifstream page{pictures / "report.html"};
    const std::string html{std::istreambuf_iterator<char>{page}, {}};
    EXPECT_EQ(std::count(html.begin(), html.end(), '<') > 0, true);
    EXPECT_EQ(html.find("<script"), std::string::npos);
    EXPECT_EQ(html.find("http://") == std::string::npos ||
                  html.find("http://www.w3.org/2000/svg") != std::string::npos,
              true);
    std::filesystem::remove_all(pictures);
    ASSERT_TRUE(f.code == 0 || (!timed && f.code == 1)) << f.output; // 1: a claim did not hold
    ASSERT_EQ(f.doc["experiments"].size(), 6U) << f.output;
    for (const auto& e : f.doc["experiments"]) {
        EXPECT_FALSE(e["points"].empty() && e["verdict"] != "not_applicable") << e.dump();
        EXPECT_FALSE(e["conclusion"].get<std::string>().empty()) << e.dump();
    }
    if (!timed) {
        return;
    }

    const auto& conc = experiment(f, "concurrency");
    EXPECT_EQ(conc["verdict"], "held") << f.output;
    EXPECT_LT(value_at(conc, "1,000", "seconds"), 0.5) << f.output;
    EXPECT_GT(value_at(conc, "1,000", "seconds"), 0.099) << "a wait cannot end before it began";

    // The same waits on the server's 64 blocking threads queue for them: 500 take 8 rounds, not one.
    const auto& threads = experiment(f, "threads");
    EXPECT_EQ(threads["verdict"], "held") << f.output;
    ASSERT_EQ(threads["points"].size(), 2U) << f.output;
    const double on_loop = value_at(threads, "event loop", "seconds");
    const double on_threads = value_at(threads, "64 threads", "seconds");
    EXPECT_LT(on_loop, 0.5) << f.output;
    EXPECT_GE(on_threads, 3 * on_loop) << f.output;
    EXPECT_GE(on_threads, 0.9 * value_at(threads, "64 threads", "predicted (s)")) << f.output;

    const auto& split = experiment(f, "split");
    const auto cpus = split["environment"].value("usable_cpus", 0);
    if (cpus >= 2) {
        EXPECT_GT(value_at(split, "2", "speedup"), 1.5) << f.output;
    }
    const auto& blocking = experiment(f, "blocking");
    EXPECT_GE(value_at(blocking, "inline", "probe p99 (ms)"),
              5 * value_at(blocking, "pool", "probe p99 (ms)"))
        << f.output;
    // A given server cannot be given other worker counts: the experiment says so rather than guess.
    EXPECT_EQ(experiment(f, "parallelism")["verdict"], "not_applicable") << f.output;
    server.signal(SIGTERM);
    EXPECT_EQ(server.wait_exit(), 0);
}

TEST(Experiment, WithoutAUrlItStartsTheServersItNeeds)
{
    // single-core starts a server on one CPU with two workers: waits still overlap, a split gains nothing.
    auto f = run_experiment({"single-core", "--quick"});
    ASSERT_TRUE(f.code == 0 || (!timed && f.code == 1)) << f.output;
    const auto& e = experiment(f, "single-core");
    EXPECT_EQ(e["environment"].value("usable_cpus", 0), 1) << f.output;
    if (!timed) {
        return;
    }
    EXPECT_LT(value_at(e, "1,000 waits, against one after another", "seconds"), 0.5) << f.output;
    EXPECT_LT(value_at(e, "a job in 2 parts, against 1", "speedup (x)"), 1.2) << f.output;
    EXPECT_EQ(e["verdict"], "held") << f.output;
}

TEST(Experiment, ThreadsStartsAServerWithTheBlockingThreadsItNeeds)
{
    // --quick: one server, with 50 blocking threads; 500 waits of 100 ms take 10 rounds on them.
    auto f = run_experiment({"threads", "--quick"});
    ASSERT_TRUE(f.code == 0 || (!timed && f.code == 1)) << f.output;
    const auto& e = experiment(f, "threads");
    EXPECT_EQ(e["environment"]["blocking_threads"], nlohmann::json::array({50})) << f.output;
    ASSERT_EQ(e["points"].size(), 2U) << f.output;
    // The server's own CPU and context switches, read from /proc since duet-load started it.
    EXPECT_GT(value_at(e, "50 threads", "server CPU (ms)"), 0) << f.output;
    EXPECT_GT(value_at(e, "50 threads", "context switches"), 0) << f.output;
    EXPECT_GT(value_at(e, "50 threads", "longest queue (ms)"), 500) << f.output;
    if (!timed) {
        return;
    }
    EXPECT_EQ(e["verdict"], "held") << f.output;
    EXPECT_GE(value_at(e, "50 threads", "seconds"), 3 * value_at(e, "event loop", "seconds")) << f.output;
}

TEST(Experiment, ThreadsSaysWhatAGivenServerCannotShow)
{
    // 300 blocking threads for 1,000 waits: hardly any would queue, so the two models would barely differ,
    // and the experiment says what would show it instead of running.
    server_process server{server_binary, {"--port", "0", "--set", "io.blocking_threads=300"}};
    auto port = server.wait_listening();
    ASSERT_TRUE(port) << server.output();
    auto f = run_experiment({"threads", "http://127.0.0.1:" + std::to_string(*port)});
    EXPECT_EQ(f.code, 0) << f.output;
    const auto& e = experiment(f, "threads");
    EXPECT_EQ(e["verdict"], "not_applicable") << f.output;
    EXPECT_TRUE(e["points"].empty()) << f.output;
    EXPECT_NE(f.output.find("io.blocking_threads=250 or fewer"), std::string::npos) << f.output;
    server.signal(SIGTERM);
    EXPECT_EQ(server.wait_exit(), 0);
}

TEST(Experiment, WhatCannotBeMeasuredIsAnErrorAndClaimsNothing)
{
    auto unknown = run_experiment({"speed", "--quick"});
    EXPECT_EQ(unknown.code, 2);
    EXPECT_NE(unknown.output.find("no experiment named 'speed'"), std::string::npos) << unknown.output;

    // Nothing listens on a port just freed.
    std::uint16_t free_port = 0;
    {
        server_process s{server_binary, {"--port", "0"}};
        free_port = s.wait_listening().value_or(0);
        s.signal(SIGTERM);
        s.wait_exit();
    }
    auto unreachable =
        run_experiment({"concurrency", "--quick", "http://127.0.0.1:" + std::to_string(free_port)});
    EXPECT_EQ(unreachable.code, 2);
    EXPECT_NE(unreachable.output.find("cannot connect"), std::string::npos) << unreachable.output;
    EXPECT_TRUE(unreachable.doc.is_null() || unreachable.doc["experiments"].empty()) << unreachable.output;

    // A server that refuses: 503 to every connection beyond the fourth.
    server_process small{server_binary, {"--port", "0", "--set", "server.max_connections=4"}};
    auto port = small.wait_listening();
    ASSERT_TRUE(port) << small.output();
    auto refused = run_experiment({"concurrency", "--quick", "http://127.0.0.1:" + std::to_string(*port)});
    EXPECT_EQ(refused.code, 2);
    EXPECT_NE(refused.output.find("503"), std::string::npos) << refused.output;
    EXPECT_NE(refused.output.find("no result is claimed"), std::string::npos) << refused.output;
    small.signal(SIGTERM);
    small.wait_exit();

    // An HTTP server that is not duet.
    if (!std::filesystem::exists("/usr/bin/python3")) {
        GTEST_SKIP() << "no python3 for a server that is not duet (scripts/test installs it)";
    }
    server_process other{"/usr/bin/python3", {"-u", "-m", "http.server", "--bind", "127.0.0.1", "0"}};
    auto line = other.wait_for_output("port ", 10s);
    ASSERT_TRUE(line) << other.output();
    const auto at = other.output().find("port ");
    const auto other_port = std::stoi(other.output().substr(at + 5));
    auto not_duet =
        run_experiment({"concurrency", "--quick", "http://127.0.0.1:" + std::to_string(other_port)});
    EXPECT_EQ(not_duet.code, 2);
    EXPECT_NE(not_duet.output.find("duet-server"), std::string::npos) << not_duet.output;
}

} // namespace
