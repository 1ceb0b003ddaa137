// Safetensors read/write: round trips for every dtype, the atomic writer's failure
// behaviour, and one test per kind of malformed file (each checks the message names the
// file and the offending tensor / field).
#include <gtest/gtest.h>
#include <sys/mman.h>

#include <cstring>
#include <filesystem>

#include "core/error.h"
#include "io/safetensors.h"
#include "io/safetensors_stream.h"
#include "io/safetensors_writer.h"
#include "support/expect_error.h"
#include "support/temp_dir.h"

namespace awq {
namespace {

using test::read_file_bytes;
using test::TempDir;

// A safetensors file from a raw header and a data section of `data_size` bytes (0x5a each).
// hlen overrides the header length field when given.
std::string raw_file(const std::string& header, size_t data_size, int64_t hlen = -1) {
  const uint64_t n = hlen < 0 ? header.size() : uint64_t(hlen);
  std::string out(8, '\0');
  for (int i = 0; i < 8; ++i) out[size_t(i)] = char((n >> (8 * i)) & 0xff);
  return out + header + std::string(data_size, '\x5a');
}

std::vector<uint8_t> pattern_bytes(size_t n, uint8_t seed) {
  std::vector<uint8_t> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = uint8_t(seed + 31 * i + (i >> 8));
  return v;
}

TEST(SafetensorsRoundTrip, AllDtypesShapesAndMetadata) {
  TempDir tmp;
  struct Spec {
    std::string name;
    DType dtype;
    std::vector<int64_t> shape;
  };
  const std::vector<Spec> specs = {
      {"f32", DType::F32, {3, 5}},      {"f16", DType::F16, {7}},
      {"bf16", DType::BF16, {2, 3, 1}}, {"i64", DType::I64, {3}},
      {"i32", DType::I32, {1, 1}},      {"i16", DType::I16, {5}},
      {"i8", DType::I8, {9}},           {"u8", DType::U8, {4, 4}},
      {"bool", DType::BOOL, {3}},       {"empty", DType::F16, {0, 384}},
      {"scalar", DType::F32, {}},
  };
  std::vector<std::vector<uint8_t>> buffers;
  std::vector<TensorView> views;
  for (const Spec& s : specs) {
    TensorView v;
    v.name = s.name;
    v.dtype = s.dtype;
    v.shape = s.shape;
    v.nbytes = size_t(v.numel()) * dtype_size(s.dtype);
    buffers.push_back(pattern_bytes(v.nbytes, uint8_t(buffers.size())));
    if (s.dtype == DType::BOOL)
      for (auto& b : buffers.back()) b &= 1;
    v.data = buffers.back().data();
    views.push_back(v);
  }
  const std::map<std::string, std::string> meta = {{"format", "pt"}, {"note", "ünïcode \"q\""}};
  const std::string path = tmp.file("rt.safetensors");
  write_safetensors(path, views, meta);
  EXPECT_EQ(tmp.list(), std::vector<std::string>{"rt.safetensors"});  // no temp file left

  // The header length is a multiple of 8, so the data section starts 8-byte aligned.
  const std::string bytes = read_file_bytes(path);
  uint64_t hlen = 0;
  std::memcpy(&hlen, bytes.data(), 8);  // little-endian host
  EXPECT_EQ(hlen % 8, 0u);

  SafetensorsFile f(path);
  EXPECT_EQ(f.path(), path);
  EXPECT_EQ(f.metadata(), meta);
  ASSERT_EQ(f.tensors().size(), specs.size());
  for (size_t i = 0; i < specs.size(); ++i) {
    const TensorView& t = f.tensors()[i];  // offset order == write order
    SCOPED_TRACE(specs[i].name);
    EXPECT_EQ(t.name, specs[i].name);
    EXPECT_EQ(t.dtype, specs[i].dtype);
    EXPECT_EQ(t.shape, specs[i].shape);
    ASSERT_EQ(t.nbytes, buffers[i].size());
    if (t.nbytes) {
      EXPECT_EQ(std::memcmp(t.data, buffers[i].data(), t.nbytes), 0);
    }
    EXPECT_EQ(f.find(specs[i].name), &t);
  }
  EXPECT_EQ(f.find("absent"), nullptr);
}

TEST(SafetensorsRoundTrip, NoTensorsAndNoMetadata) {
  TempDir tmp;
  const std::string path = tmp.file("none.safetensors");
  write_safetensors(path, {});
  SafetensorsFile f(path);
  EXPECT_TRUE(f.tensors().empty());
  EXPECT_TRUE(f.metadata().empty());
}

TEST(SafetensorsRead, UnalignedDataSectionAndEmptyTensorInsideAnother) {
  // A header whose length is not a multiple of 4 (no space padding): the F32 data starts
  // misaligned; the reader must still hand out the right bytes (consumers memcpy).
  TempDir tmp;
  const std::string header =
      R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"e":{"dtype":"I8","shape":[0],"data_offsets":[4,4]}})";
  ASSERT_NE((8 + header.size()) % 4, 0u);
  std::string file = raw_file(header, 0);
  const float vals[2] = {1.5f, -2.25f};
  file.append(reinterpret_cast<const char*>(vals), 8);
  const std::string path = tmp.write("u.safetensors", file);
  SafetensorsFile f(path);
  ASSERT_EQ(f.tensors().size(), 2u);
  const TensorView* a = f.find("a");
  ASSERT_NE(a, nullptr);
  float got[2];
  std::memcpy(got, a->data, 8);
  EXPECT_EQ(got[0], 1.5f);
  EXPECT_EQ(got[1], -2.25f);
  EXPECT_EQ(f.tensors()[0].name, "a");  // offset order: a [0,8) before e [4,4)
  EXPECT_EQ(f.find("e")->nbytes, 0u);
}

