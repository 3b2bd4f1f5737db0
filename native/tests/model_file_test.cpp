#include <gtest/gtest.h>
#include <sys/resource.h>

#include <csignal>

#include <nlohmann/json.hpp>

#include "error.h"
#include "model_file.h"
#include "sampling.h"
#include "test_util.h"

namespace ddim {
namespace {

using nlohmann::json;
using testing::join;
using testing::read_bytes;
using testing::split;
using testing::TempDir;
using testing::write_bytes;

Model nonzero_model() {
  Model model(testing::tiny_config(), torch::kCPU, 21);
  torch::NoGradGuard no_grad;
  for (auto& p : model.net()->parameters()) p.add_(0.05);
  model.set_normalizer(torch::tensor({0.25f}), torch::tensor({0.5f}));
  return model;
}

SampleRequest small_request() {
  SampleRequest request;
  request.count = 2;
  request.steps = 3;
  request.seed = 77;
  return request;
}

Status load_status(const std::string& path, std::string* message = nullptr) {
  try {
    load_model(path, torch::kCPU);
  } catch (const Error& e) {
    if (message) *message = e.what();
    return e.status();
  }
  return Status::Ok;
}

class ModelFile : public ::testing::Test {
 protected:
  void SetUp() override {
    path = dir.file("model.safetensors");
    auto model = nonzero_model();
    save_model(model, path);
    bytes = read_bytes(path);
  }
  // Writes a modified copy and returns its path.
  std::string variant(const std::vector<uint8_t>& content) {
    const auto out = dir.file("variant.safetensors");
    write_bytes(out, content);
    return out;
  }
  TempDir dir;
  std::string path;
  std::vector<uint8_t> bytes;
};

TEST_F(ModelFile, SaveOpenGivesTheSameSamples) {
  auto model = nonzero_model();
  const auto before = sample(model, small_request());
  auto loaded = load_model(path, torch::kCPU);
  EXPECT_EQ(loaded->config().to_json(), model.config().to_json());
  EXPECT_TRUE(torch::equal(loaded->mean(), model.mean()));
  EXPECT_TRUE(torch::equal(sample(*loaded, small_request()), before));
}

TEST_F(ModelFile, IsPlainSafetensorsWithMetadata) {
  const auto parts = split(bytes);
  const auto& metadata = parts.header["__metadata__"];
  EXPECT_EQ(metadata["format"], "ddim4j");
  EXPECT_EQ(metadata["format_version"], "1");
  EXPECT_EQ(json::parse(metadata["config"].get<std::string>())["image_size"], 16);
  EXPECT_EQ(parts.header["net.input_conv.weight"]["dtype"], "F32");
  EXPECT_EQ(parts.header["net.input_conv.weight"]["shape"], json::array({8, 1, 1, 1}));
  EXPECT_EQ(parts.header["normalizer.std"]["shape"], json::array({1}));
  EXPECT_FALSE(parts.header.contains("ema.input_conv.weight"));
  EXPECT_EQ((bytes.size() - parts.data.size()) % 8, 0u);  // data stays 8-byte aligned
}

TEST_F(ModelFile, EmaWeightsRoundTrip) {
  auto model = nonzero_model();
  model.ema() = model.make_network();
  {
    torch::NoGradGuard no_grad;  // EMA weights of their own, nonzero and unlike the raw ones (+0.05)
    for (auto& p : model.ema().value()->parameters()) p.sub_(0.03);
  }
  save_model(model, path);
  auto loaded = load_model(path, torch::kCPU);
  ASSERT_TRUE(loaded->ema().has_value());
  const auto raw = model.net()->named_parameters();
  const auto ema = model.ema().value()->named_parameters();
  const auto loaded_raw = loaded->net()->named_parameters();
  const auto loaded_ema = loaded->ema().value()->named_parameters();
  ASSERT_EQ(loaded_ema.size(), ema.size());
  for (const auto& item : ema) {
    EXPECT_TRUE(torch::equal(loaded_ema[item.key()], item.value())) << item.key();  // each set in its own place
    EXPECT_TRUE(torch::equal(loaded_raw[item.key()], raw[item.key()])) << item.key();
    EXPECT_FALSE(torch::equal(loaded_ema[item.key()], loaded_raw[item.key()])) << item.key();
  }
}

TEST_F(ModelFile, TruncatedFilesAreFormatErrors) {
  for (size_t keep : {size_t{0}, size_t{5}, size_t{100}, bytes.size() / 2, bytes.size() - 1}) {
    std::string message;
    EXPECT_EQ(load_status(variant({bytes.begin(), bytes.begin() + keep}), &message), Status::Format) << keep;
    EXPECT_FALSE(message.empty());
  }
}

TEST_F(ModelFile, FlippedWeightByteFailsTheChecksum) {
  auto corrupt = bytes;
  corrupt[corrupt.size() - 7] ^= 0x40;
  std::string message;
  EXPECT_EQ(load_status(variant(corrupt), &message), Status::Format);
  EXPECT_NE(message.find("checksum"), std::string::npos) << message;
}

// The file's tensors laid out again in reverse name order, at new offsets, metadata untouched (as
// Python's safetensors writer re-saves a file: its own order, the same metadata).
std::vector<uint8_t> reordered(const std::vector<uint8_t>& bytes) {
  auto parts = split(bytes);
  std::vector<std::string> names;
  for (const auto& item : parts.header.items())
    if (item.key() != "__metadata__") names.push_back(item.key());
  std::sort(names.rbegin(), names.rend());
  std::vector<uint8_t> data;
  for (const auto& name : names) {
    auto& offsets = parts.header[name]["data_offsets"];
    const uint64_t begin = offsets[0], end = offsets[1];
    offsets = {data.size(), data.size() + (end - begin)};
    data.insert(data.end(), parts.data.begin() + static_cast<std::ptrdiff_t>(begin),
                parts.data.begin() + static_cast<std::ptrdiff_t>(end));
  }
  EXPECT_EQ(data.size(), parts.data.size());
  EXPECT_NE(data, parts.data);  // the order did change
  return join(parts.header.dump(), data);
}

TEST_F(ModelFile, StoresBothChecksums) {
  const auto parts = split(bytes);
  const auto& metadata = parts.header["__metadata__"];
  EXPECT_EQ(metadata["tensors_crc32"].get<std::string>().size(), 8u);
  EXPECT_EQ(metadata["data_crc32"].get<std::string>().size(), 8u);  // for builds before tensors_crc32
}

TEST_F(ModelFile, TensorsInAnotherOrderLoadAndSampleTheSame) {
  auto model = nonzero_model();
  auto loaded = load_model(variant(reordered(bytes)), torch::kCPU);
  EXPECT_TRUE(torch::equal(sample(*loaded, small_request()), sample(model, small_request())));
}

TEST_F(ModelFile, CorruptByteInReorderedTensorsFailsTheChecksum) {
  auto corrupt = reordered(bytes);
  corrupt[corrupt.size() - 7] ^= 0x40;
  std::string message;
  EXPECT_EQ(load_status(variant(corrupt), &message), Status::Format);
  EXPECT_NE(message.find("checksum"), std::string::npos) << message;
}

TEST_F(ModelFile, SwappedTensorsFailTheChecksum) {
  // Two tensors of one shape trading places keep the layout valid and the data section's bytes (and
  // so data_crc32) as they were: only a checksum that covers names sees it.
  auto parts = split(bytes);
  ASSERT_EQ(parts.header["net.input_conv.bias"]["shape"], parts.header["net.down.0.blocks.0.shortcut.bias"]["shape"]);
  std::swap(parts.header["net.input_conv.bias"]["data_offsets"],
            parts.header["net.down.0.blocks.0.shortcut.bias"]["data_offsets"]);
  std::string message;
  EXPECT_EQ(load_status(variant(join(parts)), &message), Status::Format);
  EXPECT_NE(message.find("checksum"), std::string::npos) << message;
}

TEST_F(ModelFile, FilesWithDataCrc32AloneStillLoadAndAreChecked) {
  // Files written before tensors_crc32 (the shipped unconditional model until its re-save) carry data_crc32 alone.
  auto parts = split(bytes);
  parts.header["__metadata__"].erase("tensors_crc32");
  const auto old_style = join(parts);
  auto model = nonzero_model();
  EXPECT_TRUE(torch::equal(sample(*load_model(variant(old_style), torch::kCPU), small_request()),
                           sample(model, small_request())));
  auto corrupt = old_style;
  corrupt[corrupt.size() - 7] ^= 0x40;
  std::string message;
  EXPECT_EQ(load_status(variant(corrupt), &message), Status::Format);
  EXPECT_NE(message.find("checksum"), std::string::npos) << message;
  // Reordered without tensors_crc32: data_crc32 is stale, and the file is refused as before.
  EXPECT_EQ(load_status(variant(reordered(old_style)), &message), Status::Format);
  EXPECT_NE(message.find("checksum"), std::string::npos) << message;
}

// Every model the project ships carries the order-free checksum, so another safetensors writer that keeps the
// metadata and lays the tensors out in its own order leaves a file that still loads, with the same weights.
TEST_F(ModelFile, ShippedModelsCarryTheOrderFreeChecksumAndLoadReordered) {
  for (const char* name : {"fashion-mnist-32.safetensors", "fashion-mnist-32-classes.safetensors"}) {
    const auto shipped = read_bytes(std::string(DDIM_SOURCE_DIR) + "/models/" + name);
    const auto metadata = split(shipped).header["__metadata__"];
    ASSERT_TRUE(metadata.contains("tensors_crc32")) << name;
    const auto original = load_model(variant(shipped), torch::kCPU);
    const auto moved = load_model(variant(reordered(shipped)), torch::kCPU);
    const auto expected = original->net()->named_parameters();
    for (const auto& item : moved->net()->named_parameters())
      EXPECT_TRUE(torch::equal(item.value(), expected[item.key()])) << name << " " << item.key();
  }
  // The unconditional model was re-saved only to add tensors_crc32: its data section is the one first shipped.
  const auto unconditional = read_bytes(std::string(DDIM_SOURCE_DIR) + "/models/fashion-mnist-32.safetensors");
  EXPECT_EQ(split(unconditional).header["__metadata__"]["data_crc32"], "94318786");
}

TEST_F(ModelFile, GarbageHeaderIsAFormatError) {
  auto corrupt = bytes;
  corrupt[8] = '#';
  EXPECT_EQ(load_status(variant(corrupt)), Status::Format);
  std::vector<uint8_t> huge_length = bytes;
  huge_length[7] = 0x7f;
  EXPECT_EQ(load_status(variant(huge_length)), Status::Format);
}

TEST_F(ModelFile, UnknownVersionIsNamed) {
  auto parts = split(bytes);
  parts.header["__metadata__"]["format_version"] = "2";
  std::string message;
  EXPECT_EQ(load_status(variant(join(parts)), &message), Status::Format);
  EXPECT_NE(message.find("version"), std::string::npos) << message;
}

TEST_F(ModelFile, ConfigThatDoesNotMatchTheTensorsIsRejected) {
  auto parts = split(bytes);
  auto config = json::parse(parts.header["__metadata__"]["config"].get<std::string>());
  config["channels"] = 3;
  parts.header["__metadata__"]["config"] = config.dump();
  std::string message;
  EXPECT_EQ(load_status(variant(join(parts)), &message), Status::Format);
  EXPECT_NE(message.find("shape"), std::string::npos) << message;

  parts = split(bytes);
  parts.header["__metadata__"]["config"] = "{\"channels\": 1}";
  EXPECT_EQ(load_status(variant(join(parts))), Status::Format);
}

TEST_F(ModelFile, MissingAndWronglyTypedTensorsAreRejected) {
  auto parts = split(bytes);
  parts.header["net.input_conv.weight"]["dtype"] = "I64";
  EXPECT_EQ(load_status(variant(join(parts))), Status::Format);

  parts = split(bytes);
  parts.header.erase("normalizer.std");
  parts.header["__metadata__"].erase("data_crc32");
  parts.header["__metadata__"].erase("tensors_crc32");
  std::string message;
  EXPECT_EQ(load_status(variant(join(parts)), &message), Status::Format);  // its bytes are now a gap

  parts = split(bytes);
  parts.header["net.input_conv.weight"]["dtype"] = "U8";
  EXPECT_EQ(load_status(variant(join(parts))), Status::Format);
}

TEST_F(ModelFile, NonFiniteWeightsAreRejected) {
  auto model = nonzero_model();
  {
    torch::NoGradGuard no_grad;
    model.net()->named_parameters()["input_conv.bias"].fill_(std::nanf(""));
  }
  save_model(model, path);
  std::string message;
  EXPECT_EQ(load_status(path, &message), Status::Format);
  EXPECT_NE(message.find("NaN"), std::string::npos) << message;
}

TEST_F(ModelFile, MissingFileIsAnIoError) { EXPECT_EQ(load_status(dir.file("absent.safetensors")), Status::Io); }

TEST_F(ModelFile, FailedSaveLeavesTheOldFileAlone) {
  auto model = nonzero_model();
  EXPECT_THROW(save_model(model, dir.file("no/such/dir/model.safetensors")), Error);
  // A directory in the way of the rename: the save fails, the temporary file is gone.
  const auto blocked = dir.file("blocked");
  std::filesystem::create_directories(blocked + "/inside");
  EXPECT_THROW(save_model(model, blocked), Error);
  for (const auto& entry : std::filesystem::directory_iterator(std::filesystem::path(path).parent_path()))
    EXPECT_EQ(entry.path().filename().string().find(".tmp-"), std::string::npos) << entry.path();
  EXPECT_EQ(read_bytes(path), bytes);
}

// The save that matters: over the existing good file, failing halfway through the write (the file-size limit
// stops it at half the file, as a full disk would). The old bytes stay, and no temporary file is left. Run in a
// fresh process (a death test re-runs this binary), whose own fixture wrote its own good file.
TEST_F(ModelFile, SaveFailingMidWriteOverTheFileKeepsItsOldBytes) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  const auto save_under_a_limit = [&] {
    std::signal(SIGXFSZ, SIG_IGN);  // a write past the limit then fails with EFBIG instead of killing the process
    const rlim_t half = bytes.size() / 2;
    const rlimit limit{half, half};
    if (::setrlimit(RLIMIT_FSIZE, &limit) != 0) std::_Exit(10);
    Model other(testing::tiny_config(), torch::kCPU, 99);
    try {
      save_model(other, path);
      std::_Exit(11);  // the save should have failed
    } catch (const Error& e) {
      if (e.status() != Status::Io) std::_Exit(12);
    }
    if (read_bytes(path) != bytes) std::_Exit(13);
    for (const auto& entry : std::filesystem::directory_iterator(std::filesystem::path(path).parent_path()))
      if (entry.path().filename().string().find(".tmp-") != std::string::npos) std::_Exit(14);
    std::_Exit(0);
  };
  EXPECT_EXIT(save_under_a_limit(), ::testing::ExitedWithCode(0), "");
}

}  // namespace
}  // namespace ddim
