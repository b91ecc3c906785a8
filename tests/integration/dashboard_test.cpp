// GET /'s content negotiation and the dashboard's files, over real loopback sockets. The page's behaviour in
// a browser is tests/browser/dashboard.test.mjs's.
#include "http_client.hpp"
#include "running_server.hpp"

#include <gtest/gtest.h>

#include <regex>
#include <set>

namespace {

using duet::test::client_connection;
using duet::test::running_server;
namespace http = boost::beast::http;

// What Chromium sends for a page it navigates to.
constexpr const char* browser_accept =
    "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,"
    "image/webp,image/apng,*/*;q=0.8,application/signed-exchange;v=b3;q=0.7";

class Dashboard : public ::testing::Test
{
protected:
    duet::test::http_reply get(std::string_view target, const std::string& accept = "",
                               http::verb method = http::verb::get)
    {
        client_connection conn{server_.port()};
        std::vector<std::pair<std::string, std::string>> headers;
        if (!accept.empty()) {
            headers.emplace_back("Accept", accept);
        }
        return conn.request(method, target, headers);
    }

    running_server server_;
};

TEST_F(Dashboard, ABrowserGetsThePageAndEveryOtherClientTheIndex)
{
    auto page = get("/", browser_accept);
    ASSERT_EQ(page.status, 200U) << page.error;
    EXPECT_EQ(page.header("content-type"), "text/html; charset=utf-8");
    EXPECT_NE(page.body.find("<script type=\"module\" src=\"ui/dashboard.js\">"), std::string::npos);
    EXPECT_EQ(page.header("vary"), "Accept");

    const auto index = get("/");
    ASSERT_EQ(index.status, 200U);
    EXPECT_EQ(index.header("content-type"), "application/json");
    EXPECT_EQ(index.header("vary"), "Accept");
    EXPECT_EQ(index.json()["name"], "duet");
    // curl's */*, a script's application/json, and a tie all keep the index, byte for byte.
    for (const char* accept : {"*/*", "application/json", "text/html;q=0.5, application/json;q=0.5",
                               "text/html;q=0.4, */*;q=0.5", "text/html;q=oops"}) {
        auto r = get("/", accept);
        EXPECT_EQ(r.header("content-type"), "application/json") << accept;
        EXPECT_EQ(r.body, index.body) << accept;
    }
    for (const char* accept : {"text/html", "text/*", "application/json;q=0.1, text/html"}) {
        EXPECT_EQ(get("/", accept).header("content-type"), "text/html; charset=utf-8") << accept;
    }
}

TEST_F(Dashboard, AcceptSplitOverTwoFieldsIsReadAsOneList)
{
    client_connection conn{server_.port()};
    auto r =
        conn.request(http::verb::get, "/", {{"Accept", "application/json;q=0.2"}, {"Accept", "text/html"}});
    EXPECT_EQ(r.header("content-type"), "text/html; charset=utf-8");
}

TEST_F(Dashboard, ThePageAllowsOnlyItsOwnOriginAndNothingInline)
{
    auto page = get("/", browser_accept);
    const auto csp = page.header("content-security-policy");
    EXPECT_NE(csp.find("default-src 'none'"), std::string::npos) << csp;
    EXPECT_NE(csp.find("script-src 'self'"), std::string::npos) << csp;
    EXPECT_NE(csp.find("connect-src 'self'"), std::string::npos) << csp;
    EXPECT_EQ(csp.find("unsafe-inline"), std::string::npos) << csp;
    EXPECT_EQ(page.header("x-content-type-options"), "nosniff");
    // No inline script or style, no absolute URL: the page works offline and behind a proxy's path prefix.
    EXPECT_EQ(page.body.find("<script>"), std::string::npos);
    EXPECT_EQ(page.body.find("style="), std::string::npos);
    EXPECT_EQ(page.body.find("src=\"/"), std::string::npos);
    EXPECT_EQ(page.body.find("href=\"/"), std::string::npos);
    EXPECT_EQ(page.body.find("http"), std::string::npos);
}

TEST_F(Dashboard, EveryFileThePageNamesIsServedWithItsType)
{
    auto page = get("/", browser_accept);
    const std::regex ref{R"re((?:src|href)="(ui/[^"]+)")re"};
    std::set<std::string> files;
    for (std::sregex_iterator it{page.body.begin(), page.body.end(), ref}, end; it != end; ++it) {
        files.insert((*it)[1]);
    }
    files.insert("ui/charts.js"); // imported by dashboard.js
    ASSERT_GE(files.size(), 4U);
    for (const auto& f : files) {
        auto r = get("/" + f);
        ASSERT_EQ(r.status, 200U) << f;
        EXPECT_FALSE(r.body.empty()) << f;
        const auto type = r.header("content-type");
        const auto ext = f.substr(f.rfind('.'));
        const std::string want = ext == ".js"    ? "text/javascript; charset=utf-8"
                                 : ext == ".css" ? "text/css; charset=utf-8"
                                                 : "image/svg+xml";
        EXPECT_EQ(type, want) << f;
        EXPECT_EQ(r.header("x-content-type-options"), "nosniff") << f;
    }
    EXPECT_EQ(get("/ui/missing.js").status, 404U);
    EXPECT_EQ(get("/ui/index.html").status, 404U); // the page is GET /'s, at one address
}

TEST_F(Dashboard, AcceptChangesNothingOnAnyOtherPath)
{
    for (std::string_view target : {"/healthz", "/stats", "/io/sleep?ms=1", "/nowhere", "/io/sleep?ms=-1"}) {
        const auto plain = get(target);
        const auto html = get(target, browser_accept);
        EXPECT_EQ(html.status, plain.status) << target;
        EXPECT_EQ(html.header("content-type"), plain.header("content-type")) << target;
        EXPECT_EQ(html.header("content-security-policy"), "") << target;
        EXPECT_EQ(html.header("vary"), "") << target;
    }
}

TEST_F(Dashboard, HeadOfThePageIsItsHeaderAlone)
{
    const auto page = get("/", browser_accept);
    const auto head = get("/", browser_accept, http::verb::head);
    ASSERT_EQ(head.status, 200U) << head.error;
    EXPECT_TRUE(head.body.empty());
    EXPECT_EQ(head.header("content-length"), std::to_string(page.body.size()));
    EXPECT_EQ(head.header("content-type"), "text/html; charset=utf-8");
}

} // namespace
