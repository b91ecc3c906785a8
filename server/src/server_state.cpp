// The shared state's construction, and the end of a session: its exception logged, the drain finished.
#include <duet/server/handlers.hpp>
#include <duet/server/server_state.hpp>

#include <spdlog/spdlog.h>

#include <algorithm>

namespace duet::server {

namespace {

std::vector<std::string> paths(const router& r)
{
    std::vector<std::string> out;
    for (const auto& e : r.endpoints()) {
        out.push_back(e.path);
    }
    return out;
}

} // namespace

server_state::server_state(const duet::config& c, worker_pool& p, const cpu_allowance& allowance,
                           std::uint64_t file_bytes)
    : cfg{c}, pool{p}, cpus{allowance}, routes{make_endpoints(c, p.size(), file_bytes)},
      index_body{make_index(routes)}, stats{c, paths(routes), allowance.usable},
      trace{static_cast<std::size_t>(c.trace.capacity), c.trace.enabled}
{}

void server_state::session_ended(const std::exception_ptr& e)
{
    if (e) {
        try {
            std::rethrow_exception(e);
        } catch (const std::exception& ex) {
            spdlog::error("connection ended by an unexpected exception: {}", ex.what());
        } catch (...) {
            spdlog::error("connection ended by an unexpected exception of unknown type");
        }
    }
    --open_connections;
    if (draining && open_connections == 0 && drain_waiter != nullptr) {
        drain_waiter->cancel();
    }
}

} // namespace duet::server
