// The load engine: connection coroutines on each client thread's io_context, wrk's model, and the coordinator
// that snapshots and merges their tallies.
#include <duet/client/engine.hpp>

#include <duet/client/connection.hpp>

#include <duet/thread_info.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/error.hpp>
#include <fmt/chrono.h>
#include <fmt/format.h>

#include <sys/resource.h>

#include <algorithm>
#include <array>
#include <condition_variable>
#include <future>
#include <mutex>
#include <optional>
#include <string_view>
#include <thread>

namespace duet::client {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using net::ip::tcp;
using std::chrono::nanoseconds;
using std::chrono::steady_clock;
using namespace std::chrono_literals;

namespace {

// A request sent later than this after its intended time counts as late (open loop).
constexpr auto late_threshold = 1ms;

// After a failed connect, wait this long before the next try, so that a refusing server is not hammered.
constexpr auto reconnect_pause = 10ms;

// How often a thread checks its connections' deadlines: a tenth of the shorter timeout, 1 to 100 ms. That is
// only how soon a stuck operation is given up: a response in after its deadline counts as a timeout anyway.
constexpr int sweeps_per_timeout = 10;

std::chrono::nanoseconds process_cpu()
{
    rusage u{};
    getrusage(RUSAGE_SELF, &u);
    auto tv = [](const timeval& t) {
        return std::chrono::seconds{t.tv_sec} + std::chrono::microseconds{t.tv_usec};
    };
    return tv(u.ru_utime) + tv(u.ru_stime);
}

std::string iso_now()
{
    auto t = std::chrono::system_clock::now();
    return fmt::format("{:%Y-%m-%dT%H:%M:%S}Z", fmt::gmtime(std::chrono::system_clock::to_time_t(t)));
}

// One second of one thread's results, kept until the coordinator has collected it.
struct second_slot
{
    std::int64_t second = -1;
    std::uint64_t requests = 0;
    std::uint64_t errors = 0;
    histogram latency;
};

// What the coordinator takes from a thread once a second.
struct snapshot
{
    std::uint64_t requests = 0;
    std::uint64_t errors = 0;
    histogram latency;
    std::optional<second_slot> second;
};

} // namespace

struct load_engine::impl
{
    // One client thread: its io_context, its connections' coroutines and its own tally. Only that thread
    // touches the tally while the run goes on; the coordinator reads it through posted snapshots, then after
    // the join.
    struct client_thread
    {
        explicit client_thread(unsigned i) : name{"duet-load-" + std::to_string(i)} {}

        std::string name;
        // Only this thread touches its sockets: their reactor operations need no locks (the coordinator's
        // posts still take the scheduler's, and timers the reactor's).
        net::io_context ioc{BOOST_ASIO_CONCURRENCY_HINT_UNSAFE_IO};
        tally counts;
        std::array<second_slot, 4> seconds;
        std::uint64_t budget = UINT64_MAX; // -n: requests this thread may still send
        bool stopping = false;
        // Live connections and their pacers: for the sweep, and so that a stop ends what they wait for.
        std::vector<std::pair<connection*, io_timer*>> live;
        io_timer sweeper{ioc.get_executor()};
        unsigned connections = 0;
        unsigned running = 0; // connections still looping
        std::chrono::nanoseconds cpu{};
        std::thread thread;
    };

    explicit impl(run_options o) : opts{std::move(o)}, request{opts.request_bytes()} { opts.validate(); }

    // Resolving blocks: done once, before the run.
    void resolve()
    {
        net::io_context ioc;
        tcp::resolver resolver{ioc};
        boost::system::error_code ec;
        auto results = resolver.resolve(opts.target.host, std::to_string(opts.target.port), ec);
        if (ec || results.empty()) {
            throw unreachable_error{"cannot resolve " + opts.target.host + ": " + ec.message()};
        }
        for (const auto& r : results) {
            endpoints.push_back(r.endpoint());
        }
    }

    bool measuring(steady_clock::time_point t) const { return t >= t0 && (!deadline || t <= *deadline); }

    std::int64_t second_of(steady_clock::time_point t) const { return (t - t0) / 1s; }

