// Metrics CSV: the first row fixes the columns (and writes the header); later
// rows must have exactly those columns, in any order. Every row is flushed so
// a crash loses at most the row being written. Opening an existing file in
// append mode (resuming a run) continues it when its header matches; when
// the new columns add to the file's (a setting changed on resume, such as
// --on-nan skip or --grad-clip), the file is rewritten atomically with the
// new header and blank cells in the earlier rows; otherwise it throws,
// naming the file and both headers.
#pragma once
#include <fmt/format.h>
#include <cstdint>
#include <cstdio>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

namespace sagan::io {

// One cell's text: numbers print in their shortest round-trip form.
struct CsvValue {
  std::string text;
  template <class T>
  requires std::is_arithmetic_v<T> CsvValue(T v) : text(fmt::format("{}", v)) {}
  CsvValue(std::string s) : text(std::move(s)) {}
  CsvValue(const char* s) : text(s) {}
};

using CsvRow = std::vector<std::pair<std::string, CsvValue>>;

class CsvWriter {
 public:
  // append = false starts the file afresh; append = true keeps its rows. A
  // last line cut short by a crash is dropped before appending.
  CsvWriter(const std::string& path, bool append);
  ~CsvWriter();
  CsvWriter(const CsvWriter&) = delete;
  CsvWriter& operator=(const CsvWriter&) = delete;

  void write(const CsvRow& row);
  const std::vector<std::string>& columns() const { return columns_; }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  std::FILE* file_ = nullptr;
  std::vector<std::string> columns_;
  std::string existing_header_;  // header line found when appending, if any
  // The existing file rewritten under `header` when `names` holds all of
  // its columns; false (nothing done) otherwise.
  bool widen_existing(const std::vector<std::string>& names, const std::string& header);
};

// RFC 4180 quoting for one field (quotes fields with , " CR or LF).
std::string csv_escape(const std::string& field);

}  // namespace sagan::io
