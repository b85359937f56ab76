// safetensors reader/writer; format notes in safetensors.h.
#include "sagan/core/io/safetensors.h"

#include <sys/stat.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cstring>
#include <nlohmann/json.hpp>
#include <numeric>
#include <set>

#include "sagan/core/io/atomic_file.h"

namespace sagan::io {

static_assert(std::endian::native == std::endian::little,
              "safetensors data is little-endian; a big-endian host would need byte swaps");

namespace {

using ojson = nlohmann::ordered_json;

// Python's safetensors refuses larger headers too; it bounds what a corrupt
// length field can make us allocate.
constexpr uint64_t kMaxHeader = 100'000'000;

const char* st_dtype_name(DType t) { return t == DType::F32 ? "F32" : t == DType::F64 ? "F64" : "I64"; }

// Dtypes of the format that sagan has no tensor type for.
bool is_foreign_dtype(const std::string& s) {
  static const std::set<std::string> names = {"BOOL",    "U8",  "I8",      "U16",     "I16",     "F16",
                                              "BF16",    "U32", "I32",     "U64",     "F8_E4M3", "F8_E5M2",
                                              "F8_E8M0", "F4",  "F6_E2M3", "F6_E3M2", "C64"};
  return names.count(s) > 0;
}

struct Entry {
  std::string name;
  DType dtype;
  Shape shape;
  uint64_t begin, end;
};

struct FileCloser {
  std::FILE* f;
  ~FileCloser() {
    if (f) std::fclose(f);
  }
};

uint64_t read_u64_le(const uint8_t* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

Entry parse_entry(const std::string& path, const std::string& name, const ojson& v, uint64_t data_size) {
  SAGAN_CHECK(v.is_object(), "load_safetensors: {}: tensor '{}': header entry is not an object", path, name);
  SAGAN_CHECK(v.contains("dtype") && v["dtype"].is_string(),
              "load_safetensors: {}: tensor '{}': missing string 'dtype'", path, name);
  SAGAN_CHECK(v.contains("shape") && v["shape"].is_array(), "load_safetensors: {}: tensor '{}': missing array 'shape'",
              path, name);
  SAGAN_CHECK(v.contains("data_offsets") && v["data_offsets"].is_array() && v["data_offsets"].size() == 2,
              "load_safetensors: {}: tensor '{}': 'data_offsets' must be an array [begin, end]", path, name);
  Entry e;
  e.name = name;
  std::string dt = v["dtype"].get<std::string>();
  if (dt == "F32")
    e.dtype = DType::F32;
  else if (dt == "F64")
    e.dtype = DType::F64;
  else if (dt == "I64")
    e.dtype = DType::I64;
  else if (is_foreign_dtype(dt))
    SAGAN_FAIL("load_safetensors: {}: tensor '{}': dtype {} is not supported by sagan (F32, F64, I64 are)", path, name,
               dt);
  else
    SAGAN_FAIL("load_safetensors: {}: tensor '{}': unknown dtype '{}'", path, name, dt);

  // The sizes multiply into strides and byte counts: their product (zero
  // sizes aside, so a [0, 2^40, 2^40, 2^40] tensor is no loophole) times the
  // item size must fit in an int64.
  uint64_t bytes = dtype_size(e.dtype);
  bool too_big = false, has_zero = false;
  for (const auto& d : v["shape"]) {
    SAGAN_CHECK(d.is_number_unsigned(),
                "load_safetensors: {}: tensor '{}': shape {} has a non-integer or negative entry", path, name,
                v["shape"].dump());
    uint64_t n = d.get<uint64_t>();
    SAGAN_CHECK(n <= static_cast<uint64_t>(INT64_MAX), "load_safetensors: {}: tensor '{}': dimension {} is too large",
                path, name, n);
    e.shape.push_back(static_cast<int64_t>(n));
    if (n == 0)
      has_zero = true;
    else if (bytes > static_cast<uint64_t>(INT64_MAX) / n)
      too_big = true;
    else
      bytes *= n;
  }
  SAGAN_CHECK(!too_big, "load_safetensors: {}: tensor '{}': shape {} of {} is too large (more than 2^63 bytes)", path,
              name, shape_str(e.shape), dt);
  if (has_zero) bytes = 0;
  const auto& off = v["data_offsets"];
  SAGAN_CHECK(off[0].is_number_unsigned() && off[1].is_number_unsigned(),
              "load_safetensors: {}: tensor '{}': data_offsets {} must be non-negative integers", path, name,
              off.dump());
  e.begin = off[0].get<uint64_t>();
  e.end = off[1].get<uint64_t>();
  SAGAN_CHECK(e.begin <= e.end, "load_safetensors: {}: tensor '{}': data_offsets [{}, {}] are reversed", path, name,
              e.begin, e.end);
  SAGAN_CHECK(e.end <= data_size,
              "load_safetensors: {}: tensor '{}': data_offsets [{}, {}] run past the data section ({} bytes)", path,
              name, e.begin, e.end, data_size);
  SAGAN_CHECK(bytes == e.end - e.begin,
              "load_safetensors: {}: tensor '{}': shape {} of {} needs {} bytes but data_offsets [{}, {}] span {}",
              path, name, shape_str(e.shape), dt, bytes, e.begin, e.end, e.end - e.begin);
  return e;
}

struct Layout {
  std::vector<Entry> entries;  // header order
  Metadata metadata;
};

void check_file_size(const std::string& path, uint64_t file_size) {
  SAGAN_CHECK(file_size >= 8, "load_safetensors: {}: file too short ({} bytes) to hold the 8-byte header length", path,
              file_size);
}

void check_header_length(const std::string& path, uint64_t n, uint64_t file_size) {
  SAGAN_CHECK(n <= file_size - 8,
              "load_safetensors: {}: header length {} goes beyond the end of the file ({} bytes): the file is cut "
              "short, or not a safetensors file",
              path, n, file_size);
  SAGAN_CHECK(n <= kMaxHeader, "load_safetensors: {}: header length {} exceeds the {} byte limit", path, n, kMaxHeader);
  SAGAN_CHECK(n >= 2, "load_safetensors: {}: header length {} is too small for a JSON object", path, n);
}

// The JSON header, validated against a data section of data_size bytes.
Layout parse_header(const std::string& path, const std::string& header, uint64_t data_size) {
  // nlohmann keeps the last of duplicate keys silently; the callback sees each.
  std::set<std::string> keys;
  std::string duplicate;
  auto on_event = [&](int depth, nlohmann::json::parse_event_t ev, ojson& parsed) {
    if (ev == nlohmann::json::parse_event_t::key && depth == 1 && !keys.insert(parsed.get<std::string>()).second)
      duplicate = parsed.get<std::string>();
    return true;
  };
  ojson j;
  try {
    j = ojson::parse(header, on_event);
  } catch (const nlohmann::json::exception& e) {
    SAGAN_FAIL("load_safetensors: {}: bad JSON header: {}", path, e.what());
  }
  SAGAN_CHECK(duplicate.empty(), "load_safetensors: {}: duplicate tensor name '{}' in the header", path, duplicate);
  SAGAN_CHECK(j.is_object(), "load_safetensors: {}: bad JSON header: expected an object, got {}", path, j.type_name());

  Layout out;
  std::vector<Entry>& entries = out.entries;
  for (const auto& [key, v] : j.items()) {
    if (key == "__metadata__") {
      SAGAN_CHECK(v.is_object(), "load_safetensors: {}: __metadata__ must be an object of strings", path);
      for (const auto& [mk, mv] : v.items()) {
        SAGAN_CHECK(mv.is_string(), "load_safetensors: {}: __metadata__ value for '{}' is not a string", path, mk);
        out.metadata[mk] = mv.get<std::string>();
      }
      continue;
    }
    entries.push_back(parse_entry(path, key, v, data_size));
  }

  // The tensors must tile the data section exactly.
  std::vector<size_t> by_offset(entries.size());
  std::iota(by_offset.begin(), by_offset.end(), 0);
  std::stable_sort(by_offset.begin(), by_offset.end(), [&](size_t a, size_t b) {
    return std::pair(entries[a].begin, entries[a].end) < std::pair(entries[b].begin, entries[b].end);
  });
  uint64_t covered = 0;
  const Entry* prev = nullptr;
  for (size_t i : by_offset) {
    const Entry& e = entries[i];
    SAGAN_CHECK(e.begin >= covered,
                "load_safetensors: {}: tensor '{}' bytes [{}, {}) overlap tensor '{}' bytes [{}, {})", path, e.name,
                e.begin, e.end, prev ? prev->name : "", prev ? prev->begin : 0, prev ? prev->end : 0);
    SAGAN_CHECK(e.begin == covered, "load_safetensors: {}: data bytes [{}, {}) before tensor '{}' belong to no tensor",
                path, covered, e.begin, e.name);
    covered = e.end;
    if (e.end > e.begin) prev = &e;
  }
  SAGAN_CHECK(covered == data_size,
              "load_safetensors: {}: data section has {} bytes but the tensors cover only {} (trailing bytes belong to "
              "no tensor)",
              path, data_size, covered);
  return out;
}

}  // namespace

bool SafetensorsFile::contains(const std::string& name) const {
  return std::any_of(tensors.begin(), tensors.end(), [&](const auto& p) { return p.first == name; });
}

const Tensor& SafetensorsFile::at(const std::string& name) const {
  for (const auto& [n, t] : tensors)
    if (n == name) return t;
  std::vector<std::string> some;
  for (size_t i = 0; i < tensors.size() && i < 8; ++i) some.push_back(tensors[i].first);
  SAGAN_FAIL("safetensors: no tensor '{}' (file has {} tensors: {}{})", name, tensors.size(), fmt::join(some, ", "),
             tensors.size() > some.size() ? ", ..." : "");
}

void save_safetensors(const std::string& path, const NamedTensors& tensors, const Metadata& metadata) {
  std::set<std::string> seen;
  std::vector<Tensor> host;
  host.reserve(tensors.size());
  for (const auto& [name, t] : tensors) {
    SAGAN_CHECK(!name.empty(), "save_safetensors: {}: empty tensor name", path);
    SAGAN_CHECK(name != "__metadata__", "save_safetensors: {}: '__metadata__' is reserved and cannot name a tensor",
                path);
    SAGAN_CHECK(seen.insert(name).second, "save_safetensors: {}: duplicate tensor name '{}'", path, name);
    SAGAN_CHECK(t.defined(), "save_safetensors: {}: tensor '{}' is undefined", path, name);
    Tensor h = t.detach();
    if (!h.device().is_cpu()) h = h.to(Device::cpu());
    host.push_back(h.contiguous());
  }

  // Widest elements first keeps every tensor aligned to its element size.
  std::vector<size_t> order(tensors.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t a, size_t b) { return dtype_size(host[a].dtype()) > dtype_size(host[b].dtype()); });
  std::vector<uint64_t> begin(tensors.size());
  uint64_t pos = 0;
  for (size_t i : order) {
    begin[i] = pos;
    pos += static_cast<uint64_t>(host[i].numel()) * dtype_size(host[i].dtype());
  }

