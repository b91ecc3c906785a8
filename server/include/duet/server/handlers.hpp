#pragma once
// The endpoints. Reporting handlers run on the I/O thread and return their result and a work_report; they
// touch no socket, so they are functions of their parameters and the shared state.

#include <duet/config.hpp>
#include <duet/server/io.hpp>
#include <duet/server/router.hpp>

#include <cstdint>
#include <string>
#include <vector>

namespace duet::server {

// I/O-bound: concurrency on one thread. Waiting costs no CPU and blocks nothing.
task<handler_result> io_sleep(server_state& st, handler_args args);
task<handler_result> io_fanout(server_state& st, handler_args args);
// Real I/O: n HTTP calls to the upstream at once, and a file read (io_uring on the loop where it can).
task<handler_result> io_call(server_state& st, handler_args args);
task<handler_result> io_file(server_state& st, handler_args args);

// CPU-bound: parallelism on the worker pool, or the loop blocked on purpose with mode=inline.
task<handler_result> cpu_primes(server_state& st, handler_args args);
task<handler_result> cpu_fib(server_state& st, handler_args args);
task<handler_result> cpu_mandelbrot(server_state& st, handler_args args);

// The timeline of the last ms (/trace), encoded on a worker.
task<handler_result> trace_timeline(server_state& st, handler_args args);

/// The endpoint table, with limits from the configuration; `workers` is the default parts of a split request,
/// `file_bytes` the size of /io/file's file (0: unknown, and limits.max_file_kb alone bounds kb).
std::vector<endpoint> make_endpoints(const duet::config& cfg, unsigned workers, std::uint64_t file_bytes = 0);

/// The GET / body: every endpoint, its parameters with limits and defaults, and the model it demonstrates.
std::string make_index(const router& routes);

} // namespace duet::server
