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
    for (const char* te : {"xchunked", "identity", "gzip", "chunked, identity", "chunked, chunked", ",",
                           "chunked;x=1", "chunked ;x"}) {
        auto p = parse("POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: " + std::string{te} + "\r\n\r\n");
        EXPECT_EQ(p.violated, violation::coding_not_chunked) << te;
        EXPECT_EQ(p.refusal, http::status::bad_request) << te;
        EXPECT_EQ(p.code, "bad_framing") << te;
    }
}

TEST(RequestParser, TransferEncodingWithContentLengthIsRefusedInEveryOrder)
{
    // Beast refuses two of the orders itself, before the field reaches us: all are named the same.
    for (const char* fields : {"Transfer-Encoding: xchunked\r\nContent-Length: 3\r\n",
                               "Content-Length: 3\r\nTransfer-Encoding: chunked\r\n",
                               "Transfer-Encoding: chunked\r\nContent-Length: 3\r\n"}) {
        auto p = parse("POST /x HTTP/1.1\r\nHost: a\r\n" + std::string{fields} + "\r\nabc");
        EXPECT_EQ(p.violated, violation::coding_with_length) << fields;
        EXPECT_EQ(p.refusal, http::status::bad_request) << fields;
        EXPECT_EQ(p.code, "bad_framing") << fields;
    }
    auto twice = parse(
        "POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n");
    EXPECT_EQ(twice.violated, violation::coding_not_chunked) << "chunked in two fields";
    EXPECT_EQ(twice.code, "bad_framing");
}

// Readers that keep or drop a continuation line disagree on the value: refused in any field (RFC 9112 5.2).
TEST(RequestParser, FoldedFieldsAreRefused)
{
    for (const char* fields :
         {"Transfer-Encoding:\r\n chunked\r\n", "Transfer-Encoding: gzip,\r\n\tchunked\r\n",
          "Content-Length:\r\n 3\r\n", "X-Other: a\r\n b\r\n", "X-Empty:\r\n \r\n"}) {
        auto p = parse("POST /x HTTP/1.1\r\nHost: a\r\n" + std::string{fields} + "\r\n0\r\n\r\n");
        EXPECT_EQ(p.violated, violation::folded_field) << fields;
        EXPECT_EQ(p.code, "obsolete_fold") << fields;
    }
    auto host = parse("GET / HTTP/1.1\r\nHost:\r\n a\r\n\r\n");
    EXPECT_EQ(host.violated, violation::folded_field);
    EXPECT_FALSE(parse("GET / HTTP/1.1\r\nHost: a\r\nX-Empty:\r\nX-Tab:\tb \t\r\n\r\n").ec)
        << "empty values and tabs within a line are no fold";
}

// RFC 9110 6.5.1: trailer fields after a chunked body are never merged into the header.
TEST(RequestParser, TrailersDoNotChangeTheRequest)
{
    auto p = parse("POST /x HTTP/1.1\r\nHost: a\r\nX-Request-Id: mine\r\nTransfer-Encoding: chunked\r\n\r\n"
                   "0\r\nX-Request-Id: evil\r\nHost: b\r\nExpect: 100-continue\r\n\r\n");
    ASSERT_FALSE(p.ec) << p.ec.message();
    EXPECT_EQ(p.req.request_id, "mine");
    EXPECT_FALSE(p.req.expect_continue);
}

// Accept is a list field: split over several lines it reads as one list (RFC 9110 5.3), and a trailer adds
// nothing to it. A request without one has none, whatever the request before it on the connection sent.
TEST(RequestParser, AcceptFieldsAreJoinedIntoOneList)
{
    auto p = parse("GET / HTTP/1.1\r\nHost: a\r\nAccept: text/html\r\naccept: */*;q=0.8\r\n\r\n");
    ASSERT_FALSE(p.ec) << p.ec.message();
    EXPECT_EQ(p.req.accept, "text/html, */*;q=0.8");

    duet::server_config sc;
    request req;
    req.accept = "text/html";
    request_parser parser{req, sc};
    EXPECT_TRUE(req.accept.empty());

    auto trailer = parse("POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
                         "0\r\nAccept: text/html\r\n\r\n");
    ASSERT_FALSE(trailer.ec) << trailer.ec.message();
    EXPECT_TRUE(trailer.req.accept.empty());
}

TEST(RequestParser, ConnectIsRefusedBeforeItsHeader)
{
    auto p = parse("CONNECT example.org:443 HTTP/1.1\r\nHost: example.org:443\r\n\r\n");
    EXPECT_EQ(p.violated, violation::connect_method);
    EXPECT_EQ(p.refusal, http::status::not_implemented);
    EXPECT_EQ(p.code, "not_implemented");
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
          "xn--bcher-kva.example", "a%20b", "a_b-c~d", "sub.delims!$&'()*+;="}) {
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

// Beast says bad_version as soon as it has the version's 8 bytes: the line's end may not have come yet (a
// request line split over two reads, or one longer than the client watch's 128 bytes).
TEST(RequestParser, AVersionIsReadBeforeItsLineEnds)
{
    request req;
    request_parser parser{req, {}};
    boost::beast::error_code ec;
    std::string first = "GET /healthz HTTP/1.2";
    EXPECT_EQ(parser.put(boost::asio::buffer(first), ec), 0U);
    EXPECT_EQ(ec, http::error::need_more) << ec.message();
    first += "\r\nHost: a\r\n\r\n";
    EXPECT_EQ(parser.put(boost::asio::buffer(first), ec), first.size()) << ec.message();
    EXPECT_TRUE(parser.is_done());
    EXPECT_EQ(req.version, 11U);

    request other;
    request_parser two{other, {}};
    std::string line = "GET / HTTP/2.0";
    two.put(boost::asio::buffer(line), ec);
    EXPECT_EQ(two.violated(), violation::unsupported_version);
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
