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
#include <map>
#include <sstream>
#include <vector>

#include <nlohmann/json.hpp>

#include "error.h"
#include "json_fields.h"
#include "library_limits.h"
#include "unet.h"
#include "version.h"

namespace ddim {
namespace {

using nlohmann::json;

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
  fail(Status::Internal, "unsupported tensor type in model");
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

// CRC-32 (zlib's) fed in pieces, printed as 8 lower-case hex digits.
class Crc32 {
 public:
  Crc32& add(const void* data, size_t size) {
    const auto* bytes = static_cast<const uint8_t*>(data);
    // zlib takes uInt lengths: feed it in chunks.
    for (size_t offset = 0; offset < size;) {
      const uInt chunk = static_cast<uInt>(std::min<size_t>(size - offset, 1u << 30));
      crc_ = crc32(crc_, bytes + offset, chunk);
      offset += chunk;
    }
    return *this;
  }
  Crc32& add_u64(uint64_t value) {
    uint8_t bytes[8];
    for (int i = 0; i < 8; ++i) bytes[i] = static_cast<uint8_t>(value >> (8 * i));  // little-endian
    return add(bytes, sizeof bytes);
  }
  Crc32& add_text(const std::string& text) { return add_u64(text.size()).add(text.data(), text.size()); }
  std::string hex() const {
    char text[16];
    std::snprintf(text, sizeof text, "%08lx", static_cast<unsigned long>(crc_));
    return text;
  }