// ---- the atomic writer --------------------------------------------------------------

TEST(SafetensorsWriter, WriteFileAtomicReplacesContent) {
  TempDir tmp;
  const std::string path = tmp.file("a.json");
  write_file_atomic(path, "first");
  write_file_atomic(path, "second, longer");
  EXPECT_EQ(read_file_bytes(path), "second, longer");
  EXPECT_EQ(tmp.list(), std::vector<std::string>{"a.json"});
}

TEST(SafetensorsWriter, MissingFolderThrowsAndLeavesNoTempFile) {
  TempDir tmp;
  const std::string path = tmp.file("no/such/dir/x.safetensors");
  EXPECT_AWQ_ERROR(write_safetensors(path, {}), {path, "No such file or directory"});
  EXPECT_AWQ_ERROR(write_file_atomic(path, "x"), {path, "No such file or directory"});
  EXPECT_TRUE(tmp.list().empty());
}

TEST(SafetensorsWriter, InvalidTensorLeavesExistingFileUntouched) {
  TempDir tmp;
  const std::string path = tmp.write("m.safetensors", "old content");
  const std::vector<uint8_t> buf(24);
  TensorView bad{"w", DType::F16, {3, 4}, buf.data(), 20};
  EXPECT_AWQ_ERROR(write_safetensors(path, {bad}),
                   {path, "tensor 'w'", "F16 [3, 4] needs 24 bytes", "20"});
  TensorView good{"w", DType::F16, {3, 4}, buf.data(), 24};
  EXPECT_AWQ_ERROR(write_safetensors(path, {good, good}), {path, "tensor 'w'", "twice"});
  TensorView neg{"n", DType::F32, {-1}, buf.data(), 0};
  EXPECT_AWQ_ERROR(write_safetensors(path, {neg}), {path, "tensor 'n'", "negative"});
  TensorView reserved{"__metadata__", DType::U8, {1}, buf.data(), 1};
  EXPECT_AWQ_ERROR(write_safetensors(path, {reserved}), {path, "reserved"});
  EXPECT_EQ(read_file_bytes(path), "old content");
  EXPECT_EQ(tmp.list(), std::vector<std::string>{"m.safetensors"});
}

