// /trace: the last ms of the timeline as a Trace Event Format document. The ring is copied on the I/O thread
// (a plain copy of its records, about a millisecond for the default 16,384) and encoded on a worker, which
// costs ten times as much, so that a big trace does not block the loop.
#include <duet/server/handlers.hpp>
#include <duet/server/server_state.hpp>
#include <duet/server/trace.hpp>

#include <boost/asio/use_awaitable.hpp>

#include <unistd.h>

#include <chrono>
#include <memory>

namespace duet::server {

namespace http = boost::beast::http;
using std::chrono::steady_clock;

namespace {

trace_names names_of(const server_state& st)
{
    trace_names names{.pid = ::getpid(), .io = st.io_thread};
    for (const auto& w : st.pool.workers()) {
        names.workers.push_back(w.ident);
    }
    if (st.blocking != nullptr) {
        names.blocking_from = names.workers.size();
        for (const auto& w : st.blocking->workers()) {
            names.workers.push_back(w.ident);
        }
    }
    for (const auto& e : st.routes.endpoints()) {
        names.endpoints.push_back(e.path);
    }
    names.endpoints.emplace_back("other");
    return names;
}

} // namespace

task<handler_result> trace_timeline(server_state& st, handler_args args)
{
    const auto& p = args.params;
    if (!st.trace.enabled()) {
        co_return http_error{.status = http::status::service_unavailable,
                             .code = "trace_disabled",
                             .message = "the server records no timeline (config key trace.enabled)"};
    }
    const auto limit = static_cast<std::uint64_t>(st.cfg.trace.max_concurrent);
    if (st.traces_alive >= limit) {
        co_return http_error{
            .status = http::status::service_unavailable,
            .code = "too_many_traces",
            .message = "as many /trace responses are in flight as allowed (config key trace.max_concurrent)",
            .limit = static_cast<std::int64_t>(limit),
            .retry_after_s = 1};
    }
    // Counted from now until the response is gone (its lease): each holds up to megabytes.
    ++st.traces_alive;
    std::shared_ptr<void> lease{nullptr, [&st](void*) { --st.traces_alive; }};

    // The copy is the I/O thread's own work: it shows on duet-io, apart from the wait for the encoding.
    const auto to = steady_clock::now();
    const auto from = to - std::chrono::milliseconds{p.get("ms")};
    auto encode = [entries = st.trace.since(from), names = names_of(st), from, to,
                   oldest = st.trace.oldest()] { return trace_json(entries, names, from, to, oldest); };
    const auto copied = steady_clock::now();
    if (args.trace_seq != 0) {
        st.trace.record(trace_job{.seq = args.trace_seq,
                                  .what = trace_job::kind::ring_copy,
                                  .enqueued = to,
                                  .started = to,
                                  .finished = copied});
    }
    auto out = co_await st.pool.async_submit(std::move(encode), use_task);
    st.stats.record_job(out.status, out.timing.queue(), steady_clock::now());
    if (out.status == job_status::rejected) {
        co_return http_error{.status = http::status::service_unavailable,
                             .code = "pool_saturated",
                             .message = "the worker pool's queue is full; retry later",
                             .limit = static_cast<std::int64_t>(st.pool.queue_limit()),
                             .retry_after_s = 1};
    }
    if (args.trace_seq != 0) {
        st.trace.record(trace_job{.seq = args.trace_seq,
                                  .lane = static_cast<std::uint16_t>(st.pool.lane_of(out.worker)),
                                  .enqueued = out.timing.enqueued,
                                  .started = out.timing.started,
                                  .finished = out.timing.finished});
    }
    if (out.status == job_status::failed) {
        co_return http_error{.status = http::status::internal_server_error,
                             .code = "job_failed",
                             .message = "encoding the trace failed"};
    }
    co_return handler_output{
        .work = work_report{.model = "worker-pool",
                            .queue = out.timing.queue(),
                            .service = out.timing.service(),
                            .cpu = out.timing.cpu,
                            .core_start = out.timing.core_start,
                            .core_end = out.timing.core_end,
                            .worker = out.worker},
        .binary = binary_body{.content_type = "application/json", .data = std::move(out.value)},
        .lease = std::move(lease)};
}

} // namespace duet::server
