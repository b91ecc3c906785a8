#pragma once
// The latest of a series of messages, shared by every subscriber (/stats/stream).

#include <duet/server/io.hpp>
#include <boost/asio/awaitable.hpp>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace duet::server {

/// The latest of a series of messages (/stats snapshots), shared by every subscriber: one copy however many
/// subscribe, and a subscriber that falls behind skips to the latest instead of queueing the ones it missed.
/// So memory stays bounded by one message whatever the subscribers do. I/O thread only.
class event_feed
{
public:
    using message = std::shared_ptr<const std::string>;

    /// Waits until a message newer than `seen` exists and returns it, updating `seen`; null once closed.
    task<message> next(std::uint64_t& seen);

    /// The latest message's number (0 before the first): a subscriber that starts with a fresh message of its
    /// own passes this to next() as `seen`, so that the latest, older than its own, is not sent after it.
    std::uint64_t sequence() const noexcept { return sequence_; }

    /// Makes data the latest message and wakes every waiting subscriber.
    void publish(std::string data);

    /// Ends the feed: waiting and future next() calls return null.
    void close();

    bool closed() const noexcept { return closed_; }

private:
    void wake_all();

    message latest_;
    std::uint64_t sequence_ = 0;
    bool closed_ = false;
    std::vector<io_timer*> waiters_; // of suspended next() calls: cancelled to wake them
};

} // namespace duet::server
