// The connection's operations over a real loopback socket, without a server: each way a peer can behave while
// a request is read, handled or answered, by name.
#include <duet/server/connection.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/write.hpp>
#include <gtest/gtest.h>

#include <sys/socket.h>
#include <sys/time.h>

#include <array>
#include <atomic>
#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <variant>

namespace {

namespace net = boost::asio;
namespace http = boost::beast::http;
using duet::server::close_reason;
using duet::server::connection;
using duet::server::io_timer;
using duet::server::read_result;
using duet::server::request;
using duet::server::response;
using duet::server::task;
using duet::server::use_task;
using namespace std::chrono_literals;
using clock_type = std::chrono::steady_clock;

constexpr auto use_tuple = net::as_tuple(use_task);

class Connection : public ::testing::Test
{
protected:
    Connection() : acceptor_{ioc_, {net::ip::make_address("127.0.0.1"), 0}}, client_{client_ioc_}
    {
        cfg_.header_timeout_ms = 10'000;
        cfg_.idle_timeout_ms = 10'000;
        cfg_.write_timeout_ms = 10'000;
        cfg_.linger_timeout_ms = 1'000;
    }

    ~Connection() override
    {
        sweeping_ = false;
        boost::system::error_code ignored;
        client_.close(ignored);
    }

    // Connects the client and makes the accepted end a connection; a deadline sweep runs while the test does.
    void open(int client_receive_buffer = 0)
    {
        client_.open(net::ip::tcp::v4());
        if (client_receive_buffer > 0) {
            client_.set_option(net::socket_base::receive_buffer_size{client_receive_buffer});
        }
        client_.connect(acceptor_.local_endpoint());
        // A blocking read or write on the client fails after 5 s instead of hanging a broken test.
        const timeval limit{.tv_sec = 5, .tv_usec = 0};
        ::setsockopt(client_.native_handle(), SOL_SOCKET, SO_RCVTIMEO, &limit, sizeof limit);
        ::setsockopt(client_.native_handle(), SOL_SOCKET, SO_SNDTIMEO, &limit, sizeof limit);
        auto accepted = acceptor_.accept();
        accepted.non_blocking(true);
        conn_.emplace(std::move(accepted), cfg_, table_, &draining_, watch_);
        net::co_spawn(ioc_, sweep(), [](const std::exception_ptr&) {});
    }

    // As the server's: every 10 ms, cancel the operations of connections whose deadline has passed.
    task<void> sweep()
    {
        io_timer timer{co_await net::this_coro::executor};
        while (sweeping_) {
            timer.expires_after(10ms);
            co_await timer.async_wait(use_tuple);
            table_.for_each_due(duet::server::coarse_clock::now(), [](duet::server::connection_slot& c) {
                c.expired = true;
                boost::system::error_code ignored;
                c.socket.cancel(ignored);
            });
        }
    }

    // Runs `t` on the I/O thread (this one), as a session does: under the watch's cancellation slot, with a
    // cancelled wait as a value rather than an exception.
    template <typename T>
    T run(task<T> t, std::chrono::milliseconds limit = 10s)
    {
        auto wrapped = [](task<T> inner) -> task<T> {
            co_await net::this_coro::throw_if_cancelled(false);
            co_return co_await std::move(inner);
        };
        std::optional<T> out;
        std::exception_ptr error;
        net::co_spawn(ioc_, wrapped(std::move(t)),
                      net::bind_cancellation_slot(connection::cancellation_slot(*watch_),
                                                  [&](const std::exception_ptr& e, T r) {
                                                      error = e;
                                                      if (!e) {
                                                          out = std::move(r);
                                                      }
                                                  }));
        const auto until = clock_type::now() + limit;
        while (!out && !error && clock_type::now() < until) {
            ioc_.restart();
            ioc_.run_for(5ms);
        }
        if (error) {
            std::rethrow_exception(error);
        }
        if (!out) {
            throw std::runtime_error{"the operation did not complete in time"};
        }
        return std::move(*out);
    }

    void send(std::string_view bytes) { net::write(client_, net::buffer(bytes)); }

    // Everything the client receives until the server closes or `within` passes.
    std::string receive(std::chrono::milliseconds within = 2s)
    {
        std::string got;
        const auto until = clock_type::now() + within;
        client_.non_blocking(true);
        std::array<char, 4096> chunk{};
        while (clock_type::now() < until) {
            boost::system::error_code ec;
            const auto n = client_.read_some(net::buffer(chunk), ec);
            if (ec == net::error::would_block) {
                std::this_thread::sleep_for(2ms);
                continue;
            }
            if (ec) {
                break;
            }
            got.append(chunk.data(), n);
        }
        client_.non_blocking(false);
        return got;
    }

