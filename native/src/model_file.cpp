#include "model_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <vector>

#include <nlohmann/json.hpp>

#include "error.h"
#include "version.h"

namespace ddim {
namespace {

using nlohmann::json;

// A generous bound on the JSON header, so a corrupt length can't make us allocate gigabytes.
constexpr uint64_t kMaxHeaderBytes = 64ull << 20;

struct DtypeInfo {
  const char* name;
  torch::ScalarType type;
  size_t size;
};
const DtypeInfo kDtypes[] = {{"F32", torch::kFloat, 4},
                             {"F16", torch::kHalf, 2},
                             {"BF16", torch::kBFloat16, 2},
                             {"I64", torch::kLong, 8}};

const DtypeInfo* dtype_by_name(const std::string& name) {
  for (const auto& dtype : kDtypes)
    if (name == dtype.name) return &dtype;
  return nullptr;
}

const DtypeInfo& dtype_of(torch::ScalarType type) {
  for (const auto& dtype : kDtypes)
    if (type == dtype.type) return dtype;
  fail(DDIM_ERR_INTERNAL, "unsupported tensor type in model");
}

std::string shape_string(torch::IntArrayRef shape) {
  std::ostringstream out;
  out << shape;
  return out.str();
}

// Every tensor the file holds for `model`, by name (on the model's device). With
// `ema_as_weights`, the EMA network (when there is one) is stored as the weights.
std::map<std::string, torch::Tensor> state_of(Model& model, bool ema_as_weights = false) {
  std::map<std::string, torch::Tensor> state;
  const auto add = [&state](const std::string& prefix, UNet& network) {
    for (const auto& item : network->named_parameters()) state[prefix + item.key()] = item.value();
    for (const auto& item : network->named_buffers()) state[prefix + item.key()] = item.value();
  };
  if (ema_as_weights) {
    add("net.", model.network(true));
  } else {
    add("net.", model.net());
    if (model.ema()) add("ema.", *model.ema());
  }
  state["normalizer.mean"] = model.mean();
  state["normalizer.std"] = model.std();
  return state;
}

std::string crc32_hex(const uint8_t* data, size_t size) {
  uLong crc = crc32(0L, Z_NULL, 0);
  // zlib takes uInt lengths: feed it in chunks.
  for (size_t offset = 0; offset < size;) {
    const uInt chunk = static_cast<uInt>(std::min<size_t>(size - offset, 1u << 30));
    crc = crc32(crc, data + offset, chunk);
    offset += chunk;
  }
  char text[16];
  std::snprintf(text, sizeof text, "%08lx", static_cast<unsigned long>(crc));
  return text;
}

void write_all(int fd, const void* data, size_t size, const std::string& path) {
  const auto* bytes = static_cast<const uint8_t*>(data);
  while (size > 0) {
    const ssize_t written = ::write(fd, bytes, size);
    if (written < 0 && errno == EINTR) continue;
    if (written <= 0) fail(DDIM_ERR_IO, "cannot write " + path + ": " + std::strerror(errno));
    bytes += written;
    size -= static_cast<size_t>(written);
  }
}

// Writes `bytes` to `path` through a temporary file in the same directory and a rename, so that
// readers see either the old file or the complete new one.
void write_file_atomically(const std::string& path, const std::vector<uint8_t>& bytes) {
  namespace fs = std::filesystem;
  const fs::path target(path);
  const fs::path directory = target.has_parent_path() ? target.parent_path() : fs::path(".");
  std::string temp = (directory / ("." + target.filename().string() + ".tmp-XXXXXX")).string();
  const int fd = ::mkstemp(temp.data());
  if (fd < 0) fail(DDIM_ERR_IO, "cannot create a temporary file in " + directory.string() + ": " + std::strerror(errno));
  try {
    write_all(fd, bytes.data(), bytes.size(), temp);
    if (::fsync(fd) != 0) fail(DDIM_ERR_IO, "cannot flush " + temp + ": " + std::strerror(errno));
    if (::close(fd) != 0) fail(DDIM_ERR_IO, "cannot close " + temp + ": " + std::strerror(errno));
  } catch (...) {
    ::close(fd);
    ::unlink(temp.c_str());
    throw;
  }
  ::chmod(temp.c_str(), 0644);
  if (::rename(temp.c_str(), path.c_str()) != 0) {
    const std::string reason = std::strerror(errno);
    ::unlink(temp.c_str());
    fail(DDIM_ERR_IO, "cannot rename " + temp + " to " + path + ": " + reason);
  }
  // Persist the rename itself.
  const int dir_fd = ::open(directory.c_str(), O_RDONLY | O_DIRECTORY);
  if (dir_fd >= 0) {
    ::fsync(dir_fd);
    ::close(dir_fd);
  }
}

std::vector<uint8_t> read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail(DDIM_ERR_IO, "cannot open model file " + path + ": " + std::strerror(errno));
  std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (in.bad()) fail(DDIM_ERR_IO, "cannot read model file " + path);
  return bytes;
}

struct StoredTensor {
  const DtypeInfo* dtype;
  std::vector<int64_t> shape;
  const uint8_t* data;
};

void bad_file(const std::string& path, const std::string& message) {
  fail(DDIM_ERR_FORMAT, "model file " + path + ": " + message);
}

// Parses and checks the safetensors layout: every tensor's bytes lie in the data section, match its
// dtype and shape, and together cover the section exactly.
std::map<std::string, StoredTensor> parse_tensors(const std::string& path, const json& header, const uint8_t* data,
                                                  uint64_t data_size) {
  std::map<std::string, StoredTensor> tensors;
  std::vector<std::pair<uint64_t, uint64_t>> ranges;
  for (const auto& item : header.items()) {
    if (item.key() == "__metadata__") continue;
    const auto& entry = item.value();
    if (!entry.is_object() || !entry.contains("dtype") || !entry.contains("shape") || !entry.contains("data_offsets"))
      bad_file(path, "tensor entry '" + item.key() + "' is malformed");
    const auto* dtype = entry["dtype"].is_string() ? dtype_by_name(entry["dtype"].get<std::string>()) : nullptr;
    if (dtype == nullptr) bad_file(path, "tensor '" + item.key() + "' has an unsupported dtype " + entry["dtype"].dump());
    const auto& shape_json = entry["shape"];
    const auto& offsets = entry["data_offsets"];
    if (!shape_json.is_array() || !offsets.is_array() || offsets.size() != 2 || !offsets[0].is_number_unsigned() ||
        !offsets[1].is_number_unsigned())
      bad_file(path, "tensor '" + item.key() + "' has a malformed shape or data_offsets");
    StoredTensor tensor{dtype, {}, nullptr};
    uint64_t elements = 1;
    for (const auto& dim : shape_json) {
      if (!dim.is_number_unsigned() || dim.get<uint64_t>() > (1ull << 40))
        bad_file(path, "tensor '" + item.key() + "' has a malformed shape");
      tensor.shape.push_back(dim.get<int64_t>());
      elements *= dim.get<uint64_t>();
      if (elements > (1ull << 40)) bad_file(path, "tensor '" + item.key() + "' is implausibly large");
    }
    const uint64_t begin = offsets[0].get<uint64_t>();
    const uint64_t end = offsets[1].get<uint64_t>();
    if (begin > end || end > data_size)
      bad_file(path, "tensor '" + item.key() + "' lies outside the file (truncated?)");
    if (end - begin != elements * dtype->size)
      bad_file(path, "tensor '" + item.key() + "' has " + std::to_string(end - begin) + " bytes, its shape needs " +
                         std::to_string(elements * dtype->size));
    tensor.data = data + begin;
    tensors.emplace(item.key(), tensor);
    ranges.emplace_back(begin, end);
  }
  std::sort(ranges.begin(), ranges.end());
  uint64_t expected = 0;
  for (const auto& range : ranges) {
    if (range.first != expected) bad_file(path, "tensor data overlaps or leaves gaps");
    expected = range.second;
  }
  if (expected != data_size) bad_file(path, "data section has " + std::to_string(data_size - expected) + " stray bytes");
  return tensors;
}

// Copies a stored tensor into `destination` (same shape), converting to its dtype.
void copy_into(const std::string& path, const std::string& name, const StoredTensor& stored, torch::Tensor destination) {
  if (destination.sizes() != torch::IntArrayRef(stored.shape))
    bad_file(path, "tensor '" + name + "' has shape " + shape_string(stored.shape) + ", the config needs " +
                       shape_string(destination.sizes()));
  const bool integral = destination.scalar_type() == torch::kLong;
  if (integral != (stored.dtype->type == torch::kLong))
    bad_file(path, "tensor '" + name + "' has dtype " + stored.dtype->name + ", expected " + dtype_of(destination.scalar_type()).name);
  auto staging = torch::empty(stored.shape, torch::TensorOptions().dtype(stored.dtype->type));
  std::memcpy(staging.data_ptr(), stored.data, staging.numel() * stored.dtype->size);
  if (!integral && !torch::isfinite(staging).all().item<bool>())
    bad_file(path, "tensor '" + name + "' contains NaN or infinite values");
  torch::NoGradGuard no_grad;
  destination.copy_(staging);
}

}  // namespace

