// Metrics CSV writer; behaviour in csv.h.
#include "sagan/core/io/csv.h"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>

#include "sagan/core/error.h"
#include "sagan/core/io/atomic_file.h"

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
  // e: O_CLOEXEC; the file stays open for a whole run, and processes a
  // program that embeds the engine starts must not inherit it.
  file_ = std::fopen(path.c_str(), append ? "abe" : "wbe");
  SAGAN_CHECK(file_ != nullptr, "CsvWriter: {}: {}", path, std::strerror(errno));
}

std::vector<std::string> CsvWriter::merge_existing(const std::vector<std::string>& names) {
  auto split = [](const std::string& line) {
    std::vector<std::string> cells;
    size_t b = 0;
    for (size_t e; (e = line.find(',', b)) != std::string::npos; b = e + 1) cells.push_back(line.substr(b, e - b));
    cells.push_back(line.substr(b));
    return cells;
  };
  std::vector<uint8_t> bytes = read_file(path_);
  const std::string text(bytes.begin(), bytes.end());
  if (text.find('"') != std::string::npos) return {};  // quoted fields: not rewritten
  const std::vector<std::string> old = split(existing_header_);
  // The same first column (the step) or it is another kind of file.
  if (old.empty() || names.empty() || old[0] != names[0]) return {};
  std::vector<std::string> merged = names;
  for (const std::string& c : old)
    if (std::find(names.begin(), names.end(), c) == names.end()) merged.push_back(c);
  std::vector<int> from(merged.size(), -1);  // each column's place in the old rows, -1 for none
  for (size_t i = 0; i < merged.size(); ++i)
    if (auto it = std::find(old.begin(), old.end(), merged[i]); it != old.end())
      from[i] = static_cast<int>(it - old.begin());
  std::string out;
  for (size_t i = 0; i < merged.size(); ++i) out += (i ? "," : "") + merged[i];
  out += '\n';
  size_t pos = text.find('\n') + 1;
  for (size_t nl; pos < text.size() && (nl = text.find('\n', pos)) != std::string::npos; pos = nl + 1) {
    const std::vector<std::string> cells = split(text.substr(pos, nl - pos));
    SAGAN_CHECK(cells.size() == old.size(), "CsvWriter: {}: a row has {} cells for the {} columns of its header", path_,
                cells.size(), old.size());
    for (size_t i = 0; i < merged.size(); ++i) out += (i ? "," : "") + (from[i] < 0 ? "" : cells[from[i]]);
    out += '\n';
  }
  std::fclose(file_);
  file_ = nullptr;
  write_file_atomic(path_, out);
  file_ = std::fopen(path_.c_str(), "abe");
  SAGAN_CHECK(file_ != nullptr, "CsvWriter: {}: {}", path_, std::strerror(errno));
  return merged;
}

void CsvWriter::sync() {
  SAGAN_CHECK(std::fflush(file_) == 0 && ::fsync(::fileno(file_)) == 0, "CsvWriter: {}: fsync failed: {}", path_,
              std::strerror(errno));
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
    std::vector<std::string> columns = names;
    if (!existing_header_.empty()) {
      if (existing_header_ != header) {
        columns = merge_existing(names);
        if (columns.empty())
          SAGAN_FAIL("CsvWriter: {}: cannot append: the file's header '{}' differs from this run's columns '{}'", path_,
                     existing_header_, header);
      }
    } else {
      write_all(file_, (header + "\n").data(), header.size() + 1, path_);
    }
    columns_ = columns;
    row_columns_ = names;
  }
  // Every row has the first row's columns; those only the file had are blank.
  SAGAN_CHECK(row.size() == row_columns_.size(), "CsvWriter: {}: row has {} columns [{}], expected {} [{}]", path_,
              row.size(), fmt::join(names, ", "), row_columns_.size(), fmt::join(row_columns_, ", "));
  for (const std::string& c : row_columns_)
    SAGAN_CHECK(std::find(names.begin(), names.end(), c) != names.end(),
                "CsvWriter: {}: row lacks column '{}' (row has [{}])", path_, c, fmt::join(names, ", "));
  std::string line;
  for (size_t i = 0; i < columns_.size(); ++i) {
    auto it = std::find_if(row.begin(), row.end(), [&](const auto& p) { return p.first == columns_[i]; });
    if (i) line += ',';
    if (it != row.end()) line += csv_escape(it->second.text);
  }
  line += '\n';
  write_all(file_, line.data(), line.size(), path_);
  SAGAN_CHECK(std::fflush(file_) == 0, "CsvWriter: {}: flush failed: {}", path_, std::strerror(errno));
}

}  // namespace sagan::io
