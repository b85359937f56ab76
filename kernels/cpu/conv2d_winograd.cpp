// Winograd F(2x2, 3x3) (Lavin & Gray 2016) for 3x3, stride-1, pad-1 convs.
// Each 2x2 block of outputs ("tile") reads a 4x4 input patch d starting one
// row and column above-left of it. With
//   B^T = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1]
//   G   = [1 0 0; 1/2 1/2 1/2; 1/2 -1/2 1/2; 0 0 1]
//   A^T = [1 1 1 0; 0 1 -1 -1]
// a tile of the output is Y = A^T [(G g G^T) .* (B^T d B)] A. For each of
// the 16 positions xi of the 4x4 transformed tile the channel sum is a GEMM
// (T = tiles, channel-last so that the transforms vectorise over channels):
//   forward          M_xi (T,Co) = V_xi (T,Ci) @ U_xi (Ci,Co), V = B^T d B, U = G g G^T
//   backward-input   the same with gy as input and the kernel rotated 180
//                    degrees and transposed (Co in, Ci out): gx = conv(gy, W')
//   backward-weight  dU_xi (Ci,Co) = sum over tiles V_xi^T @ Dy_xi (T,Co),
//                    Dy = A dy A^T (the adjoint of the output transform),
//                    then gW = G^T dU G (the adjoint of the kernel transform)
// That is 16 multiply-adds per 4 outputs and channel pair instead of 36.
// Tiles that stick out of an odd-sized image read zeros and their outside
// outputs are dropped (forward) or count as zero gradient. Images go in
// chunks of about kChunkTiles tiles, each chunk transposed to channel-last
// (n, H, W, C) once; one chunk per thread at a time with its own buffers and
// single-threaded Eigen, as in conv2d.cpp.
#include "sagan/kernels/cpu/conv2d_winograd.h"

#include <algorithm>
#include <cstring>
#include <string>
#include <type_traits>
#include <vector>
#include "sagan/core/eigen.h"

#include "sagan/kernels/cpu/image_chunks.h"
#include "sagan/kernels/cpu/sgemm.h"