void save_model(Model& model, const std::string& path, const SaveOptions& options) {
  auto state = state_of(model, options.ema_as_weights);
  if (options.trainer != nullptr)
    for (const auto& [name, tensor] : options.trainer->optimizer_state()) state["optim." + name] = tensor;
  json header = json::object();
  uint64_t offset = 0;
  std::vector<torch::Tensor> payload;
  for (const auto& [name, tensor] : state) {
    auto cpu = tensor.detach().to(torch::kCPU).contiguous();
    // The normaliser stays exact; weights may be halved for small exported files.
    if (options.half_precision && cpu.scalar_type() == torch::kFloat && name.rfind("normalizer.", 0) != 0)
      cpu = cpu.to(torch::kHalf);
    const auto& dtype = dtype_of(cpu.scalar_type());
    const uint64_t bytes = static_cast<uint64_t>(cpu.numel()) * dtype.size;
    header[name] = {{"dtype", dtype.name}, {"shape", cpu.sizes().vec()}, {"data_offsets", {offset, offset + bytes}}};
    offset += bytes;
    payload.push_back(cpu);
  }
  std::vector<uint8_t> data(offset);
  size_t position = 0;
  for (const auto& tensor : payload) {
    const size_t bytes = tensor.numel() * tensor.element_size();
    std::memcpy(data.data() + position, tensor.data_ptr(), bytes);
    position += bytes;
  }
  header["__metadata__"] = {{"format", "ddim4j"},
                            {"format_version", std::to_string(kModelFormatVersion)},
                            {"config", model.config().to_json().dump()},
                            {"data_crc32", crc32_hex(data.data(), data.size())},
                            {"library_version", kLibraryVersion}};
  if (options.trainer != nullptr) {
    header["__metadata__"]["training"] =
        json{{"config", options.trainer->config().to_json()}, {"steps", options.trainer->steps()}}.dump();
    header["__metadata__"]["user_state"] = options.user_state;
  }
  std::string header_text = header.dump();
  header_text.append((8 - header_text.size() % 8) % 8, ' ');  // keeps the data 8-byte aligned

  std::vector<uint8_t> file(8 + header_text.size() + data.size());
  const uint64_t header_size = header_text.size();
  for (int i = 0; i < 8; ++i) file[i] = static_cast<uint8_t>(header_size >> (8 * i));  // little-endian
  std::memcpy(file.data() + 8, header_text.data(), header_text.size());
  std::memcpy(file.data() + 8 + header_text.size(), data.data(), data.size());
  write_file_atomically(path, file);
}

