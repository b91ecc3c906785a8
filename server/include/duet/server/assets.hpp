#pragma once
// The dashboard's files, compiled into the server (cmake/EmbedAssets.cmake): nothing is read at run time.

#include <span>
#include <string_view>

namespace duet::server {

/// One embedded file: its name (without a folder), its Content-Type and its bytes.
struct embedded_asset
{
    std::string_view name;
    std::string_view content_type;
    std::span<const unsigned char> bytes;
};

/// Every embedded file, in the order CMake listed them.
std::span<const embedded_asset> embedded_assets() noexcept;

} // namespace duet::server
