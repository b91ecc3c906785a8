// Thread names and ids from the kernel, and the thread CPU clock.
#include <duet/thread_info.hpp>

#include <pthread.h>
#include <sched.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <array>

namespace duet {

void set_current_thread_name(std::string_view name)
{
    // The kernel limit is 16 bytes with the terminator; a longer name would make pthread_setname_np fail.
    std::array<char, 16> buf{};
    name.copy(buf.data(), buf.size() - 1);
    pthread_setname_np(pthread_self(), buf.data());
}

std::string current_thread_name()
{
    std::array<char, 16> buf{};
    if (pthread_getname_np(pthread_self(), buf.data(), buf.size()) != 0) {
        return {};
    }
    return buf.data();
}

std::int64_t current_thread_id()
{
    return static_cast<std::int64_t>(gettid());
}

bool pin_current_thread(int cpu)
{
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(static_cast<std::size_t>(cpu), &set);
    return pthread_setaffinity_np(pthread_self(), sizeof(set), &set) == 0;
}

bool set_current_thread_nice(int nice)
{
    return setpriority(PRIO_PROCESS, static_cast<id_t>(gettid()), nice) == 0;
}

int current_thread_nice()
{
    return getpriority(PRIO_PROCESS, static_cast<id_t>(gettid()));
}

int current_core()
{
    return sched_getcpu();
}

std::chrono::nanoseconds thread_cpu_time()
{
    timespec ts{};
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return std::chrono::seconds{ts.tv_sec} + std::chrono::nanoseconds{ts.tv_nsec};
}

} // namespace duet
