// The slack timer: waits in deadline order, one Asio timer set to the earliest plus the slack, cancellation
// per wait.
#include <duet/server/slack_timer.hpp>

#include <boost/asio/append.hpp>
#include <boost/asio/error.hpp>
#include <boost/asio/post.hpp>

#include <optional>
#include <utility>

namespace duet::server {

namespace net = boost::asio;

slack_timer::slack_timer(net::execution_context& owner, io_executor ex, clock::duration slack)
    : service{owner}, timer_{std::move(ex)}, slack_{slack}
{}

void slack_timer::start(clock::time_point due, handler h)
{
    auto slot = net::get_associated_cancellation_slot(h);
    wait_map::iterator w;
    if (spare_.empty()) {
        w = waits_.emplace_hint(waits_.end(), due, wait{std::move(h), slot});
    } else {
        auto node = std::move(spare_.back());
        spare_.pop_back();
        node.key() = due;
        // Swapped in: Boost 1.81's any_completion_handler move assignment wraps its argument in a new handler
        // instead of moving it, recursing without end.
        node.mapped().done.swap(h);
        node.mapped().slot = slot;
        w = waits_.insert(waits_.end(), std::move(node));
    }
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

void slack_timer::cancel(wait_map::iterator w)
{
    // Posted, not called: the canceller is in the middle of emitting its signal.
    net::post(timer_.get_executor(), net::append(std::move(w->second.done), net::error::operation_aborted));
    recycle(waits_.extract(w));
    arm();
}

void slack_timer::on_timer()
{
    armed_ = clock::time_point::max();
    auto now = clock::now();
    try {
        // A resumed request may start a wait or cancel one: the map is read afresh each time round.
        while (!waits_.empty() && waits_.begin()->first <= now) {
            auto node = waits_.extract(waits_.begin());
            node.mapped().slot.clear();
            auto done = std::move(node.mapped().done);
            recycle(std::move(node)); // before the request resumes, which may start a wait that reuses it
            std::move(done)(boost::system::error_code{});
        }
    } catch (...) {
        arm(); // the waits left still need the timer, should the loop run again
        throw;
    }
    arm();
}

void slack_timer::recycle(wait_map::node_type node)
{
    if (spare_.size() < max_spare) {
        spare_.push_back(std::move(node));
    }
}

// Keeps the timer set to the earliest deadline plus the slack while any wait is pending (the pending timer is
// also what keeps io_context::run from returning), and not set at all when none is.
void slack_timer::arm()
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

void slack_timer::shutdown()
{
    // Nothing is invoked. Destroying a suspended request's handler hands its coroutine frames to the
    // scheduler, which destroys them in its own shutdown, after this one (services shut down newest first),
    // as it does the operations it owns.
    for (auto& [due, w] : waits_) {
        w.slot.clear();
    }
    waits_.clear();
    spare_.clear();
    armed_ = clock::time_point::max();
}

} // namespace duet::server
