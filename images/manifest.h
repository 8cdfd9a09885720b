// Manifests as registries serve them: an image index / manifest list reduced to one platform's
// entry, a Docker v2 schema 2 or OCI image manifest, and the image config blob. Pure parsing of
// bytes already fetched; every size and count is bounded, and each refusal names the image.
#pragma once

#include <string>
#include <string_view>

#include "base/result.h"
#include "images/image.h"
#include "images/registry_client.h"

namespace boxcar::images {

inline constexpr size_t kMaxLayers = 256;
inline constexpr size_t kMaxIndexEntries = 1024;
inline constexpr uint64_t kMaxConfigBytes = 4 << 20;

// The media types a manifest request accepts, most wanted first (the Accept header).
extern const char* const kManifestAccept;

struct Platform {
  std::string os = "linux";
  std::string architecture = "amd64";
  std::string variant;  // "" matches any, an entry without one preferred
};

// What a manifest body is: an index to pick from, or an image manifest. `content_type` is the
// registry's Content-Type; when it is missing or generic the body's "mediaType" decides.
enum class ManifestKind { index, image };
Result<ManifestKind> manifest_kind(std::string_view body, std::string_view content_type,
                                   const std::string& image);

// The entry of an index for `platform`. Error: "no manifest for linux/amd64 in IMAGE; it has
// linux/arm64, linux/s390x" (not_found).
Result<Descriptor> pick_platform(std::string_view body, const Platform& platform, const std::string& image);

// An image manifest (Docker v2 schema 2 or OCI); `digest` is that of the bytes as served.
// Schema 1 and unknown media types (of the manifest or a layer) are refused, saying which.
Result<Manifest> parse_manifest(std::string_view body, std::string_view content_type,
                                const std::string& digest, const std::string& image);

// The runtime parts of an image config blob (its "config" object).
Result<ImageConfig> parse_image_config(std::string_view body, const std::string& image);

}  // namespace boxcar::images
