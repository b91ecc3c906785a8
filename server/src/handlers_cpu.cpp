#include <duet/server/handlers.hpp>
#include <duet/server/kernels.hpp>
#include <duet/server/server_state.hpp>

#include <boost/asio/use_awaitable.hpp>
#include <spdlog/spdlog.h>

#include <cstdint>
#include <exception>

namespace duet::server {

namespace net = boost::asio;
namespace http = boost::beast::http;

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

// Runs a CPU job where the request asks: on the pool (the I/O thread awaits it and serves others meanwhile),
// or inline on the I/O thread, which then serves nobody else until the job ends: the anti-pattern, on
// purpose.
template <typename Job, typename ToJson>
net::awaitable<handler_result> run_cpu(server_state& st, const param_values& p, Job job, ToJson to_json)
{
    bool inline_mode = p.choice("mode") == "inline";
    job_outcome<std::uint64_t> out;
    if (inline_mode) {
        out = run_measured(job);
    } else {
        out = co_await st.pool.async_submit(std::move(job), net::use_awaitable);
    }
    if (!inline_mode) {
        st.stats.record_job(out.status, out.timing.queue(), std::chrono::steady_clock::now());
    }
    if (out.status == job_status::rejected) {
        co_return http_error{http::status::service_unavailable,
                             "pool_saturated",
                             "the worker pool's queue is full; retry later",
                             {},
                             static_cast<std::int64_t>(st.pool.queue_limit()),
                             {},
                             1};
    }
    if (out.status == job_status::failed) {
        auto what = describe(out.error);
        spdlog::error("CPU job failed: {}", what);
        co_return http_error{http::status::internal_server_error,
                             "job_failed",
                             "the job failed: " + what,
                             {},
                             std::nullopt,
                             {},
                             {}};
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
    co_return handler_output{to_json(out.value), work};
}

} // namespace

net::awaitable<handler_result> cpu_primes(server_state& st, const param_values& p)
{
    auto n = static_cast<std::uint64_t>(p.get("n"));
    return run_cpu(
        st, p, [n] { return kernels::count_primes(n); },
        [n](std::uint64_t count) {
            return nlohmann::ordered_json{{"n", n}, {"primes", count}};
        });
}

net::awaitable<handler_result> cpu_fib(server_state& st, const param_values& p)
{
    auto n = static_cast<std::uint32_t>(p.get("n"));
    return run_cpu(
        st, p, [n] { return kernels::fib(n); },
        [n](std::uint64_t value) {
            return nlohmann::ordered_json{{"n", n}, {"value", value}};
        });
}

} // namespace duet::server
