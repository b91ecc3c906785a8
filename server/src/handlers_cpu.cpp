// The CPU endpoints (/cpu/primes, /cpu/fib, /cpu/mandelbrot): one job on the pool, inline on the I/O thread,
// or split into parts joined in one request.
#include <duet/server/handlers.hpp>
#include <duet/server/kernels.hpp>
#include <duet/server/server_state.hpp>
#include <duet/server/trace.hpp>

#include <boost/asio/bind_executor.hpp>
#include <boost/asio/deferred.hpp>
#include <boost/asio/experimental/parallel_group.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstdint>
#include <exception>
#include <memory>
#include <stdexcept>
#include <type_traits>
#include <vector>

// GCC 12 pairs the aligned_alloc inside Asio's recycling frame allocator with the frame's operator delete and
// warns, wrongly: that operator delete returns the memory to the same allocator. Seen only where a coroutine
// here is inlined into another; the allocator is Asio's, not ours.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
#endif

namespace duet::server {

namespace net = boost::asio;
namespace http = boost::beast::http;
using std::chrono::steady_clock;

namespace {

std::string describe(const std::exception_ptr& e)
{
    try {
        std::rethrow_exception(e);
    } catch (const std::exception& ex) {
        return ex.what();
    } catch (...) {
        return "unknown exception";
    }
}

http_error pool_saturated(const server_state& st)
{
    return http_error{.status = http::status::service_unavailable,
                      .code = "pool_saturated",
                      .message = "the worker pool's queue is full; retry later",
                      .limit = static_cast<std::int64_t>(st.pool.queue_limit()),
                      .retry_after_s = 1};
}

http_error job_failed(const std::exception_ptr& e)
{
    auto what = describe(e);
    spdlog::error("CPU job failed: {}", what);
    return http_error{.status = http::status::internal_server_error,
                      .code = "job_failed",
                      .message = "the job failed: " + what};
}

// Fault injection (faults.fail_every_nth_job): every Nth job throws where it runs instead of doing its work,
// so that the 500 path, the worker's survival and a client's retries can be tested for real. Which job fails
// is decided on the I/O thread as the job is made; the worker only throws.
class injected_fault : public std::runtime_error
{
public:
    injected_fault() : std::runtime_error{"injected fault (config key faults.fail_every_nth_job)"} {}
};

template <typename Job>
auto with_faults(server_state& st, Job job)
{
    const auto every = static_cast<std::uint64_t>(st.cfg.faults.fail_every_nth_job);
    bool fail = every > 0 && ++st.jobs_made % every == 0;
    return [job = std::move(job), fail]() mutable {
        if (fail) {
            throw injected_fault{};
        }
        return job();
    };
}

double micros(std::chrono::nanoseconds d)
{
    return static_cast<double>(d.count()) / 1000.0;
}

// The outcome of the CPU work of one request, however it ran.
template <typename R>
struct cpu_run
{
    R value{};
    work_report work;
    nlohmann::ordered_json split = nullptr;
};

template <typename R>
using cpu_result = boost::system::result<cpu_run<R>, http_error>;

// A job that ran (done or failed; a refused one never ran), into the timeline: on its worker's lane, or on
// duet-io's (0) when it ran inline.
template <typename R>
void record_job(server_state& st, std::uint64_t seq, const job_outcome<R>& out, std::size_t part)
{
    if (seq == 0 || out.status == job_status::rejected) {
        return;
    }
    st.trace.record(trace_job{.seq = seq,
                              .lane = static_cast<std::uint16_t>(st.pool.lane_of(out.worker)),
                              .part = static_cast<std::uint16_t>(part),
                              .enqueued = out.timing.enqueued,
                              .started = out.timing.started,
                              .finished = out.timing.finished});
}

// One job where the request asks: on the pool (the I/O thread awaits it and serves others meanwhile), or
// inline on the I/O thread, which then serves nobody else until the job ends: the anti-pattern, on purpose.
template <typename Job>
task<cpu_result<std::invoke_result_t<Job&>>> run_one(server_state& st, std::uint64_t seq, bool inline_mode,
                                                     Job job)
{
    job_outcome<std::invoke_result_t<Job&>> out;
    auto runnable = with_faults(st, std::move(job));
    if (inline_mode) {
        out = run_measured(runnable);
    } else {
        out = co_await st.pool.async_submit(std::move(runnable), use_task);
        st.stats.record_job(out.status, out.timing.queue(), steady_clock::now());
    }
    record_job(st, seq, out, 0);
    if (out.status == job_status::rejected) {
        co_return pool_saturated(st);
    }
    if (out.status == job_status::failed) {
        co_return job_failed(out.error);
    }
    work_report work{
        .model = inline_mode ? "inline" : "worker-pool",
        .queue = out.timing.queue(),
        .service = out.timing.service(),
        .cpu = out.timing.cpu,
        .core_start = out.timing.core_start,
        .core_end = out.timing.core_end,
        .worker = out.worker,
    };
    co_return cpu_run<std::invoke_result_t<Job&>>{.value = std::move(out.value), .work = work};
}

// Fork-join: every part is a job on the pool, all submitted at once and awaited together (a parallel group),
// so the request's coroutine is suspended, not blocking, while the parts run alongside other requests' jobs.
// `merge` folds the parts' values in part order; `describe_part(i)` adds what part i covered to its report.
template <typename Job, typename Merge, typename Describe>
task<cpu_result<std::invoke_result_t<Job&>>>
run_split(server_state& st, std::uint64_t seq, std::vector<Job> jobs, Merge merge, Describe describe_part)
{
    using value_type = std::invoke_result_t<Job&>;
    // Each part's completion is bound to this coroutine's executor, so that its worker posts it to the I/O
    // thread. Unbound, the group's handler for a part has no executor of its own, and Asio would run it on
    // the system executor: a hidden pool of threads (two per core) that the first split would start.
    const io_executor io = co_await net::this_coro::executor;
    auto submit = [&st, io](auto job) {
        using outcome = job_outcome<std::invoke_result_t<decltype(job)&>>;
        return net::async_initiate<const net::deferred_t&, void(outcome)>(
            [&st, io](auto handler, auto fn) {
                st.pool.async_submit(std::move(fn), net::bind_executor(io, std::move(handler)));
            },
            net::deferred, std::move(job));
    };
    using op_type = decltype(submit(with_faults(st, std::declval<Job>())));
    std::vector<op_type> ops;
    ops.reserve(jobs.size());
    for (auto& job : jobs) {
        ops.push_back(submit(with_faults(st, std::move(job))));
    }
    auto submitted = steady_clock::now();
    auto [order, outcomes] = co_await net::experimental::make_parallel_group(std::move(ops))
                                 .async_wait(net::experimental::wait_for_all(), use_task);
    auto joined = steady_clock::now();

    for (std::size_t i = 0; i < outcomes.size(); ++i) {
        st.stats.record_job(outcomes[i].status, outcomes[i].timing.queue(), joined);
        record_job(st, seq, outcomes[i], i);
    }
    // Every part has finished or been refused by now: nothing of this request is left on the pool.
    for (const auto& out : outcomes) {
        if (out.status == job_status::rejected) {
            co_return pool_saturated(st);
        }
    }
    for (const auto& out : outcomes) {
        if (out.status == job_status::failed) {
            co_return job_failed(out.error);
        }
    }

    cpu_run<value_type> run;
    auto first_start = outcomes.front().timing.started;
    auto last_finish = outcomes.front().timing.finished;
    std::chrono::nanoseconds part_service{};
    nlohmann::ordered_json parts = nlohmann::ordered_json::array();
    for (std::size_t i = 0; i < outcomes.size(); ++i) {
        const auto& out = outcomes[i];
        merge(run.value, out.value);
        first_start = std::min(first_start, out.timing.started);
        last_finish = std::max(last_finish, out.timing.finished);
        part_service += out.timing.service();
        run.work.cpu += out.timing.cpu;
        nlohmann::ordered_json part = {{"part", i}};
        describe_part(part, i);
        part["worker"] = {{"name", out.worker->name}, {"tid", out.worker->tid}};
        part["cores"] = {{"start", out.timing.core_start}, {"end", out.timing.core_end}};
        part["queue_us"] = micros(out.timing.queue());
        part["service_us"] = micros(out.timing.service());
        part["cpu_time_us"] = micros(out.timing.cpu);
        parts.push_back(std::move(part));
    }
    // The split phase runs from submission to the last part's end; queue is the wait for the first part.
    auto wall = joined - submitted;
    double speedup = wall.count() > 0
                         ? static_cast<double>(part_service.count()) / static_cast<double>(wall.count())
                         : 0.0;
    run.work.model = "split";
    run.work.queue = first_start - submitted;
    run.work.service = last_finish - first_start;
    run.work.core_start = outcomes.front().timing.core_start;
    run.work.core_end = outcomes.back().timing.core_end;
    run.split = {
        {"parts", outcomes.size()},     {"wall_us", micros(wall)},
        {"speedup", speedup},           {"efficiency", speedup / static_cast<double>(outcomes.size())},
        {"per_part", std::move(parts)},
    };
    co_return run;
}

http_error parts_without_split()
{
    return http_error{.status = http::status::bad_request,
                      .code = "invalid_param",
                      .message = "parts applies only with mode=split",
                      .param = "parts"};
}

// One part of a split /cpu/primes: the primes in [lo, hi).
struct primes_part
{
    std::uint64_t lo;
    std::uint64_t hi;
    std::uint64_t operator()() const { return kernels::count_primes_in(lo, hi); }
};

template <typename R>
handler_output output(result_fields result, cpu_run<R>& run)
{
    return handler_output{.result = result, .work = run.work, .split = std::move(run.split)};
}

} // namespace

task<handler_result> cpu_primes(server_state& st, handler_args args)
{
    const auto& p = args.params;
    auto n = static_cast<std::uint64_t>(p.get("n"));
    auto mode = p.choice("mode");
    if (mode != "split") {
        if (p.given("parts")) {
            co_return parts_without_split();
        }
        auto r =
            co_await run_one(st, args.trace_seq, mode == "inline", [n] { return kernels::count_primes(n); });
        if (!r) {
            co_return r.error();
        }
        co_return output({{"n", n}, {"primes", r->value}}, *r);
    }
    auto bounds = kernels::split_primes(n, static_cast<unsigned>(p.get("parts")));
    std::vector<primes_part> jobs;
    for (std::size_t i = 0; i + 1 < bounds.size(); ++i) {
        jobs.push_back({bounds[i], bounds[i + 1]});
    }
    auto r = co_await run_split(
        st, args.trace_seq, std::move(jobs), [](std::uint64_t& total, std::uint64_t part) { total += part; },
        [&bounds](nlohmann::ordered_json& part, std::size_t i) {
            part["range"] = {bounds[i], bounds[i + 1]};
        });
    if (!r) {
        co_return r.error();
    }
    co_return output({{"n", n}, {"primes", r->value}}, *r);
}

task<handler_result> cpu_fib(server_state& st, handler_args args)
{
    const auto& p = args.params;
    auto n = static_cast<std::uint32_t>(p.get("n"));
    auto r =
        co_await run_one(st, args.trace_seq, p.choice("mode") == "inline", [n] { return kernels::fib(n); });
    if (!r) {
        co_return r.error();
    }
    co_return output({{"n", n}, {"value", r->value}}, *r);
}

task<handler_result> cpu_mandelbrot(server_state& st, handler_args args)
{
    const auto& p = args.params;
    auto size = static_cast<std::uint32_t>(p.get("size"));
    auto iter = static_cast<std::uint32_t>(p.get("iter"));
    auto mode = p.choice("mode");
    bool pgm = p.choice("format") == "pgm";
    if (mode != "split" && p.given("parts")) {
        co_return parts_without_split();
    }
    auto parts = mode == "split" ? static_cast<std::uint32_t>(p.get("parts")) : 1U;
    if (parts > size) {
        co_return http_error{.status = http::status::bad_request,
                             .code = "out_of_range",
                             .message = "parts must not exceed size: every part renders whole rows",
                             .param = "parts",
                             .limit = static_cast<std::int64_t>(size)};
    }
    // The image, when asked for, is shared by the parts: each writes only its own rows.
    std::shared_ptr<std::vector<std::uint8_t>> image;
    if (pgm) {
        image = std::make_shared<std::vector<std::uint8_t>>(static_cast<std::size_t>(size) * size);
    }
    auto job = [size, iter, parts, image](std::uint32_t offset) {
        return [size, iter, parts, image, offset] {
            return kernels::mandelbrot_rows(size, iter, offset, parts, image ? image->data() : nullptr);
        };
    };
    cpu_result<kernels::mandelbrot_result> r;
    if (mode == "split") {
        std::vector<decltype(job(0))> jobs;
        for (std::uint32_t i = 0; i < parts; ++i) {
            jobs.push_back(job(i));
        }
        r = co_await run_split(
            st, args.trace_seq, std::move(jobs),
            [](kernels::mandelbrot_result& total, const auto& part) { total += part; },
            [parts](nlohmann::ordered_json& part, std::size_t i) {
                part["rows"] = {{"first", i}, {"stride", parts}};
            });
    } else {
        r = co_await run_one(st, args.trace_seq, mode == "inline", job(0));
    }
    if (!r) {
        co_return r.error();
    }
    auto out = output(
        {{"size", size}, {"iter", iter}, {"in_set", r->value.in_set}, {"checksum", r->value.checksum}}, *r);
    if (pgm) {
        // Binary PGM (P5): a header, then one byte per pixel, row by row; any image viewer opens it.
        auto data = fmt::format("P5\n{} {}\n255\n", size, size);
        data.append(image->begin(), image->end());
        out.binary = binary_body{"image/x-portable-graymap", std::move(data)};
    }
    co_return out;
}

} // namespace duet::server
