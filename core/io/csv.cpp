// Metrics CSV writer; behaviour in csv.h.
#include "core/io/csv.h"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>

#include "core/error.h"
#include "core/io/atomic_file.h"

namespace sagan::io {

std::string csv_escape(const std::string& field) {
  if (field.find_first_of(",\"\r\n") == std::string::npos) return field;
  std::string out = "\"";
  for (char c : field) {
    if (c == '"') out += '"';
    out += c;
  }
  return out + "\"";
}

CsvWriter::CsvWriter(const std::string& path, bool append) : path_(path) {
  if (append && std::filesystem::exists(path)) {
    std::vector<uint8_t> bytes = read_file(path);
    std::string text(bytes.begin(), bytes.end());
    // A crash mid-row leaves a line without its newline: drop it.
    size_t last_nl = text.rfind('\n');
    size_t keep = last_nl == std::string::npos ? 0 : last_nl + 1;
    if (keep < text.size()) {
      SAGAN_CHECK(::truncate(path.c_str(), static_cast<off_t>(keep)) == 0,
                  "CsvWriter: {}: cannot drop a partial last line: {}", path, std::strerror(errno));
    }
    size_t eol = text.find('\n');
    if (keep > 0) existing_header_ = text.substr(0, eol);
  }
  file_ = std::fopen(path.c_str(), append ? "ab" : "wb");
  SAGAN_CHECK(file_ != nullptr, "CsvWriter: {}: {}", path, std::strerror(errno));
}

CsvWriter::~CsvWriter() {
  if (file_) std::fclose(file_);
}

void CsvWriter::write(const CsvRow& row) {
  SAGAN_CHECK(!row.empty(), "CsvWriter: {}: empty row", path_);
  std::vector<std::string> names;
  for (const auto& [name, value] : row) names.push_back(name);
  if (columns_.empty()) {
    std::vector<std::string> sorted = names;
    std::sort(sorted.begin(), sorted.end());
    auto dup = std::adjacent_find(sorted.begin(), sorted.end());
    SAGAN_CHECK(dup == sorted.end(), "CsvWriter: {}: column '{}' appears twice", path_, *dup);
    std::string header;
    for (size_t i = 0; i < names.size(); ++i) {
      if (i) header += ',';
      header += csv_escape(names[i]);
    }
    if (!existing_header_.empty()) {
      SAGAN_CHECK(existing_header_ == header,
                  "CsvWriter: {}: cannot append: the file's header '{}' differs from this run's columns '{}'", path_,
                  existing_header_, header);
    } else {
      write_all(file_, (header + "\n").data(), header.size() + 1, path_);
    }
    columns_ = names;
  }
  SAGAN_CHECK(row.size() == columns_.size(), "CsvWriter: {}: row has {} columns [{}], expected {} [{}]", path_,
              row.size(), fmt::join(names, ", "), columns_.size(), fmt::join(columns_, ", "));
  std::string line;
  for (size_t i = 0; i < columns_.size(); ++i) {
    auto it = std::find_if(row.begin(), row.end(), [&](const auto& p) { return p.first == columns_[i]; });
    SAGAN_CHECK(it != row.end(), "CsvWriter: {}: row lacks column '{}' (row has [{}])", path_, columns_[i],
                fmt::join(names, ", "));
    if (i) line += ',';
    line += csv_escape(it->second.text);
  }
  line += '\n';
  write_all(file_, line.data(), line.size(), path_);
  SAGAN_CHECK(std::fflush(file_) == 0, "CsvWriter: {}: flush failed: {}", path_, std::strerror(errno));
}

}  // namespace sagan::io
