#include "executors/native/file_wire.h"

#include "executors/native/control_channel.h"

namespace boxcar::executors::native {

namespace {

constexpr uint64_t kRecursive = 1, kParents = 2, kOverwrite = 4, kAppend = 8, kHidden = 16, kTruncated = 32,
                   kCreated = 64, kHasFd = 128;

void put_entry(Writer& w, const FileEntry& e) {
  w.str(e.name).str(e.path).u64(static_cast<uint64_t>(e.type)).u64(e.size).u64(e.mode);
  w.u64(static_cast<uint64_t>(e.mtime_ms)).str(e.target);
}

bool get_entry(Reader& r, FileEntry& e) {
  e.name = r.str();
  e.path = r.str();
  uint64_t type = r.u64();
  e.size = r.u64();
  e.mode = static_cast<uint32_t>(r.u64());
  e.mtime_ms = static_cast<int64_t>(r.u64());
  e.target = r.str();
  if (type > static_cast<uint64_t>(FileEntry::Type::other)) return false;
  e.type = static_cast<FileEntry::Type>(type);
  return r.ok();
}

}  // namespace

std::string encode_file_request(const FileRequest& q) {
  uint64_t flags = (q.recursive ? kRecursive : 0) | (q.parents ? kParents : 0) | (q.overwrite ? kOverwrite : 0) |
                   (q.append ? kAppend : 0) | (q.hidden ? kHidden : 0);
  return Writer(Msg::helper).u64(static_cast<uint64_t>(q.op)).str(q.path).str(q.to).u64(flags).u64(q.mode)
      .u64(q.limit).data();
}

bool decode_file_request(std::string_view body, FileRequest& q) {
  if (body.empty() || body[0] != static_cast<char>(Msg::helper)) return false;
  Reader r(body);
  uint64_t op = r.u64();
  q.path = r.str();
  q.to = r.str();
  uint64_t flags = r.u64();
  q.mode = static_cast<uint32_t>(r.u64());
  q.limit = static_cast<size_t>(r.u64());
  if (!r.ok() || op > static_cast<uint64_t>(FileOp::remove)) return false;
  q.op = static_cast<FileOp>(op);
  q.recursive = flags & kRecursive;
  q.parents = flags & kParents;
  q.overwrite = flags & kOverwrite;
  q.append = flags & kAppend;
  q.hidden = flags & kHidden;
  return true;
}

std::string encode_file_reply(const FileReply& reply, bool has_fd) {
  uint64_t flags = (reply.truncated ? kTruncated : 0) | (reply.created ? kCreated : 0) | (has_fd ? kHasFd : 0);
  Writer w(Msg::helper);
  w.u64(static_cast<uint64_t>(reply.err)).str(reply.message).u64(flags);
  put_entry(w, reply.entry);
  w.u64(reply.entries.size());
  for (const auto& e : reply.entries) put_entry(w, e);
  return w.data();
}

bool decode_file_reply(std::string_view data, FileReply& reply, bool& has_fd) {
  if (data.empty() || data[0] != static_cast<char>(Msg::helper)) return false;
  Reader r(data);
  reply.err = static_cast<int>(r.u64());
  reply.message = r.str();
  uint64_t flags = r.u64();
  if (!get_entry(r, reply.entry)) return false;
  uint64_t count = r.u64();
  // Each entry takes at least 7 * 8 bytes: a count past what is left is a lie.
  if (!r.ok() || count > kMaxFileEntries || count > data.size() / 56) return false;
  reply.entries.resize(count);
  for (auto& e : reply.entries) {
    if (!get_entry(r, e)) return false;
  }
  reply.truncated = flags & kTruncated;
  reply.created = flags & kCreated;
  has_fd = flags & kHasFd;
  return r.ok();
}

}  // namespace boxcar::executors::native
