// /io/call's upstream without a network: upstream.url parsed and resolved case by case, and each way a call
// can fail turned into its refusal.
#include <duet/server/upstream.hpp>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <set>
#include <string>

namespace {

namespace net = boost::asio;
using duet::server::call_error;
using duet::server::resolve_upstream;
using net::ip::make_address;
using net::ip::tcp;

const tcp::endpoint self_port{make_address("127.0.0.1"), 8080};

TEST(UpstreamUrl, SelfOnAWildcardBindIsCalledOnLoopback)
{
    auto v4 = resolve_upstream("self", tcp::endpoint{make_address("0.0.0.0"), 8080});
    EXPECT_EQ(v4.url, "http://127.0.0.1:8080/io/sleep");
    EXPECT_EQ(v4.host, "127.0.0.1:8080");
    EXPECT_EQ(v4.path, "/io/sleep");
    EXPECT_EQ(v4.addresses, (std::vector{tcp::endpoint{make_address("127.0.0.1"), 8080}}));

    auto v6 = resolve_upstream("self", tcp::endpoint{make_address("::"), 9000});
    EXPECT_EQ(v6.url, "http://[::1]:9000/io/sleep");
    EXPECT_EQ(v6.host, "[::1]:9000");
    EXPECT_EQ(v6.addresses, (std::vector{tcp::endpoint{make_address("::1"), 9000}}));
}

TEST(UpstreamUrl, SelfOnAParticularAddressKeepsIt)
{
    auto t = resolve_upstream("self", tcp::endpoint{make_address("127.0.0.2"), 4321});
    EXPECT_EQ(t.url, "http://127.0.0.2:4321/io/sleep");
    EXPECT_EQ(t.addresses, (std::vector{tcp::endpoint{make_address("127.0.0.2"), 4321}}));
}

TEST(UpstreamUrl, AnAddressAndPortAreTakenAsWritten)
{
    auto t = resolve_upstream("http://127.0.0.1:9/x", self_port);
    EXPECT_EQ(t.url, "http://127.0.0.1:9/x");
    EXPECT_EQ(t.host, "127.0.0.1:9");
    EXPECT_EQ(t.path, "/x");
    EXPECT_EQ(t.addresses, (std::vector{tcp::endpoint{make_address("127.0.0.1"), 9}}));

    auto deep = resolve_upstream("http://10.1.2.3:65535/a/b/c.json", self_port);
    EXPECT_EQ(deep.path, "/a/b/c.json");
    EXPECT_EQ(deep.addresses, (std::vector{tcp::endpoint{make_address("10.1.2.3"), 65535}}));
}

TEST(UpstreamUrl, WithoutAPortItIs80)
{
    auto t = resolve_upstream("http://127.0.0.1/", self_port);
    EXPECT_EQ(t.host, "127.0.0.1");
    EXPECT_EQ(t.path, "/");
    EXPECT_EQ(t.addresses, (std::vector{tcp::endpoint{make_address("127.0.0.1"), 80}}));
}

TEST(UpstreamUrl, AnIpv6AddressGoesInBrackets)
{
    auto t = resolve_upstream("http://[::1]:80/p", self_port);
    EXPECT_EQ(t.host, "[::1]:80"); // the Host field keeps the brackets
    EXPECT_EQ(t.path, "/p");
    EXPECT_EQ(t.addresses, (std::vector{tcp::endpoint{make_address("::1"), 80}}));

    auto no_port = resolve_upstream("http://[::1]/p", self_port);
    EXPECT_EQ(no_port.addresses, (std::vector{tcp::endpoint{make_address("::1"), 80}}));
}

TEST(UpstreamUrl, ANameIsResolvedOnceToEachOfItsAddresses)
{
    auto t = resolve_upstream("http://localhost:8081/s", self_port);
    EXPECT_EQ(t.host, "localhost:8081");
    ASSERT_FALSE(t.addresses.empty());
    std::set<tcp::endpoint> unique(t.addresses.begin(), t.addresses.end());
    EXPECT_EQ(unique.size(), t.addresses.size()) << "no address twice";
    for (const auto& a : t.addresses) {
        EXPECT_TRUE(a.address().is_loopback()) << a;
        EXPECT_EQ(a.port(), 8081);
    }
}

TEST(UpstreamUrl, EveryMalformedUrlIsAConfigErrorNamingTheKey)
{
    for (const char* url : {
             "",                          // empty
             "127.0.0.1:9/x",             // no scheme
             "https://127.0.0.1/x",       // TLS is not spoken
             "ftp://127.0.0.1/x",         // nor anything else
             "http://127.0.0.1:9",        // no path
             "http://127.0.0.1",          // no path, no port
             "http://127.0.0.1:9/x?ms=1", // a query: the calls add their own
             "http://127.0.0.1:9/x#top",  // a fragment
             "http://127.0.0.1:9/a b",    // a space cannot go in a request line
             "http://127.0.0.1:9/a\tb",   // nor a control character
             "http://127.0.0.1:0/x",      // port 0
             "http://127.0.0.1:70000/x",  // beyond 65535
             "http://127.0.0.1:/x",       // an empty port
             "http://127.0.0.1:9a/x",     // not a number
             "http://127.0.0.1:-1/x",     // a sign
             "http://127.0.0.1:+9/x",     // a sign
             "http://user@127.0.0.1:9/x", // user information
             "http://u:p@127.0.0.1:9/x",  // user information with a password
             "http://:9/x",               // no host
             "http:///x",                 // no authority at all
             "http://[::1/x",             // an unclosed bracket
             "http://[::1]9/x",           // something other than :PORT after the bracket
             "http://[]:9/x",             // an empty IPv6 host
         }) {
        try {
            resolve_upstream(url, self_port);
            ADD_FAILURE() << "accepted '" << url << "'";
        } catch (const duet::config_error& e) {
            EXPECT_NE(std::string{e.what()}.find("upstream.url"), std::string::npos)
                << url << ": " << e.what();
        }
    }
}

TEST(UpstreamCall, EachFailureIsItsOwnRefusal)
{
    duet::server::upstream_target t{
        .url = "http://127.0.0.1:9/x", .host = "127.0.0.1:9", .path = "/x", .addresses = {}};
    duet::upstream_config cfg;
    cfg.timeout_ms = 250;
    cfg.queue_limit = 7;
    cfg.max_response_bytes = 4096;
    namespace http = boost::beast::http;
    using duet::server::call_outcome;

    auto timeout = call_http_error(call_outcome{.error = call_error::timeout}, t, cfg);
    EXPECT_EQ(timeout.status, http::status::gateway_timeout);
    EXPECT_EQ(timeout.code, "upstream_timeout");
    EXPECT_EQ(timeout.limit, 250);

    auto refused = call_http_error(
        call_outcome{.error = call_error::unreachable, .detail = "Connection refused"}, t, cfg);
    EXPECT_EQ(refused.status, http::status::bad_gateway);
    EXPECT_EQ(refused.code, "upstream_unreachable");
    EXPECT_NE(refused.message.find("Connection refused"), std::string::npos) << refused.message;
    EXPECT_NE(refused.message.find(t.url), std::string::npos) << refused.message;

    auto status =
        call_http_error(call_outcome{.error = call_error::bad_status, .upstream_status = 500}, t, cfg);
    EXPECT_EQ(status.status, http::status::bad_gateway);
    EXPECT_EQ(status.code, "upstream_status");
    auto body = nlohmann::json::parse(status.body());
    EXPECT_EQ(body["error"]["upstream_status"], 500) << status.body();
    EXPECT_EQ(body["error"]["status"], 502) << status.body();

    auto bad = call_http_error(call_outcome{.error = call_error::bad_response}, t, cfg);
    EXPECT_EQ(bad.status, http::status::bad_gateway);
    EXPECT_EQ(bad.code, "upstream_bad_response");
    EXPECT_EQ(bad.limit, 4096);
    EXPECT_FALSE(nlohmann::json::parse(bad.body())["error"].contains("upstream_status")) << bad.body();

    auto full = call_http_error(call_outcome{.error = call_error::saturated}, t, cfg);
    EXPECT_EQ(full.status, http::status::service_unavailable);
    EXPECT_EQ(full.code, "upstream_saturated");
    EXPECT_EQ(full.limit, 7);
    EXPECT_EQ(full.retry_after_s, 1);
}

TEST(UpstreamCall, OutcomeNamesAreTheStatsKeys)
{
    // /stats' upstream.calls and /metrics' outcome label use these names.
    EXPECT_EQ(to_string(call_error::none), "ok");
    EXPECT_EQ(to_string(call_error::unreachable), "unreachable");
    EXPECT_EQ(to_string(call_error::timeout), "timeout");
    EXPECT_EQ(to_string(call_error::bad_status), "bad_status");
    EXPECT_EQ(to_string(call_error::bad_response), "bad_response");
    EXPECT_EQ(to_string(call_error::saturated), "saturated");
    EXPECT_EQ(to_string(call_error::cancelled), "cancelled");
}

} // namespace