namespace sagan::cpu {

namespace {

template <class T>
using Mat = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
template <class T>
Eigen::Map<Mat<T>> mat(T* p, int64_t rows, int64_t cols) {
  return Eigen::Map<Mat<T>>(p, rows, cols);
}
template <class T>
Eigen::Map<const Mat<T>> cmat(const T* p, int64_t rows, int64_t cols) {
  return Eigen::Map<const Mat<T>>(p, rows, cols);
}
// The row-major (rows, cols) matrix at p read as its transpose.
template <class T>
Eigen::Map<const Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::ColMajor>> cmat_t(const T* p, int64_t rows,
                                                                                           int64_t cols) {
  return Eigen::Map<const Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::ColMajor>>(p, cols, rows);
}

// Tiles per chunk (GEMM rows): measured on one core at SAGAN's shapes, 128
// and 256 are level (within 5%), 512 and more are 10-40% slower at 8x8 and
// 16x16 (V and M, 16 x channels x tiles each, leave the caches).
constexpr int64_t kChunkTiles = 128;

struct Geo {
  int64_t B, H, W, th, tw;
  int64_t tiles() const { return th * tw; }  // per image
};

Geo geo_of(const Tensor& t) {
  const int64_t H = t.size(2), W = t.size(3);
  return {t.size(0), H, W, (H + 1) / 2, (W + 1) / 2};
}

template <class T>
T* grow(std::vector<T>& v, int64_t n) {
  if (static_cast<int64_t>(v.size()) < n) v.resize(static_cast<size_t>(n));
  return v.data();
}

// dst (cols, rows) = src (rows, cols)^T, both row-major, in 16x16 blocks
// that stay in L1.
template <class T>
void transpose(const T* __restrict src, int64_t rows, int64_t cols, T* __restrict dst) {
  constexpr int64_t kB = 16;
  for (int64_t r0 = 0; r0 < rows; r0 += kB)
    for (int64_t c0 = 0; c0 < cols; c0 += kB) {
      const int64_t r1 = std::min(rows, r0 + kB), c1 = std::min(cols, c0 + kB);
      for (int64_t c = c0; c < c1; ++c)
        for (int64_t r = r0; r < r1; ++r) dst[c * rows + r] = src[r * cols + c];
    }
}

// Images [b0, b0+n) of t (B, C, HW) channel-last: dst (n, HW, C), so that
// the transforms below run over contiguous channels (and vectorise).
template <class T>
void to_nhwc(const T* t, int64_t C, int64_t HW, int64_t b0, int64_t n, T* dst) {
  for (int64_t i = 0; i < n; ++i) transpose(t + (b0 + i) * C * HW, C, HW, dst + i * HW * C);
}

template <class T>
void from_nhwc(const T* src, int64_t C, int64_t HW, int64_t b0, int64_t n, T* t) {
  for (int64_t i = 0; i < n; ++i) transpose(src + i * HW * C, HW, C, t + (b0 + i) * C * HW);
}

// V (16, n*tiles, C) = B^T d B for every tile of the channel-last images
// xt (n, H, W, C); d is the 4x4 patch at rows 2ty-1.., columns 2tx-1...
template <class T>
void input_transform(const T* xt, int64_t C, const Geo& g, int64_t n, const T* zeros, T* V) {
  const int64_t tpi = g.tiles(), xs = n * tpi * C;
  for (int64_t i = 0; i < n; ++i)
    for (int64_t ty = 0; ty < g.th; ++ty)
      for (int64_t tx = 0; tx < g.tw; ++tx) {
        const T* d[4][4];
        for (int r = 0; r < 4; ++r)
          for (int c = 0; c < 4; ++c) {
            const int64_t y = 2 * ty - 1 + r, x = 2 * tx - 1 + c;
            d[r][c] = (y >= 0 && y < g.H && x >= 0 && x < g.W) ? xt + ((i * g.H + y) * g.W + x) * C : zeros;
          }
        T* o = V + (i * tpi + ty * g.tw + tx) * C;
#pragma omp simd
        for (int64_t ch = 0; ch < C; ++ch) {
          T m[4][4];
          for (int c = 0; c < 4; ++c) {  // B^T d
            m[0][c] = d[0][c][ch] - d[2][c][ch];
            m[1][c] = d[1][c][ch] + d[2][c][ch];
            m[2][c] = d[2][c][ch] - d[1][c][ch];
            m[3][c] = d[1][c][ch] - d[3][c][ch];
          }
          for (int r = 0; r < 4; ++r) {  // (B^T d) B
            o[(4 * r + 0) * xs + ch] = m[r][0] - m[r][2];
            o[(4 * r + 1) * xs + ch] = m[r][1] + m[r][2];
            o[(4 * r + 2) * xs + ch] = m[r][2] - m[r][1];
            o[(4 * r + 3) * xs + ch] = m[r][1] - m[r][3];
          }
        }
      }
}

// yt (n, H, W, C) = A^T M A (+ bias) for every tile, M (16, n*tiles, C).
// Outputs of tiles that stick out of the image go to `discard`.
template <class T>
void output_transform(const T* M, int64_t C, const Geo& g, int64_t n, const T* bias, T* discard, T* yt) {
  const int64_t tpi = g.tiles(), xs = n * tpi * C;
  for (int64_t i = 0; i < n; ++i)
    for (int64_t ty = 0; ty < g.th; ++ty)
      for (int64_t tx = 0; tx < g.tw; ++tx) {
        T* y[2][2];
        for (int a = 0; a < 2; ++a)
          for (int b = 0; b < 2; ++b) {
            const int64_t yy = 2 * ty + a, x = 2 * tx + b;
            y[a][b] = (yy < g.H && x < g.W) ? yt + ((i * g.H + yy) * g.W + x) * C : discard;
          }
        const T* q = M + (i * tpi + ty * g.tw + tx) * C;
#pragma omp simd
        for (int64_t ch = 0; ch < C; ++ch) {
          T s[2][4];
          for (int c = 0; c < 4; ++c) {  // A^T m
            const T m0 = q[(0 + c) * xs + ch], m1 = q[(4 + c) * xs + ch];
            const T m2 = q[(8 + c) * xs + ch], m3 = q[(12 + c) * xs + ch];
            s[0][c] = m0 + m1 + m2;
            s[1][c] = m1 - m2 - m3;
          }
          const T bc = bias ? bias[ch] : T(0);
          for (int a = 0; a < 2; ++a) {  // (A^T m) A
            y[a][0][ch] = s[a][0] + s[a][1] + s[a][2] + bc;
            y[a][1][ch] = s[a][1] - s[a][2] - s[a][3] + bc;
          }
        }
      }
}

// Dy (16, n*tiles, C) = A dy A^T for every tile of the channel-last
// gradient gyt (n, H, W, C): the adjoint of the output transform (outputs
// outside the image have zero gradient).
template <class T>
void output_transform_adjoint(const T* gyt, int64_t C, const Geo& g, int64_t n, const T* zeros, T* Dy) {
  const int64_t tpi = g.tiles(), xs = n * tpi * C;
  for (int64_t i = 0; i < n; ++i)
    for (int64_t ty = 0; ty < g.th; ++ty)
      for (int64_t tx = 0; tx < g.tw; ++tx) {
        const T* e[2][2];
        for (int a = 0; a < 2; ++a)
          for (int b = 0; b < 2; ++b) {
            const int64_t yy = 2 * ty + a, x = 2 * tx + b;
            e[a][b] = (yy < g.H && x < g.W) ? gyt + ((i * g.H + yy) * g.W + x) * C : zeros;
          }
        T* o = Dy + (i * tpi + ty * g.tw + tx) * C;
#pragma omp simd
        for (int64_t ch = 0; ch < C; ++ch) {
          T r[4][2];  // A e, A = [1 0; 1 1; 1 -1; 0 -1]
          for (int b = 0; b < 2; ++b) {
            r[0][b] = e[0][b][ch];
            r[1][b] = e[0][b][ch] + e[1][b][ch];
            r[2][b] = e[0][b][ch] - e[1][b][ch];
            r[3][b] = -e[1][b][ch];
          }
          for (int k = 0; k < 4; ++k) {  // (A e) A^T
            o[(4 * k + 0) * xs + ch] = r[k][0];
            o[(4 * k + 1) * xs + ch] = r[k][0] + r[k][1];
            o[(4 * k + 2) * xs + ch] = r[k][0] - r[k][1];
            o[(4 * k + 3) * xs + ch] = -r[k][1];
          }
        }
      }
}

// U (16, rows, cols) = G g G^T for the 3x3 kernel g(r, c) of every (r, c).
template <class T, class Kernel>
void kernel_transform(int64_t rows, int64_t cols, Kernel&& kernel, T* U) {
  const int64_t xs = rows * cols;
#pragma omp parallel for schedule(static) if (xs >= 4096)
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c) {
      T k[3][3], m[4][3];
      kernel(r, c, k);
      for (int j = 0; j < 3; ++j) {  // G g
        m[0][j] = k[0][j];
        m[1][j] = T(0.5) * (k[0][j] + k[1][j] + k[2][j]);
        m[2][j] = T(0.5) * (k[0][j] - k[1][j] + k[2][j]);
        m[3][j] = k[2][j];
      }
      T* o = U + r * cols + c;
      for (int a = 0; a < 4; ++a) {  // (G g) G^T
        o[(4 * a + 0) * xs] = m[a][0];
        o[(4 * a + 1) * xs] = T(0.5) * (m[a][0] + m[a][1] + m[a][2]);
        o[(4 * a + 2) * xs] = T(0.5) * (m[a][0] - m[a][1] + m[a][2]);
        o[(4 * a + 3) * xs] = m[a][2];
      }
    }
}

// Per-thread scratch: channel-last input and output, transformed input,
// GEMM results, a zero row, a discard row and a packed GEMM operand.
template <class T>
struct Scratch {
  std::vector<T> in, out, v, m, zeros, discard, packed;
};

// float32 GEMMs go to the packed-B micro-kernel (sgemm.h), float64 to Eigen.
template <class T>
constexpr bool kPacked = std::is_same_v<T, float>;

// out (B, Co, H, W) = conv3x3(in (B, Ci, H, W)) (+ bias) given U (16, Ci, Co).
template <class T>
void winograd_apply(const T* in, int64_t Ci, int64_t Co, const Geo& g, const T* U, const T* bias, T* out) {
  const ChunkPlan pl = plan_chunks(g.B, g.tiles(), kChunkTiles);
  const int64_t HW = g.H * g.W, up = packed_b_size(Ci, Co);
  std::vector<T> Up;  // U_xi packed once for all chunks
  if constexpr (kPacked<T>) {
    Up.resize(static_cast<size_t>(16 * up));
#pragma omp parallel for schedule(static) if (Ci * Co >= 4096)
    for (int xi = 0; xi < 16; ++xi) sgemm_pack_b(Ci, Co, U + xi * Ci * Co, Co, 1, Up.data() + xi * up);
  }
  std::vector<Scratch<T>> scratch(static_cast<size_t>(scratch_slots(pl)));
  for_chunks(pl, [&](int64_t b0, int64_t b1, int group, int slot) {
    const int64_t n = b1 - b0, Tc = n * g.tiles();
    Scratch<T>& sc = scratch[static_cast<size_t>(slot)];
    T* xt = grow(sc.in, n * HW * Ci);
    T* yt = grow(sc.out, n * HW * Co);
    T* V = grow(sc.v, 16 * Tc * Ci);
    T* M = grow(sc.m, 16 * Tc * Co);
    if (static_cast<int64_t>(sc.zeros.size()) < Ci) sc.zeros.assign(static_cast<size_t>(Ci), T(0));
    T* discard = grow(sc.discard, Co);
    to_nhwc(in, Ci, HW, b0, n, xt);
    input_transform(xt, Ci, g, n, sc.zeros.data(), V);
    for (int xi = 0; xi < 16; ++xi) {
      if constexpr (kPacked<T>)
        sgemm_packed(Tc, Co, Ci, V + xi * Tc * Ci, Ci, 1, Up.data() + xi * up, M + xi * Tc * Co, Co, false);
      else
        mat(M + xi * Tc * Co, Tc, Co).noalias() = cmat(V + xi * Tc * Ci, Tc, Ci) * cmat(U + xi * Ci * Co, Ci, Co);
    }
    output_transform(M, Co, g, n, bias, discard, yt);
    from_nhwc(yt, Co, HW, b0, n, out);
  });
}

void check_geometry(const char* op, const Tensor& a, const Tensor& w) {
  SAGAN_CHECK(w.size(2) == 3 && w.size(3) == 3, "{}: Winograd needs a 3x3 kernel, got weight {}", op,
              shape_str(w.shape()));
  SAGAN_CHECK(a.dim() == 4, "{}: expected a 4-d tensor, got {}", op, shape_str(a.shape()));
}

}  // namespace

