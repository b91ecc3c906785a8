// The CPU allowance from fixtures of the cgroup files, and from this process.
#include <duet/cpu_allowance.hpp>

#include <gtest/gtest.h>

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <thread>

namespace {

namespace fs = std::filesystem;

// A fake root with /proc/self/cgroup and /sys/fs/cgroup files, as a container or a systemd slice shows them.
class FakeRoot : public ::testing::Test
{
protected:
    void SetUp() override
    {
        root_ = fs::temp_directory_path() / ("duet-cgroup-test-" + std::to_string(::getpid()));
        fs::remove_all(root_);
    }
    void TearDown() override { fs::remove_all(root_); }

    void write(const std::string& rel, const std::string& text)
    {
        auto p = root_ / rel;
        fs::create_directories(p.parent_path());
        std::ofstream{p} << text << "\n";
    }

    fs::path root_;
};

TEST_F(FakeRoot, NoCgroupFileMeansNoQuota)
{
    EXPECT_FALSE(duet::read_cgroup_quota(root_));
}

TEST_F(FakeRoot, CgroupV2CpuMaxGivesAFractionalQuota)
{
    write("proc/self/cgroup", "0::/user.slice/duet.scope");
    write("sys/fs/cgroup/user.slice/duet.scope/cpu.max", "150000 100000");
    write("sys/fs/cgroup/user.slice/cpu.max", "max 100000");
    auto q = duet::read_cgroup_quota(root_);
    ASSERT_TRUE(q);
    EXPECT_DOUBLE_EQ(q->cpus, 1.5);
    EXPECT_NE(q->source.find("duet.scope/cpu.max"), std::string::npos);
}

TEST_F(FakeRoot, CgroupV2TightestAncestorWins)
{
    write("proc/self/cgroup", "0::/a/b");
    write("sys/fs/cgroup/a/b/cpu.max", "400000 100000");
    write("sys/fs/cgroup/a/cpu.max", "50000 100000");
    auto q = duet::read_cgroup_quota(root_);
    ASSERT_TRUE(q);
    EXPECT_DOUBLE_EQ(q->cpus, 0.5);
}

TEST_F(FakeRoot, CgroupV2UnlimitedIsNoQuota)
{
    write("proc/self/cgroup", "0::/");
    write("sys/fs/cgroup/cpu.max", "max 100000");
    EXPECT_FALSE(duet::read_cgroup_quota(root_));
}

TEST_F(FakeRoot, CgroupV1QuotaAsPodmanCpusOneShowsIt)
{
    // podman run --cpus=1 on this kind of machine: a v1 hierarchy whose path does not exist inside the
    // container; the quota files sit at the mount root.
    write("proc/self/cgroup", "12:memory:/libpod/abc\n4:cpu,cpuacct:/libpod/abc\n1:name=systemd:/libpod/abc");
    write("sys/fs/cgroup/cpu,cpuacct/cpu.cfs_quota_us", "100000");
    write("sys/fs/cgroup/cpu,cpuacct/cpu.cfs_period_us", "100000");
    auto q = duet::read_cgroup_quota(root_);
    ASSERT_TRUE(q);
    EXPECT_DOUBLE_EQ(q->cpus, 1.0);
}

TEST_F(FakeRoot, CgroupV1MinusOneIsUnlimited)
{
    write("proc/self/cgroup", "4:cpu,cpuacct:/");
    write("sys/fs/cgroup/cpu,cpuacct/cpu.cfs_quota_us", "-1");
    write("sys/fs/cgroup/cpu,cpuacct/cpu.cfs_period_us", "100000");
    EXPECT_FALSE(duet::read_cgroup_quota(root_));
}

TEST_F(FakeRoot, UsableRoundsAFractionalQuotaUpAndNeverExceedsAffinity)
{
    write("proc/self/cgroup", "0::/");
    write("sys/fs/cgroup/cpu.max", "50000 100000");
    auto a = duet::detect_cpu_allowance(root_);
    ASSERT_TRUE(a.quota);
    EXPECT_EQ(a.usable, 1U); // 0.5 CPU -> 1 worker, never 0
    EXPECT_NE(a.describe().find("cgroup quota 0.5 CPUs from"), std::string::npos) << a.describe();

    write("sys/fs/cgroup/cpu.max", "100000 100000");
    a = duet::detect_cpu_allowance(root_);
    EXPECT_NE(a.describe().find("cgroup quota 1 CPU from"), std::string::npos) << a.describe();

    write("sys/fs/cgroup/cpu.max", "100000000 100000"); // 1000 CPUs: affinity is the limit
    a = duet::detect_cpu_allowance(root_);
    EXPECT_EQ(a.usable, a.affinity);
    EXPECT_NE(a.describe().find("cgroup quota"), std::string::npos);
}

TEST(CpuAllowance, RealMachineHasAtLeastOneUsableCpu)
{
    auto a = duet::detect_cpu_allowance();
    EXPECT_GE(a.usable, 1U);
    EXPECT_LE(a.usable, a.affinity);
    EXPECT_LE(a.affinity, a.online);
}

} // namespace
