#pragma once
// duet-server as a library: construct it (it binds), run it on the thread that is to be the I/O thread, stop
// it with a drain.

#include <duet/config.hpp>

#include <cstdint>
#include <memory>
#include <string>

namespace duet::server {

/// duet-server: one thread runs one io_context that accepts, parses, routes, waits and writes; a worker pool
/// runs CPU jobs. Construct it (binds and listens), then run() it on the thread that is to be the I/O thread.
class server
{
public:
    /// Binds and listens on cfg.server.bind:port and starts the worker pool; serves nothing until run().
    /// Throws config_error for a bind address that is not an IP literal, boost::system::system_error when the
    /// address cannot be bound.
    explicit server(duet::config cfg);
    ~server();

    server(const server&) = delete;
    server& operator=(const server&) = delete;

    /// The port actually bound (useful with port 0).
    std::uint16_t port() const;

    /// Worker threads in the pool.
    unsigned workers() const;

    /// Serves on the calling thread, which it names duet-io, until SIGINT/SIGTERM or request_stop() has
    /// drained in-flight requests (bounded by server.drain_timeout_ms). A second signal cuts the drain short.
    void run();

    /// Starts the graceful drain, as SIGTERM does. Thread-safe; may be called before run().
    void request_stop();

private:
    struct impl;
    std::unique_ptr<impl> impl_;
};

} // namespace duet::server
