#include "cli/pull_progress.h"

#include <unistd.h>

#include <cstdlib>
#include <cstring>

#include <boost/json/serialize.hpp>

#include "base/size.h"
#include "base/terminal_escape.h"

namespace boxcar::cli {

namespace {

const char* kind_name(images::PullEvent::Kind k) {
  using K = images::PullEvent::Kind;
  switch (k) {
    case K::resolving: return "resolving";
    case K::resolved: return "resolved";
    case K::layer_start: return "layer_start";
    case K::layer_progress: return "layer_progress";
    case K::layer_cached: return "layer_cached";
    case K::layer_unpacked: return "layer_unpacked";
    case K::retry: return "retry";
    case K::done: return "done";
  }
  return "unknown";
}

// "sha256:0123456789abcdef..." -> "0123456789ab", as docker shows layers.
std::string short_digest(const std::string& d) {
  size_t colon = d.find(':');
  return d.substr(colon == std::string::npos ? 0 : colon + 1, 12);
}

}  // namespace

boost::json::object pull_event_json(const images::PullEvent& e) {
  boost::json::object o{{"event", kind_name(e.kind)}, {"reference", e.reference}};
  if (!e.digest.empty()) o["digest"] = e.digest;
  if (!e.layer.empty()) o["layer"] = e.layer;
  if (e.bytes_done) o["bytes_done"] = e.bytes_done;
  if (e.bytes_total) o["bytes_total"] = e.bytes_total;
  if (e.layers_total) o["layers_total"] = e.layers_total;
  if (!e.message.empty()) o["message"] = e.message;
  return o;
}

PullProgressPrinter::Mode PullProgressPrinter::mode_for(std::FILE* out, bool json) {
  if (json) return Mode::json;
  const char* term = std::getenv("TERM");
  bool dumb = term && std::strcmp(term, "dumb") == 0;
  return ::isatty(::fileno(out)) == 1 && !dumb ? Mode::terminal : Mode::plain;
}

PullProgressPrinter::Layer& PullProgressPrinter::layer(const std::string& digest) {
  for (auto& l : layers_) {
    if (l.digest == digest) return l;
  }
  layers_.push_back(Layer{digest, "waiting", 0, 0});
  return layers_.back();
}

void PullProgressPrinter::operator()(const images::PullEvent& e) {
  using K = images::PullEvent::Kind;
  std::lock_guard lock(mu_);
  if (mode_ == Mode::json) {
    std::fprintf(out_, "%s\n", boost::json::serialize(pull_event_json(e)).c_str());
    std::fflush(out_);
    return;
  }
  // What the registry or the user typed reaches the terminal only escaped.
  std::string ref = escape_for_terminal(e.reference);
  if (mode_ == Mode::plain) {
    switch (e.kind) {
      case K::resolving: std::fprintf(out_, "pulling %s\n", ref.c_str()); break;
      case K::resolved:
        std::fprintf(out_, "%s: %zu layers, %s\n", e.digest.c_str(), e.layers_total, format_size(e.bytes_total).c_str());
        break;
      case K::layer_start:
        std::fprintf(out_, "%s: downloading %s\n", short_digest(e.layer).c_str(), format_size(e.bytes_total).c_str());
        break;
      case K::layer_cached: std::fprintf(out_, "%s: already in the cache\n", short_digest(e.layer).c_str()); break;
      case K::layer_unpacked: std::fprintf(out_, "%s: done\n", short_digest(e.layer).c_str()); break;
      case K::retry: std::fprintf(out_, "retrying: %s\n", escape_for_terminal(e.message).c_str()); break;
      case K::layer_progress:
      case K::done: break;
    }
    std::fflush(out_);
    return;
  }
  switch (e.kind) {
    case K::resolving: std::fprintf(out_, "pulling %s\n", ref.c_str()); break;
    case K::resolved: std::fprintf(out_, "%s\n", e.digest.c_str()); break;
    case K::layer_start: layer(e.layer) = Layer{e.layer, "downloading", 0, e.bytes_total}; break;
    case K::layer_progress: {
      Layer& l = layer(e.layer);
      l.done = e.bytes_done;
      l.total = e.bytes_total;
      l.state = e.bytes_done == e.bytes_total ? "unpacking" : "downloading";
      break;
    }
    case K::layer_cached: layer(e.layer).state = "already in the cache"; break;
    case K::layer_unpacked: layer(e.layer).state = "done"; break;
    case K::retry:
      std::fprintf(out_, "retrying: %s\n", escape_for_terminal(e.message).c_str());
      drawn_ = 0;  // the lines above are no longer ours to redraw
      break;
    case K::done: break;
  }
  if (e.kind != K::resolving && e.kind != K::resolved && e.kind != K::retry && e.kind != K::done) redraw();
  std::fflush(out_);
}

void PullProgressPrinter::redraw() {
  if (drawn_ > 0) std::fprintf(out_, "\x1b[%zuA", drawn_);
  for (const auto& l : layers_) {
    std::string line = short_digest(l.digest) + ": " + l.state;
    if (l.state == "downloading") line += " " + format_size(l.done) + " / " + format_size(l.total);
    std::fprintf(out_, "\x1b[2K%s\n", line.c_str());
  }
  drawn_ = layers_.size();
}

}  // namespace boxcar::cli
