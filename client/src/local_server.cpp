// Starting and stopping a duet-server for an experiment: fork and exec with its output on a pipe, the port
// read from its start-up line, on the CPU asked for, and ended with duet-load whatever ends it.
#include <duet/client/local_server.hpp>

#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <regex>
#include <string_view>
#include <thread>

extern char** environ;

namespace duet::client {

namespace {

using std::chrono::steady_clock;

// The child's environment: this process's, without the DUET_* variables a duet-server reads, which rank above
// its flags' defaults: a user's DUET_SERVER_MAX_CONNECTIONS must not change what an experiment measures.
std::vector<std::string> child_environment()
{
    std::vector<std::string> env;
    for (char** e = environ; *e != nullptr; ++e) {
        if (std::string_view{*e}.rfind("DUET_", 0) != 0) {
            env.emplace_back(*e);
        }
    }
    return env;
}

} // namespace

local_server::local_server(settings s)
{
    std::vector<std::string> argv_storage{s.binary, "--bind",      "127.0.0.1", "--port",
                                          "0",      "--log-level", "info"};
    argv_storage.insert(argv_storage.end(), s.args.begin(), s.args.end());
    std::vector<char*> argv;
    for (auto& a : argv_storage) {
        argv.push_back(a.data());
    }
    argv.push_back(nullptr);
    auto env_storage = child_environment();
    std::vector<char*> envp;
    for (auto& e : env_storage) {
        envp.push_back(e.data());
    }
    envp.push_back(nullptr);
    cpu_set_t one;
    CPU_ZERO(&one);
    if (s.cpu) {
        CPU_SET(static_cast<std::size_t>(*s.cpu), &one);
    }
    const int parent = getpid();

    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0) {
        throw local_server_error{"pipe failed"};
    }
    // fork and exec rather than posix_spawn, for what only the child can do before exec: die with duet-load
    // (a server left listening after duet-load was killed would outlive every experiment), and take its CPU.
    // Between fork and exec only async-signal-safe calls.
    pid_ = fork();
    if (pid_ == 0) {
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        if (getppid() != parent) {
            _exit(127); // duet-load died before the line above
        }
        if (s.cpu && sched_setaffinity(0, sizeof(one), &one) != 0) {
            _exit(126);
        }
        const int null = open("/dev/null", O_RDONLY);
        dup2(null, STDIN_FILENO);
        dup2(fds[1], STDOUT_FILENO);
        dup2(fds[1], STDERR_FILENO);
        execve(argv[0], argv.data(), envp.data());
        _exit(127);
    }
    close(fds[1]);
    out_fd_ = fds[0];
    if (pid_ < 0) {
        close(out_fd_);
        out_fd_ = -1;
        throw local_server_error{"cannot start " + s.binary + ": fork failed"};
    }
    try {
        wait_listening(s);
        // From here on its output is read and dropped, so that a full pipe never blocks the server's logging.
        drainer_ = std::thread{[fd = out_fd_] {
            char buf[4096];
            while (read(fd, buf, sizeof buf) > 0) {
            }
        }};
    } catch (...) {
        stop();
        throw;
    }
}

void local_server::wait_listening(const settings& s)
{
    // The start-up line names the port: "listening on 127.0.0.1:PORT (...)".
    static const std::regex listening{R"(listening on [^ ]*:(\d+) )"};
    const auto deadline = steady_clock::now() + s.start_timeout;
    std::smatch m;
    while (!std::regex_search(output_, m, listening)) {
        const auto left =
            std::chrono::duration_cast<std::chrono::milliseconds>(deadline - steady_clock::now());
        pollfd p{out_fd_, POLLIN, 0};
        if (left.count() <= 0 || poll(&p, 1, static_cast<int>(left.count())) <= 0) {
            throw local_server_error{s.binary + " did not start within " +
                                     std::to_string(s.start_timeout.count()) + " ms; it printed: " + output_};
        }
        char buf[4096];
        const auto n = read(out_fd_, buf, sizeof buf);
        if (n <= 0) {
            throw local_server_error{s.binary +
                                     " could not start (is it a duet-server?); it printed: " + output_};
        }
        output_.append(buf, static_cast<std::size_t>(n));
    }
    address_ = parse_url("http://127.0.0.1:" + m[1].str() + "/");
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
    bool reaped = false;
    const auto deadline =
        steady_clock::now() + std::chrono::seconds{15}; // beyond the server's own drain bound
    while (!reaped) {
        const auto r = waitpid(pid_, &status, WNOHANG);
        if (r == pid_ || (r < 0 && errno != EINTR)) {
            reaped = r == pid_; // ECHILD: someone else reaped it; it is gone either way
            break;
        }
        if (steady_clock::now() > deadline) {
            kill(pid_, SIGKILL);
            reaped = waitpid(pid_, &status, 0) == pid_;
            break;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds{10});
    }
    pid_ = -1;
    if (drainer_.joinable()) {
        drainer_.join(); // the pipe's only writer is gone: the read sees its end
    }
    if (out_fd_ >= 0) {
        close(out_fd_);
        out_fd_ = -1;
    }
    if (!reaped) {
        return -1;
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

std::int64_t local_server::context_switches() const
{
    // /proc/PID/task/TID/status counts each thread's switches: voluntary_ctxt_switches (it blocked: a wait,
    // a read) and nonvoluntary_ctxt_switches (the kernel preempted it). As in cpu_time, exited threads are
    // gone.
    std::int64_t n = 0;
    std::error_code ec;
    for (const auto& task :
         std::filesystem::directory_iterator("/proc/" + std::to_string(pid_) + "/task", ec)) {
        std::ifstream in{task.path() / "status"};
        std::string line;
        while (std::getline(in, line)) {
            for (std::string_view key : {"voluntary_ctxt_switches:", "nonvoluntary_ctxt_switches:"}) {
                if (line.rfind(key, 0) == 0) {
                    n += std::strtoll(line.c_str() + key.size(), nullptr, 10);
                }
            }
        }
    }
    return n;
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