    second_slot& slot(client_thread& th, std::int64_t s)
    {
        auto& slot = th.seconds[static_cast<std::size_t>(s) % th.seconds.size()];
        if (slot.second != s) {
            slot.second = s;
            slot.requests = slot.errors = 0;
            slot.latency.reset();
        }
        return slot;
    }

    void count_error(client_thread& th, std::uint64_t error_counts::*which, steady_clock::time_point now)
    {
        if (!th.stopping && measuring(now)) {
            ++(th.counts.errors.*which);
            ++slot(th, second_of(now)).errors;
        }
    }

    // One connection: connect, then request after request until the run ends, reconnecting when the server
    // closes. `index` is its number among all connections, for the open-loop schedule.
    task<void> run_connection(client_thread& th, unsigned index)
    {
        connection conn{co_await net::this_coro::executor};
        io_timer pacer{th.ioc.get_executor()};
        th.live.emplace_back(&conn, &pacer);
        struct unregister
        {
            client_thread& th;
            connection* c;
            ~unregister()
            {
                std::erase_if(th.live, [this](const auto& l) { return l.first == c; });
            }
        } registration{th, &conn};
        std::string body; // the response's body, for the server's view; its capacity is kept
        bool connected = false;
        bool ever_connected = false;
        std::uint64_t served_here = 0; // requests answered on the current connection

        // Open loop: this connection sends every connections/rate seconds, offset so that together they send
        // at an even rate.
        nanoseconds interval{};
        auto next_intended = start;
        if (opts.rate) {
            interval = nanoseconds{static_cast<std::int64_t>(1e9 * opts.connections / *opts.rate)};
            next_intended = start + nanoseconds{static_cast<std::int64_t>(1e9 * index / *opts.rate)};
        }

        while (!th.stopping && th.budget > 0) {
            if (!connected) {
                // A connection whose last request failed must not keep dialling a dead server once the run's
                // time is used up (a connected one checks the time before each send).
                if (deadline && steady_clock::now() >= *deadline) {
                    break;
                }
                auto ec = co_await conn.connect(endpoints, steady_clock::now() + opts.connect_timeout);
                if (ec) {
                    if (th.stopping) {
                        break;
                    }
                    count_error(th, &error_counts::connect, steady_clock::now());
                    conn.close();
                    pacer.expires_after(reconnect_pause);
                    co_await pacer.async_wait(use_tuple);
                    continue;
                }
                th.counts.reconnects += ever_connected ? 1 : 0;
                connected = ever_connected = true;
                served_here = 0;
            }

            // When this request should go: now (closed loop), or its slot in the schedule (open loop).
            auto sent = steady_clock::now();
            auto intended = sent;
            if (opts.rate) {
                intended = next_intended;
                next_intended += interval;
                if (intended > sent) {
                    pacer.expires_at(intended);
                    co_await pacer.async_wait(use_tuple);
                    if (th.stopping || th.budget == 0) {
                        break;
                    }
                    sent = steady_clock::now();
                }
            }
            if ((deadline && sent >= *deadline) || th.budget == 0) {
                break;
            }
            if (--th.budget == 0) {
                // The thread's last request: the others' waits for a send time they will not use end now.
                for (const auto& l : th.live) {
                    l.second->cancel();
                }
            }

            for (bool retried = false;; retried = true) {
                auto by = sent + opts.timeout;
                if (auto ec = co_await conn.send(net::buffer(request), by)) {
                    count_error(th,
                                ec == beast::error::timeout ? &error_counts::timeout : &error_counts::write,
                                steady_clock::now());
                    connected = false;
                    break;
                }
                // An interim response (100 Continue, to an Expect: given with -H) is not the answer: the
                // final one follows on the same connection.
                std::optional<response_parser> parser;
                std::size_t bytes = 0;
                beast::error_code ec;
                do {
                    parser.emplace(opts.server_view ? &body : nullptr, opts.max_body_bytes,
                                   opts.method == "HEAD");
                    ec = co_await conn.read_response(*parser, by);
                    bytes += conn.response_bytes();
                } while (!ec && parser->interim());
                auto done = steady_clock::now();
                if (!ec && done > by) {
                    ec = beast::error::timeout; // in after its deadline, before the sweep came by
                }
                if (ec == http::error::end_of_stream && served_here > 0 && !retried && !th.stopping) {
                    // A keep-alive connection the server closed while idle: reconnect and send again, once.
                    conn.close();
                    if (!co_await conn.connect(endpoints, done + opts.connect_timeout)) {
                        ++th.counts.reconnects;
                        served_here = 0;
                        sent = steady_clock::now();
                        continue;
                    }
                }
                if (ec) {
                    count_error(
                        th, ec == beast::error::timeout ? &error_counts::timeout : &error_counts::read, done);
                    connected = false;
                    break;
                }
                ++served_here;
                record(th, parser->status(), bytes, body, opts.rate ? intended : sent, sent, done);
                connected = parser->keep_alive();
                break;
            }
            if (!connected) {
                conn.close();
            }
        }
        conn.close(); // the run is over
    }

