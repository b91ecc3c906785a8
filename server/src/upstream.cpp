// /io/call's upstream: upstream.url parsed and resolved, the I/O thread's pool of keep-alive connections
// (Beast's client side), and the blocking call of mode=threads.
#include <duet/server/cpu_meter.hpp>
#include <duet/server/upstream.hpp>
#include <duet/version.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/asio/error.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <charconv>
#include <tuple>
#include <utility>

namespace duet::server {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using net::ip::tcp;
using std::chrono::steady_clock;

namespace {

[[noreturn]] void bad_url(std::string_view url, std::string_view why)
{
    std::string msg = "upstream.url: '";
    msg += url;
    msg += "' ";
    msg += why;
    throw duet::config_error{msg};
}

// What a failed network operation means for the call.
call_error classify(const boost::system::error_code& ec)
{
    if (ec == beast::error::timeout) {
        return call_error::timeout;
    }
    if (ec == net::error::operation_aborted) {
        return call_error::cancelled;
    }
    if (ec == http::error::end_of_stream || ec == http::error::partial_message) {
        return call_error::unreachable; // closed before the answer was whole
    }
    if (ec.category() == http::make_error_code(http::error::need_more).category()) {
        return call_error::bad_response; // not HTTP, or over a limit
    }
    return call_error::unreachable;
}

// A kept-alive connection the upstream closed meanwhile fails at once, before any of the answer: the call is
// then made again on a new connection, as browsers and HTTP libraries do for an idempotent GET.
bool stale(const boost::system::error_code& ec)
{
    return ec == http::error::end_of_stream || ec == net::error::eof || ec == net::error::connection_reset ||
           ec == net::error::broken_pipe;
}

http::request<http::empty_body> call_request(const upstream_target& t, std::int64_t ms, std::string_view id)
{
    std::string target = t.path;
    target += "?ms=";
    target += std::to_string(ms);
    http::request<http::empty_body> req{http::verb::get, target, 11};
    req.set(http::field::host, t.host);
    req.set(http::field::user_agent, std::string{"duet/"} + std::string{duet::version});
    if (!id.empty()) {
        req.set("X-Request-Id", id); // the upstream's report and trace then name the request that called
    }
    return req;
}

void limit(http::response_parser<http::string_body>& p, std::size_t max_bytes)
{
    p.header_limit(static_cast<std::uint32_t>(std::min<std::size_t>(max_bytes, UINT32_MAX)));
    p.body_limit(max_bytes);
}

// What an answer that was read whole means: its status, and whether its connection can be used again.
void take_answer(call_outcome& out, const http::response<http::string_body>& res)
{
    out.upstream_status = res.result_int();
    if (out.upstream_status / 100 != 2) {
        out.error = call_error::bad_status;
    }
}

} // namespace

std::string_view to_string(call_error e)
{
    static constexpr std::array<std::string_view, call_error_count> names{
        "ok", "unreachable", "timeout", "bad_status", "bad_response", "saturated", "cancelled"};
    return names.at(static_cast<std::size_t>(e));
}

upstream_target resolve_upstream(std::string_view url, const tcp::endpoint& self)
{
    if (url == "self") {
        auto address = self.address();
        if (address.is_unspecified()) { // 0.0.0.0 or ::, which serve loopback too
            address = address.is_v4() ? net::ip::address{net::ip::address_v4::loopback()}
                                      : net::ip::address{net::ip::address_v6::loopback()};
        }
        tcp::endpoint ep{address, self.port()};
        auto host = address.is_v6() ? "[" + address.to_string() + "]" : address.to_string();
        host += ":" + std::to_string(self.port());
        upstream_target t{
            .url = "http://" + host + "/io/sleep", .host = host, .path = "/io/sleep", .addresses = {}};
        t.addresses.push_back(ep);
        return t;
    }
    constexpr std::string_view scheme = "http://";
    if (!url.starts_with(scheme)) {
        bad_url(url, "must be self or start with http:// (no TLS)");
    }
    auto rest = url.substr(scheme.size());
    auto slash = rest.find('/');
    if (slash == std::string_view::npos) {
        bad_url(url, "has no path: write http://HOST:PORT/PATH");
    }
    auto authority = rest.substr(0, slash);
    auto path = rest.substr(slash);
    const bool path_ok = std::all_of(path.begin(), path.end(), [](char c) {
        return static_cast<unsigned char>(c) > 0x20 && static_cast<unsigned char>(c) < 0x7f && c != '?' &&
               c != '#';
    });
    if (!path_ok) {
        bad_url(url, "has a query, a fragment or a character a request line cannot carry in its path");
    }
    std::string_view host = authority;
    std::string_view port_text = "80";
    if (authority.starts_with('[')) { // [IPv6]:port
        auto close = authority.find(']');
        if (close == std::string_view::npos) {
            bad_url(url, "has an unclosed '['");
        }
        host = authority.substr(1, close - 1);
        auto after = authority.substr(close + 1);
        if (!after.empty()) {
            if (!after.starts_with(':')) {
                bad_url(url, "has something other than :PORT after ']'");
            }
            port_text = after.substr(1);
        }
    } else if (auto colon = authority.rfind(':'); colon != std::string_view::npos) {
        host = authority.substr(0, colon);
        port_text = authority.substr(colon + 1);
    }
    unsigned port = 0;
    auto [end, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
    if (host.empty() || ec != std::errc{} || end != port_text.data() + port_text.size() || port == 0 ||
        port > 65535 || authority.find('@') != std::string_view::npos) {
        bad_url(url, "needs a host and a port from 1 to 65535 (and no user name)");
    }
    upstream_target t{
        .url = std::string{url}, .host = std::string{authority}, .path = std::string{path}, .addresses = {}};
    // Resolved once, at start: a blocking lookup then costs nothing later, and a call never waits for DNS.
    net::io_context ctx;
    tcp::resolver resolver{ctx};
    boost::system::error_code rec;
    auto results =
        resolver.resolve(std::string{host}, std::string{port_text}, tcp::resolver::numeric_service, rec);
    if (rec) {
        bad_url(url, "names a host that does not resolve: " + rec.message());
    }
    for (const auto& r : results) {
        if (std::find(t.addresses.begin(), t.addresses.end(), r.endpoint()) == t.addresses.end()) {
            t.addresses.push_back(r.endpoint());
        }
    }
    if (t.addresses.empty()) {
        bad_url(url, "names a host with no address");
    }
    return t;
}

http_error call_http_error(const call_outcome& c, const upstream_target& t, const duet::upstream_config& cfg)
{
    namespace http = boost::beast::http;
    switch (c.error) {
    case call_error::timeout:
        return {.status = http::status::gateway_timeout,
                .code = "upstream_timeout",
                .message = "the upstream " + t.url + " did not connect or answer within upstream.timeout_ms",
                .limit = cfg.timeout_ms};
    case call_error::bad_status:
        return {.status = http::status::bad_gateway,
                .code = "upstream_status",
                .message = "the upstream " + t.url + " answered " + std::to_string(c.upstream_status),
                .upstream_status = c.upstream_status};
    case call_error::bad_response:
        return {.status = http::status::bad_gateway,
                .code = "upstream_bad_response",
                .message = "the upstream " + t.url +
                           " sent an answer that is not HTTP/1.1 or is larger than " +
                           "upstream.max_response_bytes: " + c.detail,
                .limit = cfg.max_response_bytes};
    case call_error::saturated:
        return {.status = http::status::service_unavailable,
                .code = "upstream_saturated",
                .message =
                    "as many calls as upstream.queue_limit already wait for a connection to the upstream",
                .limit = cfg.queue_limit,
                .retry_after_s = 1};
    case call_error::cancelled:
        return {.status = http::status::service_unavailable,
                .code = "upstream_cancelled",
                .message = "the call was cancelled (the client went away or the server is stopping)"};
    case call_error::none:
    case call_error::unreachable:
        break;
    }
    return {.status = http::status::bad_gateway,
            .code = "upstream_unreachable",
            .message = "the upstream " + t.url + " could not be reached: " + c.detail};
}

// ---- The I/O thread's pool -------------------------------------------------------------------------------

// A call waiting for a free connection: a timer set to its deadline, cancelled early when a connection (or
// the right to open one) is handed to it.
struct upstream_pool::waiter
{
    waiter(upstream_pool& p, steady_clock::time_point deadline) : pool{p}, timer{p.ex_, deadline} {}
    waiter(const waiter&) = delete;
    waiter& operator=(const waiter&) = delete;
    ~waiter()
    {
        if (queued) {
            // Waits end in the order they began (one deadline each, set in order): nearly always the front.
            if (pool.waiters_.front() == this) {
                pool.waiters_.pop_front();
            } else {
                std::erase(pool.waiters_, this);
            }
        }
        if (conn) {
            pool.give_back(std::move(conn));
        } else if (may_open) {
            pool.closed_one();
        }
    }

    upstream_pool& pool;
    io_timer timer;
    std::unique_ptr<connection> conn; ///< handed over by give_back
    bool may_open = false;            ///< handed over by closed_one: a place to open a connection in
    bool queued = true;
};

// A connection in use by one call. Given back when the call ends cleanly (keep), closed otherwise: a call
// cut short leaves the connection in an unknown state.
class upstream_pool::lease
{
public:
    lease() = default;
    lease(upstream_pool* p, std::unique_ptr<connection> c) : pool_{p}, conn_{std::move(c)} {}
    lease(lease&& o) noexcept : pool_{o.pool_}, conn_{std::move(o.conn_)} {}
    lease& operator=(lease&& o) noexcept
    {
        if (this != &o) {
            discard();
            pool_ = o.pool_;
            conn_ = std::move(o.conn_);
        }
        return *this;
    }
    ~lease() { discard(); }

    explicit operator bool() const noexcept { return conn_ != nullptr; }
    connection* operator->() const noexcept { return conn_.get(); }
    connection& operator*() const noexcept { return *conn_; }

    void keep()
    {
        if (conn_) {
            pool_->give_back(std::move(conn_));
        }
    }
    void discard()
    {
        if (conn_) {
            boost::system::error_code ignored; // closing a socket that failed is fine either way
            conn_->stream.socket().close(ignored);
            conn_.reset();
            pool_->closed_one();
        }
    }

private:
    upstream_pool* pool_ = nullptr;
    std::unique_ptr<connection> conn_;
};

upstream_pool::upstream_pool(net::execution_context& owner, io_executor ex, upstream_target target,
                             const duet::upstream_config& cfg)
    : service{owner}, ex_{std::move(ex)}, target_{std::move(target)},
      max_connections_{static_cast<std::size_t>(cfg.max_connections)},
      queue_limit_{static_cast<std::size_t>(cfg.queue_limit)}, timeout_{cfg.timeout_ms},
      max_response_bytes_{static_cast<std::size_t>(cfg.max_response_bytes)}
{
    idle_.reserve(max_connections_);
}

upstream_pool::~upstream_pool() = default;

void upstream_pool::shutdown()
{
    // Before the io_context destroys the calls still suspended (whose leases and waiters come back here):
    // from now on a connection given back is closed, and nobody waits.
    shut_down_ = true;
    open_ -= idle_.size();
    idle_.clear();
}

void upstream_pool::give_back(std::unique_ptr<connection> c)
{
    if (shut_down_) {
        --open_;
        return;
    }
    if (!waiters_.empty()) {
        waiter* w = waiters_.front();
        waiters_.pop_front();
        w->queued = false;
        w->conn = std::move(c);
        w->timer.cancel();
        return;
    }
    idle_.push_back(std::move(c));
}

void upstream_pool::closed_one()
{
    --open_;
    if (!shut_down_ && !waiters_.empty() && open_ < max_connections_) {
        waiter* w = waiters_.front();
        waiters_.pop_front();
        w->queued = false;
        w->may_open = true;
        ++open_;
        w->timer.cancel();
    }
}

task<upstream_pool::lease> upstream_pool::connect_new(call_outcome& out, lease place)
{
    // `place` holds the place in open_ that the caller took, as a parameter: a coroutine's parameters are
    // destroyed even when its body never runs, so a failed or abandoned connect always gives the place back.
    // A refused address is followed by the host's next one (an upstream on IPv4 only, named localhost, which
    // resolves to ::1 first); a deadline is not, since the next address would only wait as long again.
    boost::system::error_code ec;
    for (std::size_t tried = 0; tried < target_.addresses.size(); ++tried) {
        const auto& address = target_.addresses[next_address_++ % target_.addresses.size()];
        boost::system::error_code ignored; // closing a socket that never opened is fine
        place->stream.socket().close(ignored);
        place->stream.expires_after(timeout_);
        std::tie(ec) = co_await place->stream.async_connect(address, net::as_tuple(use_task));
        if (!ec || classify(ec) != call_error::unreachable) {
            break;
        }
    }
    if (ec) {
        out.error = classify(ec);
        out.detail = ec.message();
        co_return lease{};
    }
    boost::system::error_code ignored; // a request is written whole; Nagle could only delay it
    place->stream.socket().set_option(tcp::no_delay{true}, ignored);
    ++opened_total_;
    out.opened = true;
    co_return place;
}

// Whether a kept-alive connection is still open: the upstream may have closed it while it sat idle (its own
// idle timeout, a restart). One recv that does not wait: a FIN reads as 0, bytes nobody asked for as data.
bool upstream_pool::still_open(connection& c)
{
    char byte = 0;
    const auto n = ::recv(c.stream.socket().native_handle(), &byte, 1, MSG_PEEK | MSG_DONTWAIT);
    return n < 0 && errno == EAGAIN; // nothing to read, and no FIN: open (EWOULDBLOCK is EAGAIN here)
}

task<upstream_pool::lease> upstream_pool::acquire(call_outcome& out, bool fresh)
{
    if (shut_down_) {
        out.error = call_error::cancelled;
        co_return lease{};
    }
    while (!fresh && !idle_.empty()) {
        lease c{this, std::move(idle_.back())}; // the most recently used: the others may time out and close
        idle_.pop_back();
        if (still_open(*c)) {
            out.reused = true;
            co_return c;
        }
        // c closes it, and gives its place back
    }
    if (open_ < max_connections_) {
        ++open_;
        co_return co_await connect_new(out,
                                       lease{this, std::make_unique<connection>(ex_, max_response_bytes_)});
    }
    if (waiters_.size() >= queue_limit_) {
        out.error = call_error::saturated;
        co_return lease{};
    }
    waiter w{*this, steady_clock::now() + timeout_};
    waiters_.push_back(&w);
    auto [ec] = co_await w.timer.async_wait(net::as_tuple(use_task));
    if ((co_await net::this_coro::cancellation_state).cancelled() != net::cancellation_type::none) {
        // The client left. Whatever was handed over meanwhile goes on to the next in line (w's destructor).
        out.error = call_error::cancelled;
        co_return lease{};
    }
    if (w.conn) {
        out.reused = true;
        co_return lease{this, std::move(w.conn)};
    }
    if (w.may_open) {
        w.may_open = false; // the place is the lease's now
        co_return co_await connect_new(out,
                                       lease{this, std::make_unique<connection>(ex_, max_response_bytes_)});
    }
    out.error = ec == net::error::operation_aborted ? call_error::cancelled : call_error::timeout;
    if (out.error == call_error::timeout) {
        out.detail = "no connection to the upstream was free within upstream.timeout_ms";
    }
    co_return lease{};
}

task<call_outcome> upstream_pool::call(std::int64_t ms, std::string_view id)
{
    // A cancelled call (its client left) ends through its operations' errors, never by an exception thrown at
    // its next co_await: a place in the pool or a connection handed over must reach the code that gives it
    // back.
    co_await net::this_coro::throw_if_cancelled(false);
    call_outcome out;
    cpu_meter cpu; // paused across every wait: the CPU the call itself costs the I/O thread
    const auto start = out.began = steady_clock::now();
    const auto req = call_request(target_, ms, id);
    for (int attempt = 0; attempt < 2; ++attempt) {
        cpu.pause();
        auto c = co_await acquire(out, /*fresh=*/attempt > 0);
        cpu.resume();
        if (!c) {
            break;
        }
        c->stream.expires_after(timeout_);
        cpu.pause();
        auto [wec, written] = co_await http::async_write(c->stream, req, net::as_tuple(use_task));
        cpu.resume();
        http::response_parser<http::string_body> parser;
        limit(parser, max_response_bytes_);
        boost::system::error_code ec = wec;
        if (!ec) {
            cpu.pause();
            auto [rec, read] =
                co_await http::async_read(c->stream, c->buffer, parser, net::as_tuple(use_task));
            cpu.resume();
            ec = rec;
        }
        if (ec) {
            const bool retry = out.reused && attempt == 0 && !parser.got_some() && stale(ec);
            c.discard();
            if (retry) {
                out.reused = false;
                continue;
            }
            out.error = classify(ec);
            out.detail = ec.message();
            break;
        }
        take_answer(out, parser.get());
        if (parser.get().keep_alive() && c->buffer.size() == 0) {
            c.keep();
        }
        break;
    }
    // Counted once the call is over: a kept connection found closed, and the call made again on a new one,
    // was not a reuse.
    reused_total_ += out.reused ? 1 : 0;
    out.duration = steady_clock::now() - start;
    out.cpu = cpu.total();
    co_return out;
}

// ---- The blocking call ------------------------------------------------------------------------------------

namespace {

// A blocking socket as Beast's synchronous streams want it, so that http::write and http::read work on it:
// each read_some is one recv and each write_some one send, which sleep in the kernel until they can go on.
// One deadline bounds the whole exchange: before each, SO_RCVTIMEO or SO_SNDTIMEO is set to the time left, so
// an upstream that trickles its answer a byte at a time cannot hold the thread past it. (Asio's own
// synchronous operations would poll without a time limit instead.)
class blocking_socket
{
public:
    blocking_socket(int fd, steady_clock::time_point deadline) : fd_{fd}, deadline_{deadline} {}

    template <typename Buffers>
    std::size_t read_some(const Buffers& buffers, boost::system::error_code& ec)
    {
        return transfer(buffers, ec, SO_RCVTIMEO, [this](msghdr* m) { return ::recvmsg(fd_, m, 0); });
    }
    template <typename Buffers>
    std::size_t read_some(const Buffers& buffers)
    {
        boost::system::error_code ec;
        return or_throw(read_some(buffers, ec), ec);
    }
    template <typename Buffers>
    std::size_t write_some(const Buffers& buffers, boost::system::error_code& ec)
    {
        return transfer(buffers, ec, SO_SNDTIMEO,
                        [this](msghdr* m) { return ::sendmsg(fd_, m, MSG_NOSIGNAL); });
    }
    template <typename Buffers>
    std::size_t write_some(const Buffers& buffers)
    {
        boost::system::error_code ec;
        return or_throw(write_some(buffers, ec), ec);
    }

private:
    // The throwing forms, which Beast's stream concepts require and which the call itself never uses.
    static std::size_t or_throw(std::size_t n, const boost::system::error_code& ec)
    {
        if (ec) {
            throw boost::system::system_error{ec};
        }
        return n;
    }

    template <typename Buffers, typename Op>
    std::size_t transfer(const Buffers& buffers, boost::system::error_code& ec, int timeout_option, Op op)
    {
        const auto left =
            std::chrono::duration_cast<std::chrono::microseconds>(deadline_ - steady_clock::now());
        if (left.count() <= 0) {
            ec = beast::error::timeout;
            return 0;
        }
        timeval tv{.tv_sec = static_cast<time_t>(left.count() / 1000000),
                   .tv_usec = static_cast<suseconds_t>(left.count() % 1000000)};
        ::setsockopt(fd_, SOL_SOCKET, timeout_option, &tv, sizeof tv);
        std::array<iovec, 16> iov{};
        std::size_t count = 0;
        for (auto it = net::buffer_sequence_begin(buffers);
             it != net::buffer_sequence_end(buffers) && count < iov.size(); ++it) {
            net::const_buffer b{*it};
            iov[count++] = {const_cast<void*>(b.data()), b.size()};
        }
        msghdr m{};
        m.msg_iov = iov.data();
        m.msg_iovlen = count;
        for (;;) {
            auto n = op(&m);
            if (n > 0) {
                ec = {};
                return static_cast<std::size_t>(n);
            }
            if (n == 0) {
                ec = net::error::eof;
                return 0;
            }
            if (errno == EINTR) {
                continue;
            }
            ec = errno == EAGAIN // EWOULDBLOCK on Linux: SO_RCVTIMEO or SO_SNDTIMEO passed
                     ? boost::system::error_code{beast::error::timeout}
                     : boost::system::error_code{errno, boost::system::system_category()};
            return 0;
        }
    }

    int fd_;
    steady_clock::time_point deadline_;
};

// The connection each blocking thread keeps alive between its calls, as a thread-per-request server's
// client library would.
struct kept_connection
{
    kept_connection() = default;
    kept_connection(const kept_connection&) = delete;
    kept_connection& operator=(const kept_connection&) = delete;
    ~kept_connection() { close(); }
    void close()
    {
        if (fd >= 0) {
            ::close(fd);
            fd = -1;
        }
        buffer.clear();
    }
    int fd = -1;
    beast::flat_buffer buffer;
};

thread_local kept_connection kept;
std::atomic<std::size_t> next_blocking_address{0};

// One address: a new socket, its timeouts, and a connect that sleeps until the upstream answers or refuses.
boost::system::error_code connect_one(const tcp::endpoint& address, std::chrono::milliseconds timeout)
{
    int fd = ::socket(address.protocol().family(), SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        return {errno, boost::system::system_category()};
    }
    timeval tv{.tv_sec = static_cast<time_t>(timeout.count() / 1000),
               .tv_usec = static_cast<suseconds_t>(timeout.count() % 1000 * 1000)};
    // Linux applies SO_SNDTIMEO to connect too: past it, connect gives up with EINPROGRESS. (The thread
    // blocks the process's signals, so no EINTR interrupts it.)
    ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (::connect(fd, address.data(), static_cast<socklen_t>(address.size())) != 0) {
        auto ec = errno == EINPROGRESS || errno == EAGAIN
                      ? boost::system::error_code{beast::error::timeout}
                      : boost::system::error_code{errno, boost::system::system_category()};
        ::close(fd);
        return ec;
    }
    kept.fd = fd;
    return {};
}

// The host's addresses in turn, the next one after a refusal, as the loop's connect does.
boost::system::error_code connect_blocking(const upstream_target& t, std::chrono::milliseconds timeout)
{
    boost::system::error_code ec;
    for (std::size_t tried = 0; tried < t.addresses.size(); ++tried) {
        const auto& address =
            t.addresses[next_blocking_address.fetch_add(1, std::memory_order_relaxed) % t.addresses.size()];
        ec = connect_one(address, timeout);
        if (!ec || classify(ec) != call_error::unreachable) {
            break;
        }
    }
    return ec;
}

} // namespace

call_outcome blocking_call(const upstream_target& t, const duet::upstream_config& cfg, std::int64_t ms,
                           std::string_view id)
{
    call_outcome out;
    const auto start = out.began = steady_clock::now();
    const auto req = call_request(t, ms, id);
    const auto max_bytes = static_cast<std::size_t>(cfg.max_response_bytes);
    for (int attempt = 0; attempt < 2; ++attempt) {
        out.reused = kept.fd >= 0;
        if (!out.reused) {
            if (auto ec = connect_blocking(t, std::chrono::milliseconds{cfg.timeout_ms}); ec) {
                out.error = classify(ec);
                out.detail = ec.message();
                break;
            }
            out.opened = true;
        }
        blocking_socket socket{kept.fd, steady_clock::now() + std::chrono::milliseconds{cfg.timeout_ms}};
        boost::system::error_code ec;
        http::write(socket, req, ec);
        http::response_parser<http::string_body> parser;
        limit(parser, max_bytes);
        if (!ec) {
            http::read(socket, kept.buffer, parser, ec);
        }
        if (ec) {
            const bool retry = out.reused && attempt == 0 && !parser.got_some() && stale(ec);
            kept.close();
            if (retry) {
                continue;
            }
            out.error = classify(ec);
            out.detail = ec.message();
            break;
        }
        take_answer(out, parser.get());
        if (!parser.get().keep_alive() || kept.buffer.size() != 0) {
            kept.close();
        }
        break;
    }
    out.duration = steady_clock::now() - start;
    return out;
}

} // namespace duet::server
