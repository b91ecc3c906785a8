// The /proc parsers on fixtures, and the sampler's rates on this process.
#include <duet/cpu_usage.hpp>

#include <duet/thread_info.hpp>

#include <gtest/gtest.h>

#include <unistd.h>

#include <array>
#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

namespace {

using namespace std::chrono_literals;

TEST(CpuUsage, ParsesPerCoreLinesOfProcStat)
{
    const char* text = "cpu  100 1 50 1000 5 2 3 0 0 0\n"
                       "cpu0 60 1 30 400 2 1 2 4 0 0\n"
                       "cpu1 40 0 20 600 3 1 1 0 0 0\n"
                       "intr 12345\nctxt 99\nbtime 1700000000\n";
    auto cores = duet::parse_proc_stat(text);
    ASSERT_EQ(cores.size(), 2U);
    EXPECT_EQ(cores[0].cpu, 0);
    EXPECT_EQ(cores[0].user, 60U);
    EXPECT_EQ(cores[0].idle, 400U);
    EXPECT_EQ(cores[0].steal, 4U);
    EXPECT_EQ(cores[0].total(), 60U + 1 + 30 + 400 + 2 + 1 + 2 + 4);
    EXPECT_EQ(cores[1].cpu, 1);
    EXPECT_EQ(cores[1].iowait, 3U);
}

TEST(CpuUsage, ParsesTaskStatEvenWithAWeirdName)
{
    // A thread may name itself anything, parentheses and spaces included.
    const char* text = "4242 (duet (w) 1) S 1 4242 4242 0 -1 4194560 100 0 0 0 "
                       "77 33 0 0 20 0 3 0 123456 987654321 2048 18446744073709551615";
    auto t = duet::parse_task_stat(text);
    ASSERT_TRUE(t);
    EXPECT_EQ(t->id, 4242);
    EXPECT_EQ(t->name, "duet (w) 1");
    EXPECT_EQ(t->utime, 77U);
    EXPECT_EQ(t->stime, 33U);
    EXPECT_EQ(t->starttime, 123456U);
    EXPECT_EQ(t->vsize, 987654321U);
    EXPECT_EQ(t->rss_pages, 2048U);
    EXPECT_FALSE(duet::parse_task_stat("garbage"));
    EXPECT_FALSE(duet::parse_task_stat("1 (x) S 1 2"));
}

TEST(CpuUsage, SamplerSeesABusyThreadByNameAndTheProcessTotal)
{
    duet::cpu_sampler sampler{1};
    sampler.sample();
    std::atomic<bool> stop{false};
    std::int64_t burner_tid = 0;
    std::thread burner{[&] {
        duet::set_current_thread_name("duet-burn");
        burner_tid = duet::current_thread_id();
        volatile std::uint64_t sink = 0;
        while (!stop) {
            sink = sink + 1;
        }
    }};
    std::this_thread::sleep_for(500ms);
    const auto& s = sampler.sample();
    stop = true;
    burner.join();

    EXPECT_GT(s.interval_s, 0.4);
    bool found = false;
    for (const auto& t : s.threads) {
        if (t.tid == burner_tid) {
            found = true;
            EXPECT_EQ(t.name, "duet-burn");
            EXPECT_GT(t.percent, 30.0); // a busy loop: most of a core, even on a shared machine
            EXPECT_GT(t.user_seconds, 0.1);
        }
    }
    EXPECT_TRUE(found);
    EXPECT_GT(s.process_percent_of_one_core, 30.0);
    EXPECT_EQ(s.process_percent_of_allowed, s.process_percent_of_one_core); // one allowed CPU
    EXPECT_EQ(s.cores.size(), std::thread::hardware_concurrency());
    for (const auto& c : s.cores) {
        EXPECT_NEAR(c.user + c.system + c.idle + c.iowait + c.steal, 100.0, 1.0) << "cpu" << c.cpu;
    }
    EXPECT_GT(s.rss_bytes, 1'000'000U);
    EXPECT_GT(s.open_fds, 2U);
    EXPECT_GT(s.max_fds, s.open_fds);
    auto now_s = std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
    EXPECT_LT(s.start_time_s, now_s);
    EXPECT_GT(s.start_time_s, now_s - 3600); // this test process started within the hour
}

TEST(CpuUsage, AnIdleProcessUsesAlmostNothing)
{
    duet::cpu_sampler sampler{2};
    sampler.sample();
    std::this_thread::sleep_for(300ms);
    const auto& s = sampler.sample();
    EXPECT_LT(s.process_percent_of_one_core, 20.0);
    EXPECT_NEAR(s.process_percent_of_allowed, s.process_percent_of_one_core / 2, 1e-9);
}

// Counted by the size of /proc/self/fd where the kernel reports it, by listing the directory where not:
// either way each descriptor opened counts once.
TEST(CpuUsage, CountsEachDescriptorThatOpens)
{
    duet::cpu_sampler sampler{1};
    const auto before = sampler.sample().open_fds;
    std::vector<std::array<int, 2>> pipes(50);
    for (auto& p : pipes) {
        ASSERT_EQ(::pipe(p.data()), 0);
    }
    const auto during = sampler.sample().open_fds;
    for (auto& p : pipes) {
        ::close(p[0]);
        ::close(p[1]);
    }
    EXPECT_EQ(during, before + 100);
    EXPECT_EQ(sampler.sample().open_fds, before);
}

// Where the directory's size says nothing (kernels before 6.2, or a root that is not procfs, as here), the
// entries are counted.
TEST(CpuUsage, CountsDescriptorsByListingWhereTheSizeSaysNothing)
{
    auto root = std::filesystem::temp_directory_path() / ("duet-fd-test-" + std::to_string(::getpid()));
    std::filesystem::create_directories(root / "proc/self/fd");
    for (int i = 0; i < 7; ++i) {
        std::ofstream{root / "proc/self/fd" / std::to_string(i)};
    }
    duet::cpu_sampler sampler{1, root};
    EXPECT_EQ(sampler.sample().open_fds, 7U);
    std::filesystem::remove_all(root);
}

} // namespace
