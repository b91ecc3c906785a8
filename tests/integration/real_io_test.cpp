// Real I/O (issue #22): /io/call over the pool of upstream connections and on blocking threads, its failures
// against scripted upstreams, /io/sleep on the blocking threads, and /io/file's bytes checked against the
// file.
#include "http_client.hpp"
#include "running_server.hpp"
#include "server_process.hpp"
#include "test_env.hpp"

#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <future>
#include <iterator>
#include <map>
#include <random>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace {

using namespace std::chrono_literals;
using duet::test::get_concurrently;
using duet::test::http_get;
using duet::test::running_server;
using duet::test::server_process;
using nlohmann::json;
using std::chrono::steady_clock;

const std::string server_binary = DUET_SERVER_BINARY;

// Under a sanitizer or without optimisation the server runs several times slower: upper bounds on time are
// asserted only in an optimised, plain build. Lower bounds (a wait cannot end early) hold in every build.
#if defined(NDEBUG)
constexpr bool timed = !duet::test::sanitized;
#else
constexpr bool timed = false;
#endif

double ms_of(steady_clock::duration d)
{
    return std::chrono::duration<double, std::milli>(d).count();
}

json stats(std::uint16_t port)
{
    auto r = http_get(port, "/stats");
    EXPECT_EQ(r.status, 200U) << r.error;
    return r.status == 200U ? r.json() : json{};
}

// The value of one series of /metrics ("name" or "name{labels}"); -1 when it is missing.
double metric(const std::string& text, const std::string& series)
{
    std::istringstream in{text};
    std::string line;
    while (std::getline(in, line)) {
        if (line.starts_with(series + " ")) {
            return std::stod(line.substr(series.size() + 1));
        }
    }
    return -1;
}

// ---- Scripted upstreams -----------------------------------------------------------------------------------

// An upstream on 127.0.0.1 owned by the test: it accepts every connection, reads requests, and answers each
// the same scripted way, or not at all. It counts the connections it holds open, so that a test can tell the
// connections a server keeps on purpose from those it leaks.
class fake_upstream
{
public:
    enum class answer : std::uint8_t {
        nothing,    ///< reads and says nothing
        garbage,    ///< bytes that are not HTTP
        status_500, ///< a well-formed 500, kept alive
        too_big,    ///< a 200 whose body is larger than upstream.max_response_bytes
        trickle,    ///< a well-formed 200, one byte every 50 ms (about 3 s in all)
        close,      ///< a well-formed 200 with Connection: close, then the end of the stream
    };

    explicit fake_upstream(answer a) : answer_{a}
    {
        listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        sockaddr_in addr{};
        addr.sin_family = AF_INET;
        addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        socklen_t len = sizeof addr;
        if (listen_fd_ < 0 || ::bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
            ::listen(listen_fd_, 512) != 0 ||
            ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
            throw std::runtime_error{"fake upstream: cannot listen"};
        }
        port_ = ntohs(addr.sin_port);
        thread_ = std::jthread{[this](std::stop_token stop) { serve(stop); }};
    }
    ~fake_upstream()
    {
        thread_.request_stop();
        thread_.join();
        ::close(listen_fd_);
    }
    fake_upstream(const fake_upstream&) = delete;
    fake_upstream& operator=(const fake_upstream&) = delete;

    std::string url() const { return "http://127.0.0.1:" + std::to_string(port_) + "/upstream"; }
    int open_connections() const { return open_.load(); }
    int requests() const { return requests_.load(); }

private:
    void serve(const std::stop_token& stop)
    {
        std::map<int, std::string> clients;   // descriptor -> bytes read and not yet answered
        std::map<int, std::string> trickling; // descriptor -> bytes of its answer not yet sent
        auto next_byte = steady_clock::now();
        while (!stop.stop_requested()) {
            if (!trickling.empty() && steady_clock::now() >= next_byte) {
                next_byte = steady_clock::now() + 50ms;
                for (auto it = trickling.begin(); it != trickling.end();) {
                    (void)::send(it->first, it->second.data(), 1, MSG_NOSIGNAL);
                    it->second.erase(0, 1);
                    it = it->second.empty() ? trickling.erase(it) : std::next(it);
                }
            }
            std::vector<pollfd> fds{{listen_fd_, POLLIN, 0}};
            for (const auto& [fd, unused] : clients) {
                fds.push_back({fd, POLLIN, 0});
            }
            if (::poll(fds.data(), fds.size(), 20) <= 0) {
                continue;
            }
            if ((fds[0].revents & POLLIN) != 0) {
                for (int fd;
                     (fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK)) >= 0;) {
                    clients[fd];
                    ++open_;
                }
            }
            for (std::size_t i = 1; i < fds.size(); ++i) {
                if (fds[i].revents == 0) {
                    continue;
                }
                const int fd = fds[i].fd;
                char chunk[4096];
                auto n = ::recv(fd, chunk, sizeof chunk, 0);
                if (n <= 0) { // the server closed its end (or reset it)
                    ::close(fd);
                    clients.erase(fd);
                    trickling.erase(fd);
                    --open_;
                    continue;
                }
                auto& pending = clients[fd];
                pending.append(chunk, static_cast<std::size_t>(n));
                // The server's calls are GETs without a body: a request ends at its blank line.
                for (auto end = pending.find("\r\n\r\n"); end != std::string::npos;
                     end = pending.find("\r\n\r\n")) {
                    pending.erase(0, end + 4);
                    ++requests_;
                    if (answer_ == answer::trickle) {
                        trickling[fd] =
                            "HTTP/1.1 200 OK\r\nContent-Length: 12\r\nX-Slow: yes\r\n\r\nat last, ok!";
                    } else {
                        respond(fd);
                    }
                }
            }
        }
        for (const auto& [fd, unused] : clients) {
            ::close(fd);
        }
    }

    void respond(int fd) const
    {
        std::string out;
        switch (answer_) {
        case answer::nothing:
        case answer::trickle:
            return;
        case answer::garbage:
            out = "this is not HTTP at all\r\n\r\n";
            break;
        case answer::status_500:
            out = "HTTP/1.1 500 Internal Server Error\r\nContent-Length: 5\r\n\r\noops!";
            break;
        case answer::too_big:
            // The header alone announces more than the server may read; what of the body fits is sent too.
            out = "HTTP/1.1 200 OK\r\nContent-Length: 200000\r\n\r\n" + std::string(100000, 'x');
            break;
        case answer::close:
            out = "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok";
            (void)::send(fd, out.data(), out.size(), MSG_NOSIGNAL);
            ::shutdown(fd, SHUT_WR); // the descriptor stays until the server closes its end too
            return;
        }
        // Non-blocking: whatever the socket takes. A server that has given up on the answer may be gone.
        (void)::send(fd, out.data(), out.size(), MSG_NOSIGNAL);
    }

    answer answer_;
    int listen_fd_ = -1;
    std::uint16_t port_ = 0;
    std::atomic<int> open_{0};
    std::atomic<int> requests_{0};
    std::jthread thread_;
};

