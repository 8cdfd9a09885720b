#include "cli/pipeline_file.h"

#include <cstdio>
#include <fstream>

#include "images/reference.h"
#include "pipeline/load.h"

namespace boxcar::cli {

std::optional<LoadedPipeline> load_pipeline_file(const std::optional<std::string>& file,
                                                 const std::filesystem::path& dir) {
  std::filesystem::path path;
  if (file) {
    path = *file;
  } else {
    for (const char* name : {".boxcar.toml", "boxcar.toml"}) {
      std::error_code ec;
      if (std::filesystem::is_regular_file(dir / name, ec)) {
        path = dir / name;
        break;
      }
    }
    if (path.empty()) {
      std::fprintf(stderr,
                   "boxcar: no pipeline file: neither .boxcar.toml nor boxcar.toml in %s "
                   "(use --file to name one)\n",
                   dir.c_str());
      return std::nullopt;
    }
  }
  std::ifstream in(path, std::ios::binary);
  std::error_code ec;
  if (!in || std::filesystem::is_directory(path, ec)) {
    std::fprintf(stderr, "boxcar: cannot read pipeline file %s: %s\n", path.c_str(),
                 std::filesystem::is_directory(path, ec) ? "it is a directory"
                                                         : "no such file or not readable");
    return std::nullopt;
  }
  // One byte past the limit is enough for parse_pipeline to refuse the file, however large.
  const pipeline::Limits limits;
  LoadedPipeline loaded;
  loaded.path = path;
  loaded.text.resize(limits.file_bytes + 1);
  in.read(loaded.text.data(), static_cast<std::streamsize>(loaded.text.size()));
  loaded.text.resize(static_cast<size_t>(in.gcount()));
  // Messages name the file as the user would: relative when it was found by lookup.
  std::string shown = file ? *file : path.filename().string();
  // Each expansion's image as the agent will parse it, so validate fails where run would.
  auto image_check = [](std::string_view image) -> std::string {
    auto ref = images::parse_reference(image);
    return ref.ok() ? "" : ref.error().message;
  };
  auto result = pipeline::parse_pipeline(loaded.text, shown, limits, image_check);
  if (!result.errors.empty()) {
    std::fputs(pipeline::render_diagnostics(result.errors, loaded.text).c_str(), stderr);
    std::fprintf(stderr, "boxcar: %zu error%s in %s\n", result.errors.size(),
                 result.errors.size() == 1 ? "" : "s", shown.c_str());
    return std::nullopt;
  }
  loaded.pipeline = std::move(*result.pipeline);
  return loaded;
}

}  // namespace boxcar::cli
