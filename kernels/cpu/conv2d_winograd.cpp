// Winograd F(m x m, 3x3) (Lavin & Gray 2016) for 3x3, stride-1, pad-1
// convs, with output tiles of m = 2 or 4. Each m x m block of outputs
// ("tile") reads an a x a input patch d (a = m + 2) starting one row and
// column above-left of it, and is
//   Y = A^T [(G g G^T) .* (B^T d B)] A
// with the matrices of the tile size below (F2, F4). For each of the a*a
// positions xi of the transformed tile the channel sum is a GEMM (T =
// tiles, channel-last so that the transforms vectorise over channels):
//   forward          M_xi (T,Co) = V_xi (T,Ci) @ U_xi (Ci,Co), V = B^T d B, U = G g G^T
//   backward-input   the same with gy as input and the kernel rotated 180
//                    degrees and transposed (Co in, Ci out): gx = conv(gy, W')
//   backward-weight  dU_xi (Ci,Co) = sum over tiles V_xi^T @ Dy_xi (T,Co),
//                    Dy = A dy A^T (the adjoint of the output transform),
//                    then gW = G^T dU G (the adjoint of the kernel transform)
// Per output and channel pair that is 16/4 = 4 multiply-adds for F(2x2)
// and 36/16 = 2.25 for F(4x4), against im2col's 9; F(4x4)'s transforms
// have larger constants (up to 8 and 1/24), so its float32 error is up to
// about 10x F(2x2)'s (tests/test_conv2d_3x3.cpp bounds both).
// Tiles that stick out of an odd-sized image read zeros and their outside
// outputs are dropped (forward) or count as zero gradient. Images go in
// chunks of about F::kChunkTiles tiles, each chunk transposed to
// channel-last (n, H, W, C) once; one chunk per thread at a time with its
// own buffers and single-threaded GEMMs, as in conv2d.cpp.
#include "sagan/kernels/cpu/conv2d_winograd.h"

#include <algorithm>
#include <cstring>
#include <memory>
#include <string>
#include <type_traits>
#include <vector>
#include "sagan/core/eigen.h"

#include "sagan/kernels/cpu/image_chunks.h"
#include "sagan/kernels/cpu/sgemm.h"
#include "sagan/kernels/cpu/transpose_blocks.h"

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

// The 1-D transforms of each tile size, applied to columns and then rows:
// input B^T (a <- a), output A^T (m <- a), its adjoint A (a <- m), kernel
// G (a <- 3) and its adjoint G^T (3 <- a).
struct F2 {
  static constexpr int m = 2, a = 4;
  // Tiles per chunk (GEMM rows): measured on one core at SAGAN's shapes, 128
  // and 256 are level (within 5%), 512 and more are 10-40% slower at 8x8
  // and 16x16 (V and M, 16 x channels x tiles each, leave the caches).
  static constexpr int64_t kChunkTiles = 128;
  template <class T>
  static void input(const T* d, T* o) {  // B^T = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1]
    o[0] = d[0] - d[2];
    o[1] = d[1] + d[2];
    o[2] = d[2] - d[1];
    o[3] = d[1] - d[3];
  }
  template <class T>
  static void output(const T* s, T* y) {  // A^T = [1 1 1 0; 0 1 -1 -1]
    y[0] = s[0] + s[1] + s[2];
    y[1] = s[1] - s[2] - s[3];
  }
  template <class T>
  static void output_adjoint(const T* e, T* r) {  // A
    r[0] = e[0];
    r[1] = e[0] + e[1];
    r[2] = e[0] - e[1];
    r[3] = -e[1];
  }
  template <class T>
  static void kernel(const T* k, T* u) {  // G = [1 0 0; 1/2 1/2 1/2; 1/2 -1/2 1/2; 0 0 1]
    u[0] = k[0];
    u[1] = 0.5f * (k[0] + k[1] + k[2]);
    u[2] = 0.5f * (k[0] - k[1] + k[2]);
    u[3] = k[2];
  }
  template <class T>
  static void kernel_adjoint(const T* u, T* k) {  // G^T
    k[0] = u[0] + 0.5f * (u[1] + u[2]);
    k[1] = 0.5f * (u[1] - u[2]);
    k[2] = 0.5f * (u[1] + u[2]) + u[3];
  }
};

