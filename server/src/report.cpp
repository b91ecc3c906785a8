#include <duet/server/report.hpp>

#include <fmt/format.h>

#include <algorithm>
#include <random>

namespace duet::server {
namespace {

// Microseconds with nanosecond precision: 3.217 rather than 3.
double micros(std::chrono::nanoseconds d)
{
    return static_cast<double>(d.count()) / 1000.0;
}

nlohmann::ordered_json thread_json(const thread_ident* t)
{
    if (t == nullptr) {
        return nullptr;
    }
    return {{"name", t->name}, {"tid", t->tid}};
}

bool valid_client_id(std::string_view id)
{
    return !id.empty() && id.size() <= 64 && std::all_of(id.begin(), id.end(), [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
               c == '_' || c == ':' || c == '-';
    });
}

} // namespace

std::string report_body(const report_context& ctx, const handler_output& out)
{
    const auto& w = out.work;
    nlohmann::ordered_json report = {
        {"id", ctx.id},
        {"endpoint", ctx.endpoint},
        {"params", ctx.params},
        {"model", w.model},
        {"timing_us",
         {{"total", micros(ctx.total)}, {"queue", micros(w.queue)}, {"service", micros(w.service)}}},
        {"threads", {{"io", thread_json(ctx.io_thread)}, {"worker", thread_json(w.worker)}}},
        {"cores", {{"start", w.core_start}, {"end", w.core_end}}},
        {"cpu_time_us", micros(w.cpu)},
    };
    if (!out.split.is_null()) {
        report["split"] = out.split;
    }
    nlohmann::ordered_json body = {{"result", out.result}, {"report", std::move(report)}};
    return body.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
}

std::string server_timing(std::chrono::nanoseconds queue, std::chrono::nanoseconds service,
                          std::chrono::nanoseconds total)
{
    auto ms = [](std::chrono::nanoseconds d) { return static_cast<double>(d.count()) / 1e6; };
    return fmt::format("queue;dur={:.3f}, service;dur={:.3f}, total;dur={:.3f}", ms(queue), ms(service),
                       ms(total));
}

request_ids::request_ids() : prefix_{std::random_device{}()} {}

std::string request_ids::next(std::string_view from_client)
{
    if (valid_client_id(from_client)) {
        return std::string{from_client};
    }
    return fmt::format("{:08x}-{:x}", prefix_, ++sequence_);
}

} // namespace duet::server
