// The router without a network: which targets name which endpoints, in which forms, and what is refused how.
#include <duet/server/router.hpp>

#include <duet/config.hpp>
#include <duet/server/handlers.hpp>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

namespace {

namespace http = boost::beast::http;
using duet::server::router;

router make_router(const duet::config& cfg = {})
{
    return router{duet::server::make_endpoints(cfg, 2)};
}

TEST(Router, KnownPathsRouteWithTheirParameters)
{
    auto r = make_router();
    auto m = r.route(http::verb::get, "/io/sleep?ms=25");
    ASSERT_TRUE(m) << m.error().message;
    EXPECT_EQ(m->ep->path, "/io/sleep");
    EXPECT_EQ(m->params.get("ms"), 25);
    EXPECT_NE(m->ep->handler, nullptr);

    auto h = r.route(http::verb::head, "/healthz");
    ASSERT_TRUE(h);
    EXPECT_NE(h->ep->plain, nullptr);
}

TEST(Router, AbsoluteFormTargetsRouteLikeOriginForm)
{
    auto r = make_router();
    auto m = r.route(http::verb::get, "http://127.0.0.1:8080/io/sleep?ms=7");
    ASSERT_TRUE(m) << m.error().message;
    EXPECT_EQ(m->ep->path, "/io/sleep");
    EXPECT_EQ(m->params.get("ms"), 7);
    EXPECT_TRUE(r.route(http::verb::get, "HTTP://example.org/healthz"));
    EXPECT_TRUE(r.route(http::verb::get, "http://example.org"));          // no path: "/"
    auto query_only = r.route(http::verb::get, "http://example.org?x=1"); // "/" with a query it does not take
    ASSERT_FALSE(query_only);
    EXPECT_EQ(query_only.error().status, http::status::bad_request) << query_only.error().message;
    EXPECT_FALSE(r.route(http::verb::get, "http://example.org/nope"));
}

TEST(Router, UnknownPathIs404)
{
    auto r = make_router();
    for (const char* target : {"/nope", "/io/sleep/", "/IO/SLEEP?ms=1", "//healthz"}) {
        auto m = r.route(http::verb::get, target);
        ASSERT_FALSE(m) << target;
        EXPECT_EQ(m.error().status, http::status::not_found) << target;
        EXPECT_EQ(m.error().code, "not_found");
    }
}

TEST(Router, OtherMethodsAre405WithAllow)
{
    auto r = make_router();
    for (auto verb : {http::verb::post, http::verb::put, http::verb::delete_, http::verb::options}) {
        auto m = r.route(verb, "/io/sleep?ms=1");
        ASSERT_FALSE(m);
        EXPECT_EQ(m.error().status, http::status::method_not_allowed);
        EXPECT_EQ(m.error().allow, "GET, HEAD");
    }
}

// RFC 9112 3.2: the asterisk form is OPTIONS's (answered before routing) and the authority form CONNECT's; no
// other target names a resource here.
TEST(Router, TargetsInNoFormAServerTakesAre400)
{
    auto r = make_router();
    for (const char* target : {"", "*", "healthz", "127.0.0.1:8080", "example.org:80/healthz", "?ms=1"}) {
        for (auto verb : {http::verb::get, http::verb::head, http::verb::options}) {
            auto m = r.route(verb, target);
            ASSERT_FALSE(m) << target;
            EXPECT_EQ(m.error().status, http::status::bad_request) << target;
            EXPECT_EQ(m.error().code, "bad_target") << target;
        }
    }
}

TEST(Router, LimitsComeFromTheConfiguration)
{
    duet::config cfg;
    cfg.limits.max_sleep_ms = 100;
    cfg.limits.max_fib_n = 20;
    auto r = make_router(cfg);
    EXPECT_TRUE(r.route(http::verb::get, "/io/sleep?ms=100"));
    auto over = r.route(http::verb::get, "/io/sleep?ms=101");
    ASSERT_FALSE(over);
    EXPECT_EQ(over.error().limit, 100);
    auto fib = r.route(http::verb::get, "/cpu/fib?n=21");
    ASSERT_FALSE(fib);
    EXPECT_EQ(fib.error().param, "n");
    EXPECT_EQ(fib.error().limit, 20);
}

TEST(Router, IndexListsEveryEndpointWithLimitsAndModel)
{
    duet::config cfg;
    cfg.limits.max_fanout = 77;
    auto r = make_router(cfg);
    auto index = nlohmann::json::parse(duet::server::make_index(r));
    ASSERT_EQ(index["endpoints"].size(), r.endpoints().size());
    bool saw_fanout = false;
    for (const auto& e : index["endpoints"]) {
        EXPECT_TRUE(e["model"].is_string());
        EXPECT_FALSE(e["demonstrates"].get<std::string>().empty());
        if (e["path"] == "/io/fanout") {
            saw_fanout = true;
            EXPECT_EQ(e["model"], "event-loop");
            EXPECT_EQ(e["params"][0]["name"], "n");
            EXPECT_EQ(e["params"][0]["max"], 77);
            EXPECT_EQ(e["params"][0]["required"], true);
        }
        if (e["path"] == "/cpu/fib") {
            EXPECT_EQ(e["params"][1]["name"], "mode");
            EXPECT_EQ(e["params"][1]["default"], "pool");
        }
    }
    EXPECT_TRUE(saw_fanout);
    for (const char* path :
         {"/", "/healthz", "/readyz", "/io/sleep", "/io/fanout", "/cpu/primes", "/cpu/fib"}) {
        EXPECT_TRUE(r.route(http::verb::get, path) ||
                    r.route(http::verb::get, path).error().code != "not_found")
            << path;
    }
}

} // namespace
