#include <duet/server/http_error.hpp>

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
    // Client bytes (a parameter name) may be invalid UTF-8: replace them rather than throw.
    return nlohmann::ordered_json{{"error", std::move(e)}}.dump(
        -1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
}

} // namespace duet::server