void winograd_conv2d(const Tensor& x, const Tensor& w, const std::optional<Tensor>& bias, Tensor& out) {
  check_geometry("conv2d", x, w);
  const Geo g = geo_of(x);
  const int64_t Ci = x.size(1), Co = w.size(0);
  dispatch_float(x.dtype(), "conv2d", [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    const T* wp = w.data<T>();
    std::vector<T> U(static_cast<size_t>(16 * Ci * Co));  // (16, Ci, Co)
    kernel_transform<T>(
        Ci, Co,
        [&](int64_t i, int64_t o, T k[3][3]) {
          const T* src = wp + (o * Ci + i) * 9;
          for (int r = 0; r < 3; ++r)
            for (int c = 0; c < 3; ++c) k[r][c] = src[r * 3 + c];
        },
        U.data());
    winograd_apply<T>(x.data<T>(), Ci, Co, g, U.data(), bias ? bias->data<T>() : nullptr, out.data<T>());
  });
}

void winograd_conv2d_backward_input(const Tensor& gy, const Tensor& w, Tensor& gx) {
  check_geometry("conv2d_backward_input", gy, w);
  const Geo g = geo_of(gy);
  const int64_t Ci = w.size(1), Co = w.size(0);
  dispatch_float(gy.dtype(), "conv2d_backward_input", [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    const T* wp = w.data<T>();
    // gx = conv(gy, W') with W'[ci][co] = W[co][ci] rotated by 180 degrees.
    std::vector<T> U(static_cast<size_t>(16 * Co * Ci));  // (16, Co, Ci)
    kernel_transform<T>(
        Co, Ci,
        [&](int64_t o, int64_t i, T k[3][3]) {
          const T* src = wp + (o * Ci + i) * 9;
          for (int r = 0; r < 3; ++r)
            for (int c = 0; c < 3; ++c) k[r][c] = src[(2 - r) * 3 + (2 - c)];
        },
        U.data());
    winograd_apply<T>(gy.data<T>(), Co, Ci, g, U.data(), nullptr, gx.data<T>());
  });
}

