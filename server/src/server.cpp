// The server's wiring: the pool, the io_context and its one thread, the listener, the timers that drive the
// statistics, the deadline sweep, signals and the drain.
#include <duet/cpu_allowance.hpp>
#include <duet/server/data_file.hpp>
#include <duet/server/listener.hpp>
#include <duet/server/server.hpp>
#include <duet/server/server_state.hpp>
#include <duet/server/slack_timer.hpp>
#include <duet/server/stats.hpp>
#include <duet/server/upstream.hpp>
#include <duet/version.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <fmt/format.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include <sys/resource.h>

#include <algorithm>
#include <csignal>

namespace duet::server {

namespace net = boost::asio;
using net::ip::tcp;

namespace {

unsigned worker_count(const duet::config& cfg, const cpu_allowance& cpus)
{
    return cfg.pool.workers > 0 ? static_cast<unsigned>(cfg.pool.workers) : cpus.usable;
}

// Raises this process's soft RLIMIT_NOFILE to the hard limit, as nginx's worker_rlimit_nofile does: every
// connection is a descriptor, and the soft default (often 1024) is far below what one event loop can serve.
// Returns a line for the start-up log.
std::string raise_descriptor_limit()
{
    rlimit lim{};
    if (getrlimit(RLIMIT_NOFILE, &lim) != 0) {
        return "descriptor limit unknown";
    }
    auto before = lim.rlim_cur;
    if (lim.rlim_cur < lim.rlim_max) {
        lim.rlim_cur = lim.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &lim) != 0) {
            return fmt::format("descriptor limit {} (raising it to {} failed)", before, lim.rlim_max);
        }
        return fmt::format("descriptor limit raised from {} to {}", before, lim.rlim_cur);
    }
    return fmt::format("descriptor limit {}", before);
}

pool_placement placement(const duet::config& cfg)
{
    return {cfg.pool.pin_workers, static_cast<int>(cfg.pool.nice),
            std::chrono::microseconds{cfg.pool.spin_us}};
}

// One line on where the workers ended up, when placement was asked for: pinning and nice are best effort.
void log_placement(const duet::config& cfg, const worker_pool& pool)
{
    if (!cfg.pool.pin_workers && cfg.pool.nice == 0) {
        return;
    }
    std::string where;
    for (const auto& w : pool.workers()) {
        where += fmt::format(
            "{}{} on {} nice {}", where.empty() ? "" : ", ", w.ident.name,
            w.pinned_cpu >= 0 ? "cpu " + std::to_string(w.pinned_cpu) : std::string{"any cpu"}, w.nice);
    }
    spdlog::info("worker placement (pool.pin_workers={}, pool.nice={}): {}", cfg.pool.pin_workers,
                 cfg.pool.nice, where);
}

tcp::endpoint listen_endpoint(const duet::server_config& sc)
{
    boost::system::error_code ec;
    auto address = net::ip::make_address(sc.bind, ec);
    if (ec) {
        throw duet::config_error{"server.bind: '" + sc.bind + "' is not an IPv4 or IPv6 address"};
    }
    return {address, static_cast<std::uint16_t>(sc.port)};
}

void log_exception(const char* what, const std::exception_ptr& e)
{
    if (!e) {
        return;
    }
    try {
        std::rethrow_exception(e);
    } catch (const std::exception& ex) {
        spdlog::critical("{} failed: {}", what, ex.what());
    } catch (...) {
        spdlog::critical("{} failed with an unknown exception", what);
    }
}

} // namespace

// Member order is lifetime order: the state that session frames refer to is declared before io_context, whose
// destructor destroys any frames still suspended; the pool is stopped first of all, in ~impl.
struct server::impl
{
    explicit impl(duet::config c)
        : fd_limit{raise_descriptor_limit()}, cfg{std::move(c)}, cpus{detect_cpu_allowance()},
          pool{worker_count(cfg, cpus), static_cast<std::size_t>(cfg.pool.queue_limit), placement(cfg)},
          blocking{static_cast<unsigned>(cfg.io.blocking_threads),
                   static_cast<std::size_t>(cfg.io.blocking_queue_limit), pool_placement{}, "duet-b"},
          file{cfg.io}, st{cfg, pool, cpus, file.size()}, acceptor{ioc}, signals{ioc, SIGINT, SIGTERM}
    {
        st.wait_timer = &slack_timer::of(ioc, std::chrono::microseconds{cfg.server.timer_slack_us});
        st.blocking = &blocking;
        st.blocking_stop = blocking_stop.get_token();
        st.file = &file;
        listen_on(acceptor, listen_endpoint(cfg.server), static_cast<int>(cfg.server.backlog));
        st.upstream = &upstream_pool::of(ioc, resolve_upstream(cfg.upstream.url, acceptor.local_endpoint()),
                                         cfg.upstream);
        if (cfg.io.file_model == "auto") {
            file_ring = uring_file::open(ioc, file.fd(), file_model_note);
            st.file_ring = file_ring.get();
        } else {
            file_model_note = "io.file_model is threads";
        }
        if (cfg.log.access) {
            st.access_log = spdlog::get("access");
            if (!st.access_log) {
                st.access_log = spdlog::stdout_logger_mt("access");
                st.access_log->set_pattern("%Y-%m-%dT%H:%M:%S.%e %v");
            }
        }
    }

