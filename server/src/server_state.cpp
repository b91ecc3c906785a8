#include <duet/server/handlers.hpp>
#include <duet/server/server_state.hpp>

#include <spdlog/spdlog.h>

#include <algorithm>

#include <time.h>

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

coarse_clock::time_point coarse_clock::now() noexcept
{
    timespec ts{};
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    return time_point{std::chrono::seconds{ts.tv_sec} + std::chrono::nanoseconds{ts.tv_nsec}};
}

connection::connection(tcp_socket& s, connection_table& table)
    : socket{s}, table_{table}, slot_{table.add(*this)}
{}

connection::~connection()
{
    table_.remove(slot_);
}

void connection::arm_until(coarse_clock::time_point at) noexcept
{
    table_.set_deadline(slot_, at);
    expired = false;
}

void connection::disarm() noexcept
{
    table_.set_deadline(slot_, coarse_clock::time_point::max());
}

std::uint32_t connection_table::add(connection& c)
{
    if (free_slots_.empty()) {
        // Room first, in all three arrays, so that a failed allocation leaves the table as it was, and so
        // that remove never allocates.
        const auto room = std::max<std::size_t>(16, 2 * connections_.size());
        if (connections_.size() ==
            std::min({deadlines_.capacity(), connections_.capacity(), free_slots_.capacity()})) {
            deadlines_.reserve(room);
            connections_.reserve(room);
            free_slots_.reserve(room);
        }
        deadlines_.push_back(time_point::max());
        connections_.push_back(&c);
        return static_cast<std::uint32_t>(connections_.size() - 1);
    }
    auto slot = free_slots_.back();
    free_slots_.pop_back();
    connections_[slot] = &c;
    return slot;
}

void connection_table::remove(std::uint32_t slot) noexcept
{
    deadlines_[slot] = time_point::max();
    connections_[slot] = nullptr;
    free_slots_.push_back(slot); // within the capacity add reserved
}

server_state::server_state(const duet::config& c, worker_pool& p, const cpu_allowance& allowance)
    : cfg{c}, pool{p}, cpus{allowance}, routes{make_endpoints(c, p.size())},
      index_body{make_index(routes)}, stats{c, paths(routes), allowance.usable}
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
