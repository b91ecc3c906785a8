#include <duet/thread_info.hpp>

#include <pthread.h>
#include <sched.h>
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
