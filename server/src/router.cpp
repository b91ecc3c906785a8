// The endpoint table's lookup: which endpoint a target names, in which forms a target may come, and the
// strict check of its parameters.
#include <duet/server/router.hpp>

#include <algorithm>
#include <optional>

namespace duet::server {

namespace http = boost::beast::http;

namespace {

// The origin form of a request target: "/path?query". A request may also arrive in absolute form
// ("http://host/path?query", RFC 9112 3.2.2, which servers must accept): its scheme and authority are
// skipped.
std::string_view origin_form(std::string_view target) noexcept
{
    for (std::string_view scheme : {"http://", "https://"}) {
        if (target.size() >= scheme.size() &&
            std::equal(scheme.begin(), scheme.end(), target.begin(),
                       [](char a, char b) { return a == (b >= 'A' && b <= 'Z' ? b - 'A' + 'a' : b); })) {
            auto rest = target.substr(scheme.size());
            auto start = rest.find_first_of("/?");
            return start == std::string_view::npos ? std::string_view{"/"} : rest.substr(start);
        }
    }
    return target;
}

// The forms of a request target (RFC 9112 3.2) besides the origin and absolute forms every method may use:
// the authority form ("host:port") is CONNECT's (which the parser refuses), the asterisk form ("*") OPTIONS's
// (answered before routing).
std::optional<http_error> unroutable(std::string_view target)
{
    if (target == "*") {
        return http_error{.status = http::status::bad_request,
                          .code = "bad_target",
                          .message = "the asterisk target (*) is for OPTIONS only"};
    }
    if (target.empty() || (target.front() != '/' && origin_form(target).size() == target.size())) {
        return http_error{.status = http::status::bad_request,
                          .code = "bad_target",
                          .message = "the target must be a path (/...) or an absolute URL (http://host/...)"};
    }
    return std::nullopt;
}

} // namespace

router::router(std::vector<endpoint> endpoints) : endpoints_{std::move(endpoints)} {}

const endpoint* router::find(std::string_view target) const noexcept
{
    const auto origin = origin_form(target);
    std::string_view path = origin.substr(0, origin.find('?'));
    if (path.empty() && origin.size() != target.size()) {
        path = "/"; // absolute form with a query and no path, http://host?x: the path is / (RFC 9112 3.2.2)
    }
    for (const auto& e : endpoints_) {
        if (e.path == path) {
            return &e;
        }
    }
    return nullptr;
}

boost::system::result<router::match, http_error> router::route(http::verb method,
                                                               std::string_view target) const
{
    if (auto refused = unroutable(target)) {
        return *std::move(refused);
    }
    const auto origin = origin_form(target);
    auto qmark = origin.find('?');
    std::string_view query = qmark == std::string_view::npos ? std::string_view{} : origin.substr(qmark + 1);
    const endpoint* ep = find(target);
    if (ep == nullptr) {
        return http_error{.status = http::status::not_found,
                          .code = "not_found",
                          .message = "no endpoint at this path; GET / lists them"};
    }
    if (method != http::verb::get && method != http::verb::head) {
        return http_error{.status = http::status::method_not_allowed,
                          .code = "method_not_allowed",
                          .message = "this endpoint accepts GET and HEAD only",
                          .allow = "GET, HEAD"};
    }
    auto params = parse_params(query, ep->params);
    if (!params) {
        return params.error();
    }
    return match{ep, *params};
}

} // namespace duet::server
