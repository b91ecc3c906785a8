// An in-process server on its own thread for tests, stopped with a drain.
#include "running_server.hpp"

#include <spdlog/spdlog.h>

#include <sys/resource.h>

namespace duet::test {

duet::config test_config()
{
    duet::config cfg;
    cfg.server.bind = "127.0.0.1";
    cfg.server.port = 0;
    cfg.server.drain_timeout_ms = 5000;
    cfg.log.level = "warn";
    return cfg;
}

running_server::running_server(duet::config cfg)
{
    // Tests open hundreds of sockets at once, on both ends, in this one process.
    rlimit lim{};
    if (getrlimit(RLIMIT_NOFILE, &lim) == 0 && lim.rlim_cur < lim.rlim_max) {
        lim.rlim_cur = lim.rlim_max;
        setrlimit(RLIMIT_NOFILE, &lim);
    }
    spdlog::set_level(spdlog::level::from_str(cfg.log.level));
    server_ = std::make_unique<duet::server::server>(std::move(cfg));
    port_ = server_->port();
    thread_ = std::thread{[this] { server_->run(); }};
}

running_server::~running_server()
{
    stop();
}

void running_server::stop()
{
    if (thread_.joinable()) {
        server_->request_stop();
        thread_.join();
    }
}

} // namespace duet::test