// A port on 127.0.0.1 that nothing listens on: bound to find it, then freed.
std::uint16_t freed_port()
{
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof addr;
    ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
    ::close(fd);
    return ntohs(addr.sin_port);
}

// ---- A child server and its descriptors -------------------------------------------------------------------

std::size_t open_fds(int pid)
{
    return static_cast<std::size_t>(
        std::distance(std::filesystem::directory_iterator("/proc/" + std::to_string(pid) + "/fd"),
                      std::filesystem::directory_iterator{}));
}

// The server's descriptors when it is quiet: the least of a few readings, since its /proc sampler opens and
// closes a file now and then.
std::size_t quiet_fds(int pid)
{
    std::size_t least = open_fds(pid);
    for (int i = 0; i < 10; ++i) {
        std::this_thread::sleep_for(20ms);
        least = std::min(least, open_fds(pid));
    }
    return least;
}

// Waits up to 5 s for the server's descriptors to equal expected() (re-evaluated each time: a peer's count
// may be settling too); the last count read.
template <typename Expected>
std::size_t settled_fds(int pid, Expected expected)
{
    const auto deadline = steady_clock::now() + 5s;
    std::size_t n = open_fds(pid);
    while (n != expected() && steady_clock::now() < deadline) {
        std::this_thread::sleep_for(20ms);
        n = open_fds(pid);
    }
    return n;
}

// duet-server as a child calling `url`, with one blocking thread (so that mode=threads keeps at most one
// connection) and a small data file (so that it starts fast).
struct child_server
{
    child_server(const std::string& url, std::int64_t timeout_ms)
        : proc{server_binary,
               {"--port", "0", "--set", "upstream.url=" + url, "--set",
                "upstream.timeout_ms=" + std::to_string(timeout_ms), "--set", "io.blocking_threads=1",
                "--set", "io.file_size_mb=1"}}
    {
        auto p = proc.wait_listening();
        EXPECT_TRUE(p) << proc.output();
        EXPECT_TRUE(proc.wait_for_output("real I/O:")) << proc.output();
        port = p.value_or(0);
    }

    // SIGTERM, and the server drains and exits 0.
    void stop_cleanly()
    {
        proc.signal(SIGTERM);
        EXPECT_EQ(proc.wait_exit(), 0);
    }

    server_process proc;
    std::uint16_t port = 0;
};

struct failure
{
    unsigned status;
    std::string code;
};

// The calls fail_calls makes: n=4 on the event loop, then n=2 on the blocking thread, twice over.
constexpr int fail_calls_made = 2 * (4 + 2);

// fail_calls' requests, each of which fails as expected. Returns the replies' times (ms) in the order: loop,
// threads, loop, threads.
std::vector<double> fail_calls(const child_server& s, const failure& f)
{
    std::vector<double> times;
    for (int round = 0; round < 2; ++round) {
        for (std::string target : {"/io/call?n=4&ms=1", "/io/call?n=2&ms=1&mode=threads"}) {
            auto r = http_get(s.port, target, 10s);
            times.push_back(ms_of(r.elapsed));
            EXPECT_EQ(r.status, f.status) << target << ": " << r.error << r.body;
            if (r.status != f.status) {
                continue;
            }
            auto e = r.json()["error"];
            EXPECT_EQ(e["status"], f.status) << r.body;
            EXPECT_EQ(e["code"], f.code) << target << ": " << r.body;
            EXPECT_TRUE(r.keep_alive) << "a failed call is the request's answer, not a broken connection";
        }
    }
    return times;
}

// ---- /io/call on the pool ---------------------------------------------------------------------------------