    ~impl() { stop_pools(); }

    // Workers finish their job and exit; a blocking thread's sleep ends at once, and its call within its
    // connect's and its exchange's deadlines (upstream.timeout_ms each).
    void stop_pools()
    {
        blocking_stop.request_stop();
        blocking.stop();
        pool.stop();
    }

    impl(const impl&) = delete;
    impl& operator=(const impl&) = delete;

    void on_signal(const boost::system::error_code& ec, int signo)
    {
        if (ec) {
            return; // cancelled at the end of run()
        }
        if (!st.draining) {
            spdlog::info(
                "signal {}: draining (new connections refused, in-flight requests finish, up to {} ms)",
                signo, cfg.server.drain_timeout_ms);
            begin_drain();
            signals.async_wait([this](auto e, int s) { on_signal(e, s); });
            return;
        }
        spdlog::warn("signal {} during the drain: exiting now with {} connection(s) open", signo,
                     st.open_connections);
        ioc.stop();
    }

    void begin_drain()
    {
        if (st.draining) {
            return;
        }
        st.draining = true;
        st.feed.close();                   // event-stream subscribers end their streams
        boost::system::error_code ignored; // closing an acceptor that is already closed is harmless
        acceptor.close(ignored);
        // Idle keep-alive connections have no request to finish: close them now. Busy ones close after their
        // response, which carries Connection: close.
        st.connections.for_each([&](connection_slot& c) {
            if (c.idle) {
                c.socket.cancel(ignored);
            }
        });
        net::co_spawn(ioc, finish_drain(), [](const std::exception_ptr& e) { log_exception("drain", e); });
    }

    task<void> finish_drain()
    {
        io_timer waiter{ioc, std::chrono::milliseconds{cfg.server.drain_timeout_ms}};
        if (st.open_connections > 0) {
            st.drain_waiter = &waiter;
            co_await waiter.async_wait(net::as_tuple(use_task)); // cancelled by the last connection
            st.drain_waiter = nullptr;
        }
        if (st.open_connections > 0) {
            spdlog::warn("drain timeout after {} ms: cutting {} connection(s) still open",
                         cfg.server.drain_timeout_ms, st.open_connections);
        } else {
            spdlog::info("drained: every in-flight request completed");
        }
        boost::system::error_code ignored; // nothing to cancel is fine
        signals.cancel(ignored);
        ioc.stop();
    }

    // The connections' deadlines (see connection_slot): one timer for all of them. A deadline is kept within
    // one period of the sweep, a tenth of the shortest timeout and at most 100 ms.
    task<void> deadline_sweep()
    {
        const auto& sc = cfg.server;
        const auto shortest =
            std::min({sc.idle_timeout_ms, sc.header_timeout_ms, sc.write_timeout_ms,
                      sc.linger_timeout_ms > 0 ? sc.linger_timeout_ms : sc.idle_timeout_ms});
        const std::chrono::milliseconds period{std::clamp<std::int64_t>(shortest / 10, 1, 100)};
        io_timer timer{ioc};
        for (;;) {
            timer.expires_after(period);
            if (auto [ec] = co_await timer.async_wait(net::as_tuple(use_task)); ec) {
                co_return;
            }
            const auto now = coarse_clock::now();
            // A passed deadline stays armed until its session clears it: an operation that completed just
            // before a cancel (which then found nothing pending) is followed by another, cancelled next time.
            st.connections.for_each_due(now, [](connection_slot& c) {
                c.expired = true;
                boost::system::error_code ignored; // a socket with nothing pending has nothing to cancel
                c.socket.cancel(ignored);
            });
        }
    }

    // The event-loop probe: a timer due every interval; how late it fires is how long the loop was busy with
    // something else. Recorded as lag; a lag over the threshold is a stall.
    task<void> probe_loop()
    {
        const auto interval = std::chrono::milliseconds{cfg.stats.loop_probe_interval_ms};
        io_timer timer{ioc};
        auto due = std::chrono::steady_clock::now() + interval;
        for (;;) {
            timer.expires_at(due);
            if (auto [ec] = co_await timer.async_wait(net::as_tuple(use_task)); ec) {
                co_return;
            }
            auto now = std::chrono::steady_clock::now();
            st.stats.record_loop_lag(now - due, now);
            if (st.trace.enabled()) {
                st.trace.record(trace_counters{
                    .at = now,
                    .in_flight = static_cast<std::uint32_t>(st.stats.in_flight()),
                    .queued = static_cast<std::uint32_t>(st.pool.queued()),
                    .busy = st.pool.busy(),
                    .lag_us = static_cast<std::uint32_t>(
                        std::chrono::duration_cast<std::chrono::microseconds>(now - due).count())});
            }
            due = now + interval;
        }
    }

