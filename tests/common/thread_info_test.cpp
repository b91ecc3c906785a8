// Thread names, ids and the thread CPU clock, on this process's threads.
#include <duet/thread_info.hpp>

#include <gtest/gtest.h>

#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <thread>

namespace {

using namespace std::chrono_literals;

TEST(ThreadInfo, NameIsVisibleToTheKernel)
{
    std::thread t{[] {
        duet::set_current_thread_name("duet-test-name-that-is-too-long");
        EXPECT_EQ(duet::current_thread_name(), "duet-test-name-"); // Linux keeps 15 characters
        std::ifstream comm{"/proc/self/task/" + std::to_string(duet::current_thread_id()) + "/comm"};
        std::string name;
        std::getline(comm, name);
        EXPECT_EQ(name, "duet-test-name-");
    }};
    t.join();
}

TEST(ThreadInfo, ThreadIdsDifferBetweenThreadsAndMatchTheProcessForMain)
{
    std::int64_t other = 0;
    std::thread t{[&] { other = duet::current_thread_id(); }};
    t.join();
    EXPECT_NE(other, duet::current_thread_id());
    EXPECT_TRUE(std::filesystem::exists("/proc/self/task/" + std::to_string(duet::current_thread_id())));
}

TEST(ThreadInfo, CpuTimeGrowsWhileComputingNotWhileSleeping)
{
    auto before = duet::thread_cpu_time();
    std::this_thread::sleep_for(200ms);
    auto slept = duet::thread_cpu_time() - before;
    EXPECT_LT(slept, 50ms); // sleeping costs (almost) nothing

    before = duet::thread_cpu_time();
    auto until = std::chrono::steady_clock::now() + 100ms;
    volatile std::uint64_t sink = 0;
    while (std::chrono::steady_clock::now() < until) {
        sink = sink + 1;
    }
    EXPECT_GT(duet::thread_cpu_time() - before, 20ms); // noisy machine: a fifth of the wall time is plenty
}

TEST(ThreadInfo, CurrentCoreIsAValidCpu)
{
    int core = duet::current_core();
    EXPECT_GE(core, 0);
    EXPECT_LT(core, static_cast<int>(std::thread::hardware_concurrency()));
}

} // namespace
