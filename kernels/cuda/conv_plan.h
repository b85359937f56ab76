// What conv2d.cu keeps per convolution geometry: cuDNN descriptors and, for
// each direction, the algorithm chosen once with the math type it runs
// under and its workspace size.
#pragma once
#include <cudnn.h>

#include <cstddef>

namespace sagan::cuda {

template <class Algo>
struct ConvChoice {
  bool ready = false;
  Algo algo{};
  // cuDNN reports each algorithm with the math type it was tried under,
  // which can differ from the descriptor's (an algorithm without a
  // tensor-op version is tried in default math): the descriptor is set to
  // this before the workspace query and every call.
  cudnnMathType_t math = CUDNN_DEFAULT_MATH;
  size_t workspace = 0;
};

struct ConvPlan {
  cudnnTensorDescriptor_t x = nullptr, y = nullptr;
  cudnnFilterDescriptor_t w = nullptr;
  cudnnConvolutionDescriptor_t conv = nullptr;
  bool bf16 = false;                      // tensors in bf16 (float32 operands under --precision bf16)
  cudnnMathType_t math = CUDNN_FMA_MATH;  // the precision's math type, set for every search
  ConvChoice<cudnnConvolutionFwdAlgo_t> fwd;
  ConvChoice<cudnnConvolutionBwdDataAlgo_t> bwd_data;
  ConvChoice<cudnnConvolutionBwdFilterAlgo_t> bwd_filter;

  ConvPlan() = default;
  ConvPlan(const ConvPlan&) = delete;
  ConvPlan& operator=(const ConvPlan&) = delete;
  ~ConvPlan() {
    if (conv) cudnnDestroyConvolutionDescriptor(conv);
    if (w) cudnnDestroyFilterDescriptor(w);
    if (y) cudnnDestroyTensorDescriptor(y);
    if (x) cudnnDestroyTensorDescriptor(x);
  }
};

}  // namespace sagan::cuda