    task<read_result> read() { return conn_->read_request(req_); }

    // unless_client_leaves, as an optional: the response, or nothing if the client left.
    std::optional<response> handle(task<response> handling, std::chrono::milliseconds limit = 10s)
    {
        response res;
        if (!run(conn_->unless_client_leaves(std::move(handling), res), limit)) {
            return std::nullopt;
        }
        return res;
    }

    static response ok(std::string body = "{}")
    {
        response res{http::status::ok, 11};
        res.content_type = "application/json";
        res.body = std::move(body);
        return res;
    }

    // A handler that waits up to 10 s (a request that takes time) and says whether it was cancelled.
    static task<response> long_wait(bool& started, bool& cancelled)
    {
        started = true;
        io_timer t{co_await net::this_coro::executor, 10s};
        auto [ec] = co_await t.async_wait(use_tuple);
        cancelled = ec == net::error::operation_aborted;
        co_return ok();
    }

    static task<response> answer_now() { co_return ok(R"({"answered":true})"); }

    net::io_context ioc_;
    duet::server::connection_table table_;
    duet::server_config cfg_;
    bool draining_ = false;
    bool sweeping_ = true;
    std::shared_ptr<duet::server::client_watch> watch_ = connection::make_watch();
    duet::server::tcp_acceptor acceptor_;
    net::io_context client_ioc_;
    net::ip::tcp::socket client_;
    request req_;
    std::optional<connection> conn_;
};

bool was_read(const read_result& r)
{
    return std::holds_alternative<std::monostate>(r);
}

std::optional<close_reason> closed_for(const read_result& r)
{
    if (const auto* why = std::get_if<close_reason>(&r)) {
        return *why;
    }
    return std::nullopt;
}

TEST_F(Connection, ReadsARequestThatArrivedWhole)
{
    open();
    send("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
    ASSERT_TRUE(was_read(run(read())));
    EXPECT_EQ(req_.target, "/healthz");
    EXPECT_TRUE(req_.keep_alive);
}

TEST_F(Connection, ReadsARequestSentSlowly)
{
    open();
    const std::string bytes = "GET /slow HTTP/1.1\r\nHost: x\r\nX-Pad: " + std::string(50, 'p') + "\r\n\r\n";
    std::jthread trickle{[&] {
        for (char c : bytes) {
            net::write(client_, net::buffer(&c, 1));
            std::this_thread::sleep_for(1ms);
        }
    }};
    ASSERT_TRUE(was_read(run(read())));
    EXPECT_EQ(req_.target, "/slow");
}

TEST_F(Connection, PipelinedRequestsAreReadOneAtATime)
{
    open();
    send("GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /b HTTP/1.1\r\nHost: x\r\n\r\n");
    ASSERT_TRUE(was_read(run(read())));
    EXPECT_EQ(req_.target, "/a");
    ASSERT_TRUE(was_read(run(read())));
    EXPECT_EQ(req_.target, "/b");
}

TEST_F(Connection, AMalformedRequestIsARefusal)
{
    open();
    send("GARBAGE\r\n\r\n");
    const auto r = run(read());
    const auto* refusal = std::get_if<duet::server::http_error>(&r);
    ASSERT_NE(refusal, nullptr);
    EXPECT_EQ(refusal->status, http::status::bad_request);
}

TEST_F(Connection, ARequestCutOffMidHeaderEndsAtTheHeaderDeadline)
{
    cfg_.header_timeout_ms = 200;
    open();
    send("GET /healthz HTTP/1.1\r\nHost: x\r\n"); // and nothing more
    const auto start = clock_type::now();
    EXPECT_EQ(closed_for(run(read())), close_reason::read_timeout);
    EXPECT_GE(clock_type::now() - start, 190ms);
}

TEST_F(Connection, AnIdleConnectionEndsAtTheIdleDeadline)
{
    cfg_.idle_timeout_ms = 200;
    open();
    EXPECT_EQ(closed_for(run(read())), close_reason::idle_timeout);
}

TEST_F(Connection, AClientThatClosesBetweenRequestsEndsTheRead)
{
    open();
    client_.shutdown(net::socket_base::shutdown_send);
    EXPECT_EQ(closed_for(run(read())), close_reason::client);
}

TEST_F(Connection, ADrainClosesAConnectionWaitingForARequest)
{
    open();
    draining_ = true;
    EXPECT_EQ(closed_for(run(read())), close_reason::drain);
}

// The server's drain cancels the connections that are waiting for a request (connection_slot::idle).
void drain(bool& draining, duet::server::connection_table& table)
{
    draining = true;
    table.for_each([](duet::server::connection_slot& c) {
        if (c.idle) {
            boost::system::error_code ignored;
            c.socket.cancel(ignored);
        }
    });
}

TEST_F(Connection, ADrainCancelsAReadWaitingForARequest)
{
    open();
    io_timer later{ioc_, 100ms};
    later.async_wait([this](boost::system::error_code) { drain(draining_, table_); });
    EXPECT_EQ(closed_for(run(read())), close_reason::drain);
}

TEST_F(Connection, ADrainCancelsTheWatchsReadAheadToo)
{
    open();
    send("GET /first HTTP/1.1\r\nHost: x\r\n\r\n");
    ASSERT_TRUE(was_read(run(read())));
    ASSERT_TRUE(handle(answer_now()));
    ASSERT_TRUE(conn_->reading_ahead());
    io_timer later{ioc_, 100ms};
    later.async_wait([this](boost::system::error_code) { drain(draining_, table_); });
    EXPECT_EQ(closed_for(run(read())), close_reason::drain);
}

TEST_F(Connection, ExpectContinueGetsTheGoAheadBeforeTheBody)
{
    open();
    send("POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n");
    std::jthread body{[&] {
        std::string go_ahead(25, '\0');
        boost::system::error_code ec;
        net::read(client_, net::buffer(go_ahead), ec);
        EXPECT_FALSE(ec) << ec.message();
        EXPECT_EQ(go_ahead, "HTTP/1.1 100 Continue\r\n\r\n");
        net::write(client_, net::buffer(std::string_view{"hello"}), ec);
    }};
    ASSERT_TRUE(was_read(run(read())));
    EXPECT_EQ(req_.body, "hello");
}

TEST_F(Connection, ASentResponseArrivesWhole)
{
    open();
    const auto res = ok(R"({"status":"ok"})");
    ASSERT_FALSE(run(conn_->send(res)));
    const auto got = receive(300ms);
    EXPECT_EQ(got.rfind("HTTP/1.1 200 OK\r\n", 0), 0U) << got;
    EXPECT_NE(got.find("\r\n\r\n{\"status\":\"ok\"}"), std::string::npos) << got;
}

TEST_F(Connection, AWriteTheClientDoesNotReadEndsAtTheWriteDeadline)
{
    cfg_.write_timeout_ms = 200;
    open(4096);
    run([](connection& c) -> task<bool> { // on the I/O thread, as every operation of a connection
        c.set_send_buffer(4096);
        co_return true;
    }(*conn_));
    const auto big = ok(std::string(8 << 20, 'x')); // far more than both buffers hold
    const auto start = clock_type::now();
    const auto ec = run(conn_->send(big));
    ASSERT_TRUE(ec);
    EXPECT_EQ(conn_->reason_for(ec, close_reason::write_timeout), close_reason::write_timeout);
    EXPECT_GE(clock_type::now() - start, 190ms);
}

TEST_F(Connection, HandlingRunsToItsAnswerWhileTheClientStays)
{
    open();
    send("GET /io HTTP/1.1\r\nHost: x\r\n\r\n");
    ASSERT_TRUE(was_read(run(read())));
    const auto res = handle(answer_now());
    ASSERT_TRUE(res);
    EXPECT_EQ(res->body, R"({"answered":true})");
}

TEST_F(Connection, APeerThatClosesMidHandlingCancelsIt)
{
    open();
    send("GET /io HTTP/1.1\r\nHost: x\r\n\r\n");
    ASSERT_TRUE(was_read(run(read())));
    bool started = false;
    bool cancelled = false;
    std::jthread leave{[&] {
        std::this_thread::sleep_for(100ms);
        client_.close();
    }};
    const auto start = clock_type::now();
    EXPECT_FALSE(handle(long_wait(started, cancelled)));
    EXPECT_TRUE(started);
    EXPECT_TRUE(cancelled) << "the wait must end with the client, not run its 10 s";
    EXPECT_LT(clock_type::now() - start, 5s);
}

TEST_F(Connection, APeerThatResetsMidHandlingCancelsIt)
{
    open();
    send("GET /io HTTP/1.1\r\nHost: x\r\n\r\n");
    ASSERT_TRUE(was_read(run(read())));
    bool started = false;
    bool cancelled = false;
    std::jthread reset{[&] {
        std::this_thread::sleep_for(100ms);
        client_.set_option(net::socket_base::linger{true, 0}); // close sends RST
        client_.close();
    }};
    EXPECT_FALSE(handle(long_wait(started, cancelled)));
    EXPECT_TRUE(cancelled);
}

TEST_F(Connection, AHalfCloseMidHandlingCountsAsGone)
{
    open();
    send("GET /io HTTP/1.1\r\nHost: x\r\n\r\n");
    ASSERT_TRUE(was_read(run(read())));
    bool started = false;
    bool cancelled = false;
    std::jthread half{[&] {
        std::this_thread::sleep_for(100ms);
        client_.shutdown(net::socket_base::shutdown_send); // as nc -N does: the same end of stream as a close
    }};
    EXPECT_FALSE(handle(long_wait(started, cancelled)));
    EXPECT_TRUE(cancelled);
}

TEST_F(Connection, AClientThatLeftRightAfterItsRequestIsNotAnswered)
{
    open();
    send("GET /io HTTP/1.1\r\nHost: x\r\n\r\n");
    client_.shutdown(net::socket_base::shutdown_send);
    ASSERT_TRUE(was_read(run(read())));
    // The end of the stream came with the request: the watch's first read finds it.
    bool started = false;
    bool cancelled = false;
    const auto res = handle(long_wait(started, cancelled), 5s);
    EXPECT_FALSE(res);
}

// A pipelined request, read from the buffer after its connection's end was seen: its handling never starts.
TEST_F(Connection, ARequestWhoseClientIsGoneAlreadyIsNeverHandled)
{
    open();
    send("GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /b HTTP/1.1\r\nHost: x\r\n\r\n");
    ASSERT_TRUE(was_read(run(read())));
    const auto first = handle(answer_now());
    ASSERT_TRUE(first);
    ASSERT_FALSE(run(conn_->send(*first)));
    client_.shutdown(net::socket_base::shutdown_send);
    ioc_.restart();
    ioc_.run_for(50ms); // the watch's read sees the end of the stream
    ASSERT_TRUE(was_read(run(read())));
    EXPECT_EQ(req_.target, "/b");
    bool started = false;
    bool cancelled = false;
    EXPECT_FALSE(handle(long_wait(started, cancelled)));
    EXPECT_FALSE(started);
}

TEST_F(Connection, ARequestPipelinedDuringHandlingIsKeptForTheNextRead)
{
    open();
    send("GET /first HTTP/1.1\r\nHost: x\r\n\r\n");
    ASSERT_TRUE(was_read(run(read())));
    auto next_arrives = [&]() -> task<response> {
        // The next request arrives while this one is handled: bytes end the watch, and are kept.
        send("GET /second HTTP/1.1\r\nHost: x\r\n\r\n");
        io_timer t{co_await net::this_coro::executor, 100ms};
        co_await t.async_wait(use_tuple);
        co_return ok();
    };
    const auto res = handle(next_arrives());
    ASSERT_TRUE(res) << "bytes are not a client leaving";
    ASSERT_FALSE(run(conn_->send(*res)));
    ASSERT_TRUE(was_read(run(read())));
    EXPECT_EQ(req_.target, "/second");
}

TEST_F(Connection, TheWatchsReadBecomesTheNextRequestsRead)
{
    open();
    send("GET /first HTTP/1.1\r\nHost: x\r\n\r\n");
    ASSERT_TRUE(was_read(run(read())));
    const auto res = handle(answer_now());
    ASSERT_TRUE(res);
    ASSERT_FALSE(run(conn_->send(*res)));
    // The watch's read is still pending: the next request, sent after the response, completes it.
    EXPECT_TRUE(conn_->reading_ahead());
    std::jthread next{[&] {
        std::this_thread::sleep_for(50ms);
        send("GET /next HTTP/1.1\r\nHost: x\r\n\r\n");
    }};
    ASSERT_TRUE(was_read(run(read())));
    EXPECT_EQ(req_.target, "/next");
}

TEST_F(Connection, LingerEndsWhenTheClientCloses)
{
    open();
    std::jthread close_soon{[&] {
        std::this_thread::sleep_for(50ms);
        client_.close();
    }};
    const auto start = clock_type::now();
    run([](connection& c) -> task<bool> {
        co_await c.linger();
        co_return true;
    }(*conn_));
    const auto took = clock_type::now() - start;
    EXPECT_GE(took, 40ms) << "it did not wait for the client";
    EXPECT_LT(took, 900ms) << "it waited for the deadline, not the close";
}

TEST_F(Connection, LingerEndsAtItsDeadlineWhileTheClientKeepsSending)
{
    cfg_.linger_timeout_ms = 200;
    open();
    std::atomic<bool> stop{false};
    std::jthread chatter{[&] {
        while (!stop) {
            boost::system::error_code ec;
            net::write(client_, net::buffer(std::string(100, 'x')), ec);
            if (ec) {
                return;
            }
            std::this_thread::sleep_for(5ms);
        }
    }};
    const auto start = clock_type::now();
    run([](connection& c) -> task<bool> {
        co_await c.linger();
        co_return true;
    }(*conn_));
    stop = true;
    const auto took = clock_type::now() - start;
    EXPECT_GE(took, 190ms);
    EXPECT_LT(took, 3s);
}

} // namespace
