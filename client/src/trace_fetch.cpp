// Taking the server's timeline after a run: one GET /trace on a fresh connection, with a deadline, read
// whole.
#include <duet/client/trace_fetch.hpp>

#include <duet/client/http_get.hpp>

#include <nlohmann/json.hpp>

namespace duet::client {

namespace {

// A trace is at most the server's ring, encoded: tens of megabytes with a large trace.capacity.
constexpr std::uint64_t max_trace_bytes = 512ULL << 20U;

http_answer get(const url& target, const std::string& path, std::chrono::milliseconds timeout)
{
    try {
        return http_get(target, path, timeout, max_trace_bytes);
    } catch (const http_get_error& e) {
        throw trace_error{e.what()};
    }
}

} // namespace

fetched_trace fetch_trace(const url& target, std::chrono::milliseconds window,
                          std::chrono::milliseconds timeout)
{
    auto ms = std::max<std::int64_t>(window.count(), 1);
    for (int attempt = 0; attempt < 2; ++attempt) {
        const auto res = get(target, "/trace?ms=" + std::to_string(ms), timeout);
        if (res.status == 200) {
            return {res.body, ms};
        }
        const auto error = nlohmann::json::parse(res.body, nullptr, false);
        const auto& e = error.is_object() && error.contains("error") ? error["error"] : nlohmann::json{};
        if (res.status == 400 && e.value("code", "") == "out_of_range" && e.contains("limit") &&
            attempt == 0) {
            ms = e["limit"].get<std::int64_t>(); // the server keeps less than the run lasted: its most
            continue;
        }
        if (res.status == 404) {
            throw trace_error{target.authority() + " has no /trace: is it a duet-server?"};
        }
        throw trace_error{"GET /trace on " + target.authority() + ": " + std::to_string(res.status) + " " +
                          e.value("message", std::string{"(not a duet error)"})};
    }
    throw trace_error{"GET /trace on " + target.authority() + " refused every window"};
}

} // namespace duet::client
