#pragma once
// Endpoints and the router that maps a method and target to one, with its validated parameters.

#include <duet/server/http_error.hpp>
#include <duet/server/http_types.hpp>
#include <duet/server/io.hpp>
#include <duet/server/params.hpp>
#include <duet/server/report.hpp>

#include <boost/asio/awaitable.hpp>
#include <boost/beast/http/verb.hpp>
#include <boost/system/result.hpp>

#include <string>
#include <string_view>
#include <vector>

namespace duet::server {

struct server_state;

/// What a reporting handler produces: the result and how the work ran, or a refusal.
using handler_result = boost::system::result<handler_output, http_error>;

/// What a reporting handler is called with: the request's validated parameters, its number in the timeline,
/// under which it records its CPU jobs (0: not recorded), and its id.
struct handler_args
{
    const param_values& params;
    std::uint64_t trace_seq = 0;
    std::string_view id{}; ///< the request's id (X-Request-Id), which /io/call passes on to its upstream
};

/// A handler whose response carries a report (/io/*, /cpu/*). Runs on the I/O thread; may suspend.
using report_handler = task<handler_result> (*)(server_state&, handler_args);

/// A handler that answers at once with a fixed shape and no report (/, /healthz, /readyz).
using plain_handler = response (*)(server_state&, const request&);

/// One endpoint: its path, parameters and the model it demonstrates. Exactly one of handler and plain is set.
struct endpoint
{
    std::string path{};
    std::string model{};        ///< "event-loop", "worker-pool or inline", or "none"
    std::string demonstrates{}; ///< one line for the index
    std::vector<param_spec> params{};
    report_handler handler = nullptr;
    plain_handler plain = nullptr;
};

/// Maps (method, target) to an endpoint and its validated parameters. Built once; immutable after that.
class router
{
public:
    explicit router(std::vector<endpoint> endpoints);

    struct match
    {
        const endpoint* ep;
        param_values params;
    };

    /// 404 for an unknown path, 405 (with Allow) for a method other than GET or HEAD, 400 for bad parameters
    /// and for a target in neither origin nor absolute form (an asterisk, "host:port").
    boost::system::result<match, http_error> route(boost::beast::http::verb method,
                                                   std::string_view target) const;

    /// The endpoint at the target's path (the query is ignored), or null.
    const endpoint* find(std::string_view target) const noexcept;

    const std::vector<endpoint>& endpoints() const noexcept { return endpoints_; }

    /// The position of ep in endpoints().
    std::size_t index_of(const endpoint* ep) const noexcept
    {
        return static_cast<std::size_t>(ep - endpoints_.data());
    }

private:
    std::vector<endpoint> endpoints_;
};

} // namespace duet::server