    // A connection's coroutine ended (an exception would be a bug: say so, and still account for it).
    void connection_ended(client_thread& th, const std::exception_ptr& e)
    {
        if (e) {
            try {
                std::rethrow_exception(e);
            } catch (const std::exception& ex) {
                fmt::print(stderr, "duet-load: a connection failed unexpectedly: {}\n", ex.what());
            } catch (...) {
                fmt::print(stderr, "duet-load: a connection failed unexpectedly\n");
            }
        }
        if (--th.running == 0) {
            th.sweeper.cancel();
            connections_finished(th);
        }
    }

    void record(client_thread& th, unsigned code, std::size_t bytes, std::string_view body,
                steady_clock::time_point intended, steady_clock::time_point sent,
                steady_clock::time_point done)
    {
        if (done < t0) {
            ++th.counts.warmup_requests;
            return;
        }
        if (!measuring(done)) {
            return;
        }
        auto& c = th.counts;
        ++c.requests;
        c.bytes_read += bytes;
        ++c.status[code < c.status.size() ? code : 0];
        c.latency.record(done - intended);
        c.service.record(done - sent);
        if (opts.rate && sent - intended > late_threshold) {
            ++c.late;
        }
        auto& s = slot(th, second_of(done));
        ++s.requests;
        s.latency.record(done - intended);
        if (opts.server_view) {
            c.server.add_body(body);
        }
    }

    // The thread's deadlines, checked a few times per timeout (a timer per operation would be armed and
    // cancelled twice per request): a connection past its deadline is closed, and its operation ends in a
    // timeout. Ends with the thread's last connection.
    task<void> sweep(client_thread& th)
    {
        const auto period = std::clamp(std::chrono::duration_cast<nanoseconds>(
                                           std::min(opts.timeout, opts.connect_timeout) / sweeps_per_timeout),
                                       nanoseconds{1ms}, nanoseconds{100ms});
        while (th.running > 0) {
            th.sweeper.expires_after(period);
            co_await th.sweeper.async_wait(use_tuple);
            auto now = steady_clock::now();
            for (const auto& l : th.live) {
                l.first->expire_if_due(now);
            }
        }
    }

    // Called on the client thread when its last connection has stopped.
    void connections_finished(client_thread&)
    {
        std::lock_guard lock{mutex};
        ++threads_finished;
        wake.notify_all();
    }

    // Runs f on th's own thread and returns its result: how the coordinator reads a running thread's tally.
    template <typename F>
    auto on_thread(client_thread& th, F f)
    {
        std::promise<std::invoke_result_t<F&>> p;
        auto result = p.get_future();
        net::post(th.ioc, [&p, &f] { p.set_value(f()); });
        return result.get();
    }

    snapshot take_snapshot(client_thread& th, std::int64_t second)
    {
        snapshot s;
        s.requests = th.counts.requests;
        s.errors = th.counts.errors.total();
        s.latency = th.counts.latency;
        auto& slot = th.seconds[static_cast<std::size_t>(second) % th.seconds.size()];
        if (slot.second == second) {
            s.second = slot;
        }
        return s;
    }

