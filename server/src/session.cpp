// One coroutine per connection, in the shape of Beast's do_session: read a request, route it, handle it
// (while watching whether the client leaves), send the response, record it once, loop while keep-alive holds.
// The fast paths live in connection and route_request.
#include <duet/server/connection.hpp>
#include <duet/server/request_handler.hpp>
#include <duet/server/server_state.hpp>
#include <duet/server/session.hpp>
#include <duet/server/stats.hpp>
#include <duet/server/trace.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/this_coro.hpp>
#include <spdlog/logger.h>

#include <chrono>
#include <memory>
#include <variant>

namespace duet::server {

namespace net = boost::asio;
using std::chrono::steady_clock;

namespace {

// nginx's code for a request whose client went away before the answer: logged and counted, never sent.
constexpr unsigned client_closed_request = 499;

// When a request's steps happened, kept in the session's frame while it runs (so: small).
struct request_times
{
    steady_clock::time_point received{};
    steady_clock::time_point dispatched{}; ///< its handler began (unset: a plain answer, or not recorded)
    steady_clock::time_point written{};    ///< an event stream's header was sent (unset: when recorded)
};

// A request's one record, whatever its end: its endpoint's statistics, the timeline, and the access log
// (which, as nginx's, also lists refused requests; "-" stands for a method or target that could not be read).
// `gone`: the client left before its answer (499), and `res` is what the handling left, if it ran.
void record(server_state& st, const request& req, const std::string& peer, std::size_t endpoint,
            std::uint64_t seq, const request_times& times, const response& res, bool gone = false)
{
    const auto now = steady_clock::now();
    const auto status = gone ? client_closed_request : res.status_code();
    st.stats.request_finished(endpoint, status, now - times.received, now);
    if (seq != 0) {
        auto& t = st.trace.next_request();
        t.seq = seq;
        t.endpoint = static_cast<std::uint16_t>(endpoint);
        t.status = static_cast<std::uint16_t>(status);
        t.began = times.received;
        t.dispatched = times.dispatched;
        t.sent = times.written == steady_clock::time_point{} ? now : times.written;
        if (res.server_timing && times.dispatched != steady_clock::time_point{}) {
            t.resumed = times.received + res.server_timing->total; // when the handler's result was back
        }
        t.id_size = copy_cut(t.id, res.request_id);
        t.id_cut = res.request_id.size() > t.id.size();
        const auto query = req.target.find('?');
        if (query != std::string::npos) {
            const auto text = std::string_view{req.target}.substr(query + 1);
            t.query_size = copy_cut(t.query, text);
            t.query_cut = text.size() > t.query.size();
        }
    }
    if (st.access_log) {
        const auto us = std::chrono::duration_cast<std::chrono::microseconds>(now - times.received).count();
        const auto bytes = gone || res.head_only ? 0 : res.body.size();
        const auto method = req.method_string();
        st.access_log->info("{} \"{} {} HTTP/{}.{}\" {} {} {}us", peer, method.empty() ? "-" : method,
                            req.target.empty() ? std::string_view{"-"} : std::string_view{req.target},
                            req.version / 10, req.version % 10, status, bytes, us);
    }
}

// /stats/stream, after its header: one server-sent event per snapshot until the client goes, the drain ends
// the feed, or a write misses its deadline (a subscriber that does not read is dropped, not buffered for).
// The handler reserved the subscriber's slot; this releases it.
task<close_reason> stream_events(connection& conn, server_state& st, bool header_written)
{
    conn.set_send_buffer(static_cast<int>(st.cfg.stats.stream_send_buffer_bytes));
    // The first event at once, so that a subscriber need not wait a whole interval for data; then only the
    // feed's messages published after it (the feed's latest may be from long ago, and older than this one).
    std::uint64_t seen = st.feed.sequence();
    event_feed::message msg =
        header_written ? std::make_shared<const std::string>(stats_event(st, true)) : event_feed::message{};
    close_reason reason = header_written ? close_reason::drain : close_reason::error;
    while (msg) {
        if (auto ec = co_await conn.send(net::buffer(*msg))) {
            reason = conn.reason_for(ec, close_reason::write_timeout);
            break;
        }
        msg = co_await st.feed.next(seen);
    }
    --st.stats.stream_subscribers;
    co_return reason;
}

// A request that could not be read whole: answered (best effort: the connection closes either way), counted
// under "other" (it never reached routing), and the connection lingers.
task<void> refuse(connection& conn, server_state& st, const request& req, const std::string& peer,
                  const http_error& e)
{
    const request_times times{.received = conn.received_at()};
    st.stats.request_started(st.stats.other());
    const auto res = refusal_response(st, e, req.version);
    co_await conn.send(res);
    record(st, req, peer, st.stats.other(), st.trace.next_seq(), times, res);
    co_await conn.linger();
}

task<void> run_session(tcp_socket socket, server_state& st, std::shared_ptr<client_watch> watch)
{
    // A cancelled wait (the client left) is an outcome the handlers look at, not an exception.
    co_await net::this_coro::throw_if_cancelled(false);
    connection conn{std::move(socket), st.cfg.server, st.connections, &st.draining, std::move(watch)};
    const auto peer = st.access_log ? conn.peer() : std::string{};
    request req; // its strings are reused from one request to the next
    close_reason reason = close_reason::client;
    for (;;) {
        auto read = co_await conn.read_request(req);
        if (const auto* why = std::get_if<close_reason>(&read)) {
            reason = *why;
            break;
        }
        if (const auto* refused = std::get_if<http_error>(&read)) {
            co_await refuse(conn, st, req, peer, *refused);
            reason = close_reason::bad_request;
            break;
        }

        request_times times{.received = conn.received_at()};
        auto routed = route_request(st, req, times.received);
        if (std::holds_alternative<handler_call>(routed.next)) { // a handler that takes time
            auto handling =
                call_handler(st, req, std::move(std::get<handler_call>(routed.next)), times.received);
            // The call now lives in handling's frame: its place takes the response, so that the frame every
            // waiting connection keeps holds one response, not two.
            auto& handled = routed.next.emplace<response>();
            if (routed.seq != 0) {
                times.dispatched = steady_clock::now();
            }
            if (!co_await conn.unless_client_leaves(std::move(handling), handled)) {
                record(st, req, peer, routed.endpoint, routed.seq, times, handled, true);
                reason = close_reason::client_gone;
                break;
            }
        }
        const auto& res = std::get<response>(routed.next);

        const auto write_ec = co_await conn.send(res);
        if (res.streams()) {
            times.written = steady_clock::now();
            reason = co_await stream_events(conn, st, !write_ec); // the stream ends its connection
        }
        record(st, req, peer, routed.endpoint, routed.seq, times, res);
        if (res.streams()) {
            break;
        }
        if (write_ec) {
            reason = conn.reason_for(write_ec, close_reason::write_timeout);
            break;
        }
        if (!res.keep_alive) {
            reason = st.draining ? close_reason::drain : close_reason::client;
            break;
        }
    }
    st.stats.connection_closed(reason);
    conn.shutdown();
}

// The session coroutine's completion: it carries the cancellation slot that the client watch emits on, and
// owns (with any read still pending) the watch the signal lives in.
struct session_done
{
    server_state* st;
    std::shared_ptr<client_watch> watch;

    using cancellation_slot_type = net::cancellation_slot;
    cancellation_slot_type get_cancellation_slot() const noexcept
    {
        return connection::cancellation_slot(*watch);
    }

    void operator()(const std::exception_ptr& e) const { st->session_ended(e); }
};

} // namespace

void start_session(tcp_socket socket, server_state& st)
{
    auto watch = connection::make_watch();
    auto ex = socket.get_executor();
    net::co_spawn(ex, run_session(std::move(socket), st, watch), session_done{&st, watch});
}

} // namespace duet::server
