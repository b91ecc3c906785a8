// Hostile input, slow clients, overload and faults: the server stays up, keeps serving well-behaved clients,
// loses no accepted request and says clearly what it refused.
#include "http_client.hpp"
#include "running_server.hpp"
#include "server_process.hpp"
#include "test_env.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <gtest/gtest.h>

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <future>
#include <iomanip>
#include <iterator>
#include <optional>
#include <regex>
#include <sstream>
#include <thread>

namespace {

using namespace std::chrono_literals;
using namespace std::string_literals;
using duet::test::http_get;
using duet::test::raw_exchange;
using duet::test::running_server;
namespace net = boost::asio;
using net::ip::tcp;

const std::string server_binary = DUET_SERVER_BINARY;
const std::string load_binary = DUET_LOAD_BINARY;

std::string status_line(const std::string& bytes)
{
    return bytes.substr(0, bytes.find("\r\n"));
}

struct malformed
{
    const char* name;
    std::string bytes;
    const char* status; // the expected status line's code
    const char* code;   // the JSON error code
};

TEST(Hardening, MalformedRequestsGetTheRight4xxAndTheServerKeepsServing)
{
    auto cfg = duet::test::test_config();
    cfg.server.linger_timeout_ms = 100;
    running_server server{cfg};
    const std::vector<malformed> cases = {
        {"bad request line", "GARBAGE\r\n\r\n", "400", "bad_request"},
        {"HTTP/0.9", "GET /\r\n\r\n", "400", "bad_request"},
        {"HTTP/2 preface", "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", "505", "version_not_supported"},
        {"bad version", "GET /healthz HTTP/1.x\r\nHost: x\r\n\r\n", "400", "bad_request"},
        {"header without colon", "GET /healthz HTTP/1.1\r\nHost: x\r\nNoColon\r\n\r\n", "400", "bad_request"},
        {"oversized header", "GET /healthz HTTP/1.1\r\nHost: x\r\nX: " + std::string(9000, 'a') + "\r\n\r\n",
         "431", "header_too_large"},
        {"oversized target", "GET /healthz?" + std::string(5000, 'a') + " HTTP/1.1\r\nHost: x\r\n\r\n", "414",
         "target_too_long"},
        {"too many headers",
         [] {
             std::string r = "GET /healthz HTTP/1.1\r\nHost: x\r\n";
             for (int i = 0; i < 70; ++i) {
                 r += "X-" + std::to_string(i) + ": v\r\n";
             }
             return r + "\r\n";
         }(),
         "431", "too_many_headers"},
        {"invalid Content-Length", "GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n", "400",
         "bad_request"},
        {"conflicting Content-Length",
         "GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!", "400",
         "bad_request"},
        {"Content-Length with chunked",
         "GET /healthz HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n", "400",
         "bad_framing"},
        {"bad chunk", "GET /healthz HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", "400",
         "bad_request"},
        {"NUL in a header", "GET /healthz HTTP/1.1\r\nHost: x\r\nX: a\0b\r\n\r\n"s, "400", "bad_request"},
        {"control byte in the target", "GET /heal\x01thz HTTP/1.1\r\nHost: x\r\n\r\n", "400", "bad_request"},
        {"invalid percent-encoding", "GET /io/sleep?ms=%zz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
         "400", "bad_query"},
        {"duplicated parameter", "GET /io/sleep?ms=1&ms=2 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
         "400", "duplicate_param"},
        {"missing parameter", "GET /io/sleep HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", "400",
         "missing_param"},
        {"overflowing number",
         "GET /io/sleep?ms=99999999999999999999 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", "400",
         "out_of_range"},
        {"minus zero", "GET /cpu/fib?n=-0 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", "400",
         "out_of_range"},
        {"exponent", "GET /cpu/fib?n=1e3 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", "400",
         "invalid_param"},
        {"hex", "GET /cpu/fib?n=0x10 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", "400",
         "invalid_param"},
        {"unknown method", "BREW /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", "405",
         "method_not_allowed"},
    };
    // Requests the server can answer and keep the connection for say Connection: close, so that each exchange
    // ends when the server closes rather than at the timeout.
    for (const auto& c : cases) {
        auto reply = raw_exchange(server.port(), c.bytes, 5s);
        EXPECT_TRUE(reply.closed) << c.name;
        EXPECT_EQ(status_line(reply.bytes).substr(9, 3), c.status)
            << c.name << ": " << status_line(reply.bytes);
        EXPECT_NE(reply.bytes.find(std::string{"\"code\":\""} + c.code + "\""), std::string::npos)
            << c.name << ": " << reply.bytes.substr(0, 300);
        ASSERT_EQ(http_get(server.port(), "/healthz").status, 200U) << "after " << c.name;
    }
    // An absolute-form target is legal (RFC 9112 3.2.2) and routes like the origin form.
    auto absolute = raw_exchange(
        server.port(), "GET http://127.0.0.1/healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    EXPECT_EQ(status_line(absolute.bytes), "HTTP/1.1 200 OK");
}

// The real-I/O endpoints' parameters are checked before anything is done: no call, no read, no blocking
// thread.
TEST(Hardening, RealIoParametersOutOfBoundsAre400NamingTheParamAndLimit)
{
    auto cfg = duet::test::test_config();
    cfg.io.file_size_mb = 2; // bounds kb below limits.max_file_kb
    cfg.limits.max_file_kb = 4096;
    running_server server{cfg};
    struct bad_param
    {
        std::string target;
        const char* code;
        const char* param;
        std::optional<std::int64_t> limit; // out_of_range: the bound broken
        const char* says;                  // in the message
    };
    const std::vector<bad_param> cases = {
        {"/io/call?n=0&ms=1", "out_of_range", "n", 1, "[1, 100]"},
        {"/io/call?n=101&ms=1", "out_of_range", "n", 100, "limits.max_calls"},
        {"/io/call?n=99999999999999999999", "out_of_range", "n", 100, "limits.max_calls"},
        {"/io/call?n=-1", "out_of_range", "n", 1, "negative"},
        {"/io/call?n=1e2", "invalid_param", "n", std::nullopt, "decimal"},
        {"/io/call?n=1&ms=60001", "out_of_range", "ms", 60000, "limits.max_sleep_ms"},
        {"/io/call?n=1&ms=-5", "out_of_range", "ms", 0, "negative"},
        {"/io/call?n=1&mode=thread", "invalid_param", "mode", std::nullopt, "loop, threads"},
        {"/io/call?n=1&mode=", "invalid_param", "mode", std::nullopt, "loop, threads"},
        {"/io/call?n=1&url=http://evil/", "unknown_param", "url", std::nullopt, "url"},
        {"/io/call?n=1&n=2", "duplicate_param", "n", std::nullopt, "n"},
        {"/io/sleep?ms=1&mode=THREADS", "invalid_param", "mode", std::nullopt, "loop, threads"},
        {"/io/sleep?ms=60001&mode=threads", "out_of_range", "ms", 60000, "limits.max_sleep_ms"},
        {"/io/file?kb=0", "out_of_range", "kb", 1, "[1, 2048]"},
        {"/io/file?kb=2049", "out_of_range", "kb", 2048, "[1, 2048]"},
        {"/io/file?kb=4096&mode=threads", "out_of_range", "kb", 2048, "[1, 2048]"},
        {"/io/file?kb=99999999999999999999", "out_of_range", "kb", 2048, "kb"},
        {"/io/file?kb=12k", "invalid_param", "kb", std::nullopt, "decimal"},
        {"/io/file?kb=1&mode=uring", "invalid_param", "mode", std::nullopt, "loop, threads"},
        {"/io/file?kb=1&offset=0", "unknown_param", "offset", std::nullopt, "offset"},
    };
    duet::test::client_connection conn{server.port()};
    for (const auto& c : cases) {
        auto r = conn.get(c.target);
        ASSERT_EQ(r.status, 400U) << c.target << ": " << r.error << r.body;
        EXPECT_EQ(r.header("content-type"), "application/json") << c.target;
        auto e = r.json()["error"];
        EXPECT_EQ(e["code"], c.code) << c.target << ": " << r.body;
        EXPECT_EQ(e["param"], c.param) << c.target << ": " << r.body;
        if (c.limit) {
            EXPECT_EQ(e["limit"], *c.limit) << c.target << ": " << r.body;
        } else {
            EXPECT_FALSE(e.contains("limit")) << c.target << ": " << r.body;
        }
        EXPECT_NE(e["message"].get<std::string>().find(c.says), std::string::npos)
            << c.target << ": " << r.body;
        EXPECT_TRUE(r.keep_alive) << c.target;
    }
    // Refused before anything began: no upstream call, no connection, no blocking job.
    auto stats = http_get(server.port(), "/stats").json();
    for (const auto& [outcome, count] : stats["upstream"]["calls"].items()) {
        EXPECT_EQ(count, 0) << outcome;
    }
    EXPECT_EQ(stats["upstream"]["connections"]["opened"], 0);
    EXPECT_EQ(stats["blocking"]["completed"], 0);
    EXPECT_EQ(stats["blocking"]["rejected"], 0);
    EXPECT_EQ(stats["requests"]["endpoints"]["/io/call"]["status"]["400"], 11);
    EXPECT_EQ(stats["requests"]["endpoints"]["/io/file"]["status"]["400"], 7);
    // The bounds themselves are accepted.
    EXPECT_EQ(http_get(server.port(), "/io/file?kb=2048").status, 200U);
    EXPECT_EQ(http_get(server.port(), "/io/call?n=100&ms=0").status, 200U);
}

// How many responses a reply holds: each begins with a status line.
std::size_t responses_in(const std::string& bytes)
{
    static const std::regex status_line_re{"HTTP/1\\.[01] [1-5][0-9][0-9] "};
    return static_cast<std::size_t>(std::distance(
        std::sregex_iterator(bytes.begin(), bytes.end(), status_line_re), std::sregex_iterator()));
}

// A request that two readers could frame differently is refused and its connection closed: the bytes behind
// it, which a proxy in front may have framed as its body, are never read as a request (RFC 9112 6.1, 6.3).
TEST(Hardening, RequestsThatCouldBeSmuggledAreRefusedAndNothingBehindThemIsServed)
{
    auto cfg = duet::test::test_config();
    cfg.server.linger_timeout_ms = 100;
    running_server server{cfg};
    // Each would be answered if it were read as a request: /readyz's body says "ready".
    const std::string behind = "GET /readyz HTTP/1.1\r\nHost: x\r\n\r\n";
    const std::vector<malformed> cases = {
        {"a coding the server does not know",
         "POST /healthz HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: xchunked\r\n\r\n", "400", "bad_framing"},
        {"chunked, then not last",
         "POST /healthz HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, identity\r\n\r\n", "400",
         "bad_framing"},
        {"chunked twice", "POST /healthz HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, chunked\r\n\r\n",
         "400", "bad_framing"},
        {"an empty coding list", "POST /healthz HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: ,\r\n\r\n", "400",
         "bad_framing"},
        {"a length after an unknown coding",
         "POST /healthz HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: xchunked\r\nContent-Length: " +
             std::to_string(behind.size()) + "\r\n\r\n",
         "400", "bad_framing"},
        {"chunked on HTTP/1.0", "POST /healthz HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
         "400", "bad_framing"},
        {"chunked on HTTP/1.0 with a length",
         "POST /healthz HTTP/1.0\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", "400",
         "bad_framing"},
        {"chunked with a parameter",
         "POST /healthz HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked;x=1\r\n\r\n0\r\n\r\n", "400",
         "bad_framing"},
        {"a folded coding",
         "POST /healthz HTTP/1.1\r\nHost: x\r\nTransfer-Encoding:\r\n chunked\r\n\r\n0\r\n\r\n", "400",
         "obsolete_fold"},
        {"a length before chunked",
         "POST /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: "
         "chunked\r\n\r\n0\r\n\r\n",
         "400", "bad_framing"},
        {"a coding under chunked",
         "POST /healthz HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n", "501",
         "unsupported_transfer_coding"},
        {"a coding under chunked, in two fields",
         "POST /healthz HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\nTransfer-Encoding: "
         "chunked\r\n\r\n0\r\n\r\n",
         "501", "unsupported_transfer_coding"},
    };
    for (const auto& c : cases) {
        const auto reply = raw_exchange(server.port(), c.bytes + behind, 5s);
        EXPECT_TRUE(reply.closed) << c.name;
        EXPECT_EQ(status_line(reply.bytes).substr(9, 3), c.status)
            << c.name << ": " << status_line(reply.bytes);
        EXPECT_NE(reply.bytes.find(std::string{"\"code\":\""} + c.code + "\""), std::string::npos)
            << c.name << ": " << reply.bytes.substr(0, 300);
        EXPECT_EQ(responses_in(reply.bytes), 1U) << c.name << ": " << reply.bytes;
        EXPECT_EQ(reply.bytes.find("ready"), std::string::npos)
            << c.name << ": the request behind was served";
    }
    // The one framing that is read: chunked alone, and the request behind it is the next one.
    const auto chunked = raw_exchange(
        server.port(),
        "POST /healthz HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: Chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n" +
            "GET /readyz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"s);
    EXPECT_EQ(responses_in(chunked.bytes), 2U) << chunked.bytes;
    EXPECT_NE(chunked.bytes.find("405 Method Not Allowed"), std::string::npos) << chunked.bytes; // POST
    EXPECT_NE(chunked.bytes.find("{\"status\":\"ready\"}"), std::string::npos) << chunked.bytes;
}

// RFC 9112 3.2: exactly one valid Host on HTTP/1.1; none is fine on 1.0, but two or a bad one are not.
TEST(Hardening, HostIsRequiredOnceAndValid)
{
    auto cfg = duet::test::test_config();
    cfg.server.linger_timeout_ms = 100;
    running_server server{cfg};
    const std::string behind = "GET /readyz HTTP/1.1\r\nHost: x\r\n\r\n";
    const std::vector<malformed> refused = {
        {"no Host", "GET /healthz HTTP/1.1\r\n\r\n", "400", "missing_host"},
        {"two Hosts", "GET /healthz HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n", "400", "duplicate_host"},
        {"two Hosts on 1.0", "GET /healthz HTTP/1.0\r\nHost: a\r\nHost: b\r\n\r\n", "400", "duplicate_host"},
        {"a space in Host", "GET /healthz HTTP/1.1\r\nHost: a b\r\n\r\n", "400", "bad_host"},
        {"a path in Host", "GET /healthz HTTP/1.1\r\nHost: a/b\r\n\r\n", "400", "bad_host"},
        {"a bad port", "GET /healthz HTTP/1.1\r\nHost: a:8o\r\n\r\n", "400", "bad_host"},
        {"user info", "GET /healthz HTTP/1.1\r\nHost: u@a\r\n\r\n", "400", "bad_host"},
        {"an open bracket", "GET /healthz HTTP/1.1\r\nHost: [::1\r\n\r\n", "400", "bad_host"},
        {"two Hosts joined", "GET /healthz HTTP/1.1\r\nHost: a, b\r\n\r\n", "400", "bad_host"},
    };
    for (const auto& c : refused) {
        const auto reply = raw_exchange(server.port(), c.bytes + behind, 5s);
        EXPECT_TRUE(reply.closed) << c.name;
        EXPECT_EQ(status_line(reply.bytes).substr(9, 3), c.status)
            << c.name << ": " << status_line(reply.bytes);
        EXPECT_NE(reply.bytes.find(std::string{"\"code\":\""} + c.code + "\""), std::string::npos)
            << c.name << ": " << reply.bytes.substr(0, 300);
        EXPECT_EQ(responses_in(reply.bytes), 1U) << c.name << ": " << reply.bytes;
    }
    for (const char* host : {"localhost", "127.0.0.1:8080", "[::1]:8080", "[::1]", "xn--bcher-kva.example",
                             "", "a%41b", "host:"}) {
        const auto reply = raw_exchange(server.port(), "GET /healthz HTTP/1.1\r\nHost: "s + host +
                                                           "\r\nConnection: close\r\n\r\n");
        EXPECT_EQ(status_line(reply.bytes), "HTTP/1.1 200 OK") << "Host: " << host;
    }
    const auto old = raw_exchange(server.port(), "GET /healthz HTTP/1.0\r\n\r\n");
    EXPECT_EQ(status_line(old.bytes), "HTTP/1.0 200 OK");
}

// The rest of RFC 9112's request-line rules: what is served, and what is refused with which status.
TEST(Hardening, RequestLinesAreReadAsTheRfcAsks)
{
    auto cfg = duet::test::test_config();
    cfg.server.linger_timeout_ms = 100;
    running_server server{cfg};
    // Empty lines before a request line are skipped (2.2), on a fresh connection and between two requests.
    const auto blank =
        raw_exchange(server.port(), "\r\n\r\n\nGET /healthz HTTP/1.1\r\nHost: x\r\n\r\n\r\n"
                                    "GET /readyz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    EXPECT_EQ(responses_in(blank.bytes), 2U) << blank.bytes;
    EXPECT_NE(blank.bytes.find("{\"status\":\"ready\"}"), std::string::npos) << blank.bytes;
    // A later HTTP/1.x is served as 1.1 (RFC 9110 2.5); another major version is not spoken here.
    const auto later =
        raw_exchange(server.port(), "GET /healthz HTTP/1.2\r\nHost: x\r\nConnection: close\r\n\r\n");
    EXPECT_EQ(status_line(later.bytes), "HTTP/1.1 200 OK") << later.bytes;
    const auto two = raw_exchange(server.port(), "GET /healthz HTTP/2.0\r\nHost: x\r\n\r\n");
    EXPECT_EQ(status_line(two.bytes), "HTTP/1.1 505 HTTP Version Not Supported");
    EXPECT_TRUE(two.closed);
    // OPTIONS * asks about the server: the methods its endpoints take.
    const auto options =
        raw_exchange(server.port(), "OPTIONS * HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    EXPECT_EQ(status_line(options.bytes), "HTTP/1.1 200 OK") << options.bytes;
    EXPECT_NE(options.bytes.find("\r\nAllow: GET, HEAD\r\n"), std::string::npos) << options.bytes;
    EXPECT_NE(options.bytes.find("\r\nContent-Length: 0\r\n"), std::string::npos) << options.bytes;
    // The asterisk for any other method, and the authority form for any method but CONNECT, are no target.
    for (const char* line :
         {"GET * HTTP/1.1", "HEAD * HTTP/1.1", "GET 127.0.0.1:80 HTTP/1.1", "GET healthz HTTP/1.1"}) {
        const auto reply = raw_exchange(server.port(), line + "\r\nHost: x\r\nConnection: close\r\n\r\n"s);
        EXPECT_EQ(status_line(reply.bytes).substr(9, 3), "400") << line;
        if (std::string_view{line}.substr(0, 4) != "HEAD") {
            EXPECT_NE(reply.bytes.find("\"code\":\"bad_target\""), std::string::npos)
                << line << ": " << reply.bytes;
        }
    }
    // CONNECT is a proxy's method; what a client sends behind it (a tunnel's bytes) is never read.
    const auto connect =
        raw_exchange(server.port(), "CONNECT example.org:443 HTTP/1.1\r\nHost: example.org:443\r\n\r\n"
                                    "GET /readyz HTTP/1.1\r\nHost: x\r\n\r\n");
    EXPECT_EQ(status_line(connect.bytes), "HTTP/1.1 501 Not Implemented") << connect.bytes;
    EXPECT_NE(connect.bytes.find("\"code\":\"not_implemented\""), std::string::npos);
    EXPECT_TRUE(connect.closed);
    EXPECT_EQ(responses_in(connect.bytes), 1U) << connect.bytes;
    // HTTP/1.0 without keep-alive says that it closes, as docs/API.md promises.
    const auto old = raw_exchange(server.port(), "GET /healthz HTTP/1.0\r\n\r\n");
    EXPECT_NE(old.bytes.find("\r\nConnection: close\r\n"), std::string::npos) << old.bytes;
    EXPECT_TRUE(old.closed);
    ASSERT_EQ(http_get(server.port(), "/healthz").status, 200U);
}

// RFC 9110 6.6.1: an origin server with a clock sends Date on its 2xx, 3xx and 4xx responses (and duet on
// all).
TEST(Hardening, EveryResponseCarriesTheDate)
{
    running_server server;
    const auto before = std::chrono::system_clock::now();
    for (const char* target :
         {"/healthz", "/io/sleep?ms=1", "/nope", "/io/sleep?ms=-1", "/cpu/fib?n=10", "/metrics", "/"}) {
        const auto reply = http_get(server.port(), target);
        ASSERT_NE(reply.status, 0U) << target << ": " << reply.error;
        const auto date = reply.header("date");
        std::tm tm{};
        std::istringstream in{date};
        in >> std::get_time(&tm, "%a, %d %b %Y %H:%M:%S GMT");
        ASSERT_FALSE(in.fail()) << target << ": Date: " << date;
        EXPECT_EQ(date.size(), 29U) << date; // IMF-fixdate, two-digit day
        const auto sent = std::chrono::system_clock::from_time_t(timegm(&tm));
        EXPECT_GE(sent, std::chrono::floor<std::chrono::seconds>(before) - 1s) << date;
        EXPECT_LE(sent, std::chrono::system_clock::now() + 1s) << date;
    }
    const auto refused = raw_exchange(server.port(), "GET /healthz HTTP/1.1\r\n\r\n"); // 400 before routing
    EXPECT_NE(refused.bytes.find("\r\nDate: "), std::string::npos) << refused.bytes;
}

TEST(Hardening, ExpectContinueGetsTheGoAheadThenTheAnswer)
{
    running_server server;
    net::io_context ioc;
    tcp::socket s{ioc};
    s.connect({net::ip::make_address("127.0.0.1"), server.port()});
    net::write(s, net::buffer(std::string{"GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: "
                                          "100-continue\r\n\r\n"}));
    std::string got(25, '\0');
    net::read(s, net::buffer(got));
    EXPECT_EQ(got, "HTTP/1.1 100 Continue\r\n\r\n");
    net::write(s, net::buffer(std::string{"hello"}));
    std::array<char, 512> answer{};
    auto n = s.read_some(net::buffer(answer));
    EXPECT_EQ(std::string(answer.data(), n).rfind("HTTP/1.1 200 OK", 0), 0U);
}

TEST(Hardening, LingerEndsAtItsDeadlineEvenIfTheClientNeverStopsSending)
{
    auto cfg = duet::test::test_config();
    cfg.server.linger_timeout_ms = 300;
    running_server server{cfg};
    net::io_context ioc;
    tcp::socket s{ioc};
    s.connect({net::ip::make_address("127.0.0.1"), server.port()});
    // A body far over the limit: refused with 413, then the client keeps uploading as fast as it can.
    net::write(s, net::buffer(
                      std::string{"POST /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 100000000\r\n\r\n"}));
    s.non_blocking(true);
    const std::string chunk(64 * 1024, 'x');
    std::array<char, 4096> sink{};
    bool closed = false;
    auto start = std::chrono::steady_clock::now();
    while (!closed && std::chrono::steady_clock::now() - start < 5s) {
        // Reading gives the 413, then the end of the server's half (it shut down its sending side and
        // lingers); only a failed write says the server has closed the connection and stopped reading.
        boost::system::error_code ec;
        s.read_some(net::buffer(sink), ec);
        s.write_some(net::buffer(chunk), ec);
        closed = ec && ec != net::error::would_block;
        if (ec == net::error::would_block) {
            std::this_thread::sleep_for(100us); // the server's read side is full: let it drain
        }
    }
    EXPECT_TRUE(closed) << "the server still read after 5 s of a 300 ms linger";
    EXPECT_LT(std::chrono::steady_clock::now() - start, 3s);
}

TEST(Hardening, TheHeaderDeadlineAppliesFromTheRequestLine)
{
    auto cfg = duet::test::test_config();
    cfg.server.header_timeout_ms = 300;
    cfg.server.idle_timeout_ms = 20000;
    running_server server{cfg};
    auto start = std::chrono::steady_clock::now();
    // The request line alone: the parser consumes it whole, so no byte of the request stays buffered. The
    // connection is still mid-request: the header deadline, not the idle one, must cut it.
    auto reply = raw_exchange(server.port(), "GET /healthz HTTP/1.1\r\n", 10s);
    EXPECT_TRUE(reply.closed);
    EXPECT_LT(std::chrono::steady_clock::now() - start, 5s);
    auto stats = http_get(server.port(), "/stats").json();
    EXPECT_GE(stats["connections"]["closed"]["read_timeout"].get<int>(), 1);
}

TEST(Hardening, SlowlorisConnectionsAreCutWhileNormalClientsKeepTheirLatency)
{
    auto cfg = duet::test::test_config();
    cfg.server.header_timeout_ms = 1000;
    running_server server{cfg};
    const int slow = 1000;

    // 1000 connections that each send a request line and then one header byte every 100 ms, never finishing.
    std::atomic<int> closed_by_server{0};
    std::atomic<bool> done{false};
    std::thread trickle{[&] {
        net::io_context ioc;
        std::vector<std::unique_ptr<tcp::socket>> sockets;
        for (int i = 0; i < slow; ++i) {
            auto s = std::make_unique<tcp::socket>(ioc);
            boost::system::error_code ec;
            s->connect({net::ip::make_address("127.0.0.1"), server.port()}, ec);
            if (!ec) {
                net::write(*s, net::buffer(std::string{"GET /healthz HTTP/1.1\r\nX-Slow: "}), ec);
                s->non_blocking(true);
                sockets.push_back(std::move(s));
            }
        }
        auto until = std::chrono::steady_clock::now() + 3s;
        std::vector<bool> gone(sockets.size(), false);
        while (std::chrono::steady_clock::now() < until) {
            for (std::size_t i = 0; i < sockets.size(); ++i) {
                if (gone[i]) {
                    continue;
                }
                boost::system::error_code ec;
                char byte = 'a';
                sockets[i]->write_some(net::buffer(&byte, 1), ec);
                std::array<char, 64> sink{};
                sockets[i]->read_some(net::buffer(sink), ec);
                if (ec && ec != net::error::would_block) {
                    gone[i] = true;
                    ++closed_by_server;
                }
            }
            std::this_thread::sleep_for(100ms);
        }
        done = true;
    }};

    // Meanwhile a normal client: 200 requests on one keep-alive connection.
    std::this_thread::sleep_for(200ms);
    duet::test::client_connection normal{server.port()};
    std::vector<double> ms;
    for (int i = 0; i < 200; ++i) {
        auto r = normal.get("/healthz");
        ASSERT_EQ(r.status, 200U) << r.error;
        ms.push_back(std::chrono::duration<double, std::milli>(r.elapsed).count());
    }
    trickle.join();
    std::sort(ms.begin(), ms.end());
    EXPECT_LT(ms[197], 50.0 * duet::test::sanitizer_slowdown)
        << "p99 of a normal client during the slowloris";
    EXPECT_EQ(closed_by_server.load(), slow) << "every trickling connection was cut at the header deadline";
    auto stats = http_get(server.port(), "/stats").json();
    EXPECT_GE(stats["connections"]["closed"]["read_timeout"].get<int>(), slow);
}

TEST(Hardening, ConnectionsBeyondTheCapGet503AndTheRestKeepWorking)
{
    auto cfg = duet::test::test_config();
    cfg.server.max_connections = 20;
    running_server server{cfg};
    std::vector<std::unique_ptr<duet::test::client_connection>> held;
    for (int i = 0; i < 20; ++i) {
        held.push_back(std::make_unique<duet::test::client_connection>(server.port()));
        ASSERT_EQ(held.back()->get("/healthz").status, 200U);
    }
    auto refused = raw_exchange(server.port(), "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
    EXPECT_EQ(status_line(refused.bytes), "HTTP/1.1 503 Service Unavailable");
    EXPECT_NE(refused.bytes.find("\"over_capacity\""), std::string::npos);
    EXPECT_NE(refused.bytes.find("Retry-After: 1"), std::string::npos);
    EXPECT_TRUE(refused.closed);
    EXPECT_EQ(held.front()->get("/healthz").status, 200U) << "the connections already open keep working";
    held.pop_back();
    // Once the server has seen the close there is room again; until then /stats is refused like the 21st.
    auto stats_reply = http_get(server.port(), "/stats");
    for (auto give_up = std::chrono::steady_clock::now() + 5s;
         stats_reply.status == 503U && std::chrono::steady_clock::now() < give_up;) {
        std::this_thread::sleep_for(20ms);
        stats_reply = http_get(server.port(), "/stats");
    }
    ASSERT_EQ(stats_reply.status, 200U) << "a closed connection freed its place: " << stats_reply.body;
    EXPECT_EQ(stats_reply.json()["connections"]["closed"]["over_capacity"].get<int>(), 1)
        << "only the 21st connection was refused";
}

TEST(Hardening, RunningOutOfDescriptorsIsLoggedOnceAndSurvived)
{
    // The server may have 48 descriptors; the test opens 80 connections to it.
    duet::test::server_process p{"/usr/bin/prlimit",
                                 {"--nofile=48:48", "--", server_binary, "--port", "0", "--workers", "1"}};
    auto port = p.wait_listening();
    ASSERT_TRUE(port) << p.output();
    // First a connection that the client closes, answered before the descriptors run out. In a sanitizer
    // build UBSan checks each polymorphic type the first time it meets it, probing memory through a pipe that
    // it cannot open while the process has no descriptor left: it would report a false "invalid vptr" during
    // the episode (seen for Asio's end-of-stream error category) and abort. After this the checks are done.
    ASSERT_EQ(http_get(*port, "/healthz").status, 200U);
    for (int i = 0; i < 50 && http_get(*port, "/stats").json()["connections"]["closed"]["client"] < 1; ++i) {
        std::this_thread::sleep_for(20ms);
    }
    {
        net::io_context ioc;
        std::vector<std::unique_ptr<tcp::socket>> sockets;
        for (int i = 0; i < 80; ++i) {
            auto s = std::make_unique<tcp::socket>(ioc);
            boost::system::error_code ec;
            s->connect({net::ip::make_address("127.0.0.1"), *port},
                       ec); // the backlog takes what accept cannot
            sockets.push_back(std::move(s));
        }
        EXPECT_TRUE(p.wait_for_output("accept failed", 5s)) << p.output();
        std::this_thread::sleep_for(500ms); // several failed accepts in the episode
    }
    // The descriptors are free again: the server accepts and serves, and after a quiet second says so.
    auto r = http_get(*port, "/healthz", 5s);
    EXPECT_EQ(r.status, 200U) << r.error << p.output();
    std::this_thread::sleep_for(1200ms);
    EXPECT_EQ(http_get(*port, "/healthz", 5s).status, 200U);
    EXPECT_TRUE(p.wait_for_output("accepting connections again", 5s)) << p.output();
    auto count = [&](const std::string& needle) {
        std::size_t n = 0;
        for (auto pos = p.output().find(needle); pos != std::string::npos;
             pos = p.output().find(needle, pos + 1)) {
            ++n;
        }
        return n;
    };
    EXPECT_EQ(count("accept failed"), 1U) << "one log line per episode, not one per failed accept";
    auto stats = http_get(*port, "/stats").json();
    EXPECT_GT(stats["connections"]["accept_errors"].get<int>(), 1);
    p.signal(SIGTERM);
    EXPECT_EQ(p.wait_exit(), 0);
}

// Sends a request on a fresh connection and closes the connection after `after`, without reading.
void abandon(std::uint16_t port, const std::string& target, std::chrono::milliseconds after)
{
    net::io_context ioc;
    tcp::socket s{ioc};
    s.connect({net::ip::make_address("127.0.0.1"), port});
    net::write(s, net::buffer("GET " + target + " HTTP/1.1\r\nHost: x\r\n\r\n"));
    std::this_thread::sleep_for(after);
}

nlohmann::json endpoint_stats(std::uint16_t port, const char* path)
{
    return http_get(port, "/stats").json()["requests"]["endpoints"][path];
}

// Polls /stats, every 50 ms for up to `tries` times, until `path` has nothing in flight and one 499.
bool counted_as_gone(std::uint16_t port, const char* path, int tries)
{
    for (int i = 0; i < tries; ++i) {
        std::this_thread::sleep_for(50ms);
        auto e = endpoint_stats(port, path);
        if (e["in_flight"] == 0 && e["status"].value("499", 0) == 1) {
            return true;
        }
    }
    return false;
}

TEST(Hardening, AClientThatLeavesMidRequestIsCountedAndItsWorkCancelled)
{
    running_server server;
    abandon(server.port(), "/io/sleep?ms=5000", 200ms);
    // The wait is cancelled as soon as the server notices, not after its 5 s.
    EXPECT_TRUE(counted_as_gone(server.port(), "/io/sleep", 20))
        << endpoint_stats(server.port(), "/io/sleep").dump();
    // So are all the waits of a fan-out, through its parallel group.
    abandon(server.port(), "/io/fanout?n=100&ms=5000", 200ms);
    EXPECT_TRUE(counted_as_gone(server.port(), "/io/fanout", 20))
        << endpoint_stats(server.port(), "/io/fanout").dump();

    // A CPU job cannot be interrupted: its result is dropped when it ends, and it is counted the same way.
    abandon(server.port(), "/cpu/primes?n=3000000", 100ms);
    EXPECT_TRUE(counted_as_gone(server.port(), "/cpu/primes", 100))
        << endpoint_stats(server.port(), "/cpu/primes").dump();
    auto stats = http_get(server.port(), "/stats").json();
    EXPECT_EQ(stats["connections"]["closed"]["client_gone"], 3);
    EXPECT_EQ(stats["pool"]["completed"], 1); // the job ran to its end; only its answer had nowhere to go
}

TEST(Hardening, AWaitWithAPipelinedRequestBehindItIsStillWatched)
{
    running_server server;
    duet::test::raw_connection raw{server.port()};
    // A first wait leaves the watch's read pending; the next two requests then arrive in it together.
    raw.send("GET /io/sleep?ms=1 HTTP/1.1\r\nHost: x\r\n\r\n");
    ASSERT_NE(raw.read_until("\"slept_ms\":1").find("\"slept_ms\":1"), std::string::npos);
    raw.send("GET /io/sleep?ms=5000 HTTP/1.1\r\nHost: x\r\n\r\nGET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
    std::this_thread::sleep_for(200ms);
    raw.close();
    // The 5 s wait still ends as soon as the server notices, with /healthz's bytes read already.
    EXPECT_TRUE(counted_as_gone(server.port(), "/io/sleep", 20))
        << endpoint_stats(server.port(), "/io/sleep").dump();
}

TEST(Hardening, AJobThatThrowsGets500AndTheWorkerCarriesOn)
{
    // Every second job throws in the worker (fault injection); one worker, so it must survive each failure
    // for the requests after it to be served.
    duet::test::server_process p{server_binary,
                                 {"--port", "0", "--workers", "1", "--set", "faults.fail_every_nth_job=2"}};
    auto port = p.wait_listening();
    ASSERT_TRUE(port) << p.output();
    std::vector<unsigned> statuses;
    for (int i = 0; i < 4; ++i) {
        auto r = http_get(*port, "/cpu/fib?n=20");
        statuses.push_back(r.status);
        if (r.status == 500) {
            EXPECT_EQ(r.json()["error"]["code"], "job_failed") << r.body;
            EXPECT_NE(r.body.find("faults.fail_every_nth_job"), std::string::npos) << r.body;
        } else {
            EXPECT_EQ(r.json()["result"]["value"], 6765) << r.body;
        }
    }
    EXPECT_EQ(statuses, (std::vector<unsigned>{200, 500, 200, 500}));
    // A split request fails as a whole when one of its parts does (jobs 5 and 6: the second part throws).
    auto split = http_get(*port, "/cpu/primes?n=100000&mode=split&parts=2");
    EXPECT_EQ(split.status, 500U) << split.body;
    auto stats = http_get(*port, "/stats").json();
    EXPECT_EQ(stats["pool"]["failed"], 3) << stats["pool"].dump();
    EXPECT_EQ(stats["pool"]["completed"], 3) << stats["pool"].dump();
    EXPECT_EQ(stats["requests"]["endpoints"]["/cpu/fib"]["status"]["500"], 2);
    EXPECT_TRUE(p.wait_for_output("CPU job failed", 5s)) << p.output();
    p.signal(SIGTERM);
    EXPECT_EQ(p.wait_exit(), 0);
}

TEST(Hardening, PipelinedRequestsAreAnsweredInOrder)
{
    running_server server;
    auto reply = raw_exchange(
        server.port(), "GET /io/sleep?ms=50 HTTP/1.1\r\nHost: x\r\n\r\nGET /io/sleep?ms=1 HTTP/1.1\r\nHost: "
                       "x\r\n\r\nGET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    auto first = reply.bytes.find("\"slept_ms\":50");
    auto second = reply.bytes.find("\"slept_ms\":1,");
    auto third = reply.bytes.find("{\"status\":\"ok\"}");
    ASSERT_NE(first, std::string::npos) << reply.bytes;
    ASSERT_NE(second, std::string::npos) << reply.bytes;
    ASSERT_NE(third, std::string::npos) << reply.bytes;
    EXPECT_LT(first, second);
    EXPECT_LT(second, third);
}

TEST(Hardening, DrainUnderLoadAnswersEveryAcceptedRequest)
{
    duet::test::server_process server{server_binary, {"--port", "0", "--workers", "2"}};
    auto port = server.wait_listening();
    ASSERT_TRUE(port) << server.output();
    auto dir = std::filesystem::temp_directory_path() / ("duet-drain-" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir);
    auto json = (dir / "load.json").string();
    duet::test::server_process load{load_binary,
                                    {"-c", "20", "-t", "2", "-d", "4s", "--json", json, "-q",
                                     "http://127.0.0.1:" + std::to_string(*port) + "/io/sleep?ms=500"}};
    std::this_thread::sleep_for(1200ms);
    auto signalled = std::chrono::steady_clock::now();
    server.signal(SIGTERM);
    EXPECT_EQ(server.wait_exit(5s), 0) << server.output();
    EXPECT_LT(std::chrono::steady_clock::now() - signalled, 2s)
        << "in-flight 500 ms waits finish, then it exits";
    load.wait_exit(10s);
    std::ifstream in{json};
    auto r = nlohmann::json::parse(in);
    EXPECT_GE(r["requests"]["completed"].get<int>(), 40) << r.dump();
    EXPECT_EQ(r["status"].size(), 1U) << r["status"].dump();
    EXPECT_EQ(r["status"].value("200", 0), r["requests"]["completed"].get<int>());
    // Requests in flight at the signal were answered: none was cut in the middle.
    EXPECT_EQ(r["errors"]["read"], 0) << r["errors"].dump();
    EXPECT_EQ(r["errors"]["timeout"], 0) << r["errors"].dump();
    EXPECT_GT(r["errors"]["connect"].get<int>(), 0) << "after the drain began, new connections were refused";
    std::filesystem::remove_all(dir);
}

TEST(Hardening, ASecondSignalCutsTheDrainShort)
{
    duet::test::server_process server{server_binary, {"--port", "0"}};
    auto port = server.wait_listening();
    ASSERT_TRUE(port) << server.output();
    auto slow = std::async(std::launch::async, [&] { return http_get(*port, "/io/sleep?ms=20000", 30s); });
    std::this_thread::sleep_for(300ms);
    server.signal(SIGTERM);
    std::this_thread::sleep_for(300ms);
    auto start = std::chrono::steady_clock::now();
    server.signal(SIGTERM);
    EXPECT_TRUE(server.wait_exit(3s)) << server.output();
    EXPECT_LT(std::chrono::steady_clock::now() - start, 2s);
    EXPECT_NE(server.output().find("exiting now"), std::string::npos) << server.output();
    EXPECT_EQ(slow.get().status, 0U);
}

} // namespace