void winograd_conv2d_backward_weight(const Tensor& gy, const Tensor& x, Tensor& gw) {
  check_geometry("conv2d_backward_weight", x, gw);
  const Geo g = geo_of(x);
  const int64_t Ci = x.size(1), Co = gw.size(0), HW = g.H * g.W;
  const ChunkPlan pl = plan_chunks(g.B, g.tiles(), kChunkTiles);
  dispatch_float(x.dtype(), "conv2d_backward_weight", [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    const T* xp = x.data<T>();
    const T* gyp = gy.data<T>();
    const int64_t xs = Ci * Co;
    // dU (16, Ci, Co) per chunk group, summed at the end in group order, so
    // nothing races and the sum does not depend on the thread count.
    std::vector<PartialSum<T>> dU(static_cast<size_t>(pl.groups));
    std::vector<Scratch<T>> scratch(static_cast<size_t>(scratch_slots(pl)));
    for_chunks(pl, [&](int64_t b0, int64_t b1, int group, int slot) {
      const int64_t n = b1 - b0, Tc = n * g.tiles();
      Scratch<T>& sc = scratch[static_cast<size_t>(slot)];
      PartialSum<T>& partial = dU[static_cast<size_t>(group)];
      const bool first = !partial.started();
      T* acc = partial.get(16 * xs);
      T* xt = grow(sc.in, n * HW * Ci);
      T* gyt = grow(sc.out, n * HW * Co);
      T* V = grow(sc.v, 16 * Tc * Ci);
      T* Dy = grow(sc.m, 16 * Tc * Co);
      if (static_cast<int64_t>(sc.zeros.size()) < std::max(Ci, Co))
        sc.zeros.assign(static_cast<size_t>(std::max(Ci, Co)), T(0));
      to_nhwc(xp, Ci, HW, b0, n, xt);
      to_nhwc(gyp, Co, HW, b0, n, gyt);
      input_transform(xt, Ci, g, n, sc.zeros.data(), V);
      output_transform_adjoint(gyt, Co, g, n, sc.zeros.data(), Dy);
      for (int xi = 0; xi < 16; ++xi) {
        if constexpr (kPacked<T>) {
          T* dyp = grow(sc.packed, packed_b_size(Tc, Co));
          sgemm_pack_b(Tc, Co, Dy + xi * Tc * Co, Co, 1, dyp);
          sgemm_packed(Ci, Co, Tc, V + xi * Tc * Ci, 1, Ci, dyp, acc + xi * xs, Co, !first);
        } else {
          auto D = mat(acc + xi * xs, Ci, Co);
          if (first)
            D.noalias() = cmat_t(V + xi * Tc * Ci, Tc, Ci) * cmat(Dy + xi * Tc * Co, Tc, Co);
          else
            D.noalias() += cmat_t(V + xi * Tc * Ci, Tc, Ci) * cmat(Dy + xi * Tc * Co, Tc, Co);
        }
      }
    });
    PartialSum<T>* total = nullptr;
    for (auto& a : dU) {
      if (!a.started()) continue;
      if (total == nullptr) {
        total = &a;
        continue;
      }
      T* __restrict dst = total->get(16 * xs);
      const T* __restrict src = a.data();
      const int64_t len = 16 * xs;
#pragma omp parallel for schedule(static) if (len >= 65536)
      for (int64_t i = 0; i < len; ++i) dst[i] += src[i];
    }
    T* gwp = gw.data<T>();
    if (total == nullptr) {  // no images
      std::fill(gwp, gwp + Co * Ci * 9, T(0));
      return;
    }
    const T* s = total->data();
    // gW = G^T dU G, G^T = [1 1/2 1/2 0; 0 1/2 -1/2 0; 0 1/2 1/2 1].
#pragma omp parallel for schedule(static) if (xs >= 4096)
    for (int64_t o = 0; o < Co; ++o)
      for (int64_t i = 0; i < Ci; ++i) {
        const int64_t e = i * Co + o;
        T u[4][4], m[3][4];
        for (int a = 0; a < 4; ++a)
          for (int b = 0; b < 4; ++b) u[a][b] = s[(4 * a + b) * xs + e];
        for (int b = 0; b < 4; ++b) {  // G^T u
          m[0][b] = u[0][b] + T(0.5) * (u[1][b] + u[2][b]);
          m[1][b] = T(0.5) * (u[1][b] - u[2][b]);
          m[2][b] = T(0.5) * (u[1][b] + u[2][b]) + u[3][b];
        }
        T* out = gwp + (o * Ci + i) * 9;
        for (int r = 0; r < 3; ++r) {  // (G^T u) G
          out[r * 3 + 0] = m[r][0] + T(0.5) * (m[r][1] + m[r][2]);
          out[r * 3 + 1] = T(0.5) * (m[r][1] - m[r][2]);
          out[r * 3 + 2] = T(0.5) * (m[r][1] + m[r][2]) + m[r][3];
        }
      }
  });
}

}  // namespace sagan::cpu
