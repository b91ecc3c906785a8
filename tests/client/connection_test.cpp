// duet-load's connection and response parser over a real loopback socket, against a peer the test scripts
// byte by byte: each way a server can answer, or fail to, by name.
#include <duet/client/connection.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/http/error.hpp>
#include <gtest/gtest.h>

#include <sys/socket.h>
#include <sys/time.h>

#include <array>
#include <chrono>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using duet::client::connection;
using duet::client::response_parser;
using duet::client::task;
using net::ip::tcp;
using namespace std::chrono_literals;
using clock_type = std::chrono::steady_clock;

constexpr std::string_view ok_response =
    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 15\r\n\r\n{\"status\":\"ok\"}";

// Parses `bytes` as one response, whole; returns the error (none: complete).
beast::error_code parse(response_parser& p, std::string bytes)
{
    beast::error_code ec;
    auto used = p.put(net::buffer(bytes), ec);
    if (!ec && used != bytes.size()) {
        ADD_FAILURE() << "used " << used << " of " << bytes.size();
    }
    return ec;
}

TEST(ResponseParser, KeepsTheStatusAndTheBodyWhenAsked)
{
    std::string body = "left over from the last response";
    response_parser p{&body, 1024, false};
    EXPECT_TRUE(body.empty());
    ASSERT_FALSE(parse(p, std::string{ok_response}));
    EXPECT_TRUE(p.is_done());
    EXPECT_EQ(p.status(), 200U);
    EXPECT_TRUE(p.keep_alive());
    EXPECT_EQ(body, R"({"status":"ok"})");
}

TEST(ResponseParser, DropsTheBodyWhenNotAsked)
{
    response_parser p{nullptr, 1024, false};
    ASSERT_FALSE(parse(p, "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 5\r\n\r\nbusy!"));
    EXPECT_TRUE(p.is_done());
    EXPECT_EQ(p.status(), 503U);
}

TEST(ResponseParser, SaysWhenTheServerClosesAfterTheResponse)
{
    response_parser p{nullptr, 1024, false};
    ASSERT_FALSE(parse(p, "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"));
    EXPECT_FALSE(p.keep_alive());
    response_parser old{nullptr, 1024, false};
    ASSERT_FALSE(parse(old, "HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n"));
    EXPECT_FALSE(old.keep_alive());
}

TEST(ResponseParser, AnInterimResponseSaysSo)
{
    response_parser go_ahead{nullptr, 1024, false};
    ASSERT_FALSE(parse(go_ahead, "HTTP/1.1 100 Continue\r\n\r\n"));
    EXPECT_TRUE(go_ahead.is_done());
    EXPECT_TRUE(go_ahead.interim());
    response_parser final_answer{nullptr, 1024, false};
    ASSERT_FALSE(parse(final_answer, std::string{ok_response}));
    EXPECT_FALSE(final_answer.interim());
}

TEST(ResponseParser, AssemblesAChunkedBody)
{
    std::string body;
    response_parser p{&body, 1024, false};
    ASSERT_FALSE(
        parse(p, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nabcd\r\n3\r\nefg\r\n0\r\n\r\n"));
    EXPECT_TRUE(p.is_done());
    EXPECT_EQ(body, "abcdefg");
}

TEST(ResponseParser, AHeadResponseHasNoBodyWhateverItsLength)
{
    response_parser p{nullptr, 1024, true};
    ASSERT_FALSE(parse(p, "HTTP/1.1 200 OK\r\nContent-Length: 15\r\n\r\n"));
    EXPECT_TRUE(p.is_done());
}

TEST(ResponseParser, ABodyOverTheLimitIsAnError)
{
    std::string body;
    response_parser p{&body, 4, false};
    EXPECT_EQ(parse(p, std::string{ok_response}), http::error::body_limit);
}

TEST(ResponseParser, GarbageIsAnError)
{
    response_parser p{nullptr, 1024, false};
    EXPECT_EQ(parse(p, "SSH-2.0-OpenSSH_9.2\r\n\r\n"), http::error::bad_version);
}

// A connection to a peer the test controls: the test writes what the "server" sends with blocking calls on
// the accepted socket, and runs the connection's operations on ioc_.
class LoadConnection : public ::testing::Test
{
protected:
    LoadConnection()
        : acceptor_{peer_ioc_, {net::ip::make_address("127.0.0.1"), 0}}, conn_{ioc_.get_executor()}
    {
        endpoints_.push_back(acceptor_.local_endpoint());
    }

    // Connects, and takes the accepted end as the peer.
    void open()
    {
        ASSERT_FALSE(run(conn_.connect(endpoints_, clock_type::now() + 5s)));
        peer_ = acceptor_.accept();
        // A blocking read on the peer fails after 5 s instead of hanging a broken test.
        const timeval limit{.tv_sec = 5, .tv_usec = 0};
        ::setsockopt(peer_->native_handle(), SOL_SOCKET, SO_RCVTIMEO, &limit, sizeof limit);
    }

    void peer_sends(std::string_view bytes) { net::write(*peer_, net::buffer(bytes)); }

    // Runs one operation to its end (at most 5 s), sweeping the connection's deadline every millisecond as
    // the engine's sweep does.
    template <typename T>
    T run(task<T> op)
    {
        std::optional<T> result;
        net::co_spawn(ioc_, std::move(op), [&](const std::exception_ptr& e, T r) {
            if (e) {
                std::rethrow_exception(e);
            }
            result = r;
        });
        auto give_up = clock_type::now() + 5s;
        while (!result && clock_type::now() < give_up) {
            ioc_.restart();
            ioc_.run_for(1ms);
            conn_.expire_if_due(clock_type::now());
        }
        if (!result) {
            ADD_FAILURE() << "the operation did not end within 5 s";
            return T{};
        }
        return *result;
    }

    beast::error_code read(response_parser& p, std::chrono::milliseconds timeout = 5000ms)
    {
        return run(conn_.read_response(p, clock_type::now() + timeout));
    }

    // Connects again to a new peer that answers 200 at once, and reads that answer.
    void reconnect_and_read_a_response()
    {
        ASSERT_FALSE(run(conn_.connect(endpoints_, clock_type::now() + 5s)));
        auto again = acceptor_.accept();
        net::write(again, net::buffer(ok_response));
        response_parser q{nullptr, 1024, false};
        EXPECT_FALSE(read(q));
        EXPECT_EQ(q.status(), 200U);
    }

    net::io_context ioc_;
    net::io_context peer_ioc_;
    tcp::acceptor acceptor_;
    std::vector<tcp::endpoint> endpoints_;
    connection conn_;
    std::optional<tcp::socket> peer_;
};

TEST_F(LoadConnection, SendWritesTheRequestWhole)
{
    open();
    std::string request = "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n";
    ASSERT_FALSE(run(conn_.send(net::buffer(request), clock_type::now() + 5s)));
    std::string got(request.size(), '\0');
    net::read(*peer_, net::buffer(got));
    EXPECT_EQ(got, request);
}

TEST_F(LoadConnection, AResponseInPiecesIsReadWholeAndCounted)
{
    open();
    peer_sends(ok_response.substr(0, 20)); // the head cut in the middle of a field
    std::string body;
    response_parser p{&body, 1024, false};
    std::optional<beast::error_code> ec;
    net::co_spawn(ioc_, conn_.read_response(p, clock_type::now() + 5s),
                  [&](const std::exception_ptr&, beast::error_code e) { ec = e; });
    ioc_.restart();
    ioc_.run_for(20ms);
    EXPECT_FALSE(ec) << "the response is not complete yet";
    peer_sends(ok_response.substr(20, 50));
    ioc_.restart();
    ioc_.run_for(20ms);
    EXPECT_FALSE(ec);
    peer_sends(ok_response.substr(70));
    ioc_.restart();
    ioc_.run_for(5s);
    ASSERT_TRUE(ec);
    EXPECT_FALSE(*ec) << ec->message();
    EXPECT_EQ(body, R"({"status":"ok"})");
    EXPECT_EQ(conn_.response_bytes(), ok_response.size());
}

TEST_F(LoadConnection, TwoResponsesThatArriveTogetherAreReadOneByOne)
{
    open();
    std::string two = std::string{ok_response} + "HTTP/1.1 404 Not Found\r\nContent-Length: 2\r\n\r\n{}";
    peer_sends(two);
    response_parser first{nullptr, 1024, false};
    ASSERT_FALSE(read(first));
    EXPECT_EQ(first.status(), 200U);
    EXPECT_EQ(conn_.response_bytes(), ok_response.size());
    response_parser second{nullptr, 1024, false};
    ASSERT_FALSE(read(second));
    EXPECT_EQ(second.status(), 404U);
    EXPECT_EQ(conn_.response_bytes(), two.size() - ok_response.size());
}

TEST_F(LoadConnection, APeerThatNeverAnswersIsATimeoutAtTheDeadline)
{
    open();
    response_parser p{nullptr, 1024, false};
    auto began = clock_type::now();
    EXPECT_EQ(read(p, 100ms), beast::error::timeout);
    auto took = clock_type::now() - began;
    EXPECT_GE(took, 100ms);
    EXPECT_LT(took, 2s);
    // The connection was closed: the peer sees the end of the stream.
    std::array<char, 1> byte{};
    boost::system::error_code ec;
    peer_->read_some(net::buffer(byte), ec);
    EXPECT_EQ(ec, net::error::eof);
}

TEST_F(LoadConnection, APeerThatClosesBeforeAnsweringIsTheEndOfTheStream)
{
    open();
    peer_->close();
    response_parser p{nullptr, 1024, false};
    EXPECT_EQ(read(p), http::error::end_of_stream);
}

TEST_F(LoadConnection, APeerThatClosesMidResponseIsAPartialMessage)
{
    open();
    peer_sends(ok_response.substr(0, ok_response.size() - 3));
    peer_->close();
    response_parser p{nullptr, 1024, false};
    EXPECT_EQ(read(p), http::error::partial_message);
}

TEST_F(LoadConnection, ABodyThatEndsAtTheCloseIsComplete)
{
    open();
    peer_sends("HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nuntil the end");
    peer_->close();
    std::string body;
    response_parser p{&body, 1024, false};
    EXPECT_FALSE(read(p));
    EXPECT_EQ(body, "until the end");
    EXPECT_FALSE(p.keep_alive());
}

TEST_F(LoadConnection, AClosedConnectionConnectsAgainWithNothingOfTheOldStream)
{
    open();
    // One response and the start of another that will never be finished.
    peer_sends(std::string{ok_response} + "HTTP/1.1 500 Internal");
    response_parser p{nullptr, 1024, false};
    ASSERT_FALSE(read(p));
    ioc_.restart();
    ioc_.run_for(20ms); // nothing is pending; this only lets the leftover bytes arrive
    conn_.close();
    reconnect_and_read_a_response();
}

TEST_F(LoadConnection, AfterATimeoutTheNextRequestOnANewConnectionIsNotOne)
{
    open();
    response_parser p{nullptr, 1024, false};
    ASSERT_EQ(read(p, 50ms), beast::error::timeout);
    reconnect_and_read_a_response();
}

TEST_F(LoadConnection, ARequestTheSocketCannotTakeAtOnceIsWrittenWhole)
{
    open();
    // Far more than the socket buffers hold: send must suspend and go on as the peer reads.
    std::string big(8 << 20, '\0');
    for (std::size_t i = 0; i < big.size(); ++i) {
        big[i] = static_cast<char>('a' + i % 26);
    }
    std::string got;
    std::thread reader{[&] {
        std::array<char, 65536> chunk{};
        boost::system::error_code ec;
        while (got.size() < big.size()) {
            auto n = peer_->read_some(net::buffer(chunk), ec);
            if (ec) {
                break;
            }
            got.append(chunk.data(), n);
        }
    }};
    auto ec = run(conn_.send(net::buffer(big), clock_type::now() + 5s));
    reader.join();
    EXPECT_FALSE(ec) << ec.message();
    EXPECT_TRUE(got == big) << "received " << got.size() << " of " << big.size() << " bytes";
}

TEST_F(LoadConnection, ARequestThePeerNeverReadsIsATimeoutAtTheDeadline)
{
    open();
    std::string big(64 << 20, 'x'); // more than any socket buffer: the write must wait for the peer
    auto began = clock_type::now();
    EXPECT_EQ(run(conn_.send(net::buffer(big), clock_type::now() + 100ms)), beast::error::timeout);
    EXPECT_GE(clock_type::now() - began, 100ms);
}

TEST_F(LoadConnection, AConnectWithNoListenerFails)
{
    auto port = acceptor_.local_endpoint().port();
    acceptor_.close();
    std::vector<tcp::endpoint> gone{{net::ip::make_address("127.0.0.1"), port}};
    EXPECT_EQ(run(conn_.connect(gone, clock_type::now() + 5s)), net::error::connection_refused);
}

} // namespace
