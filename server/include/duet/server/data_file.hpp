#pragma once
// The file /io/file reads: written at start or named in the configuration, and the two ways to read it —
// io_uring on the I/O thread's io_context, or pread on a blocking thread.

#include <duet/config.hpp>
#include <duet/server/io.hpp>

#include <boost/system/error_code.hpp>

#include <cstdint>
#include <memory>
#include <span>
#include <string>

namespace duet::server {

/// FNV-1a, 32 bits: the checksum /io/file reports of the bytes it read, continued from `h`. 32 bits, so that
/// JavaScript's numbers hold it exactly.
inline constexpr std::uint32_t fnv1a_basis = 0x811c9dc5U;
std::uint32_t fnv1a(std::uint32_t h, std::span<const char> bytes) noexcept;

/// What one read got: how many bytes and their checksum, or the error that stopped it.
struct file_read
{
    std::uint64_t bytes = 0;
    std::uint32_t checksum = fnv1a_basis;
    boost::system::error_code error{};
};

/// The most bytes one read asks for: a read of kb KiB is a loop of these, so that a request holds one such
/// buffer however large kb is.
inline constexpr std::size_t file_chunk_bytes = 64 * 1024;

/// The file /io/file reads, opened once. Without io.file_path the server writes io.file_size_mb of
/// pseudo-random bytes to a new file in $TMPDIR (or /tmp) and unlinks it at once: it lives as long as the
/// descriptor, and nothing is left behind. Throws config_error naming the key when the file cannot be used.
class data_file
{
public:
    explicit data_file(const duet::io_config& cfg);
    ~data_file();
    data_file(const data_file&) = delete;
    data_file& operator=(const data_file&) = delete;

    int fd() const noexcept { return fd_; }
    std::uint64_t size() const noexcept { return size_; }
    /// "/var/data/x (3.2 MiB)" or "16 MiB written at start".
    const std::string& description() const noexcept { return description_; }

    /// A pseudo-random offset at which `bytes` fit in the file (bytes <= size()). I/O thread only.
    std::uint64_t random_offset(std::uint64_t bytes) noexcept;

private:
    int fd_ = -1;
    std::uint64_t size_ = 0;
    std::string description_;
    std::uint64_t rng_;
};

/// Reads [offset, offset + bytes) with pread on the calling thread, which sleeps in the kernel until the
/// bytes are there: the way the blocking threads read.
file_read read_blocking(int fd, std::uint64_t offset, std::uint64_t bytes);

/// The file read on the I/O thread through io_uring: Asio's random_access_file, on the io_context's ring. A
/// regular file is always "ready" to epoll (its reads block in the kernel regardless), so an event loop
/// without io_uring cannot wait for one; that is why libuv and others read files on a thread pool.
class uring_file
{
public:
    /// The file on `ioc`'s ring; null, with `why_not` said, where io_uring cannot be used (built without
    /// liburing, an old kernel, or a seccomp profile that forbids it, as Docker's default does).
    static std::unique_ptr<uring_file> open(boost::asio::io_context& ioc, int fd, std::string& why_not);

    virtual ~uring_file() = default;

    /// Reads [offset, offset + bytes) on the I/O thread's ring, a chunk at a time.
    virtual task<file_read> read(std::uint64_t offset, std::uint64_t bytes) = 0;
};

} // namespace duet::server
