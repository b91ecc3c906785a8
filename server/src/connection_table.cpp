// The connection table: slots added and removed without allocating on removal, deadlines set per slot.
#include <duet/server/connection_table.hpp>

#include <algorithm>

#include <time.h>

namespace duet::server {

coarse_clock::time_point coarse_clock::now() noexcept
{
    timespec ts{};
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    return time_point{std::chrono::seconds{ts.tv_sec} + std::chrono::nanoseconds{ts.tv_nsec}};
}

connection_slot::connection_slot(tcp_socket& s, connection_table& table)
    : socket{s}, table_{table}, index_{table.add(*this)}
{}

connection_slot::~connection_slot()
{
    table_.remove(index_);
}

void connection_slot::arm_until(coarse_clock::time_point at) noexcept
{
    table_.set_deadline(index_, at);
    expired = false;
}

void connection_slot::disarm() noexcept
{
    table_.set_deadline(index_, coarse_clock::time_point::max());
}

std::uint32_t connection_table::add(connection_slot& c)
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
    auto index = free_slots_.back();
    free_slots_.pop_back();
    connections_[index] = &c;
    return index;
}

void connection_table::remove(std::uint32_t index) noexcept
{
    deadlines_[index] = time_point::max();
    connections_[index] = nullptr;
    free_slots_.push_back(index); // within the capacity add reserved
}

} // namespace duet::server
