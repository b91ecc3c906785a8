// The I/O endpoints: waits on the slack timer (/io/sleep, /io/fanout), calls to the upstream (/io/call) and
// file reads (/io/file) on the event loop, and the same waits on the blocking threads (mode=threads).
#include <duet/server/cpu_meter.hpp>
#include <duet/server/data_file.hpp>
#include <duet/server/handlers.hpp>
#include <duet/server/server_state.hpp>
#include <duet/server/slack_timer.hpp>
#include <duet/server/upstream.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/bind_executor.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/deferred.hpp>
#include <boost/asio/experimental/parallel_group.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <spdlog/spdlog.h>

#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <stop_token>
#include <string>
#include <vector>

// GCC 12 pairs the aligned_alloc inside Asio's recycling frame allocator with the frame's operator delete and
// warns, wrongly (see handlers_cpu.cpp).
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
#endif

namespace duet::server {

namespace net = boost::asio;
namespace http = boost::beast::http;
using std::chrono::steady_clock;

namespace {

// ---- The blocking threads (mode=threads) ------------------------------------------------------------------

// A job's value, and how often the thread that ran it was switched out: voluntarily (it blocked, in a sleep
// or a recv) and involuntarily (the kernel preempted it).
template <typename R>
struct switched
{
    R value{};
    std::int64_t voluntary = 0;
    std::int64_t involuntary = 0;
};

template <typename F>
auto counting_switches(F f)
{
    return [f = std::move(f)]() mutable {
        rusage before{};
        ::getrusage(RUSAGE_THREAD, &before);
        switched<std::invoke_result_t<F&>> out{.value = f()};
        rusage after{};
        ::getrusage(RUSAGE_THREAD, &after);
        out.voluntary = after.ru_nvcsw - before.ru_nvcsw;
        out.involuntary = after.ru_nivcsw - before.ru_nivcsw;
        return out;
    };
}

http_error blocking_saturated(const server_state& st)
{
    return http_error{.status = http::status::service_unavailable,
                      .code = "blocking_pool_saturated",
                      .message = "the blocking threads' queue is full; retry later",
                      .limit = static_cast<std::int64_t>(st.blocking->queue_limit()),
                      .retry_after_s = 1};
}

// Each job on a blocking thread, all handed over at once and awaited together; their outcomes in order.
// Recorded like the CPU pool's jobs: in the statistics, and in the timeline on the thread's lane (after the
// workers').
template <typename Job>
auto on_blocking_threads(server_state& st, std::uint64_t seq, std::vector<Job> jobs)
    -> task<std::vector<job_outcome<std::invoke_result_t<Job&>>>>
{
    using outcome = job_outcome<std::invoke_result_t<Job&>>;
    // Bound to this coroutine's executor, as run_split's parts are: the outcome is posted to the I/O thread.
    const io_executor io = co_await net::this_coro::executor;
    auto submit = [&st, io](Job job) {
        return net::async_initiate<const net::deferred_t&, void(outcome)>(
            [&st, io](auto handler, Job fn) {
                st.blocking->async_submit(std::move(fn), net::bind_executor(io, std::move(handler)));
            },
            net::deferred, std::move(job));
    };
    using op_type = decltype(submit(std::declval<Job>()));
    std::vector<op_type> ops;
    ops.reserve(jobs.size());
    for (auto& job : jobs) {
        ops.push_back(submit(std::move(job)));
    }
    auto [order, outcomes] = co_await net::experimental::make_parallel_group(std::move(ops))
                                 .async_wait(net::experimental::wait_for_all(), use_task);
    const auto now = steady_clock::now();
    for (std::size_t i = 0; i < outcomes.size(); ++i) {
        const auto& out = outcomes[i];
        st.stats.record_blocking(out.status, out.timing.queue(), now);
        if (seq != 0 && out.status != job_status::rejected) {
            st.trace.record(trace_job{
                .seq = seq,
                .lane = static_cast<std::uint16_t>(st.pool.size() + st.blocking->lane_of(out.worker)),
                .part = static_cast<std::uint16_t>(i),
                .enqueued = out.timing.enqueued,
                .started = out.timing.started,
                .finished = out.timing.finished});
        }
    }
    co_return std::move(outcomes);
}

// How jobs on the blocking threads ran, as the report says it: the longest wait for a free thread, the time
// after it, the thread of the first, the CPU time and context switches of all.
template <typename R>
work_report blocking_report(const std::vector<job_outcome<switched<R>>>& outs, std::chrono::nanoseconds wall)
{
    work_report work{.model = "blocking-thread", .voluntary_switches = 0, .involuntary_switches = 0};
    for (const auto& o : outs) {
        work.queue = std::max(work.queue, o.timing.queue());
        work.cpu += o.timing.cpu;
        work.voluntary_switches += o.value.voluntary;
        work.involuntary_switches += o.value.involuntary;
    }
    work.service = std::max(wall - work.queue, std::chrono::nanoseconds{0});
    work.worker = outs.front().worker;
    work.core_start = outs.front().timing.core_start;
    work.core_end = outs.front().timing.core_end;
    return work;
}

// Whether a job was refused (the queue was full) or, which only a bug would cause, threw: either way the
// request's answer is the 503 of a full pool.
template <typename R>
bool any_not_done(const std::vector<job_outcome<R>>& outs)
{
    return std::any_of(outs.begin(), outs.end(), [](const auto& o) { return o.status != job_status::done; });
}

bool threads_mode(const param_values& p)
{
    return p.choice("mode") == "threads";
}

// A server_state made without them (unit tests and benchmarks of the request path) has no blocking threads,
// upstream or data file: their endpoints answer 503 rather than dereference nothing.
http_error not_set_up(std::string_view what)
{
    return http_error{.status = http::status::service_unavailable,
                      .code = "not_available",
                      .message = "this server was set up without " + std::string{what}};
}

http_error no_blocking_threads()
{
    return not_set_up("blocking threads");
}

// /io/sleep?mode=threads: one thread of the blocking pool sleeps for ms, as a thread-per-request server's
// thread would block in a database call.
task<handler_result> sleep_on_thread(server_state& st, handler_args args)
{
    if (st.blocking == nullptr) {
        co_return no_blocking_threads();
    }
    auto ms = std::chrono::milliseconds{args.params.get("ms")};
    // A sleep that the server's stop can end: the thread blocks in the kernel (a futex wait with a timeout)
    // just as in a sleep, but a stopping server need not wait up to limits.max_sleep_ms for it.
    std::vector jobs{counting_switches([ms, stop = st.blocking_stop] {
        std::mutex m;
        std::condition_variable_any cv;
        std::unique_lock lock{m};
        cv.wait_for(lock, stop, ms, [] { return false; });
        return 0;
    })};
    auto start = steady_clock::now();
    auto outs = co_await on_blocking_threads(st, args.trace_seq, std::move(jobs));
    if (any_not_done(outs)) {
        co_return blocking_saturated(st);
    }
    auto work = blocking_report(outs, steady_clock::now() - start);
    auto late = std::chrono::duration_cast<std::chrono::microseconds>(outs.front().timing.service() - ms);
    co_return handler_output{{{"slept_ms", ms.count()}, {"late_us", late.count()}}, work};
}

} // namespace

task<handler_result> io_sleep(server_state& st, handler_args args)
{
    const auto& p = args.params;
    if (threads_mode(p)) {
        co_return co_await sleep_on_thread(st, args);
    }
    cpu_meter cpu;
    work_report work{.model = "event-loop", .core_start = current_core()};
    auto ms = std::chrono::milliseconds{p.get("ms")};
    auto start = steady_clock::now();

    cpu.pause();
    if (ms.count() == 0) {
        // A wait of nothing is a yield: the request goes once to the back of the loop's queue, as an expired
        // wait's would, without the wait queue.
        co_await net::post(co_await net::this_coro::executor, use_task);
    } else {
        // Cancelled (it then ends at once) when the client goes away; destroyed with the server.
        co_await st.wait_timer->async_wait_until(start + ms, net::as_tuple(use_task));
    }
    cpu.resume();

    work.service = steady_clock::now() - start;
    work.core_end = current_core();
    work.cpu = cpu.total();
    auto late = std::chrono::duration_cast<std::chrono::microseconds>(work.service - ms);
    co_return handler_output{{{"slept_ms", ms.count()}, {"late_us", late.count()}}, work};
}

task<handler_result> io_fanout(server_state& st, handler_args args)
{
    const auto& p = args.params;
    cpu_meter cpu;
    work_report work{.model = "event-loop", .core_start = current_core()};
    auto n = static_cast<std::size_t>(p.get("n"));
    auto ms = std::chrono::milliseconds{p.get("ms")};

    // n independent waits, all started now; the request resumes once when the last one ends.
    auto start = steady_clock::now();
    using wait_op = decltype(st.wait_timer->async_wait_until(start, net::deferred));
    std::vector<wait_op> waits;
    waits.reserve(n);
    for (std::size_t i = 0; i < n; ++i) {
        waits.push_back(st.wait_timer->async_wait_until(start + ms, net::deferred));
    }

    cpu.pause();
    co_await net::experimental::make_parallel_group(std::move(waits))
        .async_wait(net::experimental::wait_for_all(), use_task);
    cpu.resume();

    work.service = steady_clock::now() - start;
    work.core_end = current_core();
    work.cpu = cpu.total();
    auto sequential = ms * static_cast<std::int64_t>(n);
    co_return handler_output{{{"waits", n}, {"ms_each", ms.count()}, {"sequential_ms", sequential.count()}},
                             work};
}

namespace {

// The calls' totals, and the first failure, which answers for the request.
struct calls_summary
{
    std::uint64_t opened = 0;
    std::uint64_t reused = 0;
    const call_outcome* failed = nullptr;
};

calls_summary summarize(server_state& st, std::uint64_t seq, bool on_loop,
                        const std::vector<call_outcome>& calls)
{
    calls_summary sum;
    const auto now = steady_clock::now();
    for (std::size_t i = 0; i < calls.size(); ++i) {
        const auto& c = calls[i];
        st.stats.record_call(c.error, c.duration, now);
        if (on_loop && seq != 0 && c.began != steady_clock::time_point{}) {
            // In the timeline, each call is a wait of its own (the blocking threads' are their jobs).
            st.trace.record(trace_job{.seq = seq,
                                      .lane = 0,
                                      .part = static_cast<std::uint16_t>(i),
                                      .what = trace_job::kind::call,
                                      .enqueued = c.began,
                                      .started = c.began,
                                      .finished = c.began + c.duration});
        }
        sum.opened += c.opened ? 1 : 0;
        sum.reused += c.reused ? 1 : 0;
        if (c.error != call_error::none && sum.failed == nullptr) {
            sum.failed = &c;
        }
    }
    return sum;
}

// Each call carries the request's id with its number, so that the upstream's reports and timeline name the
// request that made it.
std::string call_id(std::string_view id, std::size_t i)
{
    std::string out{id};
    out += '.';
    out += std::to_string(i);
    return out;
}

} // namespace

task<handler_result> io_call(server_state& st, handler_args args)
{
    const auto& p = args.params;
    if (st.upstream == nullptr) {
        co_return not_set_up("an upstream");
    }
    auto n = static_cast<std::size_t>(p.get("n"));
    auto ms = p.get("ms");
    cpu_meter cpu;
    const auto start = steady_clock::now();
    std::vector<call_outcome> calls;
    work_report work;
    if (threads_mode(p)) {
        if (st.blocking == nullptr) {
            co_return no_blocking_threads();
        }
        // Each call is a job on the blocking threads, on a blocking socket: n calls overlap only as far as
        // there are free threads.
        auto job = [&st, &args, ms](std::size_t i) {
            return counting_switches(
                [target = &st.upstream->target(), cfg = &st.cfg.upstream, ms, id = call_id(args.id, i)] {
                    return blocking_call(*target, *cfg, ms, id);
                });
        };
        std::vector<decltype(job(0))> jobs;
        jobs.reserve(n);
        for (std::size_t i = 0; i < n; ++i) {
            jobs.push_back(job(i));
        }
        cpu.pause();
        auto outs = co_await on_blocking_threads(st, args.trace_seq, std::move(jobs));
        cpu.resume();
        for (auto& o : outs) {
            if (o.status == job_status::done) {
                calls.push_back(std::move(o.value.value));
            }
        }
        if (any_not_done(outs)) {
            summarize(st, args.trace_seq, false, calls); // the calls that did run are counted all the same
            co_return blocking_saturated(st);
        }
        work = blocking_report(outs, steady_clock::now() - start);
    } else {
        // n coroutines on this thread, each a call on a pooled connection; the request resumes once, when the
        // last one ends.
        const io_executor io = co_await net::this_coro::executor;
        using op_type = decltype(net::co_spawn(io, st.upstream->call(ms, {}), net::deferred));
        std::vector<op_type> ops;
        ops.reserve(n);
        std::vector<std::string> ids;
        ids.reserve(n);
        for (std::size_t i = 0; i < n; ++i) {
            ids.push_back(call_id(args.id, i));
            ops.push_back(net::co_spawn(io, st.upstream->call(ms, ids.back()), net::deferred));
        }
        cpu.pause();
        auto [order, errors, outs] = co_await net::experimental::make_parallel_group(std::move(ops))
                                         .async_wait(net::experimental::wait_for_all(), use_task);
        cpu.resume();
        work = work_report{.model = "event-loop", .service = steady_clock::now() - start};
        for (std::size_t i = 0; i < outs.size(); ++i) {
            // A call's coroutine throws only when cancelled: its client went away.
            calls.push_back(errors[i] ? call_outcome{.error = call_error::cancelled} : std::move(outs[i]));
            work.cpu += calls.back().cpu;
        }
        work.cpu += cpu.total();
        work.core_start = work.core_end = current_core();
    }
    auto sum = summarize(st, args.trace_seq, !threads_mode(p), calls);
    if (sum.failed != nullptr) {
        co_return call_http_error(*sum.failed, st.upstream->target(), st.cfg.upstream);
    }
    auto waited = std::chrono::duration_cast<std::chrono::microseconds>(steady_clock::now() - start);
    co_return handler_output{{{"calls", n},
                              {"ms_each", ms},
                              {"connections_opened", sum.opened},
                              {"connections_reused", sum.reused},
                              {"network_wait_us", waited.count()}},
                             work};
}

task<handler_result> io_file(server_state& st, handler_args args)
{
    const auto& p = args.params;
    if (st.file == nullptr) {
        co_return not_set_up("a data file");
    }
    const auto bytes = static_cast<std::uint64_t>(p.get("kb")) * 1024;
    const auto offset = st.file->random_offset(bytes);
    file_read got;
    work_report work;
    if (st.file_ring != nullptr && !threads_mode(p)) {
        // On the I/O thread's io_uring: the read is submitted to the kernel and completes as an event of the
        // loop, like a socket's.
        cpu_meter cpu;
        work = work_report{.model = "io_uring", .core_start = current_core()};
        const auto start = steady_clock::now();
        cpu.pause();
        got = co_await st.file_ring->read(offset, bytes);
        cpu.resume();
        work.service = steady_clock::now() - start;
        work.cpu = cpu.total();
        work.core_end = current_core();
        if (got.error && got.error != net::error::operation_aborted) {
            // A sandbox may allow the ring but not its reads: from now on the loop mode reads on the
            // blocking threads, as where the ring could not be made at all (/stats says so too).
            spdlog::warn(
                "/io/file: an io_uring read failed ({}); reading on the blocking threads from now on",
                got.error.message());
            st.file_ring = nullptr;
        }
    }
    if (st.file_ring == nullptr || threads_mode(p)) {
        if (st.blocking == nullptr) {
            co_return no_blocking_threads();
        }
        std::vector jobs{counting_switches(
            [fd = st.file->fd(), offset, bytes] { return read_blocking(fd, offset, bytes); })};
        const auto start = steady_clock::now();
        auto outs = co_await on_blocking_threads(st, args.trace_seq, std::move(jobs));
        if (any_not_done(outs)) {
            co_return blocking_saturated(st);
        }
        work = blocking_report(outs, steady_clock::now() - start);
        got = outs.front().value.value;
    }
    if (got.error || got.bytes != bytes) {
        co_return http_error{.status = http::status::internal_server_error,
                             .code = "file_read_failed",
                             .message = "the data file could not be read: " +
                                        (got.error ? got.error.message() : std::string{"short read"})};
    }
    co_return handler_output{{{"bytes", got.bytes}, {"offset", offset}, {"checksum", got.checksum}}, work};
}

} // namespace duet::server
