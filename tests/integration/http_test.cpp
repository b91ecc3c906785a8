// HTTP behaviour over real loopback sockets: keep-alive, errors, limits and deadlines.
#include "http_client.hpp"
#include "running_server.hpp"

#include <duet/server/listener.hpp>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <gtest/gtest.h>

#include <optional>
#include <thread>

namespace {

using namespace std::chrono_literals;
using duet::test::client_connection;
using duet::test::http_get;
using duet::test::raw_connection;
using duet::test::raw_exchange;
using duet::test::running_server;
namespace http = boost::beast::http;

// The accept loop sets no socket option per connection: TCP_NODELAY comes from the listener. An accepted
// socket starts with Nagle's algorithm on unless its listener had it off.
TEST(Listener, AcceptedConnectionsInheritNoDelayFromTheListener)
{
    namespace net = boost::asio;
    using net::ip::tcp;
    net::io_context ioc;
    const tcp::endpoint any_port{net::ip::make_address("127.0.0.1"), 0};
    auto no_delay_of_accepted = [&](duet::server::tcp_acceptor& acceptor) {
        tcp::socket client{ioc};
        client.connect(acceptor.local_endpoint());
        auto accepted = acceptor.accept();
        tcp::no_delay option;
        accepted.get_option(option);
        return option.value();
    };

    duet::server::tcp_acceptor plain{ioc.get_executor(), any_port};
    EXPECT_FALSE(no_delay_of_accepted(plain));

    duet::server::tcp_acceptor listener{ioc.get_executor()};
    duet::server::listen_on(listener, any_port, 16);
    EXPECT_TRUE(no_delay_of_accepted(listener));
}

class Http : public ::testing::Test
{
protected:
    running_server server_;
};

TEST_F(Http, KeepAliveServesManyRequestsOnOneConnection)
{
    client_connection conn{server_.port()};
    for (int i = 0; i < 20; ++i) {
        auto r = conn.get(i % 2 == 0 ? "/healthz" : "/io/sleep?ms=1");
        ASSERT_EQ(r.status, 200U) << r.error;
        EXPECT_TRUE(r.keep_alive);
    }
}

TEST_F(Http, ConnectionStaysUsableAfterEach4xx)
{
    client_connection conn{server_.port()};
    struct case_t
    {
        const char* target;
        unsigned status;
        const char* code;
        const char* param;
    };
    for (auto c :
         {case_t{"/nope", 404, "not_found", nullptr}, case_t{"/io/sleep", 400, "missing_param", "ms"},
          case_t{"/io/sleep?ms=abc", 400, "invalid_param", "ms"},
          case_t{"/io/sleep?ms=-1", 400, "out_of_range", "ms"},
          case_t{"/io/sleep?ms=60001", 400, "out_of_range", "ms"},
          case_t{"/io/fanout?n=0&ms=1", 400, "out_of_range", "n"},
          case_t{"/cpu/primes?n=10000001", 400, "out_of_range", "n"},
          case_t{"/cpu/fib?n=46", 400, "out_of_range", "n"},
          case_t{"/cpu/fib?n=10&mode=turbo", 400, "invalid_param", "mode"},
          case_t{"/io/sleep?ms=1&extra=2", 400, "unknown_param", "extra"}}) {
        auto r = conn.get(c.target);
        ASSERT_EQ(r.status, c.status) << c.target << " " << r.error;
        EXPECT_EQ(r.header("content-type"), "application/json");
        EXPECT_FALSE(r.header("x-request-id").empty());
        auto e = r.json()["error"];
        EXPECT_EQ(e["status"], c.status) << c.target;
        EXPECT_EQ(e["code"], c.code) << c.target;
        if (c.param != nullptr) {
            EXPECT_EQ(e["param"], c.param) << c.target;
        }
        if (std::string{c.code} == "out_of_range") {
            EXPECT_TRUE(e["limit"].is_number()) << c.target;
        }
        EXPECT_TRUE(r.keep_alive) << c.target;
        ASSERT_EQ(conn.get("/healthz").status, 200U) << "after " << c.target;
    }
    auto post = conn.request(http::verb::post, "/io/sleep?ms=1");
    EXPECT_EQ(post.status, 405U);
    EXPECT_EQ(post.header("allow"), "GET, HEAD");
    EXPECT_EQ(conn.get("/healthz").status, 200U);
}

TEST_F(Http, OversizedHeaderIs431AndTheServerKeepsServing)
{
    std::string req = "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + std::string(10000, 'a') + "\r\n\r\n";
    auto reply = raw_exchange(server_.port(), req);
    EXPECT_EQ(reply.bytes.rfind("HTTP/1.1 431", 0), 0U) << reply.bytes.substr(0, 80);
    EXPECT_NE(reply.bytes.find("\"header_too_large\""), std::string::npos);
    EXPECT_NE(reply.bytes.find("\"limit\":8192"), std::string::npos);
    EXPECT_TRUE(reply.closed);
    EXPECT_EQ(http_get(server_.port(), "/healthz").status, 200U);
}

TEST_F(Http, OversizedBodyIs413)
{
    // 4 MB: more than the socket buffers hold, so the client is still sending when the server refuses.
    std::string req =
        "GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 4000000\r\n\r\n" + std::string(4000000, 'b');
    auto reply = raw_exchange(server_.port(), req);
    EXPECT_EQ(reply.bytes.rfind("HTTP/1.1 413", 0), 0U) << reply.bytes.substr(0, 80);
    EXPECT_NE(reply.bytes.find("\"body_too_large\""), std::string::npos);
    EXPECT_TRUE(reply.closed);
    EXPECT_EQ(http_get(server_.port(), "/healthz").status, 200U);
}

TEST_F(Http, SmallBodyOnGetIsReadAndIgnored)
{
    std::string req =
        "GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhelloGET /readyz HTTP/1.1\r\n"
        "Host: x\r\nConnection: close\r\n\r\n";
    auto reply = raw_exchange(server_.port(), req);
    EXPECT_NE(reply.bytes.find("{\"status\":\"ok\"}"), std::string::npos);
    EXPECT_NE(reply.bytes.find("{\"status\":\"ready\"}"), std::string::npos); // pipelined, after the body
}

TEST_F(Http, MalformedRequestsAre400ThenClose)
{
    for (const char* bad :
         {"GARBAGE\r\n\r\n", "GET /healthz HTTP/9\r\n\r\n", "GET /healthz HTTP/1.1\r\nNoColon\r\n\r\n",
          "GET /healthz HTTP/1.1\r\nContent-Length: x\r\n\r\n"}) {
        auto reply = raw_exchange(server_.port(), bad);
        EXPECT_EQ(reply.bytes.rfind("HTTP/1.1 400", 0), 0U) << bad << " -> " << reply.bytes.substr(0, 60);
        EXPECT_NE(reply.bytes.find("\"bad_request\""), std::string::npos) << bad;
        EXPECT_TRUE(reply.closed) << bad;
    }
    EXPECT_EQ(http_get(server_.port(), "/healthz").status, 200U);
}

TEST_F(Http, Http10AndConnectionCloseEndTheConnection)
{
    auto old = raw_exchange(server_.port(), "GET /healthz HTTP/1.0\r\n\r\n");
    EXPECT_EQ(old.bytes.rfind("HTTP/1.0 200", 0), 0U) << old.bytes;
    EXPECT_TRUE(old.closed);
    auto close =
        raw_exchange(server_.port(), "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    EXPECT_EQ(close.bytes.rfind("HTTP/1.1 200", 0), 0U);
    EXPECT_NE(close.bytes.find("Connection: close"), std::string::npos);
    EXPECT_TRUE(close.closed);
}

TEST_F(Http, HeadAnswersHeadersOnly)
{
    client_connection conn{server_.port()};
    auto head = conn.request(http::verb::head, "/io/sleep?ms=1");
    ASSERT_EQ(head.status, 200U) << head.error;
    EXPECT_TRUE(head.body.empty());
    EXPECT_GT(std::stoi(head.header("content-length")), 100);
    EXPECT_EQ(conn.get("/healthz").status, 200U); // the connection was not desynchronised
}

TEST_F(Http, ReportResponsesCarryServerTimingAndRequestId)
{
    auto r = http_get(server_.port(), "/io/sleep?ms=5");
    ASSERT_EQ(r.status, 200U);
    EXPECT_NE(r.header("server-timing").find("service;dur="), std::string::npos);
    EXPECT_EQ(r.header("x-request-id"), r.json()["report"]["id"]);
    EXPECT_EQ(r.header("content-type"), "application/json");
}

// After a request that waits, the next request's first bytes are read by the read that watched the client
// during the wait: a request longer than that read, or sent in pieces, must be read whole all the same.
TEST_F(Http, TheRequestAfterAWaitIsReadWholeWhateverItsSizeAndPace)
{
    client_connection conn{server_.port()};
    ASSERT_EQ(conn.get("/io/sleep?ms=1").status, 200U);
    auto big = conn.request(http::verb::get, "/healthz", {{"X-Pad", std::string(3000, 'p')}});
    EXPECT_EQ(big.status, 200U) << big.error;
    ASSERT_EQ(conn.get("/io/sleep?ms=1").status, 200U);
    auto next = conn.get("/io/sleep?ms=2");
    ASSERT_EQ(next.status, 200U) << next.error;
    EXPECT_EQ(next.json()["result"]["slept_ms"], 2);

    // In pieces, on a raw socket: the first read gets only the beginning of the request line.
    raw_connection raw{server_.port()};
    raw.send("GET /io/sleep?ms=1 HTTP/1.1\r\nHost: x\r\n\r\n");
    ASSERT_NE(raw.read_until("\"slept_ms\":1").find("\"slept_ms\":1"), std::string::npos);
    raw.send("GET /hea");
    std::this_thread::sleep_for(50ms);
    raw.send("lthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    auto rest = raw.read_until("{\"status\":\"ok\"}");
    EXPECT_EQ(rest.rfind("HTTP/1.1 200", 0), 0U) << rest;
    EXPECT_NE(rest.find("{\"status\":\"ok\"}"), std::string::npos) << rest;

    // A request behind a waiting one, half of it sent with it and the rest after the wait: the half waits in
    // the read buffer, the rest arrives in the watch's read, and they join in that order.
    raw_connection behind{server_.port()};
    behind.send("GET /io/sleep?ms=50 HTTP/1.1\r\nHost: x\r\n\r\nGET /io/sleep?ms=2 HTT");
    std::this_thread::sleep_for(150ms);
    behind.send("P/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    auto both = behind.read_until("\"slept_ms\":2");
    auto first = both.find("\"slept_ms\":50");
    auto second = both.find("\"slept_ms\":2");
    ASSERT_NE(first, std::string::npos) << both;
    ASSERT_NE(second, std::string::npos) << both;
    EXPECT_LT(first, second);
}

TEST(HttpDeadlines, IdleKeepAliveConnectionIsClosed)
{
    // After a wait the connection waits for its next request in the read that watched the client: the idle
    // deadline must end that read as it ends any other.
    auto cfg = duet::test::test_config();
    cfg.server.idle_timeout_ms = 200;
    running_server server{cfg};
    for (const char* target : {"/healthz", "/io/sleep?ms=1"}) {
        client_connection conn{server.port()};
        ASSERT_EQ(conn.get(target).status, 200U) << target;
        EXPECT_TRUE(conn.closed_by_server(3s)) << target;
    }
}

TEST(HttpDeadlines, IdleConnectionAfterAWaitIsDrainedAtOnce)
{
    // After a wait the connection waits for its next request in the read that watched the client: the drain
    // must end that read as it ends any other.
    running_server drained{}; // the default idle deadline, 60 s
    client_connection idle{drained.port()};
    ASSERT_EQ(idle.get("/io/sleep?ms=1").status, 200U);
    auto start = std::chrono::steady_clock::now();
    drained.stop();
    EXPECT_LT(std::chrono::steady_clock::now() - start, 2s) << "the drain closes idle connections at once";
    EXPECT_TRUE(idle.closed_by_server(1s));
}

TEST(HttpDeadlines, TheDrainTimeoutCutsARequestWhoseRestNeverCame)
{
    // Half a request behind a waiting one: after the wait, the session waits for the rest in the read that
    // watched the client, with the header deadline (10 s) and not idle, so the drain waits for it until its
    // own timeout, then destroys the io_context with that read pending (and the session waiting on it).
    std::optional<raw_connection> raw;
    {
        auto cfg = duet::test::test_config();
        cfg.server.drain_timeout_ms = 300;
        running_server server{cfg};
        raw.emplace(server.port());
        raw->send("GET /io/sleep?ms=1 HTTP/1.1\r\nHost: x\r\n\r\nGET /hea");
        ASSERT_NE(raw->read_until("\"slept_ms\":1").find("\"slept_ms\":1"), std::string::npos);
        auto start = std::chrono::steady_clock::now();
        server.stop();
        EXPECT_LT(std::chrono::steady_clock::now() - start, 3s) << "the drain timeout, 300 ms, cuts it";
    }
    EXPECT_TRUE(raw->closed_by_server(2s));
}

TEST(HttpDeadlines, IncompleteRequestIsCutAtTheHeaderDeadline)
{
    auto cfg = duet::test::test_config();
    cfg.server.header_timeout_ms = 300;
    running_server server{cfg};
    auto start = std::chrono::steady_clock::now();
    auto reply = raw_exchange(server.port(), "GET /healthz HTTP/1.1\r\nHost: x\r\n", 5s); // no final CRLF
    EXPECT_TRUE(reply.closed);
    EXPECT_LT(std::chrono::steady_clock::now() - start, 3s);
    EXPECT_EQ(http_get(server.port(), "/healthz").status, 200U);
}

TEST(HttpLimits, ConfiguredLimitsAreEnforcedAndReported)
{
    auto cfg = duet::test::test_config();
    cfg.limits.max_sleep_ms = 50;
    running_server server{cfg};
    auto r = http_get(server.port(), "/io/sleep?ms=51");
    ASSERT_EQ(r.status, 400U);
    EXPECT_EQ(r.json()["error"]["limit"], 50);
    EXPECT_EQ(http_get(server.port(), "/io/sleep?ms=50").status, 200U);
    auto index = http_get(server.port(), "/").json();
    for (const auto& e : index["endpoints"]) {
        if (e["path"] == "/io/sleep") {
            EXPECT_EQ(e["params"][0]["max"], 50);
        }
    }
}

} // namespace
