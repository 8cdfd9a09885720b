#include "images/manifest.h"

#include <gtest/gtest.h>

namespace boxcar::images {
namespace {

const std::string kA = "sha256:" + std::string(64, 'a');
const std::string kB = "sha256:" + std::string(64, 'b');
const std::string kC = "sha256:" + std::string(64, 'c');

std::string entry(const std::string& digest, const std::string& os, const std::string& arch,
                  const std::string& variant = "") {
  std::string platform = "{\"os\":\"" + os + "\",\"architecture\":\"" + arch + "\"" +
                         (variant.empty() ? "" : ",\"variant\":\"" + variant + "\"") + "}";
  return "{\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\"digest\":\"" + digest +
         "\",\"size\":10,\"platform\":" + platform + "}";
}

std::string index(const std::vector<std::string>& entries) {
  std::string out = "{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.index.v1+json\",\"manifests\":[";
  for (size_t i = 0; i < entries.size(); ++i) out += (i ? "," : "") + entries[i];
  return out + "]}";
}

TEST(ManifestTest, KindFollowsContentTypeElseTheBody) {
  EXPECT_EQ(*manifest_kind("{}", "application/vnd.docker.distribution.manifest.list.v2+json", "x"), ManifestKind::index);
  EXPECT_EQ(*manifest_kind("{}", "application/vnd.oci.image.manifest.v1+json; charset=utf-8", "x"), ManifestKind::image);
  EXPECT_EQ(*manifest_kind(index({}), "application/json", "x"), ManifestKind::index);
  EXPECT_EQ(*manifest_kind("{\"schemaVersion\":2,\"layers\":[]}", "", "x"), ManifestKind::image);
}

TEST(ManifestTest, SchemaOneAndUnknownTypesAreRefusedClearly) {
  auto v1 = manifest_kind("{\"schemaVersion\":1}", "application/vnd.docker.distribution.manifest.v1+prettyjws", "old:1");
  ASSERT_FALSE(v1.ok());
  EXPECT_NE(v1.error().message.find("schema 1"), std::string::npos) << v1.error().message;
  EXPECT_NE(v1.error().message.find("old:1"), std::string::npos);
  auto v1body = manifest_kind("{\"schemaVersion\":1}", "application/json", "old:1");
  ASSERT_FALSE(v1body.ok());
  EXPECT_NE(v1body.error().message.find("schema 1"), std::string::npos);
  auto odd = manifest_kind("{}", "application/vnd.example.thing", "x");
  ASSERT_FALSE(odd.ok());
  EXPECT_NE(odd.error().message.find("application/vnd.example.thing"), std::string::npos);
}

TEST(ManifestTest, PicksLinuxAmd64FromAnIndex) {
  auto d = pick_platform(index({entry(kA, "linux", "arm64", "v8"), entry(kB, "linux", "amd64"),
                                entry(kC, "unknown", "unknown")}),
                         Platform{}, "x");
  ASSERT_TRUE(d.ok()) << d.error().message;
  EXPECT_EQ(d->digest, kB);
}

TEST(ManifestTest, VariantAware) {
  std::string body = index({entry(kA, "linux", "arm", "v6"), entry(kB, "linux", "arm", "v7"), entry(kC, "linux", "arm64")});
  EXPECT_EQ(pick_platform(body, Platform{"linux", "arm", "v7"}, "x")->digest, kB);
  EXPECT_EQ(pick_platform(body, Platform{"linux", "arm", "v6"}, "x")->digest, kA);
  // An entry without a variant serves a wanted variant ("v8" is arm64's only one).
  EXPECT_EQ(pick_platform(body, Platform{"linux", "arm64", "v8"}, "x")->digest, kC);
  auto none = pick_platform(body, Platform{"linux", "arm", "v5"}, "x");
  EXPECT_FALSE(none.ok());
  // Wanting no variant in particular prefers an entry without one.
  std::string amd = index({entry(kA, "linux", "amd64", "v3"), entry(kB, "linux", "amd64")});
  EXPECT_EQ(pick_platform(amd, Platform{}, "x")->digest, kB);
  EXPECT_EQ(pick_platform(index({entry(kA, "linux", "amd64", "v3")}), Platform{}, "x")->digest, kA);
}

TEST(ManifestTest, NoAmd64NamesThePlatformsThereAre) {
  auto r = pick_platform(index({entry(kA, "linux", "arm64"), entry(kB, "linux", "s390x")}), Platform{}, "reg/x:1");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ErrorCode::not_found);
  EXPECT_NE(r.error().message.find("no manifest for linux/amd64"), std::string::npos) << r.error().message;
  EXPECT_NE(r.error().message.find("it has linux/arm64, linux/s390x"), std::string::npos) << r.error().message;
  EXPECT_NE(r.error().message.find("reg/x:1"), std::string::npos);
}

std::string manifest(const std::vector<std::string>& layer_types) {
  std::string out = "{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\","
                    "\"config\":{\"mediaType\":\"application/vnd.oci.image.config.v1+json\",\"digest\":\"" + kA +
                    "\",\"size\":100},\"layers\":[";
  for (size_t i = 0; i < layer_types.size(); ++i) {
    out += std::string(i ? "," : "") + "{\"mediaType\":\"" + layer_types[i] + "\",\"digest\":\"" + kB + "\",\"size\":" +
           std::to_string(i + 1) + "}";
  }
  return out + "]}";
}

TEST(ManifestTest, ParsesAnImageManifest) {
  auto m = parse_manifest(manifest({"application/vnd.oci.image.layer.v1.tar+gzip",
                                    "application/vnd.docker.image.rootfs.diff.tar.gzip"}),
                          "application/vnd.oci.image.manifest.v1+json", kC, "x");
  ASSERT_TRUE(m.ok()) << m.error().message;
  EXPECT_EQ(m->digest, kC);
  EXPECT_EQ(m->config.digest, kA);
  EXPECT_EQ(m->config.size, 100u);
  ASSERT_EQ(m->layers.size(), 2u);
  EXPECT_EQ(m->layers[1].size, 2u);
}

TEST(ManifestTest, BoundsAndBadFieldsAreRefused) {
  std::vector<std::string> many(kMaxLayers + 1, "application/vnd.oci.image.layer.v1.tar");
  auto big = parse_manifest(manifest(many), "", kC, "x");
  ASSERT_FALSE(big.ok());
  EXPECT_EQ(big.error().code, ErrorCode::limit_exceeded);
  EXPECT_TRUE(parse_manifest(manifest(std::vector<std::string>(kMaxLayers, "application/vnd.oci.image.layer.v1.tar")), "", kC, "x").ok());
  auto foreign = parse_manifest(manifest({"application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"}), "", kC, "x");
  ASSERT_FALSE(foreign.ok());
  EXPECT_NE(foreign.error().message.find("foreign"), std::string::npos);
  std::string md5 = manifest({"application/vnd.oci.image.layer.v1.tar"});
  md5.replace(md5.find(kB), kB.size(), "md5:abc");
  EXPECT_FALSE(parse_manifest(md5, "", kC, "x").ok());
  EXPECT_FALSE(parse_manifest("not json", "application/vnd.oci.image.manifest.v1+json", kC, "x").ok());
}

TEST(ManifestTest, ImageConfigRuntimeFields) {
  auto c = parse_image_config(R"({"architecture":"amd64","config":{"Env":["PATH=/bin","A=1"],"User":"1000:1000",
      "Entrypoint":["/bin/sh","-c"],"Cmd":["echo hi"],"WorkingDir":"/srv"}})", "x");
  ASSERT_TRUE(c.ok()) << c.error().message;
  EXPECT_EQ(c->env, (std::vector<std::string>{"PATH=/bin", "A=1"}));
  EXPECT_EQ(c->user, "1000:1000");
  EXPECT_EQ(c->entrypoint, (std::vector<std::string>{"/bin/sh", "-c"}));
  EXPECT_EQ(c->cmd, (std::vector<std::string>{"echo hi"}));
  EXPECT_EQ(c->working_dir, "/srv");
  auto empty = parse_image_config(R"({"architecture":"amd64"})", "x");
  ASSERT_TRUE(empty.ok());
  EXPECT_TRUE(empty->env.empty());
  EXPECT_FALSE(parse_image_config("[1]", "x").ok());
}

}  // namespace
}  // namespace boxcar::images
