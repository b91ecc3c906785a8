#pragma once
// The server's open connections as its server-wide operations see them: one deadline each, read by one sweep,
// and the socket the sweep and the drain cancel.

#include <duet/server/io.hpp>

#include <chrono>
#include <cstdint>
#include <vector>

namespace duet::server {

/// CLOCK_MONOTONIC_COARSE: a few nanoseconds to read and a few milliseconds of resolution, which is what a
/// deadline of seconds needs (steady_clock costs five times as much, and a connection sets several deadlines
/// per request).
struct coarse_clock
{
    using duration = std::chrono::nanoseconds;
    using rep = duration::rep;
    using period = duration::period;
    using time_point = std::chrono::time_point<coarse_clock>;
    static constexpr bool is_steady = true;
    static time_point now() noexcept;
};

class connection_table;

/// A connection's place in the connection_table, for as long as it lives: registered when made, removed when
/// destroyed. Instead of a timer per operation (set, cancelled and re-set several times per request), an
/// operation that must end in time sets a deadline here, and one sweep over the table (server.cpp) cancels
/// the socket's operations once it has passed and marks the slot `expired`.
class connection_slot
{
public:
    connection_slot(tcp_socket& s, connection_table& table);
    ~connection_slot();
    connection_slot(const connection_slot&) = delete;
    connection_slot& operator=(const connection_slot&) = delete;

    /// The next socket operation must finish within `timeout` from now, or by `at`.
    void arm(std::chrono::milliseconds timeout) noexcept { arm_until(coarse_clock::now() + timeout); }
    void arm_until(coarse_clock::time_point at) noexcept;
    void disarm() noexcept;

    tcp_socket& socket;
    bool expired = false; ///< the sweep cancelled the operation in progress at its deadline
    bool idle = true;     ///< waiting for the first byte of its next request: safe to close during a drain

private:
    connection_table& table_;
    std::uint32_t index_;
};

/// The open connections and their deadlines, in two arrays indexed by a slot number that each connection
/// keeps while it is open (freed numbers are reused, last freed first). The sweep reads only the deadlines: 8
/// contiguous bytes per slot, 80 KB for 10,000 connections, where walking the connections themselves, one per
/// coroutine frame scattered over the heap, cost milliseconds in cache and TLB misses (docs/ARCHITECTURE.md).
/// I/O thread only.
class connection_table
{
public:
    using time_point = coarse_clock::time_point;

    std::uint32_t add(connection_slot& c);
    void remove(std::uint32_t index) noexcept;
    void set_deadline(std::uint32_t index, time_point at) noexcept { deadlines_[index] = at; }
    /// Slots in use or free: the most connections open at once so far, which is what the sweep reads.
    std::size_t slots() const noexcept { return connections_.size(); }

    /// Calls f(connection_slot&) for every open connection.
    template <typename F>
    void for_each(F&& f) const
    {
        for (auto* c : connections_) {
            if (c != nullptr) {
                f(*c);
            }
        }
    }

    /// Calls f(connection_slot&) for every connection whose deadline is at or before `now` (a free slot has
    /// none).
    template <typename F>
    void for_each_due(time_point now, F&& f) const
    {
        for (std::size_t i = 0; i < deadlines_.size(); ++i) {
            if (deadlines_[i] <= now) {
                f(*connections_[i]);
            }
        }
    }

private:
    std::vector<time_point> deadlines_;         ///< time_point::max(): no deadline, or a free slot
    std::vector<connection_slot*> connections_; ///< null: a free slot
    std::vector<std::uint32_t> free_slots_;
};

} // namespace duet::server
