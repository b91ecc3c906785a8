// duet-load's options without a network: URLs, durations, impossible combinations, the request's bytes.
#include <duet/client/options.hpp>

#include <gtest/gtest.h>

namespace {

using namespace std::chrono_literals;
using duet::client::parse_duration;
using duet::client::parse_url;
using duet::client::run_options;
using duet::client::usage_error;

TEST(Url, ParsesHostPortAndTarget)
{
    auto u = parse_url("http://127.0.0.1:8080/io/sleep?ms=10");
    EXPECT_EQ(u.host, "127.0.0.1");
    EXPECT_EQ(u.port, 8080);
    EXPECT_EQ(u.target, "/io/sleep?ms=10");
    EXPECT_EQ(u.to_string(), "http://127.0.0.1:8080/io/sleep?ms=10");

    auto plain = parse_url("http://localhost");
    EXPECT_EQ(plain.port, 80);
    EXPECT_EQ(plain.target, "/");
    EXPECT_EQ(parse_url("http://example.org?x=1").target, "/?x=1");

    auto v6 = parse_url("http://[::1]:9000/healthz");
    EXPECT_EQ(v6.host, "::1");
    EXPECT_EQ(v6.port, 9000);
    EXPECT_EQ(v6.authority(), "[::1]:9000");
}

TEST(Url, RefusesWhatItCannotDo)
{
    for (const char* bad :
         {"https://x/", "ftp://x/", "127.0.0.1:8080/", "http://", "http://:80/", "http://x:0/",
          "http://x:65536/", "http://x:abc/", "http://x:/", "http://[::1/", "http://u@x/", "http://x/a b"}) {
        EXPECT_THROW(parse_url(bad), usage_error) << bad;
    }
    try {
        parse_url("https://x/");
    } catch (const usage_error& e) {
        EXPECT_NE(std::string{e.what()}.find("https"), std::string::npos);
    }
}

TEST(Duration, ParsesWrksUnits)
{
    EXPECT_EQ(parse_duration("10s"), 10s);
    EXPECT_EQ(parse_duration("1m"), 60s);
    EXPECT_EQ(parse_duration("500ms"), 500ms);
    EXPECT_EQ(parse_duration("2h"), 7200s);
    EXPECT_EQ(parse_duration("3"), 3s);
    EXPECT_EQ(parse_duration("1.5s"), 1500ms);
    for (const char* bad : {"", "s", "10x", "-1s", "10 s", "1e400s", "31d", "800h"}) {
        EXPECT_THROW(parse_duration(bad), usage_error) << bad;
    }
}

TEST(RunOptions, ImpossibleCombinationsAreUsageErrors)
{
    run_options o;
    o.target = parse_url("http://127.0.0.1:1/");
    EXPECT_NO_THROW(o.validate());
    auto expect_bad = [&](auto change) {
        auto copy = o;
        change(copy);
        EXPECT_THROW(copy.validate(), usage_error);
    };
    expect_bad([](run_options& x) { x.threads = 11; });
    expect_bad([](run_options& x) { x.connections = 0; });
    expect_bad([](run_options& x) {
        x.duration = 1s;
        x.requests = 5;
    });
    expect_bad([](run_options& x) { x.rate = 0.0; });
    expect_bad([](run_options& x) { x.method = "get"; });
    expect_bad([](run_options& x) { x.headers = {{"Bad Name", "v"}}; });
    expect_bad([](run_options& x) { x.headers = {{"X", "a\r\nInjected: 1"}}; });
}

TEST(RunOptions, RequestBytesCarryHostHeadersAndBody)
{
    run_options o;
    o.target = parse_url("http://127.0.0.1:8080/x?y=1");
    o.method = "POST";
    o.headers = {{"X-Test", "1"}};
    o.body = "hello";
    auto r = o.request_bytes();
    EXPECT_EQ(r.rfind("POST /x?y=1 HTTP/1.1\r\n", 0), 0U);
    EXPECT_NE(r.find("\r\nHost: 127.0.0.1:8080\r\n"), std::string::npos);
    EXPECT_NE(r.find("\r\nX-Test: 1\r\n"), std::string::npos);
    EXPECT_NE(r.find("\r\nContent-Length: 5\r\n\r\nhello"), std::string::npos);
    EXPECT_EQ(r.substr(r.size() - 9), "\r\n\r\nhello");

    o.headers = {{"host", "example.org"}};
    o.body.clear();
    auto own_host = o.request_bytes();
    EXPECT_EQ(own_host.find("Host: 127.0.0.1"), std::string::npos);
    EXPECT_NE(own_host.find("host: example.org"), std::string::npos);
}

TEST(RunOptions, AGetIsTheBytesWrkSends)
{
    // The same request as wrk's, byte for byte, so that a server does the same work for either tool.
    run_options o;
    o.target = parse_url("http://127.0.0.1:8080/healthz");
    EXPECT_EQ(o.request_bytes(), "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n\r\n");
    o.headers = {{"User-Agent", "mine"}};
    EXPECT_EQ(o.request_bytes(), "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nUser-Agent: mine\r\n\r\n");
}

} // namespace