std::unique_ptr<Model> load_model(const std::string& path, torch::Device device,
                                  std::optional<CheckpointState>* checkpoint) {
  const auto bytes = read_file(path);
  if (bytes.size() < 8) bad_file(path, "too short to be a safetensors file (" + std::to_string(bytes.size()) + " bytes)");
  uint64_t header_size = 0;
  for (int i = 0; i < 8; ++i) header_size |= static_cast<uint64_t>(bytes[i]) << (8 * i);
  if (header_size > kMaxHeaderBytes || header_size > bytes.size() - 8)
    bad_file(path, "header length " + std::to_string(header_size) + " exceeds the file (truncated or not safetensors)");

  json header;
  try {
    header = json::parse(bytes.begin() + 8, bytes.begin() + 8 + static_cast<ptrdiff_t>(header_size));
  } catch (const json::exception& e) {
    bad_file(path, std::string("header is not valid JSON (") + e.what() + ")");
  }
  if (!header.is_object() || !header.contains("__metadata__") || !header["__metadata__"].is_object())
    bad_file(path, "no __metadata__: not a ddim4j model file");
  const auto& metadata = header["__metadata__"];
  const auto text = [&](const char* key) -> std::string {
    if (!metadata.contains(key) || !metadata[key].is_string()) bad_file(path, std::string("metadata lacks '") + key + "'");
    return metadata[key].get<std::string>();
  };
  if (text("format") != "ddim4j") bad_file(path, "metadata format is '" + text("format") + "', not 'ddim4j'");
  if (text("format_version") != std::to_string(kModelFormatVersion))
    bad_file(path, "unsupported format version '" + text("format_version") + "' (this build reads version " +
                       std::to_string(kModelFormatVersion) + ")");

  const uint8_t* data = bytes.data() + 8 + header_size;
  const uint64_t data_size = bytes.size() - 8 - header_size;
  if (metadata.contains("data_crc32") && text("data_crc32") != crc32_hex(data, data_size))
    bad_file(path, "checksum mismatch: the weights are corrupt");

  json config_json;
  try {
    config_json = json::parse(text("config"));
  } catch (const json::exception& e) {
    bad_file(path, std::string("config is not valid JSON (") + e.what() + ")");
  }
  const auto config = ModelConfig::from_json(config_json);
  auto tensors = parse_tensors(path, header, data, data_size);

  auto model = std::make_unique<Model>(config, device, 0);
  const bool has_ema = std::any_of(tensors.begin(), tensors.end(), [](const auto& item) { return item.first.rfind("ema.", 0) == 0; });
  if (has_ema) model->ema() = model->make_network();
  auto state = state_of(*model);
  for (auto& [name, destination] : state) {
    const auto found = tensors.find(name);
    if (found == tensors.end()) bad_file(path, "missing tensor '" + name + "'");
    copy_into(path, name, found->second, destination);
    tensors.erase(found);
  }
  model->set_normalizer(state["normalizer.mean"], state["normalizer.std"]);

  if (metadata.contains("training")) {
    CheckpointState training;
    try {
      const auto parsed = json::parse(text("training"));
      training.config = TrainConfig::from_json(parsed.at("config"));
      training.steps = parsed.at("steps").get<int64_t>();
    } catch (const json::exception& e) {
      bad_file(path, std::string("training state is malformed (") + e.what() + ")");
    }
    training.user_state = metadata.contains("user_state") ? text("user_state") : "";
    for (auto it = tensors.begin(); it != tensors.end();) {
      if (it->first.rfind("optim.", 0) != 0) {
        ++it;
        continue;
      }
      auto tensor = torch::empty(it->second.shape, torch::TensorOptions().dtype(torch::kFloat));
      copy_into(path, it->first, it->second, tensor);
      training.optimizer[it->first.substr(6)] = tensor;
      it = tensors.erase(it);
    }
    if (checkpoint != nullptr) *checkpoint = std::move(training);
  }
  if (!tensors.empty()) bad_file(path, "unexpected tensor '" + tensors.begin()->first + "' (does the config match?)");
  return model;
}

}  // namespace ddim
