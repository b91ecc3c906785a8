#include <duet/server/wait_queue.hpp>

#include <boost/asio/append.hpp>
#include <boost/asio/error.hpp>
#include <boost/asio/post.hpp>

#include <optional>
#include <utility>

namespace duet::server {

namespace net = boost::asio;

wait_queue::wait_queue(net::execution_context& owner, io_executor ex, clock::duration slack)
    : service{owner}, timer_{std::move(ex)}, slack_{slack}
{}

void wait_queue::start(clock::time_point due, handler h)
{
    auto slot = net::get_associated_cancellation_slot(h);
    auto w = waits_.emplace_hint(waits_.end(), due, wait{std::move(h), slot});
    if (slot.is_connected()) {
        // The slot keeps this handler until the coroutine's next operation replaces it, which may be after
        // the wait has ended: so it forgets the wait once it has cancelled it, and a wait that ends clears
        // the slot first.
        slot.assign([this, w = std::optional{w}](net::cancellation_type) mutable {
            if (w) {
                cancel(*std::exchange(w, std::nullopt));
            }
        });
    }
    arm();
}

void wait_queue::cancel(wait_map::iterator w)
{
    // Posted, not called: the canceller is in the middle of emitting its signal.
    net::post(timer_.get_executor(), net::append(std::move(w->second.done), net::error::operation_aborted));
    waits_.erase(w);
    arm();
}

void wait_queue::on_timer()
{
    armed_ = clock::time_point::max();
    auto now = clock::now();
    // A resumed request may start a wait or cancel one: the map is read afresh each time round.
    while (!waits_.empty() && waits_.begin()->first <= now) {
        auto node = waits_.extract(waits_.begin());
        node.mapped().slot.clear();
        auto done = std::move(node.mapped().done);
        node = {}; // the memory goes back before the request resumes, for it to reuse
        std::move(done)(boost::system::error_code{});
    }
    arm();
}

// Keeps the timer set to the earliest deadline plus the slack while any wait is pending (the pending timer is
// also what keeps io_context::run from returning), and not set at all when none is.
void wait_queue::arm()
{
    if (waits_.empty()) {
        if (armed_ != clock::time_point::max()) {
            armed_ = clock::time_point::max();
            timer_.cancel();
        }
        return;
    }
    auto at = waits_.begin()->first + slack_;
    if (at >= armed_) {
        return; // it fires early enough; the waits not yet due then re-arm it
    }
    armed_ = at;
    timer_.expires_at(at); // a wait already pending ends with operation_aborted, which is ignored
    timer_.async_wait([this](const boost::system::error_code& ec) {
        if (!ec) {
            on_timer();
        }
    });
}

void wait_queue::shutdown()
{
    // Destroying a suspended request's handler destroys its coroutine frames, as the io_context does with the
    // operations it owns; nothing is invoked.
    for (auto& [due, w] : waits_) {
        w.slot.clear();
    }
    waits_.clear();
    armed_ = clock::time_point::max();
}

} // namespace duet::server
