// safetensors files (https://github.com/huggingface/safetensors): an 8-byte
// little-endian header length N, N bytes of JSON header (padded with spaces
// to 8-byte alignment), then the raw little-endian tensor data. The header
// maps each name to {"dtype", "shape", "data_offsets": [begin, end]} with
// offsets relative to the start of the data section, plus an optional
// "__metadata__" map of string -> string. Files written here load with
// Python's safetensors library and vice versa (for F32/F64/I64).
#pragma once
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "sagan/core/tensor.h"

namespace sagan::io {

using Metadata = std::map<std::string, std::string>;

struct SafetensorsFile {
  NamedTensors tensors;  // in header order; CPU, contiguous
  Metadata metadata;

  bool contains(const std::string& name) const;
  // Throws naming the tensor (and listing a few that exist) when absent.
  const Tensor& at(const std::string& name) const;
};

// Writes atomically (see atomic_file.h). Tensors may live on any device and be
// strided views; they are copied to the CPU and made contiguous. Names must be
// unique, non-empty and not "__metadata__". Header order is the given order;
// the data section is laid out widest dtype first so every tensor is aligned
// to its element size for readers that map the file.
void save_safetensors(const std::string& path, const NamedTensors& tensors, const Metadata& metadata = {});

// Reads and strictly validates: header length within the file, valid JSON,
// known dtypes, shape * itemsize == byte range, offsets in range and tiling
// the data section exactly (no gaps, no overlap), no duplicate names. Errors
// name the file and, where one is involved, the tensor.
SafetensorsFile load_safetensors(const std::string& path);
// The same checks on a file already in memory; `name` stands for the path in
// messages. (The path version streams the data section instead.)
SafetensorsFile parse_safetensors(const uint8_t* data, size_t size, const std::string& name);

}  // namespace sagan::io
