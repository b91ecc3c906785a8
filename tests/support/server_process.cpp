// duet-server as a child process for tests: started, its output captured, signalled and waited for.
#include "server_process.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <regex>
#include <stdexcept>
#include <thread>

extern char** environ;

namespace duet::test {

using std::chrono::steady_clock;

server_process::server_process(const std::string& binary, const std::vector<std::string>& args,
                               const std::vector<std::string>& env)
{
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0) {
        throw std::runtime_error{"pipe failed"};
    }
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, fds[1], STDOUT_FILENO);
    posix_spawn_file_actions_adddup2(&actions, fds[1], STDERR_FILENO);

    std::vector<std::string> argv_storage{binary};
    argv_storage.insert(argv_storage.end(), args.begin(), args.end());
    std::vector<char*> argv;
    for (auto& a : argv_storage) {
        argv.push_back(a.data());
    }
    argv.push_back(nullptr);
    std::vector<std::string> env_storage;
    for (char** e = environ; *e != nullptr; ++e) {
        env_storage.emplace_back(*e);
    }
    env_storage.insert(env_storage.end(), env.begin(), env.end());
    std::vector<char*> envp;
    for (auto& e : env_storage) {
        envp.push_back(e.data());
    }
    envp.push_back(nullptr);

    int rc = posix_spawn(&pid_, binary.c_str(), &actions, nullptr, argv.data(), envp.data());
    posix_spawn_file_actions_destroy(&actions);
    close(fds[1]);
    out_fd_ = fds[0];
    if (rc != 0) {
        close(out_fd_);
        throw std::runtime_error{"cannot start " + binary};
    }
}

server_process::~server_process()
{
    if (!exit_status_ && pid_ > 0) {
        kill(pid_, SIGKILL);
        int status = 0;
        waitpid(pid_, &status, 0);
    }
    if (out_fd_ >= 0) {
        close(out_fd_);
    }
}

bool server_process::read_some(std::chrono::milliseconds timeout)
{
    pollfd p{out_fd_, POLLIN, 0};
    if (poll(&p, 1, static_cast<int>(timeout.count())) <= 0) {
        return false;
    }
    char buf[4096];
    auto n = read(out_fd_, buf, sizeof buf);
    if (n <= 0) {
        return false;
    }
    output_.append(buf, static_cast<std::size_t>(n));
    return true;
}

std::optional<std::string> server_process::wait_for_output(const std::string& text,
                                                           std::chrono::milliseconds timeout)
{
    auto deadline = steady_clock::now() + timeout;
    while (output_.find(text) == std::string::npos) {
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - steady_clock::now());
        if (left <= 0ms || !read_some(left)) {
            return std::nullopt;
        }
    }
    return output_;
}

std::optional<std::uint16_t> server_process::wait_listening(std::chrono::milliseconds timeout)
{
    if (!wait_for_output(" I/O thread, ", timeout)) { // the start-up line, after the port
        return std::nullopt;
    }
    std::smatch m;
    static const std::regex listening{R"(listening on [^ ]*:(\d+) )"};
    if (!std::regex_search(output_, m, listening)) {
        return std::nullopt;
    }
    return static_cast<std::uint16_t>(std::stoi(m[1].str()));
}

void server_process::signal(int signo)
{
    kill(pid_, signo);
}

std::optional<int> server_process::wait_exit(std::chrono::milliseconds timeout)
{
    auto deadline = steady_clock::now() + timeout;
    while (!exit_status_) {
        int status = 0;
        if (waitpid(pid_, &status, WNOHANG) == pid_) {
            exit_status_ = WIFEXITED(status) ? WEXITSTATUS(status) : -WTERMSIG(status);
            break;
        }
        if (steady_clock::now() >= deadline) {
            return std::nullopt;
        }
        // Keep the pipe drained so that the child never blocks on a full pipe.
        if (!read_some(20ms)) {
            std::this_thread::sleep_for(5ms);
        }
    }
    while (read_some(0ms)) {
    }
    return exit_status_;
}

} // namespace duet::test