TEST(RealIo, HundredCallsOverlapOnTheirOwnConnectionsThenReuseThem)
{
    running_server server; // upstream.url "self": this server's own /io/sleep; max_connections 100
    auto first = http_get(server.port(), "/io/call?n=100&ms=200");
    ASSERT_EQ(first.status, 200U) << first.error << first.body;
    auto j = first.json();
    EXPECT_EQ(j["result"]["calls"], 100);
    EXPECT_EQ(j["result"]["ms_each"], 200);
    // An empty pool and 100 calls at once: each opens a connection, none waits for one.
    EXPECT_EQ(j["result"]["connections_opened"], 100) << j.dump();
    EXPECT_EQ(j["result"]["connections_reused"], 0) << j.dump();
    EXPECT_GE(j["result"]["network_wait_us"].get<double>(), 200000.0);
    EXPECT_EQ(j["report"]["model"], "event-loop");
    EXPECT_GE(j["report"]["timing_us"]["service"].get<double>(), 200000.0);
    EXPECT_GE(ms_of(first.elapsed), 200.0);
    // 100 calls of 200 ms overlap: about 200 ms, not 20 s.
    EXPECT_LT(ms_of(first.elapsed), timed ? 600.0 : 5000.0);

    // The connections were kept alive: the next request makes its 100 calls on them.
    auto second = http_get(server.port(), "/io/call?n=100&ms=200");
    ASSERT_EQ(second.status, 200U) << second.error << second.body;
    EXPECT_EQ(second.json()["result"]["connections_opened"], 0) << second.body;
    EXPECT_EQ(second.json()["result"]["connections_reused"], 100) << second.body;
    EXPECT_LT(ms_of(second.elapsed), timed ? 600.0 : 5000.0);

    auto s = stats(server.port());
    auto up = s["upstream"];
    EXPECT_EQ(up["url"], "http://127.0.0.1:" + std::to_string(server.port()) + "/io/sleep");
    EXPECT_EQ(up["connections"]["open"], 100) << up.dump();
    EXPECT_EQ(up["connections"]["idle"], 100) << up.dump();
    EXPECT_EQ(up["connections"]["max"], 100) << up.dump();
    EXPECT_EQ(up["connections"]["opened"], 100) << up.dump();
    EXPECT_EQ(up["connections"]["reused"], 100) << up.dump();
    EXPECT_EQ(up["waiting"], 0) << up.dump();
    EXPECT_EQ(up["calls"]["ok"], 200) << up.dump();
    EXPECT_EQ(up["calls"]["timeout"], 0) << up.dump();
    // The calls arrived as requests to this same server.
    EXPECT_EQ(s["requests"]["endpoints"]["/io/sleep"]["status"]["200"], 200) << s["requests"].dump();

    auto m = http_get(server.port(), "/metrics").body;
    EXPECT_EQ(metric(m, R"(duet_upstream_connections{state="open"})"), 100.0);
    EXPECT_EQ(metric(m, R"(duet_upstream_connections{state="idle"})"), 100.0);
    EXPECT_EQ(metric(m, "duet_upstream_connections_max"), 100.0);
    EXPECT_EQ(metric(m, "duet_upstream_connections_opened_total"), 100.0);
    EXPECT_EQ(metric(m, "duet_upstream_connections_reused_total"), 100.0);
    EXPECT_EQ(metric(m, "duet_upstream_waiting_calls"), 0.0);
    EXPECT_EQ(metric(m, R"(duet_upstream_calls_total{outcome="ok"})"), 200.0);
    EXPECT_EQ(metric(m, R"(duet_upstream_calls_total{outcome="timeout"})"), 0.0);
    EXPECT_EQ(metric(m, "duet_upstream_call_duration_seconds_count"), 200.0);
}

TEST(RealIo, CallsBeyondMaxConnectionsWaitForAFreeOne)
{
    auto cfg = duet::test::test_config();
    cfg.upstream.max_connections = 5;
    running_server server{cfg};
    auto call =
        std::async(std::launch::async, [&] { return http_get(server.port(), "/io/call?n=20&ms=200"); });
    // Watch the pool while the calls run: never more than 5 open, and calls queued for one.
    std::int64_t most_open = 0;
    std::int64_t most_waiting = 0;
    int samples = 0;
    while (call.wait_for(20ms) != std::future_status::ready) {
        auto up = stats(server.port())["upstream"];
        most_open = std::max(most_open, up["connections"]["open"].get<std::int64_t>());
        most_waiting = std::max(most_waiting, up["waiting"].get<std::int64_t>());
        ++samples;
    }
    auto r = call.get();
    ASSERT_EQ(r.status, 200U) << r.error << r.body;
    auto result = r.json()["result"];
    EXPECT_LE(result["connections_opened"].get<int>(), 5) << result.dump();
    EXPECT_EQ(result["connections_opened"].get<int>() + result["connections_reused"].get<int>(), 20)
        << result.dump();
    // 20 calls of 200 ms on 5 connections: four rounds, one after another.
    EXPECT_GE(ms_of(r.elapsed), 4 * 200.0);
    EXPECT_LT(ms_of(r.elapsed), timed ? 1600.0 : 10000.0);
    ASSERT_GT(samples, 3);
    EXPECT_LE(most_open, 5);
    EXPECT_GE(most_waiting, 1) << "calls beyond max_connections wait for a connection";
    auto up = stats(server.port())["upstream"];
    EXPECT_EQ(up["connections"]["max"], 5);
    EXPECT_EQ(up["connections"]["open"], 5) << up.dump();
    EXPECT_EQ(up["connections"]["opened"], result["connections_opened"]) << up.dump();
    EXPECT_EQ(up["calls"]["ok"], 20) << up.dump();
}

TEST(RealIo, CallsBeyondTheQueueLimitGet503)
{
    auto cfg = duet::test::test_config();
    cfg.upstream.max_connections = 1;
    cfg.upstream.queue_limit = 3;
    running_server server{cfg};
    // One call takes the connection, three wait for it, and the other six are refused at once.
    auto r = http_get(server.port(), "/io/call?n=10&ms=50");
    ASSERT_EQ(r.status, 503U) << r.error << r.body;
    EXPECT_EQ(r.header("retry-after"), "1");
    auto e = r.json()["error"];
    EXPECT_EQ(e["code"], "upstream_saturated") << r.body;
    EXPECT_EQ(e["limit"], 3) << r.body;
    auto calls = stats(server.port())["upstream"]["calls"];
    EXPECT_EQ(calls["ok"], 4) << calls.dump();
    EXPECT_EQ(calls["saturated"], 6) << calls.dump();
}

TEST(RealIo, AWaitForAFreeConnectionHasTheDeadlineToo)
{
    auto cfg = duet::test::test_config();
    cfg.upstream.max_connections = 1;
    cfg.upstream.timeout_ms = 300;
    running_server server{cfg};
    // Three calls of 200 ms on one connection: the first ends at 200 ms, the second (first in line) at 400
    // ms; the third is still waiting for the connection at its deadline, 300 ms. Each read alone is within
    // it.
    auto r = http_get(server.port(), "/io/call?n=3&ms=200");
    ASSERT_EQ(r.status, 504U) << r.error << r.body;
    EXPECT_EQ(r.json()["error"]["code"], "upstream_timeout") << r.body;
    EXPECT_EQ(r.json()["error"]["limit"], 300) << r.body;
    EXPECT_GE(ms_of(r.elapsed), 2 * 200.0) << "the request waits for all its calls";
    auto up = stats(server.port())["upstream"];
    EXPECT_EQ(up["calls"]["ok"], 2) << up.dump();
    EXPECT_EQ(up["calls"]["timeout"], 1) << up.dump();
    EXPECT_EQ(up["connections"]["opened"], 1) << up.dump();
    EXPECT_EQ(up["waiting"], 0) << up.dump();
}

