#include <duet/server/wire.hpp>

namespace duet::server {

std::array<boost::asio::const_buffer, 2> wire_form(const response& res, std::string& head)
{
    head.clear();
    head.append(res.version() == 10 ? "HTTP/1.0 " : "HTTP/1.1 ");
    const auto code = res.result_int();
    head.push_back(static_cast<char>('0' + code / 100 % 10));
    head.push_back(static_cast<char>('0' + code / 10 % 10));
    head.push_back(static_cast<char>('0' + code % 10));
    head.push_back(' ');
    head.append(res.reason());
    head.append("\r\n");
    for (const auto& field : res) {
        head.append(field.name_string());
        head.append(": ");
        head.append(field.value());
        head.append("\r\n");
    }
    head.append("\r\n");
    return {boost::asio::buffer(head), boost::asio::buffer(res.body())};
}

} // namespace duet::server
