#include <duet/server/router.hpp>

namespace duet::server {

namespace http = boost::beast::http;

router::router(std::vector<endpoint> endpoints) : endpoints_{std::move(endpoints)} {}

const endpoint* router::find(std::string_view target) const noexcept
{
    std::string_view path = target.substr(0, target.find('?'));
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
    auto qmark = target.find('?');
    std::string_view query = qmark == std::string_view::npos ? std::string_view{} : target.substr(qmark + 1);
    const endpoint* ep = find(target);
    if (ep == nullptr) {
        return http_error{http::status::not_found,
                          "not_found",
                          "no endpoint at this path; GET / lists them",
                          {},
                          std::nullopt,
                          {},
                          {}};
    }
    if (method != http::verb::get && method != http::verb::head) {
        return http_error{http::status::method_not_allowed,
                          "method_not_allowed",
                          "this endpoint accepts GET and HEAD only",
                          {},
                          std::nullopt,
                          "GET, HEAD",
                          {}};
    }
    auto params = parse_params(query, ep->params);
    if (!params) {
        return params.error();
    }
    return match{ep, *params};
}

} // namespace duet::server