TEST(RealIo, CallsOnBlockingThreadsKeepAConnectionEach)
{
    auto cfg = duet::test::test_config();
    cfg.io.blocking_threads = 4;
    running_server server{cfg};
    auto r = http_get(server.port(), "/io/call?n=8&ms=100&mode=threads");
    ASSERT_EQ(r.status, 200U) << r.error << r.body;
    auto j = r.json();
    EXPECT_EQ(j["result"]["calls"], 8);
    // Each thread makes its calls one after another on one kept-alive connection.
    EXPECT_LE(j["result"]["connections_opened"].get<int>(), 4) << j.dump();
    EXPECT_EQ(j["result"]["connections_opened"].get<int>() + j["result"]["connections_reused"].get<int>(), 8)
        << j.dump();
    auto report = j["report"];
    EXPECT_EQ(report["model"], "blocking-thread");
    EXPECT_TRUE(report["threads"]["worker"]["name"].get<std::string>().starts_with("duet-b"))
        << report.dump();
    ASSERT_TRUE(report.contains("context_switches")) << report.dump();
    EXPECT_GE(report["context_switches"]["voluntary"].get<int>(), 1) << "a thread blocked in recv sleeps";
    // Eight calls of 100 ms on four threads: at least two rounds.
    EXPECT_GE(ms_of(r.elapsed), 2 * 100.0);
    EXPECT_LT(ms_of(r.elapsed), timed ? 1000.0 : 10000.0);
    // The event-loop pool was not used.
    auto up = stats(server.port())["upstream"];
    EXPECT_EQ(up["connections"]["opened"], 0) << up.dump();
    EXPECT_EQ(up["calls"]["ok"], 8) << up.dump();
}

// ---- /io/call's failures ----------------------------------------------------------------------------------

TEST(RealIo, RefusedUpstreamIs502UnreachableAtOnceAndLeaksNothing)
{
    // A long deadline: a quick answer shows that a refusal is not waited out.
    const auto url = "http://127.0.0.1:" + std::to_string(freed_port()) + "/upstream";
    child_server s{url, 10000};
    ASSERT_NE(s.port, 0);
    const auto baseline = quiet_fds(s.proc.pid());
    for (double ms : fail_calls(s, {502, "upstream_unreachable"})) {
        EXPECT_LT(ms, 3000.0);
    }
    auto r = http_get(s.port, "/io/call?n=1&ms=1");
    EXPECT_NE(r.body.find(url), std::string::npos) << "the message names the upstream: " << r.body;
    auto calls = stats(s.port)["upstream"]["calls"];
    EXPECT_EQ(calls["unreachable"], fail_calls_made + 1) << calls.dump();
    EXPECT_EQ(settled_fds(s.proc.pid(), [&] { return baseline; }), baseline);
    s.stop_cleanly();
}

TEST(RealIo, SilentUpstreamIs504AtTheDeadlineAndLeaksNothing)
{
    fake_upstream upstream{fake_upstream::answer::nothing};
    child_server s{upstream.url(), 300};
    ASSERT_NE(s.port, 0);
    const auto baseline = quiet_fds(s.proc.pid());
    auto times = fail_calls(s, {504, "upstream_timeout"});
    ASSERT_EQ(times.size(), 4U);
    // On the loop the four calls wait together: one deadline. On the one blocking thread the two calls wait
    // one after the other: two deadlines. Well before the default deadline (5 s) either way.
    for (double ms : {times[0], times[2]}) {
        EXPECT_GE(ms, 290.0);
        EXPECT_LT(ms, 3000.0);
    }
    for (double ms : {times[1], times[3]}) {
        EXPECT_GE(ms, 2 * 290.0);
        EXPECT_LT(ms, 3000.0);
    }
    auto r = http_get(s.port, "/io/call?n=1&ms=1");
    EXPECT_EQ(r.json()["error"]["limit"], 300) << r.body;
    auto calls = stats(s.port)["upstream"]["calls"];
    EXPECT_EQ(calls["timeout"], fail_calls_made + 1) << calls.dump();
    EXPECT_EQ(upstream.requests(), fail_calls_made + 1);
    // Every connection cut at its deadline was closed: none is left, on either side.
    EXPECT_EQ(settled_fds(s.proc.pid(), [&] { return baseline; }), baseline);
    EXPECT_EQ(upstream.open_connections(), 0);
    s.stop_cleanly();
}

TEST(RealIo, GarbageAndOversizedAnswersAre502BadResponseAndLeakNothing)
{
    for (auto answer : {fake_upstream::answer::garbage, fake_upstream::answer::too_big}) {
        SCOPED_TRACE(answer == fake_upstream::answer::garbage ? "garbage" : "too big");
        fake_upstream upstream{answer};
        child_server s{upstream.url(), 300};
        ASSERT_NE(s.port, 0);
        const auto baseline = quiet_fds(s.proc.pid());
        for (double ms : fail_calls(s, {502, "upstream_bad_response"})) {
            EXPECT_LT(ms, 3000.0) << "a bad answer is not waited out";
        }
        auto r = http_get(s.port, "/io/call?n=1&ms=1");
        EXPECT_EQ(r.json()["error"]["limit"], 65536) << r.body; // upstream.max_response_bytes
        auto calls = stats(s.port)["upstream"]["calls"];
        EXPECT_EQ(calls["bad_response"], fail_calls_made + 1) << calls.dump();
        // A connection that carried a bad answer is not used again: each call opened its own, and closed it.
        EXPECT_EQ(upstream.requests(), fail_calls_made + 1);
        EXPECT_EQ(settled_fds(s.proc.pid(), [&] { return baseline; }), baseline);
        EXPECT_EQ(upstream.open_connections(), 0);
        s.stop_cleanly();
    }
}