    void stop_threads()
    {
        for (auto& th : threads) {
            net::post(th->ioc, [t = th.get()] {
                t->stopping = true;
                for (auto [c, pacer] : t->live) {
                    c->close();      // in-flight requests end now; they are not counted
                    pacer->cancel(); // and a connection waiting for its next send time does not wait on
                }
            });
        }
    }

    run_options opts;
    std::string request;
    std::vector<tcp::endpoint> endpoints;
    std::vector<std::unique_ptr<client_thread>> threads;
    steady_clock::time_point start;
    steady_clock::time_point t0; // the measurement begins (after the warm-up)
    std::optional<steady_clock::time_point> deadline;

    std::mutex mutex;
    std::condition_variable wake;
    unsigned threads_finished = 0; // guarded by mutex
};

load_engine::load_engine(run_options options) : impl_{std::make_unique<impl>(std::move(options))}
{
    impl_->resolve();
}

load_engine::~load_engine() = default;

void load_engine::preflight()
{
    auto& m = *impl_;
    net::io_context ioc;
    beast::tcp_stream stream{ioc};
    stream.expires_after(m.opts.connect_timeout);
    boost::system::error_code ec;
    // Through the stream, so that its deadline applies (the socket's own connect would wait for the kernel).
    stream.async_connect(m.endpoints, [&](boost::system::error_code e, const tcp::endpoint&) { ec = e; });
    ioc.run();
    if (ec) {
        throw unreachable_error{"cannot connect to " + m.opts.target.authority() + ": " + ec.message()};
    }
}

run_result load_engine::run(const std::function<void(const progress&)>& on_tick)
{
    auto& m = *impl_;
    const auto& o = m.opts;
    run_result result;
    result.started_at = iso_now();
    result.client_cpus = std::max(1U, std::thread::hardware_concurrency());
    auto cpu_before = process_cpu();

    m.start = steady_clock::now();
    m.t0 = m.start + o.warmup;
    if (o.duration) {
        m.deadline = m.t0 + *o.duration;
    }

    // Deal the connections (and an -n budget) out to the threads, as evenly as they go.
    std::vector<net::executor_work_guard<net::io_context::executor_type>> keep_running;
    unsigned index = 0;
    for (unsigned t = 0; t < o.threads; ++t) {
        auto th = std::make_unique<impl::client_thread>(t);
        th->connections = o.connections / o.threads + (t < o.connections % o.threads ? 1U : 0U);
        th->running = th->connections;
        if (o.requests) {
            th->budget = *o.requests / o.threads + (t < *o.requests % o.threads ? 1U : 0U);
        }
        keep_running.push_back(net::make_work_guard(th->ioc));
        for (unsigned c = 0; c < th->connections; ++c) {
            net::co_spawn(th->ioc, m.run_connection(*th, index++),
                          [&m, t = th.get()](const std::exception_ptr& e) { m.connection_ended(*t, e); });
        }
        if (th->connections > 0) {
            net::co_spawn(th->ioc, m.sweep(*th), net::detached);
        }
        m.threads.push_back(std::move(th));
    }
    for (auto& th : m.threads) {
        th->thread = std::thread{[t = th.get()] {
            set_current_thread_name(t->name);
            t->ioc.run();
            t->cpu = thread_cpu_time();
        }};
    }

    // The coordinator: once a second, collect every thread's snapshot; stop at the deadline or on Ctrl-C.
    bool stopped = false;
    std::uint64_t previous_requests = 0;
    for (std::int64_t tick = 1;; ++tick) {
        const auto tick_at = m.start + std::chrono::seconds{tick};
        bool all_done = false;
        for (;;) {
            std::unique_lock lock{m.mutex};
            m.wake.wait_for(lock, 50ms, [&] { return m.threads_finished == m.threads.size(); });
            all_done = m.threads_finished == m.threads.size();
            lock.unlock();
            auto now = steady_clock::now();
            bool stop_now =
                stop_requested_.load(std::memory_order_relaxed) || (m.deadline && now >= *m.deadline);
            if (!stopped && stop_now) {
                result.interrupted = stop_requested_.load(std::memory_order_relaxed);
                m.stop_threads();
                stopped = true;
            }
            if (all_done || now >= tick_at) {
                break;
            }
        }
        if (all_done) {
            break;
        }
        // The second that just ended, merged across the threads for the time series and the progress line.
        auto now = steady_clock::now();
        auto second = now >= m.t0 ? m.second_of(now) - 1 : std::int64_t{-1};
        second_sample sample;
        sample.t = static_cast<double>(second + 1);
        histogram second_latency;
        histogram so_far;
        std::uint64_t requests = 0;
        std::uint64_t errors = 0;
        for (auto& th : m.threads) {
            auto s = m.on_thread(*th, [&m, &th, second] { return m.take_snapshot(*th, second); });
            requests += s.requests;
            errors += s.errors;
            so_far.merge(s.latency);
            if (s.second) {
                sample.requests += s.second->requests;
                sample.errors += s.second->errors;
                second_latency.merge(s.second->latency);
            }
        }
        if (second >= 0) {
            sample.p50_us = static_cast<double>(second_latency.percentile(50)) / 1000.0;
            sample.p99_us = static_cast<double>(second_latency.percentile(99)) / 1000.0;
            result.series.push_back(sample);
        }
        if (on_tick) {
            progress p;
            p.elapsed_s = std::chrono::duration<double>(now - m.t0).count();
            p.total_s = o.duration ? std::chrono::duration<double>(*o.duration).count() : 0.0;
            p.requests = requests;
            p.last_second_rps = static_cast<double>(requests - previous_requests);
            p.p99_us = static_cast<double>(so_far.percentile(99)) / 1000.0;
            p.errors = errors;
            on_tick(p);
        }
        previous_requests = requests;
    }

    auto end = steady_clock::now();
    keep_running.clear();
    for (auto& th : m.threads) {
        th->thread.join();
    }
    auto measured_end = m.deadline ? std::min(end, *m.deadline) : end;
    result.elapsed = measured_end > m.t0 ? measured_end - m.t0 : 0ns;
    // The seconds not collected yet (the run ended between ticks), the last one partial: from the threads'
    // slots, now that they have stopped.
    auto last = m.second_of(measured_end);
    double elapsed_s = std::chrono::duration<double>(result.elapsed).count();
    for (auto sec = static_cast<std::int64_t>(result.series.size()); sec <= last; ++sec) {
        second_sample sample;
        sample.t = std::min(static_cast<double>(sec + 1), elapsed_s);
        histogram h;
        for (auto& th : m.threads) {
            for (const auto& slot : th->seconds) {
                if (slot.second == sec) {
                    sample.requests += slot.requests;
                    sample.errors += slot.errors;
                    h.merge(slot.latency);
                }
            }
        }
        if (sec == last && sample.requests + sample.errors == 0) {
            break; // the run ended on a second's boundary
        }
        sample.p50_us = static_cast<double>(h.percentile(50)) / 1000.0;
        sample.p99_us = static_cast<double>(h.percentile(99)) / 1000.0;
        result.series.push_back(sample);
    }

    double wall = std::chrono::duration<double>(end - m.start).count();
    for (auto& th : m.threads) {
        result.counts.merge(th->counts);
        double busy = wall > 0 ? 100.0 * std::chrono::duration<double>(th->cpu).count() / wall : 0.0;
        result.thread_busy_percent.emplace_back(th->name, busy);
        if (busy > 90.0) {
            result.warnings.push_back(fmt::format(
                "client thread {} was {:.0f}% busy: the client may be the bottleneck (add --threads)",
                th->name, busy));
        }
    }
    result.client_cpu_percent =
        wall > 0 ? 100.0 * std::chrono::duration<double>(process_cpu() - cpu_before).count() / wall : 0.0;
    const auto& c = result.counts;
    if (o.rate && c.requests > 0 && static_cast<double>(c.late) > 0.01 * static_cast<double>(c.requests)) {
        result.warnings.push_back(
            fmt::format("{} requests ({:.1f}%) went out more than 1 ms late: the connections could not keep "
                        "the rate (add "
                        "--connections); their latency counts from when they were due",
                        c.late, 100.0 * static_cast<double>(c.late) / static_cast<double>(c.requests)));
    }
    return result;
}

} // namespace duet::client
