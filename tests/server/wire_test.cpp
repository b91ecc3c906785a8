// wire_form writes responses by hand on the hot path; Beast's parser, reading what it wrote, must see exactly
// the response that was meant: status, version, every field, keep-alive, the body and where it ends.
#include <duet/server/wire.hpp>

#include <duet/server/http_date.hpp>
#include <duet/version.hpp>

#include <boost/asio/buffer.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/string_body.hpp>
#include <gtest/gtest.h>

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

// Beast's reading of the bytes; a HEAD response is read as the answer to a HEAD (no body follows).
http::response<http::string_body> parsed(const std::string& bytes, bool head_only)
{
    http::response_parser<http::string_body> parser;
    parser.skip(head_only);
    boost::beast::error_code ec;
    auto used = parser.put(boost::asio::buffer(bytes), ec);
    EXPECT_FALSE(ec) << ec.message() << " in:\n" << bytes;
    if (parser.is_header_done() && !parser.is_done()) {
        used += parser.put(boost::asio::buffer(bytes) + used, ec);
    }
    EXPECT_EQ(used, bytes.size()) << "every byte belongs to the response";
    return parser.release();
}

response json(http::status status, unsigned version, std::string body)
{
    response res{status, version};
    res.content_type = "application/json";
    res.body = std::move(body);
    return res;
}

TEST(WireForm, WritesTheExactBytesOfAPlainResponse)
{
    auto res = json(http::status::ok, 11, R"({"status":"ok"})");
    const std::string before{duet::server::http_date_now()};
    const auto bytes = ours(res);
    const std::string after{duet::server::http_date_now()};
    // The date is the one thing that is not fixed: the formatted value of this second (or the next).
    const auto date = bytes.substr(bytes.find("Date: ") + 6, 29);
    EXPECT_EQ(bytes,
              "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 15\r\nDate: " + date +
                  "\r\nServer: duet/" + std::string{duet::version} + "\r\n\r\n{\"status\":\"ok\"}");
    EXPECT_TRUE(date == before || date == after) << date << " is neither " << before << " nor " << after;
}

TEST(WireForm, BeastReadsBackEveryShapeTheServerSends)
{
    {
        auto res = json(http::status::ok, 11, R"({"status":"ok"})");
        auto m = parsed(ours(res), false);
        EXPECT_EQ(m.result(), http::status::ok);
        EXPECT_EQ(m.version(), 11U);
        EXPECT_TRUE(m.keep_alive());
        EXPECT_EQ(m[http::field::content_type], "application/json");
        EXPECT_EQ(m[http::field::server], "duet/" + std::string{duet::version});
        EXPECT_EQ(m[http::field::date].size(), 29U);
        EXPECT_EQ(m.body(), R"({"status":"ok"})");
    }
    {
        auto res = json(http::status::bad_request, 11, R"({"error":{}})");
        res.keep_alive = false;
        auto m = parsed(ours(res), false);
        EXPECT_EQ(m.result(), http::status::bad_request);
        EXPECT_FALSE(m.keep_alive());
        EXPECT_EQ(m[http::field::connection], "close");
    }
    {
        auto res = json(http::status::ok, 10, "{}"); // HTTP/1.0 keep-alive is announced with a field
        auto m = parsed(ours(res), false);
        EXPECT_EQ(m.version(), 10U);
        EXPECT_TRUE(m.keep_alive());
        res.keep_alive = false; // the default on 1.0, and still said, as nginx does
        auto closing = parsed(ours(res), false);
        EXPECT_FALSE(closing.keep_alive());
        EXPECT_EQ(closing[http::field::connection], "close");
    }
    {
        auto res = json(http::status::service_unavailable, 11, R"({"error":{"code":"pool_saturated"}})");
        res.retry_after_s = 1;
        res.request_id = "0badc0de-1";
        res.server_timing = duet::server::timing{std::chrono::microseconds{4}, std::chrono::milliseconds{300},
                                                 std::chrono::nanoseconds{300'301'499}};
        auto m = parsed(ours(res), false);
        EXPECT_EQ(m[http::field::retry_after], "1");
        EXPECT_EQ(m["X-Request-Id"], "0badc0de-1");
        EXPECT_EQ(m["Server-Timing"], "queue;dur=0.004, service;dur=300.000, total;dur=300.301");
        EXPECT_EQ(m.body(), res.body);
    }
    {
        auto res = json(http::status::method_not_allowed, 11, "{}");
        res.allow = "GET, HEAD";
        auto m = parsed(ours(res), false);
        EXPECT_EQ(m.result(), http::status::method_not_allowed);
        EXPECT_EQ(m[http::field::allow], "GET, HEAD");
    }
    {
        // HEAD: no body, but the length a GET would have.
        auto res = json(http::status::ok, 11, R"({"status":"ok"})");
        res.head_only = true;
        auto bytes = ours(res);
        EXPECT_EQ(bytes.find("{\"status\""), std::string::npos);
        auto m = parsed(bytes, true);
        EXPECT_EQ(m[http::field::content_length], "15");
        EXPECT_TRUE(m.body().empty());
    }
    {
        // A binary body with bytes that are not text.
        auto res = json(http::status::ok, 11, std::string("P5\n2 1\n255\n\0\xff", 13));
        res.content_type = "image/x-portable-graymap";
        auto m = parsed(ours(res), false);
        EXPECT_EQ(m[http::field::content_type], "image/x-portable-graymap");
        EXPECT_EQ(m.body(), res.body);
    }
}

TEST(WireForm, AnEventStreamHasNoLengthAndIsNotCachedOrBuffered)
{
    response res{http::status::ok, 11};
    res.content_type = "text/event-stream";
    res.event_stream = true;
    res.keep_alive = false;
    auto bytes = ours(res);
    http::response_parser<http::string_body> parser;
    boost::beast::error_code ec;
    EXPECT_EQ(parser.put(boost::asio::buffer(bytes), ec), bytes.size());
    ASSERT_TRUE(parser.is_header_done()) << ec.message();
    EXPECT_FALSE(parser.is_done()) << "the body runs until the connection closes";
    const auto& m = parser.get();
    EXPECT_FALSE(m.has_content_length());
    EXPECT_EQ(m[http::field::cache_control], "no-cache");
    EXPECT_EQ(m["X-Accel-Buffering"], "no");
    EXPECT_FALSE(m.keep_alive());
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
