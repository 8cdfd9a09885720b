#include "images/manifest.h"

#include <algorithm>

#include <boost/json.hpp>

#include "base/sha256.h"
#include "images/registry_text.h"

namespace boxcar::images {

namespace json = boost::json;

const char* const kManifestAccept =
    "application/vnd.oci.image.index.v1+json, "
    "application/vnd.docker.distribution.manifest.list.v2+json, "
    "application/vnd.oci.image.manifest.v1+json, "
    "application/vnd.docker.distribution.manifest.v2+json";

namespace {

constexpr std::string_view kOciIndex = "application/vnd.oci.image.index.v1+json";
constexpr std::string_view kDockerList = "application/vnd.docker.distribution.manifest.list.v2+json";
constexpr std::string_view kOciManifest = "application/vnd.oci.image.manifest.v1+json";
constexpr std::string_view kDockerManifest = "application/vnd.docker.distribution.manifest.v2+json";

// Layer types the store can unpack. Foreign (non-distributable) layers live elsewhere than the
// registry and are refused.
constexpr std::string_view kLayerTypes[] = {
    "application/vnd.oci.image.layer.v1.tar",
    "application/vnd.oci.image.layer.v1.tar+gzip",
    "application/vnd.oci.image.layer.v1.tar+zstd",
    "application/vnd.docker.image.rootfs.diff.tar.gzip",
    "application/vnd.docker.image.rootfs.diff.tar",
};

// `why` quotes what the registry served (digests, media types, platforms): made safe to print.
Error bad(const std::string& image, const std::string& why, ErrorCode code = ErrorCode::invalid_input) {
  return Error("image \"" + image + "\": " + registry_text(why, 1000), 0, code);
}

Result<json::object> parse_object(std::string_view body, const std::string& image, const char* what) {
  boost::system::error_code ec;
  json::value v = json::parse(body, ec);
  if (ec || !v.is_object()) {
    return bad(image, std::string("the registry's ") + what + " is not a JSON object" +
                          (ec ? ": " + ec.message() : ""));
  }
  return std::move(v.as_object());
}

std::string string_field(const json::object& o, std::string_view key) {
  const json::value* v = o.if_contains(key);
  return v && v->is_string() ? std::string(v->as_string()) : std::string();
}

// The media type without parameters ("; charset=utf-8"), lowercase, trimmed.
std::string bare_type(std::string_view content_type) {
  std::string t(content_type.substr(0, content_type.find(';')));
  while (!t.empty() && t.back() == ' ') t.pop_back();
  std::transform(t.begin(), t.end(), t.begin(), [](unsigned char c) { return std::tolower(c); });
  return t;
}

bool valid_digest(std::string_view d) { return d.substr(0, 7) == "sha256:" && is_sha256_hex(d.substr(7)); }

Result<Descriptor> descriptor(const json::value& v, const std::string& image, const char* what) {
  if (!v.is_object()) return bad(image, std::string(what) + " is not an object");
  const auto& o = v.as_object();
  Descriptor d;
  d.media_type = string_field(o, "mediaType");
  d.digest = string_field(o, "digest");
  if (!valid_digest(d.digest)) {
    return bad(image, std::string(what) + " has digest \"" + d.digest + "\": only sha256 is supported");
  }
  const json::value* size = o.if_contains("size");
  if (!size || !(size->is_int64() || size->is_uint64()) || (size->is_int64() && size->as_int64() < 0)) {
    return bad(image, std::string(what) + " " + d.digest + " has no valid size");
  }
  d.size = size->is_int64() ? static_cast<uint64_t>(size->as_int64()) : size->as_uint64();
  return d;
}

std::string platform_name(const std::string& os, const std::string& arch, const std::string& variant) {
  return os + "/" + arch + (variant.empty() ? "" : "/" + variant);
}

std::vector<std::string> string_array(const json::object& o, std::string_view key) {
  std::vector<std::string> out;
  const json::value* v = o.if_contains(key);
  if (!v || !v->is_array()) return out;
  for (const auto& item : v->as_array()) {
    if (item.is_string()) out.emplace_back(item.as_string());
  }
  return out;
}

}  // namespace

Result<ManifestKind> manifest_kind(std::string_view body, std::string_view content_type, const std::string& image) {
  std::string type = bare_type(content_type);
  if (type.empty() || type == "application/json" || type == "text/plain" || type == "application/octet-stream") {
    auto o = parse_object(body, image, "manifest");
    if (!o) return o.error();
    type = string_field(*o, "mediaType");
    if (type.empty()) {
      const json::value* version = o->if_contains("schemaVersion");
      if (version && version->is_int64() && version->as_int64() == 1) type = "application/vnd.docker.distribution.manifest.v1+json";
      // An OCI manifest may omit mediaType: it has "config" and "layers", an index "manifests".
      else if (o->contains("manifests")) type = std::string(kOciIndex);
      else if (o->contains("layers")) type = std::string(kOciManifest);
    }
  }
  if (type == kOciIndex || type == kDockerList) return ManifestKind::index;
  if (type == kOciManifest || type == kDockerManifest) return ManifestKind::image;
  if (type.find("manifest.v1") != std::string::npos) {
    return bad(image, "the registry serves a Docker schema 1 manifest, which boxcar does not support: "
                      "push the image again with a current Docker, buildah or skopeo (schema 2 or OCI)");
  }
  return bad(image, "the registry serves a manifest of unknown media type \"" + type +
                        "\" (boxcar reads OCI and Docker v2 schema 2 manifests and indexes)");
}

Result<Descriptor> pick_platform(std::string_view body, const Platform& platform, const std::string& image) {
  auto o = parse_object(body, image, "image index");
  if (!o) return o.error();
  const json::value* manifests = o->if_contains("manifests");
  if (!manifests || !manifests->is_array()) return bad(image, "the image index has no \"manifests\" list");
  const auto& list = manifests->as_array();
  if (list.size() > kMaxIndexEntries) {
    return bad(image, "the image index has " + std::to_string(list.size()) + " entries, more than " +
                          std::to_string(kMaxIndexEntries), ErrorCode::limit_exceeded);
  }
  std::optional<Descriptor> any_variant;
  std::vector<std::string> seen;
  for (const auto& entry : list) {
    if (!entry.is_object()) continue;
    const json::value* p = entry.as_object().if_contains("platform");
    if (!p || !p->is_object()) continue;
    std::string os = string_field(p->as_object(), "os");
    std::string arch = string_field(p->as_object(), "architecture");
    std::string variant = string_field(p->as_object(), "variant");
    // Attestation manifests (buildkit's "unknown/unknown") are no platform.
    if (os == "unknown" || arch == "unknown" || os.empty()) continue;
    std::string name = platform_name(os, arch, variant);
    if (std::find(seen.begin(), seen.end(), name) == seen.end()) seen.push_back(name);
    if (os != platform.os || arch != platform.architecture) continue;
    auto d = descriptor(entry, image, "an index entry");
    if (!d) return d.error();
    if (variant == platform.variant) return *d;
    // Wanted "": the first entry of any variant will do; wanted "v8": one without a variant too.
    if (!any_variant && (platform.variant.empty() || variant.empty())) any_variant = *d;
  }
  if (any_variant) return *any_variant;
  std::string has;
  for (const auto& s : seen) has += (has.empty() ? "" : ", ") + s;
  return bad(image, "no manifest for " + platform_name(platform.os, platform.architecture, platform.variant) +
                        " in the image; it has " + (has.empty() ? "no platform at all" : has),
             ErrorCode::not_found);
}

Result<Manifest> parse_manifest(std::string_view body, std::string_view content_type, const std::string& digest,
                                const std::string& image) {
  auto kind = manifest_kind(body, content_type, image);
  if (!kind) return kind.error();
  if (*kind != ManifestKind::image) return bad(image, "expected an image manifest, got an image index");
  auto o = parse_object(body, image, "manifest");
  if (!o) return o.error();
  Manifest m;
  m.digest = digest;
  m.media_type = string_field(*o, "mediaType");
  if (m.media_type.empty()) m.media_type = bare_type(content_type);
  const json::value* config = o->if_contains("config");
  if (!config) return bad(image, "the manifest " + digest + " has no config");
  auto c = descriptor(*config, image, "the manifest's config");
  if (!c) return c.error();
  if (c->size > kMaxConfigBytes) {
    return bad(image, "its config is " + std::to_string(c->size) + " bytes, more than " +
                          std::to_string(kMaxConfigBytes), ErrorCode::limit_exceeded);
  }
  m.config = *c;
  const json::value* layers = o->if_contains("layers");
  if (!layers || !layers->is_array()) return bad(image, "the manifest " + digest + " has no layers list");
  if (layers->as_array().size() > kMaxLayers) {
    return bad(image, "it has " + std::to_string(layers->as_array().size()) + " layers, more than " +
                          std::to_string(kMaxLayers), ErrorCode::limit_exceeded);
  }
  for (const auto& l : layers->as_array()) {
    auto d = descriptor(l, image, "a layer");
    if (!d) return d.error();
    if (std::find(std::begin(kLayerTypes), std::end(kLayerTypes), d->media_type) == std::end(kLayerTypes)) {
      return bad(image, "layer " + d->digest + " has media type \"" + d->media_type +
                            "\", which boxcar cannot unpack (tar, tar+gzip and tar+zstd layers are supported; "
                            "foreign layers are not)");
    }
    m.layers.push_back(std::move(*d));
  }
  return m;
}

Result<ImageConfig> parse_image_config(std::string_view body, const std::string& image) {
  if (body.size() > kMaxConfigBytes) return bad(image, "its config is too large", ErrorCode::limit_exceeded);
  auto o = parse_object(body, image, "image config");
  if (!o) return o.error();
  ImageConfig out;
  const json::value* c = o->if_contains("config");
  if (!c || !c->is_object()) return out;  // an image with no runtime config runs with defaults
  const auto& config = c->as_object();
  out.env = string_array(config, "Env");
  out.user = string_field(config, "User");
  out.entrypoint = string_array(config, "Entrypoint");
  out.cmd = string_array(config, "Cmd");
  out.working_dir = string_field(config, "WorkingDir");
  return out;
}

}  // namespace boxcar::images