TEST(SafetensorsWriter, WriteFailingMidwayLeavesExistingFileUntouched) {
  // The second tensor's data is an unreadable page: the header and first tensor are written
  // to the temp file, then write(2) fails with EFAULT. The old file must survive intact.
  TempDir tmp;
  const std::string path = tmp.write("m.safetensors", "old content");
  const size_t page = size_t(sysconf(_SC_PAGESIZE));
  void* noaccess = mmap(nullptr, page, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  ASSERT_NE(noaccess, MAP_FAILED);
  const std::vector<uint8_t> buf(16, 7);
  TensorView ok{"ok", DType::U8, {16}, buf.data(), 16};
  TensorView unreadable{"bad", DType::F32, {4}, noaccess, 16};
  EXPECT_AWQ_ERROR(write_safetensors(path, {ok, unreadable}), {path, "cannot write"});
  munmap(noaccess, page);
  EXPECT_EQ(read_file_bytes(path), "old content");
  EXPECT_EQ(tmp.list(), std::vector<std::string>{"m.safetensors"});
}

TEST(SafetensorsWriter, RenameFailureRemovesTempFile) {
  TempDir tmp;
  std::filesystem::create_directory(tmp.file("target"));  // cannot rename a file over a folder
  EXPECT_AWQ_ERROR(write_file_atomic(tmp.file("target"), "x"), {tmp.file("target"), "rename"});
  EXPECT_EQ(tmp.list(), std::vector<std::string>{"target"});
}

// ---- streamed writing (SafetensorsStreamWriter) ---------------------------------------

// Three tensors, one of zero bytes (complete from the start, never written).
std::vector<TensorSpec> stream_specs() {
  return {TensorSpec{"a", DType::F32, {2, 3}}, TensorSpec{"empty", DType::I32, {0, 4}},
          TensorSpec{"c", DType::F16, {5}}};
}

// Written in parts as they are produced, the file is byte for byte what write_safetensors
// makes of the same tensors held in memory.
TEST(SafetensorsStream, PartsInOrderEqualTheWholeFileWriter) {
  TempDir tmp;
  const std::vector<uint8_t> a = pattern_bytes(24, 1), c = pattern_bytes(10, 2);
  const std::map<std::string, std::string> meta{{"format", "pt"}, {"by", "test"}};
  SafetensorsStreamWriter w(tmp.file("s.safetensors"), stream_specs(), meta);
  w.write("a", DType::F32, {2, 3}, a.data(), 8);
  EXPECT_FALSE(std::filesystem::exists(tmp.file("s.safetensors")));  // appears only at commit
  w.write("a", DType::F32, {2, 3}, a.data() + 8, 16);
  w.write("c", DType::F16, {5}, c.data(), 10);
  EXPECT_EQ(w.data_bytes(), 34u);
  w.commit();
  write_safetensors(tmp.file("w.safetensors"),
                    {TensorView{"a", DType::F32, {2, 3}, a.data(), 24}, TensorView{"empty", DType::I32, {0, 4}, a.data(), 0},
                     TensorView{"c", DType::F16, {5}, c.data(), 10}},
                    meta);
  EXPECT_EQ(read_file_bytes(tmp.file("s.safetensors")), read_file_bytes(tmp.file("w.safetensors")));
  EXPECT_EQ(tmp.list(), (std::vector<std::string>{"s.safetensors", "w.safetensors"}));
}

// Each way the produced tensors can disagree with the header: the error names the file, both
// tensors and the position, and no file (nor temp file) is left, even with a commit() after it.
TEST(SafetensorsStream, MismatchWithTheHeaderIsAnErrorAndWritesNothing) {
  TempDir tmp;
  const std::string path = tmp.file("s.safetensors");
  const std::vector<uint8_t> buf = pattern_bytes(64, 3);
  const auto expect_nothing_written = [&] { EXPECT_TRUE(tmp.list().empty()) << tmp.list()[0]; };
  {  // a tensor out of order
    SafetensorsStreamWriter w(path, stream_specs(), {});
    EXPECT_AWQ_ERROR(w.write("c", DType::F16, {5}, buf.data(), 10),
                     {path, "internal error", "'c' F16 [5]", "tensor 0 'a' F32 [2, 3]", "not written"});
    EXPECT_AWQ_ERROR(w.commit(), {path, "failed write"});
  }
  expect_nothing_written();
  {  // right name, wrong shape; then wrong dtype
    SafetensorsStreamWriter w(path, stream_specs(), {});
    EXPECT_AWQ_ERROR(w.write("a", DType::F32, {3, 2}, buf.data(), 24), {"'a' F32 [3, 2]", "'a' F32 [2, 3]"});
  }
  {
    SafetensorsStreamWriter w(path, stream_specs(), {});
    EXPECT_AWQ_ERROR(w.write("a", DType::F16, {2, 3}, buf.data(), 12), {"'a' F16 [2, 3]", "'a' F32 [2, 3]"});
  }
  {  // more bytes than the tensor has
    SafetensorsStreamWriter w(path, stream_specs(), {});
    w.write("a", DType::F32, {2, 3}, buf.data(), 20);
    EXPECT_AWQ_ERROR(w.write("a", DType::F32, {2, 3}, buf.data(), 8), {"'a' F32 [2, 3]", "given 28 bytes", "has 24"});
  }
  {  // a tensor cut short, followed by the next one
    SafetensorsStreamWriter w(path, stream_specs(), {});
    w.write("a", DType::F32, {2, 3}, buf.data(), 20);
    EXPECT_AWQ_ERROR(w.write("c", DType::F16, {5}, buf.data(), 10), {"'c' F16 [5]", "got only 20 of its 24 bytes"});
  }
  {  // commit before the last tensor
    SafetensorsStreamWriter w(path, stream_specs(), {});
    w.write("a", DType::F32, {2, 3}, buf.data(), 24);
    w.write("c", DType::F16, {5}, buf.data(), 4);
    EXPECT_AWQ_ERROR(w.commit(), {path, "tensor 2 'c' F16 [5] at 4 of its 10 bytes"});
  }
  {  // a tensor after the last one
    SafetensorsStreamWriter w(path, {TensorSpec{"a", DType::U8, {4}}}, {});
    w.write("a", DType::U8, {4}, buf.data(), 4);
    EXPECT_AWQ_ERROR(w.write("b", DType::U8, {4}, buf.data(), 4), {"'b' U8 [4]", "after the last tensor of the header"});
  }
  expect_nothing_written();
}

// The header is validated before anything is written, as write_safetensors does.
TEST(SafetensorsStream, BadSpecsAreRefusedUpFront) {
  TempDir tmp;
  EXPECT_AWQ_ERROR(SafetensorsStreamWriter(tmp.file("s.safetensors"),
                                           {TensorSpec{"x", DType::U8, {1}}, TensorSpec{"x", DType::U8, {1}}}, {}),
                   {"'x'", "used twice"});
  EXPECT_TRUE(tmp.list().empty());
}

// ---- malformed files ------------------------------------------------------------------

TEST(SafetensorsBadInput, EmptyFile) {
  TempDir tmp;
  const std::string p = tmp.write("e.safetensors", "");
  EXPECT_AWQ_ERROR(SafetensorsFile{p}, {p, "0 bytes", "header length"});
}

TEST(SafetensorsBadInput, ShorterThan8Bytes) {
  TempDir tmp;
  const std::string p = tmp.write("s.safetensors", "abcde");
  EXPECT_AWQ_ERROR(SafetensorsFile{p}, {p, "5 bytes", "truncated or not safetensors"});
}

TEST(SafetensorsBadInput, MissingFile) {
  TempDir tmp;
  EXPECT_AWQ_ERROR(SafetensorsFile{tmp.file("nope.safetensors")}, {tmp.file("nope.safetensors")});
}

TEST(SafetensorsBadInput, HeaderLengthPastEnd) {
  TempDir tmp;
  const std::string p = tmp.write("h.safetensors", raw_file("{}", 990, 123456));
  EXPECT_AWQ_ERROR(SafetensorsFile{p},
                   {p, "header length 123456 runs past the end of the file (1000 bytes)"});
  // A length so large that 8 + length would overflow must not wrap around.
  const std::string q = tmp.write("h2.safetensors", raw_file("{}", 0, INT64_MAX));
  EXPECT_AWQ_ERROR(SafetensorsFile{q}, {q, "runs past the end"});
}

TEST(SafetensorsBadInput, HeaderNotJson) {
  TempDir tmp;
  const std::string p = tmp.write("j.safetensors", raw_file("{\"a\": {\"dtype\": ", 0));
  EXPECT_AWQ_ERROR(SafetensorsFile{p}, {p, "not valid JSON", "parse error"});
  const std::string q = tmp.write("arr.safetensors", raw_file("[1, 2]", 0));
  EXPECT_AWQ_ERROR(SafetensorsFile{q}, {q, "not an object"});
}

TEST(SafetensorsBadInput, MetadataNotStrings) {
  TempDir tmp;
  const std::string p = tmp.write("m.safetensors", raw_file(R"({"__metadata__":{"k":1}})", 0));
  EXPECT_AWQ_ERROR(SafetensorsFile{p}, {p, "__metadata__", "'k'", "not a string"});
  const std::string q = tmp.write("m2.safetensors", raw_file(R"({"__metadata__":[]})", 0));
  EXPECT_AWQ_ERROR(SafetensorsFile{q}, {q, "__metadata__"});
}

TEST(SafetensorsBadInput, UnknownDtype) {
  TempDir tmp;
  const std::string p = tmp.write(
      "d.safetensors", raw_file(R"({"w":{"dtype":"F64","shape":[2],"data_offsets":[0,16]}})", 16));
  EXPECT_AWQ_ERROR(SafetensorsFile{p}, {p, "tensor 'w'", "dtype 'F64'", "BF16"});
}

TEST(SafetensorsBadInput, NegativeShape) {
  TempDir tmp;
  const std::string p = tmp.write(
      "n.safetensors", raw_file(R"({"w":{"dtype":"U8","shape":[2,-3],"data_offsets":[0,0]}})", 0));
  EXPECT_AWQ_ERROR(SafetensorsFile{p}, {p, "tensor 'w'", "shape [2,-3]", "negative"});
}

TEST(SafetensorsBadInput, NonIntegerOrOverflowingShape) {
  TempDir tmp;
  const std::string p = tmp.write(
      "f.safetensors", raw_file(R"({"w":{"dtype":"U8","shape":[2.5],"data_offsets":[0,0]}})", 0));
  EXPECT_AWQ_ERROR(SafetensorsFile{p}, {p, "tensor 'w'", "shape", "non-integer"});
  const std::string q = tmp.write(
      "o.safetensors",
      raw_file(R"({"w":{"dtype":"U8","shape":[4294967296,4294967296],"data_offsets":[0,0]}})", 0));
  EXPECT_AWQ_ERROR(SafetensorsFile{q}, {q, "tensor 'w'", "64 bits"});
}

TEST(SafetensorsBadInput, MissingField) {
  TempDir tmp;
  const std::string p =
      tmp.write("mf.safetensors", raw_file(R"({"w":{"dtype":"U8","shape":[2]}})", 2));
  EXPECT_AWQ_ERROR(SafetensorsFile{p}, {p, "tensor 'w'", "data_offsets"});
  const std::string q =
      tmp.write("ms.safetensors", raw_file(R"({"w":{"dtype":"U8","data_offsets":[0,2]}})", 2));
  EXPECT_AWQ_ERROR(SafetensorsFile{q}, {q, "tensor 'w'", "shape"});
}

TEST(SafetensorsBadInput, OffsetsOutOfRange) {
  TempDir tmp;
  const std::string p = tmp.write(
      "r.safetensors", raw_file(R"({"w":{"dtype":"F16","shape":[4],"data_offsets":[8,16]}})", 12));
  EXPECT_AWQ_ERROR(SafetensorsFile{p},
                   {p, "tensor 'w'", "data_offsets [8, 16] lie outside the data section (12 bytes)",
                    "truncated or corrupt"});
  const std::string q = tmp.write(
      "rev.safetensors", raw_file(R"({"w":{"dtype":"U8","shape":[0],"data_offsets":[4,2]}})", 8));
  EXPECT_AWQ_ERROR(SafetensorsFile{q}, {q, "tensor 'w'", "data_offsets [4, 2]"});
  const std::string r =
      tmp.write("negoff.safetensors",
                raw_file(R"({"w":{"dtype":"U8","shape":[1],"data_offsets":[-1,0]}})", 8));
  EXPECT_AWQ_ERROR(SafetensorsFile{r}, {r, "tensor 'w'", "data_offsets"});
}

TEST(SafetensorsBadInput, ByteLengthMismatch) {
  TempDir tmp;
  const std::string p =
      tmp.write("b.safetensors",
                raw_file(R"({"x":{"dtype":"F16","shape":[3,4],"data_offsets":[0,20]}})", 24));
  EXPECT_AWQ_ERROR(SafetensorsFile{p},
                   {p, "tensor 'x': F16 [3, 4] needs 24 bytes but data_offsets span 20"});
}

TEST(SafetensorsBadInput, OverlappingTensors) {
  TempDir tmp;
  const std::string p = tmp.write(
      "ov.safetensors", raw_file(R"({"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]},)"
                                 R"("b":{"dtype":"F32","shape":[4],"data_offsets":[12,28]}})",
                                 32));
  EXPECT_AWQ_ERROR(SafetensorsFile{p}, {p, "'a'", "'b'", "overlap"});
}

TEST(SafetensorsBadInput, DuplicateTensorName) {
  TempDir tmp;
  const std::string p = tmp.write(
      "dup.safetensors", raw_file(R"({"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},)"
                                  R"("a":{"dtype":"U8","shape":[1],"data_offsets":[1,2]}})",
                                  2));
  EXPECT_AWQ_ERROR(SafetensorsFile{p}, {p, "'a'", "twice"});
}

}  // namespace
}  // namespace awq