TEST(RealIo, Upstream500Is502WithItsStatusAndOnlyKeptConnectionsStayOpen)
{
    fake_upstream upstream{fake_upstream::answer::status_500};
    child_server s{upstream.url(), 300};
    ASSERT_NE(s.port, 0);
    const auto baseline = quiet_fds(s.proc.pid());
    fail_calls(s, {502, "upstream_status"});
    for (std::string target : {"/io/call?n=3&ms=1", "/io/call?n=1&ms=1&mode=threads"}) {
        auto r = http_get(s.port, target);
        ASSERT_EQ(r.status, 502U) << r.body;
        EXPECT_EQ(r.json()["error"]["upstream_status"], 500) << r.body;
        EXPECT_NE(r.json()["error"]["message"].get<std::string>().find("500"), std::string::npos) << r.body;
    }
    auto up = stats(s.port)["upstream"];
    EXPECT_EQ(up["calls"]["bad_status"], fail_calls_made + 3 + 1) << up.dump();
    // A well-formed 500 leaves its connection usable: the pool keeps its connections idle, and the one
    // blocking thread keeps one. Those are the only descriptors beyond the baseline.
    const auto pool_open = up["connections"]["open"].get<std::size_t>();
    EXPECT_EQ(up["connections"]["idle"].get<std::size_t>(), pool_open) << up.dump();
    EXPECT_GE(pool_open, 1U);
    EXPECT_LE(pool_open, 4U) << "at most the 4 connections of the largest request";
    EXPECT_GT(up["connections"]["reused"].get<int>(), 0) << up.dump();
    EXPECT_EQ(settled_fds(s.proc.pid(), [&] { return baseline + pool_open + 1; }), baseline + pool_open + 1);
    EXPECT_EQ(upstream.open_connections(), static_cast<int>(pool_open) + 1);
    s.stop_cleanly();
}

TEST(RealIo, AnAnswerThatClosesItsConnectionSucceedsAndTheConnectionIsNotKept)
{
    fake_upstream upstream{fake_upstream::answer::close};
    child_server s{upstream.url(), 300};
    ASSERT_NE(s.port, 0);
    const auto baseline = quiet_fds(s.proc.pid());
    for (int round = 0; round < 2; ++round) {
        for (std::string target : {"/io/call?n=4&ms=1", "/io/call?n=2&ms=1&mode=threads"}) {
            auto r = http_get(s.port, target);
            ASSERT_EQ(r.status, 200U) << target << ": " << r.error << r.body;
            const int n = target.find("n=4") != std::string::npos ? 4 : 2;
            EXPECT_EQ(r.json()["result"]["connections_opened"], n) << "none was kept to reuse: " << r.body;
            EXPECT_EQ(r.json()["result"]["connections_reused"], 0) << r.body;
        }
    }
    auto up = stats(s.port)["upstream"];
    EXPECT_EQ(up["calls"]["ok"], 12) << up.dump();
    EXPECT_EQ(up["connections"]["open"], 0) << up.dump();
    EXPECT_EQ(up["connections"]["idle"], 0) << up.dump();
    EXPECT_EQ(up["connections"]["opened"], 8) << up.dump(); // the pool's own; the blocking thread's are not
    EXPECT_EQ(settled_fds(s.proc.pid(), [&] { return baseline; }), baseline);
    EXPECT_EQ(upstream.open_connections(), 0);
    s.stop_cleanly();
}

TEST(RealIo, TricklingUpstreamIs504AtTheDeadlineOnTheLoopAndOnABlockingThread)
{
    // upstream.timeout_ms bounds a call's whole answer, not each byte of it: an upstream that sends its
    // answer a byte at a time must not hold a call, or a blocking thread, past the deadline.
    fake_upstream upstream{fake_upstream::answer::trickle};
    child_server s{upstream.url(), 300};
    ASSERT_NE(s.port, 0);
    for (std::string target : {"/io/call?n=2&ms=1", "/io/call?n=1&ms=1&mode=threads"}) {
        auto r = http_get(s.port, target, 10s);
        EXPECT_EQ(r.status, 504U) << target << ": " << r.error << r.body.substr(0, 200);
        EXPECT_GE(ms_of(r.elapsed), 290.0) << target;
        EXPECT_LT(ms_of(r.elapsed), 2000.0) << target << ": the whole answer takes about 3 s to trickle in";
    }
}

// Polls `done` every 20 ms for up to 5 s; whether it became true.
template <typename Done>
bool eventually(Done done)
{
    const auto deadline = steady_clock::now() + 5s;
    while (!done()) {
        if (steady_clock::now() >= deadline) {
            return false;
        }
        std::this_thread::sleep_for(20ms);
    }
    return true;
}

TEST(RealIo, AClientThatLeavesCancelsItsCallsAndClosesTheirConnections)
{
    running_server server;
    json s;
    {
        duet::test::raw_connection raw{server.port()};
        raw.send("GET /io/call?n=10&ms=5000 HTTP/1.1\r\nHost: x\r\n\r\n");
        EXPECT_TRUE(
            eventually([&] { return stats(server.port())["upstream"]["connections"]["open"] == 10; }));
        raw.close();
    }
    // The calls end as soon as the server notices, not after their 5 s; their connections are closed (a
    // call cut short leaves its connection in an unknown state), so the upstream sees its clients leave too.
    EXPECT_TRUE(eventually([&] {
        s = stats(server.port());
        return s["upstream"]["calls"]["cancelled"] == 10 &&
               s["requests"]["endpoints"]["/io/sleep"]["status"].value("499", 0) == 10;
    })) << s["upstream"].dump()
        << s["requests"]["endpoints"]["/io/sleep"].dump();
    EXPECT_EQ(s["upstream"]["connections"]["open"], 0) << s["upstream"].dump();
    EXPECT_EQ(s["upstream"]["connections"]["idle"], 0) << s["upstream"].dump();
    EXPECT_EQ(s["requests"]["endpoints"]["/io/call"]["status"].value("499", 0), 1);
    EXPECT_EQ(s["upstream"]["calls"]["ok"], 0);
}

