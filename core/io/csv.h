// Metrics CSV: the first row fixes the columns (and writes the header); later
// rows must have exactly those columns, in any order. Every row is flushed so
// a crash loses at most the row being written. Opening an existing file in
// append mode (resuming a run) continues it when its header matches. When
// the columns differ but the first (the step) is the same, a setting changed
// on resume (--on-nan skip, --grad-clip, --fd-every turned on or off): the
// file is rewritten atomically under this run's columns followed by those
// only the file had, with blank cells where a row has no value. Otherwise
// it throws, naming the file and both headers.
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
  // fsync of the rows written (each is already flushed to the OS): before a
  // checkpoint, so that a power cut cannot keep the checkpoint and lose the
  // rows it follows (a resume never writes them again).
  void sync();
  const std::vector<std::string>& columns() const { return columns_; }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  std::FILE* file_ = nullptr;
  std::vector<std::string> columns_;      // the file's, in order
  std::vector<std::string> row_columns_;  // every row's (the first row's)
  std::string existing_header_;           // header line found when appending, if any
  // The existing file rewritten under `names` followed by the columns only
  // it has; returns those columns, or none (nothing done) when its first
  // column differs or it has quoted fields.
  std::vector<std::string> merge_existing(const std::vector<std::string>& names);
};

// RFC 4180 quoting for one field (quotes fields with , " CR or LF).
std::string csv_escape(const std::string& field);

}  // namespace sagan::io
