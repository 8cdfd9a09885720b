// Image references as Docker writes them, made canonical: "node:20" is
// docker.io/library/node:20, "ghcr.io/org/app:1.2" keeps its registry, "reg:5000/x/y@sha256:..."
// is pinned to a digest. Pure parsing, no I/O.
#pragma once

#include <string>
#include <string_view>

#include "base/result.h"

namespace boxcar::images {

struct Reference {
  std::string registry;    // "docker.io", "ghcr.io", "127.0.0.1:5000" (host[:port])
  std::string repository;  // "library/node", "org/app"
  std::string tag;         // "20"; "latest" when neither tag nor digest was given
  std::string digest;      // "sha256:<64 hex>" when pinned ("" otherwise); wins over the tag

  // "docker.io/library/node:20", "reg:5000/x@sha256:...", "reg/x:1@sha256:..." (both kept).
  std::string canonical() const;
  // What the registry API calls the manifest: the digest when pinned, else the tag.
  std::string manifest_ref() const { return digest.empty() ? tag : digest; }
  // The host to connect to: "registry-1.docker.io" for docker.io, else `registry`.
  std::string api_host() const;
};

// Parses `text` as Docker does (distribution/reference's normalized names): lowercase
// repository components, a first component with a '.' or ':' or equal to "localhost" is the
// registry, tags of [A-Za-z0-9_.-]{1,128}, digests "sha256:<64 lowercase hex>". An Error
// (invalid_input) says what is wrong with the text, e.g. "image \"Node:20\": repository names
// are lowercase".
Result<Reference> parse_reference(std::string_view text);

}  // namespace boxcar::images
