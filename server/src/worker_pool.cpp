// The worker pool's threads: placement, the spin before sleeping, running a job measured, and posting its
// outcome back.
#include <duet/server/worker_pool.hpp>

#include <duet/cpu_allowance.hpp>

#include <pthread.h>
#include <signal.h>

#include <algorithm>
#include <latch>
#include <string>

namespace duet::server {

namespace {

// Tells the CPU this is a spin-wait: it saves power and yields the core's pipeline to a sibling hyperthread.
inline void cpu_relax()
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    asm volatile("yield");
#endif
}

} // namespace

worker_pool::worker_pool(unsigned workers, std::size_t queue_limit, pool_placement where, std::string name)
    : queue_limit_{queue_limit}, idents_(std::max(1U, workers)), pinned_(idents_.size(), -1),
      nice_(idents_.size(), 0), counters_{std::make_unique<worker_counters[]>(idents_.size())}
{
    // Return only once every worker has named and placed itself: from then on `top -H`, the workers'
    // identities in reports and their placement are complete.
    std::latch ready{static_cast<std::ptrdiff_t>(idents_.size())};
    const auto cpus = affinity_cpus();
    threads_.reserve(idents_.size());
    for (unsigned i = 0; i < idents_.size(); ++i) {
        int cpu = where.pin && !cpus.empty() ? cpus[i % cpus.size()] : -1;
        threads_.emplace_back(
            [this, i, &ready, where, cpu, &name] { worker_main(i, ready, where, cpu, name); });
    }
    ready.wait();
}

worker_pool::~worker_pool()
{
    stop();
}

std::size_t worker_pool::queued() const
{
    std::lock_guard lock{mutex_};
    return queue_.size();
}

void worker_pool::push(std::unique_ptr<job> j)
{
    j->enqueued = std::chrono::steady_clock::now();
    bool wake = false;
    {
        std::lock_guard lock{mutex_};
        if (!stopping_ && queue_.size() < queue_limit_) {
            queue_.push_back(std::move(j));
            pending_.store(queue_.size(), std::memory_order_release);
            // A spinning worker will see pending_; only a sleeping one needs the (system-call) wake-up.
            wake = sleepers_ > 0;
        }
    }
    if (j) {
        j->reject();
        return;
    }
    if (wake) {
        wake_.notify_one();
    }
}

void worker_pool::stop()
{
    std::deque<std::unique_ptr<job>> abandoned;
    {
        std::lock_guard lock{mutex_};
        stopping_ = true;
        stopping_flag_.store(true, std::memory_order_release);
        abandoned.swap(queue_);
        pending_.store(0, std::memory_order_release);
    }
    wake_.notify_all();
    for (auto& t : threads_) {
        if (t.joinable()) {
            t.join();
        }
    }
    // `abandoned` is destroyed here, on the stopping thread: their handlers are dropped, never invoked.
}

void worker_pool::worker_main(unsigned index, std::latch& ready, pool_placement where, int cpu,
                              const std::string& name)
{
    // Signals for the process (SIGTERM's drain, SIGINT) are the I/O thread's to take: one delivered here
    // would interrupt a blocking thread's connect or recv (EINTR) for nothing.
    sigset_t signals;
    sigemptyset(&signals);
    for (int sig : {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGALRM, SIGCHLD, SIGPIPE}) {
        sigaddset(&signals, sig);
    }
    pthread_sigmask(SIG_BLOCK, &signals, nullptr);
    set_current_thread_name(name + std::to_string(index));
    idents_[index] = thread_ident::current();
    // Placement is best effort: a refusal leaves the worker where the kernel puts it, and workers() says so.
    if (cpu >= 0 && pin_current_thread(cpu)) {
        pinned_[index] = cpu;
    }
    if (where.nice != 0) {
        set_current_thread_nice(where.nice);
    }
    nice_[index] = current_thread_nice();
    ready.count_down();
    for (;;) {
        // Poll briefly before sleeping: a job that arrives meanwhile starts without a wake-up.
        auto spin_until = std::chrono::steady_clock::now() + where.spin;
        while (pending_.load(std::memory_order_acquire) == 0 &&
               !stopping_flag_.load(std::memory_order_acquire) &&
               std::chrono::steady_clock::now() < spin_until) {
            cpu_relax();
        }
        std::unique_ptr<job> j;
        {
            std::unique_lock lock{mutex_};
            ++sleepers_;
            wake_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
            --sleepers_;
            if (stopping_) {
                return;
            }
            j = std::move(queue_.front());
            queue_.pop_front();
            pending_.store(queue_.size(), std::memory_order_release);
        }
        auto& c = counters_[index];
        c.busy.store(true, std::memory_order_relaxed);
        auto t = j->run(idents_[index]);
        // Only this thread writes these: a load and a store, no read-modify-write needed.
        c.jobs.store(c.jobs.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
        c.busy_ns.store(c.busy_ns.load(std::memory_order_relaxed) + t.service().count(),
                        std::memory_order_relaxed);
        c.cpu_ns.store(c.cpu_ns.load(std::memory_order_relaxed) + t.cpu.count(), std::memory_order_relaxed);
        c.busy.store(false, std::memory_order_relaxed);
    }
}

std::vector<worker_pool::worker_view> worker_pool::workers() const
{
    std::vector<worker_view> out;
    out.reserve(idents_.size());
    for (std::size_t i = 0; i < idents_.size(); ++i) {
        const auto& c = counters_[i];
        out.push_back({idents_[i], pinned_[i], nice_[i], c.busy.load(std::memory_order_relaxed),
                       c.jobs.load(std::memory_order_relaxed),
                       std::chrono::nanoseconds{c.busy_ns.load(std::memory_order_relaxed)},
                       std::chrono::nanoseconds{c.cpu_ns.load(std::memory_order_relaxed)}});
    }
    return out;
}

unsigned worker_pool::busy() const
{
    unsigned n = 0;
    for (std::size_t i = 0; i < idents_.size(); ++i) {
        n += counters_[i].busy.load(std::memory_order_relaxed) ? 1U : 0U;
    }
    return n;
}

} // namespace duet::server
