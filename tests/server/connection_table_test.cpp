// The connection_slot table without a server: slots taken and freed, deadlines found by the sweep.
#include <duet/server/connection_table.hpp>

#include <boost/asio/io_context.hpp>
#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <optional>
#include <vector>

namespace {

namespace net = boost::asio;
using duet::server::coarse_clock;
using duet::server::connection_slot;
using duet::server::connection_table;
using duet::server::tcp_socket;
using namespace std::chrono_literals;

std::vector<const tcp_socket*> due(const connection_table& t, coarse_clock::time_point now)
{
    std::vector<const tcp_socket*> out;
    t.for_each_due(now, [&](connection_slot& c) { out.push_back(&c.socket); });
    return out;
}

std::size_t count(const connection_table& t)
{
    std::size_t n = 0;
    t.for_each([&](connection_slot&) { ++n; });
    return n;
}

TEST(ConnectionTable, TheSweepFindsOnlyThePassedDeadlines)
{
    net::io_context ioc;
    connection_table table;
    tcp_socket a{ioc}, b{ioc}, c{ioc};
    connection_slot ca{a, table}, cb{b, table}, cc{c, table};
    const auto now = coarse_clock::now();
    ca.arm_until(now - 1ms);
    cb.arm_until(now + 1h);
    // cc has no deadline
    EXPECT_EQ(due(table, now), std::vector<const tcp_socket*>{&a});
    EXPECT_EQ(due(table, now + 2h), (std::vector<const tcp_socket*>{&a, &b}));
    ca.disarm();
    EXPECT_TRUE(due(table, now + 2h) == std::vector<const tcp_socket*>{&b});
    cb.expired = true; // as the sweep leaves it; a new deadline starts afresh
    cb.arm_until(now - 1ms);
    EXPECT_FALSE(cb.expired);
    EXPECT_EQ(count(table), 3U);
}

// A connection_slot that closes leaves the table, deadline and all; the next one takes its slot, without its
// deadline.
TEST(ConnectionTable, AClosedConnectionsSlotIsReusedWithoutItsDeadline)
{
    net::io_context ioc;
    connection_table table;
    tcp_socket a{ioc}, b{ioc}, c{ioc};
    const auto now = coarse_clock::now();
    connection_slot ca{a, table};
    {
        connection_slot cb{b, table};
        cb.arm_until(now - 1ms);
        EXPECT_EQ(count(table), 2U);
    }
    EXPECT_EQ(count(table), 1U);
    EXPECT_TRUE(due(table, now).empty());
    connection_slot cc{c, table};
    EXPECT_EQ(count(table), 2U);
    EXPECT_EQ(table.slots(), 2U); // b's slot, not a new one
    EXPECT_TRUE(due(table, now).empty());
    cc.arm_until(now - 1ms);
    EXPECT_EQ(due(table, now), std::vector<const tcp_socket*>{&c});
}

// Many connections opening and closing in any order: every open one is seen once, none that closed.
TEST(ConnectionTable, SeesEveryOpenConnectionOnce)
{
    net::io_context ioc;
    connection_table table;
    std::vector<std::unique_ptr<tcp_socket>> sockets;
    std::vector<std::optional<connection_slot>> conns(1000);
    for (std::size_t i = 0; i < conns.size(); ++i) {
        sockets.push_back(std::make_unique<tcp_socket>(ioc));
        conns[i].emplace(*sockets[i], table);
    }
    for (std::size_t i = 0; i < conns.size(); i += 3) {
        conns[i].reset();
    }
    for (std::size_t i = 0; i < conns.size(); i += 6) {
        conns[i].emplace(*sockets[i], table);
    }
    std::vector<int> seen(conns.size(), 0);
    table.for_each([&](connection_slot& c) {
        for (std::size_t i = 0; i < sockets.size(); ++i) {
            if (&c.socket == sockets[i].get()) {
                ++seen[i];
            }
        }
    });
    for (std::size_t i = 0; i < conns.size(); ++i) {
        EXPECT_EQ(seen[i], conns[i] ? 1 : 0) << i;
    }
    EXPECT_EQ(table.slots(), conns.size()); // the reopened ones took the freed slots
}

} // namespace
