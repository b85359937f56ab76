// UploadStage (core/upload_stage.h) on the CPU backend: what take() writes
// is what the sources held at send(), in the destination's dtype; a send
// not taken is dropped by the next; destinations are made once per shape.
// The CUDA stage's stream ordering is tests/cuda/test_cuda_memory.cpp's.
#include <catch2/catch.hpp>

#include "sagan/core/upload_stage.h"

using namespace sagan;

TEST_CASE("an upload stage delivers the sources as they were when sent", "[upload_stage]") {
  UploadStage stage(Device::cpu());
  Tensor images, labels;
  Tensor src = Tensor::from_vector(std::vector<double>{1.5, -2.25, 3.0, 0.5, 7.0, 9.0}, {2, 3}, DType::F64);
  Tensor y = Tensor::from_vector(std::vector<int64_t>{4, 0, 2}, {3});
  CHECK(stage.add(images, src, DType::F32));  // made: undefined before
  CHECK(stage.add(labels, y, DType::I64));
  REQUIRE(images.shape() == Shape{2, 3});
  CHECK(images.dtype() == DType::F32);
  stage.send();
  src.fill_(100.0);  // after send: not what is taken
  Tensor images_before = images;
  stage.take();
  CHECK(images.to_vector() == std::vector<double>{1.5, -2.25, 3.0, 0.5, 7.0, 9.0});
  CHECK(labels.to_int_vector() == std::vector<int64_t>{4, 0, 2});

  // The same shapes again: the same buffers, written in place.
  CHECK_FALSE(stage.add(images, Tensor::full({2, 3}, 2.0, DType::F32), DType::F32));
  CHECK_FALSE(stage.add(labels, Tensor::from_vector(std::vector<int64_t>{1, 1, 1}, {3}), DType::I64));
  stage.send();
  // Not taken yet: the destinations keep the last take's values.
  CHECK(images.to_vector() == std::vector<double>{1.5, -2.25, 3.0, 0.5, 7.0, 9.0});
  stage.take();
  CHECK(images.raw_data() == images_before.raw_data());
  CHECK(images.to_vector() == std::vector<double>(6, 2.0));
  CHECK(labels.to_int_vector() == std::vector<int64_t>{1, 1, 1});

  // A send never taken is dropped by the next; a discarded one by discard().
  stage.add(images, Tensor::full({2, 3}, 3.0, DType::F32), DType::F32);
  stage.send();
  stage.add(images, Tensor::full({2, 3}, 4.0, DType::F32), DType::F32);
  stage.send();
  stage.take();
  CHECK(images.to_vector() == std::vector<double>(6, 4.0));
  stage.add(images, Tensor::full({2, 3}, 5.0, DType::F32), DType::F32);
  stage.send();
  stage.discard();
  stage.take();
  CHECK(images.to_vector() == std::vector<double>(6, 4.0));

  // Another shape: a new buffer, and a larger block for the send.
  Tensor big = Tensor::arange(5000, DType::F64);
  CHECK(stage.add(images, big, DType::F32));
  stage.send();
  stage.take();
  CHECK(images.shape() == Shape{5000});
  CHECK(images.to_vector() == big.to_vector());
}

TEST_CASE("an upload stage refuses a destination it cannot write whole", "[upload_stage]") {
  UploadStage stage(Device::cpu());
  Tensor wide = Tensor::zeros({3, 4});
  Tensor view = wide.transpose(0, 1);  // (4, 3), not contiguous
  REQUIRE_THROWS_WITH(stage.add(view, Tensor::zeros({4, 3}), DType::F32),
                      Catch::Contains("UploadStage::add: the destination must be a contiguous tensor on cpu"));
  Tensor none;
  REQUIRE_THROWS_WITH(stage.add(none, Tensor(), DType::F32), Catch::Contains("an undefined source tensor"));
}
