#pragma once
// A duet-server that duet-load starts on loopback for an experiment, configured for it, and stops afterwards.

#include <duet/client/options.hpp>

#include <chrono>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace duet::client {

/// The server could not be started; the message says why and what it printed.
class local_server_error : public std::runtime_error
{
public:
    using std::runtime_error::runtime_error;
};

/// duet-server as a child process on 127.0.0.1 and a port of its choosing, without the DUET_* variables of
/// this environment. Stopped (SIGTERM, then SIGKILL after the drain's bound) when destroyed, and sent SIGTERM
/// by the kernel if duet-load dies first.
class local_server
{
public:
    struct settings
    {
        std::string binary;            ///< the duet-server to run
        std::vector<std::string> args; ///< more flags, e.g. {"--workers", "2"}
        std::optional<int> cpu;        ///< run it on this one CPU alone (its affinity mask)
        std::chrono::milliseconds start_timeout{10'000};
    };

    explicit local_server(settings s);
    ~local_server();
    local_server(const local_server&) = delete;
    local_server& operator=(const local_server&) = delete;

    /// http://127.0.0.1:PORT/
    const url& address() const noexcept { return address_; }

    /// Stops it: SIGTERM, and its exit status (0 when it drained and exited as it should).
    int stop();

    /// The CPU time its threads have used so far, to the nanosecond (the scheduler's own accounting).
    std::chrono::nanoseconds cpu_time() const;

    /// How often its threads have been switched out so far, voluntarily (they blocked) or not (preempted).
    std::int64_t context_switches() const;

private:
    void wait_listening(const settings& s);

    int pid_ = -1;
    int out_fd_ = -1;
    url address_;
    std::string output_; ///< what it printed until it listened
    std::thread drainer_;
};

/// The duet-server beside this executable (argv0's folder), or its build tree's (../server/), or null.
std::optional<std::string> server_beside(const std::string& argv0);

} // namespace duet::client