// A client that leaves while some of its calls wait for a connection: the places handed to the waiting calls
// as the busy ones are cut short must come back to the pool, not leak (a waiter cancelled as it was given a
// place once kept it for good, and the pool then answered every later call with a wait and a 504).
TEST(RealIo, AClientThatLeavesWhileItsCallsWaitLeaksNoPlaceInThePool)
{
    auto cfg = duet::test::test_config();
    cfg.upstream.max_connections = 5;
    cfg.upstream.timeout_ms = 10000;
    running_server server{cfg};
    json s;
    {
        duet::test::raw_connection raw{server.port()};
        raw.send("GET /io/call?n=10&ms=5000 HTTP/1.1\r\nHost: x\r\n\r\n");
        EXPECT_TRUE(eventually([&] {
            s = stats(server.port());
            return s["upstream"]["connections"]["open"] == 5 && s["upstream"]["waiting"] == 5;
        })) << s["upstream"].dump();
        raw.close();
    }
    EXPECT_TRUE(eventually([&] {
        s = stats(server.port());
        return s["upstream"]["calls"]["cancelled"] == 10 && s["upstream"]["connections"]["open"] == 0 &&
               s["upstream"]["waiting"] == 0;
    })) << s["upstream"].dump();
    // Every place is back: five calls at once open five connections and end in about their 100 ms.
    auto r = http_get(server.port(), "/io/call?n=5&ms=100");
    ASSERT_EQ(r.status, 200U) << r.body;
    EXPECT_EQ(r.json()["result"]["connections_opened"], 5) << r.body;
    if (timed) {
        EXPECT_LT(ms_of(r.elapsed), 1000.0);
    }
}

// Idle connections the upstream closed one after another (its idle timeout) are each found closed before use:
// a request of one call after the quiet spell gets a new connection, never a 502 from a second stale one.
TEST(RealIo, AfterAQuietSpellEveryCallGetsAnOpenConnection)
{
    auto cfg = duet::test::test_config();
    cfg.server.idle_timeout_ms = 200; // the upstream (this server) closes connections idle for 200 ms
    running_server server{cfg};
    auto first = http_get(server.port(), "/io/call?n=10&ms=1");
    ASSERT_EQ(first.status, 200U) << first.body;
    EXPECT_EQ(stats(server.port())["upstream"]["connections"]["idle"], 10);
    std::this_thread::sleep_for(700ms);
    for (int i = 0; i < 6; ++i) {
        auto r = http_get(server.port(), "/io/call?n=1&ms=1");
        ASSERT_EQ(r.status, 200U) << "request " << i << ": " << r.body;
    }
    auto s = stats(server.port())["upstream"];
    EXPECT_EQ(s["calls"]["unreachable"], 0) << s.dump();
    EXPECT_LE(s["connections"]["open"], 10) << s.dump();
}

TEST(RealIo, AConnectionTheUpstreamClosedMeanwhileIsMadeAgainOnANewOne)
{
    auto cfg = duet::test::test_config();
    cfg.server.idle_timeout_ms = 200; // the upstream (this server) closes connections idle for 200 ms
    cfg.io.blocking_threads = 1;
    running_server server{cfg};
    for (std::string target : {"/io/call?n=5&ms=1", "/io/call?n=1&ms=1&mode=threads"}) {
        const int n = target.find("n=5") != std::string::npos ? 5 : 1;
        auto first = http_get(server.port(), target);
        ASSERT_EQ(first.status, 200U) << target << ": " << first.body;
        EXPECT_EQ(first.json()["result"]["connections_opened"], n) << first.body;
        std::this_thread::sleep_for(700ms);
        // Each kept connection fails at once, before any answer: the call is made again on a new connection.
        auto again = http_get(server.port(), target);
        ASSERT_EQ(again.status, 200U) << target << ": " << again.body;
        EXPECT_EQ(again.json()["result"]["connections_opened"], n) << again.body;
        EXPECT_EQ(again.json()["result"]["connections_reused"], 0) << again.body;
    }
    auto up = stats(server.port())["upstream"];
    EXPECT_EQ(up["calls"]["ok"], 12) << up.dump();
    EXPECT_EQ(up["calls"]["unreachable"], 0) << up.dump();
    EXPECT_EQ(up["connections"]["reused"], 0) << "a connection found closed was not reused: " << up.dump();
}

// ---- The blocking threads ---------------------------------------------------------------------------------

