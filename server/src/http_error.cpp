// A refusal's JSON body.
#include <duet/server/http_error.hpp>
#include <duet/server/report.hpp>

#include <nlohmann/json.hpp>

namespace duet::server {

std::string http_error::body() const
{
    nlohmann::ordered_json e = {
        {"status", static_cast<unsigned>(status)},
        {"code", code},
        {"message", message},
    };
    if (!param.empty()) {
        e["param"] = param;
    }
    if (limit) {
        e["limit"] = *limit;
    }
    if (upstream_status != 0) {
        e["upstream_status"] = upstream_status;
    }
    // Client bytes (a parameter name) may be invalid UTF-8: json_text replaces them rather than throw.
    return json_text(nlohmann::ordered_json{{"error", std::move(e)}});
}

} // namespace duet::server
