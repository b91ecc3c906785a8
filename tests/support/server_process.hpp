#pragma once
// duet-server as a child process, as a user runs it: for the tests of signals, exit codes and logs.

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace duet::test {

using namespace std::chrono_literals;

/// The duet-server executable run as a child process, its stdout and stderr captured together.
class server_process
{
public:
    /// Starts `binary args...` with extra environment entries ("NAME=value") on top of this process's own.
    server_process(const std::string& binary, const std::vector<std::string>& args,
                   const std::vector<std::string>& env = {});
    ~server_process(); // SIGKILL if still running
    server_process(const server_process&) = delete;
    server_process& operator=(const server_process&) = delete;

    /// Reads output until a line contains `text`; the output so far if it does, nullopt on timeout or exit.
    std::optional<std::string> wait_for_output(const std::string& text,
                                               std::chrono::milliseconds timeout = 10s);

    /// Waits for "listening on ADDR:PORT" and returns the port.
    std::optional<std::uint16_t> wait_listening(std::chrono::milliseconds timeout = 10s);

    void signal(int signo);

    int pid() const { return pid_; }

    /// The exit status once the process exits within timeout; nullopt if it is still running. -N: killed by
    /// N.
    std::optional<int> wait_exit(std::chrono::milliseconds timeout = 10s);

    /// Everything read so far (call wait_exit first to have all of it).
    const std::string& output() const { return output_; }

private:
    bool read_some(std::chrono::milliseconds timeout);

    int pid_ = -1;
    int out_fd_ = -1;
    std::optional<int> exit_status_;
    std::string output_;
};

} // namespace duet::test