// F(4x4, 3x3) on the points 0, 1, -1, 2, -2 and infinity.
struct F4 {
  static constexpr int m = 4, a = 6;
  // As many output pixels per chunk as F2's 128 tiles. Measured at batch 64
  // on 2 cores, 32, 64 and 128 are within the run-to-run spread (10%).
  static constexpr int64_t kChunkTiles = 32;
  template <class T>
  static void input(const T* d, T* o) {
    // B^T = [4 0 -5 0 1 0; 0 -4 -4 1 1 0; 0 4 -4 -1 1 0;
    //        0 -2 -1 2 1 0; 0 2 -1 -2 1 0; 0 4 0 -5 0 1]
    const T p = d[4] - 4 * d[2], q = d[3] - 4 * d[1];  // rows 1, 2
    const T r = d[4] - d[2], t = 2 * (d[3] - d[1]);    // rows 3, 4
    o[0] = 4 * d[0] - 5 * d[2] + d[4];
    o[1] = p + q;
    o[2] = p - q;
    o[3] = r + t;
    o[4] = r - t;
    o[5] = 4 * d[1] - 5 * d[3] + d[5];
  }
  template <class T>
  static void output(const T* s, T* y) {
    // A^T = [1 1 1 1 1 0; 0 1 -1 2 -2 0; 0 1 1 4 4 0; 0 1 -1 8 -8 1]
    const T p = s[1] + s[2], q = s[1] - s[2], r = s[3] + s[4], t = s[3] - s[4];
    y[0] = s[0] + p + r;
    y[1] = q + 2 * t;
    y[2] = p + 4 * r;
    y[3] = q + 8 * t + s[5];
  }
  template <class T>
  static void output_adjoint(const T* e, T* r) {  // A
    const T p = e[0] + e[2], q = e[1] + e[3];
    const T u = e[0] + 4 * e[2], v = 2 * e[1] + 8 * e[3];
    r[0] = e[0];
    r[1] = p + q;
    r[2] = p - q;
    r[3] = u + v;
    r[4] = u - v;
    r[5] = e[3];
  }
  template <class T>
  static void kernel(const T* k, T* u) {
    // G = [1/4 0 0; -1/6 -1/6 -1/6; -1/6 1/6 -1/6;
    //      1/24 1/12 1/6; 1/24 -1/12 1/6; 0 0 1]
    const T p = -(k[0] + k[2]) / 6, q = -k[1] / 6;
    const T r = k[0] / 24 + k[2] / 6, t = k[1] / 12;
    u[0] = k[0] / 4;
    u[1] = p + q;
    u[2] = p - q;
    u[3] = r + t;
    u[4] = r - t;
    u[5] = k[2];
  }
  template <class T>
  static void kernel_adjoint(const T* u, T* k) {  // G^T
    const T p = u[1] + u[2], q = u[2] - u[1], r = u[3] + u[4], t = u[3] - u[4];
    k[0] = u[0] / 4 - p / 6 + r / 24;
    k[1] = q / 6 + t / 12;
    k[2] = -p / 6 + r / 6 + u[5];
  }
};

struct Geo {
  int64_t B, H, W, th, tw;
  int64_t tiles() const { return th * tw; }  // per image
};

