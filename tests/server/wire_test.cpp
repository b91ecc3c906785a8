// wire_form must send exactly what Beast's serializer would: it replaces it on the hot path.
#include <duet/server/wire.hpp>

#include <boost/beast/core/buffers_to_string.hpp>
#include <boost/beast/http/write.hpp>
#include <gtest/gtest.h>

#include <sstream>

namespace {

namespace http = boost::beast::http;
using duet::server::response;

std::string ours(const response& res)
{
    std::string head;
    std::string out;
    for (const auto& b : duet::server::wire_form(res, head)) {
        out.append(static_cast<const char*>(b.data()), b.size());
    }
    return out;
}

std::string beasts(const response& res)
{
    std::ostringstream os;
    os << res; // Beast's serializer, writing header and body
    return os.str();
}

response json(http::status status, unsigned version, std::string body)
{
    response res{status, version};
    res.set(http::field::content_type, "application/json");
    res.set(http::field::server, "duet/test");
    res.body() = std::move(body);
    res.prepare_payload();
    return res;
}

TEST(WireForm, MatchesBeastsSerializerForEveryShapeTheServerSends)
{
    std::vector<response> cases;
    cases.push_back(json(http::status::ok, 11, R"({"status":"ok"})"));
    auto closing = json(http::status::bad_request, 11, R"({"error":{}})");
    closing.keep_alive(false);
    cases.push_back(closing);
    auto old = json(http::status::ok, 10, "{}");
    old.keep_alive(true); // HTTP/1.0 keep-alive is announced with a field
    cases.push_back(old);
    auto retry = json(http::status::service_unavailable, 11, R"({"error":{"code":"pool_saturated"}})");
    retry.set(http::field::retry_after, "1");
    retry.set("X-Request-Id", "0badc0de-1");
    cases.push_back(retry);
    auto not_allowed = json(http::status::method_not_allowed, 11, "{}");
    not_allowed.set(http::field::allow, "GET, HEAD");
    cases.push_back(not_allowed);
    // HEAD: no body, but the length a GET would have.
    auto head = json(http::status::ok, 11, "");
    head.content_length(15);
    cases.push_back(head);
    // An event stream's header: no length, the connection closes after it.
    response events{http::status::ok, 11};
    events.set(http::field::content_type, "text/event-stream");
    events.set(http::field::cache_control, "no-cache");
    events.keep_alive(false);
    cases.push_back(events);
    // A binary body with bytes that are not text.
    auto image = json(http::status::ok, 11, std::string("P5\n2 1\n255\n\0\xff", 13));
    image.set(http::field::content_type, "image/x-portable-graymap");
    cases.push_back(image);

    for (const auto& res : cases) {
        EXPECT_EQ(ours(res), beasts(res));
    }
}

TEST(WireForm, ReusesItsHeadBuffer)
{
    std::string head;
    auto res = json(http::status::ok, 11, R"({"status":"ok"})");
    duet::server::wire_form(res, head);
    auto capacity = head.capacity();
    const auto* data = head.data();
    duet::server::wire_form(res, head);
    EXPECT_EQ(head.capacity(), capacity);
    EXPECT_EQ(head.data(), data) << "the second response is formatted into the same allocation";
}

} // namespace
