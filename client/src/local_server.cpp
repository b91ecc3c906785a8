// Starting and stopping a duet-server for an experiment: posix_spawn with its output on a pipe, the port read
// from its start-up line, and a CPU affinity inherited from the spawning thread.
#include <duet/client/local_server.hpp>

#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <regex>
#include <thread>

extern char** environ;

namespace duet::client {

namespace {

using std::chrono::steady_clock;

// A child inherits the affinity of the thread that spawns it: this thread takes the one CPU for the spawn,
// and gets its own mask back afterwards.
class affinity_for_spawn
{
public:
    explicit affinity_for_spawn(std::optional<int> cpu)
    {
        if (!cpu) {
            return;
        }
        if (sched_getaffinity(0, sizeof(saved_), &saved_) != 0) {
            throw local_server_error{"cannot read this thread's CPU affinity"};
        }
        cpu_set_t one;
        CPU_ZERO(&one);
        CPU_SET(static_cast<std::size_t>(*cpu), &one);
        if (sched_setaffinity(0, sizeof(one), &one) != 0) {
            throw local_server_error{"cannot run on CPU " + std::to_string(*cpu) + " alone"};
        }
        restore_ = true;
    }
    ~affinity_for_spawn()
    {
        if (restore_) {
            sched_setaffinity(0, sizeof(saved_), &saved_);
        }
    }
    affinity_for_spawn(const affinity_for_spawn&) = delete;
    affinity_for_spawn& operator=(const affinity_for_spawn&) = delete;

private:
    cpu_set_t saved_{};
    bool restore_ = false;
};

} // namespace

local_server::local_server(settings s)
{
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0) {
        throw local_server_error{"pipe failed"};
    }
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, fds[1], STDOUT_FILENO);
    posix_spawn_file_actions_adddup2(&actions, fds[1], STDERR_FILENO);
    std::vector<std::string> argv_storage{s.binary, "--bind",      "127.0.0.1", "--port",
                                          "0",      "--log-level", "info"};
    argv_storage.insert(argv_storage.end(), s.args.begin(), s.args.end());
    std::vector<char*> argv;
    for (auto& a : argv_storage) {
        argv.push_back(a.data());
    }
    argv.push_back(nullptr);
    int rc = 0;
    {
        affinity_for_spawn pinned{s.cpu};
        rc = posix_spawn(&pid_, s.binary.c_str(), &actions, nullptr, argv.data(), environ);
    }
    posix_spawn_file_actions_destroy(&actions);
    close(fds[1]);
    out_fd_ = fds[0];
    if (rc != 0) {
        close(out_fd_);
        pid_ = -1;
        throw local_server_error{"cannot start " + s.binary + ": " + std::strerror(rc)};
    }
    // The start-up line names the port: "listening on 127.0.0.1:PORT (...)".
    static const std::regex listening{R"(listening on [^ ]*:(\d+) )"};
    const auto deadline = steady_clock::now() + s.start_timeout;
    std::smatch m;
    while (!std::regex_search(output_, m, listening)) {
        const auto left =
            std::chrono::duration_cast<std::chrono::milliseconds>(deadline - steady_clock::now());
        pollfd p{out_fd_, POLLIN, 0};
        if (left.count() <= 0 || poll(&p, 1, static_cast<int>(left.count())) <= 0) {
            stop();
            throw local_server_error{s.binary + " did not start within " +
                                     std::to_string(s.start_timeout.count()) + " ms; it printed: " + output_};
        }
        char buf[4096];
        const auto n = read(out_fd_, buf, sizeof buf);
        if (n <= 0) {
            stop();
            throw local_server_error{s.binary + " exited at start; it printed: " + output_};
        }
        output_.append(buf, static_cast<std::size_t>(n));
    }
    address_ = parse_url("http://127.0.0.1:" + m[1].str() + "/");
    // From here on its output is read and dropped, so that a full pipe never blocks the server's logging.
    drainer_ = std::thread{[fd = out_fd_] {
        char buf[4096];
        while (read(fd, buf, sizeof buf) > 0) {
        }
    }};
}

local_server::~local_server()
{
    stop();
}

int local_server::stop()
{
    if (pid_ < 0) {
        return 0;
    }
    kill(pid_, SIGTERM);
    int status = 0;
    const auto deadline = steady_clock::now() + std::chrono::seconds{15};
    while (waitpid(pid_, &status, WNOHANG) == 0) {
        if (steady_clock::now() > deadline) {
            kill(pid_, SIGKILL);
            waitpid(pid_, &status, 0);
            break;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds{10});
    }
    pid_ = -1;
    if (drainer_.joinable()) {
        drainer_.join(); // the pipe's writers are gone: the read sees its end
    }
    if (out_fd_ >= 0) {
        close(out_fd_);
        out_fd_ = -1;
    }
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

std::chrono::nanoseconds local_server::cpu_time() const
{
    // /proc/PID/task/TID/schedstat begins with the thread's time on a CPU in nanoseconds; /proc/PID/stat's
    // clock ticks are 10 ms, too coarse for a run of a tenth of a second. Threads that exited are not
    // counted: a duet-server's threads live as long as it does.
    std::int64_t ns = 0;
    std::error_code ec;
    for (const auto& task :
         std::filesystem::directory_iterator("/proc/" + std::to_string(pid_) + "/task", ec)) {
        std::ifstream in{task.path() / "schedstat"};
        std::int64_t on_cpu = 0;
        if (in >> on_cpu) {
            ns += on_cpu;
        }
    }
    return std::chrono::nanoseconds{ns};
}

std::optional<std::string> server_beside(const std::string& argv0)
{
    namespace fs = std::filesystem;
    std::error_code ec;
    fs::path self = fs::read_symlink("/proc/self/exe", ec);
    if (ec) {
        self = fs::absolute(argv0, ec);
    }
    for (const auto& candidate :
         {self.parent_path() / "duet-server", self.parent_path() / ".." / "server" / "duet-server"}) {
        if (fs::exists(candidate, ec)) {
            return fs::weakly_canonical(candidate, ec).string();
        }
    }
    return std::nullopt;
}

} // namespace duet::client
