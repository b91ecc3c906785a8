#pragma once
// An in-process duet server for tests: the real thing on loopback, on a thread of its own.

#include <duet/config.hpp>
#include <duet/server/server.hpp>

#include <cstdint>
#include <memory>
#include <thread>

namespace duet::test {

/// A configuration for tests: loopback, a free port, and quiet logs.
duet::config test_config();

/// A real duet server in this process, listening on 127.0.0.1 (a free port), run on its own thread which
/// becomes its I/O thread. Stopped with a graceful drain when destroyed.
class running_server
{
public:
    explicit running_server(duet::config cfg = test_config());
    ~running_server();
    running_server(const running_server&) = delete;
    running_server& operator=(const running_server&) = delete;

    std::uint16_t port() const { return port_; }
    duet::server::server& get() { return *server_; }

    /// Starts the drain and waits for run() to return.
    void stop();

private:
    std::unique_ptr<duet::server::server> server_;
    std::uint16_t port_ = 0;
    std::thread thread_;
};

} // namespace duet::test
