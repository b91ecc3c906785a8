// The latest /stats snapshot, shared by every /stats/stream subscriber: publish wakes them, next waits.
#include <duet/server/event_feed.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <algorithm>

namespace duet::server {

namespace net = boost::asio;

task<event_feed::message> event_feed::next(std::uint64_t& seen)
{
    // A timer that never expires by itself serves as the wake-up: publish() and close() cancel it.
    io_timer wake{co_await net::this_coro::executor, io_timer::time_point::max()};
    while (!closed_ && sequence_ <= seen) {
        waiters_.push_back(&wake);
        co_await wake.async_wait(net::as_tuple(use_task)); // cancelled: there is news
        waiters_.erase(std::find(waiters_.begin(), waiters_.end(), &wake));
    }
    if (closed_) {
        co_return nullptr;
    }
    seen = sequence_;
    co_return latest_;
}

void event_feed::publish(std::string data)
{
    latest_ = std::make_shared<const std::string>(std::move(data));
    ++sequence_;
    wake_all();
}

void event_feed::close()
{
    closed_ = true;
    wake_all();
}

void event_feed::wake_all()
{
    for (auto* w : waiters_) {
        w->cancel();
    }
}

} // namespace duet::server
