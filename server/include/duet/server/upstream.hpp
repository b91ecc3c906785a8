#pragma once
// /io/call's upstream: where it is (upstream.url, resolved once), the pool of keep-alive connections the I/O
// thread calls it over, and the same call made the classic way, on a blocking socket, for mode=threads.

#include <duet/config.hpp>
#include <duet/server/http_error.hpp>
#include <duet/server/io.hpp>

#include <boost/asio/execution_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/basic_stream.hpp>
#include <boost/beast/core/flat_buffer.hpp>

#include <chrono>
#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace duet::server {

/// Where /io/call's calls go: parsed from upstream.url, its host resolved once at start (a call never waits
/// for a name lookup, which would block the loop or start a resolver thread).
struct upstream_target
{
    std::string url;                                       ///< as the server uses it ("self" written out)
    std::string host;                                      ///< the Host field's value
    std::string path;                                      ///< each call sends GET path?ms=N
    std::vector<boost::asio::ip::tcp::endpoint> addresses; ///< new connections take them in turn
};

/// Parses upstream.url, http://HOST[:PORT]/PATH, and resolves HOST; "self" is http://ADDRESS:PORT/io/sleep
/// on `self` (a wildcard bind address is called on loopback). Throws config_error naming upstream.url.
upstream_target resolve_upstream(std::string_view url, const boost::asio::ip::tcp::endpoint& self);

/// How one call ended.
enum class call_error : std::uint8_t {
    none,        ///< a 2xx answer
    unreachable, ///< refused, reset or closed before an answer (502)
    timeout, ///< a connect, the wait for a free connection, the write or the read missed its deadline (504)
    bad_status,   ///< an answer that is not 2xx (502, with its status)
    bad_response, ///< an answer that is not HTTP, or too big (502)
    saturated,    ///< upstream.queue_limit calls already waited for a connection (503)
    cancelled,    ///< the request's client went away
};
inline constexpr std::size_t call_error_count = 7;
std::string_view to_string(call_error e);

/// One call: how it ended, and what it took.
struct call_outcome
{
    call_error error = call_error::none;
    unsigned upstream_status = 0; ///< the status of the answer, when one came
    bool opened = false;          ///< it opened a new connection
    bool reused = false;          ///< it used a kept-alive one
    std::chrono::steady_clock::time_point began{};
    std::chrono::nanoseconds duration{};
    std::chrono::nanoseconds cpu{}; ///< the I/O thread's CPU time for it (0 on a blocking thread: its job's)
    std::string detail{};           ///< for an error: what the network said
};

/// The refusal a failed call gives its request: 502, 503 or 504 with a stable code.
http_error call_http_error(const call_outcome& c, const upstream_target& t, const duet::upstream_config& cfg);

/// The connections /io/call calls its upstream over, on the I/O thread: at most upstream.max_connections
/// open, kept alive and reused across requests; a call that finds none free waits for one, in order, up to
/// upstream.queue_limit calls and upstream.timeout_ms. Connect, write and read each have that deadline too
/// (Beast's basic_stream). An execution-context service, so that the io_context's shutdown destroys the
/// calls still suspended before the pool they refer to. I/O thread only.
class upstream_pool : public boost::asio::execution_context::service
{
public:
    using key_type = upstream_pool;

    /// The io_context's pool, made once, at start (a second call throws service_already_exists).
    static upstream_pool& of(boost::asio::io_context& ioc, upstream_target target,
                             const duet::upstream_config& cfg)
    {
        return boost::asio::make_service<upstream_pool>(ioc, ioc.get_executor(), std::move(target), cfg);
    }

    upstream_pool(boost::asio::execution_context& owner, io_executor ex, upstream_target target,
                  const duet::upstream_config& cfg);
    ~upstream_pool() override;

    /// GET path?ms=ms on a pooled connection; `id` goes out as X-Request-Id. Never throws for the network's
    /// sake: every failure is an outcome. A kept-alive connection the upstream has closed is not reused; one
    /// that fails before any answer (closed just then) is retried once, on a new connection. The connect, the
    /// wait for a connection and the exchange each have upstream.timeout_ms.
    task<call_outcome> call(std::int64_t ms, std::string_view id);

    const upstream_target& target() const noexcept { return target_; }
    std::size_t open() const noexcept { return open_; }
    std::size_t idle() const noexcept { return idle_.size(); }
    std::size_t waiting() const noexcept { return waiters_.size(); }
    std::size_t max_connections() const noexcept { return max_connections_; }
    std::uint64_t opened_total() const noexcept { return opened_total_; }
    std::uint64_t reused_total() const noexcept { return reused_total_; }

private:
    using stream_type =
        boost::beast::basic_stream<boost::asio::ip::tcp, io_executor, boost::beast::unlimited_rate_policy>;
    struct connection
    {
        connection(io_executor ex, std::size_t max_bytes) : stream{std::move(ex)}, buffer{max_bytes} {}
        stream_type stream;
        boost::beast::flat_buffer buffer;
    };
    struct waiter;
    class lease;

    task<lease> acquire(call_outcome& out, bool fresh);
    task<lease> connect_new(call_outcome& out, lease place);
    static bool still_open(connection& c);
    void give_back(std::unique_ptr<connection> c);
    void closed_one();
    void shutdown() override;

    io_executor ex_;
    upstream_target target_;
    std::size_t max_connections_;
    std::size_t queue_limit_;
    std::chrono::milliseconds timeout_;
    std::size_t max_response_bytes_;
    std::size_t next_address_ = 0;
    std::size_t open_ = 0; ///< connecting, busy or idle
    std::vector<std::unique_ptr<connection>> idle_;
    std::deque<waiter*> waiters_;
    std::uint64_t opened_total_ = 0;
    std::uint64_t reused_total_ = 0;
    bool shut_down_ = false;
};

/// The same call the classic way, for mode=threads: on a blocking socket, on the calling thread, which
/// sleeps in connect, send and recv. The connect has upstream.timeout_ms (SO_SNDTIMEO), and so has the
/// exchange as a whole (each send and recv under the time left). Each thread keeps one connection alive
/// between its calls.
call_outcome blocking_call(const upstream_target& t, const duet::upstream_config& cfg, std::int64_t ms,
                           std::string_view id);

} // namespace duet::server