template <class F>
Geo geo_of(const Tensor& t) {
  const int64_t H = t.size(2), W = t.size(3);
  return {t.size(0), H, W, (H + F::m - 1) / F::m, (W + F::m - 1) / F::m};
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

// The transforms run over channels a 64-byte vector at a time (GCC's vector
// extension: F's formulas apply to it lane by lane), the last C % lanes
// channels one by one. (`#pragma omp simd` over channels stops vectorising
// once the formulas are functions of a tile size.)
template <class T>
struct Lanes {
  static constexpr int64_t n = 64 / static_cast<int64_t>(sizeof(T));
  using V [[gnu::vector_size(64)]] = T;
};

template <class V, class T>
void load(V& v, const T* p) {
  std::memcpy(&v, p, sizeof v);
}
template <class V, class T>
void store(T* p, const V& v) {
  std::memcpy(p, &v, sizeof v);
}

// body(ch, std::type_identity<V>) for channels [ch, ch + lanes of V), V a
// vector of T or T. (Vectors go by reference only: a vector argument or
// result would change the ABI on machines without AVX-512, -Wpsabi.)
template <class T, class Body>
inline void over_channels(int64_t C, Body&& body) {
  int64_t ch = 0;
  for (; ch + Lanes<T>::n <= C; ch += Lanes<T>::n) body(ch, std::type_identity<typename Lanes<T>::V>{});
  for (; ch < C; ++ch) body(ch, std::type_identity<T>{});
}

// Y = T X T^T for a 1-D transform T of In values to Out (one of F's):
// X (In, In) read by get(r, c, x), Y (Out, Out) handed to put(r, c, y),
// T applied to X's columns, then to the rows of the result. Every 2-D
// transform and adjoint below is one of these.
template <int In, int Out, class L, class Transform, class Get, class Put>
inline void separable(Transform&& transform, Get&& get, Put&& put) {
  L col[In], t[In][Out], out[Out];  // t[c] = T (column c of X)
  for (int c = 0; c < In; ++c) {
    for (int r = 0; r < In; ++r) get(r, c, col[r]);
    transform(col, t[c]);
  }
  for (int r = 0; r < Out; ++r) {  // row r of (T X) T^T
    for (int c = 0; c < In; ++c) col[c] = t[c][r];
    transform(col, out);
    for (int c = 0; c < Out; ++c) put(r, c, out[c]);
  }
}

// V (a*a, n*tiles, C) = B^T d B for every tile of the channel-last images
// xt (n, H, W, C); d is the a x a patch at rows m*ty-1.., columns m*tx-1...
template <class F, class T>
void input_transform(const T* xt, int64_t C, const Geo& g, int64_t n, const T* zeros, T* V) {
  constexpr int a = F::a;
  const int64_t tpi = g.tiles(), xs = n * tpi * C;
  for (int64_t i = 0; i < n; ++i)
    for (int64_t ty = 0; ty < g.th; ++ty)
      for (int64_t tx = 0; tx < g.tw; ++tx) {
        const T* d[a][a];
        for (int r = 0; r < a; ++r)
          for (int c = 0; c < a; ++c) {
            const int64_t y = F::m * ty - 1 + r, x = F::m * tx - 1 + c;
            d[r][c] = (y >= 0 && y < g.H && x >= 0 && x < g.W) ? xt + ((i * g.H + y) * g.W + x) * C : zeros;
          }
        T* o = V + (i * tpi + ty * g.tw + tx) * C;
        over_channels<T>(C, [&](int64_t ch, auto lanes) {
          using L = typename decltype(lanes)::type;
          separable<a, a, L>([](const L* x, L* y) { F::input(x, y); },
                             [&](int r, int c, L& x) { load(x, d[r][c] + ch); },
                             [&](int r, int c, const L& y) { store(o + (a * r + c) * xs + ch, y); });
        });
      }
}

// yt (n, H, W, C) = A^T M A (+ bias) for every tile, M (a*a, n*tiles, C).
// Outputs of tiles that stick out of the image go to `discard`.
template <class F, class T>
void output_transform(const T* M, int64_t C, const Geo& g, int64_t n, const T* bias, T* discard, T* yt) {
  constexpr int a = F::a, m = F::m;
  const int64_t tpi = g.tiles(), xs = n * tpi * C;
  for (int64_t i = 0; i < n; ++i)
    for (int64_t ty = 0; ty < g.th; ++ty)
      for (int64_t tx = 0; tx < g.tw; ++tx) {
        T* y[m][m];
        for (int r = 0; r < m; ++r)
          for (int c = 0; c < m; ++c) {
            const int64_t yy = m * ty + r, x = m * tx + c;
            y[r][c] = (yy < g.H && x < g.W) ? yt + ((i * g.H + yy) * g.W + x) * C : discard;
          }
        const T* q = M + (i * tpi + ty * g.tw + tx) * C;
        over_channels<T>(C, [&](int64_t ch, auto lanes) {
          using L = typename decltype(lanes)::type;
          L bc{};
          if (bias) load(bc, bias + ch);
          separable<a, m, L>([](const L* x, L* out) { F::output(x, out); },
                             [&](int r, int c, L& x) { load(x, q + (a * r + c) * xs + ch); },
                             [&](int r, int c, const L& out) { store(y[r][c] + ch, out + bc); });
        });
      }
}

// Dy (a*a, n*tiles, C) = A dy A^T for every tile of the channel-last
// gradient gyt (n, H, W, C): the adjoint of the output transform (outputs
// outside the image have zero gradient).
template <class F, class T>
void output_transform_adjoint(const T* gyt, int64_t C, const Geo& g, int64_t n, const T* zeros, T* Dy) {
  constexpr int a = F::a, m = F::m;
  const int64_t tpi = g.tiles(), xs = n * tpi * C;
  for (int64_t i = 0; i < n; ++i)
    for (int64_t ty = 0; ty < g.th; ++ty)
      for (int64_t tx = 0; tx < g.tw; ++tx) {
        const T* e[m][m];
        for (int r = 0; r < m; ++r)
          for (int c = 0; c < m; ++c) {
            const int64_t yy = m * ty + r, x = m * tx + c;
            e[r][c] = (yy < g.H && x < g.W) ? gyt + ((i * g.H + yy) * g.W + x) * C : zeros;
          }
        T* o = Dy + (i * tpi + ty * g.tw + tx) * C;
        over_channels<T>(C, [&](int64_t ch, auto lanes) {
          using L = typename decltype(lanes)::type;
          separable<m, a, L>([](const L* x, L* y) { F::output_adjoint(x, y); },
                             [&](int r, int c, L& x) { load(x, e[r][c] + ch); },
                             [&](int r, int c, const L& y) { store(o + (a * r + c) * xs + ch, y); });
        });
      }
}

// Lane l of a vector of T, or the T itself.
template <class L, class T>
T get_lane(const L& v, int64_t l) {
  if constexpr (std::is_same_v<L, T>)
    return v;
  else
    return v[l];
}
template <class L, class T>
void set_lane(L& v, int64_t l, T x) {
  if constexpr (std::is_same_v<L, T>)
    v = x;
  else
    v[l] = x;
}

// U_xi (rows, cols) = (G g G^T)_xi for the 3x3 kernel g(r, c) of every
// (r, c), a vector of columns c at a time; dest(xi, r, c) says where the
// value (r, c) of U_xi (and those of the next columns in the vector) go.
template <class F, class T, class Kernel, class Dest>
void kernel_transform(int64_t rows, int64_t cols, Kernel&& kernel, Dest&& dest) {
  constexpr int a = F::a;
#pragma omp parallel for schedule(static) if (rows * cols >= 4096)
  for (int64_t r = 0; r < rows; ++r)
    over_channels<T>(cols, [&](int64_t c0, auto lanes) {
      using L = typename decltype(lanes)::type;
      L k[3][3];
      for (int64_t l = 0; l < static_cast<int64_t>(sizeof(L) / sizeof(T)); ++l) {
        T g[3][3];
        kernel(r, c0 + l, g);
        for (int i = 0; i < 3; ++i)
          for (int j = 0; j < 3; ++j) set_lane(k[i][j], l, g[i][j]);
      }
      separable<3, a, L>([](const L* x, L* u) { F::kernel(x, u); }, [&](int i, int j, L& x) { x = k[i][j]; },
                         [&](int i, int j, const L& u) { store(dest(a * i + j, r, c0), u); });
    });
}

// gw (Co, Ci, 3, 3) = G^T dU G, the adjoint of the kernel transform, for
// dU (a*a, Ci, Co); a vector of outputs o at a time.
template <class F, class T>
void kernel_transform_adjoint(const T* dU, int64_t Ci, int64_t Co, T* gw) {
  constexpr int a = F::a;
  const int64_t xs = Ci * Co;
#pragma omp parallel for schedule(static) if (xs >= 4096)
  for (int64_t i = 0; i < Ci; ++i)
    over_channels<T>(Co, [&](int64_t o0, auto lanes) {
      using L = typename decltype(lanes)::type;
      const T* s = dU + i * Co + o0;
      T* dst = gw + (o0 * Ci + i) * 9;
      separable<a, 3, L>([](const L* u, L* k) { F::kernel_adjoint(u, k); },
                         [&](int r, int c, L& u) { load(u, s + (a * r + c) * xs); },
                         [&](int r, int c, const L& k) {
                           for (int64_t l = 0; l < static_cast<int64_t>(sizeof(L) / sizeof(T)); ++l)
                             dst[l * Ci * 9 + r * 3 + c] = get_lane<L, T>(k, l);
                         });
    });
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

// out (B, Co, H, W) = conv3x3(in (B, Ci, H, W)) (+ bias) for the 3x3 kernel
// g(i, o) of input channel i and output o: U (a*a, Ci, Co), for float32
// transformed straight into the packed GEMM operand.
template <class F, class T, class Kernel>
void winograd_apply(const T* in, int64_t Ci, int64_t Co, const Geo& g, Kernel&& kernel, const T* bias, T* out) {
  constexpr int P = F::a * F::a;
  const ChunkPlan pl = plan_chunks(g.B, g.tiles(), F::kChunkTiles);
  const int64_t HW = g.H * g.W, up = kPacked<T> ? packed_b_size(Ci, Co) : Ci * Co;  // per position
  std::unique_ptr<T[]> U(new T[static_cast<size_t>(P * up)]);
  if constexpr (kPacked<T>) {
    static_assert(kSgemmPanel % Lanes<T>::n == 0, "a vector of columns must stay within one packed panel");
    if (const int64_t used = Co % kSgemmPanel; used != 0)  // the last panel's padding columns
      for (int64_t k = 0; k < P * Ci; ++k)
        std::fill_n(U.get() + (k / Ci) * up + packed_b_index(Ci, k % Ci, Co - used) + used, kSgemmPanel - used, T(0));
    kernel_transform<F, T>(Ci, Co, kernel,
                           [&](int xi, int64_t r, int64_t c) { return U.get() + xi * up + packed_b_index(Ci, r, c); });
  } else {
    kernel_transform<F, T>(Ci, Co, kernel,
                           [&](int xi, int64_t r, int64_t c) { return U.get() + xi * up + r * Co + c; });
  }
  std::vector<Scratch<T>> scratch(static_cast<size_t>(scratch_slots(pl)));
  for_chunks(pl, [&](int64_t b0, int64_t b1, int group, int slot) {
    const int64_t n = b1 - b0, Tc = n * g.tiles();
    Scratch<T>& sc = scratch[static_cast<size_t>(slot)];
    T* xt = grow_scratch(sc.in, n * HW * Ci);
    T* yt = grow_scratch(sc.out, n * HW * Co);
    T* V = grow_scratch(sc.v, P * Tc * Ci);
    T* M = grow_scratch(sc.m, P * Tc * Co);
    if (static_cast<int64_t>(sc.zeros.size()) < Ci) sc.zeros.assign(static_cast<size_t>(Ci), T(0));
    T* discard = grow_scratch(sc.discard, Co);
    to_nhwc(in, Ci, HW, b0, n, xt);
    input_transform<F>(xt, Ci, g, n, sc.zeros.data(), V);
    for (int xi = 0; xi < P; ++xi) {
      if constexpr (kPacked<T>)
        sgemm_packed(Tc, Co, Ci, V + xi * Tc * Ci, Ci, 1, U.get() + xi * up, M + xi * Tc * Co, Co, false);
      else
        mat(M + xi * Tc * Co, Tc, Co).noalias() = cmat(V + xi * Tc * Ci, Tc, Ci) * cmat(U.get() + xi * up, Ci, Co);
    }
    output_transform<F>(M, Co, g, n, bias, discard, yt);
    from_nhwc(yt, Co, HW, b0, n, out);
  });
}

void check_winograd_geometry(const char* op, const Tensor& a, const Tensor& w) {
  SAGAN_CHECK(w.size(2) == 3 && w.size(3) == 3, "{}: Winograd needs a 3x3 kernel, got weight {}", op,
              shape_str(w.shape()));
  SAGAN_CHECK(a.dim() == 4, "{}: expected a 4-d tensor, got {}", op, shape_str(a.shape()));
}

template <class F>
void conv2d_f(const Tensor& x, const Tensor& w, const std::optional<Tensor>& bias, Tensor& out) {
  const Geo g = geo_of<F>(x);
  const int64_t Ci = x.size(1), Co = w.size(0);
  dispatch_float(x.dtype(), "conv2d", [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    const T* wp = w.data<T>();
    auto kernel = [&](int64_t i, int64_t o, T k[3][3]) {
      const T* src = wp + (o * Ci + i) * 9;
      for (int r = 0; r < 3; ++r)
        for (int c = 0; c < 3; ++c) k[r][c] = src[r * 3 + c];
    };
    winograd_apply<F, T>(x.data<T>(), Ci, Co, g, kernel, bias ? bias->data<T>() : nullptr, out.data<T>());
  });
}

template <class F>
void backward_input_f(const Tensor& gy, const Tensor& w, Tensor& gx) {
  const Geo g = geo_of<F>(gy);
  const int64_t Ci = w.size(1), Co = w.size(0);
  dispatch_float(gy.dtype(), "conv2d_backward_input", [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    const T* wp = w.data<T>();
    // gx = conv(gy, W') with W'[ci][co] = W[co][ci] rotated by 180 degrees.
    auto kernel = [&](int64_t o, int64_t i, T k[3][3]) {
      const T* src = wp + (o * Ci + i) * 9;
      for (int r = 0; r < 3; ++r)
        for (int c = 0; c < 3; ++c) k[r][c] = src[(2 - r) * 3 + (2 - c)];
    };
    winograd_apply<F, T>(gy.data<T>(), Co, Ci, g, kernel, nullptr, gx.data<T>());
  });
}

template <class F>
void backward_weight_f(const Tensor& gy, const Tensor& x, Tensor& gw) {
  constexpr int a = F::a, P = a * a;
  const Geo g = geo_of<F>(x);
  const int64_t Ci = x.size(1), Co = gw.size(0), HW = g.H * g.W;
  const ChunkPlan pl = plan_chunks(g.B, g.tiles(), F::kChunkTiles);
  dispatch_float(x.dtype(), "conv2d_backward_weight", [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    const T* xp = x.data<T>();
    const T* gyp = gy.data<T>();
    const int64_t xs = Ci * Co;
    // dU (a*a, Ci, Co) per chunk group, summed at the end in group order, so
    // nothing races and the sum does not depend on the thread count.
    std::vector<PartialSum<T>> dU(static_cast<size_t>(pl.groups));
    std::vector<Scratch<T>> scratch(static_cast<size_t>(scratch_slots(pl)));
    for_chunks(pl, [&](int64_t b0, int64_t b1, int group, int slot) {
      const int64_t n = b1 - b0, Tc = n * g.tiles();
      Scratch<T>& sc = scratch[static_cast<size_t>(slot)];
      PartialSum<T>& partial = dU[static_cast<size_t>(group)];
      const bool first = !partial.started();
      T* acc = partial.get(P * xs);
      T* xt = grow_scratch(sc.in, n * HW * Ci);
      T* gyt = grow_scratch(sc.out, n * HW * Co);
      T* V = grow_scratch(sc.v, P * Tc * Ci);
      T* Dy = grow_scratch(sc.m, P * Tc * Co);
      if (static_cast<int64_t>(sc.zeros.size()) < std::max(Ci, Co))
        sc.zeros.assign(static_cast<size_t>(std::max(Ci, Co)), T(0));
      to_nhwc(xp, Ci, HW, b0, n, xt);
      to_nhwc(gyp, Co, HW, b0, n, gyt);
      input_transform<F>(xt, Ci, g, n, sc.zeros.data(), V);
      output_transform_adjoint<F>(gyt, Co, g, n, sc.zeros.data(), Dy);
      for (int xi = 0; xi < P; ++xi) {
        if constexpr (kPacked<T>) {
          T* dyp = grow_scratch(sc.packed, packed_b_size(Tc, Co));
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
    for (auto& part : dU) {
      if (!part.started()) continue;
      if (total == nullptr) {
        total = &part;
        continue;
      }
      T* __restrict dst = total->get(P * xs);
      const T* __restrict src = part.data();
      const int64_t len = P * xs;
#pragma omp parallel for schedule(static) if (len >= 65536)
      for (int64_t i = 0; i < len; ++i) dst[i] += src[i];
    }
    T* gwp = gw.data<T>();
    if (total == nullptr) {  // no images
      std::fill(gwp, gwp + Co * Ci * 9, T(0));
      return;
    }
    kernel_transform_adjoint<F>(total->data(), Ci, Co, gwp);
  });
}

void check_tile(const char* op, int tile) {
  SAGAN_CHECK(tile == 2 || tile == 4, "{}: Winograd tiles are 2x2 or 4x4, got {}", op, tile);
}

}  // namespace

void winograd_conv2d(const Tensor& x, const Tensor& w, const std::optional<Tensor>& bias, Tensor& out, int tile) {
  check_winograd_geometry("conv2d", x, w);
  check_tile("conv2d", tile);
  tile == 2 ? conv2d_f<F2>(x, w, bias, out) : conv2d_f<F4>(x, w, bias, out);
}

void winograd_conv2d_backward_input(const Tensor& gy, const Tensor& w, Tensor& gx, int tile) {
  check_winograd_geometry("conv2d_backward_input", gy, w);
  check_tile("conv2d_backward_input", tile);
  tile == 2 ? backward_input_f<F2>(gy, w, gx) : backward_input_f<F4>(gy, w, gx);
}

void winograd_conv2d_backward_weight(const Tensor& gy, const Tensor& x, Tensor& gw, int tile) {
  check_winograd_geometry("conv2d_backward_weight", x, gw);
  check_tile("conv2d_backward_weight", tile);
  tile == 2 ? backward_weight_f<F2>(gy, x, gw) : backward_weight_f<F4>(gy, x, gw);
}

}  // namespace sagan::cpu