TEST(RealIo, FourBlockingThreadsTakeTenRoundsForFortySleepsTheLoopOne)
{
    auto cfg = duet::test::test_config();
    cfg.io.blocking_threads = 4;
    running_server server{cfg};

    // On the event loop: forty 100 ms waits overlap.
    auto start = steady_clock::now();
    auto loop = get_concurrently(server.port(), std::vector<std::string>(40, "/io/sleep?ms=100"));
    const double loop_ms = ms_of(steady_clock::now() - start);
    for (const auto& r : loop) {
        ASSERT_EQ(r.status, 200U) << r.error << r.body;
        EXPECT_EQ(r.json()["report"]["model"], "event-loop");
    }
    EXPECT_GE(loop_ms, 100.0);
    EXPECT_LT(loop_ms, timed ? 500.0 : 5000.0);

    // On four blocking threads: at most four at a time, so ten rounds of 100 ms. Watch the pool meanwhile.
    start = steady_clock::now();
    auto threads = std::async(std::launch::async, [&] {
        return get_concurrently(server.port(), std::vector<std::string>(40, "/io/sleep?ms=100&mode=threads"));
    });
    std::int64_t most_busy = 0;
    std::int64_t most_queued = 0;
    std::string metrics_mid_run;
    while (threads.wait_for(20ms) != std::future_status::ready) {
        auto b = stats(server.port())["blocking"];
        EXPECT_EQ(b["threads"], 4);
        most_busy = std::max(most_busy, b["busy"].get<std::int64_t>());
        most_queued = std::max(most_queued, b["queued"].get<std::int64_t>());
        if (metrics_mid_run.empty() && b["queued"].get<std::int64_t>() > 0) {
            metrics_mid_run = http_get(server.port(), "/metrics").body;
        }
    }
    auto replies = threads.get();
    const double threads_ms = ms_of(steady_clock::now() - start);
    double most_queue_us = 0;
    std::set<std::string> names;
    for (const auto& r : replies) {
        ASSERT_EQ(r.status, 200U) << r.error << r.body;
        auto report = r.json()["report"];
        EXPECT_EQ(report["model"], "blocking-thread");
        names.insert(report["threads"]["worker"]["name"].get<std::string>());
        most_queue_us = std::max(most_queue_us, report["timing_us"]["queue"].get<double>());
        EXPECT_GE(report["timing_us"]["service"].get<double>(), 100000.0) << report.dump();
        EXPECT_GE(report["context_switches"]["voluntary"].get<int>(), 1) << report.dump();
    }
    EXPECT_GE(threads_ms, 900.0);
    EXPECT_LT(threads_ms, timed ? 2500.0 : 10000.0);
    // The last sleeps waited nine rounds for a thread.
    EXPECT_GE(most_queue_us, 700000.0);
    EXPECT_EQ(names, (std::set<std::string>{"duet-b0", "duet-b1", "duet-b2", "duet-b3"}));
    EXPECT_EQ(most_busy, 4);
    EXPECT_GE(most_queued, 1);
    ASSERT_FALSE(metrics_mid_run.empty()) << "no /stats sample saw a queued sleep";
    EXPECT_EQ(metric(metrics_mid_run, "duet_blocking_threads"), 4.0);
    // A thread between two sleeps is not busy for a moment: 1 to 4, never more.
    EXPECT_GE(metric(metrics_mid_run, "duet_blocking_busy_threads"), 1.0);
    EXPECT_LE(metric(metrics_mid_run, "duet_blocking_busy_threads"), 4.0);
    EXPECT_GE(metric(metrics_mid_run, "duet_blocking_queue_depth"), 0.0);

    auto b = stats(server.port())["blocking"];
    EXPECT_EQ(b["busy"], 0) << b.dump();
    EXPECT_EQ(b["queued"], 0) << b.dump();
    EXPECT_EQ(b["completed"], 40) << b.dump();
    EXPECT_EQ(b["rejected"], 0) << b.dump();
    auto m = http_get(server.port(), "/metrics").body;
    EXPECT_EQ(metric(m, R"(duet_blocking_jobs_total{outcome="completed"})"), 40.0);
    EXPECT_EQ(metric(m, "duet_blocking_queue_wait_seconds_count"), 40.0);
    EXPECT_EQ(metric(m, "duet_blocking_busy_threads"), 0.0);
}

TEST(RealIo, FullBlockingQueueAnswers503WithRetryAfter)
{
    auto cfg = duet::test::test_config();
    cfg.io.blocking_threads = 1;
    cfg.io.blocking_queue_limit = 1;
    running_server server{cfg};
    // Four at once: one sleeps, at most one waits, the rest are refused at once.
    auto replies =
        get_concurrently(server.port(), std::vector<std::string>(4, "/io/sleep?ms=300&mode=threads"));
    int ok = 0;
    int refused = 0;
    for (const auto& r : replies) {
        if (r.status == 200U) {
            ++ok;
            continue;
        }
        ASSERT_EQ(r.status, 503U) << r.error << r.body;
        ++refused;
        EXPECT_EQ(r.header("retry-after"), "1");
        EXPECT_EQ(r.json()["error"]["code"], "blocking_pool_saturated") << r.body;
        EXPECT_EQ(r.json()["error"]["limit"], 1) << r.body;
        EXPECT_LT(ms_of(r.elapsed), 300.0) << "a refusal does not wait for the sleep";
    }
    // As with the CPU pool: on a loaded machine the thread may not have taken the first sleep off the queue
    // before the others arrive; then only that one succeeds.
    EXPECT_GE(ok, 1);
    EXPECT_LE(ok, 2);
    EXPECT_EQ(ok + refused, 4);
    auto b = stats(server.port())["blocking"];
    EXPECT_EQ(b["rejected"], refused) << b.dump();
    EXPECT_EQ(b["completed"], ok) << b.dump();
    EXPECT_EQ(b["queue_limit"], 1) << b.dump();
    // The event loop kept serving throughout.
    EXPECT_EQ(http_get(server.port(), "/io/sleep?ms=1").status, 200U);
}

// ---- /io/file ---------------------------------------------------------------------------------------------

// FNV-1a, 32 bits, written here from its definition rather than taken from the server.
std::uint32_t fnv1a32(const char* data, std::size_t size)
{
    std::uint32_t h = 0x811c9dc5U;
    for (std::size_t i = 0; i < size; ++i) {
        h ^= static_cast<unsigned char>(data[i]);
        h *= 0x01000193U;
    }
    return h;
}

// A file of random bytes under the temporary folder, removed at the end of the test.
class random_file
{
public:
    explicit random_file(std::size_t bytes)
        : path_{std::filesystem::temp_directory_path() /
                ("duet-real-io-" + std::to_string(::getpid()) + "-" + std::to_string(bytes) + ".bin")},
          bytes_(bytes)
    {
        std::mt19937_64 rng{std::random_device{}()};
        for (std::size_t i = 0; i < bytes; i += 8) {
            auto word = rng();
            for (std::size_t k = 0; k < 8 && i + k < bytes; ++k) {
                bytes_[i + k] = static_cast<char>(word >> (8 * k));
            }
        }
        std::ofstream{path_, std::ios::binary}.write(bytes_.data(), static_cast<std::streamsize>(bytes));
    }
    ~random_file() { std::filesystem::remove(path_); }
    random_file(const random_file&) = delete;
    random_file& operator=(const random_file&) = delete;

    std::string path() const { return path_.string(); }
    const std::vector<char>& bytes() const { return bytes_; }

private:
    std::filesystem::path path_;
    std::vector<char> bytes_;
};