  std::string header;
  try {
    ojson j = ojson::object();
    if (!metadata.empty()) {
      ojson m = ojson::object();
      for (const auto& [k, v] : metadata) m[k] = v;
      j["__metadata__"] = std::move(m);
    }
    for (size_t i = 0; i < tensors.size(); ++i) {
      uint64_t nbytes = static_cast<uint64_t>(host[i].numel()) * dtype_size(host[i].dtype());
      j[tensors[i].first] = {{"dtype", st_dtype_name(host[i].dtype())},
                             {"shape", host[i].shape()},
                             {"data_offsets", {begin[i], begin[i] + nbytes}}};
    }
    header = j.dump();
  } catch (const nlohmann::json::exception& e) {
    SAGAN_FAIL("save_safetensors: {}: cannot encode the header: {}", path, e.what());
  }
  header.append((8 - header.size() % 8) % 8, ' ');

  write_file_atomic(path, [&](std::FILE* f) {
    uint8_t len[8];
    for (int i = 0; i < 8; ++i) len[i] = static_cast<uint8_t>(static_cast<uint64_t>(header.size()) >> (8 * i));
    // A failure (a full disk) counts the whole file's bytes, not one tensor's.
    const uint64_t total = 8 + header.size() + pos;
    uint64_t done = 0;
    auto put = [&](const void* data, size_t size) {
      write_all(f, data, size, path, done, total);
      done += size;
    };
    put(len, 8);
    put(header.data(), header.size());
    for (size_t i : order) put(host[i].raw_data(), static_cast<size_t>(host[i].numel()) * dtype_size(host[i].dtype()));
  });
}

SafetensorsFile load_safetensors(const std::string& path) {
  FileCloser fc{std::fopen(path.c_str(), "rbe")};  // e: O_CLOEXEC
  SAGAN_CHECK(fc.f != nullptr, "load_safetensors: {}: {}", path, std::strerror(errno));
  struct stat st {};
  SAGAN_CHECK(::fstat(::fileno(fc.f), &st) == 0, "load_safetensors: {}: stat failed: {}", path, std::strerror(errno));
  uint64_t file_size = static_cast<uint64_t>(st.st_size);
  check_file_size(path, file_size);
  uint8_t len[8];
  SAGAN_CHECK(std::fread(len, 1, 8, fc.f) == 8, "load_safetensors: {}: cannot read the header length", path);
  uint64_t n = read_u64_le(len);
  check_header_length(path, n, file_size);
  std::string header(n, '\0');
  SAGAN_CHECK(std::fread(header.data(), 1, n, fc.f) == n, "load_safetensors: {}: cannot read the {}-byte header", path,
              n);
  Layout layout = parse_header(path, header, file_size - 8 - n);

  SafetensorsFile out;
  out.metadata = std::move(layout.metadata);
  for (const Entry& e : layout.entries) {
    Tensor t = Tensor::empty(e.shape, e.dtype);
    size_t nbytes = static_cast<size_t>(e.end - e.begin);
    if (nbytes > 0) {
      SAGAN_CHECK(
          std::fseek(fc.f, static_cast<long>(8 + n + e.begin), SEEK_SET) == 0 &&
              std::fread(t.raw_data(), 1, nbytes, fc.f) == nbytes,
          "load_safetensors: {}: tensor '{}': cannot read {} bytes at data offset {} (file changed or truncated?)",
          path, e.name, nbytes, e.begin);
    }
    out.tensors.emplace_back(e.name, std::move(t));
  }
  return out;
}

SafetensorsFile parse_safetensors(const uint8_t* data, size_t size, const std::string& name) {
  check_file_size(name, size);
  uint64_t n = read_u64_le(data);
  check_header_length(name, n, size);
  std::string header(reinterpret_cast<const char*>(data) + 8, n);
  Layout layout = parse_header(name, header, size - 8 - n);

  SafetensorsFile out;
  out.metadata = std::move(layout.metadata);
  const uint8_t* section = data + 8 + n;
  for (const Entry& e : layout.entries) {
    Tensor t = Tensor::empty(e.shape, e.dtype);
    if (e.end > e.begin) std::memcpy(t.raw_data(), section + e.begin, static_cast<size_t>(e.end - e.begin));
    out.tensors.emplace_back(e.name, std::move(t));
  }
  return out;
}

}  // namespace sagan::io