 private:
  uLong crc_ = crc32(0L, Z_NULL, 0);
};

std::string crc32_hex(const uint8_t* data, size_t size) { return Crc32().add(data, size).hex(); }

void write_all(int fd, const void* data, size_t size, const std::string& path) {
  const auto* bytes = static_cast<const uint8_t*>(data);
  while (size > 0) {
    const ssize_t written = ::write(fd, bytes, size);
    if (written < 0 && errno == EINTR) continue;
    if (written <= 0) fail(Status::Io, "cannot write " + path + ": " + std::strerror(errno));
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
  if (fd < 0) fail(Status::Io, "cannot create a temporary file in " + directory.string() + ": " + std::strerror(errno));
  try {
    write_all(fd, bytes.data(), bytes.size(), temp);
    if (::fsync(fd) != 0) fail(Status::Io, "cannot flush " + temp + ": " + std::strerror(errno));
    if (::close(fd) != 0) fail(Status::Io, "cannot close " + temp + ": " + std::strerror(errno));
  } catch (...) {
    ::close(fd);
    ::unlink(temp.c_str());
    throw;
  }
  ::chmod(temp.c_str(), 0644);
  if (::rename(temp.c_str(), path.c_str()) != 0) {
    const std::string reason = std::strerror(errno);
    ::unlink(temp.c_str());
    fail(Status::Io, "cannot rename " + temp + " to " + path + ": " + reason);
  }
  // Persist the rename itself.
  const int dir_fd = ::open(directory.c_str(), O_RDONLY | O_DIRECTORY);
  if (dir_fd >= 0) {
    ::fsync(dir_fd);
    ::close(dir_fd);
  }
}

[[noreturn]] void bad_file(const std::string& path, const std::string& message) {
  fail(Status::Format, "model file " + path + ": " + message);
}

// A model file opened for reading: a regular file, so that a directory, a FIFO or a device such as
// /dev/zero is refused up front instead of blocking or being read without end.
class InputFile {
 public:
  explicit InputFile(const std::string& path) : path_(path) {
    // O_NONBLOCK: opening a FIFO must not wait for a writer (regular files ignore the flag).
    fd_ = ::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd_ < 0) fail(Status::Io, "cannot open model file " + path + ": " + std::strerror(errno));
    struct stat info {};
    const bool stated = ::fstat(fd_, &info) == 0;
    const std::string reason = !stated ? std::strerror(errno)
                               : S_ISDIR(info.st_mode) ? "it is a directory"
                               : !S_ISREG(info.st_mode) ? "it is not a regular file (a FIFO, socket or device?)"
                                                        : "";
    if (!reason.empty()) {
      ::close(fd_);
      fail(Status::Io, "cannot read model file " + path + ": " + reason);
    }
    size_ = static_cast<uint64_t>(info.st_size);
  }
  ~InputFile() { ::close(fd_); }
  InputFile(const InputFile&) = delete;
  InputFile& operator=(const InputFile&) = delete;

  uint64_t size() const { return size_; }

  // Reads exactly `size` bytes at `offset`; a file that shrank meanwhile is a FORMAT error.
  void read(uint64_t offset, void* out, size_t size) const {
    auto* bytes = static_cast<uint8_t*>(out);
    while (size > 0) {
      const ssize_t got = ::pread(fd_, bytes, std::min<size_t>(size, 1u << 30), static_cast<off_t>(offset));
      if (got < 0 && errno == EINTR) continue;
      if (got < 0) fail(Status::Io, "cannot read model file " + path_ + ": " + std::strerror(errno));
      if (got == 0) bad_file(path_, "ends early (truncated while being read?)");
      bytes += got;
      offset += static_cast<uint64_t>(got);
      size -= static_cast<size_t>(got);
    }
  }

 private:
  std::string path_;
  int fd_ = -1;
  uint64_t size_ = 0;
};

// Parses JSON from a file with its nesting bounded: nlohmann's parser is iterative, but printing
// or walking a value is recursive, and a dtype nested 10,000 arrays deep overflowed the stack.
json parse_bounded(const std::string& path, const std::string& what, const char* begin, const char* end) {
  struct TooDeep {};
  const json::parser_callback_t bound_depth = [](int depth, json::parse_event_t, json&) {
    if (depth > kMaxJsonDepth) throw TooDeep{};
    return true;
  };
  try {
    return json::parse(begin, end, bound_depth);
  } catch (const TooDeep&) {
    bad_file(path, what + " nests deeper than " + std::to_string(kMaxJsonDepth) + " levels");
  } catch (const json::exception& e) {
    bad_file(path, what + " is not valid JSON (" + e.what() + ")");
  }
}

json parse_bounded(const std::string& path, const std::string& what, const std::string& text) {
  return parse_bounded(path, what, text.data(), text.data() + text.size());
}

// Where a tensor's bytes lie in the data section, and what they hold.
struct StoredTensor {
  const DtypeInfo* dtype;
  std::vector<int64_t> shape;
  uint64_t begin, end;
};

// The metadata's tensors_crc32: CRC-32 over the tensors in name order (bytewise, as std::map and
// Python's sorted() order them), each as its name, its dtype (both prefixed by their length), its
// rank and dimensions, then its bytes; every number a little-endian uint64. data_crc32 covers the
// data section in file order, so a writer that lays the tensors out in another order (Python's
// safetensors does) breaks it; this one holds for any order and offsets, and covers each tensor's
// name, dtype and shape too.
std::string tensors_crc32_hex(const std::map<std::string, StoredTensor>& tensors, const uint8_t* data) {
  Crc32 crc;
  for (const auto& [name, tensor] : tensors) {
    crc.add_text(name).add_text(tensor.dtype->name).add_u64(tensor.shape.size());
    for (const int64_t dim : tensor.shape) crc.add_u64(static_cast<uint64_t>(dim));
    crc.add(data + tensor.begin, tensor.end - tensor.begin);
  }
  return crc.hex();
}

// Parses and checks the safetensors layout: every tensor's bytes lie in the data section, match its
// dtype and shape, and together cover the section exactly. Reads no data.
std::map<std::string, StoredTensor> parse_tensors(const std::string& path, const json& header, uint64_t data_size) {
  std::map<std::string, StoredTensor> tensors;
  std::vector<std::pair<uint64_t, uint64_t>> ranges;
  for (const auto& item : header.items()) {
    if (item.key() == "__metadata__") continue;
    const auto name = quoted(item.key());
    const auto& entry = item.value();
    if (!entry.is_object() || !entry.contains("dtype") || !entry.contains("shape") || !entry.contains("data_offsets"))
      bad_file(path, "tensor entry " + name + " is malformed");
    // Never print a value from the file: only its type (a nested one once crashed dump()).
    const auto& dtype_json = entry["dtype"];
    const auto* dtype = dtype_json.is_string() ? dtype_by_name(dtype_json.get<std::string>()) : nullptr;
    if (dtype == nullptr)
      bad_file(path, "tensor " + name + " has an unsupported dtype" +
                         (dtype_json.is_string() ? " " + quoted(dtype_json.get<std::string>()) : std::string(" (not a string)")));
    const auto& shape_json = entry["shape"];
    const auto& offsets = entry["data_offsets"];
    if (!shape_json.is_array() || shape_json.size() > 8 || !offsets.is_array() || offsets.size() != 2 ||
        !offsets[0].is_number_unsigned() || !offsets[1].is_number_unsigned())
      bad_file(path, "tensor " + name + " has a malformed shape or data_offsets");
    StoredTensor tensor{dtype, {}, offsets[0].get<uint64_t>(), offsets[1].get<uint64_t>()};
    for (const auto& dim : shape_json) {
      if (!dim.is_number_unsigned() || dim.get<uint64_t>() > static_cast<uint64_t>(INT64_MAX))
        bad_file(path, "tensor " + name + " has a malformed shape");
      tensor.shape.push_back(dim.get<int64_t>());
    }
    const auto bytes = static_cast<uint64_t>(
        checked_product({checked_product(tensor.shape, "tensor " + name, Status::Format), static_cast<int64_t>(dtype->size)},
                        "tensor " + name, Status::Format));
    if (tensor.begin > tensor.end || tensor.end > data_size)
      bad_file(path, "tensor " + name + " lies outside the file (truncated?)");
    if (tensor.end - tensor.begin != bytes)
      bad_file(path, "tensor " + name + " has " + std::to_string(tensor.end - tensor.begin) + " bytes, its shape needs " +
                         std::to_string(bytes));
    ranges.emplace_back(tensor.begin, tensor.end);
    tensors.emplace(item.key(), std::move(tensor));
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

// Checks the file's tensors against what `config` needs, by name, shape and kind, before anything
// is read or allocated: the network's tensors ("net."), all or none of the EMA's ("ema."), the
// normaliser, and in a checkpoint all or none of AdamW's moments ("optim."). Returns whether the
// file has EMA weights.
bool check_tensors(const std::string& path, const std::map<std::string, StoredTensor>& tensors, const ModelConfig& config,
                   bool checkpoint) {
  std::map<std::string, TensorSpec> needed;
  std::map<std::string, TensorSpec> optional_groups[2];  // the EMA's, the optimizer's
  for (const auto& [name, spec] : unet_tensor_specs(config)) {
    needed["net." + name] = spec;
    optional_groups[0]["ema." + name] = spec;
    if (spec.parameter && checkpoint)
      for (const char* moment : {".exp_avg", ".exp_avg_sq"}) optional_groups[1]["optim." + name + moment] = spec;
  }
  needed["normalizer.mean"] = needed["normalizer.std"] = {{config.channels}, false};
  const auto matches = [&](const std::string& name, const TensorSpec& spec) {
    const auto found = tensors.find(name);
    if (found == tensors.end()) return false;
    const auto& stored = found->second;
    if (stored.shape != spec.shape)
      bad_file(path, "tensor " + quoted(name) + " has shape " + shape_string(stored.shape) + ", the config needs " +
                         shape_string(spec.shape) + " (does the config match?)");
    if (spec.integral != (stored.dtype->type == torch::kLong))
      bad_file(path, "tensor " + quoted(name) + " has dtype " + stored.dtype->name + ", expected " +
                         (spec.integral ? "I64" : "F32, F16 or BF16"));
    return true;
  };
  for (const auto& [name, spec] : needed)
    if (!matches(name, spec)) bad_file(path, "missing tensor " + quoted(name));
  size_t known = needed.size();
  bool has_ema = false;
  for (size_t group = 0; group < 2; ++group) {
    size_t present = 0;
    for (const auto& [name, spec] : optional_groups[group]) present += matches(name, spec) ? 1 : 0;
    if (present != 0 && present != optional_groups[group].size())
      bad_file(path, std::string(group == 0 ? "EMA weights" : "optimizer state") + " are incomplete (" +
                         std::to_string(present) + " of " + std::to_string(optional_groups[group].size()) + " tensors)");
    known += present;
    if (group == 0) has_ema = present != 0;
  }
  if (known != tensors.size())
    for (const auto& [name, stored] : tensors)
      if (!needed.count(name) && !optional_groups[0].count(name) && !optional_groups[1].count(name))
        bad_file(path, "unexpected tensor " + quoted(name) + " (does the config match?)");
  return has_ema;
}

// Copies a stored tensor (already checked against its destination's shape and kind) into
// `destination`, converting to its dtype; values must be finite, and >= 0 where `non_negative`.
void copy_into(const std::string& path, const std::string& name, const StoredTensor& stored, const uint8_t* data,
               torch::Tensor destination, bool non_negative = false) {
  auto staging = torch::empty(stored.shape, torch::TensorOptions().dtype(stored.dtype->type));
  std::memcpy(staging.data_ptr(), data + stored.begin, stored.end - stored.begin);
  if (staging.is_floating_point() && !torch::isfinite(staging).all().item<bool>())
    bad_file(path, "tensor " + quoted(name) + " contains NaN or infinite values");
  if (non_negative && (staging < 0).any().item<bool>()) bad_file(path, "tensor " + quoted(name) + " has negative values");
  torch::NoGradGuard no_grad;
  destination.copy_(staging);
}

// Whether a stored tensor must not be negative: variances and counters.
bool must_be_non_negative(const std::string& name) {
  for (const char* suffix : {".running_var", ".num_batches_tracked", ".exp_avg_sq"})
    if (name.size() >= std::strlen(suffix) && name.compare(name.size() - std::strlen(suffix), std::string::npos, suffix) == 0)
      return true;
  return false;
}

// The training state a checkpoint's metadata holds, validated: FORMAT naming the bad field.
CheckpointState parse_training(const std::string& path, const std::string& text) {
  const auto parsed = parse_bounded(path, "training state", text);
  CheckpointState training;
  try {
    training.config = TrainConfig::from_json(parsed.at("config"));
    training.steps = json_integer_field(parsed, "steps");
  } catch (const json::exception& e) {
    bad_file(path, std::string("training state is malformed (") + e.what() + ")");
  } catch (const Error& e) {
    bad_file(path, e.what());
  }
  try {
    training.config.validate();
  } catch (const Error& e) {
    bad_file(path, e.what());
  }
  if (training.steps < 0) bad_file(path, "training state has a negative step count");
  return training;
}

}  // namespace

void save_model(Model& model, const std::string& path, const SaveOptions& options) {
  auto state = state_of(model, options.ema_as_weights);
  if (options.trainer != nullptr)
    for (const auto& [name, tensor] : options.trainer->optimizer_state()) state["optim." + name] = tensor;
  json header = json::object();
  uint64_t offset = 0;
  std::vector<torch::Tensor> payload;
  std::map<std::string, StoredTensor> layout;
  for (const auto& [name, tensor] : state) {
    auto cpu = tensor.detach().to(torch::kCPU).contiguous();
    // The normaliser stays exact; weights may be halved for small exported files.
    if (options.half_precision && cpu.scalar_type() == torch::kFloat && name.rfind("normalizer.", 0) != 0)
      cpu = cpu.to(torch::kHalf);
    const auto& dtype = dtype_of(cpu.scalar_type());
    const uint64_t bytes = static_cast<uint64_t>(cpu.numel()) * dtype.size;
    header[name] = {{"dtype", dtype.name}, {"shape", cpu.sizes().vec()}, {"data_offsets", {offset, offset + bytes}}};
    layout[name] = {&dtype, cpu.sizes().vec(), offset, offset + bytes};
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
                            {"tensors_crc32", tensors_crc32_hex(layout, data.data())},
                            // for builds before tensors_crc32, which check this one
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
  // Bounded like safetensors' own reader: the length, then the header, then the layout and every
  // shape against the file size and the config; only then the data.
  const InputFile file(path);
  if (file.size() < 8) bad_file(path, "too short to be a safetensors file (" + std::to_string(file.size()) + " bytes)");
  uint8_t length[8];
  file.read(0, length, sizeof length);
  uint64_t header_size = 0;
  for (int i = 0; i < 8; ++i) header_size |= static_cast<uint64_t>(length[i]) << (8 * i);
  if (header_size > file.size() - 8)
    bad_file(path, "header length " + std::to_string(header_size) + " exceeds the file (truncated or not safetensors)");
  if (header_size > kMaxHeaderBytes)
    bad_file(path, "header length " + std::to_string(header_size) + " exceeds the limit of " +
                       std::to_string(kMaxHeaderBytes) + " bytes");
  std::string header_text(header_size, '\0');
  file.read(8, header_text.data(), header_size);
  const json header = parse_bounded(path, "header", header_text);
  if (!header.is_object() || !header.contains("__metadata__") || !header["__metadata__"].is_object())
    bad_file(path, "no __metadata__: not a ddim4j model file");
  const auto& metadata = header["__metadata__"];
  const auto text = [&](const char* key) -> std::string {
    if (!metadata.contains(key) || !metadata[key].is_string()) bad_file(path, std::string("metadata lacks '") + key + "'");
    return metadata[key].get<std::string>();
  };
  if (text("format") != "ddim4j") bad_file(path, "metadata format is " + quoted(text("format")) + ", not 'ddim4j'");
  if (text("format_version") != std::to_string(kModelFormatVersion))
    bad_file(path, "unsupported format version " + quoted(text("format_version")) + " (this build reads version " +
                       std::to_string(kModelFormatVersion) + ")");

  const auto config = ModelConfig::from_json(parse_bounded(path, "config", text("config")));
  std::optional<CheckpointState> training;
  if (metadata.contains("training")) {
    training = parse_training(path, text("training"));
    training->user_state = metadata.contains("user_state") ? text("user_state") : "";
  }
  const uint64_t data_size = file.size() - 8 - header_size;
  const auto tensors = parse_tensors(path, header, data_size);
  const bool has_ema = check_tensors(path, tensors, config, training.has_value());

  // The layout matches the config, whose size is capped: the data section is bounded too.
  std::vector<uint8_t> data(data_size);
  file.read(8 + header_size, data.data(), data_size);
  // tensors_crc32 holds whatever order the tensors are in; files from before it have data_crc32 alone.
  // A writer that reorders the tensors but copies the metadata leaves a stale data_crc32 beside a valid
  // tensors_crc32, so the latter decides when present.
  const bool intact = metadata.contains("tensors_crc32")
                          ? text("tensors_crc32") == tensors_crc32_hex(tensors, data.data())
                          : !metadata.contains("data_crc32") || text("data_crc32") == crc32_hex(data.data(), data_size);
  if (!intact) bad_file(path, "checksum mismatch: the weights are corrupt");

  auto model = std::make_unique<Model>(config, device, 0);
  if (has_ema) model->ema() = model->make_network();
  auto state = state_of(*model);
  for (auto& [name, destination] : state)
    copy_into(path, name, tensors.at(name), data.data(), destination, must_be_non_negative(name));
  model->set_normalizer(state["normalizer.mean"], state["normalizer.std"]);

  if (training) {
    for (const auto& [name, stored] : tensors) {
      if (name.rfind("optim.", 0) != 0) continue;
      auto tensor = torch::empty(stored.shape, torch::TensorOptions().dtype(torch::kFloat));
      copy_into(path, name, stored, data.data(), tensor, must_be_non_negative(name));
      training->optimizer[name.substr(6)] = tensor;
    }
    if (checkpoint != nullptr) *checkpoint = std::move(training);
  }
  return model;
}

}  // namespace ddim