// One /io/file read, checked against the file's own bytes: the size asked for, an offset where it fits, and
// the checksum of exactly those bytes. Returns the report's model.
std::string check_read(std::uint16_t port, const random_file& file, std::int64_t kb, const std::string& mode)
{
    const auto target = "/io/file?kb=" + std::to_string(kb) + (mode.empty() ? "" : "&mode=" + mode);
    auto r = http_get(port, target);
    EXPECT_EQ(r.status, 200U) << target << ": " << r.error << r.body;
    if (r.status != 200U) {
        return {};
    }
    auto j = r.json();
    const auto bytes = static_cast<std::size_t>(kb) * 1024;
    EXPECT_EQ(j["result"]["bytes"], bytes) << target;
    const auto offset = j["result"]["offset"].get<std::size_t>();
    EXPECT_LE(offset + bytes, file.bytes().size()) << target << ": " << r.body;
    if (offset + bytes <= file.bytes().size()) {
        EXPECT_EQ(j["result"]["checksum"].get<std::uint32_t>(), fnv1a32(file.bytes().data() + offset, bytes))
            << target << " at offset " << offset;
    }
    return j["report"]["model"].get<std::string>();
}

TEST(RealIo, FileReadsReturnTheFilesOwnBytesAtTheReportedOffset)
{
    random_file file{3 * 1024 * 1024};
    auto cfg = duet::test::test_config();
    cfg.io.file_path = file.path();
    cfg.limits.max_file_kb = 8192; // above the file's size: the file bounds kb
    running_server server{cfg};
    auto f = stats(server.port())["file"];
    EXPECT_EQ(f["bytes"], file.bytes().size()) << f.dump();
    const auto model = f["model"].get<std::string>();
    EXPECT_TRUE(model == "io_uring" || model == "blocking-thread") << model;

    for (int i = 0; i < 8; ++i) {
        EXPECT_EQ(check_read(server.port(), file, 256, ""), model) << "the loop reads as /stats says";
        EXPECT_EQ(check_read(server.port(), file, 256, "loop"), model);
        EXPECT_EQ(check_read(server.port(), file, 256, "threads"), "blocking-thread");
        EXPECT_EQ(check_read(server.port(), file, 1, "loop"), model);
    }
    // Reads larger than one chunk (64 KiB) of the server's loop, and the whole file (offset 0, the only fit).
    EXPECT_EQ(check_read(server.port(), file, 1000, "loop"), model);
    EXPECT_EQ(check_read(server.port(), file, 1000, "threads"), "blocking-thread");
    for (const char* mode : {"loop", "threads"}) {
        auto whole = http_get(server.port(), std::string{"/io/file?kb=3072&mode="} + mode);
        ASSERT_EQ(whole.status, 200U) << whole.body;
        EXPECT_EQ(whole.json()["result"]["offset"], 0);
        EXPECT_EQ(whole.json()["result"]["checksum"].get<std::uint32_t>(),
                  fnv1a32(file.bytes().data(), file.bytes().size()));
    }
    // More than the file holds is refused, naming kb and its bound (the file's size in KiB).
    auto too_much = http_get(server.port(), "/io/file?kb=3073");
    ASSERT_EQ(too_much.status, 400U) << too_much.body;
    EXPECT_EQ(too_much.json()["error"]["code"], "out_of_range");
    EXPECT_EQ(too_much.json()["error"]["param"], "kb");
    EXPECT_EQ(too_much.json()["error"]["limit"], 3072);
    EXPECT_NE(too_much.json()["error"]["message"].get<std::string>().find("io.file_path"), std::string::npos)
        << "the message names what bounds kb here: " << too_much.body;
    auto b = stats(server.port())["blocking"];
    EXPECT_EQ(b["completed"].get<int>(), 8 + 1 + 1 + (model == "blocking-thread" ? 3 * 8 + 1 + 1 : 0))
        << b.dump();
}

TEST(RealIo, FileModelThreadsReadsOnTheBlockingThreadsWithoutMode)
{
    random_file file{1024 * 1024};
    auto cfg = duet::test::test_config();
    cfg.io.file_path = file.path();
    cfg.io.file_model = "threads";
    running_server server{cfg};
    EXPECT_EQ(stats(server.port())["file"]["model"], "blocking-thread");
    for (int i = 0; i < 4; ++i) {
        EXPECT_EQ(check_read(server.port(), file, 64, ""), "blocking-thread");
        EXPECT_EQ(check_read(server.port(), file, 64, "loop"), "blocking-thread");
    }
    EXPECT_EQ(stats(server.port())["blocking"]["completed"], 8);
}

TEST(RealIo, TheFileWrittenAtStartBoundsKbByItsSize)
{
    auto cfg = duet::test::test_config();
    cfg.io.file_size_mb = 1;
    cfg.limits.max_file_kb = 4096;
    running_server server{cfg};
    auto f = stats(server.port())["file"];
    EXPECT_EQ(f["bytes"], 1024 * 1024) << f.dump();
    auto whole = http_get(server.port(), "/io/file?kb=1024");
    ASSERT_EQ(whole.status, 200U) << whole.body;
    EXPECT_EQ(whole.json()["result"]["offset"], 0);
    EXPECT_EQ(whole.json()["result"]["bytes"], 1024 * 1024);
    // The same bytes by either reader.
    auto threads = http_get(server.port(), "/io/file?kb=1024&mode=threads");
    ASSERT_EQ(threads.status, 200U) << threads.body;
    EXPECT_EQ(threads.json()["result"]["checksum"], whole.json()["result"]["checksum"]);
    auto too_much = http_get(server.port(), "/io/file?kb=1025");
    ASSERT_EQ(too_much.status, 400U) << too_much.body;
    EXPECT_EQ(too_much.json()["error"]["param"], "kb");
    EXPECT_EQ(too_much.json()["error"]["limit"], 1024);
    EXPECT_NE(too_much.json()["error"]["message"].get<std::string>().find("io.file_size_mb"),
              std::string::npos)
        << too_much.body;
}

TEST(RealIo, KbBeyondTheLimitNamesTheLimit)
{
    auto cfg = duet::test::test_config();
    cfg.io.file_size_mb = 1;
    cfg.limits.max_file_kb = 512; // below the file's size: the limit bounds kb
    running_server server{cfg};
    auto too_much = http_get(server.port(), "/io/file?kb=513");
    ASSERT_EQ(too_much.status, 400U) << too_much.body;
    EXPECT_EQ(too_much.json()["error"]["limit"], 512);
    EXPECT_NE(too_much.json()["error"]["message"].get<std::string>().find("limits.max_file_kb"),
              std::string::npos)
        << too_much.body;
}

} // namespace
