// The data file of /io/file: written or opened at start, its checksum, and its two readers (pread on a
// blocking thread; io_uring on the I/O thread).
#include <duet/server/data_file.hpp>

#include <boost/asio/error.hpp>
#include <boost/asio/io_context.hpp>
#if defined(BOOST_ASIO_HAS_IO_URING) && defined(BOOST_ASIO_HAS_FILE)
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/basic_random_access_file.hpp>
#include <boost/asio/buffer.hpp>
#endif
#include <fmt/format.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <vector>

namespace duet::server {

namespace {

std::uint64_t splitmix64(std::uint64_t& state) noexcept
{
    std::uint64_t z = (state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30U)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27U)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31U);
}

[[noreturn]] void fail(std::string_view key, const std::string& what)
{
    throw duet::config_error{std::string{key} + ": " + what};
}

// A new file of `bytes` pseudo-random bytes, unlinked at once: it lives as long as its descriptor.
int write_scratch_file(std::uint64_t bytes)
{
    const char* dir = std::getenv("TMPDIR");
    std::string path = fmt::format("{}/duet-data-XXXXXX", dir != nullptr && *dir != '\0' ? dir : "/tmp");
    int fd = ::mkostemp(path.data(), O_CLOEXEC);
    if (fd < 0) {
        fail("io.file_path", fmt::format("empty, and the file to write at start ({}) cannot be created: {}",
                                         path, std::strerror(errno)));
    }
    ::unlink(path.c_str());
    std::vector<std::uint64_t> block(file_chunk_bytes / sizeof(std::uint64_t));
    std::uint64_t state = 0x64756574; // the same bytes every time
    for (std::uint64_t at = 0; at < bytes; at += file_chunk_bytes) {
        for (auto& word : block) {
            word = splitmix64(state);
        }
        const auto n = static_cast<std::size_t>(std::min<std::uint64_t>(file_chunk_bytes, bytes - at));
        if (::pwrite(fd, block.data(), n, static_cast<off_t>(at)) != static_cast<ssize_t>(n)) {
            int e = errno;
            ::close(fd);
            fail("io.file_size_mb", fmt::format("the file to write at start could not be written in {}: {}",
                                                path, std::strerror(e)));
        }
    }
    return fd;
}

} // namespace

std::uint32_t fnv1a(std::uint32_t h, std::span<const char> bytes) noexcept
{
    for (char c : bytes) {
        h ^= static_cast<unsigned char>(c);
        h *= 0x01000193U;
    }
    return h;
}

data_file::data_file(const duet::io_config& cfg) : rng_{static_cast<std::uint64_t>(::getpid())}
{
    if (cfg.file_path.empty()) {
        size_ = static_cast<std::uint64_t>(cfg.file_size_mb) * 1024 * 1024;
        fd_ = write_scratch_file(size_);
        description_ = fmt::format("{} MiB written at start", cfg.file_size_mb);
        return;
    }
    fd_ = ::open(cfg.file_path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd_ < 0) {
        fail("io.file_path", fmt::format("'{}' cannot be opened: {}", cfg.file_path, std::strerror(errno)));
    }
    struct stat st
    {};
    if (::fstat(fd_, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size < 1024) {
        ::close(fd_);
        fail("io.file_path", fmt::format("'{}' is not a regular file of at least 1 KiB", cfg.file_path));
    }
    size_ = static_cast<std::uint64_t>(st.st_size);
    description_ =
        fmt::format("{} ({:.1f} MiB)", cfg.file_path, static_cast<double>(size_) / (1024.0 * 1024.0));
}

data_file::~data_file()
{
    if (fd_ >= 0) {
        ::close(fd_);
    }
}

std::uint64_t data_file::random_offset(std::uint64_t bytes) noexcept
{
    const auto room = size_ - bytes + 1;
    return splitmix64(rng_) % room;
}

file_read read_blocking(int fd, std::uint64_t offset, std::uint64_t bytes)
{
    file_read out;
    std::vector<char> chunk(static_cast<std::size_t>(std::min<std::uint64_t>(bytes, file_chunk_bytes)));
    while (out.bytes < bytes) {
        const auto want = static_cast<std::size_t>(std::min<std::uint64_t>(chunk.size(), bytes - out.bytes));
        auto n = ::pread(fd, chunk.data(), want, static_cast<off_t>(offset + out.bytes));
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            out.error = n == 0 ? boost::system::error_code{boost::asio::error::eof}
                               : boost::system::error_code{errno, boost::system::system_category()};
            break;
        }
        out.checksum = fnv1a(out.checksum, {chunk.data(), static_cast<std::size_t>(n)});
        out.bytes += static_cast<std::uint64_t>(n);
    }
    return out;
}

#if defined(BOOST_ASIO_HAS_IO_URING) && defined(BOOST_ASIO_HAS_FILE)

namespace {

class ring_file final : public uring_file
{
public:
    ring_file(boost::asio::io_context& ioc, int fd) : file_{ioc.get_executor()}
    {
        // Constructing file_ made the io_context's io_uring service and its ring (it throws where the kernel
        // refuses one). The file closes its own descriptor: it gets a duplicate.
        int own = ::fcntl(fd, F_DUPFD_CLOEXEC, 0);
        if (own < 0) {
            throw boost::system::system_error{errno, boost::system::system_category(), "dup"};
        }
        boost::system::error_code ec;
        file_.assign(own, ec);
        if (ec) {
            ::close(own);
            throw boost::system::system_error{ec, "io_uring file"};
        }
    }

    task<file_read> read(std::uint64_t offset, std::uint64_t bytes) override
    {
        file_read out;
        std::vector<char> chunk(static_cast<std::size_t>(std::min<std::uint64_t>(bytes, file_chunk_bytes)));
        while (out.bytes < bytes) {
            const auto want =
                static_cast<std::size_t>(std::min<std::uint64_t>(chunk.size(), bytes - out.bytes));
            auto [ec, n] = co_await file_.async_read_some_at(
                offset + out.bytes, boost::asio::buffer(chunk.data(), want), boost::asio::as_tuple(use_task));
            if (ec || n == 0) {
                out.error = ec ? ec : boost::system::error_code{boost::asio::error::eof};
                break;
            }
            out.checksum = fnv1a(out.checksum, {chunk.data(), n});
            out.bytes += n;
        }
        co_return out;
    }

private:
    boost::asio::basic_random_access_file<io_executor> file_;
};

} // namespace

std::unique_ptr<uring_file> uring_file::open(boost::asio::io_context& ioc, int fd, std::string& why_not)
{
    try {
        return std::make_unique<ring_file>(ioc, fd);
    } catch (const std::exception& e) {
        why_not = fmt::format("io_uring is not available here ({})", e.what());
        return nullptr;
    }
}

#else

std::unique_ptr<uring_file> uring_file::open(boost::asio::io_context&, int, std::string& why_not)
{
    why_not = "this build has no io_uring (liburing was not found when it was configured)";
    return nullptr;
}

#endif

} // namespace duet::server
