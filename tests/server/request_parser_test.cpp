// The request parser's own rules, without a socket: body framing that every reader agrees on, Host, what may
// precede a request line, the versions it reads, and the refusal each broken rule gets.
#include <duet/server/request_parser.hpp>

#include <boost/beast/http/error.hpp>
#include <gtest/gtest.h>

#include <string>

namespace {

namespace http = boost::beast::http;
using duet::server::request;
using duet::server::request_parser;
using violation = request_parser::violation;

struct parsed
{
    boost::beast::error_code ec; ///< empty: the request is complete
    violation violated = violation::none;
    request req;
    std::size_t used = 0;
    http::status refusal = http::status::ok; ///< the refusal's status, when ec is set
    std::string code;                        ///< and its code
};

// Feeds the bytes as the session does (what is left after each put, until the request is done or refused).
parsed parse(std::string bytes, const duet::server_config& sc = {})
{
    parsed out;
    request_parser parser{out.req, sc};
    auto rest = boost::asio::buffer(bytes);
    while (rest.size() > 0 && !parser.is_done()) {
        const auto used = parser.put(rest, out.ec);
        out.used += used;
        rest += used;
        if (out.ec && out.ec != http::error::need_more) {
            break;
        }
        if (out.ec == http::error::need_more && used == 0) {
            break;
        }
        out.ec = {};
    }
    if (!out.ec && !parser.is_done()) {
        out.ec = http::error::need_more;
    }
    out.violated = parser.violated();
    if (out.ec && out.ec != http::error::need_more) {
        const auto e = duet::server::refusal_for(out.ec, parser, sc);
        out.refusal = e.status;
        out.code = e.code;
    }
    return out;
}

TEST(RequestParser, ChunkedAloneOrALengthFramesTheBody)
{
    auto chunked =
        parse("POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n");
    ASSERT_FALSE(chunked.ec) << chunked.ec.message();
    EXPECT_EQ(chunked.req.body, "hello");
    auto spelled = parse("POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding:  CHUNKED \r\n\r\n0\r\n\r\n");
    EXPECT_FALSE(spelled.ec) << "codings are case-insensitive, with spaces around";
    auto length = parse("POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello");
    ASSERT_FALSE(length.ec) << length.ec.message();
    EXPECT_EQ(length.req.body, "hello");
}

TEST(RequestParser, TransferEncodingThatCannotFrameTheBodyIsRefused)
{
    for (const char* te : {"xchunked", "identity", "gzip", "chunked, identity", "chunked, chunked", ","}) {
        auto p = parse("POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: " + std::string{te} + "\r\n\r\n");
        EXPECT_EQ(p.violated, violation::coding_not_chunked) << te;
        EXPECT_EQ(p.refusal, http::status::bad_request) << te;
        EXPECT_EQ(p.code, "bad_framing") << te;
    }
}

TEST(RequestParser, TransferEncodingWithContentLengthIsRefusedInEitherOrder)
{
    auto after =
        parse("POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: xchunked\r\nContent-Length: 3\r\n\r\nabc");
    EXPECT_EQ(after.violated, violation::coding_with_length);
    EXPECT_EQ(after.code, "bad_framing");
    // Beast itself refuses a coding after a length, and a length after chunked.
    auto before =
        parse("POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\nabc");
    EXPECT_EQ(before.refusal, http::status::bad_request);
    auto chunked_first =
        parse("POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\nabc");
    EXPECT_EQ(chunked_first.refusal, http::status::bad_request);
}

TEST(RequestParser, TransferEncodingOnHttp10IsFaultyFraming)
{
    auto p = parse("POST /x HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n");
    EXPECT_EQ(p.violated, violation::coding_on_http10);
    EXPECT_EQ(p.refusal, http::status::bad_request);
}

TEST(RequestParser, ACodingUnderChunkedIs501)
{
    for (const char* fields : {"Transfer-Encoding: gzip, chunked\r\n",
                               "Transfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n"}) {
        auto p = parse("POST /x HTTP/1.1\r\nHost: a\r\n" + std::string{fields} + "\r\n0\r\n\r\n");
        EXPECT_EQ(p.violated, violation::unsupported_coding) << fields;
        EXPECT_EQ(p.refusal, http::status::not_implemented) << fields;
        EXPECT_EQ(p.code, "unsupported_transfer_coding");
    }
}

TEST(RequestParser, Http11NeedsExactlyOneValidHost)
{
    EXPECT_EQ(parse("GET / HTTP/1.1\r\n\r\n").violated, violation::missing_host);
    EXPECT_EQ(parse("GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n").violated, violation::duplicate_host);
    EXPECT_EQ(parse("GET / HTTP/1.1\r\nHost: a b\r\n\r\n").violated, violation::bad_host);
    EXPECT_EQ(parse("GET / HTTP/1.1\r\nHost: a b\r\n\r\n").code, "bad_host");
    EXPECT_FALSE(parse("GET / HTTP/1.1\r\nhost: a\r\n\r\n").ec) << "field names are case-insensitive";
    EXPECT_FALSE(parse("GET / HTTP/1.0\r\n\r\n").ec) << "HTTP/1.0 has no Host requirement";
    EXPECT_EQ(parse("GET / HTTP/1.0\r\nHost: a\r\nHost: b\r\n\r\n").violated, violation::duplicate_host);
    EXPECT_EQ(parse("GET / HTTP/1.0\r\nHost: a/b\r\n\r\n").violated, violation::bad_host);
}

TEST(RequestParser, HostValuesFollowRfc3986)
{
    for (const char* ok :
         {"", "a", "localhost:8080", "127.0.0.1", "127.0.0.1:", "[::1]", "[::1]:80", "[v1.fe80::a+en1]",
          "xn--bcher-kva.example", "a%20b", "a_b-c~d", "sub.delims!$&'()*+,;="}) {
        EXPECT_TRUE(duet::server::valid_host(ok)) << ok;
    }
    for (const char* bad : {"a b", "a/b", "a?b", "a#b", "u@a", "a:8o", "a:1:2", "[::1", "[]", "[::1]x",
                            "[::1]:a", "a%2", "a%zz", "a\"b", "<a>"}) {
        EXPECT_FALSE(duet::server::valid_host(bad)) << bad;
    }
}

TEST(RequestParser, EmptyLinesBeforeTheRequestLineAreSkipped)
{
    auto p = parse("\r\n\n\r\nGET /healthz HTTP/1.1\r\nHost: a\r\n\r\n");
    ASSERT_FALSE(p.ec) << p.ec.message();
    EXPECT_EQ(p.req.target, "/healthz");

    // A CR at the end may be the first half of a blank line: nothing is decided until the next byte.
    request req;
    request_parser parser{req, {}};
    std::string first = "\r\n\r";
    boost::beast::error_code ec;
    EXPECT_FALSE(parser.started());
    EXPECT_EQ(parser.put(boost::asio::buffer(first), ec), 2U);
    EXPECT_EQ(ec, http::error::need_more);
    EXPECT_TRUE(parser.started()) << "the header deadline runs from the first byte, blank or not";
    std::string rest = "\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n";
    EXPECT_EQ(parser.put(boost::asio::buffer(rest), ec), rest.size());
    EXPECT_TRUE(parser.is_done()) << ec.message();

    // A CR that is not part of a CRLF is no blank line.
    EXPECT_TRUE(parse("\rGET / HTTP/1.1\r\nHost: a\r\n\r\n").ec);
}

TEST(RequestParser, LaterMinorVersionsAreReadAs11AndOtherMajorsAre505)
{
    for (const char* v : {"1.2", "1.9"}) {
        auto p = parse("GET / HTTP/" + std::string{v} + "\r\nHost: a\r\n\r\n");
        ASSERT_FALSE(p.ec) << v << ": " << p.ec.message();
        EXPECT_EQ(p.req.version, 11U) << v;
        EXPECT_TRUE(p.req.keep_alive) << v;
    }
    for (const char* v : {"2.0", "3.0", "0.9"}) {
        auto p = parse("GET / HTTP/" + std::string{v} + "\r\nHost: a\r\n\r\n");
        EXPECT_EQ(p.violated, violation::unsupported_version) << v;
        EXPECT_EQ(p.refusal, http::status::http_version_not_supported) << v;
        EXPECT_EQ(p.code, "version_not_supported") << v;
    }
    for (const char* line :
         {"GET / HTTP/1.x", "GET / HTTP/1.10", "GET / HTTP/11", "GET / HTTPS/1.1", "GET /"}) {
        auto p = parse(std::string{line} + "\r\nHost: a\r\n\r\n");
        EXPECT_EQ(p.violated, violation::none) << line;
        EXPECT_EQ(p.refusal, http::status::bad_request) << line;
        EXPECT_EQ(p.code, "bad_request") << line;
    }
}

TEST(RequestParser, BoundsMapToTheirRefusals)
{
    duet::server_config sc;
    sc.max_target_bytes = 10;
    sc.max_header_count = 2;
    sc.max_body_bytes = 4;
    auto target = parse("GET /0123456789 HTTP/1.1\r\nHost: a\r\n\r\n", sc);
    EXPECT_EQ(target.refusal, http::status::uri_too_long);
    auto fields = parse("GET / HTTP/1.1\r\nHost: a\r\nA: 1\r\nB: 2\r\n\r\n", sc);
    EXPECT_EQ(fields.refusal, http::status::request_header_fields_too_large);
    EXPECT_EQ(fields.code, "too_many_headers");
    auto body = parse("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello", sc);
    EXPECT_EQ(body.refusal, http::status::payload_too_large);
}

} // namespace