    // CPU per core, process and thread, read from /proc on a timer: never per request.
    task<void> sample_loop()
    {
        io_timer timer{ioc};
        for (;;) {
            st.stats.cpu.sample();
            timer.expires_after(std::chrono::milliseconds{cfg.stats.sample_interval_ms});
            if (auto [ec] = co_await timer.async_wait(net::as_tuple(use_task)); ec) {
                co_return;
            }
        }
    }

    // One /stats snapshot per interval for every /stats/stream subscriber, built once and shared; none when
    // nobody listens.
    task<void> publish_loop()
    {
        io_timer timer{ioc};
        for (;;) {
            timer.expires_after(std::chrono::milliseconds{cfg.stats.stream_interval_ms});
            if (auto [ec] = co_await timer.async_wait(net::as_tuple(use_task)); ec) {
                co_return;
            }
            if (st.stats.stream_subscribers > 0 && !st.feed.closed()) {
                st.feed.publish(stats_event(st));
            }
        }
    }

    std::string fd_limit; // what raise_descriptor_limit did, for the start-up log
    duet::config cfg;
    cpu_allowance cpus;
    worker_pool pool;
    worker_pool blocking;           // mode=threads: duet-b0, …
    std::stop_source blocking_stop; // ends the blocking threads' sleeps when the server stops
    data_file file;                 // /io/file's
    server_state st;
    // One thread runs it and does all its socket I/O; the workers and request_stop only post to it (a signal
    // reaches it through Asio's pipe). So the hint keeps the scheduler's lock, which those posts need, and
    // drops each socket's own lock.
    net::io_context ioc{BOOST_ASIO_CONCURRENCY_HINT_UNSAFE_IO};
    tcp_acceptor acceptor;
    net::signal_set signals;
    std::unique_ptr<uring_file> file_ring; // null: /io/file reads on the blocking threads
    std::string file_model_note;           // why not io_uring, when it is not
};

server::server(duet::config cfg) : impl_{std::make_unique<impl>(std::move(cfg))} {}

server::~server() = default;

std::uint16_t server::port() const
{
    return impl_->acceptor.local_endpoint().port();
}

unsigned server::workers() const
{
    return impl_->pool.size();
}

void server::run()
{
    auto& m = *impl_;
    set_current_thread_name("duet-io");
    m.st.io_thread = thread_ident::current();
    net::co_spawn(m.ioc, run_listener(m.acceptor, m.st),
                  [](const std::exception_ptr& e) { log_exception("accept loop", e); });
    m.signals.async_wait([&m](auto ec, int signo) { m.on_signal(ec, signo); });
    auto log_failure = [](const char* what) {
        return [what](const std::exception_ptr& e) { log_exception(what, e); };
    };
    net::co_spawn(m.ioc, m.deadline_sweep(), log_failure("deadline sweep"));
    net::co_spawn(m.ioc, m.probe_loop(), log_failure("event-loop probe"));
    net::co_spawn(m.ioc, m.sample_loop(), log_failure("CPU sampler"));
    net::co_spawn(m.ioc, m.publish_loop(), log_failure("stats stream"));

    auto ep = m.acceptor.local_endpoint();
    spdlog::info("duet-server {} listening on {}:{} (1 I/O thread, {} worker{}; CPUs: {}; {})", duet::version,
                 ep.address().to_string(), ep.port(), m.pool.size(), m.pool.size() == 1 ? "" : "s",
                 m.cpus.describe(), m.fd_limit);
    log_placement(m.cfg, m.pool);
    spdlog::info("real I/O: /io/call calls {} ({} connections at most); /io/file reads {} through {}; "
                 "mode=threads on {} blocking thread{}",
                 m.st.upstream->target().url, m.cfg.upstream.max_connections, m.file.description(),
                 m.file_ring ? std::string{"io_uring on the I/O thread"}
                             : "the blocking threads (" + m.file_model_note + ")",
                 m.blocking.size(), m.blocking.size() == 1 ? "" : "s");
    m.ioc.run();
    m.stop_pools();
    spdlog::info("duet-server stopped");
}

void server::request_stop()
{
    net::post(impl_->ioc, [m = impl_.get()] { m->begin_drain(); });
}

} // namespace duet::server
