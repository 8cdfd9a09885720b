// boxcar image: the machine's image cache. `pull` fetches an image into it (always asking the
// registry, as `docker pull` does), `ls` lists what is there, `rm` forgets an image and `prune`
// removes the layers no image refers to.
#include <cstdio>
#include <ctime>

#include <boost/json/serialize.hpp>

#include "base/size.h"
#include "base/terminal_escape.h"
#include "cli/commands.h"
#include "cli/flags.h"
#include "cli/image_flags.h"
#include "cli/pull_progress.h"
#include "images/image_puller.h"

namespace boxcar::cli {

namespace {

constexpr const char* kUsage =
    "usage: boxcar image pull REF [--json]   fetch an image into the cache (REF as docker writes it)\n"
    "       boxcar image ls [--json]         the cached images: reference, digest, size, last used\n"
    "       boxcar image rm REF              forget an image (its layers go with the next prune)\n"
    "       boxcar image prune               remove the layers no cached image refers to\n"
    "flags (every subcommand):\n";

std::string ago(int64_t unix_seconds) {
  int64_t d = static_cast<int64_t>(std::time(nullptr)) - unix_seconds;
  if (d < 60) return "just now";
  if (d < 3600) return std::to_string(d / 60) + " minutes ago";
  if (d < 86400) return std::to_string(d / 3600) + " hours ago";
  return std::to_string(d / 86400) + " days ago";
}

std::string short_digest(const std::string& d) {
  size_t colon = d.find(':');
  return colon == std::string::npos ? d : d.substr(0, colon + 1 + 12);
}

int pull(const ImageSettings& settings, const std::string& text, bool json) {
  auto ref = images::parse_reference(text);
  if (!ref) return report("image pull", ref.error());
  auto store = images::LayerStore::open(settings.store);
  if (!store) return report("image pull", store.error());
  PullProgressPrinter printer(stdout, PullProgressPrinter::mode_for(stdout, json));
  images::RegistryOptions options = settings.registry;
  std::string canonical = ref->canonical();
  options.on_retry = [&](const std::string& why) {
    images::PullEvent e{};
    e.kind = images::PullEvent::Kind::retry;
    e.reference = canonical;
    e.message = why;
    printer(e);
  };
  auto registry = images::RegistryClient::make(options);
  if (!registry) return report("image pull", registry.error());
  images::PullOptions pull_options;
  pull_options.refresh = true;
  pull_options.timeout = settings.pull_timeout;
  auto image = images::pull_image(**store, **registry, *ref, pull_options, [&](const images::PullEvent& e) { printer(e); });
  if (!image) return report("image pull", image.error());
  if (!json) {
    std::printf("%s %s (%s)\n", escape_for_terminal(image->reference).c_str(), image->digest.c_str(),
                format_size(image->size).c_str());
  }
  return kExitOk;
}

int list(const ImageSettings& settings, bool json) {
  auto store = images::LayerStore::open(settings.store);
  if (!store) return report("image ls", store.error());
  auto records = (*store)->list();
  if (json) {
    for (const auto& r : records) {
      boost::json::object o{{"reference", r.image.reference}, {"digest", r.image.digest},
                            {"size", r.image.size}, {"last_used", r.last_used}};
      std::printf("%s\n", boost::json::serialize(o).c_str());
    }
    return kExitOk;
  }
  std::printf("%-50s %-20s %10s  %s\n", "REFERENCE", "DIGEST", "SIZE", "LAST USED");
  for (const auto& r : records) {
    std::printf("%-50s %-20s %10s  %s\n", escape_for_terminal(r.image.reference).c_str(),
                short_digest(r.image.digest).c_str(), format_size(r.image.size).c_str(), ago(r.last_used).c_str());
  }
  return kExitOk;
}

int remove(const ImageSettings& settings, const std::string& text) {
  auto ref = images::parse_reference(text);
  if (!ref) return report("image rm", ref.error());
  auto store = images::LayerStore::open(settings.store);
  if (!store) return report("image rm", store.error());
  if (auto removed = (*store)->remove(ref->canonical()); !removed) {
    Error e = removed.error();
    if (e.code == ErrorCode::not_found) {
      e.message = "image " + ref->canonical() + " is not in the cache at " + settings.store.dir.string() +
                  " (boxcar image ls lists what is)";
    }
    return report("image rm", e);
  }
  std::printf("removed %s (its layers go with boxcar image prune)\n", escape_for_terminal(ref->canonical()).c_str());
  return kExitOk;
}

int prune(const ImageSettings& settings) {
  auto store = images::LayerStore::open(settings.store);
  if (!store) return report("image prune", store.error());
  auto freed = (*store)->prune();
  if (!freed) return report("image prune", freed.error());
  std::printf("freed %s\n", format_size(*freed).c_str());
  return kExitOk;
}

}  // namespace

int cmd_image(const Args& args) {
  auto flags = parse_flags(args, with_image_flags({{"--help", false, false, "-h"}, {"--json", false, false, ""}}));
  if (!flags.ok()) return usage_error("image", flags.error().message);
  if (flags->has("--help")) {
    std::printf("%s%s", kUsage, kImageFlagsUsage);
    return kExitOk;
  }
  const auto& pos = flags->positional;
  if (pos.empty()) return usage_error("image", "needs a subcommand: pull REF, ls, rm REF or prune");
  const std::string& sub = pos[0];
  size_t want = sub == "pull" || sub == "rm" ? 2 : 1;
  if (sub != "pull" && sub != "ls" && sub != "rm" && sub != "prune") {
    return usage_error("image", "unknown subcommand \"" + sub + "\": pull REF, ls, rm REF or prune");
  }
  if (pos.size() != want) {
    return usage_error("image " + sub, want == 2 ? "needs exactly one image reference" : "takes no arguments");
  }
  auto settings = read_image_flags(*flags, default_image_cache());
  if (!settings) return report("image " + sub, settings.error());
  bool json = flags->has("--json");
  if (sub == "pull") return pull(*settings, pos[1], json);
  if (sub == "ls") return list(*settings, json);
  if (sub == "rm") return remove(*settings, pos[1]);
  return prune(*settings);
}

}  // namespace boxcar::cli
