// The I/O endpoints (/io/sleep, /io/fanout): waits on the slack timer, which cost no CPU while they last.
#include <duet/server/cpu_meter.hpp>
#include <duet/server/handlers.hpp>
#include <duet/server/server_state.hpp>
#include <duet/server/slack_timer.hpp>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/deferred.hpp>
#include <boost/asio/experimental/parallel_group.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <chrono>
#include <vector>

namespace duet::server {

namespace net = boost::asio;
using std::chrono::steady_clock;

task<handler_result> io_sleep(server_state& st, handler_args args)
{
    const auto& p = args.params;
    cpu_meter cpu;
    work_report work{.model = "event-loop", .core_start = current_core()};
    auto ms = std::chrono::milliseconds{p.get("ms")};
    auto start = steady_clock::now();

    cpu.pause();
    if (ms.count() == 0) {
        // A wait of nothing is a yield: the request goes once to the back of the loop's queue, as an expired
        // wait's would, without the wait queue.
        co_await net::post(co_await net::this_coro::executor, use_task);
    } else {
        // Cancelled (it then ends at once) when the client goes away; destroyed with the server.
        co_await st.wait_timer->async_wait_until(start + ms, net::as_tuple(use_task));
    }
    cpu.resume();

    work.service = steady_clock::now() - start;
    work.core_end = current_core();
    work.cpu = cpu.total();
    auto late = std::chrono::duration_cast<std::chrono::microseconds>(work.service - ms);
    co_return handler_output{{{"slept_ms", ms.count()}, {"late_us", late.count()}}, work};
}

task<handler_result> io_fanout(server_state& st, handler_args args)
{
    const auto& p = args.params;
    cpu_meter cpu;
    work_report work{.model = "event-loop", .core_start = current_core()};
    auto n = static_cast<std::size_t>(p.get("n"));
    auto ms = std::chrono::milliseconds{p.get("ms")};

    // n independent waits, all started now; the request resumes once when the last one ends.
    auto start = steady_clock::now();
    using wait_op = decltype(st.wait_timer->async_wait_until(start, net::deferred));
    std::vector<wait_op> waits;
    waits.reserve(n);
    for (std::size_t i = 0; i < n; ++i) {
        waits.push_back(st.wait_timer->async_wait_until(start + ms, net::deferred));
    }

    cpu.pause();
    co_await net::experimental::make_parallel_group(std::move(waits))
        .async_wait(net::experimental::wait_for_all(), use_task);
    cpu.resume();

    work.service = steady_clock::now() - start;
    work.core_end = current_core();
    work.cpu = cpu.total();
    auto sequential = ms * static_cast<std::int64_t>(n);
    co_return handler_output{{{"waits", n}, {"ms_each", ms.count()}, {"sequential_ms", sequential.count()}},
                             work};
}

} // namespace duet::server
