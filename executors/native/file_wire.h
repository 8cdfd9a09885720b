// file_wire: FileRequest and FileReply (executors/file_request.h) on the wire between the agent
// and a sandbox's file helper (init_files.h). The request travels in a Msg::helper record of
// the control channel with one fd attached: the agent's end of a fresh SOCK_STREAM socketpair.
// The helper writes on that socket, in order: one byte 'P' carrying its own pidfd (so the agent
// can kill a helper that does not answer, wherever it is stopped), then the encoded reply, with
// the file's fd attached to its first byte for open_read and open_write; then it exits, and the
// end of the stream ends the reply.
#pragma once

#include <string>
#include <string_view>

#include "executors/file_request.h"

namespace boxcar::executors::native {

// What the agent reads of one reply at most; the helper truncates a listing before it (and
// says so). A reply past it is refused, and the helper killed.
constexpr size_t kMaxFileReply = 16u << 20;
// Entries a listing or a recursive copy or remove handles at most (FileRequest::limit is capped
// to it by the API).
constexpr size_t kMaxFileEntries = 100000;

// The Msg::helper record's body (type byte included).
std::string encode_file_request(const FileRequest& request);
// false when `body` is not a well-formed request.
bool decode_file_request(std::string_view body, FileRequest& request);

// The reply's bytes after the 'P' byte (the fd, if any, travels beside them).
std::string encode_file_reply(const FileReply& reply, bool has_fd);
// false when `data` is not a well-formed reply; `has_fd` says whether the helper attached one.
bool decode_file_reply(std::string_view data, FileReply& reply, bool& has_fd);

}  // namespace boxcar::executors::native
