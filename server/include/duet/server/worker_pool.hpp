#pragma once
// The worker pool: a bounded queue, the workers that run CPU jobs, and async_submit, the asynchronous
// operation that hands a job over and its outcome back.

#include <duet/server/job.hpp>
#include <duet/thread_info.hpp>

#include <boost/asio/append.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/post.hpp>

#include <atomic>

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <latch>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <type_traits>
#include <vector>

namespace duet::server {

/// Where and how pool workers run. pin: worker i is pinned to the i-th CPU of the process's affinity mask
/// (modulo its size). nice: the workers' nice value, 0 (normal) to 19, so that the I/O thread wins a busy
/// core. spin: how long an idle worker polls for the next job before it sleeps; waking a sleeping thread on
/// an idle core costs tens of microseconds, which a short job would otherwise pay on every hand-off.
struct pool_placement
{
    bool pin = false;
    int nice = 0;
    std::chrono::microseconds spin{0};
};

/// A fixed set of worker threads (named duet-w0, duet-w1, …) that run CPU jobs, fed by one bounded FIFO
/// queue. The blocking pool of mode=threads is one too, whose threads (duet-b0, …) block in a wait.
///
/// async_submit is an asynchronous operation in Asio's sense: it returns at once, the job runs on a worker,
/// and the completion handler runs on the handler's associated executor (for a coroutine, the I/O thread that
/// awaits it) with a job_outcome. Workers never touch sockets or request state; they only run the job and
/// post its outcome back. While a job is outstanding it holds work on that executor, so io_context::run()
/// waits.
///
/// Thread safety: async_submit and queued() may be called from any thread; stop() from one thread, once the
/// io_contexts that receive results have stopped running.
class worker_pool
{
public:
    /// Starts `workers` threads (at least one) and returns once each has named and placed itself. At most
    /// queue_limit jobs wait for a free worker; a job beyond that completes at once with job_status::rejected
    /// (admission control, not unbounded memory). Thread i is named `name` followed by i.
    worker_pool(unsigned workers, std::size_t queue_limit, pool_placement where = {},
                std::string name = "duet-w");
    ~worker_pool();

    worker_pool(const worker_pool&) = delete;
    worker_pool& operator=(const worker_pool&) = delete;

    unsigned size() const noexcept { return static_cast<unsigned>(threads_.size()); }
    std::size_t queue_limit() const noexcept { return queue_limit_; }

    /// Jobs waiting for a worker right now.
    std::size_t queued() const;

    /// What one worker has done so far, read from its counters without a lock (each value is current;
    /// together they may be a job apart).
    struct worker_view
    {
        thread_ident ident;
        int pinned_cpu = -1; ///< the CPU it is pinned to, or -1
        int nice = 0;
        bool busy = false;
        std::uint64_t jobs = 0;
        std::chrono::nanoseconds busy_time{};
        std::chrono::nanoseconds cpu_time{};
    };
    std::vector<worker_view> workers() const;

    /// Workers running a job right now.
    unsigned busy() const;

    /// A job's lane in the timeline: i + 1 for worker i (whose ident a job outcome points to), 0 for none.
    std::size_t lane_of(const thread_ident* worker) const noexcept
    {
        if (worker == nullptr || worker < idents_.data() || worker >= idents_.data() + idents_.size()) {
            return 0;
        }
        return static_cast<std::size_t>(worker - idents_.data()) + 1;
    }

    /// Workers finish the job they are running and exit; jobs still queued are destroyed without running.
    /// Idempotent. Call it after the io_contexts that receive results stopped running.
    void stop();

    /// Runs f() on a worker. Completion signature: void(job_outcome<R>), R = f's result.
    template <typename F, typename CompletionToken>
    auto async_submit(F f, CompletionToken&& token)
    {
        using result_type = std::invoke_result_t<F&>;
        return boost::asio::async_initiate<CompletionToken, void(job_outcome<result_type>)>(
            [this](auto handler, F job_fn) {
                using handler_type = decltype(handler);
                push(std::make_unique<job_impl<F, handler_type>>(std::move(job_fn), std::move(handler)));
            },
            token, std::move(f));
    }

private:
    struct job
    {
        virtual ~job() = default;
        virtual job_timing run(const thread_ident& worker) = 0; // on a worker thread
        virtual void reject() = 0;                              // when it cannot be queued
        std::chrono::steady_clock::time_point enqueued;
    };

    template <typename F, typename Handler>
    class job_impl final : public job
    {
    public:
        job_impl(F f, Handler handler)
            : f_{std::move(f)}, handler_{std::move(handler)}, work_{boost::asio::make_work_guard(handler_)}
        {}

        job_timing run(const thread_ident& worker) override
        {
            auto out = run_measured(f_);
            out.timing.enqueued = enqueued;
            out.worker = &worker;
            auto timing = out.timing;
            complete(std::move(out));
            return timing;
        }

        void reject() override
        {
            outcome_type out;
            out.status = job_status::rejected;
            out.timing.enqueued = out.timing.started = out.timing.finished = enqueued;
            complete(std::move(out));
        }

    private:
        using outcome_type = job_outcome<std::invoke_result_t<F&>>;

        // Hand the outcome to the handler's own executor: the I/O thread resumes the request, not the worker.
        void complete(outcome_type out)
        {
            auto ex = work_.get_executor();
            boost::asio::post(ex, boost::asio::append(std::move(handler_), std::move(out)));
            work_.reset();
        }

        F f_;
        Handler handler_;
        boost::asio::executor_work_guard<boost::asio::associated_executor_t<Handler>> work_;
    };

    void push(std::unique_ptr<job> j);
    void worker_main(unsigned index, std::latch& ready, pool_placement where, int cpu,
                     const std::string& name);

    // Written only by its worker, read by anyone: relaxed atomics, one cache line per worker so that workers
    // never share a line they write.
    struct alignas(64) worker_counters
    {
        std::atomic<bool> busy{false};
        std::atomic<std::uint64_t> jobs{0};
        std::atomic<std::int64_t> busy_ns{0};
        std::atomic<std::int64_t> cpu_ns{0};
    };

    std::size_t queue_limit_;
    mutable std::mutex mutex_;
    std::condition_variable wake_;
    std::deque<std::unique_ptr<job>> queue_; // guarded by mutex_
    bool stopping_ = false;                  // guarded by mutex_
    unsigned sleepers_ = 0;                  // guarded by mutex_: workers blocked on wake_
    std::atomic<std::size_t> pending_{0};    // queue_.size(), for spinning workers to read without the lock
    std::atomic<bool> stopping_flag_{false}; // stopping_, likewise
    std::vector<thread_ident> idents_;       // slot i written by worker i before the constructor returns
    std::vector<int> pinned_;                // likewise: the CPU worker i is pinned to, or -1
    std::vector<int> nice_;                  // likewise: its nice value
    std::unique_ptr<worker_counters[]> counters_;
    std::vector<std::thread> threads_;
};

} // namespace duet::server
